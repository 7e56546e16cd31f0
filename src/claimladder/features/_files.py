"""Hashes of image *files*, streamed in chunks on an executor (bounded memory)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .._core import ImageReadError, check_positive_int
from ..io import read_image
from ..parallel import Checkpoint, Executor, Unit, chunk_ranges, file_digests, run_units
from ._hashing import content_hash, perceptual_hash

__all__ = ["FILE_HASH_COLUMNS", "hash_image_files"]

#: Columns of :func:`hash_image_files`.
FILE_HASH_COLUMNS = ("phash", "content_sha256", "error")


def _hash_chunk(paths: Sequence[str], hash_size: int) -> tuple[np.ndarray, list, list]:
    """One work unit: decode a chunk of files and hash them (only the hashes come back)."""
    images, rows, errors = [], [], [None] * len(paths)
    for k, path in enumerate(paths):
        try:
            image = read_image(path) if path else None
        except ImageReadError as exc:
            errors[k] = str(exc).partition(". ")[0]
            continue
        if image is None:
            errors[k] = "no path given"
        elif image.ndim != 2:
            errors[k] = f"not a 2D image (shape {image.shape})"
        else:
            images.append(image)
            rows.append(k)
    phash = np.zeros(len(paths), dtype=np.uint64)
    sha: list[str | None] = [None] * len(paths)
    if images:
        phash[rows] = perceptual_hash(images, hash_size=hash_size)
        for k, digest in zip(rows, content_hash(images).tolist(), strict=True):
            sha[k] = digest
    return phash, sha, errors


def hash_image_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    hash_size: int = 8,
    chunk_size: int = 256,
    executor: Executor | None = None,
    checkpoint: Checkpoint | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> pd.DataFrame:
    """Perceptual (DCT) and content hashes of image files, without holding the images.

    The files are decoded and hashed in work units of ``chunk_size`` on the
    executor; only 8 bytes of perceptual hash and a 64-digit content digest
    per image come back, so image sets larger than memory are hashed with
    memory bounded by ``chunk_size`` decoded images per worker.

    Parameters
    ----------
    paths : sequence of path-like
        Image files (anything :func:`claimladder.io.read_image` reads);
        ``""`` for a row without a file.
    hash_size : int, default 8
        As for :func:`perceptual_hash`.
    chunk_size : int, default 256
        Files per work unit.
    executor : claimladder.parallel.Executor, optional
        Default: the current executor (in-process unless set).
    checkpoint : claimladder.parallel.Checkpoint, optional
        Reuse units whose files' content did not change.
    progress : callable, optional
        Called with ``(description, done, total)`` per unit.

    Returns
    -------
    pandas.DataFrame
        One row per path: ``phash`` (uint64, 0 where unreadable),
        ``content_sha256`` (str or None), ``error`` (None, or why the file
        was not hashed). Equal to :func:`perceptual_hash` and
        :func:`content_hash` of the decoded images.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from claimladder.features import hash_image_files
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> y, x = np.mgrid[0:64, 0:64]
    >>> Image.fromarray((x * 4 % 256).astype(np.uint8)).save(folder / "a.png")
    >>> table = hash_image_files([folder / "a.png", folder / "missing.png"])
    >>> table["content_sha256"].notna().tolist(), table["error"].isna().tolist()
    ([True, False], [True, False])
    """
    chunk_size = check_positive_int(chunk_size, param="chunk_size", owner="hash_image_files")
    names = [os.fspath(p) if p else "" for p in paths]
    digests = (file_digests(names, executor=executor, checkpoint=checkpoint,
                            chunk_size=chunk_size) if checkpoint is not None else None)
    units = [Unit(key=f"image-hashes[{a}:{b}]", args=(names[a:b], hash_size),
                  content=None if digests is None else [digests[a:b], hash_size])
             for a, b in chunk_ranges(len(names), chunk_size)]
    phash = np.zeros(len(names), dtype=np.uint64)
    sha: list[str | None] = [None] * len(names)
    errors: list[str | None] = [None] * len(names)

    def collect(i: int, result: tuple) -> None:
        a = i * chunk_size
        h, s, e = result
        phash[a:a + len(h)] = h
        sha[a:a + len(h)] = s
        errors[a:a + len(h)] = e

    run_units(_hash_chunk, units, namespace="image-hashes", executor=executor,
              checkpoint=checkpoint, progress=progress, description="Hashing images",
              on_result=collect)
    return pd.DataFrame({"phash": phash, "content_sha256": pd.Series(sha, dtype=object),
                         "error": pd.Series(errors, dtype=object)})
