"""Decision impact of an aid: changed calls, reading time, readers misled by a confident model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    RngLike,
    check_positive_int,
    spawn,
    table_to_dict,
)
from ._common import check_level, warn_undefined
from ._model import align_case_scores
from ._study import ReaderStudy, ReaderStudyError, resolve_study

__all__ = ["DecisionImpact", "decision_changes"]

_MAX_EXAMPLES = 10
_METHOD = "two-way-bootstrap-percentile"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DecisionImpact:
    """How an aid changed readers' calls and reading times (see :func:`decision_changes`).

    Parameters
    ----------
    first, second : str
        The compared modalities (without and with the aid).
    changed, wrong_to_right, right_to_wrong : Estimate
        Fractions of the (reader, case) readings whose call changed, changed
        from wrong to right, and from right to wrong.
    net_corrected : Estimate
        ``wrong_to_right - right_to_wrong``: the net fraction of readings
        corrected by the aid.
    accuracy_first, accuracy_second : Estimate
        Fraction of correct calls without and with the aid.
    time_first, time_second, time_difference : Estimate or None
        Mean reading time per case (seconds) and the paired mean difference
        ``second - first``; None without reading times.
    table : pandas.DataFrame
        Every estimate in a long table (``metric, estimate, ci_low, ci_high,
        count, denominator``), including sensitivity and specificity of the
        calls in both modalities and, with model scores, the misled rates.
    per_reader : pandas.DataFrame
        Counts per reader: ``reader_id, n_changed, n_wrong_to_right,
        n_right_to_wrong, accuracy_first, accuracy_second, mean_time_first,
        mean_time_second``.
    misled : pandas.DataFrame or None
        With model scores: cases where readers who were right without the aid
        changed to the model's wrong call while the model was confidently
        wrong: ``case_id, truth, model_score, n_misled, n_exposed`` (readers
        right unaided), most misled first.
    misled_case_ids : tuple of str
        Up to ten example case ids from ``misled``.
    n_readers, n_cases : int
        Design size.
    n_resamples : int
        Bootstrap replicates behind every interval.
    """

    first: str
    second: str
    changed: Estimate
    wrong_to_right: Estimate
    right_to_wrong: Estimate
    net_corrected: Estimate
    accuracy_first: Estimate
    accuracy_second: Estimate
    time_first: Estimate | None
    time_second: Estimate | None
    time_difference: Estimate | None
    table: pd.DataFrame
    per_reader: pd.DataFrame
    misled: pd.DataFrame | None
    misled_case_ids: tuple[str, ...]
    n_readers: int
    n_cases: int
    n_resamples: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {
            "first": self.first,
            "second": self.second,
            "table": table_to_dict(self.table),
            "per_reader": table_to_dict(self.per_reader),
            "misled": None if self.misled is None else table_to_dict(self.misled),
            "misled_case_ids": list(self.misled_case_ids),
            "n_readers": self.n_readers,
            "n_cases": self.n_cases,
            "n_resamples": self.n_resamples,
        }


def _two_way_weights(n_readers: int, truth: np.ndarray, n_resamples: int,
                     rng: RngLike) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap counts of readers ``(B, r)`` and of cases ``(B, c)`` (stratified by truth)."""
    g_readers, g_cases = spawn(rng, 2)
    wr = g_readers.multinomial(n_readers, np.full(n_readers, 1 / n_readers), size=n_resamples)
    wc = np.zeros((n_resamples, truth.size))
    for label in (0, 1):
        idx = np.flatnonzero(truth == label)
        wc[:, idx] = g_cases.multinomial(idx.size, np.full(idx.size, 1 / idx.size),
                                         size=n_resamples)
    return wr.astype(np.float64), wc


