"""Every calibration metric, per subgroup (site, partition, sex...), from one joint bootstrap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import RngLike, did_you_mean
from ..metrics._engine import Statistic, stack
from ._binned import BINNED_OUTPUTS, bin_edges, binned_statistic, binned_undefined_reason
from ._inputs import binary_inputs, check_n_bins, check_strategy, subgroup_codes
from ._logistic import LOGISTIC_OUTPUTS, logistic_statistic
from ._resample import Part, bootstrap_options, long_table, make_parts, resample
from ._smooth import smooth_statistic

__all__ = ["CALIBRATION_METRICS", "DEFAULT_CALIBRATION_METRICS", "calibration_table"]

_SMOOTH = ("smooth_calibration_error",)
#: Metric names accepted by :func:`calibration_table`.
CALIBRATION_METRICS: tuple[str, ...] = BINNED_OUTPUTS + _SMOOTH + LOGISTIC_OUTPUTS[:2]
#: The metrics computed by default (cheap: sums per bin).
DEFAULT_CALIBRATION_METRICS: tuple[str, ...] = (
    "expected_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "brier_reliability",
    "brier_resolution",
    "brier_uncertainty",
    "calibration_in_the_large",
    "observed_expected_ratio",
)


def _check_metrics(metrics: Sequence[str], owner: str) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    for m in metrics:
        if m not in CALIBRATION_METRICS:
            raise ValueError(
                f"The 'metrics' parameter of {owner} must name metrics among "
                f"{list(CALIBRATION_METRICS)}. Got {m!r} instead.{did_you_mean(m, CALIBRATION_METRICS)}"
            )
    if not metrics:
        raise ValueError(f"The 'metrics' parameter of {owner} must name at least one metric.")
    return tuple(dict.fromkeys(metrics))


def calibration_table(
    y_true: Any,
    y_prob: Any,
    subgroup: Any = None,
    *,
    metrics: Sequence[str] = DEFAULT_CALIBRATION_METRICS,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
    include_overall: bool = True,
) -> pd.DataFrame:
    """Calibration metrics with confidence intervals per subgroup, from one joint bootstrap.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_prob : array-like of shape (n,)
        Predicted probability of the positive class, in [0, 1].
    subgroup : array-like of shape (n,), optional
        Subgroup (partition, site, scanner, sex...) of each row. Without it the
        table has one group, ``"overall"``.
    metrics : sequence of str, default :data:`DEFAULT_CALIBRATION_METRICS`
        Any of :data:`CALIBRATION_METRICS`: the binned metrics
        (``expected_calibration_error``, ``maximum_calibration_error``,
        ``debiased_calibration_error``, ``brier_score``, ``brier_reliability``,
        ``brier_resolution``, ``brier_uncertainty``, ``brier_within_bin``,
        ``calibration_in_the_large``, ``observed_expected_ratio``),
        ``smooth_calibration_error``, ``calibration_intercept`` and
        ``calibration_slope``. The last three cost more per replicate (a grid
        smoothing, a logistic fit on every row).
    n_bins : int, default 15
        Bins of the binned metrics.
    strategy : {"uniform", "quantile"}, default "uniform"
        Binning of every binned metric (the debiased error included); quantile
        edges are computed per subgroup.
    groups : array-like of shape (n,), optional
        Cluster (patient) ids: each replicate draws patients once for every
        subgroup and metric.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Interval method.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7). With the same seed, a metric of the overall
        group equals the single-metric function's result (same draws).
    pos_label : default 1
        The label of the positive class.
    include_overall : bool, default True
        With ``subgroup``, also the metrics of all rows (group ``"overall"``).

    Returns
    -------
    pandas.DataFrame
        Long table, one row per group and metric (groups in sorted order,
        ``"overall"`` last), with columns ``group, metric, estimate, ci_low,
        ci_high, confidence_level, method, n, n_clusters, n_pos, n_undefined``.

    Notes
    -----
    A subgroup with no rows cannot occur; one with a single patient (clustered
    data) is NaN with an :class:`~claimladder._core.UndefinedMetricWarning`
    naming it, never dropped. The cost of the binned metrics is one sparse
    product per replicate over about ``4 n`` nonzeros (``8 n`` with the overall
    group), independent of the number of subgroups.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import calibration_table
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=600)
    >>> y = rng.uniform(size=600) < p
    >>> site = np.where(np.arange(600) < 300, "A", "B")
    >>> t = calibration_table(y, p, site, metrics=["expected_calibration_error"],
    ...                       n_resamples=200, rng=0)
    >>> t[["group", "metric", "n"]].to_dict("list")
    {'group': ['A', 'B', 'overall'], 'metric': ['expected_calibration_error', \
'expected_calibration_error', 'expected_calibration_error'], 'n': [300, 300, 600]}
    """
    owner = "calibration_table"
    metrics = _check_metrics(metrics, owner)
    n_bins = check_n_bins(n_bins, owner)
    strategy = check_strategy(strategy, owner)
    opts = bootstrap_options(method, n_resamples, confidence_level, owner)
    data = binary_inputs(y_true, y_prob, groups=groups, pos_label=pos_label, owner=owner)
    sub, labels = (None, []) if subgroup is None else subgroup_codes(subgroup, data.n, owner)
    parts = make_parts(data.clusters, data.y, sub, labels, include_overall)
    g = data.clusters.n_clusters
    use_binned = any(m in BINNED_OUTPUTS for m in metrics)
    use_smooth = _SMOOTH[0] in metrics
    use_logistic = any(m in LOGISTIC_OUTPUTS for m in metrics)
    outputs: list[str] = []
    if use_binned:
        outputs += BINNED_OUTPUTS
    if use_smooth:
        outputs += _SMOOTH
    if use_logistic:
        outputs += LOGISTIC_OUTPUTS

    def build(part: Part) -> Statistic:
        y, p, codes = data.y[part.rows], data.p[part.rows], part.codes
        stats = []
        if use_binned:
            stats.append(binned_statistic(y, p, codes, g, bin_edges(p, n_bins, strategy)))
        if use_smooth:
            stats.append(smooth_statistic(y, p, codes, g))
        if use_logistic:
            stats.append(logistic_statistic(y, p, codes, g))
        return stack(stats)

    def reason(part: Part, output: int) -> str:
        name = outputs[output]
        if name in BINNED_OUTPUTS:
            return binned_undefined_reason(part, BINNED_OUTPUTS.index(name))
        yp = data.y[part.rows]
        if yp.all() or not yp.any():
            return "y_true holds a single class, so the logistic model has no finite fit"
        return "the score separates the classes perfectly, so the logistic slope is infinite"

    result = resample(parts, build, outputs=outputs, opts=opts, rng=rng,
                      title="Calibration metrics", undefined_reason=reason,
                      warn_outputs=[i for i, m in enumerate(outputs) if m in metrics],
                      stacklevel=3)
    table = long_table(parts, result, outputs)
    table["_group"] = np.arange(len(table)) // len(outputs)
    table["_metric"] = table["metric"].map({m: i for i, m in enumerate(metrics)})
    table = table[table["metric"].isin(metrics)]
    return table.sort_values(["_group", "_metric"], kind="stable").drop(
        columns=["_group", "_metric"]).reset_index(drop=True)
