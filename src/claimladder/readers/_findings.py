"""Findings (rung 6, clinical relevance) from reader-study results."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    Finding,
    Plot,
    Rung,
    Status,
    check_option,
)
from ._common import ANALYSES, estimate_from_row
from ._dbm import DBMResult
from ._decisions import DecisionImpact
from ._model import ModelVsReadersResult
from ._or import ORResult

__all__ = [
    "decision_impact_finding",
    "model_vs_readers_finding",
    "mrmc_finding",
    "reading_time_finding",
]


def _status(ci: ConfidenceInterval, threshold: float) -> Status:
    """Pass when the whole interval exceeds ``threshold``, fail when it lies below."""
    if math.isnan(ci.low) or math.isnan(ci.high):
        return Status.NOT_EVALUABLE
    if ci.low > threshold:
        return Status.PASS
    if ci.high < threshold:
        return Status.FAIL
    return Status.WARN


def _level(e: Estimate) -> str:
    return f"{100 * e.confidence_level:g}%"


def _json_table(table: pd.DataFrame) -> pd.DataFrame:
    """Infinite degrees of freedom (normal reference) become NaN, with the distribution named."""
    table = table.copy()
    for col in ("df", "ddf"):
        if col in table.columns:
            values = table[col].to_numpy(dtype=np.float64)
            if col == "df":
                table.insert(table.columns.get_loc(col) + 1, "distribution",
                             np.where(np.isposinf(values), "normal", "t"))
            table[col] = np.where(np.isinf(values), np.nan, values)
    return table


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def mrmc_finding(
    result: ORResult | DBMResult,
    *,
    min_difference: float = 0.0,
    analysis: str = "RRRC",
) -> Finding:
    """Finding ``readers.mrmc_auroc``: did the aid raise the readers' average AUROC?

    Parameters
    ----------
    result : ORResult or DBMResult
        From :func:`or_hillis` or :func:`dbm`; the first comparison
        (``modalities[1] - modalities[0]``) is judged.
    min_difference : float, default 0.0
        The improvement the claim requires.
    analysis : {"RRRC", "FRRC", "RRFC"}, default "RRRC"
        Which generalization is judged (RRRC: to new readers and new cases).

    Returns
    -------
    Finding
        ``pass`` when the interval's lower bound exceeds ``min_difference``,
        ``fail`` when its upper bound lies below it, ``warn`` when the interval
        straddles it (inconclusive), ``not_evaluable`` when undefined (one
        reader for a random-reader analysis, a class with one case). The
        table holds all analyses; the plot shows per-reader differences
        (fixed-reader z intervals, OR results only) and the average.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, mrmc_finding, or_hillis
    >>> rng = np.random.default_rng(0)
    >>> truth = np.repeat([0, 1], 30)
    >>> scores = truth * np.array([1.0, 2.0])[:, None, None] + rng.normal(size=(2, 5, 60))
    >>> study = ReaderStudy(case_ids=tuple(f"c{k}" for k in range(60)),
    ...                     reader_ids=tuple("ABCDE"), modalities=("unaided", "aided"),
    ...                     truth=truth, scores=scores)
    >>> finding = mrmc_finding(or_hillis(study))
    >>> finding.check, finding.status.value
    ('readers.mrmc_auroc', 'pass')
    """
    analysis = check_option(analysis, ANALYSES, param="analysis", owner="mrmc_finding")
    test = {"RRRC": result.rrrc, "FRRC": result.frrc, "RRFC": result.rrfc}[analysis]
    row = test.differences.iloc[0]
    method = f"{test.method}-{analysis.lower()}"
    estimate = result.difference if analysis == "RRRC" else estimate_from_row(
        row, confidence_level=result.confidence_level, method=method, n=result.n_cases,
        n_pos=result.n_pos)
    first, second = row["first"], row["second"]
    means = test.modality_auc.set_index("modality")["auc"]
    status = _status(estimate.ci, min_difference)
    design = f"{result.n_readers} readers, {result.n_cases} cases ({result.n_pos} positive)"
    if status is Status.NOT_EVALUABLE:
        if result.n_readers < 2 and analysis != "FRRC":
            reason = "at least two readers are needed for a random-reader analysis"
        elif test.error_term == 0:
            reason = ("the estimated variance of the difference is zero (the AUROCs vary "
                      "neither between readers nor between case samples)")
        else:
            reason = "the AUROC covariance is undefined (a class has a single case)"
        message = f"The {analysis} comparison of {second} with {first} is not evaluable: {reason}."
    else:
        verdict = {Status.PASS: "improved", Status.FAIL: "did not reach the required gain in",
                   Status.WARN: "did not demonstrably change"}[status]
        message = (
            f"{second} {verdict} the readers' average AUROC: {means[second]:.3f} vs "
            f"{means[first]:.3f} with {first}, difference {estimate.format()} "
            f"({_level(estimate)} CI, {test.method} {analysis}, F = {test.f_statistic:.2f} on "
            f"{test.ndf:g} and {test.ddf:.1f} df, p = {_p(test.p_value)}; {design})."
        )
    plots: tuple[Plot, ...] = ()
    if isinstance(result, ORResult):
        pr = result.per_reader[result.per_reader["comparison"] == row["comparison"]]
        data = pd.DataFrame({
            "label": [f"reader {r}" for r in pr["reader_id"]] + [f"average ({analysis})"],
            "estimate": [*pr["estimate"], estimate.value],
            "ci_low": [*pr["ci_low"], estimate.ci.low],
            "ci_high": [*pr["ci_high"], estimate.ci.high],
        })
        if np.isfinite(data[["estimate", "ci_low", "ci_high"]].to_numpy()).all():
            plots = (Plot(kind="forest",
                          title=f"AUROC {second} - {first} per reader and on average",
                          data=data, options={"xlabel": "AUROC difference",
                                              "reference": 0.0}),)
    table = result.to_frame() if isinstance(result, ORResult) else pd.concat(
        [t.differences.assign(analysis=t.analysis) for t in (result.rrrc, result.frrc,
                                                             result.rrfc)], ignore_index=True)
    return Finding(
        check="readers.mrmc_auroc", rung=Rung.UTILITY, status=status, message=message,
        estimate=estimate,
        criterion=(f"AUROC({second}) - AUROC({first}) > {min_difference:g} "
                   f"(lower {_level(estimate)} bound, {analysis})"),
        table=_json_table(table), plots=plots,
        params={"analysis": analysis, "method": test.method, "first": first, "second": second,
                "min_difference": min_difference, "n_readers": result.n_readers,
                "n_cases": result.n_cases, "f_statistic": _finite(test.f_statistic),
                "ddf": _finite(test.ddf), "p_value": _finite(test.p_value)},
    )


def model_vs_readers_finding(result: ModelVsReadersResult, *, margin: float = 0.05
                             ) -> Finding:
    """Finding ``readers.model_vs_readers``: is the model at least as good as the readers?

    Parameters
    ----------
    result : ModelVsReadersResult
        From :func:`model_vs_readers`.
    margin : float, default 0.05
        Non-inferiority margin on the AUROC scale (0: superiority).

    Returns
    -------
    Finding
        ``pass`` when the lower RRRC bound of ``model - readers`` exceeds
        ``-margin`` (non-inferior), ``fail`` when the upper bound lies below
        ``-margin`` (inferior), ``warn`` otherwise, ``not_evaluable`` when
        undefined.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, model_vs_readers, model_vs_readers_finding
    >>> rng = np.random.default_rng(1)
    >>> truth = np.repeat([0, 1], 25)
    >>> latent = 1.3 * truth + rng.normal(size=50)
    >>> study = ReaderStudy(case_ids=tuple(f"c{k}" for k in range(50)),
    ...                     reader_ids=("A", "B", "C", "D", "E"), modalities=("unaided",),
    ...                     truth=truth, scores=latent + rng.normal(scale=0.8, size=(1, 5, 50)))
    >>> res = model_vs_readers(study, model_scores=latent + rng.normal(scale=0.3, size=50))
    >>> model_vs_readers_finding(res).status.value
    'pass'
    """
    e = result.difference
    status = _status(e.ci, -margin)
    if status is Status.NOT_EVALUABLE:
        message = ("The comparison of the model with the readers is not evaluable: "
                   + ("at least two readers are needed." if result.n_readers < 2
                      else "the AUROC covariance is undefined."))
    else:
        verdict = {Status.PASS: "is non-inferior to", Status.FAIL: "is inferior to",
                   Status.WARN: "is not demonstrably non-inferior to"}[status]
        message = (
            f"The model (AUROC {result.model_auc.value:.3f}) {verdict} the average of "
            f"{result.n_readers} readers ({result.modality}, AUROC {result.reader_auc.value:.3f}"
            f"): difference {e.format()} ({_level(e)} CI, OR-Hillis RRRC, p = "
            f"{_p(result.p_value)}; margin {margin:g})."
        )
    pr = result.per_reader
    data = pd.DataFrame({"label": [f"reader {r}" for r in pr["reader_id"]] + ["average (RRRC)"],
                         "estimate": [*pr["estimate"], e.value],
                         "ci_low": [*pr["ci_low"], e.ci.low],
                         "ci_high": [*pr["ci_high"], e.ci.high]})
    plots: tuple[Plot, ...] = ()
    if np.isfinite(data[["estimate", "ci_low", "ci_high"]].to_numpy()).all():
        plots = (Plot(kind="forest", title="AUROC model - reader", data=data,
                      options={"xlabel": "AUROC difference (model - reader)",
                               "reference": -margin}),)
    return Finding(
        check="readers.model_vs_readers", rung=Rung.UTILITY, status=status, message=message,
        estimate=e, criterion=f"AUROC(model) - AUROC(readers) > -{margin:g} "
                              f"(lower {_level(e)} bound, RRRC)",
        table=_json_table(result.to_frame()), plots=plots,
        params={"modality": result.modality, "covariance": result.covariance, "margin": margin,
                "n_readers": result.n_readers, "n_cases": result.n_cases,
                "model_auc": result.model_auc.value, "reader_auc": result.reader_auc.value},
    )


def decision_impact_finding(impact: DecisionImpact) -> Finding:
    """Finding ``readers.decision_changes``: did the aid correct more calls than it spoiled?

    Parameters
    ----------
    impact : DecisionImpact
        From :func:`decision_changes`.

    Returns
    -------
    Finding
        The estimate is ``net_corrected`` (wrong-to-right minus right-to-wrong
        fraction of readings): ``pass`` when its interval lies above 0,
        ``fail`` when below 0, ``warn`` otherwise. Examples are the cases on
        which readers were misled by a confidently wrong model (when model
        scores were given).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, decision_changes, decision_impact_finding
    >>> truth = np.repeat([0, 1], 20)
    >>> unaided = np.tile(np.r_[np.zeros(15), np.ones(5), np.zeros(8), np.ones(12)], (4, 1))
    >>> aided = np.tile(np.r_[np.zeros(18), np.ones(2), np.zeros(2), np.ones(18)], (4, 1))
    >>> dec = np.stack([unaided, aided]).astype(int)
    >>> study = ReaderStudy(case_ids=tuple(f"c{k}" for k in range(40)), reader_ids=tuple("ABCD"),
    ...                     modalities=("unaided", "aided"), truth=truth,
    ...                     scores=dec.astype(float), decisions=dec)
    >>> decision_impact_finding(decision_changes(study, n_resamples=300, rng=0)).status.value
    'pass'
    """
    e = impact.net_corrected
    status = _status(e.ci, 0.0)
    w2r, r2w = impact.wrong_to_right, impact.right_to_wrong
    verdict = {Status.PASS: "corrected more calls than it spoiled",
               Status.FAIL: "spoiled more calls than it corrected",
               Status.WARN: "did not demonstrably change the number of correct calls",
               Status.NOT_EVALUABLE: "could not be evaluated"}[status]
    message = (
        f"With {impact.second}, readers changed {impact.changed.value:.1%} of their calls: "
        f"{w2r.value:.1%} wrong to right and {r2w.value:.1%} right to wrong; the aid {verdict} "
        f"(net {e.format()} of readings, {_level(e)} two-way bootstrap CI; "
        f"{impact.n_readers} readers x {impact.n_cases} cases)."
    )
    if impact.misled is not None and len(impact.misled):
        message += (f" Readers were misled by a confidently wrong model on "
                    f"{len(impact.misled)} case(s).")
    return Finding(
        check="readers.decision_changes", rung=Rung.UTILITY, status=status, message=message,
        estimate=e, criterion="net corrected fraction of readings > 0 (lower bound)",
        table=impact.table, examples=impact.misled_case_ids,
        params={"first": impact.first, "second": impact.second,
                "n_readers": impact.n_readers, "n_cases": impact.n_cases,
                "n_resamples": impact.n_resamples},
    )


def reading_time_finding(impact: DecisionImpact, *, max_increase_s: float = 0.0) -> Finding:
    """Finding ``readers.reading_time``: did the aid slow reading down?

    Parameters
    ----------
    impact : DecisionImpact
        From :func:`decision_changes` on a study with reading times.
    max_increase_s : float, default 0.0
        Largest acceptable increase of the mean reading time per case (seconds).

    Returns
    -------
    Finding
        The estimate is the paired mean time difference (aided - unaided):
        ``warn`` when its lower bound exceeds ``max_increase_s`` (reading is
        credibly slower than accepted), ``pass`` otherwise, ``not_evaluable``
        without reading times.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, decision_changes, reading_time_finding
    >>> truth = np.repeat([0, 1], 10)
    >>> dec = np.tile(truth, (2, 3, 1))
    >>> times = np.stack([np.full((3, 20), 60.0), np.full((3, 20), 45.0)])
    >>> study = ReaderStudy(case_ids=tuple(f"c{k}" for k in range(20)), reader_ids=tuple("ABC"),
    ...                     modalities=("unaided", "aided"), truth=truth,
    ...                     scores=dec.astype(float), decisions=dec, times=times)
    >>> finding = reading_time_finding(decision_changes(study, n_resamples=100, rng=0))
    >>> finding.status.value, finding.estimate.value
    ('pass', -15.0)
    """
    e = impact.time_difference
    if e is None or not e.is_defined:
        return Finding(
            check="readers.reading_time", rung=Rung.UTILITY, status=Status.NOT_EVALUABLE,
            message="Reading time was not recorded in both modalities, so its change with the "
                    "aid cannot be estimated.",
            params={"first": impact.first, "second": impact.second},
        )
    slower = not math.isnan(e.ci.low) and e.ci.low > max_increase_s
    status = Status.WARN if slower else Status.PASS
    message = (
        f"Mean reading time per case was {impact.time_second.value:.1f} s with {impact.second} "
        f"vs {impact.time_first.value:.1f} s with {impact.first}: paired difference "
        f"{e.format(1)} s ({_level(e)} two-way bootstrap CI)"
        + ("; reading is credibly slower than accepted." if slower else ".")
    )
    return Finding(
        check="readers.reading_time", rung=Rung.UTILITY, status=status, message=message,
        estimate=e, criterion=f"mean time increase <= {max_increase_s:g} s (lower bound)",
        table=impact.table[impact.table["metric"].str.startswith("time_")].reset_index(drop=True),
        params={"first": impact.first, "second": impact.second,
                "max_increase_s": max_increase_s},
    )
