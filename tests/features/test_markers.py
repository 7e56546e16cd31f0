"""Burned-in text / marker detection and constant borders, on real and synthetic images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from scipy import ndimage

from claimladder.features import MarkerRegion, border_fraction_constant, text_marker_regions
from claimladder.io import read_image


def anatomy(seed: int, size: int = 384) -> np.ndarray:
    """A smooth random texture with an elliptical body, edges and noise; no markings."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(size, size)), 12) * 400
    y, x = np.mgrid[0:size, 0:size] / size
    body = 80.0 * ((((x - 0.5) / 0.38) ** 2 + ((y - 0.5) / 0.45) ** 2) < 1)
    image = 60 + field + ndimage.gaussian_filter(body, 3) + rng.normal(0, 4, (size, size))
    return np.clip(image, 0, 255)


def draw(image: np.ndarray, *, text=(), boxes=()):
    """Burn text ``(xy, string, fill, font size)`` and filled boxes into a copy."""
    pil = Image.fromarray(image.astype(np.uint8))
    pen = ImageDraw.Draw(pil)
    bounds = []
    for xy, string, fill, size in text:
        font = ImageFont.load_default(size=size)
        pen.text(xy, string, fill=fill, font=font)
        bounds.append(pen.textbbox(xy, string, font=font))
    for box, fill in boxes:
        pen.rectangle(box, fill=fill)
        bounds.append((box[0], box[1], box[2] + 1, box[3] + 1))
    return np.asarray(pil, dtype=np.float64), bounds


def covers(region: MarkerRegion, bound, slack: int = 3) -> bool:
    left, top, right, bottom = bound
    return (region.top <= top + slack and region.bottom >= bottom - slack
            and region.left <= left + slack and region.right >= right - slack)


@pytest.mark.parametrize("seed", range(5))
def test_no_regions_on_unmarked_anatomy(seed):
    assert text_marker_regions(anatomy(seed)) == []


def test_finds_bright_text_and_corner_markers():
    image, (name, letter, dot) = draw(
        anatomy(0),
        text=[((8, 6), "DOE^JANE 1234567", 255, 14), ((350, 340), "L", 255, 24)],
        boxes=[((20, 350, 31, 361), 255)],
    )
    regions = text_marker_regions(image)
    assert len(regions) == 3
    top, corner_letter, corner_dot = regions  # sorted by (top, left)
    assert top.kind == "text" and covers(top, name) and top.n_strokes >= 10
    assert corner_letter.kind == "marker" and covers(corner_letter, letter)
    assert corner_dot.kind == "marker" and covers(corner_dot, dot, slack=0)
    assert all(r.contrast >= 0.5 and r.edge_density >= 0.2 for r in regions)
    assert image[top.slices].max() == 255


def test_finds_dark_text_on_bright_image():
    image, (bound,) = draw(255 - anatomy(1), text=[((200, 360), "ACC 99812 CHEST PA", 0, 13)])
    (region,) = text_marker_regions(image)
    assert region.kind == "text" and covers(region, bound)


def test_ignores_text_in_the_centre_unless_the_band_covers_it():
    # Dark text on the bright body: it stands out by more than half the intensity range.
    image, (bound,) = draw(anatomy(2), text=[((150, 180), "MEASURE 12.5 mm", 0, 14)])
    assert text_marker_regions(image) == []
    (region,) = text_marker_regions(image, band=0.5)
    assert covers(region, bound)


def test_deid_ultrasounds_with_burned_in_text(deid_ultrasound_paths):
    paths = deid_ultrasound_paths
    if not paths:
        pytest.skip("deid-data not installed (pip install deid-data)")
    for path in paths:
        image = read_image(path, frame=0)
        h, w = image.shape
        regions = text_marker_regions(image)
        text = [r for r in regions if r.kind == "text"]
        # Each of the three has 15+ lines of settings text down a side and a header
        # (inspected visually); demand most of them, and nothing in the central region.
        assert len(text) >= 10, path
        assert any(r.top < 0.1 * h for r in text), path
        for r in regions:
            cy, cx = (r.top + r.bottom) / 2, (r.left + r.right) / 2
            assert not (0.2 * h <= cy < 0.8 * h and 0.2 * w <= cx < 0.8 * w)
        if path.endswith("GREYSCALE_IMAGE.dcm"):
            # "4.0cm" at rows ~700-716, columns ~857-913 (and the ZZZ header at top left).
            assert any(r.top <= 702 and r.bottom >= 714 and r.left <= 860 and r.right >= 910
                       for r in text)
            assert any(r.top < 25 and r.left < 20 for r in text)


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "MR2_UNCR.dcm", "CT_small.dcm", "693_UNCR.dcm"])
def test_no_regions_on_clean_dicom_test_images(name):
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not installed (pip install pydicom-data)")
    assert text_marker_regions(read_image(path)) == []


@pytest.mark.parametrize(("kwargs", "match"), [({"band": 0.0}, "'band'"), ({"band": 0.7}, "'band'"),
                                               ({"min_contrast": 1.0}, "'min_contrast'")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        text_marker_regions(np.zeros((32, 32)), **kwargs)


def test_constant_image_has_no_regions():
    assert text_marker_regions(np.full((64, 64), 9.0)) == []


# --- constant borders -------------------------------------------------------------------


def test_border_fraction_of_padding():
    image = np.zeros((200, 300))
    image[20:190, 30:240] = anatomy(3, 256)[:170, :210] + 1  # +1: no constant row inside
    expected = 1 - (170 * 210) / (200 * 300)
    assert border_fraction_constant(image) == pytest.approx(expected)


def test_border_fraction_tolerates_jpeg_noise_but_not_content():
    image = np.full((128, 128), 255.0)
    image[16:112, 8:120] = anatomy(4, 128)[16:112, 8:120]
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, format="JPEG", quality=85)
    decoded = np.asarray(Image.open(buffer), dtype=np.float64)
    exact = border_fraction_constant(image)
    assert exact == pytest.approx(1 - 96 * 112 / 128**2)
    assert border_fraction_constant(decoded, tolerance=0.05) == pytest.approx(exact, abs=0.05)


def test_border_fraction_extremes():
    assert border_fraction_constant(np.full((10, 10), 3.0)) == 1.0
    noise = np.random.default_rng(0).normal(size=(50, 60))
    assert border_fraction_constant(noise) == 0.0
    with pytest.raises(ValueError, match="'tolerance'"):
        border_fraction_constant(noise, tolerance=1.5)
