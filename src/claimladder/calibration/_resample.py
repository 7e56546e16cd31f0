"""Confidence intervals for calibration statistics, through the engine of :mod:`claimladder.metrics`.

Every calibration statistic here is written as an engine
:class:`~claimladder.metrics._engine.Statistic`: a sparse map from cluster
(patient) counts to a few weighted sums, and a vectorised ``reduce`` that turns
the sums into values. Binned statistics (ECE, reliability, Brier
decomposition) need per-bin sums; the smooth ECE needs sums on a grid; the
logistic calibration slope needs per-row weights. One joint bootstrap then
evaluates every subgroup on the same patient draws, with the engine's
documented draw protocol, so an estimate computed alone and the same estimate
in a table agree replicate for replicate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
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
    UndefinedMetricWarning,
)
from ..metrics._engine import (
    MAX_UNDEFINED_FRACTION,
    Statistic,
    bootstrap,
    bootstrap_interval,
    jackknife,
    method_label,
    stack,
)
from ..metrics._inputs import BOOTSTRAP_METHODS, Clusters, Options, options
from ._inputs import OVERALL

__all__: list[str] = []

#: Columns of every long table of this package (as :mod:`claimladder.metrics`).
TABLE_COLUMNS = ("group", "metric", "estimate", "ci_low", "ci_high", "confidence_level",
                 "method", "n", "n_clusters", "n_pos", "n_undefined")


def bootstrap_options(method: str, n_resamples: int, confidence_level: float,
                      owner: str) -> Options:
    return options(method, BOOTSTRAP_METHODS, n_resamples, confidence_level, owner)


@dataclass(frozen=True, slots=True)
class Part:
    """Rows of one subgroup (or of all data), keeping the global cluster codes."""

    label: Any
    rows: np.ndarray
    clusters: Clusters
    n_pos: int | None
    present_clusters: int

    @property
    def n(self) -> int:
        return int(self.rows.size)

    @property
    def codes(self) -> np.ndarray:
        return self.clusters.codes[self.rows]

    @property
    def n_clusters(self) -> int | None:
        return self.present_clusters if self.clusters.given else None


def _present(c: Clusters, rows: np.ndarray) -> int:
    if not c.given:
        return int(rows.size)
    return int(np.count_nonzero(np.bincount(c.codes[rows], minlength=c.n_clusters)))


def make_parts(c: Clusters, y_pos: np.ndarray | None, subgroup: np.ndarray | None,
               labels: Sequence[Any], include_overall: bool) -> list[Part]:
    """One part per subgroup label (in order), then all rows when asked (or no subgroup)."""
    def n_pos(rows: np.ndarray) -> int | None:
        return None if y_pos is None else int(np.count_nonzero(y_pos[rows]))

    parts = []
    if subgroup is not None:
        order = np.argsort(subgroup, kind="stable")
        bounds = np.searchsorted(subgroup[order], np.arange(len(labels) + 1))
        for k, label in enumerate(labels):
            rows = np.sort(order[bounds[k]:bounds[k + 1]])
            parts.append(Part(label=label, rows=rows, clusters=c, n_pos=n_pos(rows),
                              present_clusters=_present(c, rows)))
    if subgroup is None or include_overall:
        rows = np.arange(c.codes.size)
        parts.append(Part(label=OVERALL, rows=rows, clusters=c, n_pos=n_pos(rows),
                          present_clusters=_present(c, rows)))
    return parts


def sum_map(feature: np.ndarray, codes: np.ndarray, values: np.ndarray, n_features: int,
            n_clusters: int) -> sparse.csr_array:
    """Sparse (n_features, n_clusters) map: entry (f, c) sums ``values`` of rows in feature f, cluster c."""
    keep = values != 0
    mt = sparse.coo_array((values[keep], (feature[keep], codes[keep])),
                          shape=(n_features, n_clusters)).tocsr()
    mt.sum_duplicates()
    return sparse.csr_array(mt)


@dataclass(frozen=True, slots=True)
class Resampled:
    """Estimates of every part (rows) and output (columns), with their replicates."""

    estimates: list[list[Estimate]]
    replicates: np.ndarray | None  # (B, n_parts, n_outputs)
    n_undefined: np.ndarray  # (n_parts, n_outputs)


def resample(
    parts: Sequence[Part],
    build: Callable[[Part], Statistic],
    *,
    outputs: Sequence[str],
    opts: Options,
    rng: RngLike,
    title: str,
    undefined_reason: Callable[[Part, int], str] | None = None,
    needs_two_clusters: bool = True,
    warn_undefined_points: bool = True,
    warn_outputs: Sequence[int] | None = None,
    stacklevel: int = 4,
) -> Resampled:
    """Point estimates and bootstrap intervals of every output of ``build(part)``.

    Parts with no rows, or (clustered data) fewer than two patients, are
    undefined; so is any output whose point value is NaN. One
    :class:`UndefinedMetricWarning` lists them; one :class:`SmallSampleWarning`
    lists the outputs for which more than 1 % of the replicates were undefined.
    Only the outputs in ``warn_outputs`` (default: all) are named in warnings.
    """
    reported = set(range(len(outputs))) if warn_outputs is None else set(warn_outputs)
    n_out = len(outputs)
    clustered = bool(parts) and parts[0].clusters.given
    label = method_label(opts.method, clustered)
    values = np.full((len(parts), n_out), np.nan)
    stats: dict[int, Statistic] = {}
    reasons: list[str] = []
    for i, part in enumerate(parts):
        if part.n == 0:
            reasons.append(f"{part.label!r} (no rows)")
            continue
        if needs_two_clusters and clustered and part.present_clusters < 2:
            reasons.append(f"{part.label!r} (a single cluster/patient; at least 2 are needed "
                           "to estimate uncertainty)")
            continue
        stat = build(part)
        point = np.asarray(stat.point(), dtype=np.float64)
        values[i] = point
        for j in np.flatnonzero(np.isnan(point)) if warn_undefined_points else ():
            if j not in reported:
                continue
            why = undefined_reason(part, int(j)) if undefined_reason else "undefined"
            reasons.append(f"{outputs[j]} in {part.label!r} ({why})")
        if np.isfinite(point).any():
            stats[i] = stat
    if reasons:
        shown = "; ".join(reasons[:10]) + (f" (+{len(reasons) - 10} more)" if len(reasons) > 10
                                           else "")
        warnings.warn(f"{title} is undefined for: {shown}. Returning NaN.",
                      UndefinedMetricWarning, stacklevel=stacklevel)
    low = np.full((len(parts), n_out), np.nan)
    high = np.full((len(parts), n_out), np.nan)
    n_undefined = np.zeros((len(parts), n_out), dtype=np.int64)
    replicates = np.full((opts.n_resamples, len(parts), n_out), np.nan)
    if stats:
        defined = sorted(stats)
        joint = stack([stats[i] for i in defined])
        reps = bootstrap(joint, opts.n_resamples, rng).reshape(opts.n_resamples, len(defined),
                                                               n_out)
        replicates[:, defined] = reps
        jack = None
        if opts.method == "bca":
            jack = jackknife(joint).reshape(-1, len(defined), n_out)
        too_many = []
        for k, i in enumerate(defined):
            for j in range(n_out):
                if math.isnan(values[i, j]):
                    continue
                iv = bootstrap_interval(
                    reps[:, k, j], values[i, j], method=opts.method,
                    confidence_level=opts.confidence_level, name=outputs[j],
                    jackknife_samples=[] if jack is None else [jack[:, k, j]], warn=False)
                low[i, j], high[i, j] = iv.low, iv.high
                n_undefined[i, j] = iv.n_undefined
                if j in reported and iv.n_undefined > MAX_UNDEFINED_FRACTION * opts.n_resamples:
                    too_many.append(f"{outputs[j]} in {parts[i].label!r} ({iv.n_undefined})")
        if too_many:
            warnings.warn(
                f"{title}: for {', '.join(too_many[:10])} more than 1% of the "
                f"{opts.n_resamples} bootstrap replicates (count in parentheses) were undefined "
                "and were dropped, so those intervals are conditional on the statistic being "
                "defined and may be too narrow. Pool rare subgroups or use fewer bins.",
                SmallSampleWarning, stacklevel=stacklevel)
    estimates = [
        [Estimate(value=values[i, j], ci=ConfidenceInterval(low=low[i, j], high=high[i, j]),
                  confidence_level=opts.confidence_level, method=label, n=part.n,
                  n_clusters=part.n_clusters, n_pos=part.n_pos) for j in range(n_out)]
        for i, part in enumerate(parts)
    ]
    return Resampled(estimates=estimates, replicates=replicates if stats else None,
                     n_undefined=n_undefined)


def long_table(parts: Sequence[Part], result: Resampled, outputs: Sequence[str],
               names: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table (:data:`TABLE_COLUMNS`): one row per part and output."""
    names = list(outputs) if names is None else list(names)
    rows = []
    for i, part in enumerate(parts):
        for j, name in enumerate(names):
            e = result.estimates[i][j]
            rows.append({"group": part.label, "metric": name, "estimate": e.value,
                         "ci_low": e.ci.low, "ci_high": e.ci.high,
                         "confidence_level": e.confidence_level, "method": e.method, "n": e.n,
                         "n_clusters": e.n_clusters, "n_pos": e.n_pos,
                         "n_undefined": int(result.n_undefined[i, j])})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where ``den`` is zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
