"""Image-derived features shared by the leakage, shortcut, OOD and robustness checks.

Thumbnails, perceptual and content hashes, near-duplicate search, per-image
intensity statistics, and a detector of burned-in text and corner markers.
Batch functions take a sequence of 2D arrays (any shapes) or one ``(N, H, W)``
array and process same-shaped images together, a chunk at a time.
"""

from ._duplicates import exact_duplicate_pairs, near_duplicate_pairs
from ._files import FILE_HASH_COLUMNS, hash_image_files
from ._fingerprint import fingerprint_correlation, verify_near_duplicates
from ._hashing import content_hash, hamming_distance, perceptual_hash
from ._markers import MarkerRegion, border_fraction_constant, text_marker_regions
from ._ocr import OcrUnavailableError, TextRecognition, ocr_available, recognize_text_regions
from ._statistics import STATISTICS_COLUMNS, image_statistics
from ._thumbnails import thumbnails

__all__ = [
    "FILE_HASH_COLUMNS",
    "STATISTICS_COLUMNS",
    "MarkerRegion",
    "OcrUnavailableError",
    "TextRecognition",
    "border_fraction_constant",
    "content_hash",
    "exact_duplicate_pairs",
    "fingerprint_correlation",
    "hamming_distance",
    "hash_image_files",
    "image_statistics",
    "near_duplicate_pairs",
    "ocr_available",
    "perceptual_hash",
    "recognize_text_regions",
    "text_marker_regions",
    "thumbnails",
    "verify_near_duplicates",
]
