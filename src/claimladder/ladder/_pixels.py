"""One streamed pass over the study's images: every per-image summary a pixel check needs.

The leakage checks of rung 1 (hashes, markers, burned-in text), the OOD detector of
rung 4 and the border and site probes of rung 5 need a few numbers per image, not the
pixels. :func:`pixel_summaries` computes them in one pass of work units
(:meth:`StudyData.map_images`), so the whole image set is never in memory: each
worker holds at most ``IMAGE_CHUNK`` decoded images, and the driver keeps about
3.5 KiB per image (168 border features and 30 statistics as float64, two hashes,
the detected regions, marker flags and OCR counts; measured on the demo study).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..features import STATISTICS_COLUMNS, content_hash, image_statistics, perceptual_hash
from ..leakage import marker_flags, ocr_counts, pixel_regions
from ..parallel import Checkpoint, Executor
from ..shortcuts import border_features
from ._data import StudyData, map_cohort_images

__all__ = ["BORDER_FRACTION", "PixelSummaries", "cohort_pixel_summaries", "pixel_summaries"]

#: Border strip width of the border-only probe (and its features).
BORDER_FRACTION = 0.1
_N_BORDER = 168


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PixelSummaries:
    """Per-image summaries of the included images, aligned with the cohort rows.

    Attributes
    ----------
    shapes : list of tuple or None
        Decoded shape (``None`` where unreadable).
    phash : numpy.ndarray of uint64
        DCT perceptual hash (0 where unreadable or not 2D).
    digests : list of str or None
        SHA-256 of the decoded pixels (``None`` where unreadable or not 2D).
    regions : list
        :func:`claimladder.leakage.pixel_regions` of each image.
    markers : pandas.DataFrame
        :func:`claimladder.leakage.marker_flags`.
    ocr : pandas.DataFrame or None
        :func:`claimladder.leakage.ocr_counts`, None when OCR was not run.
    statistics : pandas.DataFrame
        :func:`claimladder.features.image_statistics` (NaN where unreadable or not 2D).
    border : numpy.ndarray of shape (N, 168)
        :func:`claimladder.shortcuts.border_features` (NaN where unreadable or not 2D).
    problems : pandas.DataFrame
        ``image_id, path, problem`` of the unreadable images.
    """

    shapes: list[tuple[int, ...] | None]
    phash: np.ndarray
    digests: list[str | None]
    regions: list[Any]
    markers: pd.DataFrame
    ocr: pd.DataFrame | None
    statistics: pd.DataFrame
    border: np.ndarray
    problems: pd.DataFrame

    @property
    def is_2d(self) -> np.ndarray:
        """Rows whose image decoded as one 2D array."""
        return np.array([s is not None and len(s) == 2 for s in self.shapes], dtype=bool)

    def common_shape_rows(self, mask: np.ndarray) -> np.ndarray:
        """Rows of ``mask`` whose image is 2D with the most common such shape among them."""
        rows = np.flatnonzero(mask)
        shapes = [self.shapes[i] for i in rows]
        ok = [s for s in shapes if s is not None and len(s) == 2]
        if not ok:
            return rows[:0]
        common = max(set(ok), key=ok.count)
        return rows[[s == common for s in shapes]]


def summarise_images(images: list[np.ndarray | None], *, ocr: bool,
                     border_fraction: float) -> dict[str, Any]:
    """The summaries of one chunk of decoded images (a work unit of :func:`pixel_summaries`)."""
    n = len(images)
    flat = [im is not None and np.ndim(im) == 2 for im in images]
    rows = [i for i in range(n) if flat[i]]
    picked = [images[i] for i in rows]
    phash = np.zeros(n, dtype=np.uint64)
    digests: list[str | None] = [None] * n
    statistics = pd.DataFrame(np.nan, index=range(n), columns=list(STATISTICS_COLUMNS))
    border = np.full((n, _N_BORDER), np.nan)
    if picked:
        phash[rows] = perceptual_hash(picked)
        for i, digest in zip(rows, content_hash(picked)):
            digests[i] = str(digest)
        statistics.iloc[rows] = image_statistics(picked).to_numpy()
        border[rows] = border_features(picked, border_fraction=border_fraction)
    regions = pixel_regions(images)
    return {
        "shapes": [None if im is None else tuple(np.shape(im)) for im in images],
        "phash": phash, "digests": digests, "regions": regions,
        "markers": marker_flags(images, regions),
        "ocr": ocr_counts(images, regions) if ocr else None,
        "statistics": statistics, "border": border,
    }


def pixel_summaries(data: StudyData) -> PixelSummaries:
    """The :class:`PixelSummaries` of the study's included images, computed once per run."""
    if "pixel_summaries" not in data.cache:
        data.cache["pixel_summaries"] = cohort_pixel_summaries(
            data.cohort, data.study.images_root, executor=data.executor,
            checkpoint=data.checkpoint,
            file_digests=data._file_digests() if data.checkpoint is not None else None,
            progress=data.progress)
    return data.cache["pixel_summaries"]


def cohort_pixel_summaries(
    cohort: Cohort,
    images_root: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    checkpoint: Checkpoint | None = None,
    file_digests: list[str | None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PixelSummaries:
    """The :class:`PixelSummaries` of a cohort's images in one streamed pass.

    OCR runs in the same pass when Tesseract is available.
    """
    from ..features import ocr_available

    ocr = bool(ocr_available()[0])
    parts, problems = map_cohort_images(
        cohort, images_root, summarise_images, namespace="pixel_summaries",
        params={"ocr": ocr, "border_fraction": BORDER_FRACTION}, executor=executor,
        checkpoint=checkpoint, file_digests=file_digests, progress=progress,
        description="Summarising images")
    return PixelSummaries(
        shapes=[s for p in parts for s in p["shapes"]],
        phash=(np.concatenate([p["phash"] for p in parts]) if parts
               else np.zeros(0, dtype=np.uint64)),
        digests=[d for p in parts for d in p["digests"]],
        regions=[r for p in parts for r in p["regions"]],
        markers=_concat([p["markers"] for p in parts]),
        ocr=_concat([p["ocr"] for p in parts]) if ocr else None,
        statistics=_concat([p["statistics"] for p in parts]),
        border=np.vstack([p["border"] for p in parts]) if parts else np.zeros((0, _N_BORDER)),
        problems=problems,
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
