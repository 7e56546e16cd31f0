"""Inter-rater agreement: Cohen's kappa, Fleiss' kappa and Krippendorff's alpha with CIs.

Each coefficient is a function of sums over items that are linear in the
item weights (a contingency table, per-category totals, a coincidence
matrix), so one bootstrap replicate is one sparse product in the metrics
engine and the interval resamples items -- or patients, with ``groups``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations
from typing import Any, Literal

import numpy as np

from .._core import Estimate, RngLike, check_option
from ..metrics._engine import Statistic
from ._ratings import Ratings, pair_ratings, parse_ratings
from ._stats import Clusters, clusters, estimate, feature_matrix, options

__all__ = ["cohen_kappa", "fleiss_kappa", "krippendorff_alpha"]

_CI_PARAMS = """\
groups : array-like of shape (n_items,), optional
        Cluster (patient) id of each item: the bootstrap then resamples
        patients, not items.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Percentile or bias-corrected and accelerated bootstrap interval.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage of the interval.
    rng : int, numpy.random.Generator or None
        Seed or generator of the bootstrap (SPEC 7)."""


# -- Cohen's kappa ----------------------------------------------------------------------------


def _weight_matrix(k: int, weights: str | None) -> np.ndarray:
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(np.float64)
    if weights == "linear":
        return np.abs(i - j).astype(np.float64)
    return ((i - j) ** 2).astype(np.float64)


def _cohen_statistic(r: Ratings, codes: np.ndarray, n_clusters: int,
                     weights: str | None) -> Statistic:
    k = r.levels.size
    both = r.present.all(axis=1)
    cells = r.codes[both, 0] * k + r.codes[both, 1]
    mt = feature_matrix(cells, codes[both], np.ones(cells.size), k * k, n_clusters)
    w = _weight_matrix(k, weights)

    def reduce(sums: np.ndarray) -> np.ndarray:
        table = np.asarray(sums, dtype=np.float64).T.reshape(-1, k, k)
        n = table.sum(axis=(1, 2))
        rows, cols = table.sum(axis=2), table.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = rows[:, :, None] * cols[:, None, :] / n[:, None, None]
            observed_w = np.einsum("bij,ij->b", table, w)
            expected_w = np.einsum("bij,ij->b", expected, w)
            kappa = 1.0 - observed_w / expected_w
        return np.where((n > 0) & (expected_w > 0), kappa, np.nan)[:, None]

    return Statistic(mt=mt, reduce=reduce, n_outputs=1, integer=True)


def cohen_kappa(
    r1: Any,
    r2: Any,
    *,
    weights: Literal["linear", "quadratic"] | None = None,
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Estimate:
    """Cohen's kappa between two raters (optionally weighted) with a bootstrap CI.

    Parameters
    ----------
    r1, r2 : array-like of shape (n_items,)
        The two raters' ratings of the same items; NaN / None where a rater did
        not rate the item.
    weights : {None, "linear", "quadratic"}, default None
        Disagreement weights ``|i - j|`` or ``(i - j)**2`` over the category
        *indices* (as :func:`sklearn.metrics.cohen_kappa_score`); None is
        unweighted kappa.
    labels : sequence, optional
        The categories, in order (needed for weighted kappa on non-numeric
        ordinal ratings). Default: the sorted distinct ratings. Every rating
        must be one of them.
    {ci_params}

    Returns
    -------
    Estimate
        ``value`` the kappa, ``n`` the items rated by both raters, ``n_clusters``
        the patients among them (None without groups). NaN with an
        :class:`UndefinedMetricWarning` when the chance agreement is perfect
        (both raters use one and the same category) or no item was rated by both.

    Raises
    ------
    ValueError
        Different lengths, a rating not in ``labels``, or an unknown option.

    Notes
    -----
    ``kappa = 1 - sum(w * O) / sum(w * E)`` with ``O`` the observed
    contingency table, ``E`` the table expected from its margins and ``w`` the
    disagreement weights (Cohen 1960, 1968); identical to scikit-learn's and
    statsmodels' ``cohens_kappa``. Items missing either rating are left out
    (listwise deletion, as R's ``irr::kappa2``); ``n`` counts the items used.

    References
    ----------
    Cohen J. A coefficient of agreement for nominal scales. Educ Psychol Meas
    1960;20:37-46. Cohen J. Weighted kappa. Psychol Bull 1968;70:213-220.

    Examples
    --------
    >>> from claimladder.labels import cohen_kappa
    >>> est = cohen_kappa([0, 1, 1, 0, 1, 0] * 4, [0, 1, 0, 0, 1, 1] * 4, n_resamples=200,
    ...                   rng=0)
    >>> round(est.value, 3), est.n, est.method
    (0.333, 24, 'bootstrap-percentile')
    """
    owner = "cohen_kappa"
    if weights is not None:
        weights = check_option(weights, ("linear", "quadratic"), param="weights", owner=owner)
    opts = options(method, n_resamples, confidence_level, owner)
    r = pair_ratings(r1, r2, owner, labels)
    both = r.present.all(axis=1)
    r, cl = r.subset(both), clusters(groups, r.n_items, owner).subset(both)
    stat = _cohen_statistic(r, cl.codes, cl.n_clusters, weights)
    name = "Cohen's kappa" if weights is None else f"Cohen's kappa ({weights} weights)"
    return estimate(stat, name=name, opts=opts, rng=rng, n=r.n_items, cl=cl,
                    undefined_reason="the expected (chance) agreement is perfect: both raters "
                    "use a single, identical category")[0]


# -- Fleiss' kappa ----------------------------------------------------------------------------


def _pairable_items(ratings: Any, groups: Any, labels: Sequence[Any] | None,
                    owner: str) -> tuple[Ratings, Clusters]:
    """The items with at least two ratings and their clusters (recoded among them)."""
    r = parse_ratings(ratings, owner, labels=labels)
    keep = r.n_ratings >= 2
    return r.subset(keep), clusters(groups, r.n_items, owner).subset(keep)


def _fleiss_statistic(r: Ratings, codes: np.ndarray, n_clusters: int) -> Statistic:
    k = r.levels.size
    sub = r.codes
    m = (sub >= 0).sum(axis=1).astype(np.float64)
    item, rater = np.nonzero(sub >= 0)
    counts = np.zeros((sub.shape[0], k))
    np.add.at(counts, (item, sub[item, rater]), 1.0)
    agree = ((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1))
    c = codes
    # features 0..k-1: ratings per category; k: sum of P_i; k+1: items
    rows = np.concatenate([sub[item, rater], np.full(c.size, k), np.full(c.size, k + 1)])
    cols = np.concatenate([c[item], c, c])
    vals = np.concatenate([np.ones(item.size), agree, np.ones(c.size)])
    mt = feature_matrix(rows, cols, vals, k + 2, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, dtype=np.float64)
        totals, p_sum, items = sums[:k], sums[k], sums[k + 1]
        n_total = totals.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_cat = totals / n_total
            p_exp = (p_cat**2).sum(axis=0)
            kappa = (p_sum / items - p_exp) / (1.0 - p_exp)
        return np.where((items > 0) & (p_exp < 1.0), kappa, np.nan)[:, None]

    return Statistic(mt=mt, reduce=reduce, n_outputs=1, integer=False)


def fleiss_kappa(
    ratings: Any,
    *,
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Estimate:
    """Fleiss' kappa for several raters (nominal categories) with a bootstrap CI.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One row per item, one column per rater; NaN / None where a rater did not
        rate the item.
    labels : sequence, optional
        The categories. Default: the distinct ratings.
    {ci_params}

    Returns
    -------
    Estimate
        ``value`` the kappa, ``n`` the items with at least two ratings. NaN with
        an :class:`UndefinedMetricWarning` when every rating is the same
        category (chance agreement 1) or no item has two ratings.

    Raises
    ------
    ValueError
        A ratings table that is not two-dimensional, has fewer than two rater
        columns, or holds a rating not in ``labels``.

    Notes
    -----
    ``kappa = (P - Pe) / (1 - Pe)`` with ``P`` the mean over items of the
    proportion of agreeing rater pairs, ``P_i = sum_j n_ij (n_ij - 1) /
    (m_i (m_i - 1))``, and ``Pe = sum_j p_j**2`` with ``p_j`` the share of all
    ratings in category ``j`` (Fleiss 1971). With complete ratings it equals
    :func:`statsmodels.stats.inter_rater.fleiss_kappa`. With missing ratings
    each item uses its own number of ratings ``m_i`` and items with fewer than
    two ratings are left out (the unequal-raters form of Fleiss, Levin & Paik
    2003, sec. 18.1), which statsmodels does not support.

    References
    ----------
    Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull
    1971;76:378-382. Fleiss JL, Levin B, Paik MC. Statistical Methods for Rates
    and Proportions, 3rd ed. Wiley; 2003.

    Examples
    --------
    >>> from claimladder.labels import fleiss_kappa
    >>> ratings = [[1, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0, 1], [1, 1, 1], [0, 0, 0]] * 3
    >>> est = fleiss_kappa(ratings, n_resamples=200, rng=0)
    >>> round(est.value, 3), est.n
    (0.556, 18)
    """
    owner = "fleiss_kappa"
    opts = options(method, n_resamples, confidence_level, owner)
    r, cl = _pairable_items(ratings, groups, labels, owner)
    stat = _fleiss_statistic(r, cl.codes, cl.n_clusters)
    return estimate(stat, name="Fleiss' kappa", opts=opts, rng=rng, n=r.n_items, cl=cl, undefined_reason="every rating is the same category, so chance "
                    "agreement is perfect")[0]


# -- Krippendorff's alpha ---------------------------------------------------------------------

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _coincidence_features(r: Ratings, codes: np.ndarray,
                          n_clusters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse entries of the per-cluster coincidence matrices (Krippendorff 2011, eq. 4)."""
    k = r.levels.size
    m = r.n_ratings.astype(np.float64)
    rows, cols, vals = [], [], []
    for a, b in permutations(range(r.n_raters), 2):
        both = (r.codes[:, a] >= 0) & (r.codes[:, b] >= 0)
        if not both.any():
            continue
        rows.append(r.codes[both, a] * k + r.codes[both, b])
        cols.append(codes[both])
        vals.append(1.0 / (m[both] - 1.0))
    if not rows:
        empty = np.zeros(0)
        return empty.astype(np.intp), empty.astype(np.intp), empty
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _alpha_statistic(r: Ratings, level: str, codes: np.ndarray, n_clusters: int,
                     owner: str) -> Statistic:
    k = r.levels.size
    rows, cols, vals = _coincidence_features(r, codes, n_clusters)
    mt = feature_matrix(rows, cols, vals, k * k, n_clusters)
    if level in ("interval", "ratio"):
        v = r.numeric_levels(owner, level)
        diff = v[:, None] - v[None, :]
        if level == "interval":
            fixed = diff**2
        else:
            total = v[:, None] + v[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                fixed = np.where(total != 0, (diff / np.where(total != 0, total, 1)) ** 2, 0.0)
    elif level == "nominal":
        fixed = 1.0 - np.eye(k)
    else:
        fixed = None
    lo, hi = np.minimum(*np.indices((k, k))), np.maximum(*np.indices((k, k)))

    def reduce(sums: np.ndarray) -> np.ndarray:
        o = np.asarray(sums, dtype=np.float64).T.reshape(-1, k, k)
        n_c = o.sum(axis=2)
        n = n_c.sum(axis=1)
        if fixed is None:
            # Ordinal distance: (sum_{g=c..k} n_g - (n_c + n_k) / 2)**2, from this
            # replicate's marginals (Krippendorff 2011, eq. 12).
            cum = np.concatenate([np.zeros((n_c.shape[0], 1)), np.cumsum(n_c, axis=1)], axis=1)
            between = cum[:, hi + 1] - cum[:, lo]
            delta = (between - (n_c[:, lo] + n_c[:, hi]) / 2.0) ** 2
        else:
            delta = np.broadcast_to(fixed, o.shape)
        observed = np.einsum("bij,bij->b", o, delta)
        expected = np.einsum("bi,bj,bij->b", n_c, n_c, delta)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = 1.0 - (n - 1.0) * observed / expected
        return np.where((n > 1) & (expected > 0), alpha, np.nan)[:, None]

    return Statistic(mt=mt, reduce=reduce, n_outputs=1, integer=False)


def krippendorff_alpha(
    ratings: Any,
    *,
    level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal",
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Estimate:
    """Krippendorff's alpha for any number of raters and missing ratings, with a CI.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One row per item (unit), one column per rater; NaN / None where a rater
        did not rate the item.
    level : {"nominal", "ordinal", "interval", "ratio"}, default "nominal"
        Level of measurement, which sets the distance between two ratings.
    labels : sequence, optional
        The categories in order (the order matters for ``"ordinal"``). Default:
        the sorted distinct ratings. ``"interval"`` and ``"ratio"`` need numbers.
    {ci_params}

    Returns
    -------
    Estimate
        ``value`` the alpha, ``n`` the items with at least two ratings (the
        pairable units). NaN with an :class:`UndefinedMetricWarning` when all
        pairable ratings are equal (no expected disagreement) or fewer than
        two ratings are pairable.

    Raises
    ------
    ValueError
        A malformed ratings table, a rating not in ``labels``, non-numeric
        ratings with ``level="interval"`` or ``"ratio"``, or an unknown level.

    Notes
    -----
    ``alpha = 1 - (n - 1) * sum o_ck d_ck / sum n_c n_k d_ck`` over the
    coincidence matrix ``o`` of the pairable units (units with fewer than two
    ratings carry no information about agreement and are left out), its
    margins ``n_c`` and the squared distance ``d`` of the level (Krippendorff
    2011). Identical to the ``krippendorff`` package (``alpha(reliability_data=
    ratings.T, level_of_measurement=level)``). Krippendorff's own bootstrap
    resamples pairable values; this one resamples units (or patients with
    ``groups``), consistent with the rest of claimladder; ordinal distances
    are recomputed from each replicate's margins.

    References
    ----------
    Krippendorff K. Computing Krippendorff's alpha-reliability. Annenberg School
    for Communication, University of Pennsylvania; 2011.
    Hayes AF, Krippendorff K. Answering the call for a standard reliability
    measure for coding data. Commun Methods Meas 2007;1:77-89.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.labels import krippendorff_alpha
    >>> ratings = [[1, 1, np.nan], [2, 2, 3], [3, 3, 3], [1, 2, 1], [4, 4, 4]] * 3
    >>> est = krippendorff_alpha(ratings, level="ordinal", n_resamples=200, rng=0)
    >>> round(est.value, 3), est.n
    (0.888, 15)
    """
    owner = "krippendorff_alpha"
    level = check_option(level, LEVELS, param="level", owner=owner)
    opts = options(method, n_resamples, confidence_level, owner)
    r, cl = _pairable_items(ratings, groups, labels, owner)
    stat = _alpha_statistic(r, level, cl.codes, cl.n_clusters, owner)
    return estimate(stat, name=f"Krippendorff's alpha ({level})", opts=opts, rng=rng,
                    n=r.n_items, cl=cl,
                    undefined_reason="the pairable ratings show no variation, so the expected "
                    "disagreement is zero")[0]


for _f in (cohen_kappa, fleiss_kappa, krippendorff_alpha):
    _f.__doc__ = _f.__doc__.replace("{ci_params}", _CI_PARAMS)
