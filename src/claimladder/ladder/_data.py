"""Load everything a study names, validated and aligned, once per run."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._core import StudySpecError
from ..cohort import (
    Cohort,
    CohortFlow,
    ImageFiles,
    PartitionAssignment,
    Predictions,
    align_scores,
    load_predictions,
    read_cohort_images,
)
from ..io import dicom_header_index
from ..parallel import (
    Checkpoint,
    Executor,
    Unit,
    chunk_ranges,
    code_version,
    file_digests,
    run_units,
)
from ._partitions import study_partitions
from ._study import Study

__all__ = ["IMAGE_CHUNK", "StudyData", "load_study_data", "map_cohort_images"]

#: Images per work unit: a unit holds at most this many decoded images in memory.
IMAGE_CHUNK = 64


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StudyData:
    """The inputs of one ladder run.

    Attributes
    ----------
    study : Study
    source : Cohort
        The cohort as read, before any rule.
    flow : CohortFlow
        Inclusion / exclusion steps; ``flow.included`` is the analysed cohort.
    partitions : PartitionAssignment
        Masks over the included cohort's rows.
    predictions : Predictions or None
    scores : numpy.ndarray or None
        Candidate scores aligned with ``flow.included`` rows.
    model : str or None
        Name of the candidate model.
    """

    study: Study
    source: Cohort
    flow: CohortFlow
    partitions: PartitionAssignment
    predictions: Predictions | None
    scores: np.ndarray | None
    model: str | None
    cache: dict = field(default_factory=dict, repr=False)
    #: A model object for fresh inference (overrides [model] adapter), e.g. the demo model.
    model_object: object | None = field(default=None, repr=False)
    #: Called with (description, done, total) during long image-level steps.
    progress: Callable[[str, int, int], None] | None = field(default=None, repr=False)
    #: Where image-level work units run (default: in-process).
    executor: Executor | None = field(default=None, repr=False)
    #: Completed work units on disk (``OUT/.claimladder-cache``): reruns reuse them.
    checkpoint: Checkpoint | None = field(default=None, repr=False)

    @property
    def cohort(self) -> Cohort:
        """The included cohort (after the inclusion / exclusion rules)."""
        return self.flow.included

    @property
    def has_images(self) -> bool:
        """Whether the cohort names image files (a ``path`` role)."""
        return self.cohort.has_role("path")

    def _image_units(self, namespace: str, args: Callable[[int, int], tuple]) -> list[Unit]:
        """Work units of ``IMAGE_CHUNK`` rows, keyed by the content of their files."""
        return chunk_units(self.cohort, namespace, args,
                           self._file_digests() if self.checkpoint is not None else None)

    def _paths(self) -> list[str]:
        """The ``path`` value of every included row ('' where missing)."""
        return path_values(self.cohort)

    def _file_digests(self) -> list[str | None]:
        """SHA-256 of every included image file (the content the checkpoint is keyed by)."""
        if "file_digests" not in self.cache:
            root = self.study.images_root
            self.cache["file_digests"] = file_digests(
                [str(root / p) if p else "" for p in self._paths()],
                executor=self.executor, checkpoint=self.checkpoint, progress=self.progress)
        return self.cache["file_digests"]

    def image_files(self, rows: np.ndarray | None = None) -> ImageFiles:
        """The included rows' image files (all, or those at ``rows``), decoded only on access."""
        root = self.study.images_root
        files = ImageFiles([str(root / p) if p else "" for p in self._paths()])
        return files if rows is None else files.take(rows)

    def map_images(self, fn: Callable[..., Any], *, namespace: str,
                   params: dict[str, Any] | None = None,
                   description: str = "Reading images") -> tuple[list[Any], pd.DataFrame]:
        """``fn(images, **params)`` on every chunk of ``IMAGE_CHUNK`` included images.

        Each work unit decodes its own chunk (``None`` where unreadable) on the
        run's executor, so memory is bounded by ``IMAGE_CHUNK`` decoded images per
        worker plus what ``fn`` returns. With a checkpoint, a rerun reuses the
        units whose files, ``fn`` code and ``params`` are unchanged.

        Parameters
        ----------
        fn : callable
            A module-level function of a list of decoded images (and ``params``).
        namespace : str
            Names the units in the checkpoint and in progress messages.
        params : dict, optional
            Keyword arguments of ``fn`` (JSON-like: part of the checkpoint key).
        description : str
            Progress text.

        Returns
        -------
        results : list
            ``fn``'s result for each chunk, in row order.
        problems : pandas.DataFrame
            ``image_id, path, problem`` for every unreadable image, in row order.
        """
        return map_cohort_images(
            self.cohort, self.study.images_root, fn, namespace=namespace, params=params,
            executor=self.executor, checkpoint=self.checkpoint,
            file_digests=self._file_digests() if self.checkpoint is not None else None,
            progress=self.progress, description=description)

    def model_adapter(self):
        """The model for fresh inference (robustness, masking), or None when none is declared.

        A file path in ``[model] adapter`` is resolved against the study folder; any
        other value is ``package.module:function``.
        """
        if "model" not in self.cache:
            from ..models import load_model

            spec = self.model_object
            if spec is None:
                declared = self.study.spec["model"].get("adapter")
                if declared is not None:
                    candidate = self.study.resolve(declared)
                    spec = str(candidate) if candidate.exists() else declared
            adapter = None if spec is None else load_model(spec)
            if adapter is not None and self.checkpoint is not None:
                adapter = _with_disk_cache(spec, adapter, self.checkpoint)
            self.cache["model"] = adapter
        return self.cache["model"]

    def headers(self) -> pd.DataFrame | None:
        """DICOM header index aligned with the included rows, or None without DICOM files.

        Headers only (no pixel data); non-DICOM or unreadable files have an ``error``.
        """
        if "headers" not in self.cache:
            table = None
            if self.has_images:
                root = self.study.images_root
                paths = [str(root / str(p)) for p in self.cohort.column("path").fillna("")]
                units = self._image_units("headers", lambda a, b: (paths[a:b],))
                parts = run_units(_header_unit, units, namespace="headers",
                                  executor=self.executor, checkpoint=self.checkpoint,
                                  progress=self.progress, description="Reading DICOM headers")
                table = pd.concat(parts, ignore_index=True)
                if "error" in table.columns and table["error"].notna().all():
                    table = None  # no DICOM file at all: header checks do not apply
            self.cache["headers"] = table
        return self.cache["headers"]


