"""The bias audit: metrics per subgroup, disparities with CIs, multiplicity-aware flags."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    RngLike,
    SmallSampleWarning,
    UndefinedMetricWarning,
    check_positive_int,
    check_probability,
    spawn,
)
from scipy.special import ndtr

from ..metrics import GroupedEstimate, grouped_metric, holm_adjust
from ._groups import intersection_labels

__all__ = ["GAP_COLUMNS", "TABLE_COLUMNS", "SubgroupAudit", "gap_estimate", "metric_table"]

TABLE_COLUMNS = ("attribute", "group", "metric", "estimate", "ci_low", "ci_high", "n",
                 "n_clusters", "n_pos", "evaluable", "reason", "difference_to_overall",
                 "p_value", "p_holm")
GAP_COLUMNS = ("attribute", "metric", "n_groups", "best_group", "worst_group", "gap",
               "gap_ci_low", "gap_ci_high", "ratio", "ratio_ci_low", "ratio_ci_high",
               "confidence_level")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SubgroupAudit:
    """Result of :func:`metric_table`.

    Attributes
    ----------
    table : pandas.DataFrame
        Long table with columns :data:`TABLE_COLUMNS`.
    gaps : pandas.DataFrame
        Per attribute and metric (columns :data:`GAP_COLUMNS`): the largest gap
        (max - min over evaluable groups) and the ratio (min / max) with
        simultaneous bootstrap CIs, and the groups involved.
    overall : dict
        Metric -> overall Estimate on all rows.
    """

    table: pd.DataFrame
    gaps: pd.DataFrame
    overall: dict[str, Estimate]


def _spread(replicates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: max - min and min / max over the columns (NaN-aware)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        high = np.nanmax(replicates, axis=1)
        low = np.nanmin(replicates, axis=1)
        ratio = np.where(high > 0, low / high, np.nan)
    return high - low, ratio


def _wald_p_value(differences: np.ndarray, value: float) -> float:
    """Two-sided p-value of a zero difference from the bootstrap standard error.

    Unlike the percentile-inversion p-value, its resolution does not stop at
    ``2 / (B + 1)``, which matters once Holm multiplies it by the audit size.
    """
    finite = differences[np.isfinite(differences)]
    if finite.size < 2:
        return math.nan
    se = float(np.std(finite, ddof=1))
    if se == 0:
        return 1.0 if value == 0 else 0.0
    return float(2 * ndtr(-abs(value) / se))


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return math.nan, math.nan
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def metric_table(
    y_true: Any,
    y_score: Any,
    attributes: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("roc_auc", "sensitivity", "specificity"),
    threshold: float = 0.5,
    groups: Any = None,
    intersections: bool = True,
    min_group_size: int = 30,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> SubgroupAudit:
    """Disaggregated metrics with patient-clustered CIs for every subgroup.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores (probability of the positive class).
    attributes : pandas.DataFrame
        One column of subgroup labels per attribute (see :func:`subgroup_labels`),
        rows aligned with ``y_true``.
    metrics : sequence of str
        Metric names of :data:`claimladder.metrics.METRICS`.
    threshold : float, default 0.5
        Operating threshold of threshold metrics.
    groups : array-like of shape (n,), optional
        Patient ids: the bootstrap resamples patients, jointly for all subgroups.
    intersections : bool, default True
        Also audit every 2-way intersection of the attributes.
    min_group_size : int, default 30
        Groups with fewer images are reported as not evaluable (estimate NaN)
        with the reason, and left out of the gaps.
    n_resamples, confidence_level, rng
        Bootstrap settings; one child generator per attribute and metric.

    Returns
    -------
    SubgroupAudit

    Notes
    -----
    Each group's ``difference_to_overall`` comes from the same bootstrap
    replicates as the estimates (paired); its ``p_value`` is a Wald test with
    the bootstrap standard error, and ``p_holm`` is Holm-adjusted across every
    row of the same metric in the audit (all attributes and intersections), so
    group flags control the family-wise error rate of the whole audit.

    The largest gap (max - min) of each attribute gets a percentile interval of
    the replicate max - min at the Bonferroni level ``1 - (1 - confidence_level)
    / k`` for ``k`` audited attributes and intersections, so the k gap intervals
    hold simultaneously. The max - min of noisy estimates is biased upwards
    (more so with many small groups), which errs towards flagging.
    """
    check_positive_int(min_group_size, param="min_group_size", owner="metric_table")
    check_probability(confidence_level, param="confidence_level", owner="metric_table")
    y = np.asarray(y_true)
    columns = {name: attributes[name].astype(str).to_numpy() for name in attributes.columns}
    if intersections and attributes.shape[1] > 1:
        columns.update({k: v.to_numpy() for k, v in
                        intersection_labels(attributes.astype(str)).items()})
    units = [(attr, metric) for attr in columns for metric in metrics]
    rngs = dict(zip(units, spawn(rng, len(units))))
    rows, gap_rows, overall = [], [], {}
    for (attr, metric), child in rngs.items():
        labels = columns[attr]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (UndefinedMetricWarning, SmallSampleWarning))
            result: GroupedEstimate = grouped_metric(
                y, y_score, labels, metric=metric, threshold=threshold, groups=groups,
                method="bootstrap", n_resamples=n_resamples, confidence_level=confidence_level,
                rng=child)
        overall.setdefault(metric, result.overall)
        evaluable_idx = []
        for i, (label, est) in enumerate(zip(result.groups, result.estimates)):
            reason = ""
            if est.n < min_group_size:
                reason = f"n={est.n} < {min_group_size}"
            elif not est.is_defined:
                reason = (f"undefined (n={est.n}, positives={est.n_pos}): one class only"
                          if est.n_pos in (0, est.n) else f"undefined (n={est.n})")
            diff = p = math.nan
            if not reason:
                evaluable_idx.append(i)
                d = result.replicates[:, i] - result.replicates[:, -1]
                diff = est.value - result.overall.value
                p = _wald_p_value(d, diff)
            rows.append({"attribute": attr, "group": str(label), "metric": metric,
                         "estimate": est.value if not reason else math.nan,
                         "ci_low": est.ci.low if not reason else math.nan,
                         "ci_high": est.ci.high if not reason else math.nan,
                         "n": est.n, "n_clusters": est.n_clusters, "n_pos": est.n_pos,
                         "evaluable": not reason, "reason": reason,
                         "difference_to_overall": diff, "p_value": p})
        gap_rows.append(_gap_row(attr, metric, result, evaluable_idx,
                                 1 - (1 - confidence_level) / len(columns)))
    table = pd.DataFrame(rows, columns=[c for c in TABLE_COLUMNS if c != "p_holm"])
    table["p_holm"] = np.nan
    for metric in metrics:
        family = (table["metric"] == metric).to_numpy()
        table.loc[family, "p_holm"] = holm_adjust(table.loc[family, "p_value"].to_numpy())
    return SubgroupAudit(table=table, gaps=pd.DataFrame(gap_rows, columns=list(GAP_COLUMNS)),
                         overall=overall)


def _gap_row(attr: str, metric: str, result: GroupedEstimate, idx: list[int],
             level: float) -> dict[str, Any]:
    row = {"attribute": attr, "metric": metric, "n_groups": len(idx), "best_group": "",
           "worst_group": "", "gap": math.nan, "gap_ci_low": math.nan, "gap_ci_high": math.nan,
           "ratio": math.nan, "ratio_ci_low": math.nan, "ratio_ci_high": math.nan,
           "confidence_level": level}
    if len(idx) < 2:
        return row
    values = np.array([result.estimates[i].value for i in idx])
    best, worst = idx[int(np.argmax(values))], idx[int(np.argmin(values))]
    gap_reps, ratio_reps = _spread(result.replicates[:, idx])
    row.update(best_group=str(result.groups[best]), worst_group=str(result.groups[worst]),
               gap=float(values.max() - values.min()),
               ratio=float(values.min() / values.max()) if values.max() > 0 else math.nan)
    row["gap_ci_low"], row["gap_ci_high"] = _interval(gap_reps, level)
    row["ratio_ci_low"], row["ratio_ci_high"] = _interval(ratio_reps, level)
    return row


def gap_estimate(row: pd.Series, *, n: int) -> Estimate:
    """The largest gap of one attribute (a row of :attr:`SubgroupAudit.gaps`) as an Estimate."""
    return Estimate(value=row["gap"], ci=ConfidenceInterval(low=row["gap_ci_low"],
                                                            high=row["gap_ci_high"]),
                    confidence_level=float(row["confidence_level"]),
                    method="cluster-bootstrap-max-min-bonferroni", n=n)
