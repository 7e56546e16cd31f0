"""The cohort after its rules and the study's partitions, computed from the cohort alone."""

from __future__ import annotations

from ..cohort import Cohort, CohortFlow, PartitionAssignment, apply_flow, assign_partitions
from ..cohort import load_cohort
from .._core import StudySpecError, did_you_mean
from ._study import Study

__all__ = ["study_partitions", "partition_image_ids"]


def study_partitions(study: Study) -> tuple[Cohort, CohortFlow, PartitionAssignment]:
    """Read the cohort, apply the inclusion/exclusion rules and the partition rules.

    Returns
    -------
    source : Cohort
        The cohort as read.
    flow : CohortFlow
        Counted steps; ``flow.included`` is the analysed cohort.
    partitions : PartitionAssignment
        Masks over ``flow.included``.
    """
    source = load_cohort(study.cohort_path, roles=study.roles,
                         positive_label=study.positive_label)
    flow = apply_flow(source, include=study.include, exclude=study.exclude)
    parts = study.partitions
    partitions = assign_partitions(flow.included, development=parts["development"],
                                   calibration=parts["calibration"],
                                   internal_test=parts["internal_test"],
                                   external=parts["external"])
    return source, flow, partitions


def partition_image_ids(study: Study, name: str) -> list[str]:
    """Image ids of one partition after the cohort rules (e.g. to train a model on).

    Raises
    ------
    StudySpecError
        When the partition is not declared.
    """
    _, flow, partitions = study_partitions(study)
    if name not in partitions.masks:
        raise StudySpecError(
            f"{study.path}: partition {name!r} is not declared."
            f"{did_you_mean(name, list(partitions.masks))} Fix: add it under [partitions]."
        )
    return flow.included.image_ids[partitions.masks[name]].tolist()
