"""Reliability curves (calibration curves) with per-bin confidence bands."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import RngLike, check_option, check_positive_int, check_probability
from ..metrics._counting import wilson_cluster_interval, wilson_interval
from ..metrics._engine import Statistic, method_label
from ._binned import bin_edges, bin_index
from ._inputs import binary_inputs, check_n_bins, check_strategy, subgroup_codes
from ._resample import Part, bootstrap_options, make_parts, ratio, resample, sum_map

__all__ = ["RELIABILITY_COLUMNS", "reliability_curve"]

#: Columns of :func:`reliability_curve`.
RELIABILITY_COLUMNS = ("group", "bin", "bin_low", "bin_high", "mean_predicted", "observed", "n",
                       "n_pos", "n_clusters", "ci_low", "ci_high", "confidence_level", "method")
CURVE_METHODS = ("wilson", "bootstrap")


def observed_statistic(y: np.ndarray, b: np.ndarray, codes: np.ndarray, n_clusters: int,
                       n_bins: int) -> Statistic:
    """Observed event rate per bin (``n_bins`` outputs, NaN for empty bins)."""
    feature = np.concatenate([b, n_bins + b])
    values = np.concatenate([np.ones(b.size), y.astype(np.float64)])
    mt = sum_map(feature, np.concatenate([codes, codes]), values, 2 * n_bins, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        s = np.asarray(sums, dtype=np.float64)
        return ratio(s[n_bins:], s[:n_bins]).T

    return Statistic(mt=mt, reduce=reduce, n_outputs=n_bins, integer=True)


def reliability_curve(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    subgroup: Any = None,
    groups: Any = None,
    method: Literal["wilson", "bootstrap"] = "wilson",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
    include_overall: bool = True,
) -> pd.DataFrame:
    """Reliability diagram data: mean predicted probability and observed rate per bin, with CIs.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_prob : array-like of shape (n,)
        Predicted probability of the positive class, in [0, 1].
    n_bins : int, default 15
        Number of bins.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins or equal-mass bins (quantile edges of each subgroup's
        probabilities), exactly as :func:`sklearn.calibration.calibration_curve`.
    subgroup : array-like of shape (n,), optional
        Subgroup (site, sex, partition...) of each row: one curve per subgroup.
    groups : array-like of shape (n,), optional
        Cluster (patient) ids.
    method : {"wilson", "bootstrap"}, default "wilson"
        Band of the observed rate in each bin: the Wilson score interval
        (with ``groups``, on the design-effect adjusted effective sample size,
        Rao & Scott 1992), or the (cluster) bootstrap percentile interval with
        every subgroup evaluated on the same patient draws.
    n_resamples : int, default 2000
        Bootstrap replicates (``method="bootstrap"``).
    confidence_level : float, default 0.95
        Nominal coverage of the bands.
    rng : int, numpy.random.Generator or None
        Seed or generator of the bootstrap (SPEC 7).
    pos_label : default 1
        The label of the positive class.
    include_overall : bool, default True
        With ``subgroup``, also the curve of all rows (group ``"overall"``).

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin and group, columns :data:`RELIABILITY_COLUMNS`:
        ``group`` (``"overall"`` for all rows), ``bin`` (index), ``bin_low`` and
        ``bin_high`` (edges), ``mean_predicted``, ``observed`` (event rate),
        ``n``, ``n_pos``, ``n_clusters`` (None without groups), ``ci_low``,
        ``ci_high``, ``confidence_level``, ``method``.

    Notes
    -----
    ``mean_predicted`` and ``observed`` equal the ``prob_pred`` and ``prob_true``
    of :func:`sklearn.calibration.calibration_curve` (same edges, same
    right-closed bins). Bootstrap replicates in which a bin is empty are dropped
    for that bin (counted in the SmallSampleWarning when above 1 %).

    Examples
    --------
    >>> from claimladder.calibration import reliability_curve
    >>> curve = reliability_curve([0, 0, 1, 1, 1, 0], [0.1, 0.3, 0.6, 0.8, 0.9, 0.7], n_bins=2)
    >>> curve[["bin", "mean_predicted", "observed", "n"]].round(3).to_dict("list")
    {'bin': [0, 1], 'mean_predicted': [0.2, 0.75], 'observed': [0.0, 0.75], 'n': [2, 4]}
    """
    owner = "reliability_curve"
    n_bins = check_n_bins(n_bins, owner)
    strategy = check_strategy(strategy, owner)
    method = check_option(method, CURVE_METHODS, param="method", owner=owner)
    n_resamples = check_positive_int(n_resamples, param="n_resamples", owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    data = binary_inputs(y_true, y_prob, groups=groups, pos_label=pos_label, owner=owner)
    sub, labels = (None, []) if subgroup is None else subgroup_codes(subgroup, data.n, owner)
    parts = make_parts(data.clusters, data.y, sub, labels, include_overall)
    given = data.clusters.given
    edges, bins = {}, {}
    for i, part in enumerate(parts):
        p = data.p[part.rows]
        edges[i] = bin_edges(p, n_bins, strategy)
        bins[i] = bin_index(p, edges[i])

    band: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if method == "bootstrap":
        index = {part.label: i for i, part in enumerate(parts)}

        def build(part: Part) -> Statistic:
            return observed_statistic(data.y[part.rows], bins[index[part.label]], part.codes,
                                      data.clusters.n_clusters, n_bins)

        opts = bootstrap_options("bootstrap", n_resamples, confidence_level, owner)
        result = resample(parts, build, outputs=[f"observed rate in bin {k}"
                                                 for k in range(n_bins)],
                          opts=opts, rng=rng, title="Reliability curve",
                          warn_undefined_points=False, stacklevel=3)
        for i in range(len(parts)):
            band[i] = (np.array([e.ci.low for e in result.estimates[i]]),
                       np.array([e.ci.high for e in result.estimates[i]]))
        label = method_label("bootstrap", given)
    else:
        label = "wilson-cluster" if given else "wilson"

    rows = []
    for i, part in enumerate(parts):
        b = bins[i]
        y = data.y[part.rows]
        p = data.p[part.rows]
        count = np.bincount(b, minlength=n_bins)
        sp = np.bincount(b, weights=p, minlength=n_bins)
        sy = np.bincount(b, weights=y, minlength=n_bins)
        codes = part.codes
        order = np.argsort(b, kind="stable")
        bounds = np.searchsorted(b[order], np.arange(n_bins + 1))
        if given:
            # Patients per bin: distinct (bin, patient) pairs, counted by bin.
            pairs = np.unique(b.astype(np.int64) * data.clusters.n_clusters + codes)
            per_bin = np.bincount(pairs // data.clusters.n_clusters, minlength=n_bins)
        for k in np.flatnonzero(count):
            rows_k = order[bounds[k]:bounds[k + 1]]
            n_clusters = int(per_bin[k]) if given else None
            if method == "bootstrap":
                low, high = band[i][0][k], band[i][1][k]
            elif given:
                local, inverse = np.unique(codes[rows_k], return_inverse=True)
                a = np.bincount(inverse, weights=y[rows_k], minlength=local.size)
                m = np.bincount(inverse, minlength=local.size).astype(np.float64)
                low, high = wilson_cluster_interval(a, m, confidence_level)
            else:
                low, high = wilson_interval(float(sy[k]), float(count[k]), confidence_level)
            rows.append({"group": part.label, "bin": int(k), "bin_low": float(edges[i][k]),
                         "bin_high": float(edges[i][k + 1]),
                         "mean_predicted": sp[k] / count[k], "observed": sy[k] / count[k],
                         "n": int(count[k]), "n_pos": int(sy[k]), "n_clusters": n_clusters,
                         "ci_low": low, "ci_high": high, "confidence_level": confidence_level,
                         "method": label})
    return pd.DataFrame(rows, columns=list(RELIABILITY_COLUMNS))
