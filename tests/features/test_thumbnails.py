"""Thumbnails: exact area averaging and robust intensity normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from claimladder.features import thumbnails
from claimladder.features._resample import area_matrix


def area_resize_reference(image: np.ndarray, size: int) -> np.ndarray:
    """Area averaging by brute force: repeat every pixel ``size`` times along each axis
    (so each output cell covers whole sub-pixels) and average blocks of ``H x W``."""
    h, w = image.shape
    fine = np.repeat(np.repeat(image, size, axis=0), size, axis=1)
    return fine.reshape(size, h, size, w).mean(axis=(1, 3))


def normalize_reference(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, [1, 99])
    return np.clip((image - lo) / (hi - lo), 0, 1)


@pytest.mark.parametrize(("in_size", "out_size"), [(64, 32), (37, 8), (5, 8), (100, 7), (8, 8)])
def test_area_matrix_matches_brute_force(in_size, out_size):
    rng = np.random.default_rng(in_size)
    image = rng.random((in_size, in_size + 3))
    ours = area_matrix(in_size, out_size) @ image @ area_matrix(in_size + 3, out_size).T
    np.testing.assert_allclose(ours, area_resize_reference(image, out_size), atol=1e-12)


def test_integer_factor_is_block_mean():
    image = np.random.default_rng(0).random((64, 96))
    ours = area_matrix(64, 16) @ image @ area_matrix(96, 16).T
    expected = image.reshape(16, 4, 16, 6).mean(axis=(1, 3))
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_thumbnails_normalise_then_average(real_images):
    images = [real_images["skimage:camera"], real_images["dicom:CT_small.dcm"],
              real_images["skimage:coins"]]
    got = thumbnails(images, size=16)
    assert got.shape == (3, 16, 16) and got.dtype == np.float32
    for image, thumb in zip(images, got):
        expected = area_resize_reference(normalize_reference(image.astype(float)), 16)
        np.testing.assert_allclose(thumb, expected, atol=2e-5)


def test_robust_to_hot_pixels_and_scale():
    rng = np.random.default_rng(1)
    image = rng.normal(100, 10, (64, 64))
    hot = image.copy()
    hot[3, 5] = 1e6  # one saturated pixel must not squash the rest
    t = thumbnails([image, hot, 50.0 * image - 7.0])
    others = np.ones((32, 32), dtype=bool)
    others[1, 2] = False  # the cell holding the hot pixel (clipped to 1 there)
    np.testing.assert_allclose(t[1][others], t[0][others], atol=0.02)
    np.testing.assert_allclose(t[2], t[0], atol=1e-5)


def test_constant_and_mostly_constant_images():
    marker = np.zeros((40, 40))
    marker[0:4, 0:4] = 7.0  # 1 % of the pixels: percentiles coincide, min-max is used
    t = thumbnails([np.full((10, 12), 3.0), marker], size=4)
    np.testing.assert_array_equal(t[0], 0.0)
    assert t[1, 0, 0] == pytest.approx(16 / 100)  # a 4x4 marker in a 10x10 cell
    assert t[1].max() == t[1, 0, 0]


def test_stacked_array_and_list_agree():
    stack = np.random.default_rng(2).integers(0, 4096, (5, 48, 40)).astype(np.uint16)
    np.testing.assert_array_equal(thumbnails(stack, size=12), thumbnails(list(stack), size=12))


@pytest.mark.parametrize("size", [0, -3, 2.5])
def test_bad_size(size):
    with pytest.raises(ValueError, match="'size'"):
        thumbnails([np.zeros((4, 4))], size=size)
