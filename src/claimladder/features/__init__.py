"""Image-derived features shared by the leakage, shortcut, OOD and robustness checks.

Thumbnails, perceptual and content hashes, near-duplicate search, per-image
intensity statistics, and a detector of burned-in text and corner markers.
Batch functions take a sequence of 2D arrays (any shapes) or one ``(N, H, W)``
array and process same-shaped images together, a chunk at a time.
"""

from ._duplicates import exact_duplicate_pairs, near_duplicate_pairs
from ._hashing import content_hash, hamming_distance, perceptual_hash
from ._markers import MarkerRegion, border_fraction_constant, text_marker_regions
from ._statistics import STATISTICS_COLUMNS, image_statistics
from ._thumbnails import thumbnails

__all__ = [
    "STATISTICS_COLUMNS",
    "MarkerRegion",
    "border_fraction_constant",
    "content_hash",
    "exact_duplicate_pairs",
    "hamming_distance",
    "image_statistics",
    "near_duplicate_pairs",
    "perceptual_hash",
    "text_marker_regions",
    "thumbnails",
]
