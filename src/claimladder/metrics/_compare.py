"""Comparisons: two models on the same cases (paired), one model on two datasets (unpaired)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

from .._core import (
    ConfidenceInterval,
    Estimate,
    RngLike,
    SmallSampleWarning,
    UndefinedMetricWarning,
    spawn,
)
from ._engine import (
    bootstrap,
    bootstrap_interval,
    jackknife,
    method_label,
    nan_ci,
    stack,
)
from ._estimate import BinaryData, MetricSpec, build, get_spec, prepare, undefined_reason
from ._inputs import BOOTSTRAP_METHODS, Options, options
from ._ranking import obuchowski_covariance, placements

__all__ = ["Comparison", "compare_paired", "compare_unpaired"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """The difference of a metric between two models or two datasets.

    Parameters
    ----------
    metric : str
        The metric compared.
    method : str
        How the interval and p-value were computed.
    difference : Estimate
        ``a - b`` (paired) or ``first - second`` (unpaired), with its CI.
    p_value : float
        Two-sided p-value of "no difference".
    statistic : float
        The z statistic (DeLong); NaN for bootstrap comparisons.
    estimate_a, estimate_b : Estimate
        The metric of each side, with CIs from the same method.
    """

    metric: str
    method: str
    difference: Estimate
    p_value: float
    statistic: float
    estimate_a: Estimate
    estimate_b: Estimate

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {"metric": self.metric, "method": self.method,
                "difference": self.difference.to_dict(), "p_value": clean(self.p_value),
                "statistic": clean(self.statistic), "estimate_a": self.estimate_a.to_dict(),
                "estimate_b": self.estimate_b.to_dict()}


def _default_method(spec: MetricSpec, method: str | None) -> str:
    if method is None:
        return "delong" if spec.name == "roc_auc" else "bootstrap"
    return method


def _methods(spec: MetricSpec) -> tuple[str, ...]:
    return BOOTSTRAP_METHODS + (("delong",) if spec.name == "roc_auc" else ())


def _thresholds(threshold: Any) -> tuple[float, float]:
    if isinstance(threshold, (tuple, list)):
        if len(threshold) != 2:
            raise ValueError("threshold must be a float or a pair (threshold_a, threshold_b). "
                             f"Got {threshold!r} instead.")
        return threshold[0], threshold[1]
    return threshold, threshold


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value of zero difference by inverting the percentile interval.

    Twice the smaller share of replicates on either side of zero, with the
    ``(k + 1) / (B + 1)`` correction (Davison & Hinkley 1997, eq. 4.11) so it
    is never zero.

    Parameters
    ----------
    differences : numpy.ndarray
        Bootstrap replicates of a difference; NaN (undefined) replicates are ignored.

    Returns
    -------
    float
        The p-value, NaN without finite replicates.

    Examples
    --------
    >>> from claimladder.metrics import bootstrap_p_value
    >>> bootstrap_p_value(np.array([0.1, 0.2, -0.05, 0.3]))
    0.8
    """
    finite = differences[np.isfinite(differences)]
    if finite.size == 0:
        return math.nan
    k = min(np.count_nonzero(finite <= 0), np.count_nonzero(finite >= 0))
    return float(min(1.0, 2 * (k + 1) / (finite.size + 1)))


def _estimate(value: float, low: float, high: float, opts: Options, method: str, n: int,
              n_clusters: int | None, n_pos: int | None) -> Estimate:
    return Estimate(value=value, ci=ConfidenceInterval(low=low, high=high),
                    confidence_level=opts.confidence_level, method=method, n=n,
                    n_clusters=n_clusters, n_pos=n_pos)


def _undefined_comparison(spec, opts, label, reason, n, n_clusters, n_pos, a, b) -> Comparison:
    warnings.warn(f"The {spec.title} difference is undefined: {reason}. Returning NaN.",
                  UndefinedMetricWarning, stacklevel=4)
    diff = Estimate(value=math.nan, ci=nan_ci(), confidence_level=opts.confidence_level,
                    method=label, n=n, n_clusters=n_clusters, n_pos=n_pos)
    return Comparison(metric=spec.name, method=label, difference=diff, p_value=math.nan,
                      statistic=math.nan, estimate_a=a, estimate_b=b)


