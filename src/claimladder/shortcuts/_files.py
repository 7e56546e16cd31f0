"""Decoding one chunk of :class:`~claimladder.cohort.ImageFiles` with errors that name the file."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._core import ImageReadError, UsageError
from ..cohort import ImageFiles
from ..io import read_image

__all__ = ["load_files"]


def _read_failure(path: str) -> str:
    """Why a file does not decode (the reader's own message)."""
    if not path:
        return "no file is given for it"
    try:
        read_image(path)
    except ImageReadError as exc:
        return str(exc).rstrip(".")
    return "it did not decode (it may have changed while being read)"


def load_files(files: ImageFiles, rows: Sequence[int], *, owner: str,
               shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Decode the files at ``rows`` into a float32 stack ``(k, H, W)``.

    Parameters
    ----------
    files : ImageFiles
        The whole image set (nothing else of it is decoded).
    rows : sequence of int
        Positions to decode (one chunk), named in the messages.
    owner : str
        The public function, named in the messages.
    shape : tuple, optional
        The shape every image must have (the first image's); default the
        first decoded one's.

    Raises
    ------
    claimladder._core.UsageError
        A file does not decode, is not 2D, or differs in shape; the message
        names its position, its path and the fix.
    """
    decoded = []
    for row in rows:
        path = files.paths[int(row)]
        where = f"Image {int(row)} of the ImageFiles passed to {owner} ({path!r})"
        image = files[int(row)]
        if image is None:
            raise UsageError(
                f"{where} cannot be read: {_read_failure(path)}. Fix: repair or replace the "
                "file, or leave the image out (claimladder.cohort.check_image_files lists "
                "every unreadable image of a cohort).")
        if image.ndim != 2:
            raise UsageError(
                f"{where} has shape {image.shape}; {owner} works on 2D images. Fix: save one "
                "representative 2D slice per volume (e.g. the middle axial slice).")
        if shape is None:
            shape = image.shape
        elif image.shape != tuple(shape):
            raise UsageError(
                f"{where} has shape {image.shape}, unlike the first image's {tuple(shape)}; "
                "a model needs equally shaped images. Fix: resample the images to one shape "
                "first.")
        decoded.append(image)
    return np.stack(decoded).astype(np.float32, copy=False)
