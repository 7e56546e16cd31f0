"""Model performance by label certainty and annotator agreement; models surer than their labels."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import Finding, RngLike, Rung, Status, check_positive_int, spawn
from ..metrics import Comparison, compare_paired, grouped_metric
from ..metrics._inputs import as_scores, binary_labels
from ._annotators import _as_1d, _frame, _same, agreement_strata

__all__ = [
    "STRATA_COLUMNS",
    "check_model_vs_label_certainty",
    "performance_by_label_certainty",
]

#: Columns of :func:`performance_by_label_certainty` and of the check's table.
STRATA_COLUMNS = ("scope", "group", "metric", "estimate", "ci_low", "ci_high",
                  "confidence_level", "method", "n", "n_clusters", "n_pos")
#: Most example ids a finding lists.
MAX_EXAMPLES = 10


def performance_by_label_certainty(
    y_true: Any,
    y_score: Any,
    strata: Any,
    *,
    scope: str = "label_certainty",
    metric: str = "roc_auc",
    groups: Any = None,
    method: str = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> pd.DataFrame:
    """A model metric per label-certainty (or agreement) stratum, from one joint bootstrap.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference labels.
    y_score : array-like of shape (n,)
        Model scores.
    strata : array-like of shape (n,)
        Certainty of each label (e.g. ``"definite"``, ``"probable"``), or
        :func:`agreement_strata` of the annotators' ratings.
    scope : str, default "label_certainty"
        Written in the ``scope`` column.
    metric : str, default "roc_auc"
        Any name of :data:`claimladder.metrics.METRICS`.
    groups, method, n_resamples, confidence_level, rng, pos_label
        As for :func:`claimladder.metrics.grouped_metric`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STRATA_COLUMNS`, one row per stratum and a last row
        ``group="all"``. A stratum with one class has a NaN estimate (and an
        :class:`UndefinedMetricWarning`).

    Notes
    -----
    Performance usually falls as label certainty falls: uncertain labels are
    both harder cases and noisier references. A model that does *better* on
    uncertain labels deserves a look (see :func:`check_model_vs_label_certainty`).

    Examples
    --------
    >>> from claimladder.labels import performance_by_label_certainty
    >>> y = [0, 1, 0, 1, 0, 1, 0, 1] * 3
    >>> s = [0.1, 0.9, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7] * 3
    >>> c = ["definite"] * 4 + ["possible"] * 4
    >>> t = performance_by_label_certainty(y, s, c * 3, n_resamples=100, rng=0)
    >>> t[["group", "estimate"]].round(3).values.tolist()
    [['definite', 1.0], ['possible', 0.75], ['all', 0.938]]
    """
    strata = pd.Series(_as_1d(strata, "strata", len(np.asarray(y_score)),
                              "performance_by_label_certainty"), dtype=object)
    strata = strata.where(strata.notna(), "missing").astype(str).to_numpy()
    grouped = grouped_metric(y_true, y_score, strata, metric=metric, groups=groups,
                             method=method, n_resamples=n_resamples,
                             confidence_level=confidence_level, rng=rng, pos_label=pos_label)
    table = grouped.table
    rows = [{"scope": scope, **{c: r[c] for c in STRATA_COLUMNS if c in r}}
            for r in table.to_dict("records")]
    if grouped.overall is not None:
        e = grouped.overall
        rows.append({"scope": scope, "group": "all", "metric": metric, "estimate": e.value,
                     "ci_low": e.ci.low, "ci_high": e.ci.high,
                     "confidence_level": e.confidence_level, "method": e.method, "n": e.n,
                     "n_clusters": e.n_clusters, "n_pos": e.n_pos})
    return pd.DataFrame(rows, columns=list(STRATA_COLUMNS))


def _comparison_rows(name: str, c: Comparison) -> list[dict[str, Any]]:
    rows = []
    for group, e in ((f"model (vs {name} rows)", c.estimate_a), (name, c.estimate_b)):
        rows.append({"scope": "split_cases", "group": group, "metric": "roc_auc",
                     "estimate": e.value, "ci_low": e.ci.low, "ci_high": e.ci.high,
                     "confidence_level": e.confidence_level, "method": e.method, "n": e.n,
                     "n_clusters": e.n_clusters, "n_pos": e.n_pos})
    return rows


def check_model_vs_label_certainty(
    y_true: Any,
    y_score: Any,
    ratings: Any,
    *,
    certainty: Any = None,
    ids: Any = None,
    groups: Any = None,
    pos_label: Any = 1,
    min_cases: int = 5,
    partition: str | None = None,
    method: Literal["bootstrap", "bca", "delong"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Finding:
    """Finding ``labels.model_vs_label_certainty`` (rung 1): is the model surer than its labels?

    On the cases where the annotators disagree, the reference label is the
    least certain. A model that ranks those reference labels better than the
    best single annotator does -- although the annotators' votes made the label
    -- has probably learnt something about how the label was produced rather
    than the finding (the report text, a workflow marker, the label leaking
    through a file name), or the reference was derived with the model.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference labels (binary).
    y_score : array-like of shape (n,)
        Model scores.
    ratings : pandas.DataFrame or array-like of shape (n, n_raters)
        The annotators' binary ratings, NaN where an annotator did not rate.
    certainty : array-like of shape (n,), optional
        Label certainty per case; adds the model's AUROC per certainty level
        to the table.
    ids : array-like of shape (n,), optional
        Image ids: the examples are split cases.
    groups : array-like of shape (n,), optional
        Patient ids (clustered intervals).
    pos_label : default 1
        Positive class of ``y_true`` and of the ratings.
    min_cases : int, default 5
        Fewest positive and fewest negative split cases for the check to be evaluable.
    partition : str, optional
        Recorded in ``params``.
    method : {"bootstrap", "bca", "delong"}, default "bootstrap"
        Paired comparison method (:func:`claimladder.metrics.compare_paired`).
    n_resamples, confidence_level, rng
        As for :func:`claimladder.metrics.compare_paired`; one child generator
        per annotator.

    Returns
    -------
    Finding
        ``warn`` when the model's AUROC on split cases exceeds the best
        annotator's (lower confidence bound of the paired difference above 0);
        ``pass`` otherwise; ``not_evaluable`` with too few split cases. The
        estimate is that paired difference; the table (:data:`STRATA_COLUMNS`)
        has the model's AUROC on unanimous vs split cases, per certainty
        level, and each annotator's AUROC (its binary rating as a score, i.e.
        its balanced accuracy) on the split cases.

    Notes
    -----
    Rung 1 (internal validation): the check concerns the model's evaluation,
    not the cohort, and what it detects -- a label available to the model --
    is a form of leakage. It warns rather than fails because an accurate model
    can legitimately beat every annotator when the reference comes from an
    independent source (biopsy, follow-up); say so when dismissing it.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.labels import check_model_vs_label_certainty
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> ratings = np.column_stack([np.where(rng.random(300) < 0.2, 1 - y, y) for _ in range(3)])
    >>> f = check_model_vs_label_certainty(y, y + rng.normal(0, 0.1, 300), ratings,
    ...                                    n_resamples=200, rng=0)
    >>> f.status.value, f.estimate.value > 0
    ('warn', True)
    """
    owner = "check_model_vs_label_certainty"
    check_positive_int(min_cases, param="min_cases", owner=owner)
    frame = _frame(ratings, owner)
    n = len(frame)
    y_pos = binary_labels(_as_1d(y_true, "y_true", n, owner), pos_label, owner)
    score = as_scores(_as_1d(y_score, "y_score", n, owner), "y_score", owner)
    g = None if groups is None else _as_1d(groups, "groups", n, owner)
    strata = agreement_strata(frame)
    split = strata == "split"
    criterion = "model AUROC on split cases does not exceed the best annotator's"
    params = {"min_cases": min_cases, "partition": partition, "method": method,
              "n_split": int(split.sum()), "n_resamples": n_resamples,
              "confidence_level": confidence_level,
              "annotators": [str(c) for c in frame.columns]}
    rng_strata, rng_cert, rng_cmp = spawn(rng, 3)
    common = {"groups": g, "n_resamples": n_resamples, "confidence_level": confidence_level,
              "pos_label": True}
    table = performance_by_label_certainty(y_pos, score, strata, scope="agreement",
                                           rng=rng_strata, **common)
    if certainty is not None:
        table = pd.concat([table, performance_by_label_certainty(
            y_pos, score, _as_1d(certainty, "certainty", n, owner), rng=rng_cert, **common)],
            ignore_index=True)
    n_pos, n_neg = int(y_pos[split].sum()), int((~y_pos[split]).sum())
    if min(n_pos, n_neg) < min_cases:
        return Finding(check="labels.model_vs_label_certainty", rung=Rung.INTERNAL,
                       status=Status.NOT_EVALUABLE,
                       message=f"Only {n_pos} positive and {n_neg} negative case(s) have split "
                               f"annotator ratings (fewer than {min_cases} of each), too few to "
                               "compare the model with the annotators where labels are uncertain.",
                       criterion=criterion, table=table, params=params)
    comparisons: dict[str, Comparison] = {}
    for j, child in enumerate(spawn(rng_cmp, frame.shape[1])):
        name = str(frame.columns[j])
        col = frame.iloc[:, j].to_numpy(dtype=object)
        rows = split & ~np.asarray(pd.isna(col), dtype=bool)
        if min(int(y_pos[rows].sum()), int((~y_pos[rows]).sum())) < 1:
            continue
        vote = _same(col[rows], np.full(int(rows.sum()), pos_label, dtype=object)).astype(float)
        comparisons[name] = compare_paired(
            y_pos[rows], score[rows], vote, metric="roc_auc", method=method,
            groups=None if g is None else g[rows], n_resamples=n_resamples,
            confidence_level=confidence_level, rng=child, pos_label=True)
    if not comparisons:
        return Finding(check="labels.model_vs_label_certainty", rung=Rung.INTERNAL,
                       status=Status.NOT_EVALUABLE,
                       message="No annotator rated split cases of both classes.",
                       criterion=criterion, table=table, params=params)
    defined = {k: c for k, c in comparisons.items() if not math.isnan(c.estimate_b.value)}
    best = max(defined, key=lambda k: defined[k].estimate_b.value)
    table = pd.concat([table, pd.DataFrame(
        [r for k, c in comparisons.items() for r in _comparison_rows(k, c)],
        columns=list(STRATA_COLUMNS))], ignore_index=True)
    c = comparisons[best]
    diff = c.difference
    examples = () if ids is None else tuple(
        str(v) for v in _as_1d(ids, "ids", n, owner)[split][:MAX_EXAMPLES])
    head = (f"On the {int(split.sum())} cases where annotators disagree, the model's AUROC "
            f"against the reference is {c.estimate_a.format()} vs {c.estimate_b.format()} for "
            f"the best annotator ({best}); difference {diff.format()}")
    if diff.is_defined and not math.isnan(diff.ci.low) and diff.ci.low > 0:
        status = Status.WARN
        message = (f"{head}. The model appears more certain than its labels: check that "
                   "nothing the model sees encodes how the label was made (report text, a "
                   "workflow marker, the file name) and that the reference was not derived "
                   "with the model.")
    elif not diff.is_defined:
        status = Status.NOT_EVALUABLE
        message = f"{head}: the comparison is undefined."
    else:
        status = Status.PASS
        message = f"{head}: the model is not more certain than its labels."
    params["best_annotator"] = best
    params["p_value"] = c.p_value
    return Finding(check="labels.model_vs_label_certainty", rung=Rung.INTERNAL, status=status,
                   message=message, estimate=diff, criterion=criterion, table=table,
                   examples=examples, params=params)

