"""Rung 0, cohort definition: flow, partitions, Table 1, missingness, labels, deployment setting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._core import Finding, Plot, Rung, Status
from ..cohort import missingness, table_one
from ..labels import check_agreement, check_annotators, check_label_errors
from ._common import captured_warnings, metric_options
from ._data import StudyData
from ._pixels import pixel_summaries
from ._deployment import deployment_findings

__all__ = ["cohort_findings"]


def cohort_findings(data: StudyData) -> list[Finding]:
    """Findings of rung 0 for one study."""
    findings = [_flow(data), _partitions(data), _table_one(data), _missingness(data)]
    if data.cohort.has_role("path"):
        findings.append(_image_files(data))
    findings.extend(label_findings(data))
    findings.extend(deployment_findings(data))
    return findings


def _image_files(data: StudyData) -> Finding:
    problems = pixel_summaries(data).problems
    n = data.cohort.n_images
    if problems.empty:
        return Finding(check="cohort.image_files", rung=Rung.COHORT, status=Status.PASS,
                       message=f"All {n} included image files exist and decode.",
                       criterion="every included image file can be read")
    return Finding(
        check="cohort.image_files", rung=Rung.COHORT, status=Status.WARN,
        message=(f"{len(problems)} of {n} included image file(s) are missing or cannot be "
                 "decoded; image-level checks skip them (listed in the table)."),
        criterion="every included image file can be read",
        table=problems, examples=tuple(problems["image_id"].head(10)),
        params={"images_root": data.study.images_root.name,
                "not_validated_for": f"{len(problems)} unreadable image file(s)"},
    )


def _flow(data: StudyData) -> Finding:
    steps = data.flow.steps
    source, included = steps.iloc[0], steps.iloc[-1]
    n_unassigned = int(data.partitions.unassigned.sum())
    n_removed = int(source["n_images"] - included["n_images"])
    message = (
        f"{source['n_images']} images of {source['n_patients']} patients in the source cohort; "
        f"{n_removed} excluded in {len(steps) - 1} step(s), each counted; "
        f"{included['n_images']} images of {included['n_patients']} patients included."
    )
    flow_rows = steps.copy()
    if n_unassigned:
        message += (f" {n_unassigned} included image(s) belong to no partition and are not "
                    "evaluated anywhere.")
        flow_rows = pd.concat([flow_rows, pd.DataFrame([{
            "step": "not assigned to any partition", "rule": "", "kind": "unassigned",
            "n_images_removed": n_unassigned,
            "n_images": int(included["n_images"]) - n_unassigned,
            "n_patients": np.nan, "n_pos": np.nan}])], ignore_index=True)
    return Finding(
        check="cohort.flow",
        rung=Rung.COHORT,
        status=Status.WARN if n_unassigned else Status.PASS,
        message=message,
        criterion="every excluded case is accounted for",
        table=flow_rows,
        plots=(Plot(kind="flow", title="Cohort flow", data=flow_rows),),
        params={"include": data.study.include, "exclude": data.study.exclude},
    )


def _partitions(data: StudyData) -> Finding:
    cohort, parts = data.cohort, data.partitions
    y = cohort.y_true
    patients = cohort.patient_ids
    rows = []
    for name, mask in parts.masks.items():
        n = int(mask.sum())
        n_pos = int(np.nansum(y[mask]))
        rows.append({"partition": name, "kind": parts.kinds[name], "n_images": n,
                     "n_patients": len(np.unique(patients[mask])), "n_pos": n_pos,
                     "prevalence": n_pos / n if n else np.nan})
    table = pd.DataFrame(rows, columns=["partition", "kind", "n_images", "n_patients", "n_pos",
                                        "prevalence"])
    empty = table.loc[table["n_images"] == 0, "partition"].tolist()
    one_class = table.loc[(table["n_images"] > 0)
                          & ((table["n_pos"] == 0) | (table["n_pos"] == table["n_images"])),
                          "partition"].tolist()
    if empty:
        status = Status.FAIL
        message = (f"Partition(s) {', '.join(empty)} match no included image; check their rules "
                   "under [partitions] in study.toml.")
    elif one_class:
        status = Status.WARN
        message = (f"Partition(s) {', '.join(one_class)} contain a single class; "
                   "discrimination cannot be estimated there.")
    else:
        status = Status.PASS
        message = (f"{len(table)} partitions, each with both classes "
                   f"(prevalence {table['prevalence'].min():.1%} to "
                   f"{table['prevalence'].max():.1%}).")
    return Finding(check="cohort.partitions", rung=Rung.COHORT, status=status, message=message,
                   criterion="every declared partition is non-empty and has both classes",
                   table=table, params={"partitions": data.study.partitions})


def _table_one(data: StudyData) -> Finding:
    table = table_one(data.cohort, data.partitions.masks)
    return Finding(check="cohort.table1", rung=Rung.COHORT, status=Status.PASS,
                   message="Characteristics of each partition (Table 1).", table=table)


def _missingness(data: StudyData) -> Finding:
    table = missingness(data.cohort, data.partitions.masks)
    limit = data.study.criterion("cohort", "max_missing_fraction")
    overall = table[table["partition"] == "all"]
    worst = overall.sort_values("fraction", ascending=False).iloc[0] if len(overall) else None
    too_many = overall[overall["fraction"] > limit] if limit is not None else overall.iloc[:0]
    if len(too_many):
        status = Status.WARN
        cols = ", ".join(f"{r.column} ({r.fraction:.1%})" for r in too_many.itertuples())
        message = f"Missing values above {limit:.0%} in: {cols}."
    else:
        status = Status.PASS
        message = ("No missing values in the role columns." if worst is None or not worst.n_missing
                   else f"At most {worst.fraction:.1%} missing per column ({worst.column}).")
    return Finding(check="cohort.missingness", rung=Rung.COHORT, status=status, message=message,
                   criterion=None if limit is None else f"missing fraction <= {limit:.0%}",
                   table=table)


def label_findings(data: StudyData) -> list[Finding]:
    """Annotator agreement (per site) and each annotator against the adjudicated reference."""
    cohort = data.cohort
    annotators = list(cohort.roles.annotators)
    if len(annotators) < 2:
        return []
    ratings = cohort.table[annotators].apply(pd.to_numeric, errors="coerce")
    by = cohort.column("site").astype(str).to_numpy() if cohort.has_role("site") else None
    options = metric_options(data)
    with captured_warnings():
        findings = [check_agreement(ratings, by=by, by_name="site", ids=cohort.image_ids,
                                    groups=cohort.patient_ids, rng=data.study.seed + 80,
                                    **options)]
        reference = pd.Series(cohort.y_true)
        if cohort.has_role("adjudicated"):
            flag = cohort.column("adjudicated").astype(str).str.lower().isin(
                ["true", "1", "yes", "y"]).to_numpy()
            reference = reference.where(flag)
        findings.append(check_annotators(ratings, reference.to_numpy(), ids=cohort.image_ids,
                                         groups=cohort.patient_ids, rng=data.study.seed + 81,
                                         partition="adjudicated subset"
                                         if cohort.has_role("adjudicated") else None,
                                         **options))
    findings.extend(_label_errors(data))
    return findings


def _label_errors(data: StudyData) -> list[Finding]:
    """Candidate label errors on the internal test partition, from the candidate's scores.

    The candidate never saw these labels, so its scores are out-of-sample as confident
    learning requires; the candidates mix label errors with the model's own confident
    mistakes and are listed for a reader to review, never relabelled automatically.
    """
    name = "internal_test"
    if data.scores is None or name not in data.partitions.masks:
        return []
    cohort, mask = data.cohort, data.partitions.masks[name]
    with captured_warnings():
        finding = check_label_errors(cohort.y_true[mask].astype(int), data.scores[mask],
                                     ids=cohort.image_ids[mask], groups=cohort.patient_ids[mask],
                                     partition=name, rng=data.study.seed + 82,
                                     **metric_options(data))
    return [finding]
