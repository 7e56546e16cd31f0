"""The metric registry and the single code path that turns data into an Estimate."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from .._core import ConfidenceInterval, Estimate, RngLike, SmallSampleWarning, check_option
from . import _counting as counting
from . import _ranking as ranking
from ._engine import (
    Statistic,
    bootstrap,
    bootstrap_interval,
    jackknife,
    method_label,
    nan_ci,
    undefined,
)
from ._inputs import (
    BOOTSTRAP_METHODS,
    PROPORTION_METHODS,
    Clusters,
    Options,
    as_scores,
    binary_labels,
    check_lengths,
    check_target,
    clusters,
    predicted_labels,
)

__all__: list[str] = []


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a metric needs and which CI methods it supports."""

    name: str
    title: str
    kind: str  # "rank", "confusion" or "mean"
    methods: tuple[str, ...]
    target: str | None = None  # name of the target-rate parameter of operating-point metrics
    probabilities: bool = False


_PROPORTION = BOOTSTRAP_METHODS + PROPORTION_METHODS

SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("roc_auc", "AUROC", "rank", BOOTSTRAP_METHODS + ("delong",)),
        MetricSpec("average_precision", "Average precision", "rank", BOOTSTRAP_METHODS),
        MetricSpec("sensitivity_at_specificity", "Sensitivity at specificity", "rank",
                   BOOTSTRAP_METHODS, target="specificity"),
        MetricSpec("specificity_at_sensitivity", "Specificity at sensitivity", "rank",
                   BOOTSTRAP_METHODS, target="sensitivity"),
        MetricSpec("sensitivity", "Sensitivity", "confusion", _PROPORTION),
        MetricSpec("specificity", "Specificity", "confusion", _PROPORTION),
        MetricSpec("ppv", "Positive predictive value", "confusion", _PROPORTION),
        MetricSpec("npv", "Negative predictive value", "confusion", _PROPORTION),
        MetricSpec("accuracy", "Accuracy", "confusion", _PROPORTION),
        MetricSpec("f1", "F1 score", "confusion", BOOTSTRAP_METHODS),
        MetricSpec("balanced_accuracy", "Balanced accuracy", "confusion", BOOTSTRAP_METHODS),
        MetricSpec("brier_score", "Brier score", "mean", BOOTSTRAP_METHODS, probabilities=True),
        MetricSpec("log_loss", "Log loss", "mean", BOOTSTRAP_METHODS, probabilities=True),
    )
}


def get_spec(metric: str, owner: str) -> MetricSpec:
    return SPECS[check_option(metric, tuple(SPECS), param="metric", owner=owner)]


@dataclass(frozen=True, slots=True)
class BinaryData:
    """Validated inputs of one binary metric: labels, scores or predictions, clusters."""

    y: np.ndarray  # bool
    x: np.ndarray  # float scores (rank/mean) or bool predictions (confusion)
    clusters: Clusters
    target: float | None = None

    @property
    def n(self) -> int:
        return int(self.y.size)

    @property
    def n_pos(self) -> int:
        return int(self.y.sum())

    @property
    def n_clusters(self) -> int | None:
        """Clusters with at least one row (None without groups)."""
        return self.present_clusters() if self.clusters.given else None

    def subset(self, rows: np.ndarray) -> BinaryData:
        """Rows ``rows``, keeping the global cluster codes (joint resampling)."""
        c = Clusters(codes=self.clusters.codes[rows], n_clusters=self.clusters.n_clusters,
                     given=self.clusters.given)
        return BinaryData(y=self.y[rows], x=self.x[rows], clusters=c, target=self.target)

    def present_clusters(self) -> int:
        return int(np.count_nonzero(np.bincount(self.clusters.codes,
                                                minlength=self.clusters.n_clusters)))