def _wald(diff: float, var: float, opts: Options,
          bound: float) -> tuple[float, float, float, float]:
    """Interval, z and p of a difference with variance ``var``."""
    if not np.isfinite(var):
        return math.nan, math.nan, math.nan, math.nan
    se = math.sqrt(max(var, 0.0))
    if se == 0:
        return diff, diff, math.nan, (1.0 if diff == 0 else 0.0)
    half = float(ndtri(0.5 + opts.confidence_level / 2)) * se
    z = diff / se
    return max(-bound, diff - half), min(bound, diff + half), z, float(2 * ndtr(-abs(z)))


def compare_paired(
    y_true: Any,
    score_a: Any,
    score_b: Any,
    *,
    metric: str = "roc_auc",
    groups: Any = None,
    method: Literal["delong", "bootstrap", "bca"] | None = None,
    threshold: float | tuple[float, float] = 0.5,
    target: float | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Comparison:
    """Compare two models scored on the same cases.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    score_a, score_b : array-like of shape (n,)
        Scores of the two models on the same rows.
    metric : str, default "roc_auc"
        Any name of :data:`claimladder.metrics.METRICS`.
    groups : array-like of shape (n,), optional
        Cluster (patient) ids.
    method : {"delong", "bootstrap", "bca"}, optional
        Default ``"delong"`` for ``roc_auc`` (paired DeLong; Obuchowski's
        clustered covariance with ``groups``) and ``"bootstrap"`` otherwise.
        The bootstrap resamples the same clusters for both models.
    threshold : float or (float, float), default 0.5
        Threshold of threshold metrics, for both models or one per model.
    target : float, optional
        Target rate of the operating-point metrics.
    n_resamples, confidence_level, rng, pos_label
        As for the metrics.

    Returns
    -------
    Comparison
        ``difference`` is ``metric(a) - metric(b)``.

    Notes
    -----
    DeLong: ``var(A - B) = var(A) + var(B) - 2 cov(A, B)`` with the structural
    components of DeLong et al. (1988) and Obuchowski (1997); the interval is
    Wald's, the p-value that of the z statistic. Bootstrap: percentile (or BCa)
    interval of the paired replicate differences, p-value by inverting it.

    Examples
    --------
    >>> from claimladder.metrics import compare_paired
    >>> y = [0, 0, 0, 1, 1, 1] * 5
    >>> a = [0.1, 0.3, 0.2, 0.8, 0.7, 0.9] * 5
    >>> b = [0.4, 0.3, 0.6, 0.5, 0.7, 0.2] * 5
    >>> c = compare_paired(y, a, b)
    >>> round(c.difference.value, 3), c.method, c.p_value < 0.05
    (0.444, 'delong', True)
    """
    owner = "compare_paired"
    spec = get_spec(metric, owner)
    opts = options(_default_method(spec, method), _methods(spec), n_resamples,
                   confidence_level, owner)
    t_a, t_b = _thresholds(threshold)
    data_a = prepare(spec, y_true, score_a, threshold=t_a, target=target, groups=groups,
                     pos_label=pos_label, owner=owner)
    data_b = prepare(spec, y_true, score_b, threshold=t_b, target=target, groups=groups,
                     pos_label=pos_label, owner=owner)
    label = method_label(opts.method, data_a.clusters.given)
    common = {"n": data_a.n, "n_clusters": data_a.n_clusters, "n_pos": data_a.n_pos}
    stat_a, stat_b = build(spec, data_a), build(spec, data_b)
    value_a, value_b = float(stat_a.point()[0]), float(stat_b.point()[0])

    def point(value: float) -> Estimate:
        return _estimate(value, math.nan, math.nan, opts, label, **common)

    if math.isnan(value_a) or math.isnan(value_b):
        return _undefined_comparison(spec, opts, label, undefined_reason(spec, data_a),
                                     a=point(value_a), b=point(value_b), **common)
    if data_a.clusters.given and data_a.present_clusters() < 2:
        return _undefined_comparison(spec, opts, label, "fewer than 2 clusters",
                                     a=point(value_a), b=point(value_b), **common)
    diff = value_a - value_b
    if opts.method == "delong":
        pa = placements(data_a.y, data_a.x, data_a.clusters.codes, data_a.clusters.n_clusters)
        pb = placements(data_b.y, data_b.x, data_b.clusters.codes, data_b.clusters.n_clusters)
        var_a, var_b = obuchowski_covariance(pa, pa), obuchowski_covariance(pb, pb)
        cov = obuchowski_covariance(pa, pb)
        low, high, z, p = _wald(diff, var_a + var_b - 2 * cov, opts, 1.0)
        if math.isnan(low):
            warnings.warn("The DeLong variance needs at least two clusters with positives and "
                          "two with negatives; the interval is NaN.", SmallSampleWarning,
                          stacklevel=2)
        est_a = _estimate(value_a, *_wald(value_a, var_a, opts, 1.0)[:2], opts, label, **common)
        est_b = _estimate(value_b, *_wald(value_b, var_b, opts, 1.0)[:2], opts, label, **common)
        est_a = _clip01(est_a)
        est_b = _clip01(est_b)
        return Comparison(metric=spec.name, method=label,
                          difference=_estimate(diff, low, high, opts, label, **common),
                          p_value=p, statistic=z, estimate_a=est_a, estimate_b=est_b)
    both = stack([stat_a, stat_b])
    reps = bootstrap(both, opts.n_resamples, rng)
    jack = jackknife(both) if opts.method == "bca" else None
    title = f"{spec.title} difference"

    def interval(column: np.ndarray, value: float, jk: np.ndarray | None, name: str):
        iv = bootstrap_interval(column, value, method=opts.method,
                                confidence_level=opts.confidence_level, name=name,
                                jackknife_samples=[] if jk is None else [jk], stacklevel=4)
        return iv.low, iv.high

    d = reps[:, 0] - reps[:, 1]
    low, high = interval(d, diff, None if jack is None else jack[:, 0] - jack[:, 1], title)
    est_a = _estimate(value_a, *interval(reps[:, 0], value_a,
                                         None if jack is None else jack[:, 0], spec.title),
                      opts, label, **common)
    est_b = _estimate(value_b, *interval(reps[:, 1], value_b,
                                         None if jack is None else jack[:, 1], spec.title),
                      opts, label, **common)
    return Comparison(metric=spec.name, method=label,
                      difference=_estimate(diff, low, high, opts, label, **common),
                      p_value=bootstrap_p_value(d), statistic=math.nan, estimate_a=est_a,
                      estimate_b=est_b)


def _clip01(est: Estimate) -> Estimate:
    if math.isnan(est.ci.low):
        return est
    return Estimate(value=est.value,
                    ci=ConfidenceInterval(low=max(0.0, est.ci.low), high=min(1.0, est.ci.high)),
                    confidence_level=est.confidence_level, method=est.method, n=est.n,
                    n_clusters=est.n_clusters, n_pos=est.n_pos)


def compare_unpaired(
    y_true_1: Any,
    score_1: Any,
    y_true_2: Any,
    score_2: Any,
    *,
    metric: str = "roc_auc",
    groups_1: Any = None,
    groups_2: Any = None,
    method: Literal["delong", "bootstrap", "bca"] | None = None,
    threshold: float = 0.5,
    target: float | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Comparison:
    """Compare one model's metric on two independent datasets (e.g. internal vs external).

    Parameters
    ----------
    y_true_1, score_1 : array-like
        Labels and scores of the first dataset.
    y_true_2, score_2 : array-like
        Labels and scores of the second dataset.
    metric : str, default "roc_auc"
        Any name of :data:`claimladder.metrics.METRICS`.
    groups_1, groups_2 : array-like, optional
        Cluster (patient) ids of each dataset.
    method : {"delong", "bootstrap", "bca"}, optional
        Default ``"delong"`` for ``roc_auc`` and ``"bootstrap"`` otherwise.
    threshold : float, default 0.5
        Threshold of threshold metrics (the same operating point on both datasets).
    target : float, optional
        Target rate of the operating-point metrics.
    n_resamples, confidence_level, rng, pos_label
        As for the metrics.

    Returns
    -------
    Comparison
        ``difference`` is ``metric(first) - metric(second)``; ``estimate_a`` and
        ``estimate_b`` are the two datasets' estimates.

    Notes
    -----
    The datasets are assumed independent (no patient in both; the leakage
    checks test that). DeLong: the two variances add. Bootstrap: each dataset
    is resampled with its own child generator and replicate ``r`` of the
    difference is the difference of the replicates ``r``; BCa uses the
    two-sample jackknife acceleration (as :func:`scipy.stats.bootstrap`).

    Examples
    --------
    >>> from claimladder.metrics import compare_unpaired
    >>> c = compare_unpaired([0, 0, 1, 1] * 5, [0.1, 0.4, 0.35, 0.8] * 5,
    ...                      [0, 0, 1, 1] * 5, [0.1, 0.2, 0.7, 0.8] * 5)
    >>> round(c.difference.value, 2), c.method
    (-0.25, 'delong')
    """
    owner = "compare_unpaired"
    spec = get_spec(metric, owner)
    opts = options(_default_method(spec, method), _methods(spec), n_resamples,
                   confidence_level, owner)
    d1 = prepare(spec, y_true_1, score_1, threshold=threshold, target=target, groups=groups_1,
                 pos_label=pos_label, owner=owner)
    d2 = prepare(spec, y_true_2, score_2, threshold=threshold, target=target, groups=groups_2,
                 pos_label=pos_label, owner=owner)
    clustered = d1.clusters.given or d2.clusters.given
    label = method_label(opts.method, clustered)
    stat_1, stat_2 = build(spec, d1), build(spec, d2)
    v1, v2 = float(stat_1.point()[0]), float(stat_2.point()[0])

    def info(d: BinaryData) -> dict[str, Any]:
        return {"n": d.n, "n_clusters": d.n_clusters, "n_pos": d.n_pos}

    n_clusters = (None if not clustered else
                  (d1.clusters.n_clusters + d2.clusters.n_clusters))
    combined = {"n": d1.n + d2.n, "n_clusters": n_clusters, "n_pos": d1.n_pos + d2.n_pos}
    point_1 = _estimate(v1, math.nan, math.nan, opts, label, **info(d1))
    point_2 = _estimate(v2, math.nan, math.nan, opts, label, **info(d2))
    if math.isnan(v1) or math.isnan(v2):
        which = d1 if math.isnan(v1) else d2
        return _undefined_comparison(spec, opts, label, undefined_reason(spec, which),
                                     a=point_1, b=point_2, **combined)
    for d in (d1, d2):
        if d.clusters.given and d.present_clusters() < 2:
            return _undefined_comparison(spec, opts, label, "a dataset has fewer than 2 "
                                         "clusters", a=point_1, b=point_2, **combined)
    diff = v1 - v2
    if opts.method == "delong":
        p1 = placements(d1.y, d1.x, d1.clusters.codes, d1.clusters.n_clusters)
        p2 = placements(d2.y, d2.x, d2.clusters.codes, d2.clusters.n_clusters)
        var_1, var_2 = obuchowski_covariance(p1, p1), obuchowski_covariance(p2, p2)
        low, high, z, p = _wald(diff, var_1 + var_2, opts, 1.0)
        if math.isnan(low):
            warnings.warn("The DeLong variance needs at least two clusters with positives and "
                          "two with negatives in each dataset; the interval is NaN.",
                          SmallSampleWarning, stacklevel=2)
        est_1 = _clip01(_estimate(v1, *_wald(v1, var_1, opts, 1.0)[:2], opts, label, **info(d1)))
        est_2 = _clip01(_estimate(v2, *_wald(v2, var_2, opts, 1.0)[:2], opts, label, **info(d2)))
        return Comparison(metric=spec.name, method=label,
                          difference=_estimate(diff, low, high, opts, label, **combined),
                          p_value=p, statistic=z, estimate_a=est_1, estimate_b=est_2)
    rng_1, rng_2 = spawn(rng, 2)
    r1 = bootstrap(stat_1, opts.n_resamples, rng_1)[:, 0]
    r2 = bootstrap(stat_2, opts.n_resamples, rng_2)[:, 0]
    j1 = jackknife(stat_1)[:, 0] if opts.method == "bca" else None
    j2 = jackknife(stat_2)[:, 0] if opts.method == "bca" else None
    d = r1 - r2
    samples = [] if j1 is None else [j1 - v2, v1 - j2]
    iv = bootstrap_interval(d, diff, method=opts.method, confidence_level=opts.confidence_level,
                            name=f"{spec.title} difference", jackknife_samples=samples,
                            stacklevel=3)
    ivs = [bootstrap_interval(r, v, method=opts.method, confidence_level=opts.confidence_level,
                              name=spec.title, jackknife_samples=[] if j is None else [j],
                              stacklevel=3)
           for r, v, j in ((r1, v1, j1), (r2, v2, j2))]
    return Comparison(metric=spec.name, method=label,
                      difference=_estimate(diff, iv.low, iv.high, opts, label, **combined),
                      p_value=bootstrap_p_value(d), statistic=math.nan,
                      estimate_a=_estimate(v1, ivs[0].low, ivs[0].high, opts, label, **info(d1)),
                      estimate_b=_estimate(v2, ivs[1].low, ivs[1].high, opts, label,
                                           **info(d2)))
