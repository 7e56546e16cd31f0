"""Check that every included image file exists and decodes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .._core import ImageReadError
from ..io import read_image
from ._cohort import Cohort

__all__ = ["check_image_files"]


def check_image_files(
    cohort: Cohort,
    images_root: str | os.PathLike[str],
    *,
    on_image: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Try to read every image of the cohort; list the ones that fail.

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
    pandas.DataFrame
        One row per unreadable image: ``image_id, path, problem`` (the first
        sentence of the reader's message). Empty when every image decodes.
        A missing path value counts as a problem too.
    """
    root = Path(images_root)
    problems = []
    ids = cohort.image_ids
    for i, value in enumerate(cohort.column("path").tolist()):
        if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value):
            problems.append({"image_id": ids[i], "path": "", "problem": "no path given"})
        else:
            try:
                read_image(root / str(value))
            except ImageReadError as exc:
                problems.append({"image_id": ids[i], "path": str(value),
                                 "problem": _first_sentence(str(exc), root)})
        if on_image is not None:
            on_image(i + 1)
    return pd.DataFrame(problems, columns=["image_id", "path", "problem"])


def _first_sentence(message: str, root: Path) -> str:
    # Reader messages start with the absolute path; the table already has the relative one.
    text = message.replace(str(root) + os.sep, "")
    head, _, _ = text.partition(". ")
    return head if len(head) < 200 else head[:197] + "..."