def check_threshold(threshold: Any, owner: str) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or (
        not np.isfinite(threshold)
    ):
        raise ValueError(
            f"The 'threshold' parameter of {owner} must be a finite number. "
            f"Got {threshold!r} instead."
        )
    return float(threshold)


def prepare(
    spec: MetricSpec,
    y_true: Any,
    y_score: Any,
    *,
    y_pred: Any = None,
    threshold: float = 0.5,
    target: float | None = None,
    groups: Any = None,
    pos_label: Any = 1,
    owner: str,
) -> BinaryData:
    """Validate the data arguments of ``spec`` and return them as arrays."""
    y = binary_labels(y_true, pos_label, owner)
    if spec.kind == "confusion":
        if (y_score is None) == (y_pred is None):
            raise ValueError(
                f"{owner} needs exactly one of y_score (thresholded at 'threshold') or y_pred "
                f"(predicted labels). Got {'both' if y_pred is not None else 'neither'}."
            )
        if y_pred is not None:
            x = predicted_labels(y_pred, pos_label, owner)
        else:
            x = as_scores(y_score, "y_score", owner) >= check_threshold(threshold, owner)
    else:
        if y_score is None:
            raise ValueError(f"{owner} needs y_score (one score per row).")
        if y_pred is not None:
            raise ValueError(f"{owner} takes scores, not y_pred; pass y_score.")
        x = as_scores(y_score, "y_score", owner, probabilities=spec.probabilities)
    n = check_lengths(owner, y_true=y, **{"y_pred" if y_pred is not None else "y_score": x})
    if spec.target is not None:
        target = check_target(target, spec.target, owner)
    return BinaryData(y=y, x=x, clusters=clusters(groups, n, owner), target=target)


def build(spec: MetricSpec, data: BinaryData) -> Statistic:
    """The resampleable statistic of ``spec`` on ``data``."""
    codes, g = data.clusters.codes, data.clusters.n_clusters
    if spec.kind == "rank":
        return ranking.rank_statistic(spec.name, data.y, data.x, codes, g, target=data.target)
    if spec.kind == "confusion":
        return counting.confusion_statistic(spec.name, data.y, data.x, codes, g)
    values = (counting.brier_values if spec.name == "brier_score"
              else counting.log_loss_values)(data.y, data.x)
    return counting.mean_statistic(values, codes, g)


def undefined_reason(spec: MetricSpec, data: BinaryData) -> str:
    n_pos, n_neg = data.n_pos, data.n - data.n_pos
    if data.n == 0:
        return "there are no rows"
    if spec.kind == "rank":
        if spec.name == "average_precision":
            return "there is no positive case"
        return f"y_true holds a single class ({n_pos} positive, {n_neg} negative)"
    if spec.kind == "confusion":
        return counting.UNDEFINED_REASON[spec.name]
    return "there are no rows"


@dataclass(frozen=True, slots=True)
class Computed:
    """An estimate with the bootstrap replicates it came from (None for analytic CIs)."""

    estimate: Estimate
    replicates: np.ndarray | None
    n_undefined: int


