"""Helpers shared by the image, DICOM and table readers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._core import ImageReadError

__all__ = ["DICOM_EXTENSIONS", "has_dicom_magic", "image_error", "luminance", "require_file"]

#: File name endings read as DICOM without looking at the content.
DICOM_EXTENSIONS = (".dcm", ".dicom")

# ITU-R BT.601 luma weights, the ones Pillow's "L" conversion and most
# imaging toolkits use; they weight green most, as the eye does.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def image_error(path: str | os.PathLike[str], problem: str, fix: str) -> ImageReadError:
    """Build the one message shape every image error has: file, problem, fix."""
    return ImageReadError(f"Cannot read image {str(path)!r}: {problem}. {fix}")


def require_file(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path, or raise ImageReadError if it is not a readable file."""
    path = Path(path)
    if not path.exists():
        raise image_error(
            path,
            "the file does not exist",
            f"Check the path (relative paths resolve against {os.getcwd()!r}) "
            "or the images root of the study.",
        )
    if path.is_dir():
        raise image_error(path, "it is a directory, not a file", "Pass the path of one image file.")
    return path


def has_dicom_magic(path: str | os.PathLike[str]) -> bool:
    """Whether the file has the DICOM Part 10 marker ``DICM`` at byte offset 128."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Greyscale luminance ``0.299 R + 0.587 G + 0.114 B`` of a ``(..., 3)`` array.

    Computed in float64 (no rounding, unlike Pillow's ``convert("L")``) so
    that 16-bit colour keeps its precision.
    """
    return np.asarray(rgb[..., :3], dtype=np.float64) @ _LUMA_WEIGHTS
