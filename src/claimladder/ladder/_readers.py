"""Rung 6, reader study: does the model help readers, and how does it compare with them?

A study declares its reader study in ``study.toml``::

    [readers]
    table = "readers.csv"            # case_id, reader_id, modality, score[, decision, time_s]
    modalities = ["unaided", "aided"]

Cases are cohort image ids; their truth is the cohort's label (the reader table's
own ``truth`` column, if any, is ignored). The findings (``readers.*``):

* ``readers.mrmc_auroc`` -- Obuchowski-Rockette-Hillis comparison of the
  reader-averaged AUROC with and without the aid (difference, CI, F, ddf, p),
  with the reader-by-reader plot;
* ``readers.per_reader`` -- AUROC (and sensitivity/specificity of the calls) of
  every reader in every modality, and a per-reader forest plot;
* ``readers.model_vs_readers`` -- the model's standalone AUROC against the
  readers' average (the model as one more reader, OR-Hillis RRRC), when the
  study has predictions for the read cases;
* ``readers.decision_changes`` and ``readers.reading_time`` -- calls changed
  wrong-to-right and right-to-wrong (two-way bootstrap CIs over readers and
  cases), reading time per case, and the cases on which readers were misled by
  a confidently wrong model (pseudonymized image ids), when decisions and times
  were recorded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._core import AlignmentError, Finding, Plot, Rung, Status, StudySpecError
from ..readers import (
    ReaderStudyError,
    decision_changes,
    decision_impact_finding,
    load_readings,
    model_vs_readers,
    model_vs_readers_finding,
    mrmc_finding,
    or_hillis,
    reader_performance,
    reading_time_finding,
)
from ._common import captured_warnings, metric_options
from ._data import StudyData

__all__ = ["reader_findings"]


def _not_evaluable(check: str, message: str, **params: object) -> Finding:
    return Finding(check=check, rung=Rung.UTILITY, status=Status.NOT_EVALUABLE,
                   message=message, params=dict(params))


def _load(data: StudyData):
    """The reader study with the cohort's truth, or raise a user error naming the file."""
    spec = data.study.spec["readers"]
    path = data.study.resolve(spec["table"])
    if not path.is_file():
        raise StudySpecError(
            f"{data.study.path}: [readers] table = {spec['table']!r} does not exist "
            f"({path}). Fix: point it at the reader-study table, or remove the [readers] "
            "section."
        )
    cohort = data.cohort
    truth = pd.Series(cohort.y_true, index=cohort.image_ids)
    columns = dict(spec.get("columns", {}))
    try:
        return load_readings(path, truth, columns=columns or None)
    except AlignmentError as exc:
        raise AlignmentError(
            f"{path}: {exc} The reader table's case ids must be image ids of the included "
            "cohort (after the inclusion and exclusion rules)."
        ) from None
    except ReaderStudyError as exc:
        raise ReaderStudyError(f"{path}: {exc}") from None


