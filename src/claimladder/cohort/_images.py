"""Read the cohort's image files once; list the ones that fail."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import overload

import numpy as np
import pandas as pd

from .._core import ImageReadError
from ..io import read_image
from ._cohort import Cohort

__all__ = ["ImageFiles", "check_image_files", "read_cohort_images"]


def read_cohort_images(
    cohort: Cohort,
    images_root: str | os.PathLike[str],
    *,
    on_image: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray | None], pd.DataFrame]:
    """Read every image of the cohort (row order); unreadable ones become ``None``.

    Parameters
    ----------
    cohort : Cohort
        Must have a ``path`` role.
    images_root : path-like
        Folder the cohort's paths are relative to.
    on_image : callable, optional
        Called with the running count after each image (progress display).

    Returns
    -------
    images : list of numpy.ndarray or None
        One float32 array per row, ``None`` where reading failed.
    problems : pandas.DataFrame
        One row per unreadable image: ``image_id, path, problem`` (the first
        sentence of the reader's message); a missing path value is a problem too.
    """
    root = Path(images_root)
    problems, images = [], []
    ids = cohort.image_ids
    for i, value in enumerate(cohort.column("path").tolist()):
        image = None
        if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value):
            problems.append({"image_id": ids[i], "path": "", "problem": "no path given"})
        else:
            try:
                image = read_image(root / str(value))
            except ImageReadError as exc:
                problems.append({"image_id": ids[i], "path": str(value),
                                 "problem": _first_sentence(str(exc), root)})
        images.append(image)
        if on_image is not None:
            on_image(i + 1)
    return images, pd.DataFrame(problems, columns=["image_id", "path", "problem"])


def check_image_files(
    cohort: Cohort,
    images_root: str | os.PathLike[str],
    *,
    on_image: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The ``problems`` table of :func:`read_cohort_images` (empty when every image decodes)."""
    return read_cohort_images(cohort, images_root, on_image=on_image)[1]


def _first_sentence(message: str, root: Path) -> str:
    # Reader messages start with the absolute path; the table already has the relative one.
    text = message.replace(str(root) + os.sep, "")
    head, _, _ = text.partition(". ")
    return head if len(head) < 200 else head[:197] + "..."


class ImageFiles(Sequence):
    """Image files that are decoded when accessed: a sequence of images that holds none.

    What a work unit carries instead of pixels: pickling it sends only the
    paths, and each worker decodes its own chunk, so memory stays bounded by
    the chunk however large the image set.

    Parameters
    ----------
    paths : sequence of path-like
        One file per image (``""`` for a row without a file).

    Examples
    --------
    >>> files = ImageFiles(["missing.png"])
    >>> len(files), files[0] is None
    (1, True)
    """

    __slots__ = ("paths",)

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.paths = tuple(str(p) for p in paths)

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> np.ndarray | None: ...
    @overload
    def __getitem__(self, index: slice) -> ImageFiles: ...

    def __getitem__(self, index):
        """The decoded image (float32; ``None`` where unreadable), or the files of a slice."""
        if isinstance(index, slice):
            return ImageFiles(self.paths[index])
        path = self.paths[index]
        if not path:
            return None
        try:
            return read_image(path)
        except ImageReadError:
            return None

    def take(self, rows: Sequence[int] | np.ndarray) -> ImageFiles:
        """The files at ``rows`` (nothing is decoded)."""
        return ImageFiles([self.paths[int(i)] for i in rows])

    def load(self) -> list[np.ndarray | None]:
        """Decode every file (use on a chunk: the whole set may not fit in memory)."""
        return [self[i] for i in range(len(self))]

    def stack(self, *, owner: str, positions: Sequence[int] | None = None,
              shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Decode every file (one chunk) into a float32 stack ``(k, H, W)``, or say which fails.

        Parameters
        ----------
        owner : str
            The public function, named in the messages.
        positions : sequence of int, optional
            The files' positions in the whole image set, named in the messages.
        shape : tuple, optional
            The shape every image must have; default the first image's.

        Raises
        ------
        claimladder._core.UsageError
            A file does not decode, is not 2D, or differs in shape; the message
            names its position, its path and the fix.
        """
        from .._core import UsageError

        decoded = []
        for j, path in enumerate(self.paths):
            where = (f"Image {positions[j]} of the ImageFiles passed to {owner} ({path!r})"
                     if positions is not None else f"The image file {path!r} of {owner}")
            image = self[j]
            if image is None:
                raise UsageError(
                    f"{where} cannot be read: {_read_failure(path)}. Fix: repair or replace "
                    "the file, or leave the image out (claimladder.cohort.check_image_files "
                    "lists every unreadable image of a cohort).")
            if image.ndim != 2:
                raise UsageError(
                    f"{where} has shape {image.shape}; {owner} reads 2D images from files. "
                    "Fix: save one 2D image (or one slice of the volume) per file.")
            if shape is None:
                shape = image.shape
            elif image.shape != tuple(shape):
                raise UsageError(
                    f"{where} has shape {image.shape}, unlike the first image's "
                    f"{tuple(shape)}; a model needs equally shaped images. Fix: resample the "
                    "images to one shape first.")
            decoded.append(image)
        return np.stack(decoded).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files)"

    def __reduce__(self):
        return ImageFiles, (self.paths,)


def _read_failure(path: str) -> str:
    """Why a file does not decode (the reader's own message)."""
    if not path:
        return "no file is given for it"
    try:
        read_image(path)
    except ImageReadError as exc:
        return str(exc).rstrip(".")
    return "it did not decode (it may have changed while being read)"
