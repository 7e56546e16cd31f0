"""Validation of the data arguments of the calibration functions.

Binary inputs go through the same validators as :mod:`claimladder.metrics`
(same messages, same refusal of NaN rows); multiclass probability matrices and
subgroup labels are checked here. Fitting functions also check the partition
they are told the data come from, because a recalibration map, a conformal
quantile or an abstention threshold fitted on a test set makes every result on
that test set optimistic.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import check_option
from ..metrics._inputs import (
    Clusters,
    as_1d,
    as_scores,
    binary_labels,
    check_lengths,
    clusters,
)
from ..splits import is_test_partition

__all__: list[str] = []

#: Label of the rows describing all data in the long tables.
OVERALL = "overall"
#: Tolerance on the row sums of a probability matrix.
ROW_SUM_TOLERANCE = 1e-4
STRATEGIES = ("uniform", "quantile")

_FIX_SUBGROUP = ("Encode a missing attribute as an explicit category (e.g. 'unknown') so that its "
                 "rows are evaluated rather than dropped.")


@dataclass(frozen=True, slots=True)
class BinaryInputs:
    """Validated binary labels, probabilities and cluster codes."""

    y: np.ndarray  # bool
    p: np.ndarray  # float64 in [0, 1]
    clusters: Clusters

    @property
    def n(self) -> int:
        return int(self.y.size)


@dataclass(frozen=True, slots=True)
class MulticlassInputs:
    """Validated class codes ``0..K-1``, probability matrix and cluster codes."""

    y: np.ndarray  # intp codes
    prob: np.ndarray  # (n, K) float64
    classes: tuple[Any, ...]
    clusters: Clusters

    @property
    def n(self) -> int:
        return int(self.y.size)


def binary_inputs(y_true: Any, y_prob: Any, *, groups: Any, pos_label: Any,
                  owner: str) -> BinaryInputs:
    """Labels as booleans, probabilities in [0, 1], cluster codes (rows when no groups)."""
    y = binary_labels(y_true, pos_label, owner)
    p = as_scores(y_prob, "y_prob", owner, probabilities=True)
    n = check_lengths(owner, y_true=y, y_prob=p)
    return BinaryInputs(y=y, p=p, clusters=clusters(groups, n, owner))


def probability_matrix(y_prob: Any, owner: str) -> np.ndarray:
    """A finite (n, K) matrix of probabilities whose rows sum to one."""
    if isinstance(y_prob, pd.DataFrame):
        y_prob = y_prob.to_numpy()
    arr = np.asarray(y_prob)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(
            f"y_prob passed to {owner} must be a matrix of shape (n, n_classes) with at least "
            f"two columns, one probability per class. Got shape {arr.shape}; for binary "
            "problems pass the positive-class probability to the binary functions."
        )
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y_prob passed to {owner} must be numeric; got dtype {arr.dtype}.") \
            from exc
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"y_prob passed to {owner} has {int(bad.sum())} row(s) with NaN or infinite "
            f"values, first at rows {rows}. Remove or impute these rows before evaluating."
        )
    out = ((arr < 0) | (arr > 1)).any(axis=1)
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1) > ROW_SUM_TOLERANCE
    if out.any() or off.any():
        rows = np.flatnonzero(out | off)[:5].tolist()
        raise ValueError(
            f"y_prob passed to {owner} must hold probabilities in [0, 1] whose rows sum to 1; "
            f"{int((out | off).sum())} row(s) do not, first at rows {rows}. Apply a softmax "
            "to logits, or divide each row by its sum."
        )
    return arr


def class_codes(y_true: Any, classes: Any, n_classes: int, owner: str) -> tuple[np.ndarray,
                                                                                  tuple]:
    """Codes ``0..K-1`` of ``y_true`` given the class of each probability column."""
    y = as_1d(y_true, "y_true", owner)
    labels = tuple(range(n_classes)) if classes is None else tuple(np.asarray(classes).tolist())
    if len(labels) != n_classes:
        raise ValueError(
            f"classes passed to {owner} names {len(labels)} classes but y_prob has {n_classes} "
            "columns; pass one class label per column, in column order."
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"classes passed to {owner} has duplicated labels: {list(labels)}.")
    lookup = {label: i for i, label in enumerate(labels)}
    try:
        codes = np.fromiter((lookup.get(v, -1) for v in y.tolist()), dtype=np.intp,
                            count=y.size)
    except TypeError:  # unhashable labels
        codes = np.full(y.size, -1, dtype=np.intp)
    unknown = codes < 0
    if unknown.any():
        shown = sorted({str(v) for v in y[unknown].tolist()})[:5]
        raise ValueError(
            f"y_true passed to {owner} has {int(unknown.sum())} label(s) that are not among "
            f"the classes {list(labels)[:10]} (e.g. {shown}). Pass classes= the label of each "
            "column of y_prob (default 0..n_classes-1)."
        )
    return codes, labels


def multiclass_inputs(y_true: Any, y_prob: Any, *, classes: Any, groups: Any,
                      owner: str) -> MulticlassInputs:
    """Validated multiclass labels, probability matrix and cluster codes."""
    prob = probability_matrix(y_prob, owner)
    y, labels = class_codes(y_true, classes, prob.shape[1], owner)
    n = check_lengths(owner, y_true=y, y_prob=prob)
    return MulticlassInputs(y=y, prob=prob, classes=labels, clusters=clusters(groups, n, owner))


def subgroup_codes(subgroup: Any, n: int, owner: str) -> tuple[np.ndarray, list[Any]]:
    """Integer codes (sorted labels when sortable) of a subgroup array of length ``n``."""
    arr = as_1d(subgroup, "subgroup", owner, fix=_FIX_SUBGROUP)
    if arr.size != n:
        raise ValueError(
            f"subgroup passed to {owner} has {arr.size} values but the data have {n} rows; "
            "pass one subgroup label per row."
        )
    try:
        codes, uniques = pd.factorize(arr, sort=True)
    except TypeError:  # labels of mixed types cannot be sorted
        codes, uniques = pd.factorize(arr, sort=False)
    labels = list(np.asarray(uniques).tolist())
    if OVERALL in labels:
        raise ValueError(
            f"subgroup passed to {owner} contains the label {OVERALL!r}, which the result "
            "tables reserve for all rows together; rename that subgroup."
        )
    return codes.astype(np.intp), labels


def check_strategy(strategy: str, owner: str) -> str:
    return check_option(strategy, STRATEGIES, param="strategy", owner=owner)


def check_n_bins(n_bins: Any, owner: str) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(
            f"The 'n_bins' parameter of {owner} must be an int >= 1. Got {n_bins!r} instead."
        )
    return int(n_bins)


def check_partition(partition: Any, *, sealed_partitions: Collection[str], force: bool,
                    owner: str, stacklevel: int = 3) -> bool:
    """Refuse to fit on a test or sealed partition; return whether the refusal was overridden.

    A name is a test partition when it contains ``"test"`` (any case), starts
    with ``"external"``, or is listed in ``sealed_partitions``.
    """
    if not isinstance(partition, str) or not partition:
        raise ValueError(
            f"The 'partition' parameter of {owner} must be the non-empty name of the partition "
            f"the data come from (e.g. 'calibration'). Got {partition!r} instead."
        )
    if isinstance(sealed_partitions, str):
        sealed_partitions = [sealed_partitions]
    sealed = partition in set(sealed_partitions)
    test = "test" in partition.lower() or is_test_partition(partition)
    if not (sealed or test):
        return False
    kind = "a sealed partition" if sealed else "a test partition"
    if not force:
        raise ValueError(
            f"{owner} refuses to fit on partition {partition!r}: it is {kind}, and anything "
            "fitted on it makes every result on it optimistic. Fit on the calibration (or "
            f"development) partition and apply the fitted object to {partition!r}. Pass "
            "force=True only to reproduce a flawed analysis; the fit record then names the "
            "partition and the tuning-ledger check fails it."
        )
    warnings.warn(
        f"{owner} was forced to fit on {kind} {partition!r}; results on that partition are "
        "optimistic and the tuning-ledger check will fail this fit.", UserWarning,
        stacklevel=stacklevel)
    return True


def n_patients(c: Clusters) -> int | None:
    """Number of clusters with rows, for a FitRecord (None without groups)."""
    if not c.given:
        return None
    present = int(np.count_nonzero(np.bincount(c.codes, minlength=c.n_clusters)))
    return present or None
