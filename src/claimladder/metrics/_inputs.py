"""Validation of the data arguments shared by every metric.

Metrics never drop rows silently: a NaN label, score or cluster id is an error
that names how many there are and where, because the ladder validates and
counts exclusions earlier (rung 0) and a row that vanishes here would be an
unrecorded exclusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import check_option, check_positive_int, check_probability

__all__: list[str] = []

_MAX_POSITIONS = 5

#: CI methods valid for every metric.
BOOTSTRAP_METHODS = ("bootstrap", "bca")
#: Analytic intervals for proportions.
PROPORTION_METHODS = ("wilson", "clopper-pearson", "wilson-cluster")


def _positions(mask: np.ndarray) -> str:
    where = np.flatnonzero(mask)
    shown = ", ".join(str(int(i)) for i in where[:_MAX_POSITIONS])
    more = ", ..." if where.size > _MAX_POSITIONS else ""
    return f"[{shown}{more}]"


def _missing_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fc":
        return np.isnan(values)
    if values.dtype.kind in "biuUSb":
        return np.zeros(values.shape, dtype=bool)
    return np.asarray(pd.isna(values), dtype=bool)


_FIX_MISSING = ("Metrics never drop rows silently: remove or impute these rows before computing "
                "metrics (the cohort step records exclusions).")


def as_1d(values: Any, name: str, owner: str, *, fix: str = _FIX_MISSING) -> np.ndarray:
    """Convert to a 1-D array and reject missing values with their count and positions."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} passed to {owner} must be one-dimensional (one value per row). "
            f"Got an array of shape {arr.shape}; pass a 1-D array, list or pandas Series."
        )
    missing = _missing_mask(arr)
    if missing.any():
        raise ValueError(
            f"{name} passed to {owner} contains {int(missing.sum())} NaN/missing value(s) "
            f"at positions {_positions(missing)}. {fix}"
        )
    return arr


def check_lengths(owner: str, **arrays: np.ndarray) -> int:
    """All arrays have the same length; return it."""
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(
            f"The data arguments of {owner} have different lengths ({shown}); "
            "pass one value per row for each of them."
        )
    return next(iter(lengths.values()))


def as_scores(values: Any, name: str, owner: str, *, probabilities: bool = False) -> np.ndarray:
    """Float scores: finite, and in [0, 1] when ``probabilities``."""
    arr = as_1d(values, name, owner)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} passed to {owner} must be numeric scores; got dtype {arr.dtype}. "
            "Pass the model's continuous output (probability or logit)."
        ) from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} passed to {owner} contains {int(bad.sum())} infinite value(s) at "
            f"positions {_positions(bad)}. Pass finite scores (e.g. clip logits)."
        )
    if probabilities:
        out = (arr < 0) | (arr > 1)
        if out.any():
            raise ValueError(
                f"{name} passed to {owner} must be probabilities in [0, 1]; "
                f"{int(out.sum())} value(s) lie outside, at positions {_positions(out)}. "
                "Pass calibrated probabilities (e.g. apply a sigmoid to logits)."
            )
    return arr


def binary_labels(y_true: Any, pos_label: Any, owner: str) -> np.ndarray:
    """Boolean array ``y_true == pos_label`` after checking that the labels are binary."""
    arr = as_1d(y_true, "y_true", owner)
    labels = pd.unique(arr)
    if len(labels) > 2:
        shown = sorted(labels.tolist(), key=str)[:10]
        raise ValueError(
            f"y_true passed to {owner} has {len(labels)} distinct labels {shown}; binary metrics "
            "need two. For multiclass AUROC use roc_auc_ovr; to score one class against the "
            "rest pass y_true == label."
        )
    if len(labels) == 2 and not any(_equal(v, pos_label) for v in labels):
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the labels in y_true passed to {owner} "
            f"({sorted(labels.tolist(), key=str)}). Pass pos_label= the positive class."
        )
    return np.asarray(arr == pos_label, dtype=bool)


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def predicted_labels(y_pred: Any, pos_label: Any, owner: str) -> np.ndarray:
    """Boolean array ``y_pred == pos_label``."""
    arr = as_1d(y_pred, "y_pred", owner)
    return np.asarray(arr == pos_label, dtype=bool)


@dataclass(frozen=True, slots=True)
class Clusters:
    """Integer cluster codes ``0..n_clusters-1`` (sorted cluster ids) for each row."""

    codes: np.ndarray
    n_clusters: int
    given: bool

    @property
    def max_size(self) -> int:
        if self.codes.size == 0:
            return 0
        return int(np.bincount(self.codes, minlength=self.n_clusters).max())


def clusters(groups: Any, n: int, owner: str) -> Clusters:
    """Cluster codes from ``groups`` (patient ids); every row its own cluster when None."""
    if groups is None:
        return Clusters(codes=np.arange(n, dtype=np.intp), n_clusters=n, given=False)
    arr = as_1d(groups, "groups", owner)
    if len(arr) != n:
        raise ValueError(
            f"groups passed to {owner} has {len(arr)} values but the data have {n} rows; "
            "pass one cluster (patient) id per row."
        )
    try:
        codes, uniques = pd.factorize(arr, sort=True)
    except TypeError:  # ids of mixed types cannot be sorted; codes then follow first appearance
        codes, uniques = pd.factorize(arr, sort=False)
    return Clusters(codes=codes.astype(np.intp), n_clusters=len(uniques), given=True)


@dataclass(frozen=True, slots=True)
class Options:
    """Validated statistics options."""

    method: str
    n_resamples: int
    confidence_level: float


def options(
    method: str,
    methods: Sequence[str],
    n_resamples: int,
    confidence_level: float,
    owner: str,
) -> Options:
    """Validate the statistics keywords shared by every metric."""
    method = check_option(method, methods, param="method", owner=owner)
    n_resamples = check_positive_int(n_resamples, param="n_resamples", owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    return Options(method=method, n_resamples=n_resamples, confidence_level=confidence_level)


def check_target(value: Any, param: str, owner: str) -> float:
    """A target rate in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (
        0 < value <= 1
    ):
        raise ValueError(
            f"The {param!r} parameter of {owner} must be a float in (0, 1]. "
            f"Got {value!r} instead."
        )
    return float(value)