def compute(
    spec: MetricSpec,
    data: BinaryData,
    opts: Options,
    rng: RngLike,
    *,
    stat: Statistic | None = None,
    name: str | None = None,
    stacklevel: int = 5,
) -> Computed:
    """Point estimate and CI of one metric: the single path every public metric takes."""
    name = name or spec.title
    common = {"confidence_level": opts.confidence_level,
              "method": method_label(opts.method, data.clusters.given), "n": data.n,
              "n_clusters": data.n_clusters, "n_pos": data.n_pos}
    if data.n == 0:
        return Computed(undefined(reason="there are no rows", name=name, stacklevel=stacklevel,
                                  **common), None, 0)
    stat = stat if stat is not None else build(spec, data)
    value = float(stat.point()[0])
    if math.isnan(value):
        return Computed(undefined(reason=undefined_reason(spec, data), name=name,
                                  stacklevel=stacklevel, **common), None, 0)
    if data.clusters.given and data.present_clusters() < 2:
        return Computed(undefined(
            reason=f"the rows come from {data.present_clusters()} cluster (patient); at least 2 "
                   "are needed to estimate uncertainty", name=name, stacklevel=stacklevel,
            **common), None, 0)
    replicates, n_undefined = None, 0
    if opts.method in BOOTSTRAP_METHODS:
        replicates = bootstrap(stat, opts.n_resamples, rng)[:, 0]
        jack = [jackknife(stat)[:, 0]] if opts.method == "bca" else []
        interval = bootstrap_interval(replicates, value, method=opts.method,
                                      confidence_level=opts.confidence_level, name=name,
                                      jackknife_samples=jack, stacklevel=stacklevel)
        ci = ConfidenceInterval(low=interval.low, high=interval.high)
        n_undefined = interval.n_undefined
    elif opts.method == "delong":
        ci = delong_interval(data, value, opts.confidence_level, name, stacklevel)
    else:
        ci = proportion_interval(spec, data, opts, stacklevel)
    return Computed(Estimate(value=value, ci=ci, **common), replicates, n_undefined)


def delong_interval(data: BinaryData, value: float, confidence_level: float, name: str,
                    stacklevel: int) -> ConfidenceInterval:
    """Wald interval with the DeLong (Obuchowski when clustered) variance, clipped to [0, 1]."""
    p = ranking.placements(data.y, data.x, data.clusters.codes, data.clusters.n_clusters)
    var = ranking.obuchowski_covariance(p, p)
    if not np.isfinite(var):
        warnings.warn(
            f"{name}: the DeLong variance needs at least two "
            f"{'clusters' if data.clusters.given else 'cases'} with positives and two with "
            "negatives; the interval is NaN.", SmallSampleWarning, stacklevel=stacklevel)
        return nan_ci()
    half = float(ndtri(0.5 + confidence_level / 2)) * math.sqrt(max(var, 0.0))
    return ConfidenceInterval(low=max(0.0, value - half), high=min(1.0, value + half))


def proportion_interval(spec: MetricSpec, data: BinaryData, opts: Options,
                        stacklevel: int) -> ConfidenceInterval:
    """Wilson, Clopper-Pearson or design-effect adjusted Wilson interval."""
    success_cells, trial_cells = counting.PROPORTIONS[spec.name]
    cells = counting.confusion_cells(data.y, data.x)
    success = np.isin(cells, success_cells)
    trial = np.isin(cells, trial_cells)
    if opts.method == "wilson-cluster":
        g = data.clusters.n_clusters
        a = np.bincount(data.clusters.codes, weights=success, minlength=g)
        m = np.bincount(data.clusters.codes, weights=trial, minlength=g)
        if not data.clusters.given:
            low, high = counting.wilson_interval(a.sum(), m.sum(), opts.confidence_level)
        else:
            low, high = counting.wilson_cluster_interval(a, m, opts.confidence_level)
            if math.isnan(low):
                warnings.warn(f"{spec.title}: the design effect needs at least two clusters "
                              "with trials; the interval is NaN.", SmallSampleWarning,
                              stacklevel=stacklevel)
        return ConfidenceInterval(low=low, high=high)
    if data.clusters.given and data.clusters.max_size > 1:
        raise ValueError(
            f"method={opts.method!r} treats rows as independent, but groups puts up to "
            f"{data.clusters.max_size} rows in one cluster. Use method='bootstrap' (cluster "
            "bootstrap) or 'wilson-cluster' (design-effect adjusted), or pass groups=None if "
            "the rows really are independent."
        )
    x, n = int(success.sum()), int(trial.sum())
    if opts.method == "wilson":
        low, high = counting.wilson_interval(x, n, opts.confidence_level)
    else:
        low, high = counting.clopper_pearson_interval(x, n, opts.confidence_level)
    return ConfidenceInterval(low=low, high=high)