def _with_disk_cache(spec: object, adapter, checkpoint: Checkpoint):
    """The adapter with its predictions cached in the checkpoint folder.

    The cache namespace adds a digest of the pickled model object to the
    adapter's fingerprint (which for a callable covers only its code), so a
    retrained model never reads another model's predictions. A model object
    that cannot be pickled keeps the in-memory cache.
    """
    import hashlib
    import pickle

    from ..models import PredictionCache, load_model

    if isinstance(spec, str):
        token = ""  # a file (digested in the fingerprint) or an importable function
    else:
        try:
            token = hashlib.sha256(pickle.dumps(spec, protocol=5)).hexdigest()[:32]
        except Exception:  # noqa: BLE001 - unpicklable models are not cached on disk
            return adapter
    namespace = f"{adapter.name}|{adapter.fingerprint}|{adapter.activation}|{token}"
    cache = PredictionCache(checkpoint.directory / "predictions", namespace=namespace)
    return load_model(spec, cache=cache)


def map_cohort_images(
    cohort: Cohort,
    images_root: str | os.PathLike[str],
    fn: Callable[..., Any],
    *,
    namespace: str,
    params: dict[str, Any] | None = None,
    executor: Executor | None = None,
    checkpoint: Checkpoint | None = None,
    file_digests: list[str | None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    description: str = "Reading images",
) -> tuple[list[Any], pd.DataFrame]:
    """``fn(images, **params)`` on every chunk of ``IMAGE_CHUNK`` images of a cohort.

    See :meth:`StudyData.map_images`; ``file_digests`` (one per row) key the
    checkpoint, which is used only when they are given.
    """
    params = dict(params or {})
    root = str(images_root)
    rows = np.arange(cohort.n_images)
    ids = cohort.image_ids
    units = chunk_units(cohort, namespace,
                        lambda a, b: (fn, cohort.subset((rows >= a) & (rows < b)), root, params),
                        file_digests if checkpoint is not None else None,
                        extra=[code_version(fn), params])
    results = run_units(_map_chunk, units, namespace=namespace, executor=executor,
                        checkpoint=checkpoint, progress=progress, description=description)
    order = {image_id: k for k, image_id in enumerate(ids)}
    found = [problems for _, problems in results]
    table = (pd.concat(found, ignore_index=True) if found else
             pd.DataFrame(columns=["image_id", "path", "problem"]))
    table = table.iloc[np.argsort([order[i] for i in table["image_id"]],
                                  kind="stable")].reset_index(drop=True)
    return [value for value, _ in results], table


def path_values(cohort: Cohort) -> list[str]:
    """The ``path`` value of every row ('' where missing)."""
    return ["" if p is None or (isinstance(p, float) and np.isnan(p)) else str(p)
            for p in cohort.column("path").tolist()]


def chunk_units(cohort: Cohort, namespace: str, args: Callable[[int, int], tuple],
                file_digests: list[str | None] | None, *, extra: list[Any] | None = None
                ) -> list[Unit]:
    """Work units of ``IMAGE_CHUNK`` rows: ``args(start, stop)`` each, checkpointed by the
    rows' ids, paths and file digests (plus ``extra``) when the digests are given."""
    ids, paths = cohort.image_ids, path_values(cohort)
    return [Unit(key=f"{namespace}[{a}:{b}]", args=args(a, b),
                 content=None if file_digests is None else
                 [*(extra or []), ids[a:b].tolist(), paths[a:b], file_digests[a:b]])
            for a, b in chunk_ranges(cohort.n_images, IMAGE_CHUNK)]


def _map_chunk(fn: Callable[..., Any], subset: Cohort, root: str,
               params: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    """One work unit of :meth:`StudyData.map_images`: decode a chunk, apply ``fn``, drop pixels."""
    images, problems = read_cohort_images(subset, root)
    # Fresh copies: arrays at other memory alignments change the last bits of SIMD reductions.
    images = [None if im is None else np.array(im, copy=True) for im in images]
    return fn(images, **params), problems


def _header_unit(paths: list[str]) -> pd.DataFrame:
    """DICOM headers of one chunk of files (a work unit)."""
    return dicom_header_index(paths, on_error="record")


def load_study_data(
    study: Study,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    model: object | None = None,
    executor: Executor | None = None,
    checkpoint: Checkpoint | None = None,
) -> StudyData:
    """Read the cohort and predictions, apply the cohort rules and the partitions.

    ``executor`` runs the image-level work units (default in-process);
    ``checkpoint`` keeps their results so that a rerun reuses them.

    Raises
    ------
    TableReadError, CohortSchemaError, AlignmentError, StudySpecError
        For missing files, bad columns, unmatched ids or invalid rules.
    """
    source, flow, partitions = study_partitions(study)
    predictions = scores = model_name = None
    if study.predictions_path is not None:
        cols = study.prediction_columns
        predictions = load_predictions(study.predictions_path, image_id=cols["image_id"],
                                       score=cols["score"], model=cols["model"])
        if len(predictions.score_columns) != 1:
            raise StudySpecError(
                f"{study.path}: the predictions have {len(predictions.score_columns)} score "
                "columns, but this version verifies binary claims. Fix: give one column with "
                "the probability of the positive class as [data.prediction_columns] score."
            )
        model_name = study.candidate_model or predictions.models[0]
        scores = align_scores(flow.included, predictions, model=study.candidate_model,
                              source=source)
    return StudyData(study=study, source=source, flow=flow, partitions=partitions,
                     predictions=predictions, scores=scores, model=model_name,
                     progress=progress, model_object=model, executor=executor,
                     checkpoint=checkpoint)
