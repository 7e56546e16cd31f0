"""Agreement tables (per rater pair, per site or subgroup) and annotators against a reference."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    Finding,
    RngLike,
    Rung,
    Status,
    UndefinedMetricWarning,
    check_option,
    check_probability,
    spawn,
)
from ..metrics import sensitivity, specificity
from ._agreement import LEVELS, cohen_kappa, fleiss_kappa, krippendorff_alpha
from ._ratings import parse_ratings
from ._stats import clusters, estimate, mean_statistic, options

__all__ = [
    "AGREEMENT_COLUMNS",
    "ANNOTATOR_COLUMNS",
    "STATISTICS",
    "agreement_strata",
    "agreement_table",
    "annotator_performance",
    "check_agreement",
    "check_annotators",
    "pairwise_agreement",
]

#: Agreement statistics accepted by :func:`agreement_table` and :func:`check_agreement`.
STATISTICS = ("krippendorff_alpha", "fleiss_kappa", "cohen_kappa")
#: Columns of :func:`agreement_table` and :func:`pairwise_agreement`.
AGREEMENT_COLUMNS = ("scope", "group", "statistic", "estimate", "ci_low", "ci_high",
                     "confidence_level", "method", "n", "n_clusters", "evaluable", "reason")
#: Columns of :func:`annotator_performance`.
ANNOTATOR_COLUMNS = ("annotator", "metric", "estimate", "ci_low", "ci_high", "confidence_level",
                     "method", "n", "n_clusters", "n_pos")
_TITLES = {"krippendorff_alpha": "Krippendorff's alpha", "fleiss_kappa": "Fleiss' kappa",
           "cohen_kappa": "Cohen's kappa"}
#: Most example ids a finding lists.
MAX_EXAMPLES = 10


def _as_1d(values: Any, name: str, n: int, owner: str) -> np.ndarray:
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(
        values, dtype=object)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} passed to {owner} must hold one value per item ({n}). Got "
                         f"shape {arr.shape} instead.")
    return arr


def _captured(call):
    """Run ``call``; return its result and the text of the first UndefinedMetricWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    reason = ""
    for w in caught:
        if issubclass(w.category, UndefinedMetricWarning) and not reason:
            reason = str(w.message)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, reason


def _row(scope: str, group: Any, statistic: str, est: Estimate, reason: str) -> dict[str, Any]:
    return {"scope": scope, "group": group, "statistic": statistic, "estimate": est.value,
            "ci_low": est.ci.low, "ci_high": est.ci.high,
            "confidence_level": est.confidence_level, "method": est.method, "n": est.n,
            "n_clusters": est.n_clusters, "evaluable": est.is_defined, "reason": reason}


def _agreement(statistic: str, frame: pd.DataFrame, *, level: str, weights: str | None,
               labels: Sequence[Any], groups: Any, method: str, n_resamples: int,
               confidence_level: float, rng: RngLike) -> Estimate:
    common = {"labels": labels, "groups": groups, "method": method,
              "n_resamples": n_resamples, "confidence_level": confidence_level, "rng": rng}
    if statistic == "krippendorff_alpha":
        return krippendorff_alpha(frame, level=level, **common)
    if statistic == "fleiss_kappa":
        return fleiss_kappa(frame, **common)
    return cohen_kappa(frame.iloc[:, 0], frame.iloc[:, 1], weights=weights, **common)


def _frame(ratings: Any, owner: str) -> pd.DataFrame:
    parsed = parse_ratings(ratings, owner)  # validates shape and rater count
    if isinstance(ratings, pd.DataFrame):
        return ratings.reset_index(drop=True)
    return pd.DataFrame(np.asarray(ratings, dtype=object), columns=list(parsed.raters))


