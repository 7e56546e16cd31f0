"""Binary-classification metrics with confidence intervals, clustered by patient."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._core import Estimate, RngLike
from ._estimate import SPECS, compute, get_spec, prepare
from ._inputs import BOOTSTRAP_METHODS, options

__all__ = [
    "METRICS",
    "BootstrapDistribution",
    "accuracy",
    "average_precision",
    "balanced_accuracy",
    "bootstrap_distribution",
    "brier_score",
    "f1",
    "log_loss",
    "npv",
    "ppv",
    "roc_auc",
    "sensitivity",
    "specificity",
]

#: Names accepted by the ``metric`` argument of the grouped and comparison functions.
METRICS: tuple[str, ...] = tuple(SPECS)

_COMMON_PARAMS = """\
groups : array-like of shape (n,), optional
        Cluster (patient) id of each row. When given, the bootstrap resamples
        clusters rather than rows (and DeLong uses Obuchowski's clustered
        variance); ``n_clusters`` of the result counts them.
    method : {{{methods}}}, default "bootstrap"
        How the confidence interval is computed (see Notes).
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage of the interval.
    rng : int, numpy.random.Generator or None
        Seed or generator of the bootstrap (SPEC 7).
    pos_label : default 1
        The label of the positive class in ``y_true`` (and ``y_pred``)."""

_RETURNS = """\
Returns
    -------
    Estimate
        ``value`` on the full sample, ``ci``, ``method`` (e.g.
        ``"cluster-bootstrap-percentile"``), ``n`` rows, ``n_clusters`` (None
        without groups) and ``n_pos`` positive rows. NaN value and interval with
        an :class:`UndefinedMetricWarning` when the metric is undefined (one class
        only, empty input, fewer than two clusters).

    Raises
    ------
    ValueError
        NaN or infinite inputs (the message gives their count and first positions),
        more than two labels, mismatched lengths, or an unknown option."""

_BOOTSTRAP_NOTES = """\
``"bootstrap"`` is the percentile interval and ``"bca"`` the bias-corrected
    and accelerated interval (Efron & Tibshirani 1993, ch. 14) whose jackknife
    acceleration deletes one cluster at a time. Replicates are computed as
    integer weights over the once-sorted data (no per-replicate sort; see
    :mod:`claimladder.metrics._engine`); replicates on which the metric is
    undefined (e.g. no positive case drawn) are dropped and a
    :class:`SmallSampleWarning` is issued when they exceed 1 %."""

_THRESHOLD_PARAMS = """\
y_score : array-like of shape (n,), optional
        Scores, thresholded as ``y_score >= threshold`` (positive).
    y_pred : array-like of shape (n,), optional
        Predicted labels instead of scores (``y_pred == pos_label`` is positive).
    threshold : float, default 0.5
        Operating threshold applied to ``y_score``."""

_PROPORTION_NOTES = """\
``"wilson"`` (Wilson 1927) and ``"clopper-pearson"`` (exact, Clopper &
    Pearson 1934) treat rows as independent and refuse groups with several rows
    per cluster; ``"wilson-cluster"`` is the Wilson interval on the effective
    sample size ``n / deff``, with the design effect ``deff`` (floored at 1)
    the ratio of the cluster-robust variance of the ratio estimator to the
    binomial variance (Rao & Scott 1992).

    """


def _threshold_metric(name: str, y_true: Any, y_score: Any, *, y_pred: Any, threshold: float,
                      groups: Any, method: str, n_resamples: int, confidence_level: float,
                      rng: RngLike, pos_label: Any) -> Estimate:
    spec = SPECS[name]
    opts = options(method, spec.methods, n_resamples, confidence_level, name)
    data = prepare(spec, y_true, y_score, y_pred=y_pred, threshold=threshold, groups=groups,
                   pos_label=pos_label, owner=name)
    return compute(spec, data, opts, rng).estimate


def _score_metric(name: str, y_true: Any, y_score: Any, *, groups: Any, method: str,
                  n_resamples: int, confidence_level: float, rng: RngLike,
                  pos_label: Any) -> Estimate:
    spec = SPECS[name]
    opts = options(method, spec.methods, n_resamples, confidence_level, name)
    data = prepare(spec, y_true, y_score, groups=groups, pos_label=pos_label, owner=name)
    return compute(spec, data, opts, rng).estimate


def roc_auc(
    y_true: Any,
    y_score: Any,
    *,
    groups: Any = None,
    method: Literal["bootstrap", "bca", "delong"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Area under the ROC curve with a confidence interval.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores, higher meaning more likely positive.
    {common}

    {returns}

    Notes
    -----
    The AUROC is the Mann-Whitney probability that a positive outscores a
    negative, ties counting one half; it equals
    :func:`sklearn.metrics.roc_auc_score`. {bootstrap_notes}

    ``"delong"`` is the Wald interval with DeLong's variance (DeLong et al.
    1988) computed from midranks in O(n log n) (Sun & Xu 2014); with ``groups``
    the variance is Obuchowski's (1997) cluster-robust one. The interval is
    clipped to [0, 1].

    References
    ----------
    DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
    correlated ROC curves: a nonparametric approach. Biometrics 1988;44:837-845.
    Obuchowski NA. Nonparametric analysis of clustered ROC curve data. Biometrics
    1997;53:567-578.
    Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas
    under correlated ROC curves. IEEE Signal Process Lett 2014;21:1389-1393.

    Examples
    --------
    >>> from claimladder.metrics import roc_auc
    >>> est = roc_auc([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.7], method="delong")
    >>> round(est.value, 3), est.method, est.n_pos
    (0.889, 'delong', 3)
    >>> y = [0, 1] * 10
    >>> score = [0.1, 0.8, 0.4, 0.7, 0.3, 0.9, 0.6, 0.5, 0.2, 0.65] * 2
    >>> est = roc_auc(y, score, groups=[i // 2 for i in range(20)], n_resamples=200, rng=0)
    >>> est.method, est.n_clusters, round(est.value, 3)
    ('cluster-bootstrap-percentile', 10, 0.96)
    """
    return _score_metric("roc_auc", y_true, y_score, groups=groups, method=method,
                         n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                         pos_label=pos_label)


