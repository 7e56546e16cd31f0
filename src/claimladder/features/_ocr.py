"""OCR of burned-in text regions with Tesseract (optional: the ``ocr`` extra).

Only the boxes found by :func:`text_marker_regions` are read, many at a time:
the crops are stacked into one page per batch, so one Tesseract process reads
dozens of regions (a process per region costs ~50 ms of start-up alone).
What comes back is counted, never returned: recognised text may be a name,
a date or an identifier, so callers get numbers of words and of words that
look like dates or numbers, not the words.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .._core import ClaimladderError
from ._batch import as_image
from ._markers import MarkerRegion, text_marker_regions

__all__ = ["OcrUnavailableError", "TextRecognition", "ocr_available", "recognize_text_regions"]

#: Crops are scaled to this text height (pixels); Tesseract reads 20-40 px capitals best.
_LINE_HEIGHT = 32
_GAP = 24
#: Regions per Tesseract call.
_BATCH = 40
#: Least Tesseract confidence (0-100) for a token to count as a word.
MIN_CONFIDENCE = 50.0
_WORD = re.compile(r"[A-Za-z0-9]")
_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|(19|20)\d{6}")
_NUMBER = re.compile(r"\d{3,}")


class OcrUnavailableError(ClaimladderError, ImportError):
    """pytesseract or the Tesseract program is missing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TextRecognition:
    """What OCR found in one image's text regions, as counts (no recognised text).

    Parameters
    ----------
    n_regions : int
        Text regions given to OCR.
    n_regions_with_words : int
        Regions in which at least one word was recognised.
    n_words : int
        Recognised words: tokens with at least two letters or digits and a
        Tesseract confidence of at least 50.
    n_date_like : int
        Words shaped like a date (``12/03/2021``, ``2021-03-12``, ``20210312``).
    n_number_like : int
        Words with a run of three or more digits (ids, accession numbers, ages
        with units are not separated from them).
    mean_confidence : float
        Mean Tesseract confidence of the words (NaN when there are none).
    """

    n_regions: int
    n_regions_with_words: int
    n_words: int
    n_date_like: int
    n_number_like: int
    mean_confidence: float

    @property
    def has_text(self) -> bool:
        """Whether any word was recognised."""
        return self.n_words > 0


def ocr_available() -> tuple[bool, str]:
    """Whether OCR can run, and if not, why (a message with the fix)."""
    try:
        import pytesseract
    except ImportError:
        return False, ("pytesseract is not installed. Fix: pip install 'claimladder[ocr]' and "
                       "install the Tesseract program (Debian/Ubuntu: apt-get install "
                       "tesseract-ocr tesseract-ocr-eng; macOS: brew install tesseract).")
    try:
        pytesseract.get_tesseract_version()
    except (OSError, RuntimeError):  # TesseractNotFoundError is an OSError
        return False, ("the Tesseract program was not found on the PATH (pytesseract is "
                       "installed). Fix: apt-get install tesseract-ocr tesseract-ocr-eng, or "
                       "brew install tesseract, or set pytesseract.pytesseract.tesseract_cmd.")
    return True, ""


