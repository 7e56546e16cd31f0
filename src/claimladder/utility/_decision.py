"""Decision curve analysis: net benefit of the model, treat-all and treat-none, with CIs.

The counts behind a decision curve -- true and false positives at every
threshold -- are cumulative sums of per-bin counts over the sorted thresholds,
so the whole curve is one resampleable statistic of the metrics engine:
each bootstrap replicate (over patients with ``groups``) evaluates every
threshold and every strategy on the same draw, and the advantage of the model
over the default strategies gets an interval from the same replicates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    Finding,
    Plot,
    RngLike,
    Rung,
    SmallSampleWarning,
    Status,
    UndefinedMetricWarning,
    check_positive_int,
    check_probability,
)
from ..metrics._engine import Statistic, bootstrap, method_label
from ..metrics._inputs import as_scores, binary_labels, check_lengths, clusters
from ._common import feature_matrix

__all__ = [
    "DECISION_CURVE_COLUMNS",
    "DEFAULT_THRESHOLDS",
    "STRATEGIES",
    "check_net_benefit",
    "decision_curve_plot",
    "net_benefit",
]

#: Columns of :func:`net_benefit`.
DECISION_CURVE_COLUMNS = ("threshold", "strategy", "net_benefit", "ci_low", "ci_high",
                          "tp_rate", "fp_rate", "confidence_level", "method", "n", "n_clusters",
                          "n_pos")
#: Strategies of a decision curve, in table order.
STRATEGIES = ("model", "treat_all", "treat_none")
#: Threshold probabilities of :func:`net_benefit` by default: 0.01, 0.02, ..., 0.99.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(1, 100) / 100, 2).tolist())


def _thresholds(thresholds: Any, owner: str) -> np.ndarray:
    t = np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, dtype=np.float64)
    if t.ndim == 0:
        t = t[None]
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"The 'thresholds' parameter of {owner} must be a non-empty 1-D "
                         f"sequence of probabilities in [0, 1). Got shape {t.shape} instead.")
    bad = ~np.isfinite(t) | (t < 0) | (t >= 1)
    if bad.any():
        raise ValueError(
            f"The 'thresholds' parameter of {owner} must hold threshold probabilities in "
            f"[0, 1) (the odds t / (1 - t) is infinite at 1). Got {t[bad][:5].tolist()} "
            "instead."
        )
    return t


@dataclass(frozen=True, slots=True, eq=False)
class _Curve:
    """Point values and bootstrap replicates of a decision curve."""

    thresholds: np.ndarray
    point: np.ndarray  # (2T,): model then treat-all
    replicates: np.ndarray | None = field(repr=False)  # (B, 2T)
    tp_rate: np.ndarray
    fp_rate: np.ndarray
    n: int
    n_pos: int
    n_clusters: int | None
    method: str
    confidence_level: float


def _curve_statistic(y: np.ndarray, p: np.ndarray, t: np.ndarray, codes: np.ndarray,
                     n_clusters: int) -> Statistic:
    """Net benefit of the model and of treat-all at every threshold (2T outputs)."""
    order = np.argsort(t, kind="stable")
    sorted_t = t[order]
    n_t = t.size
    # A row is test-positive at threshold t_i when p >= t_i, i.e. for the sorted
    # thresholds with index < bin, where bin counts the thresholds <= p; a zero
    # risk is never treated (dcurves' convention, relevant only at t = 0).
    bins = np.where(p > 0, np.searchsorted(sorted_t, p, side="right"), 0)
    rows = np.where(y, bins, n_t + 1 + bins)
    mt = feature_matrix(rows, codes, np.ones(y.size), 2 * (n_t + 1), n_clusters)
    odds = sorted_t / (1.0 - sorted_t)
    back = np.empty_like(order)
    back[order] = np.arange(n_t)

    def reduce(sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, dtype=np.float64)
        pos, neg = sums[:n_t + 1], sums[n_t + 1:]
        tp = np.cumsum(pos[::-1], axis=0)[::-1][1:]  # positives with bin > i
        fp = np.cumsum(neg[::-1], axis=0)[::-1][1:]
        n_pos, n = pos.sum(axis=0), pos.sum(axis=0) + neg.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            model = tp / n - fp / n * odds[:, None]
            treat_all = n_pos / n - (n - n_pos) / n * odds[:, None]
        out = np.concatenate([model[back], treat_all[back]], axis=0)
        return np.where(n > 0, out, np.nan).T

    return Statistic(mt=mt, reduce=reduce, n_outputs=2 * n_t, integer=True)


def _compute_curve(y_true: Any, y_prob: Any, thresholds: Any, *, groups: Any, n_resamples: int,
                   confidence_level: float, rng: RngLike, pos_label: Any,
                   owner: str) -> _Curve:
    n_resamples = check_positive_int(n_resamples, param="n_resamples", owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    t = _thresholds(thresholds, owner)
    y = binary_labels(y_true, pos_label, owner)
    p = as_scores(y_prob, "y_prob", owner, probabilities=True)
    n = check_lengths(owner, y_true=y, y_prob=p)
    cl = clusters(groups, n, owner)
    label = method_label("bootstrap", cl.given)
    n_clusters = int(np.unique(cl.codes).size) if cl.given else None
    n_pos = int(y.sum())
    if n == 0:
        warnings.warn(f"{owner}: net benefit is undefined: there are no rows. Returning NaN.",
                      UndefinedMetricWarning, stacklevel=4)
        nan = np.full(t.size, np.nan)
        return _Curve(t, np.full(2 * t.size, np.nan), None, nan, nan, 0, 0, n_clusters, label,
                      confidence_level)
    stat = _curve_statistic(y, p, t, cl.codes, cl.n_clusters)
    point = stat.point()
    positive = (p[None, :] >= t[:, None]) & (p[None, :] > 0)
    tp_rate = (positive & y[None, :]).sum(axis=1) / n
    fp_rate = (positive & ~y[None, :]).sum(axis=1) / n
    if np.unique(cl.codes).size < 2:
        warnings.warn(f"{owner}: the rows come from a single cluster (patient); at least 2 are "
                      "needed to estimate uncertainty, so the intervals are NaN.",
                      SmallSampleWarning, stacklevel=4)
        replicates = None
    else:
        replicates = bootstrap(stat, n_resamples, rng)
    return _Curve(t, point, replicates, tp_rate, fp_rate, n, n_pos, n_clusters, label,
                  confidence_level)


def _percentiles(replicates: np.ndarray | None, confidence_level: float,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    if replicates is None:
        return np.full(size, np.nan), np.full(size, np.nan)
    alpha = (1 - confidence_level) / 2
    low, high = np.nanquantile(replicates, [alpha, 1 - alpha], axis=0)
    return low, high


def _table(curve: _Curve) -> pd.DataFrame:
    t = curve.thresholds
    n_t = t.size
    low, high = _percentiles(curve.replicates, curve.confidence_level, 2 * n_t)
    prevalence = curve.n_pos / curve.n if curve.n else math.nan
    zero = np.full(n_t, 0.0 if curve.n else math.nan)
    zero_ci = np.full(n_t, math.nan if curve.replicates is None else 0.0)
    common = {"confidence_level": curve.confidence_level, "method": curve.method,
              "n": curve.n, "n_clusters": curve.n_clusters, "n_pos": curve.n_pos}
    parts = [
        pd.DataFrame({"threshold": t, "strategy": "model", "net_benefit": curve.point[:n_t],
                      "ci_low": low[:n_t], "ci_high": high[:n_t], "tp_rate": curve.tp_rate,
                      "fp_rate": curve.fp_rate, **common}),
        pd.DataFrame({"threshold": t, "strategy": "treat_all", "net_benefit": curve.point[n_t:],
                      "ci_low": low[n_t:], "ci_high": high[n_t:],
                      "tp_rate": np.full(n_t, prevalence),
                      "fp_rate": np.full(n_t, 1 - prevalence), **common}),
        pd.DataFrame({"threshold": t, "strategy": "treat_none", "net_benefit": zero,
                      "ci_low": zero_ci, "ci_high": zero_ci, "tp_rate": np.zeros(n_t),
                      "fp_rate": np.zeros(n_t), **common}),
    ]
    return pd.concat(parts, ignore_index=True)[list(DECISION_CURVE_COLUMNS)]


def net_benefit(
    y_true: Any,
    y_prob: Any,
    thresholds: Sequence[float] | None = None,
    *,
    groups: Any = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> pd.DataFrame:
    """Decision curve: net benefit of the model, treat-all and treat-none, with bootstrap CIs.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes.
    y_prob : array-like of shape (n,)
        Predicted probabilities (risks) in [0, 1]; net benefit presumes they
        are calibrated.
    thresholds : sequence of float, optional
        Threshold probabilities in [0, 1); default :data:`DEFAULT_THRESHOLDS`
        (0.01 to 0.99 by 0.01). A case is treated when ``y_prob >= threshold``
        and ``y_prob > 0`` (a zero risk is never treated, as in ``dcurves``;
        this matters only at threshold 0).
    groups : array-like of shape (n,), optional
        Patient ids: the bootstrap resamples patients.
    n_resamples : int, default 2000
        Bootstrap replicates (every threshold and strategy share them).
    confidence_level : float, default 0.95
        Nominal coverage of the percentile intervals.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7).
    pos_label : default 1
        The outcome class.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DECISION_CURVE_COLUMNS`, one row per threshold and
        strategy (``"model"``, ``"treat_all"``, ``"treat_none"``, in that
        order). ``tp_rate`` and ``fp_rate`` are true and false positives per
        case, as in ``dcurves``. Treat-none is 0 with interval [0, 0].

    Raises
    ------
    ValueError
        NaN or out-of-range probabilities, non-binary outcomes, a threshold
        outside [0, 1), or mismatched lengths.

    Notes
    -----
    ``NB(t) = TP / n - FP / n * t / (1 - t)``; treat-all has
    ``NB(t) = prevalence - (1 - prevalence) * t / (1 - t)`` (Vickers & Elkin
    2006). The point values equal ``dcurves.dca`` (Python port of the R
    ``dcurves`` package) on the same data. Intervals are percentile intervals
    of a (cluster) bootstrap run by the metrics engine; the prevalence is
    re-estimated in each replicate, so treat-all has an interval too.

    References
    ----------
    Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating
    prediction models. Med Decis Making 2006;26:565-574.
    Vickers AJ, van Calster B, Steyerberg EW. A simple, step-by-step guide to
    interpreting decision curve analysis. Diagn Progn Res 2019;3:18.

    Examples
    --------
    >>> from claimladder.utility import net_benefit
    >>> y = [0, 0, 0, 1, 1, 0, 1, 0] * 5
    >>> p = [0.1, 0.3, 0.2, 0.8, 0.6, 0.4, 0.35, 0.05] * 5
    >>> t = net_benefit(y, p, [0.2, 0.5], n_resamples=200, rng=0)
    >>> t[["threshold", "strategy", "net_benefit"]].round(4).values.tolist()
    [[0.2, 'model', 0.2812], [0.5, 'model', 0.25], [0.2, 'treat_all', 0.2188], [0.5, 'treat_all', -0.25], [0.2, 'treat_none', 0.0], [0.5, 'treat_none', 0.0]]
    """
    curve = _compute_curve(y_true, y_prob, thresholds, groups=groups, n_resamples=n_resamples,
                           confidence_level=confidence_level, rng=rng, pos_label=pos_label,
                           owner="net_benefit")
    return _table(curve)


def decision_curve_plot(table: pd.DataFrame, *, title: str = "Decision curve",
                        threshold_range: tuple[float, float] | None = None) -> Plot:
    """The decision curve as a ``Plot(kind="line")`` for the report.

    Parameters
    ----------
    table : pandas.DataFrame
        The result of :func:`net_benefit`.
    title : str, default "Decision curve"
        Figure title.
    threshold_range : (float, float), optional
        Range of threshold probabilities the claim concerns, shaded in the figure.

    Returns
    -------
    Plot
        ``data`` has the columns ``threshold, strategy, net_benefit, ci_low,
        ci_high``; ``options`` name the x, y, series and band columns
        (``"x"``, ``"y"``, ``"series"``, ``"band"``), the axis labels, a
        horizontal reference line at 0 and y limits that keep the treat-all
        curve from dwarfing the others (from just below 0 to just above the
        prevalence).

    Examples
    --------
    >>> from claimladder.utility import decision_curve_plot, net_benefit
    >>> t = net_benefit([0, 1, 0, 1] * 5, [0.2, 0.7, 0.4, 0.9] * 5, [0.1, 0.5],
    ...                 n_resamples=50, rng=0)
    >>> plot = decision_curve_plot(t)
    >>> plot.kind, list(plot.data.columns), plot.options["series"]
    ('line', ['threshold', 'strategy', 'net_benefit', 'ci_low', 'ci_high'], 'strategy')
    """
    data = table[["threshold", "strategy", "net_benefit", "ci_low", "ci_high"]].copy()
    n, n_pos = table["n"].iloc[0], table["n_pos"].iloc[0]
    prevalence = float(n_pos / n) if n else 1.0
    options: dict[str, Any] = {
        "x": "threshold", "y": "net_benefit", "series": "strategy",
        "band": ["ci_low", "ci_high"], "xlabel": "Threshold probability",
        "ylabel": "Net benefit", "reference": 0.0,
        "ylim": [-0.05 * max(prevalence, 0.2), 1.1 * max(prevalence, 1e-3)],
    }
    if threshold_range is not None:
        options["highlight_x"] = [float(threshold_range[0]), float(threshold_range[1])]
    return Plot(kind="line", title=title, data=data, options=options)


def _range(threshold_range: Any, owner: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in threshold_range)
    except (TypeError, ValueError):
        raise ValueError(f"The 'threshold_range' parameter of {owner} must be a pair (low, high) "
                         f"of probabilities. Got {threshold_range!r} instead.") from None
    if not 0 <= lo <= hi < 1:
        raise ValueError(f"The 'threshold_range' parameter of {owner} must satisfy "
                         f"0 <= low <= high < 1. Got {threshold_range!r} instead.")
    return lo, hi


def check_net_benefit(
    y_true: Any,
    y_prob: Any,
    *,
    threshold_range: tuple[float, float] = (0.05, 0.5),
    thresholds: Sequence[float] | None = None,
    groups: Any = None,
    partition: str | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Finding:
    """Finding ``utility.net_benefit`` (rung 6): does the model beat treat-all and treat-none?

    Parameters
    ----------
    y_true, y_prob, groups, n_resamples, confidence_level, rng, pos_label
        As for :func:`net_benefit`.
    threshold_range : (float, float), default (0.05, 0.5)
        Threshold probabilities at which a clinician would plausibly act; the
        study should set it from the intended use (the default is only a broad
        start).
    thresholds : sequence of float, optional
        Grid of the decision curve (default :data:`DEFAULT_THRESHOLDS`); the
        check uses the grid points inside ``threshold_range``.
    partition : str, optional
        Recorded in ``params``.

    Returns
    -------
    Finding
        The estimate is the smallest advantage, over the thresholds in the
        range, of the model's net benefit over the better default strategy
        (``max(treat_all, treat_none)``), with a percentile interval of the
        per-replicate minimum. ``pass`` when its lower bound is above 0 (the
        model is better at every threshold in the range); ``warn`` when the
        point estimate is above 0 but the bound is not; ``fail`` when it is at
        or below 0 (at some threshold the model does no better than treating
        everyone or no one). The plot is the decision curve.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.utility import check_net_benefit
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> p = np.clip(0.3 * y + 0.35 + rng.normal(0, 0.1, 400), 0, 1)
    >>> f = check_net_benefit(y, p, threshold_range=(0.3, 0.6), n_resamples=200, rng=0)
    >>> f.check, f.status.value
    ('utility.net_benefit', 'pass')
    """
    owner = "check_net_benefit"
    lo, hi = _range(threshold_range, owner)
    grid = _thresholds(thresholds, owner)
    curve = _compute_curve(y_true, y_prob, grid, groups=groups, n_resamples=n_resamples,
                           confidence_level=confidence_level, rng=rng, pos_label=pos_label,
                           owner=owner)
    table = _table(curve)
    plot = decision_curve_plot(table, threshold_range=(lo, hi))
    criterion = (f"net benefit of the model > max(treat all, treat none) at every threshold "
                 f"probability in [{lo:g}, {hi:g}]")
    params = {"threshold_range": [lo, hi], "partition": partition,
              "n_resamples": n_resamples, "confidence_level": confidence_level}
    inside = (grid >= lo - 1e-12) & (grid <= hi + 1e-12)
    if not inside.any():
        raise ValueError(f"No threshold of the grid lies in threshold_range=({lo:g}, {hi:g}) of "
                         f"{owner}; pass thresholds= covering the range.")
    n_t = grid.size

    def advantage(values: np.ndarray) -> np.ndarray:
        model, treat_all = values[..., :n_t], values[..., n_t:]
        return (model - np.maximum(treat_all, 0.0))[..., inside]

    if curve.n == 0:
        return Finding(check="utility.net_benefit", rung=Rung.UTILITY,
                       status=Status.NOT_EVALUABLE, message="There are no cases.",
                       criterion=criterion, params=params)
    point_adv = advantage(curve.point)
    worst = int(np.argmin(point_adv))
    value = float(point_adv[worst])
    if curve.replicates is None:
        low = high = math.nan
    else:
        per_replicate = advantage(curve.replicates).min(axis=1)
        alpha = (1 - confidence_level) / 2
        low, high = (float(v) for v in np.quantile(per_replicate, [alpha, 1 - alpha]))
    est = Estimate(value=value, ci=ConfidenceInterval(low=low, high=high),
                   confidence_level=confidence_level, method=curve.method, n=curve.n,
                   n_clusters=curve.n_clusters, n_pos=curve.n_pos)
    t_worst = float(grid[inside][worst])
    nb_model = float(curve.point[:n_t][inside][worst])
    nb_default = float(max(curve.point[n_t:][inside][worst], 0.0))
    detail = (f"smallest advantage over the best default strategy in [{lo:g}, {hi:g}] is "
              f"{est.format(4)} at threshold {t_worst:g} (model {nb_model:.4f} vs "
              f"{nb_default:.4f})")
    if value <= 0:
        status = Status.FAIL
        message = (f"The model's net benefit is not above treating everyone or no one at every "
                   f"threshold probability in the range: {detail}. The model does not improve "
                   "decisions there.")
    elif math.isnan(low) or low <= 0:
        status = Status.WARN
        message = (f"The model's net benefit exceeds the default strategies across the range, "
                   f"but not clearly at every threshold: {detail}.")
    else:
        status = Status.PASS
        message = (f"The model's net benefit exceeds treating everyone and treating no one at "
                   f"every threshold probability in the range: {detail}.")
    return Finding(check="utility.net_benefit", rung=Rung.UTILITY, status=status,
                   message=message, estimate=est, criterion=criterion, table=table,
                   plots=(plot,), params=params)
