"""OCR of burned-in text regions (Tesseract via the optional pytesseract)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from claimladder.features import (
    OcrUnavailableError,
    TextRecognition,
    ocr_available,
    recognize_text_regions,
    text_marker_regions,
)
from claimladder.io import read_image


def _require_ocr():
    available, why = ocr_available()
    if not available:  # a failure under CI=true (tests/conftest.py); .ci/run installs it
        pytest.skip(f"OCR unavailable: {why}")


def _draw(text_rows, size=(256, 256), seed=0):
    """A noisy image with white text drawn by PIL's default font, scaled up."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.fromarray(np.clip(60 + rng.normal(0, 4, size), 0, 255).astype(np.uint8))
    canvas = ImageDraw.Draw(image)
    for (row, col), text in text_rows:
        canvas.text((col, row), text, fill=255, font_size=14)
    return np.asarray(image)


def test_reads_drawn_text_and_returns_counts_only():
    _require_ocr()
    image = _draw([((6, 8), "PORTABLE AP"), ((230, 8), "DOB 12/03/1961 ID 4481921")])
    (found,) = recognize_text_regions([image])
    assert isinstance(found, TextRecognition)
    assert found.n_regions >= 2 and found.n_regions_with_words >= 2
    assert found.n_words >= 4 and found.has_text
    assert found.n_date_like >= 1 and found.n_number_like >= 1
    assert 50 <= found.mean_confidence <= 100
    # The record holds numbers only: no field can carry the recognised text.
    assert all(isinstance(getattr(found, f), (int, float)) for f in found.__slots__)


def test_blank_images_and_none():
    _require_ocr()
    blank = np.full((128, 128), 80.0)
    first, second = recognize_text_regions([blank, None])
    assert second is None and first.n_regions == 0 and not first.has_text
    assert first.n_words == 0 and np.isnan(first.mean_confidence)


def test_deid_ultrasounds(deid_ultrasound_paths):
    _require_ocr()
    if not deid_ultrasound_paths:
        pytest.skip("deid-data not installed (pip install deid-data)")
    import pytesseract
    from PIL import Image

    images = [read_image(p, frame=0) for p in deid_ultrasound_paths]
    found = recognize_text_regions(images)
    for path, image, result in zip(deid_ultrasound_paths, images, found):
        # 18-22 text boxes per frame (test_markers); Tesseract 5.3 reads words in most.
        assert result.n_regions >= 10, path
        assert result.n_regions_with_words >= result.n_regions // 2, path
        assert result.n_words >= 10, path
        # No recognised word can leak through the result: it is counts only.
        words = {w for w in pytesseract.image_to_string(Image.fromarray(
            np.clip(image / max(image.max(), 1) * 255, 0, 255).astype(np.uint8))).split()
            if len(w) >= 4}
        dumped = json.dumps({f: getattr(result, f) for f in result.__slots__}, default=str)
        assert not any(w in dumped for w in words), path


def test_explicit_regions_limit_what_is_read():
    _require_ocr()
    image = _draw([((6, 8), "PORTABLE AP"), ((230, 8), "LEFT SIDE")])
    regions = [r for r in text_marker_regions(image) if r.top < 50]
    (found,) = recognize_text_regions([image], [regions])
    assert found.n_regions == len(regions) >= 1
    with pytest.raises(ValueError, match="one entry per image"):
        recognize_text_regions([image], [])


def test_without_pytesseract(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytesseract", None)  # import fails
    available, why = ocr_available()
    assert not available and "pip install 'claimladder[ocr]'" in why
    assert "tesseract-ocr" in why
    with pytest.raises(OcrUnavailableError, match="pip install"):
        recognize_text_regions([np.zeros((32, 32))])
    assert issubclass(OcrUnavailableError, ImportError)


def test_without_the_tesseract_program(monkeypatch):
    pytesseract = pytest.importorskip("pytesseract")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    available, why = ocr_available()
    assert not available and "not found" in why