def _crop(image: np.ndarray, region: MarkerRegion) -> np.ndarray:
    """The region as dark text on white, uint8, scaled to the line height."""
    from PIL import Image

    pad = max(2, (region.bottom - region.top) // 4)
    h, w = image.shape
    crop = image[max(region.top - pad, 0):min(region.bottom + pad, h),
                 max(region.left - pad, 0):min(region.right + pad, w)].astype(np.float64)
    lo, hi = float(crop.min()), float(crop.max())
    scaled = (crop - lo) / (hi - lo) if hi > lo else np.zeros_like(crop)
    # The background is the majority: if it is darker than mid-grey the text is bright.
    if np.median(scaled) < 0.5:
        scaled = 1.0 - scaled
    pixels = np.round(scaled * 255).astype(np.uint8)
    factor = _LINE_HEIGHT / max(region.bottom - region.top, 1)
    size = (max(1, round(pixels.shape[1] * factor)), max(1, round(pixels.shape[0] * factor)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.BICUBIC))


def _read_page(crops: list[np.ndarray]) -> list[list[tuple[str, float]]]:
    """OCR crops stacked on one white page; the words (and confidences) of each crop."""
    import pytesseract
    from PIL import Image

    width = max(c.shape[1] for c in crops) + 2 * _GAP
    height = sum(c.shape[0] + _GAP for c in crops) + _GAP
    page = np.full((height, width), 255, dtype=np.uint8)
    spans = []
    top = _GAP
    for crop in crops:
        page[top:top + crop.shape[0], _GAP:_GAP + crop.shape[1]] = crop
        spans.append((top - _GAP // 2, top + crop.shape[0] + _GAP // 2))
        top += crop.shape[0] + _GAP
    data = pytesseract.image_to_data(Image.fromarray(page), config="--psm 6",
                                     output_type=pytesseract.Output.DICT)
    out: list[list[tuple[str, float]]] = [[] for _ in crops]
    starts = np.array([s for s, _ in spans])
    for text, conf, y, hh in zip(data["text"], data["conf"], data["top"], data["height"]):
        token = str(text).strip()
        if not token:
            continue
        k = int(np.searchsorted(starts, y + hh / 2, side="right")) - 1
        if 0 <= k < len(crops):
            out[k].append((token, float(conf)))
    return out


def _summarise(regions: int, words: list[list[tuple[str, float]]]) -> TextRecognition:
    kept = [[(t, c) for t, c in region if c >= MIN_CONFIDENCE and len(_WORD.findall(t)) >= 2]
            for region in words]
    flat = [w for region in kept for w in region]
    return TextRecognition(
        n_regions=regions,
        n_regions_with_words=sum(1 for region in kept if region),
        n_words=len(flat),
        n_date_like=sum(1 for t, _ in flat if _DATE.search(t)),
        n_number_like=sum(1 for t, _ in flat if _NUMBER.search(t)),
        mean_confidence=float(np.mean([c for _, c in flat])) if flat else float("nan"),
    )


def recognize_text_regions(
    images: Sequence[np.ndarray | None],
    regions: Sequence[Sequence[MarkerRegion] | None] | None = None,
    *,
    n_jobs: int | None = None,
) -> list[TextRecognition | None]:
    """Run Tesseract on the text-like regions of each image and count what it reads.

    Parameters
    ----------
    images : sequence of 2D arrays or None
        Greyscale images; ``None`` entries (unreadable images) give ``None``.
    regions : sequence of sequences of MarkerRegion, optional
        Per image, the boxes to read (default: the ``"text"`` boxes of
        :func:`text_marker_regions`). Other kinds are ignored.
    n_jobs : int, optional
        Tesseract processes run at a time (default: the number of CPUs, at most 4).

    Returns
    -------
    list of TextRecognition or None
        One per image, aligned with ``images``: counts only, never the text.

    Raises
    ------
    OcrUnavailableError
        pytesseract or the Tesseract program is missing (the message says how to
        install them); see :func:`ocr_available` to test first.

    Notes
    -----
    Each box is padded by a quarter of its height, scaled to dark text on white
    at 32 px per line, and stacked with 40 others on one page read with
    ``--psm 6`` (a block of text); words are assigned back to their box by their
    vertical centre. A word is a token with two or more letters or digits and a
    confidence of at least 50: single glyphs (an "L" marker, a depth dot) do not
    count. Tesseract 5.3 on deid-data's three ultrasound frames reads 19-32 words
    in 16-21 of their 18-22 text boxes (two date-like words in two of them), in
    about 2 s per frame on 2 shared cores; on the demo study's "PORTABLE AP" label
    (128 px images) it reads at least one of the two words.

    References
    ----------
    .. [1] R. Smith, "An overview of the Tesseract OCR engine", ICDAR 2007.
    """
    available, why = ocr_available()
    if not available:
        raise OcrUnavailableError(f"recognize_text_regions cannot run: {why}")
    if regions is not None and len(regions) != len(images):
        raise ValueError(
            "The 'regions' parameter of recognize_text_regions must have one entry per image "
            f"({len(images)}). Got {len(regions)} instead."
        )
    jobs: list[tuple[int, np.ndarray]] = []
    counts = [0] * len(images)
    for k, image in enumerate(images):
        if image is None:
            continue
        array = as_image(image, owner="recognize_text_regions")
        boxes = text_marker_regions(array) if regions is None else (regions[k] or ())
        boxes = [r for r in boxes if r.kind == "text"]
        counts[k] = len(boxes)
        jobs.extend((k, _crop(array, r)) for r in boxes)
    batches = [jobs[s:s + _BATCH] for s in range(0, len(jobs), _BATCH)]
    workers = n_jobs if n_jobs is not None else min(os.cpu_count() or 1, 4)
    # Tesseract's own OpenMP threads would compete with the parallel processes; the
    # variable is inherited by the child processes and restored afterwards.
    previous = os.environ.get("OMP_THREAD_LIMIT")
    os.environ["OMP_THREAD_LIMIT"] = "1" if previous is None else previous
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            pages = list(pool.map(lambda batch: _read_page([c for _, c in batch]), batches))
    finally:
        if previous is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)
    words: list[list[list[tuple[str, float]]]] = [[] for _ in images]
    for batch, page in zip(batches, pages):
        for (k, _), found in zip(batch, page):
            words[k].append(found)
    return [None if image is None else _summarise(counts[k], words[k])
            for k, image in enumerate(images)]