def _ratio(num: np.ndarray, den: np.ndarray, wr: np.ndarray, wc: np.ndarray
           ) -> tuple[float, np.ndarray]:
    """Weighted ratio ``sum w_j w_k num_jk / sum w_j w_k den_jk``: full sample and replicates."""
    full_den = den.sum()
    full = float(num.sum() / full_den) if full_den > 0 else np.nan
    rep_num = np.einsum("bj,jk,bk->b", wr, num, wc, optimize=True)
    rep_den = np.einsum("bj,jk,bk->b", wr, den, wc, optimize=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(rep_den > 0, rep_num / np.where(rep_den > 0, rep_den, 1), np.nan)
    return full, reps


def _estimate(full: float, reps: np.ndarray, level: float, n: int, n_pos: int | None,
              n_clusters: int) -> Estimate:
    finite = reps[np.isfinite(reps)]
    if not np.isfinite(full) or finite.size < 2:
        ci = ConfidenceInterval(low=np.nan, high=np.nan)
    else:
        low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
        ci = ConfidenceInterval(low=float(low), high=float(high))
    return Estimate(value=full, ci=ci, confidence_level=level, method=_METHOD, n=n,
                    n_clusters=n_clusters, n_pos=n_pos)


def decision_changes(
    readings: ReaderStudy | pd.DataFrame | str | os.PathLike[str],
    truth: Any = None,
    *,
    first: str = "unaided",
    second: str = "aided",
    model_scores: Any = None,
    model_threshold: float = 0.5,
    confident_low: float = 0.1,
    confident_high: float = 0.9,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> DecisionImpact:
    """How often an aid changed readers' calls, for better or worse, and how long reading took.

    Parameters
    ----------
    readings : ReaderStudy, pandas.DataFrame or path
        A fully crossed reader study with ``decision`` (and optionally
        ``time_s``) recorded, or its long table.
    truth : optional
        Case truth when ``readings`` is a table.
    first, second : str, default "unaided", "aided"
        The modality without and with the aid.
    model_scores : mapping, pandas.Series or array-like, optional
        The aid's score per case. Enables the "misled" analysis.
    model_threshold : float, default 0.5
        The model calls a case positive when ``score >= model_threshold``.
    confident_low, confident_high : float, default 0.1, 0.9
        The model is *confidently* negative when ``score <= confident_low``
        and confidently positive when ``score >= confident_high``.
    n_resamples : int, default 2000
        Two-way bootstrap replicates.
    confidence_level : float, default 0.95
        Level of every interval.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7): readers and cases are resampled by two
        child generators.

    Returns
    -------
    DecisionImpact

    Raises
    ------
    ReaderStudyError
        The study has no decisions, or an unknown modality.
    AlignmentError
        ``model_scores`` misses cases.
    ValueError
        ``confident_low <= model_threshold <= confident_high`` does not hold.

    Notes
    -----
    Each (reader, case) pair read in both modalities is one paired reading.
    Rates are over the ``r x c`` pairs; reading times are paired means over the
    pairs with both times recorded.

    Readings share readers and cases, so intervals come from a two-way
    bootstrap: each replicate resamples readers with replacement and,
    independently, cases with replacement within each truth class, and keeps
    every reading of the drawn readers on the drawn cases (the crossed
    bootstrap of McCullagh 2000; implemented as bilinear forms of the bootstrap
    counts, so no data are copied). This bootstrap is conservative: its
    variance over-counts the reader-by-case interaction (McCullagh 2000;
    Owen 2007), so intervals err on the wide side. The interval is the
    percentile interval.

    With ``model_scores``, a reader is *misled* on a case when the model was
    confidently wrong on it, the reader's unaided call was right, and the
    aided call changed to the model's (wrong) call. The table reports the
    rate of such switches among readings exposed to a confidently wrong model
    (reader right unaided), next to the rate of right-to-wrong switches when
    the model was right -- their gap is the automation bias the aid induced.

    References
    ----------
    McCullagh P. Resampling and exchangeable arrays. Bernoulli 2000;6:285-301.
    Owen AB. The pigeonhole bootstrap. Ann Appl Stat 2007;1:386-411.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, decision_changes
    >>> truth = np.array([0, 0, 0, 1, 1, 1])
    >>> unaided = np.array([[0, 1, 0, 0, 1, 1], [0, 0, 1, 0, 1, 0]])
    >>> aided = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    >>> decisions = np.stack([unaided, aided])
    >>> study = ReaderStudy(case_ids=tuple("abcdef"), reader_ids=("R1", "R2"),
    ...                     modalities=("unaided", "aided"), truth=truth,
    ...                     scores=decisions.astype(float), decisions=decisions)
    >>> impact = decision_changes(study, n_resamples=200, rng=0)
    >>> impact.wrong_to_right.value, impact.right_to_wrong.value
    (0.3333333333333333, 0.0)
    >>> round(impact.accuracy_first.value, 3), impact.accuracy_second.value
    (0.583, 0.9166666666666666)
    """
    owner = "decision_changes"
    confidence_level = check_level(confidence_level, owner)
    n_resamples = check_positive_int(n_resamples, param="n_resamples", owner=owner)
    study = resolve_study(readings, truth, owner=owner)
    if study.decisions is None:
        raise ReaderStudyError(
            f"{owner}: the reader study has no decisions; add a 'decision' column (the "
            "reader's 0/1 call for each reading) to analyse changed decisions."
        )
    if str(first) == str(second):
        raise ReaderStudyError(f"{owner}: 'first' and 'second' must differ; both are {first!r}.")
    i1 = study.modality_index(str(first), owner=owner)
    i2 = study.modality_index(str(second), owner=owner)
    if not (confident_low <= model_threshold <= confident_high):
        raise ValueError(
            f"The 'confident_low', 'model_threshold' and 'confident_high' parameters of {owner} "
            f"must satisfy confident_low <= model_threshold <= confident_high. Got "
            f"{confident_low!r}, {model_threshold!r}, {confident_high!r} instead."
        )
    y = study.truth.astype(bool)
    d1 = study.decisions[i1].astype(bool)  # (r, c)
    d2 = study.decisions[i2].astype(bool)
    right1, right2 = d1 == y, d2 == y
    r, c = d1.shape
    n = r * c
    ones = np.ones((r, c))
    wr, wc = _two_way_weights(r, study.truth, n_resamples, rng)

    def est(num: np.ndarray, den: np.ndarray, n_pos: int | None = None) -> tuple[Estimate, int,
                                                                                 int]:
        full, reps = _ratio(num.astype(np.float64), den.astype(np.float64), wr, wc)
        return (_estimate(full, reps, confidence_level, int(den.sum()), n_pos, r),
                int(num.sum()), int(den.sum()))

    rows: list[list[Any]] = []
    results: dict[str, Estimate] = {}

    def add(name: str, num: np.ndarray, den: np.ndarray) -> None:
        e, k, m = est(num, den)
        results[name] = e
        rows.append([name, e.value, e.ci.low, e.ci.high, k, m])

    add("changed", d1 != d2, ones)
    add("wrong_to_right", ~right1 & right2, ones)
    add("right_to_wrong", right1 & ~right2, ones)
    add("accuracy_first", right1, ones)
    add("accuracy_second", right2, ones)
    pos = np.broadcast_to(y, (r, c))
    add("sensitivity_first", d1 & pos, pos)
    add("sensitivity_second", d2 & pos, pos)
    add("specificity_first", ~d1 & ~pos, ~pos)
    add("specificity_second", ~d2 & ~pos, ~pos)
    net_full, net_reps = _ratio((right2.astype(float) - right1), ones, wr, wc)
    results["net_corrected"] = _estimate(net_full, net_reps, confidence_level, n, None, r)
    rows.insert(3, ["net_corrected", net_full, results["net_corrected"].ci.low,
                    results["net_corrected"].ci.high,
                    int(right2.sum()) - int(right1.sum()), n])

    time_first = time_second = time_difference = None
    if study.times is not None:
        t1, t2 = study.times[i1], study.times[i2]
        both = np.isfinite(t1) & np.isfinite(t2)
        if both.any():
            z1, z2 = np.where(both, t1, 0.0), np.where(both, t2, 0.0)
            for name, num in (("time_first", z1), ("time_second", z2),
                              ("time_difference", z2 - z1)):
                full, reps = _ratio(num, both.astype(float), wr, wc)
                results[name] = _estimate(full, reps, confidence_level, int(both.sum()), None, r)
                rows.append([name, full, results[name].ci.low, results[name].ci.high,
                             np.nan, int(both.sum())])
            time_first, time_second = results["time_first"], results["time_second"]
            time_difference = results["time_difference"]
        else:
            warn_undefined(f"{owner}: no (reader, case) pair has a reading time in both "
                           "modalities; time estimates are omitted.")

    misled = None
    misled_ids: tuple[str, ...] = ()
    if model_scores is not None:
        score = align_case_scores(model_scores, study, param="model_scores", owner=owner)
        model_call = score >= model_threshold
        model_wrong = model_call != y
        confident = (score >= confident_high) | (score <= confident_low)
        conf_wrong = np.broadcast_to(model_wrong & confident, (r, c))
        model_right = np.broadcast_to(~model_wrong, (r, c))
        switched_to_model = right1 & ~right2 & (d2 == np.broadcast_to(model_call, (r, c)))
        exposed = right1 & conf_wrong
        add("misled_rate_confidently_wrong_model", switched_to_model & conf_wrong, exposed)
        add("right_to_wrong_rate_model_right", right1 & ~right2 & model_right,
            right1 & model_right)
        n_misled = (switched_to_model & conf_wrong).sum(axis=0)
        n_exposed = exposed.sum(axis=0)
        misled = pd.DataFrame({
            "case_id": list(study.case_ids), "truth": study.truth.astype(int),
            "model_score": score, "n_misled": n_misled, "n_exposed": n_exposed,
        })
        misled = misled[misled["n_misled"] > 0].sort_values(
            ["n_misled", "model_score"], ascending=[False, False], kind="stable"
        ).reset_index(drop=True)
        misled_ids = tuple(misled["case_id"].head(_MAX_EXAMPLES))

    table = pd.DataFrame(rows, columns=["metric", "estimate", "ci_low", "ci_high", "count",
                                        "denominator"])
    with np.errstate(divide="ignore", invalid="ignore"):
        per_reader = pd.DataFrame({
            "reader_id": list(study.reader_ids),
            "n_changed": (d1 != d2).sum(axis=1),
            "n_wrong_to_right": (~right1 & right2).sum(axis=1),
            "n_right_to_wrong": (right1 & ~right2).sum(axis=1),
            "accuracy_first": right1.mean(axis=1),
            "accuracy_second": right2.mean(axis=1),
        })
        if study.times is not None:
            for name, times in (("mean_time_first", study.times[i1]),
                                ("mean_time_second", study.times[i2])):
                seen = np.isfinite(times)
                per_reader[name] = np.where(seen, times, 0.0).sum(axis=1) / seen.sum(axis=1)
    return DecisionImpact(
        first=study.modalities[i1], second=study.modalities[i2],
        changed=results["changed"], wrong_to_right=results["wrong_to_right"],
        right_to_wrong=results["right_to_wrong"], net_corrected=results["net_corrected"],
        accuracy_first=results["accuracy_first"], accuracy_second=results["accuracy_second"],
        time_first=time_first, time_second=time_second, time_difference=time_difference,
        table=table, per_reader=per_reader, misled=misled, misled_case_ids=misled_ids,
        n_readers=r, n_cases=c, n_resamples=n_resamples,
    )
