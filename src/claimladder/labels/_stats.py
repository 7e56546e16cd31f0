"""Estimates with cluster-bootstrap intervals for statistics built on the metrics engine.

Every agreement statistic here is a function of a few sums over items that are
linear in the item (or patient) weights of a bootstrap replicate, so it is
expressed as a :class:`claimladder.metrics._engine.Statistic` and resampled by
the same engine as the metrics (private helpers imported on purpose: one
bootstrap implementation for the whole package).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._core import (
    ConfidenceInterval,
    Estimate,
    RngLike,
    SmallSampleWarning,
    check_option,
    check_positive_int,
    check_probability,
)
from ..metrics._engine import (
    Statistic,
    bootstrap,
    bootstrap_interval,
    jackknife,
    method_label,
    undefined,
)

__all__: list[str] = []

#: CI methods of the agreement statistics.
METHODS = ("bootstrap", "bca")


@dataclass(frozen=True, slots=True)
class Options:
    """Validated statistics keywords."""

    method: str
    n_resamples: int
    confidence_level: float


def options(method: str, n_resamples: int, confidence_level: float, owner: str) -> Options:
    """Validate ``method``, ``n_resamples`` and ``confidence_level`` of ``owner``."""
    return Options(
        method=check_option(method, METHODS, param="method", owner=owner),
        n_resamples=check_positive_int(n_resamples, param="n_resamples", owner=owner),
        confidence_level=check_probability(confidence_level, param="confidence_level",
                                           owner=owner),
    )


@dataclass(frozen=True, slots=True)
class Clusters:
    """Cluster code of each item (0..n_clusters-1) and whether groups were given."""

    codes: np.ndarray
    n_clusters: int
    given: bool

    def present(self) -> int:
        return int(np.unique(self.codes).size)

    def subset(self, rows: np.ndarray) -> Clusters:
        """The clusters of ``rows`` only, recoded 0..k-1, so the bootstrap draws among them."""
        kept, codes = np.unique(self.codes[rows], return_inverse=True)
        return Clusters(codes=codes.astype(np.intp).ravel(), n_clusters=int(kept.size),
                        given=self.given)


def clusters(groups: Any, n: int, owner: str) -> Clusters:
    """Cluster codes from ``groups`` (one id per item); every item its own cluster when None."""
    if groups is None:
        return Clusters(codes=np.arange(n, dtype=np.intp), n_clusters=n, given=False)
    arr = groups.to_numpy() if isinstance(groups, (pd.Series, pd.Index)) else np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"groups passed to {owner} must hold one cluster (patient) id per item: {n} "
            f"values. Got shape {arr.shape} instead."
        )
    missing = np.asarray(pd.isna(arr), dtype=bool)
    if missing.any():
        first = ", ".join(str(int(i)) for i in np.flatnonzero(missing)[:5])
        raise ValueError(
            f"groups passed to {owner} contains {int(missing.sum())} missing id(s) at "
            f"positions [{first}]. Give every item its patient id."
        )
    try:
        codes, uniques = pd.factorize(arr, sort=True)
    except TypeError:  # mixed id types cannot be sorted; codes then follow first appearance
        codes, uniques = pd.factorize(arr, sort=False)
    return Clusters(codes=codes.astype(np.intp), n_clusters=len(uniques), given=True)


def feature_matrix(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_features: int,
                   n_clusters: int) -> sparse.csr_array:
    """Sparse (features x clusters) sums, duplicates added."""
    mt = sparse.coo_array((np.asarray(values, dtype=np.float64),
                           (np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp))),
                          shape=(n_features, n_clusters)).tocsr()
    mt.sum_duplicates()
    return sparse.csr_array(mt)


def estimate(
    stat: Statistic,
    *,
    name: str,
    undefined_reason: str,
    opts: Options,
    rng: RngLike,
    n: int,
    cl: Clusters,
    n_pos: int | None = None,
    stacklevel: int = 5,
) -> tuple[Estimate, np.ndarray | None]:
    """Point value and bootstrap interval of a one-output statistic, and its replicates.

    A NaN point value gives a NaN estimate with an :class:`UndefinedMetricWarning`
    that quotes ``undefined_reason``. With fewer than two clusters the value is
    kept and the interval is NaN, with a :class:`SmallSampleWarning`.
    """
    label = method_label(opts.method, cl.given)
    n_clusters = cl.present() if cl.given else None
    common = {"confidence_level": opts.confidence_level, "method": label, "n": n,
              "n_clusters": n_clusters, "n_pos": n_pos}
    if n == 0:
        return undefined(reason="there are no items with at least two ratings", name=name,
                         stacklevel=stacklevel, **common), None
    value = float(stat.point()[0])
    if math.isnan(value):
        return undefined(reason=undefined_reason, name=name, stacklevel=stacklevel,
                         **common), None
    if cl.present() < 2:
        warnings.warn(f"{name}: the items come from a single cluster; at least 2 are needed "
                      "to estimate uncertainty, so the interval is NaN.", SmallSampleWarning,
                      stacklevel=stacklevel)
        return Estimate(value=value, ci=ConfidenceInterval(low=math.nan, high=math.nan),
                        **common), None
    replicates = bootstrap(stat, opts.n_resamples, rng)[:, 0]
    jack = [jackknife(stat)[:, 0]] if opts.method == "bca" else []
    iv = bootstrap_interval(replicates, value, method=opts.method,
                            confidence_level=opts.confidence_level, name=name,
                            jackknife_samples=jack, stacklevel=stacklevel, warn=False)
    if iv.too_many_undefined:
        warnings.warn(
            f"{name}: {iv.n_undefined} of {iv.n_total} bootstrap replicates were undefined "
            "(the drawn items were all rated in one category) and were dropped, so the "
            "interval is conditional on variation being drawn and may be too narrow.",
            SmallSampleWarning, stacklevel=stacklevel)
    if iv.bca_failed:
        warnings.warn(f"{name}: the BCa interval is undefined because every bootstrap "
                      "replicate lies on one side of the estimate; use method='bootstrap'.",
                      SmallSampleWarning, stacklevel=stacklevel)
    return Estimate(value=value, ci=ConfidenceInterval(low=iv.low, high=iv.high),
                    **common), replicates


def mean_statistic(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> Statistic:
    """Resampleable mean of per-item values (NaN when no item is drawn)."""
    n = values.size
    rows = np.concatenate([np.zeros(n, np.intp), np.ones(n, np.intp)])
    mt = feature_matrix(rows, np.concatenate([codes, codes]),
                        np.concatenate([values, np.ones(n)]), 2, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sums[1] > 0, sums[0] / np.where(sums[1] > 0, sums[1], 1),
                            np.nan)[:, None]

    integer = bool(np.all(values == np.round(values)))
    return Statistic(mt=mt, reduce=reduce, n_outputs=1, integer=integer)
