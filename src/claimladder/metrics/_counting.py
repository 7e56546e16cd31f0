"""Statistics that are functions of weighted row counts or sums.

Threshold metrics are functions of the weighted confusion counts
``(TP, FP, FN, TN)``; Brier score and log loss are weighted means. Both are
linear in the cluster counts, so a bootstrap replicate is one product of the
count vector with a small per-cluster table, and the leave-one-cluster-out
jackknife subtracts the cluster's row of that table.

Proportion intervals (Wilson, Clopper-Pearson and the design-effect adjusted
Wilson interval for clustered data) live here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import sparse
from scipy.special import ndtri
from scipy.stats import beta

from ._engine import Statistic

__all__: list[str] = []

TP, FP, FN, TN = range(4)

ConfusionReduce = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _balanced(tp, fp, fn, tn):
    return 0.5 * (_ratio(tp, tp + fn) + _ratio(tn, tn + fp))


#: name -> f(tp, fp, fn, tn), NaN where undefined.
CONFUSION_METRICS: dict[str, ConfusionReduce] = {
    "sensitivity": lambda tp, fp, fn, tn: _ratio(tp, tp + fn),
    "specificity": lambda tp, fp, fn, tn: _ratio(tn, tn + fp),
    "ppv": lambda tp, fp, fn, tn: _ratio(tp, tp + fp),
    "npv": lambda tp, fp, fn, tn: _ratio(tn, tn + fn),
    "accuracy": lambda tp, fp, fn, tn: _ratio(tp + tn, tp + fp + fn + tn),
    "f1": lambda tp, fp, fn, tn: _ratio(2 * tp, 2 * tp + fp + fn),
    "balanced_accuracy": _balanced,
}

#: Proportion metrics: (success cells, trial cells) of the confusion table.
PROPORTIONS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "sensitivity": ((TP,), (TP, FN)),
    "specificity": ((TN,), (TN, FP)),
    "ppv": ((TP,), (TP, FP)),
    "npv": ((TN,), (TN, FN)),
    "accuracy": ((TP, TN), (TP, FP, FN, TN)),
}

#: Why a confusion metric is undefined, for the warning.
UNDEFINED_REASON = {
    "sensitivity": "there is no positive case",
    "specificity": "there is no negative case",
    "ppv": "no case is predicted positive",
    "npv": "no case is predicted negative",
    "accuracy": "there is no case",
    "f1": "there is no positive case and no positive prediction",
    "balanced_accuracy": "it needs positive and negative cases",
}


def confusion_cells(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Cell index (TP, FP, FN, TN) of every row."""
    return np.where(pred, np.where(y, TP, FP), np.where(y, FN, TN)).astype(np.intp)


def confusion_statistic(name: str, y: np.ndarray, pred: np.ndarray, codes: np.ndarray,
                        n_clusters: int) -> Statistic:
    """Resampleable confusion-table metric (one output)."""
    cells = confusion_cells(y, pred)
    mt = sparse.coo_array((np.ones(y.size), (cells, codes)), shape=(4, n_clusters)).tocsr()
    mt.sum_duplicates()
    fn = CONFUSION_METRICS[name]

    def reduce(sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, dtype=np.float64)
        return fn(sums[TP], sums[FP], sums[FN], sums[TN])[:, None]

    return Statistic(mt=sparse.csr_array(mt), reduce=reduce, n_outputs=1, integer=True)


def mean_statistic(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> Statistic:
    """Resampleable mean of per-row values (one output)."""
    rows = np.concatenate([np.zeros(values.size, np.intp), np.ones(values.size, np.intp)])
    mt = sparse.coo_array((np.concatenate([values, np.ones(values.size)]),
                           (rows, np.concatenate([codes, codes]))),
                          shape=(2, n_clusters)).tocsr()
    mt.sum_duplicates()

    def reduce(sums: np.ndarray) -> np.ndarray:
        return _ratio(sums[0], sums[1])[:, None]

    return Statistic(mt=sparse.csr_array(mt), reduce=reduce, n_outputs=1, integer=False)


def brier_values(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (p - y) ** 2


def log_loss_values(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    # Clip as scikit-learn does, each class probability separately, so values agree bit for bit.
    eps = np.finfo(np.float64).eps
    return np.where(y, -np.log(np.clip(p, eps, 1 - eps)), -np.log(np.clip(1 - p, eps, 1 - eps)))


# -- proportion intervals -----------------------------------------------------


def wilson_interval(successes: float, trials: float,
                    confidence_level: float) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927); ``trials`` may be an effective, non-integer size."""
    if trials <= 0:
        return math.nan, math.nan
    z = float(ndtri(0.5 + confidence_level / 2))
    p = successes / trials
    den = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_interval(successes: int, trials: int,
                             confidence_level: float) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) interval from beta quantiles."""
    if trials <= 0:
        return math.nan, math.nan
    alpha = 1 - confidence_level
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(
        beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def design_effect(successes: np.ndarray, trials: np.ndarray) -> float:
    """Ratio of the cluster-robust to the binomial variance of a pooled proportion (>= 1).

    ``successes`` and ``trials`` are per-cluster totals. The cluster-robust
    variance is that of the ratio estimator,
    ``G / (G - 1) * sum_c (a_c - p m_c)^2 / (sum_c m_c)^2`` over the ``G``
    clusters with trials (Rao & Scott 1992). Floored at 1: clustering is not
    allowed to make an interval narrower than the binomial one.
    """
    keep = trials > 0
    a, m = successes[keep], trials[keep]
    g, total = a.size, m.sum()
    if g < 2 or total <= 0:
        return math.nan
    p = a.sum() / total
    binomial = p * (1 - p) / total
    if binomial <= 0:
        return 1.0
    robust = g / (g - 1) * float(np.sum((a - p * m) ** 2)) / total**2
    return max(1.0, robust / binomial)


def wilson_cluster_interval(successes: np.ndarray, trials: np.ndarray,
                            confidence_level: float) -> tuple[float, float]:
    """Wilson interval on the effective sample size ``n / deff`` (Rao & Scott 1992)."""
    deff = design_effect(successes, trials)
    if math.isnan(deff):
        return math.nan, math.nan
    total = float(trials.sum())
    n_eff = total / deff
    return wilson_interval(successes.sum() / total * n_eff, n_eff, confidence_level)