def reader_findings(data: StudyData) -> list[Finding]:
    """The ``readers.*`` findings of a study that declares ``[readers] table``; [] otherwise."""
    spec = data.study.spec.get("readers", {})
    if not spec.get("table"):
        return []
    study = _load(data)
    first, second = spec["modalities"]
    options = metric_options(data)
    level = options["confidence_level"]
    seed = data.study.seed
    missing = [m for m in (first, second) if m not in study.modalities]
    if missing:
        raise StudySpecError(
            f"{data.study.path}: [readers] modalities = {[first, second]} but the reader table "
            f"has no modality {missing[0]!r}; its modalities are {list(study.modalities)}. "
            "Fix: name the modalities as the table's 'modality' column spells them."
        )
    findings: list[Finding] = []
    criteria = data.study.criteria.get("readers", {})
    with captured_warnings():
        result = or_hillis(study, modalities=(first, second), covariance=spec["covariance"],
                           confidence_level=level)
    findings.append(mrmc_finding(result, min_difference=float(criteria["min_auroc_gain"]),
                                 analysis=spec["analysis"]))
    findings.append(_per_reader(study, (first, second), level))

    scores = None
    if data.scores is not None:
        index = pd.Index(data.cohort.image_ids.astype(str))
        pos = index.get_indexer(list(study.case_ids))
        if (pos >= 0).all():
            scores = pd.Series(data.scores[pos], index=list(study.case_ids))
    modality = spec.get("model_modality") or first
    if scores is None:
        findings.append(_not_evaluable(
            "readers.model_vs_readers",
            "The model cannot be compared with the readers: the study has no predictions for "
            "the read cases.", modality=modality))
    else:
        with captured_warnings():
            mvr = model_vs_readers(study, model_scores=scores, modality=modality,
                                   covariance=spec["covariance"], confidence_level=level,
                                   model_name=data.model or "model")
        findings.append(model_vs_readers_finding(mvr, margin=float(criteria["model_margin"])))

    if study.decisions is None:
        findings.append(_not_evaluable(
            "readers.decision_changes",
            "The reader table records no 'decision' column, so changed calls (wrong to right, "
            "right to wrong) cannot be counted.", first=first, second=second))
        return findings
    threshold = float(data.study.metrics["threshold"])
    low, high = float(spec["confident_low"]), float(spec["confident_high"])
    if not low <= threshold <= high:
        raise StudySpecError(
            f"{data.study.path}: [readers] confident_low = {low:g} and confident_high = "
            f"{high:g} must bracket the operating threshold {threshold:g} of [metrics]."
        )
    with captured_warnings():
        impact = decision_changes(
            study, first=first, second=second, model_scores=scores, model_threshold=threshold,
            confident_low=low, confident_high=high, n_resamples=options["n_resamples"],
            confidence_level=level, rng=seed + 90)
    decision = decision_impact_finding(impact)
    if impact.misled is not None and len(impact.misled):
        decision = _with(decision, table=pd.concat([decision.table,
                                                    _misled_rows(impact.misled)],
                                                   ignore_index=True))
    findings.append(decision)
    findings.append(reading_time_finding(
        impact, max_increase_s=float(criteria["max_time_increase_s"])))
    return findings


def _with(finding: Finding, **changes: object) -> Finding:
    fields = {name: getattr(finding, name) for name in (
        "check", "rung", "status", "message", "estimate", "criterion", "table", "plots",
        "examples", "params")}
    fields.update(changes)
    return Finding(**fields)


def _misled_rows(misled: pd.DataFrame) -> pd.DataFrame:
    """The misled cases as rows of the decision table (metric ``misled_case``)."""
    return pd.DataFrame({
        "metric": "misled_case", "case_id": misled["case_id"].astype(str),
        "truth": misled["truth"], "model_score": misled["model_score"],
        "count": misled["n_misled"], "denominator": misled["n_exposed"],
    })


def _per_reader(study, modalities: tuple[str, str], level: float) -> Finding:
    """``readers.per_reader``: every reader's AUROC (and calls) in both modalities."""
    with captured_warnings():
        table = reader_performance(study.select(modalities), confidence_level=level)
    auc = table[table["metric"] == "roc_auc"]
    readers = auc[auc["reader_id"] != "mean"]
    data = pd.DataFrame({
        "label": [f"{r} {m}" for r, m in zip(readers["reader_id"], readers["modality"],
                                             strict=True)],
        "estimate": readers["estimate"].to_numpy(),
        "ci_low": readers["ci_low"].to_numpy(), "ci_high": readers["ci_high"].to_numpy(),
    })
    means = auc[auc["reader_id"] == "mean"].set_index("modality")["estimate"]
    wide = readers.pivot(index="reader_id", columns="modality", values="estimate")
    wide = wide.reindex(list(study.reader_ids))
    better = int((wide[modalities[1]] > wide[modalities[0]]).sum())
    plots = ()
    if np.isfinite(data[["estimate", "ci_low", "ci_high"]].to_numpy(dtype=float)).all():
        plots = (Plot(kind="forest", title="AUROC per reader and modality", data=data,
                      options={"xlabel": "AUROC (DeLong CI)", "reference": 0.5}),)
    return Finding(
        check="readers.per_reader", rung=Rung.UTILITY, status=Status.PASS,
        message=(f"{study.n_readers} readers read {study.n_cases} cases ({study.n_pos} "
                 f"positive) {modalities[0]} and {modalities[1]}: mean AUROC "
                 f"{means[modalities[0]]:.3f} vs {means[modalities[1]]:.3f}; "
                 f"{better} of {study.n_readers} readers had a higher AUROC "
                 f"{modalities[1]}."),
        table=table, plots=plots,
        params={"modalities": list(modalities), "n_readers": study.n_readers,
                "n_cases": study.n_cases},
    )
