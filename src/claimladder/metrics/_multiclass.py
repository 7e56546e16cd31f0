"""Multiclass one-vs-rest AUROC."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .._core import ConfidenceInterval, Estimate, RngLike, check_option
from ._engine import (
    Statistic,
    bootstrap,
    bootstrap_interval,
    jackknife,
    method_label,
    stack,
    undefined,
)
from ._inputs import BOOTSTRAP_METHODS, as_1d, clusters, options
from ._ranking import auc_jackknife, rank_statistic

__all__ = ["roc_auc_ovr"]


def _combine(aucs: np.ndarray, support: np.ndarray, average: str) -> np.ndarray:
    if average == "macro":
        return aucs.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (aucs * support).sum(axis=1) / support.sum(axis=1)


def roc_auc_ovr(
    y_true: Any,
    y_score: Any,
    *,
    average: Literal["macro", "weighted"] = "macro",
    labels: Any = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Estimate:
    """Multiclass AUROC, one class against the rest, averaged, with a CI.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Class labels.
    y_score : array-like of shape (n, n_classes)
        Score of each class; column ``k`` belongs to ``labels[k]``.
    average : {"macro", "weighted"}, default "macro"
        Unweighted mean of the per-class AUROCs, or mean weighted by class support.
    labels : array-like of shape (n_classes,), optional
        Class of each column; by default the sorted distinct labels of ``y_true``
        (as scikit-learn).
    groups : array-like of shape (n,), optional
        Cluster (patient) ids: the bootstrap resamples clusters.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Percentile or BCa interval; every class is evaluated on the same replicates.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7).

    Returns
    -------
    Estimate
        ``n_pos`` is None (no single positive class). NaN with an
        :class:`UndefinedMetricWarning` when a class has no row.

    Raises
    ------
    ValueError
        NaN inputs, a column count that differs from the number of labels.

    Notes
    -----
    Equals ``sklearn.metrics.roc_auc_score(y_true, y_score, multi_class="ovr",
    average=average)``, without requiring the rows of ``y_score`` to sum to one.
    In a bootstrap replicate the weighted average uses the replicate's class
    support.

    Examples
    --------
    >>> from claimladder.metrics import roc_auc_ovr
    >>> y = [0, 1, 2, 0, 1, 2] * 4
    >>> score = [[.7, .2, .1], [.2, .5, .3], [.1, .3, .6], [.4, .4, .2], [.3, .3, .4],
    ...          [.2, .2, .6]] * 4
    >>> round(roc_auc_ovr(y, score, n_resamples=100, rng=0).value, 4)
    0.9375
    """
    owner = "roc_auc_ovr"
    opts = options(method, BOOTSTRAP_METHODS, n_resamples, confidence_level, owner)
    average = check_option(average, ("macro", "weighted"), param="average", owner=owner)
    y = as_1d(y_true, "y_true", owner)
    scores = np.asarray(y_score.to_numpy() if isinstance(y_score, pd.DataFrame) else y_score)
    if scores.ndim != 2:
        raise ValueError(f"y_score passed to {owner} must be 2-D (n rows, one column per "
                         f"class). Got shape {scores.shape}.")
    try:
        scores = scores.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y_score passed to {owner} must be numeric.") from exc
    bad = ~np.isfinite(scores).all(axis=1)
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"y_score passed to {owner} has {int(bad.sum())} row(s) with NaN or infinite "
            f"scores, at positions {where}. Remove or impute them before computing metrics."
        )
    if scores.shape[0] != y.size:
        raise ValueError(f"y_true has {y.size} rows but y_score has {scores.shape[0]}; pass "
                         "one score row per label.")
    classes = (np.asarray(sorted(pd.unique(y).tolist())) if labels is None
               else as_1d(labels, "labels", owner))
    if classes.size != scores.shape[1]:
        raise ValueError(
            f"y_score has {scores.shape[1]} columns but there are {classes.size} classes "
            f"({classes.tolist()[:10]}); pass labels= naming the class of each column."
        )
    cl = clusters(groups, y.size, owner)
    common = {"confidence_level": opts.confidence_level,
              "method": method_label(opts.method, cl.given), "n": int(y.size),
              "n_clusters": cl.n_clusters if cl.given else None, "n_pos": None}
    name = f"One-vs-rest AUROC ({average})"
    onehot = [np.asarray(y == c, dtype=bool) for c in classes]
    missing = [c for c, pos in zip(classes.tolist(), onehot) if not pos.any() or pos.all()]
    if classes.size < 2 or missing:
        return undefined(reason=f"class(es) {missing} have no row or every row", name=name,
                         **common)
    if cl.given and cl.n_clusters < 2:
        return undefined(reason="the rows come from fewer than 2 clusters", name=name, **common)
    k = classes.size
    aucs = [rank_statistic("roc_auc", pos, scores[:, j], cl.codes, cl.n_clusters)
            for j, pos in enumerate(onehot)]
    cells = np.concatenate([np.full(int(pos.sum()), j) for j, pos in enumerate(onehot)])
    codes = np.concatenate([cl.codes[pos] for pos in onehot])
    support_mt = sparse.coo_array((np.ones(codes.size), (cells, codes)),
                                  shape=(k, cl.n_clusters)).tocsr()
    support = Statistic(mt=sparse.csr_array(support_mt),
                        reduce=lambda s: np.asarray(s.T, dtype=np.float64), n_outputs=k,
                        integer=True)
    inner = stack([*aucs, support])

    def reduce(sums: np.ndarray) -> np.ndarray:
        values = inner.reduce(sums)
        return _combine(values[:, :k], values[:, k:], average)[:, None]

    def jackknife_fn() -> np.ndarray:
        jack_auc = np.column_stack([auc_jackknife(pos, scores[:, j], cl.codes, cl.n_clusters)
                                    for j, pos in enumerate(onehot)])
        per_cluster = support_mt.toarray().T
        return _combine(jack_auc, per_cluster.sum(axis=0) - per_cluster, average)[:, None]

    stat = Statistic(mt=inner.mt, reduce=reduce, n_outputs=1, integer=True,
                     jackknife_fn=jackknife_fn)
    value = float(stat.point()[0])
    replicates = bootstrap(stat, opts.n_resamples, rng)[:, 0]
    jack = [jackknife(stat)[:, 0]] if opts.method == "bca" else []
    interval = bootstrap_interval(replicates, value, method=opts.method,
                                  confidence_level=opts.confidence_level, name=name,
                                  jackknife_samples=jack, stacklevel=3)
    return Estimate(value=value, ci=ConfidenceInterval(low=interval.low, high=interval.high),
                    **common)
