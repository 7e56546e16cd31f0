"""Load everything a study names, validated and aligned, once per run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cohort import (
    Cohort,
    CohortFlow,
    PartitionAssignment,
    Predictions,
    align_scores,
    load_predictions,
    read_cohort_images,
)
from ..io import dicom_header_index
from .._core import StudySpecError
from ._partitions import study_partitions
from ._study import Study

__all__ = ["StudyData", "load_study_data"]


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

    @property
    def cohort(self) -> Cohort:
        """The included cohort (after the inclusion / exclusion rules)."""
        return self.flow.included

    @property
    def has_images(self) -> bool:
        """Whether the cohort names image files (a ``path`` role)."""
        return self.cohort.has_role("path")

    def images(self) -> tuple[list[np.ndarray | None], pd.DataFrame]:
        """Every included image, read once per run (``None`` where unreadable), and the problems."""
        if "images" not in self.cache:
            total = self.cohort.n_images
            report = None if self.progress is None else (
                lambda done: self.progress("Reading images", done, total))
            self.cache["images"] = read_cohort_images(self.cohort, self.study.images_root,
                                                      on_image=report)
        return self.cache["images"]

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
            self.cache["model"] = None if spec is None else load_model(spec)
        return self.cache["model"]

    def headers(self) -> pd.DataFrame | None:
        """DICOM header index aligned with the included rows, or None without DICOM files.

        Headers only (no pixel data); non-DICOM or unreadable files have an ``error``.
        """
        if "headers" not in self.cache:
            table = None
            if self.has_images:
                root = self.study.images_root
                paths = [root / str(p) for p in self.cohort.column("path").fillna("")]
                table = dicom_header_index(paths, on_error="record")
                if "error" in table.columns and table["error"].notna().all():
                    table = None  # no DICOM file at all: header checks do not apply
            self.cache["headers"] = table
        return self.cache["headers"]


def load_study_data(
    study: Study,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    model: object | None = None,
) -> StudyData:
    """Read the cohort and predictions, apply the cohort rules and the partitions.

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
                     progress=progress, model_object=model)