def average_precision(
    y_true: Any,
    y_score: Any,
    *,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Average precision (area under the step-wise precision-recall curve) with a CI.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores, higher meaning more likely positive.
    {common}

    {returns}

    Notes
    -----
    ``sum_k (R_k - R_(k-1)) P_k`` over the distinct thresholds, as
    :func:`sklearn.metrics.average_precision_score` (no interpolation). Undefined
    without positives. {bootstrap_notes}

    Examples
    --------
    >>> from claimladder.metrics import average_precision
    >>> est = average_precision([0, 0, 1, 1] * 3, [0.1, 0.4, 0.35, 0.8] * 3, n_resamples=200,
    ...                         rng=0)
    >>> round(est.value, 3)
    0.833
    """
    return _score_metric("average_precision", y_true, y_score, groups=groups, method=method,
                         n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                         pos_label=pos_label)


def _make_threshold_metric(name: str, summary: str, formula: str, proportion: bool,
                           example: str):
    methods = ("bootstrap", "bca", "wilson", "clopper-pearson", "wilson-cluster") if proportion \
        else ("bootstrap", "bca")

    def metric(
        y_true: Any,
        y_score: Any = None,
        *,
        y_pred: Any = None,
        threshold: float = 0.5,
        groups: Any = None,
        method: str = "bootstrap",
        n_resamples: int = 2000,
        confidence_level: float = 0.95,
        rng: RngLike = None,
        pos_label: Any = 1,
    ) -> Estimate:
        return _threshold_metric(name, y_true, y_score, y_pred=y_pred, threshold=threshold,
                                 groups=groups, method=method, n_resamples=n_resamples,
                                 confidence_level=confidence_level, rng=rng,
                                 pos_label=pos_label)

    metric.__name__ = metric.__qualname__ = name
    metric.__annotations__["method"] = f"Literal[{', '.join(repr(m) for m in methods)}]"
    metric.__doc__ = f"""{summary} with a confidence interval.

    ``{formula}`` from the confusion table at the operating threshold.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    {_THRESHOLD_PARAMS}
    {_COMMON_PARAMS.format(methods=", ".join(f'"{m}"' for m in methods))}

    {_RETURNS}

    Notes
    -----
    {_PROPORTION_NOTES if proportion else ""}{_BOOTSTRAP_NOTES}

    Examples
    --------
    >>> from claimladder.metrics import {name}
    {example}
    """
    return metric


sensitivity = _make_threshold_metric(
    "sensitivity", "Sensitivity (recall, true-positive rate)", "TP / (TP + FN)", True,
    """>>> est = sensitivity([0, 1, 1, 1], [0.2, 0.9, 0.6, 0.3], method="wilson")
    >>> round(est.value, 3), round(est.ci.low, 3), round(est.ci.high, 3)
    (0.667, 0.208, 0.939)""")
specificity = _make_threshold_metric(
    "specificity", "Specificity (true-negative rate)", "TN / (TN + FP)", True,
    """>>> est = specificity([0, 0, 0, 1], [0.2, 0.9, 0.1, 0.3], method="clopper-pearson")
    >>> round(est.value, 3), round(est.ci.low, 3)
    (0.667, 0.094)""")
ppv = _make_threshold_metric(
    "ppv", "Positive predictive value (precision)", "TP / (TP + FP)", True,
    """>>> round(ppv([0, 1, 1, 0], y_pred=[1, 1, 1, 0], method="wilson").value, 3)
    0.667""")
npv = _make_threshold_metric(
    "npv", "Negative predictive value", "TN / (TN + FN)", True,
    """>>> round(npv([0, 1, 1, 0], y_pred=[0, 0, 1, 0], method="wilson").value, 3)
    0.667""")
accuracy = _make_threshold_metric(
    "accuracy", "Accuracy", "(TP + TN) / n", True,
    """>>> accuracy([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.7], method="wilson").value
    0.5""")
f1 = _make_threshold_metric(
    "f1", "F1 score", "2 TP / (2 TP + FP + FN)", False,
    """>>> round(f1([0, 1, 1, 0], y_pred=[1, 1, 1, 0], n_resamples=100, rng=0).value, 3)
    0.8""")
balanced_accuracy = _make_threshold_metric(
    "balanced_accuracy", "Balanced accuracy", "(sensitivity + specificity) / 2", False,
    """>>> balanced_accuracy([0, 1, 1, 0] * 3, y_pred=[1, 1, 1, 0] * 3, n_resamples=100,
    ...                   rng=0).value
    0.75""")


def brier_score(
    y_true: Any,
    y_score: Any,
    *,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Brier score (mean squared error of the predicted probability; lower is better).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Predicted probabilities of the positive class, in [0, 1].
    {common}

    {returns}

    Notes
    -----
    Equals :func:`sklearn.metrics.brier_score_loss`. Defined with a single class.
    {bootstrap_notes}

    Examples
    --------
    >>> from claimladder.metrics import brier_score
    >>> round(brier_score([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3], n_resamples=100, rng=0).value, 4)
    0.075
    """
    return _score_metric("brier_score", y_true, y_score, groups=groups, method=method,
                         n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                         pos_label=pos_label)


def log_loss(
    y_true: Any,
    y_score: Any,
    *,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Log loss (binary cross-entropy, natural log; lower is better).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Predicted probabilities of the positive class, in [0, 1].
    {common}

    {returns}

    Notes
    -----
    Probabilities are clipped to ``[eps, 1 - eps]`` (float64 machine epsilon)
    as :func:`sklearn.metrics.log_loss` does, which it equals. {bootstrap_notes}

    Examples
    --------
    >>> from claimladder.metrics import log_loss
    >>> round(log_loss([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3], method="bca", n_resamples=100,
    ...                rng=0).value, 4)
    0.299
    """
    return _score_metric("log_loss", y_true, y_score, groups=groups, method=method,
                         n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                         pos_label=pos_label)


for _f, _methods in ((roc_auc, ("bootstrap", "bca", "delong")),
                     (average_precision, BOOTSTRAP_METHODS),
                     (brier_score, BOOTSTRAP_METHODS), (log_loss, BOOTSTRAP_METHODS)):
    _f.__doc__ = _f.__doc__.format(
        common=_COMMON_PARAMS.format(methods=", ".join(f'"{m}"' for m in _methods)),
        returns=_RETURNS, bootstrap_notes=_BOOTSTRAP_NOTES)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class BootstrapDistribution:
    """A bootstrap estimate together with its replicates.

    Parameters
    ----------
    estimate : Estimate
        The estimate, as the metric function returns it.
    replicates : numpy.ndarray of shape (n_resamples,)
        Every replicate in draw order, NaN where the metric was undefined.
    n_undefined : int
        Replicates dropped from the interval because the metric was undefined.
    """

    estimate: Estimate
    replicates: np.ndarray = field(repr=False)
    n_undefined: int


def bootstrap_distribution(
    metric: str,
    y_true: Any,
    y_score: Any = None,
    *,
    y_pred: Any = None,
    threshold: float = 0.5,
    target: float | None = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> BootstrapDistribution:
    """Bootstrap estimate of any registered metric, with its replicates.

    Parameters
    ----------
    metric : str
        One of :data:`METRICS`.
    y_true, y_score, y_pred, threshold, groups, pos_label
        As for the metric function.
    target : float, optional
        Target rate of ``"sensitivity_at_specificity"`` / ``"specificity_at_sensitivity"``.
    method : {"bootstrap", "bca"}
        Interval method.
    n_resamples, confidence_level, rng
        As for the metric function.

    Returns
    -------
    BootstrapDistribution
        The estimate, the replicates (identical to those behind the metric
        function's interval for the same ``rng``) and the undefined count.

    Examples
    --------
    >>> from claimladder.metrics import bootstrap_distribution
    >>> dist = bootstrap_distribution("roc_auc", [0, 0, 1, 1] * 3, [0.1, 0.4, 0.35, 0.8] * 3,
    ...                               n_resamples=50, rng=0)
    >>> dist.replicates.shape, dist.n_undefined
    ((50,), 0)
    """
    owner = "bootstrap_distribution"
    spec = get_spec(metric, owner)
    opts = options(method, BOOTSTRAP_METHODS, n_resamples, confidence_level, owner)
    data = prepare(spec, y_true, y_score, y_pred=y_pred, threshold=threshold, target=target,
                   groups=groups, pos_label=pos_label, owner=owner)
    result = compute(spec, data, opts, rng, stacklevel=4)
    replicates = (result.replicates if result.replicates is not None
                  else np.full(opts.n_resamples, np.nan))
    return BootstrapDistribution(estimate=result.estimate, replicates=replicates,
                                 n_undefined=result.n_undefined)
