"""Rung 1, internal validation: disjoint partitions and performance with patient-clustered CIs."""

from __future__ import annotations

import pandas as pd

from .._core import (
    Estimate,
    Finding,
    Plot,
    Rung,
    Status,
    spawn,
)
from .. import metrics
from .._core import StudySpecError, did_you_mean
from ..leakage import (
    check_dicom_phi,
    check_filename_label,
    check_metadata_label,
    check_patient_overlap,
    check_pixel_markers,
    check_split_column,
    marker_flags,
)
from ._common import captured_warnings, metric_options, roc_curves
from ._data import StudyData

__all__ = ["internal_findings", "leakage_findings", "partition_performance"]


def internal_findings(data: StudyData) -> list[Finding]:
    """Findings of rung 1 for one study (the performance ones need predictions)."""
    findings = leakage_findings(data)
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


def leakage_findings(data: StudyData) -> list[Finding]:
    """The leakage audit on the study's partitions (and any alternative split columns)."""
    cohort, parts = data.cohort, data.partitions
    masks, kinds = dict(parts.masks), dict(parts.kinds)
    headers = data.headers()
    site = cohort.column("site").astype(str).to_numpy() if cohort.has_role("site") else None
    spec = data.study.spec["leakage"]
    findings = [check_patient_overlap(cohort, masks, kinds, headers=headers)]
    for column in spec.get("split_columns", []):
        if column not in cohort.table.columns:
            raise StudySpecError(
                f"{data.study.path}: [leakage] split_columns names {column!r}, which is not a "
                f"cohort column.{did_you_mean(column, list(cohort.table.columns))}")
        findings.append(check_split_column(cohort, column, headers=headers))
    roles = cohort.roles
    skip = {roles.image_id, roles.patient_id, roles.label, roles.path, roles.label_certainty,
            *roles.annotators}
    columns = [c for c in cohort.table.columns if c not in skip]
    findings.append(check_metadata_label(
        cohort, columns, masks, kinds, headers=headers, groups=cohort.patient_ids, site=site,
        workflow_fields=spec.get("workflow_fields"), rng=data.study.seed + 11))
    if data.has_images:
        findings.append(check_filename_label(cohort, masks=masks, headers=headers, site=site))
        if headers is not None:
            findings.append(check_dicom_phi(headers, image_ids=cohort.image_ids))
        images, _ = data.images()
        findings.extend(check_pixel_markers(cohort, marker_flags(images), masks, kinds,
                                            site=site))
    return findings


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
    kwargs = {"method": "bootstrap", **metric_options(data)}
    names = parts.names()
    rngs = spawn(data.study.seed, len(names))
    rows = []
    for name, rng in zip(names, rngs):
        mask = parts.masks[name]
        y, s, g = y_all[mask], s_all[mask], g_all[mask]
        metric_rngs = spawn(rng, 3)
        estimators = {
            "roc_auc": (metrics.roc_auc, {}),
            "sensitivity": (metrics.sensitivity, {"threshold": threshold}),
            "specificity": (metrics.specificity, {"threshold": threshold}),
        }
        for (metric, (estimate, extra)), child in zip(estimators.items(), metric_rngs):
            with captured_warnings() as notes:  # undefined metrics become notes, not noise
                est = estimate(y, s, groups=g, rng=child, **extra, **kwargs)
            rows.append({**_row(name, parts.kinds[name], metric, est), "note": " ".join(notes)})
    return pd.DataFrame(rows), roc_curves(data, names)


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
