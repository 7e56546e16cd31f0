"""Inclusion / exclusion flow: every excluded case accounted for, step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._core import StudySpecError
from ._cohort import Cohort
from ._rules import evaluate_rule

__all__ = ["CohortFlow", "apply_flow", "assign_partitions", "PartitionAssignment"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CohortFlow:
    """Result of applying inclusion and exclusion rules.

    Attributes
    ----------
    included : Cohort
        Rows that passed every rule (index reset).
    steps : pandas.DataFrame
        One row per step: ``step, rule, kind, n_images_removed, n_images, n_patients, n_pos``;
        the first row is the source cohort.
    excluded : pandas.DataFrame
        ``image_id`` and the first ``step`` that removed it.
    """

    included: Cohort
    steps: pd.DataFrame
    excluded: pd.DataFrame


def _counts(cohort: Cohort, keep: np.ndarray) -> dict[str, int]:
    table = cohort.table.loc[keep]
    label = table[cohort.roles.label]
    return {
        "n_images": int(keep.sum()),
        "n_patients": int(table[cohort.roles.patient_id].nunique()),
        "n_pos": int((label == cohort.positive_label).sum()),
    }


def apply_flow(
    cohort: Cohort, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> CohortFlow:
    """Apply ``include`` rules (keep rows where true) then ``exclude`` rules (drop where true).

    Rows without a reference label are removed first, as their own counted step.
    A missing value makes an include rule false (the row is excluded, and counted)
    and an exclude rule false (the row stays).

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> t = pd.DataFrame({"image_id": ["a", "b", "c"], "patient_id": ["p", "p", "q"],
    ...                   "label": [1, 0, 0], "age": [40, 12, 70]})
    >>> flow = apply_flow(Cohort(table=t, roles=ColumnRoles()), include=["age >= 18"])
    >>> flow.steps[["step", "n_images_removed", "n_images"]].to_dict("list")
    {'step': ['source cohort', 'include: age >= 18'], 'n_images_removed': [0, 1], 'n_images': [3, 2]}
    """
    keep = np.ones(cohort.n_images, dtype=bool)
    removed_by = np.full(cohort.n_images, "", dtype=object)
    rows = [{"step": "source cohort", "rule": "", "kind": "source", "n_images_removed": 0,
             **_counts(cohort, keep)}]

    def record(step: str, rule: str, kind: str, drop: np.ndarray) -> None:
        newly = keep & drop
        removed_by[newly] = step
        keep[newly] = False
        rows.append({"step": step, "rule": rule, "kind": kind,
                     "n_images_removed": int(newly.sum()), **_counts(cohort, keep)})

    no_label = cohort.table[cohort.roles.label].isna().to_numpy()
    if no_label.any():
        record("no reference label", f"{cohort.roles.label} is missing", "missing", no_label)
    for i, rule in enumerate(include):
        record(f"include: {rule}", rule, "include",
               ~evaluate_rule(cohort.table, rule, context=f"[cohort] include[{i}]"))
    for i, rule in enumerate(exclude):
        record(f"exclude: {rule}", rule, "exclude",
               evaluate_rule(cohort.table, rule, context=f"[cohort] exclude[{i}]"))
    excluded = pd.DataFrame({"image_id": cohort.image_ids[~keep], "step": removed_by[~keep]})
    return CohortFlow(included=cohort.subset(keep), steps=pd.DataFrame(rows), excluded=excluded)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PartitionAssignment:
    """Which included rows form each partition.

    Attributes
    ----------
    masks : dict
        Partition name -> boolean mask over the included cohort's rows.
    kinds : dict
        Partition name -> ``"development"``, ``"calibration"``, ``"internal_test"`` or
        ``"external"``.
    unassigned : numpy.ndarray
        Mask of included rows that belong to no partition.
    """

    masks: Mapping[str, np.ndarray]
    kinds: Mapping[str, str]
    unassigned: np.ndarray

    def names(self, kind: str | None = None) -> list[str]:
        """Partition names, optionally of one kind, in declaration order."""
        return [n for n, k in self.kinds.items() if kind is None or k == kind]

    def overlaps(self) -> pd.DataFrame:
        """Pairs of partitions sharing rows: ``first, second, n_images``."""
        names = list(self.masks)
        rows = []
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                shared = int((self.masks[a] & self.masks[b]).sum())
                if shared:
                    rows.append({"first": a, "second": b, "n_images": shared})
        return pd.DataFrame(rows, columns=["first", "second", "n_images"])


def assign_partitions(
    cohort: Cohort,
    *,
    development: str | None = None,
    calibration: str | None = None,
    internal_test: str | None = None,
    external: Mapping[str, str] | None = None,
) -> PartitionAssignment:
    """Evaluate the partition rules over the included cohort.

    Raises
    ------
    StudySpecError
        When a rule is invalid or a partition name is reused.
    """
    masks: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for name, rule in (("development", development), ("calibration", calibration),
                       ("internal_test", internal_test)):
        if rule is not None:
            masks[name] = evaluate_rule(cohort.table, rule, context=f"[partitions] {name}")
            kinds[name] = name
    for name, rule in (external or {}).items():
        if name in masks:
            raise StudySpecError(
                f"[partitions.external] {name!r} reuses the name of another partition. "
                "Fix: give each external set its own name, e.g. 'site_C'."
            )
        masks[name] = evaluate_rule(cohort.table, rule, context=f"[partitions.external] {name}")
        kinds[name] = "external"
    covered = np.zeros(cohort.n_images, dtype=bool)
    for mask in masks.values():
        covered |= mask
    return PartitionAssignment(masks=masks, kinds=kinds, unassigned=~covered)
