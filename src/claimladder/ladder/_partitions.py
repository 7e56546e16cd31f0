"""Partition membership computed from the cohort alone (before any prediction exists)."""

from __future__ import annotations

from ..cohort import apply_flow, assign_partitions, load_cohort
from .._core import StudySpecError
from ._study import Study

__all__ = ["partition_image_ids"]


def partition_image_ids(study: Study, name: str) -> list[str]:
    """Image ids of one partition after the cohort rules (e.g. to train a model on).

    Raises
    ------
    StudySpecError
        When the partition is not declared.
    """
    source = load_cohort(study.cohort_path, roles=study.roles,
                         positive_label=study.positive_label)
    included = apply_flow(source, include=study.include, exclude=study.exclude).included
    parts = study.partitions
    assignment = assign_partitions(included, development=parts["development"],
                                   calibration=parts["calibration"],
                                   internal_test=parts["internal_test"],
                                   external=parts["external"])
    if name not in assignment.masks:
        raise StudySpecError(
            f"{study.path}: partition {name!r} is not declared. Fix: add it under [partitions]."
        )
    return included.image_ids[assignment.masks[name]].tolist()
