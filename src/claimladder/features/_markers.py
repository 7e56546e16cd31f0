"""Burned-in text, corner markers and constant borders, found without OCR.

These are the pixel-level shortcuts of the leakage and shortcut checks: a
site's annotation style, a laterality marker or a padding width can predict
the label while telling nothing about the anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from .._core import check_probability
from ._batch import as_image, check_fraction

__all__ = ["MarkerRegion", "border_fraction_constant", "text_marker_regions"]

# A stroke must stand out from its surroundings by this fraction of the
# robust intensity range (burned-in text is usually saturated: ~1).
_MIN_CONTRAST = 0.5
# Gradient above this (robust range per pixel) counts as an edge pixel.
_EDGE_THRESHOLD = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkerRegion:
    """A box of burned-in text or a marker, in pixel coordinates.

    Parameters
    ----------
    top, left, bottom, right : int
        Rows ``top:bottom`` and columns ``left:right`` (end exclusive, as in
        NumPy slicing: ``image[r.top:r.bottom, r.left:r.right]``).
    kind : {"text", "marker"}
        ``"text"``: a row of several glyph-like strokes; ``"marker"``: one
        compact high-contrast shape (a letter, an arrow, a lead marker).
    contrast : float
        Mean stroke prominence over the local background, as a fraction of
        the image's robust intensity range (0..1).
    edge_density : float
        Fraction of the box's pixels that are strong edges.
    n_strokes : int
        Number of separate strokes (glyphs) inside the box.
    """

    top: int
    left: int
    bottom: int
    right: int
    kind: Literal["text", "marker"]
    contrast: float
    edge_density: float
    n_strokes: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` slices selecting the region."""
        return slice(self.top, self.bottom), slice(self.left, self.right)


def _normalized(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros_like(image)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0)


def _odd(n: float) -> int:
    n = max(3, round(n))
    return n if n % 2 else n + 1


def text_marker_regions(
    image: np.ndarray, *, band: float = 0.2, min_contrast: float = _MIN_CONTRAST
) -> list[MarkerRegion]:
    """Boxes of burned-in text and markers in the outer band of an image.

    A heuristic, dependency-free detector (no OCR): it finds thin,
    high-contrast strokes near the image edges, merges those on one line
    into words, and keeps the groups shaped like text or like a marker.

    Parameters
    ----------
    image : array-like, shape (H, W)
        A greyscale image (e.g. from :func:`claimladder.io.read_image`).
    band : float, default=0.2
        Width of the searched outer band, as a fraction of the height (top
        and bottom) and the width (left and right); in (0, 0.5]. Boxes whose
        centre lies in the central region are dropped.
    min_contrast : float, default=0.5
        Minimal stroke prominence over its local background, as a fraction
        of the robust intensity range (0.5th..99.5th percentile); in (0, 1).

    Returns
    -------
    list of MarkerRegion
        Sorted top to bottom, then left to right. Empty when nothing is
        found.

    Raises
    ------
    ValueError
        ``image`` is not a 2D real array without NaN/inf, or a parameter is
        out of range.

    Notes
    -----
    The heuristics, in order, run once for bright and once for dark strokes:

    1. Intensities are scaled so the 0.5th..99.5th percentiles span [0, 1].
    2. Strokes are pixels that a white (or black) morphological top-hat with
       a square of side ``s`` = 5 % of the shorter image side raises by at
       least ``min_contrast``: structures thinner than ``s`` (glyph strokes,
       marker letters, tick marks). Wide anatomy is removed by the opening
       (closing).
    3. Stroke components smaller than 4 pixels (speckle, noise) are dropped.
    4. Strokes are joined horizontally across gaps up to about ``s / 2``
       (letter and word spacing) but not vertically, so each text line
       becomes one component (``scipy.ndimage.label``, 8-connected).
    5. A component is kept when its box centre is in the outer band, its
       height is 3 px to 10 % of the image height, its strokes differ from
       the median of the non-stroke pixels within ``s`` of the box by at
       least ``min_contrast`` in the stroke's polarity (this rejects the
       dark gaps between bright letters), and at least 20 % of the box's
       pixels are strong edges (Sobel gradient / 8 > 0.2).
    6. It is ``"text"`` when it holds at least 2 strokes and is at least 1.5
       times wider than tall, otherwise ``"marker"`` when it is compact
       (aspect ratio at most 3, both sides at most 10 % of the shorter image
       side); other shapes (a long curve, a ruler) are dropped. Of boxes
       overlapping across the two polarities, the more contrasted is kept.

    On deid-data's three ultrasound frames with burned-in text it finds the
    header and the side columns of settings (15-25 text boxes each, nothing
    in the central region; also depth dots, icons and probe markers as
    ``"marker"``); on pydicom-data's radiograph, MR and CT test images
    without annotations in the outer band it finds nothing. Expect misses
    for text whose contrast is below half the intensity range (grey text on
    a grey bar), for solid markers wider than ``s``, and for anything in the
    central region unless ``band=0.5``. Runtime is about 0.1-0.3 s for a
    1024 x 768 image, 1.2 s for 2000 x 2000.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import text_marker_regions
    >>> image = np.zeros((200, 200))
    >>> image[10:22, 12:14] = image[10:12, 12:20] = 255.0  # an "F"...
    >>> image[15:17, 12:18] = 255.0
    >>> image[10:22, 24:26] = image[20:22, 24:31] = 255.0  # ...and an "L"
    >>> regions = text_marker_regions(image)
    >>> [(r.top, r.left, r.bottom, r.right, r.kind) for r in regions]
    [(10, 12, 22, 31, 'text')]
    """
    owner = "text_marker_regions"
    band = check_fraction(band, param="band", owner=owner, upper=0.5)
    min_contrast = check_probability(min_contrast, param="min_contrast", owner=owner)
    x = _normalized(as_image(image, owner=owner))
    h, w = x.shape
    side = _odd(0.05 * min(h, w))
    grad = np.hypot(ndimage.sobel(x, axis=0), ndimage.sobel(x, axis=1)) / 8.0
    edges = grad > _EDGE_THRESHOLD
    found = []
    for sign, prominence in (
        (1.0, x - ndimage.grey_opening(x, size=(side, side))),
        (-1.0, ndimage.grey_closing(x, size=(side, side)) - x),
    ):
        found.extend(_polarity_regions(x, sign, prominence, edges, side, band, min_contrast))
    # The dark gaps between bright glyphs can also pass as dark strokes (and
    # vice versa); of overlapping boxes keep the more contrasted.
    found.sort(key=lambda r: -r.contrast)
    kept: list[MarkerRegion] = []
    for region in found:
        if not any(_overlap(region, other) for other in kept):
            kept.append(region)
    return sorted(kept, key=lambda r: (r.top, r.left))


