"""Rung 1, internal validation: disjoint partitions and performance with patient-clustered CIs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import metrics
from .._core import (
    Estimate,
    Finding,
    Plot,
    Rung,
    Status,
    StudySpecError,
    did_you_mean,
    spawn,
)
from ..cohort import Cohort
from ..labels import check_model_vs_label_certainty
from ..leakage import (
    FittedTransform,
    check_burned_in_text,
    check_dicom_phi,
    check_filename_label,
    check_metadata_label,
    check_near_duplicates,
    check_patient_overlap,
    check_pixel_markers,
    check_preprocessing_fit,
    check_split_column,
)
from ._common import captured_warnings, metric_options, roc_curves
from ._data import StudyData
from ._pixels import PixelSummaries, pixel_summaries
from ._seals import seal_path

__all__ = ["audit_findings", "internal_findings", "leakage_findings", "partition_performance"]


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
    findings.extend(_model_vs_label_certainty(data))
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
    cohort, masks = data.cohort, dict(data.partitions.masks)
    spec = data.study.spec["leakage"]
    for column in spec.get("split_columns", []):
        if column not in cohort.table.columns:
            raise StudySpecError(
                f"{data.study.path}: [leakage] split_columns names {column!r}, which is not a "
                f"cohort column.{did_you_mean(column, list(cohort.table.columns))}")
    try:
        transforms = [FittedTransform.from_dict(t) for t in data.study.spec["preprocessing"]]
    except (TypeError, ValueError) as error:
        raise StudySpecError(f"{data.study.path}: [[preprocessing]]: {error}") from error
    sealed = [name for name in masks if seal_path(data.study.base_dir, name).is_file()]
    try:
        return audit_findings(
            cohort, masks, dict(data.partitions.kinds), headers=data.headers(),
            pixels=(lambda: pixel_summaries(data)) if data.has_images else None,
            images=data.image_files() if data.has_images else None,
            split_columns=spec.get("split_columns", []),
            workflow_fields=spec.get("workflow_fields"), seed=data.study.seed,
            transforms=transforms, sealed_names=sealed)
    except _TransformPartitionError as error:
        raise StudySpecError(f"{data.study.path}: [[preprocessing]]: {error}") from error


class _TransformPartitionError(ValueError):
    """A declared transform names an undeclared partition."""


def audit_findings(
    cohort: Cohort,
    masks: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    *,
    headers: pd.DataFrame | None = None,
    pixels: Callable[[], PixelSummaries] | None = None,
    images: Sequence[np.ndarray | None] | None = None,
    split_columns: Sequence[str] = (),
    workflow_fields: Sequence[str] | None = None,
    seed: int = 0,
    transforms: Sequence[FittedTransform] | None = None,
    sealed_names: Sequence[str] = (),
    has_labels: bool = True,
) -> list[Finding]:
    """Every leakage check on one cohort and its partitions (no model, no predictions).

    Parameters
    ----------
    cohort : Cohort
    masks, kinds : mappings
        Partition name -> row mask and -> kind.
    headers : pandas.DataFrame, optional
        DICOM header index aligned with the cohort rows.
    pixels : callable, optional
        Returns the :class:`PixelSummaries` of the rows (called once, only when the
        pixel checks run); ``None`` skips the file-name and pixel checks.
    images : sequence, optional
        The images aligned with the rows, read only for the near-duplicate candidates
        compared on pixels (:class:`claimladder.cohort.ImageFiles` decodes on access);
        required with ``pixels``.
    split_columns : sequence of str
        Further cohort columns holding train/test splits to audit for patient overlap.
    workflow_fields : sequence of str, optional
        Columns not available at inference (see :func:`check_metadata_label`).
    seed : int
        Seed of the permutation tests (the metadata check uses ``seed + 11``).
    transforms : sequence of FittedTransform, optional
        Declared fitted preprocessing; ``None`` leaves out ``leakage.preprocessing_fit``.
    sealed_names : sequence of str
        Sealed partitions (nothing may be fitted on them).
    has_labels : bool, default True
        ``False`` (a cohort built from DICOM headers, without labels): the checks
        that need the label are ``not_evaluable``.
    """
    site = cohort.column("site").astype(str).to_numpy() if cohort.has_role("site") else None
    findings = [check_patient_overlap(cohort, masks, kinds, headers=headers)]
    for column in split_columns:
        findings.append(check_split_column(cohort, column, headers=headers))
    no_label = ("The cohort has no label (it was built from DICOM headers), so whether {} "
                "predicts the label was not tested.")
    if has_labels:
        roles = cohort.roles
        skip = {roles.image_id, roles.patient_id, roles.label, roles.path,
                roles.label_certainty, *roles.annotators}
        columns = [c for c in cohort.table.columns if c not in skip]
        findings.append(check_metadata_label(
            cohort, columns, masks, kinds, headers=headers, groups=cohort.patient_ids,
            site=site, workflow_fields=workflow_fields, rng=seed + 11))
    else:
        findings.append(Finding(check="leakage.metadata_label", rung=Rung.INTERNAL,
                                status=Status.NOT_EVALUABLE,
                                message=no_label.format("any column or header field")))
    if transforms is not None:
        try:
            findings.append(check_preprocessing_fit(transforms, kinds,
                                                    sealed_names=sealed_names))
        except ValueError as error:
            raise _TransformPartitionError(str(error)) from error
    if pixels is None:
        return findings
    if has_labels:
        findings.append(check_filename_label(cohort, masks=masks, headers=headers, site=site))
    else:
        findings.append(Finding(check="leakage.filename_label", rung=Rung.INTERNAL,
                                status=Status.NOT_EVALUABLE,
                                message=no_label.format("a file-name token")))
    if headers is not None:
        findings.append(check_dicom_phi(headers, image_ids=cohort.image_ids))
    summary = pixels()
    findings.append(check_near_duplicates(cohort, images, masks, kinds, hashes=summary.phash,
                                          digests=summary.digests))
    if has_labels:
        findings.append(check_pixel_markers(cohort, summary.markers, masks, kinds, site=site))
    else:
        findings.append(Finding(check="leakage.pixel_markers", rung=Rung.INTERNAL,
                                status=Status.NOT_EVALUABLE,
                                message=no_label.format("a corner or border marker")))
    findings.append(check_burned_in_text(cohort, images, masks, kinds, regions=summary.regions,
                                         site=site, counts=summary.ocr))
    return findings


def _model_vs_label_certainty(data: StudyData) -> list[Finding]:
    """Is the model surer than its labels on the internal test cases annotators split on?"""
    cohort, name = data.cohort, "internal_test"
    annotators = list(cohort.roles.annotators)
    if len(annotators) < 2 or name not in data.partitions.masks:
        return []
    mask = data.partitions.masks[name]
    ratings = cohort.table.loc[mask, annotators].apply(pd.to_numeric, errors="coerce")
    certainty = (cohort.column("label_certainty")[mask]
                 if cohort.has_role("label_certainty") else None)
    with captured_warnings():
        return [check_model_vs_label_certainty(
            cohort.y_true[mask], data.scores[mask], ratings.reset_index(drop=True),
            certainty=certainty, ids=cohort.image_ids[mask], groups=cohort.patient_ids[mask],
            partition=name, rng=data.study.seed + 83, **metric_options(data))]


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
