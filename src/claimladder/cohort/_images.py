"""Read the cohort's image files once; list the ones that fail."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .._core import ImageReadError
from ..io import read_image
from ._cohort import Cohort

__all__ = ["read_cohort_images", "check_image_files"]


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