def _overlap(a: MarkerRegion, b: MarkerRegion) -> bool:
    return a.top < b.bottom and b.top < a.bottom and a.left < b.right and b.left < a.right


def _polarity_regions(
    x: np.ndarray,
    sign: float,
    prominence: np.ndarray,
    edges: np.ndarray,
    side: int,
    band: float,
    min_contrast: float,
) -> list[MarkerRegion]:
    h, w = x.shape
    eight = np.ones((3, 3))
    strokes = prominence >= min_contrast
    labels, n = ndimage.label(strokes, structure=eight)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    strokes &= sizes[labels] >= 4
    labels[~strokes] = 0
    half = max(1, side // 4)
    joined = ndimage.binary_closing(strokes, structure=np.ones((1, 2 * half + 1))) | strokes
    groups, _ = ndimage.label(joined, structure=eight)
    inner = (band * h, (1 - band) * h, band * w, (1 - band) * w)
    short_side = min(h, w)
    regions = []
    for k, box in enumerate(ndimage.find_objects(groups), start=1):
        if box is None:
            continue
        rows, cols = box
        top, bottom, left, right = rows.start, rows.stop, cols.start, cols.stop
        height, width = bottom - top, right - left
        cy, cx = (top + bottom) / 2.0, (left + right) / 2.0
        if inner[0] <= cy < inner[1] and inner[2] <= cx < inner[3]:
            continue
        if not 3 <= height <= 0.1 * h:
            continue
        member = strokes[box] & (groups[box] == k)
        if not member.any():
            continue
        # Strokes must stand out from the background around the box (a
        # margin of one top-hat side): dark gaps between bright letters,
        # surrounded by the same dark background, do not.
        outer = (
            slice(max(top - side, 0), min(bottom + side, h)),
            slice(max(left - side, 0), min(right + side, w)),
        )
        around = x[outer][~strokes[outer]]
        if not around.size:
            continue
        contrast = sign * (float(x[box][member].mean()) - float(np.median(around)))
        if contrast < min_contrast:
            continue
        edge_density = float(edges[box].mean())
        if edge_density < 0.2:
            continue
        n_strokes = len(np.unique(labels[box][member]))
        aspect = width / height
        if n_strokes >= 2 and aspect >= 1.5:
            kind = "text"
        elif max(aspect, 1 / aspect) <= 3 and max(height, width) <= 0.1 * short_side:
            kind = "marker"
        else:
            continue
        regions.append(
            MarkerRegion(
                top=int(top),
                left=int(left),
                bottom=int(bottom),
                right=int(right),
                kind=kind,
                contrast=contrast,
                edge_density=edge_density,
                n_strokes=int(n_strokes),
            )
        )
    return regions


def border_fraction_constant(image: np.ndarray, *, tolerance: float = 0.01) -> float:
    """Fraction of the image area taken by constant rows and columns at its edges.

    Padding, letterboxing and shutters leave uniform bars whose width differs
    between sites and devices, a classic shortcut.

    Parameters
    ----------
    image : array-like, shape (H, W)
        A greyscale image.
    tolerance : float, default=0.01
        A row or column counts as constant when its range (max - min) is at
        most this fraction of the image's range; in (0, 1). Small positive
        values absorb compression noise.

    Returns
    -------
    float
        In [0, 1]: the area of the union of the constant rows taken from the
        top and bottom edges inward and the constant columns taken from the
        left and right edges inward, over the image area. 1 for a constant
        image.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import border_fraction_constant
    >>> image = np.zeros((100, 100))
    >>> image[10:90, 20:80] = np.arange(1.0, 61.0)  # 10-row bars and 20-column bars
    >>> border_fraction_constant(image)
    0.52
    """
    owner = "border_fraction_constant"
    tolerance = check_probability(tolerance, param="tolerance", owner=owner)
    x = as_image(image, owner=owner)
    h, w = x.shape
    span = float(x.max() - x.min())
    if span == 0:
        return 1.0
    limit = tolerance * span
    flat_rows = (x.max(axis=1) - x.min(axis=1)) <= limit
    flat_cols = (x.max(axis=0) - x.min(axis=0)) <= limit

    def run(flags: np.ndarray) -> int:
        bad = np.flatnonzero(~flags)
        return len(flags) if not len(bad) else int(bad[0])

    top, bottom = run(flat_rows), run(flat_rows[::-1])
    left, right = run(flat_cols), run(flat_cols[::-1])
    inner_h = max(h - top - bottom, 0)
    inner_w = max(w - left - right, 0)
    return float(1.0 - inner_h * inner_w / (h * w))