def agreement_table(
    ratings: Any,
    by: Any = None,
    *,
    statistic: Literal["krippendorff_alpha", "fleiss_kappa", "cohen_kappa"] = (
        "krippendorff_alpha"),
    level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal",
    weights: Literal["linear", "quadratic"] | None = None,
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    by_name: str = "group",
    include_overall: bool = True,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> pd.DataFrame:
    """Inter-rater agreement overall and per site or subgroup, each with a bootstrap CI.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One column per rater, NaN where a rater did not rate.
    by : array-like of shape (n_items,), optional
        Site or subgroup of each item; missing values form the group ``"missing"``.
    statistic : {"krippendorff_alpha", "fleiss_kappa", "cohen_kappa"}
        The coefficient; ``"cohen_kappa"`` needs exactly two raters.
    level : {"nominal", "ordinal", "interval", "ratio"}, default "nominal"
        Level of measurement of Krippendorff's alpha.
    weights : {None, "linear", "quadratic"}
        Weights of Cohen's kappa.
    labels : sequence, optional
        Category order; default the sorted distinct ratings of the whole table
        (shared by every group, so their coefficients are comparable).
    groups : array-like of shape (n_items,), optional
        Patient id of each item (cluster bootstrap).
    by_name : str, default "group"
        Written in the ``scope`` column of the per-group rows (e.g. ``"site"``).
    include_overall : bool, default True
        Start the table with the coefficient on all items (scope ``"overall"``).
    method, n_resamples, confidence_level, rng
        As for :func:`krippendorff_alpha`; one child generator per row (SPEC 7).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`AGREEMENT_COLUMNS`; an undefined coefficient (one
        category only, no item with two ratings) is a row with
        ``evaluable=False`` and the ``reason``, never an exception.

    Examples
    --------
    >>> from claimladder.labels import agreement_table
    >>> ratings = [[1, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0, 1]] * 6
    >>> site = ["A", "A", "B", "B"] * 6
    >>> t = agreement_table(ratings, site, by_name="site", n_resamples=100, rng=0)
    >>> t[["scope", "group", "n"]].values.tolist()
    [['overall', 'all', 24], ['site', 'A', 12], ['site', 'B', 12]]
    """
    owner = "agreement_table"
    statistic = check_option(statistic, STATISTICS, param="statistic", owner=owner)
    level = check_option(level, LEVELS, param="level", owner=owner)
    options(method, n_resamples, confidence_level, owner)
    frame = _frame(ratings, owner)
    n = len(frame)
    if statistic == "cohen_kappa" and frame.shape[1] != 2:
        raise ValueError(f"statistic='cohen_kappa' of {owner} needs exactly two rater columns; "
                         f"got {frame.shape[1]}. Use 'krippendorff_alpha' or 'fleiss_kappa' for "
                         "more raters, or pairwise_agreement for every pair.")
    levels = list(parse_ratings(frame, owner, labels=labels).levels)
    g = None if groups is None else _as_1d(groups, "groups", n, owner)
    clusters(g, n, owner)
    parts: list[tuple[str, Any, np.ndarray]] = []
    if include_overall:
        parts.append(("overall", "all", np.ones(n, dtype=bool)))
    if by is not None:
        values = pd.Series(_as_1d(by, "by", n, owner), dtype=object)
        values = values.where(values.notna(), "missing")
        for value in sorted(pd.unique(values), key=str):
            parts.append((by_name, value, (values == value).to_numpy()))
    children = spawn(rng, len(parts))
    rows = []
    for (scope, group, mask), child in zip(parts, children):
        est, reason = _captured(lambda mask=mask, child=child: _agreement(
            statistic, frame.loc[mask].reset_index(drop=True), level=level, weights=weights,
            labels=levels, groups=None if g is None else g[mask], method=method,
            n_resamples=n_resamples, confidence_level=confidence_level, rng=child))
        rows.append(_row(scope, group, statistic, est, reason))
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def pairwise_agreement(
    ratings: Any,
    *,
    weights: Literal["linear", "quadratic"] | None = None,
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> pd.DataFrame:
    """Cohen's kappa for every pair of raters, each with a bootstrap CI.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One column per rater, NaN where a rater did not rate.
    weights, labels, groups, method, n_resamples, confidence_level, rng
        As for :func:`cohen_kappa`; one child generator per pair.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`AGREEMENT_COLUMNS` with ``scope="pair"`` and ``group``
        ``"rater_a vs rater_b"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.labels import pairwise_agreement
    >>> r = pd.DataFrame({"r1": [0, 1, 1, 0] * 5, "r2": [0, 1, 0, 0] * 5,
    ...                   "r3": [0, 1, 1, 1] * 5})
    >>> t = pairwise_agreement(r, n_resamples=100, rng=0)
    >>> t["group"].tolist(), t["estimate"].round(2).tolist()
    (['r1 vs r2', 'r1 vs r3', 'r2 vs r3'], [0.5, 0.5, 0.2])
    """
    owner = "pairwise_agreement"
    options(method, n_resamples, confidence_level, owner)
    frame = _frame(ratings, owner)
    levels = list(parse_ratings(frame, owner, labels=labels).levels)
    pairs = list(combinations(range(frame.shape[1]), 2))
    children = spawn(rng, len(pairs))
    rows = []
    for (a, b), child in zip(pairs, children):
        est, reason = _captured(lambda a=a, b=b, child=child: cohen_kappa(
            frame.iloc[:, a], frame.iloc[:, b], weights=weights, labels=levels, groups=groups,
            method=method, n_resamples=n_resamples, confidence_level=confidence_level,
            rng=child))
        name = f"{frame.columns[a]} vs {frame.columns[b]}"
        rows.append(_row("pair", name, "cohen_kappa", est, reason))
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def agreement_strata(ratings: Any) -> np.ndarray:
    """Whether the raters of each item agree: ``"unanimous"``, ``"split"`` or ``"single"``.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One column per rater, NaN where a rater did not rate.

    Returns
    -------
    numpy.ndarray of str, shape (n_items,)
        ``"single"`` for items with fewer than two ratings.

    Examples
    --------
    >>> from claimladder.labels import agreement_strata
    >>> agreement_strata([[1, 1, 1], [1, 0, 1], [0, None, None]]).tolist()
    ['unanimous', 'split', 'single']
    """
    r = parse_ratings(ratings, "agreement_strata")
    codes = np.where(r.present, r.codes, np.iinfo(np.intp).max)
    lo = codes.min(axis=1)
    hi = np.where(r.present, r.codes, -1).max(axis=1)
    out = np.where(lo == hi, "unanimous", "split").astype(object)
    out[r.n_ratings < 2] = "single"
    return out.astype(str)


# -- annotators against a reference --------------------------------------------------------


def _perf_row(annotator: str, metric: str, est: Estimate) -> dict[str, Any]:
    return {"annotator": annotator, "metric": metric, "estimate": est.value,
            "ci_low": est.ci.low, "ci_high": est.ci.high,
            "confidence_level": est.confidence_level, "method": est.method, "n": est.n,
            "n_clusters": est.n_clusters, "n_pos": est.n_pos}


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray([_eq(x, y) for x, y in zip(a, b)], dtype=bool)


def _eq(x: Any, y: Any) -> bool:
    try:
        return bool(x == y)
    except (TypeError, ValueError):
        return False


def annotator_performance(
    ratings: Any,
    reference: Any,
    *,
    pos_label: Any = 1,
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> pd.DataFrame:
    """Each annotator against a reference label (e.g. an adjudicated subset), with CIs.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One column per annotator, NaN where an annotator did not rate.
    reference : array-like of shape (n_items,)
        The reference label (adjudicated, or ground truth); NaN / None outside
        the reference subset, e.g. ``cohort["label"].where(cohort["adjudicated"])``.
    pos_label : default 1
        Positive class of binary ratings (sensitivity and specificity).
    labels : sequence, optional
        Category order of Cohen's kappa.
    groups : array-like of shape (n_items,), optional
        Patient ids: the bootstrap resamples patients.
    method, n_resamples, confidence_level, rng
        As for :func:`cohen_kappa`; one child generator per annotator and metric.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ANNOTATOR_COLUMNS`; per annotator the rows ``error_rate``
        (share of items where the annotator differs from the reference),
        ``cohen_kappa`` and, when the reference is binary with ``pos_label``
        one of its classes, ``sensitivity`` and ``specificity``. Each uses the
        items that have both a reference and that annotator's rating.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.labels import annotator_performance
    >>> r = pd.DataFrame({"a": [0, 1, 1, 0, 1, 0] * 3, "b": [0, 1, 0, 0, 0, 1] * 3})
    >>> t = annotator_performance(r, [0, 1, 1, 0, 1, 0] * 3, n_resamples=100, rng=0)
    >>> t[t["annotator"] == "b"][["metric", "estimate"]].round(3).values.tolist()
    [['error_rate', 0.5], ['cohen_kappa', 0.0], ['sensitivity', 0.333], ['specificity', 0.667]]
    """
    owner = "annotator_performance"
    opts = options(method, n_resamples, confidence_level, owner)
    frame = _frame(ratings, owner)
    n = len(frame)
    ref = _as_1d(reference, "reference", n, owner)
    ref_present = ~np.asarray(pd.isna(ref), dtype=bool)
    g = None if groups is None else _as_1d(groups, "groups", n, owner)
    all_clusters = clusters(g, n, owner)
    categories = pd.unique(pd.Series(ref[ref_present], dtype=object))
    binary = len(categories) <= 2 and any(_eq(c, pos_label) for c in categories)
    children = spawn(rng, frame.shape[1])
    rows = []
    for j, child in enumerate(children):
        name = str(frame.columns[j])
        col = frame.iloc[:, j].to_numpy(dtype=object)
        rows_j = ref_present & ~np.asarray(pd.isna(col), dtype=bool)
        r_j, x_j = ref[rows_j], col[rows_j]
        g_j = None if g is None else g[rows_j]
        rng_err, rng_kappa, rng_sens, rng_spec = spawn(child, 4)
        wrong = (~_same(x_j, r_j)).astype(np.float64)
        cl = all_clusters.subset(rows_j)
        err, _ = estimate(mean_statistic(wrong, cl.codes, cl.n_clusters),
                          name=f"Error rate of {name}", opts=opts, rng=rng_err, n=int(wrong.size),
                          cl=cl, undefined_reason="no item has both a reference and a rating",
                          stacklevel=4)
        rows.append(_perf_row(name, "error_rate", err))
        kappa = cohen_kappa(r_j, x_j, labels=labels, groups=g_j, method=method,
                            n_resamples=n_resamples, confidence_level=confidence_level,
                            rng=rng_kappa)
        rows.append(_perf_row(name, "cohen_kappa", kappa))
        if binary:
            y = _same(r_j, np.full(r_j.size, pos_label, dtype=object))
            pred = _same(x_j, np.full(x_j.size, pos_label, dtype=object))
            common = {"y_pred": pred, "groups": g_j, "method": method,
                      "n_resamples": n_resamples, "confidence_level": confidence_level,
                      "pos_label": True}
            rows.append(_perf_row(name, "sensitivity", sensitivity(y, rng=rng_sens, **common)))
            rows.append(_perf_row(name, "specificity", specificity(y, rng=rng_spec, **common)))
    return pd.DataFrame(rows, columns=list(ANNOTATOR_COLUMNS))


# -- findings -------------------------------------------------------------------------------


def _examples(ids: Any, mask: np.ndarray, n: int, owner: str) -> tuple[str, ...]:
    if ids is None:
        return ()
    arr = _as_1d(ids, "ids", n, owner)
    return tuple(str(v) for v in arr[mask][:MAX_EXAMPLES])


def check_agreement(
    ratings: Any,
    *,
    statistic: Literal["krippendorff_alpha", "fleiss_kappa", "cohen_kappa"] = (
        "krippendorff_alpha"),
    level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal",
    min_agreement: float = 0.667,
    by: Any = None,
    by_name: str = "group",
    ids: Any = None,
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    partition: str | None = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Finding:
    """Finding ``labels.agreement`` (rung 0): is inter-rater agreement high enough?

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One column per annotator, NaN where an annotator did not rate.
    statistic : {"krippendorff_alpha", "fleiss_kappa", "cohen_kappa"}
        Headline coefficient (default Krippendorff's alpha: any number of
        raters, missing ratings allowed).
    level : {"nominal", "ordinal", "interval", "ratio"}, default "nominal"
        Level of measurement of Krippendorff's alpha.
    min_agreement : float, default 0.667
        Criterion on the coefficient's point estimate. 0.667 is Krippendorff's
        (2004, sec. 11.4) lowest acceptable alpha for tentative conclusions.
    by : array-like of shape (n_items,), optional
        Site or subgroup: the table then lists the coefficient per group.
    by_name : str, default "group"
        Name of ``by`` in the table (e.g. ``"site"``).
    ids : array-like of shape (n_items,), optional
        Image ids: the examples are items on which the raters disagree.
    labels, groups, method, n_resamples, confidence_level, rng
        As for :func:`agreement_table`.
    partition : str, optional
        Recorded in ``params``.

    Returns
    -------
    Finding
        ``pass`` when the coefficient reaches ``min_agreement``; ``warn`` when
        it does not (labels that noisy cap the performance any model can show
        and blur every comparison); ``not_evaluable`` when it is undefined.
        The table (:data:`AGREEMENT_COLUMNS`) holds the overall coefficient,
        the per-group rows and Cohen's kappa for every rater pair.

    Notes
    -----
    Rung 0 (cohort): how reliable the reference labels are is part of the
    cohort definition, and it bounds what every later rung can show. Low
    agreement is a warning rather than a failure because it does not make the
    claim false, only harder to establish.

    Examples
    --------
    >>> from claimladder.labels import check_agreement
    >>> ratings = [[1, 1, 1], [0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1]] * 5
    >>> f = check_agreement(ratings, ids=[f"img{i}" for i in range(30)], n_resamples=100,
    ...                     rng=0)
    >>> f.check, f.status.value, round(f.estimate.value, 3), f.examples[:2]
    ('labels.agreement', 'pass', 0.777, ('img1', 'img7'))
    """
    owner = "check_agreement"
    min_agreement = check_probability(min_agreement, param="min_agreement", owner=owner)
    frame = _frame(ratings, owner)
    rng_table, rng_pairs = spawn(rng, 2)
    common = {"labels": labels, "groups": groups, "method": method,
              "n_resamples": n_resamples, "confidence_level": confidence_level}
    table = agreement_table(frame, by, statistic=statistic, level=level, by_name=by_name,
                            rng=rng_table, **common)
    if frame.shape[1] > 2 or statistic != "cohen_kappa":
        table = pd.concat([table, pairwise_agreement(frame, rng=rng_pairs, **common)],
                          ignore_index=True)
    overall = table.iloc[0]
    est = Estimate(value=overall["estimate"], ci=_ci(overall), confidence_level=confidence_level,
                   method=str(overall["method"]), n=int(overall["n"]),
                   n_clusters=None if pd.isna(overall["n_clusters"]) else
                   int(overall["n_clusters"]))
    criterion = f"{statistic} >= {min_agreement:g}"
    params = {"statistic": statistic, "level": level, "min_agreement": min_agreement,
              "partition": partition, "raters": [str(c) for c in frame.columns],
              "n_resamples": n_resamples, "confidence_level": confidence_level}
    split = agreement_strata(frame) == "split"
    examples = _examples(ids, split, len(frame), owner)
    title = _TITLES[statistic]
    if not est.is_defined:
        return Finding(check="labels.agreement", rung=Rung.COHORT, status=Status.NOT_EVALUABLE,
                       message=f"Inter-rater agreement could not be estimated: "
                               f"{overall['reason'] or 'the coefficient is undefined'}",
                       estimate=est, criterion=criterion, table=table, examples=examples,
                       params=params)
    worst = ""
    by_rows = table[(table["scope"] == by_name) & table["evaluable"]]
    if len(by_rows):
        low = by_rows.loc[by_rows["estimate"].idxmin()]
        worst = f" Lowest {by_name}: {low['group']} ({low['estimate']:.3f})."
    if est.value >= min_agreement:
        status = Status.PASS
        message = (f"Inter-rater agreement {title} = {est.format()} over {est.n} items reaches "
                   f"{min_agreement:g}; {int(split.sum())} item(s) have split ratings.{worst}")
    else:
        status = Status.WARN
        message = (f"Inter-rater agreement {title} = {est.format()} over {est.n} items is below "
                   f"{min_agreement:g}: the reference labels are noisy, which caps the "
                   f"performance any model can show; {int(split.sum())} item(s) have split "
                   f"ratings.{worst} Fix: adjudicate the split cases or report performance "
                   "per label-certainty stratum.")
    return Finding(check="labels.agreement", rung=Rung.COHORT, status=status, message=message,
                   estimate=est, criterion=criterion, table=table, examples=examples,
                   params=params)


def _ci(row: pd.Series) -> ConfidenceInterval:
    low, high = float(row["ci_low"]), float(row["ci_high"])
    if math.isnan(low) or math.isnan(high):
        return ConfidenceInterval(low=math.nan, high=math.nan)
    return ConfidenceInterval(low=low, high=high)


def check_annotators(
    ratings: Any,
    reference: Any,
    *,
    min_kappa: float = 0.6,
    ids: Any = None,
    pos_label: Any = 1,
    labels: Sequence[Any] | None = None,
    groups: Any = None,
    min_items: int = 10,
    partition: str | None = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Finding:
    """Finding ``labels.annotator_reference`` (rung 0): each annotator against a reference.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like of shape (n_items, n_raters)
        One column per annotator, NaN where an annotator did not rate.
    reference : array-like of shape (n_items,)
        Reference label on the adjudicated subset, NaN / None elsewhere.
    min_kappa : float, default 0.6
        Criterion: every annotator's Cohen's kappa against the reference reaches
        it (0.6 is the lower bound of "substantial" agreement, Landis & Koch 1977).
    ids : array-like of shape (n_items,), optional
        Image ids: the examples are reference items the worst annotator got wrong.
    pos_label, labels, groups, method, n_resamples, confidence_level, rng
        As for :func:`annotator_performance`.
    min_items : int, default 10
        Fewest reference items for the check to be evaluable.
    partition : str, optional
        Recorded in ``params``.

    Returns
    -------
    Finding
        ``warn`` naming the annotators whose kappa is below ``min_kappa`` (their
        labels, if used for training or as a reference elsewhere, are the
        noisiest); ``pass`` otherwise; ``not_evaluable`` with fewer than
        ``min_items`` reference items. The estimate is the worst annotator's
        kappa; the table is :func:`annotator_performance`'s.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.labels import check_annotators
    >>> r = pd.DataFrame({"a": [0, 1, 1, 0, 1, 0] * 3, "b": [0, 1, 0, 0, 0, 1] * 3})
    >>> f = check_annotators(r, [0, 1, 1, 0, 1, 0] * 3, n_resamples=100, rng=0)
    >>> f.status.value, f.estimate.value
    ('warn', 0.0)
    """
    owner = "check_annotators"
    min_kappa = check_probability(min_kappa, param="min_kappa", owner=owner)
    frame = _frame(ratings, owner)
    n = len(frame)
    ref = _as_1d(reference, "reference", n, owner)
    ref_present = ~np.asarray(pd.isna(ref), dtype=bool)
    criterion = f"Cohen's kappa of every annotator vs reference >= {min_kappa:g}"
    params = {"min_kappa": min_kappa, "min_items": min_items, "partition": partition,
              "n_reference": int(ref_present.sum()), "annotators": [str(c) for c in frame.columns],
              "n_resamples": n_resamples, "confidence_level": confidence_level}
    if ref_present.sum() < min_items:
        return Finding(check="labels.annotator_reference", rung=Rung.COHORT,
                       status=Status.NOT_EVALUABLE,
                       message=f"Only {int(ref_present.sum())} item(s) have a reference label "
                               f"(fewer than {min_items}); annotators cannot be compared with "
                               "it. Fix: adjudicate a random subset of cases.",
                       criterion=criterion, params=params)
    table = annotator_performance(frame, ref, pos_label=pos_label, labels=labels, groups=groups,
                                  method=method, n_resamples=n_resamples,
                                  confidence_level=confidence_level, rng=rng)
    kappas = table[table["metric"] == "cohen_kappa"].set_index("annotator")["estimate"]
    defined = kappas.dropna()
    if defined.empty:
        return Finding(check="labels.annotator_reference", rung=Rung.COHORT,
                       status=Status.NOT_EVALUABLE,
                       message="Cohen's kappa against the reference is undefined for every "
                               "annotator (the reference subset holds a single category).",
                       criterion=criterion, table=table, params=params)
    worst = str(defined.idxmin())
    row = table[(table["metric"] == "cohen_kappa") & (table["annotator"] == worst)].iloc[0]
    est = Estimate(value=row["estimate"], ci=_ci(row), confidence_level=confidence_level,
                   method=str(row["method"]), n=int(row["n"]),
                   n_clusters=None if pd.isna(row["n_clusters"]) else int(row["n_clusters"]))
    col = frame[frame.columns[[str(c) for c in frame.columns].index(worst)]].to_numpy(
        dtype=object)
    wrong = ref_present & ~np.asarray(pd.isna(col), dtype=bool) & ~_same(col, ref)
    examples = _examples(ids, wrong, n, owner)
    errors = table[table["metric"] == "error_rate"].set_index("annotator")["estimate"]
    summary = ", ".join(f"{a} {k:.2f}" for a, k in defined.items())
    below = [str(a) for a, k in defined.items() if k < min_kappa]
    if below:
        status = Status.WARN
        message = (f"Annotator(s) {', '.join(below)} agree with the reference below kappa "
                   f"{min_kappa:g} on {int(ref_present.sum())} reference items (kappa: "
                   f"{summary}); {worst} errs on {errors[worst]:.1%} of them. Fix: retrain or "
                   "down-weight these annotators, or adjudicate the cases they label.")
    else:
        status = Status.PASS
        message = (f"Every annotator agrees with the reference at kappa >= {min_kappa:g} on "
                   f"{int(ref_present.sum())} reference items (kappa: {summary}).")
    return Finding(check="labels.annotator_reference", rung=Rung.COHORT, status=status,
                   message=message, estimate=est, criterion=criterion, table=table,
                   examples=examples, params=params)
