"""Rung 1, internal validation: disjoint partitions and performance with patient-clustered CIs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from .._core import (
    Estimate,
    Finding,
    Plot,
    Rung,
    SmallSampleWarning,
    Status,
    UndefinedMetricWarning,
    spawn,
)
from .. import metrics
from ._data import StudyData

__all__ = ["internal_findings", "partition_performance"]

_TRAINING_KINDS = ("development", "calibration")
_TEST_KINDS = ("internal_test", "external")


def internal_findings(data: StudyData) -> list[Finding]:
    """Findings of rung 1 for one study (the performance ones need predictions)."""
    findings = [_overlap(data)]
    if data.scores is None:
        findings.append(Finding(
            check="internal.performance", rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
            message="No predictions were given ([data] predictions), so performance was not "
                    "measured."))
        return findings
    table, curves = partition_performance(data)
    findings.extend(_primary(data, table))
    findings.append(_operating_point(data, table))
    findings.append(Finding(
        check="internal.performance_by_partition", rung=Rung.INTERNAL, status=Status.PASS,
        message="Discrimination and operating point of the candidate in every partition.",
        table=table,
        plots=(Plot(kind="roc", title="ROC curve per partition", data=curves),),
        params={"model": data.model, "threshold": data.study.metrics["threshold"]},
    ))
    return findings


def _overlap(data: StudyData) -> Finding:
    parts, cohort = data.partitions, data.cohort
    patients, images = cohort.patient_ids, cohort.image_ids
    rows, examples = [], []
    for fit in (n for n in parts.names() if parts.kinds[n] in _TRAINING_KINDS):
        for test in (n for n in parts.names() if parts.kinds[n] in _TEST_KINDS):
            a, b = parts.masks[fit], parts.masks[test]
            shared_images = np.intersect1d(images[a], images[b])
            shared_patients = np.intersect1d(patients[a], patients[b])
            rows.append({"fit_partition": fit, "test_partition": test,
                         "shared_images": len(shared_images),
                         "shared_patients": len(shared_patients)})
            in_shared = b & np.isin(patients, shared_patients)
            examples.extend(images[in_shared][:3].tolist())
    table = pd.DataFrame(rows, columns=["fit_partition", "test_partition", "shared_images",
                                        "shared_patients"])
    bad = table[(table["shared_images"] > 0) | (table["shared_patients"] > 0)]
    if len(bad):
        worst = bad.iloc[0]
        message = (f"{int(bad['shared_patients'].sum())} patient(s) appear both in a partition "
                   f"used for fitting and in a test partition (e.g. {worst.fit_partition} and "
                   f"{worst.test_partition}: {worst.shared_patients} patients, "
                   f"{worst.shared_images} identical images); test results are optimistic.")
        status = Status.FAIL
    elif table.empty:
        message = "No fitting partition is declared, so disjointness cannot be checked."
        status = Status.NOT_EVALUABLE
    else:
        message = "Development / calibration and test partitions share no patient and no image."
        status = Status.PASS
    return Finding(check="internal.partition_overlap", rung=Rung.INTERNAL, status=status,
                   message=message, criterion="no patient in both a fitting and a test partition",
                   table=table, examples=tuple(dict.fromkeys(examples))[:10])


def _metric_kwargs(data: StudyData) -> dict:
    m = data.study.metrics
    return {"method": "bootstrap", "n_resamples": int(m["n_resamples"]),
            "confidence_level": float(m["confidence_level"])}


def partition_performance(data: StudyData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AUROC, sensitivity and specificity with CIs per partition, and ROC curve points.

    Returns
    -------
    table : pandas.DataFrame
        Long table ``partition, kind, metric, estimate, ci_low, ci_high, n, n_clusters, n_pos,
        method``.
    curves : pandas.DataFrame
        ``partition, fpr, tpr`` for the ROC figure.
    """
    cohort, parts = data.cohort, data.partitions
    y_all, s_all, g_all = cohort.y_true, data.scores, cohort.patient_ids
    threshold = float(data.study.metrics["threshold"])
    kwargs = _metric_kwargs(data)
    names = parts.names()
    rngs = spawn(data.study.seed, len(names))
    rows, curve_rows = [], []
    for name, rng in zip(names, rngs):
        mask = parts.masks[name]
        y, s, g = y_all[mask], s_all[mask], g_all[mask]
        metric_rngs = spawn(rng, 3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimates = {
                "roc_auc": metrics.roc_auc(y, s, groups=g, rng=metric_rngs[0], **kwargs),
                "sensitivity": metrics.sensitivity(y, s, threshold=threshold, groups=g,
                                                   rng=metric_rngs[1], **kwargs),
                "specificity": metrics.specificity(y, s, threshold=threshold, groups=g,
                                                   rng=metric_rngs[2], **kwargs),
            }
        notes = _notes(caught)
        for metric, est in estimates.items():
            rows.append({**_row(name, parts.kinds[name], metric, est), "note": notes.get(metric, "")})
        if len(np.unique(y)) == 2:
            fpr, tpr, _ = roc_curve(y, s)
            curve_rows.append(pd.DataFrame({"partition": name, "fpr": fpr, "tpr": tpr}))
    table = pd.DataFrame(rows)
    curves = (pd.concat(curve_rows, ignore_index=True) if curve_rows
              else pd.DataFrame(columns=["partition", "fpr", "tpr"]))
    return table, curves


_NOTE_PREFIX = {"AUROC": "roc_auc", "Sensitivity": "sensitivity", "Specificity": "specificity"}


def _notes(caught: list[warnings.WarningMessage]) -> dict[str, str]:
    """Warnings raised while estimating, keyed by metric: they belong in the evidence."""
    notes: dict[str, str] = {}
    for w in caught:
        if not issubclass(w.category, (UndefinedMetricWarning, SmallSampleWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        text = str(w.message)
        metric = next((m for p, m in _NOTE_PREFIX.items() if text.startswith(p)), "roc_auc")
        notes[metric] = (notes.get(metric, "") + " " + text).strip()
    return notes


def _row(partition: str, kind: str, metric: str, est: Estimate) -> dict:
    return {"partition": partition, "kind": kind, "metric": metric, "estimate": est.value,
            "ci_low": est.ci.low, "ci_high": est.ci.high, "n": est.n,
            "n_clusters": est.n_clusters, "n_pos": est.n_pos, "method": est.method}


def _estimate_from_row(row: pd.Series, confidence_level: float) -> Estimate:
    from .._core import ConfidenceInterval

    return Estimate(value=row["estimate"],
                    ci=ConfidenceInterval(low=row["ci_low"], high=row["ci_high"]),
                    confidence_level=confidence_level, method=row["method"], n=int(row["n"]),
                    n_clusters=None if pd.isna(row["n_clusters"]) else int(row["n_clusters"]),
                    n_pos=None if pd.isna(row["n_pos"]) else int(row["n_pos"]))


def _primary(data: StudyData, table: pd.DataFrame) -> list[Finding]:
    level = float(data.study.metrics["confidence_level"])
    minimum = data.study.criterion("internal", "min_auroc")
    rows = table[(table["kind"] == "internal_test") & (table["metric"] == "roc_auc")]
    if rows.empty:
        return [Finding(check="internal.roc_auc", rung=Rung.INTERNAL,
                        status=Status.NOT_EVALUABLE,
                        message="No internal test partition is declared ([partitions] "
                                "internal_test), so internal discrimination was not measured.")]
    est = _estimate_from_row(rows.iloc[0], level)
    criterion = None if minimum is None else f"AUROC >= {minimum:.2f} (lower CI bound)"
    if not est.is_defined:
        status, message = Status.NOT_EVALUABLE, (
            "Internal test AUROC is undefined: the partition holds a single class "
            f"(n={est.n}, positives={est.n_pos}).")
    elif minimum is None:
        status, message = Status.PASS, f"Internal test AUROC {est.format()}."
    elif est.value < minimum:
        status, message = Status.FAIL, (
            f"Internal test AUROC {est.format()} is below the criterion {minimum:.2f}.")
    elif est.ci.low < minimum:
        status, message = Status.WARN, (
            f"Internal test AUROC {est.format()}: the point estimate meets {minimum:.2f} but the "
            "confidence interval does not exclude lower values.")
    else:
        status, message = Status.PASS, (
            f"Internal test AUROC {est.format()} meets the criterion {minimum:.2f}.")
    return [Finding(check="internal.roc_auc", rung=Rung.INTERNAL, status=status, message=message,
                    estimate=est, criterion=criterion,
                    params={"partition": "internal_test", "model": data.model,
                            "clustered_by": "patient"})]


def _operating_point(data: StudyData, table: pd.DataFrame) -> Finding:
    level = float(data.study.metrics["confidence_level"])
    threshold = float(data.study.metrics["threshold"])
    rows = table[table["kind"] == "internal_test"].set_index("metric")
    if rows.empty:
        return Finding(check="internal.operating_point", rung=Rung.INTERNAL,
                       status=Status.NOT_EVALUABLE,
                       message="No internal test partition is declared.")
    sens = _estimate_from_row(rows.loc["sensitivity"], level)
    spec = _estimate_from_row(rows.loc["specificity"], level)
    failures = []
    for name, est in (("sensitivity", sens), ("specificity", spec)):
        minimum = data.study.criterion("internal", f"min_{name}")
        if minimum is not None and est.is_defined and est.value < minimum:
            failures.append(f"{name} {est.format()} < {minimum:.2f}")
    message = (f"At threshold {threshold:g}: sensitivity {sens.format()}, "
               f"specificity {spec.format()}.")
    if not (sens.is_defined and spec.is_defined):
        status = Status.NOT_EVALUABLE
    elif failures:
        status = Status.FAIL
        message += " Below criterion: " + "; ".join(failures) + "."
    else:
        status = Status.PASS
    return Finding(check="internal.operating_point", rung=Rung.INTERNAL, status=status,
                   message=message, estimate=sens,
                   table=rows.reset_index()[["metric", "estimate", "ci_low", "ci_high", "n",
                                             "n_pos"]],
                   params={"threshold": threshold, "partition": "internal_test"})
