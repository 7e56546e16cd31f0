"""image_statistics against per-image NumPy computations and known noise levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claimladder.features import STATISTICS_COLUMNS, image_statistics


def test_intensity_columns_match_numpy(real_images):
    images = [real_images[n].astype(np.float32) for n in sorted(real_images)[:8]]
    stats = image_statistics(images, border=0.1)
    assert list(stats.columns) == list(STATISTICS_COLUMNS)
    for k, image in enumerate(images):
        x = image.astype(np.float64)
        row = stats.loc[k]
        assert (row["height"], row["width"]) == image.shape
        assert row["mean"] == pytest.approx(x.mean(), rel=1e-6)
        assert row["std"] == pytest.approx(x.std(), rel=1e-6)
        assert (row["min"], row["max"]) == (x.min(), x.max())
        for q in (1, 5, 25, 50, 75, 95, 99):
            assert row[f"p{q:02d}"] == pytest.approx(np.percentile(x, q), rel=1e-6)
        # Entropy of a 256-bin histogram over [min, max] (numpy.histogram's binning).
        counts, _ = np.histogram(x, bins=256, range=(x.min(), x.max()))
        p = counts[counts > 0] / x.size
        assert row["entropy"] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-9)
        h, w = x.shape
        kh, kw = round(0.1 * h), round(0.1 * w)
        assert row["corner_top_left"] == pytest.approx(x[:kh, :kw].mean(), rel=1e-6)
        assert row["corner_bottom_right"] == pytest.approx(x[h - kh :, w - kw :].mean(), rel=1e-6)
        assert row["border_left"] == pytest.approx(x[:, :kw].mean(), rel=1e-6)
        assert row["border_bottom"] == pytest.approx(x[h - kh :, :].mean(), rel=1e-6)


@pytest.mark.parametrize("sigma", [1.0, 5.0, 20.0])
def test_noise_sigma_on_smooth_image_with_padding(sigma):
    # A smooth ramp plus a bright disc (edges) plus white noise of known sigma, with a
    # zero padding covering 60 % of the image: the estimate is within 5 % of sigma.
    rng = np.random.default_rng(int(sigma))
    y, x = np.mgrid[0:200, 0:200]
    image = 100 + 0.3 * x + 50.0 * (np.hypot(x - 100, y - 100) < 40)
    image = image + rng.normal(0, sigma, image.shape)
    padded = np.zeros((200, 500))
    padded[:, 150:350] = image
    stats = image_statistics([image, padded])
    np.testing.assert_allclose(stats["noise_sigma"], sigma, rtol=0.05)
    assert stats.loc[0, "snr"] == pytest.approx(image.mean() / stats.loc[0, "noise_sigma"])


def test_degenerate_images():
    stats = image_statistics([np.full((16, 16), 4.0), np.zeros((2, 50))])
    assert stats.loc[0, "entropy"] == 0 and stats.loc[0, "noise_sigma"] == 0
    assert np.isnan(stats.loc[0, "snr"]) and stats.loc[0, "edge_density"] == 0
    assert np.isnan(stats.loc[1, "noise_sigma"]) and np.isnan(stats.loc[1, "edge_density"])
    assert stats.loc[1, "mean"] == 0


def test_entropy_of_uniform_256_levels_is_8_bits():
    image = np.arange(256.0).reshape(16, 16)
    assert image_statistics([image]).loc[0, "entropy"] == pytest.approx(8.0)


def test_edge_density_counts_a_step():
    # A vertical step: the Sobel / 8 gradient is 0.5 on the two columns next to the step
    # (above the 0.1 threshold) and 0 elsewhere; interior has 62 rows.
    image = np.zeros((64, 64))
    image[:, 32:] = 1.0
    density = image_statistics([image]).loc[0, "edge_density"]
    assert density == pytest.approx(2 * 62 / (62 * 62))


def test_border_regions_see_a_corner_marker():
    image = np.zeros((100, 100))
    image[2:8, 90:98] = 200.0
    row = image_statistics([image]).loc[0]
    assert row["corner_top_right"] == pytest.approx(200 * 48 / 100)
    assert row["corner_top_left"] == row["corner_bottom_right"] == 0
    assert row["border_top"] == pytest.approx(200 * 48 / 1000)


def test_batch_forms_agree(real_images):
    images = [real_images[n] for n in sorted(real_images)[:6]]
    mixed = image_statistics(images)
    one_by_one = pd.concat([image_statistics([im]) for im in images], ignore_index=True)
    pd.testing.assert_frame_equal(mixed, one_by_one)
    stack = np.stack([images[0], images[0][::-1]])
    pd.testing.assert_frame_equal(image_statistics(stack), image_statistics(list(stack)))


@pytest.mark.parametrize("border", [0, 0.6, -0.1, "0.1"])
def test_bad_border(border):
    with pytest.raises(ValueError, match="'border'"):
        image_statistics([np.zeros((8, 8))], border=border)
