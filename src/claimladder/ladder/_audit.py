"""The leakage audit alone: a cohort table (or a DICOM folder) in, evidence out, no model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._core import Evidence, UsageError, did_you_mean
from ..cohort import Cohort, ColumnRoles, ImageFiles, load_cohort
from ..io import dicom_header_index, read_table
from ..provenance import build_manifest
from ._data import path_values
from ._init import guess_roles
from ._pixels import cohort_pixel_summaries
from ._rung1 import audit_findings

__all__ = ["SPLIT_VALUE_KINDS", "audit_cohort", "audit_dicom"]

#: Values of a split column (case-insensitive) and the partition kind they mean; any
#: value starting with "external" is an external test set.
SPLIT_VALUE_KINDS = {
    **dict.fromkeys(("train", "training", "dev", "development", "fit"), "development"),
    **dict.fromkeys(("calib", "calibration", "val", "valid", "validation", "tune", "tuning"),
                    "calibration"),
    **dict.fromkeys(("test", "testing", "holdout", "hold_out", "hold-out", "internal_test"),
                    "internal_test"),
}
_NO_LABEL = "__claimladder_no_label__"


def _partitions(cohort: Cohort, split_column: str | None, source: str
                ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    n = cohort.n_images
    if split_column is None:
        return {"all": np.ones(n, dtype=bool)}, {"all": "development"}
    if split_column not in cohort.table.columns:
        raise UsageError(
            f"{source}: --split-column {split_column!r} is not a column of the cohort."
            f"{did_you_mean(split_column, list(map(str, cohort.table.columns)))} Columns: "
            f"{', '.join(map(str, cohort.table.columns))}.")
    values = cohort.table[split_column]
    masks: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    unknown = []
    for value in sorted(values.dropna().astype(str).str.strip().unique()):
        if not value:
            continue
        key = value.lower()
        kind = ("external" if key.startswith("external")
                else SPLIT_VALUE_KINDS.get(key))
        if kind is None:
            unknown.append(value)
            continue
        masks[value] = (values.astype(str).str.strip() == value).to_numpy()
        kinds[value] = kind
    if unknown:
        raise UsageError(
            f"{source}: column {split_column!r} holds value(s) {', '.join(map(repr, unknown[:5]))}"
            " that name no partition kind. Fix: use train/development, calib/validation, "
            "test/holdout, or a value starting with 'external' (e.g. external_site_C).")
    if not any(k in ("internal_test", "external") for k in kinds.values()):
        raise UsageError(
            f"{source}: column {split_column!r} has no test value (values: "
            f"{', '.join(map(repr, masks))}), so nothing can leak across a split. Fix: pass "
            "the column that marks the test rows (e.g. 'test' or 'external_...').")
    return masks, kinds


def _pixel_inputs(cohort: Cohort, root: Path) -> dict:
    """``pixels`` (one streamed summary pass) and ``images`` (decoded on access) of the audit."""
    paths = [str(root / p) if p else "" for p in path_values(cohort)]
    return {"pixels": lambda: cohort_pixel_summaries(cohort, root), "images": ImageFiles(paths)}


def _headers(cohort: Cohort, root: Path) -> pd.DataFrame | None:
    paths = [root / str(p) for p in cohort.column("path").fillna("")]
    table = dicom_header_index(paths, on_error="record")
    if "error" in table.columns and table["error"].notna().all():
        return None  # no DICOM file at all: the header checks do not apply
    return table


def audit_cohort(
    cohort_path: str | os.PathLike[str],
    *,
    split_column: str | None = None,
    images_root: str | os.PathLike[str] | None = None,
    image_id: str | None = None,
    patient_id: str | None = None,
    label: str | None = None,
    positive_label: object = 1,
    split_columns: Sequence[str] = (),
    seed: int = 0,
) -> Evidence:
    """Run the leakage audit on a cohort table, without a model or predictions.

    Parameters
    ----------
    cohort_path : path
        CSV or Parquet, one row per image.
    split_column : str, optional
        Column whose values assign rows to partitions (``train``, ``calib``, ``test``,
        ``external...``; see :data:`SPLIT_VALUE_KINDS`). Without it every row is
        development data and only within-cohort problems are found.
    images_root : path, optional
        Folder the ``path`` column is relative to (default: the cohort's folder).
        Pixel and file-name checks run when the cohort has a path column.
    image_id, patient_id, label : str, optional
        Column names (default: guessed from the header, as ``claimladder init`` does).
    positive_label : object, default 1
    split_columns : sequence of str
        Further split columns audited for patient overlap.
    seed : int, default 0

    Returns
    -------
    Evidence
        Rung 1 leakage findings; the provenance hashes the cohort and every image file.

    Raises
    ------
    UsageError, TableReadError, CohortSchemaError
        A bad option, an unreadable table, missing columns.
    """
    path = Path(cohort_path)
    columns = [str(c) for c in read_table(path).columns]
    guessed = guess_roles(columns)
    roles = {"image_id": image_id or guessed.get("image_id"),
             "patient_id": patient_id or guessed.get("patient_id"),
             "label": label or guessed.get("label"),
             **{r: guessed[r] for r in ("path", "site", "scanner", "manufacturer", "protocol",
                                        "acquired_at") if r in guessed}}
    for role, flag in (("image_id", "--image-id"), ("patient_id", "--patient-id"),
                       ("label", "--label")):
        if roles[role] is None or roles[role] not in columns:
            given = roles[role]
            raise UsageError(
                f"{path}: no {role} column" + (f" {given!r}" if given else " was recognised")
                + f".{did_you_mean(given, columns) if given else ''} Fix: name it with "
                f"{flag} COLUMN (columns: {', '.join(columns)}).")
    cohort = load_cohort(path, roles=ColumnRoles(**roles), positive_label=positive_label)
    for column in split_columns:
        if column not in cohort.table.columns:
            raise UsageError(f"{path}: split column {column!r} is not a cohort column."
                             f"{did_you_mean(column, columns)}")
    masks, kinds = _partitions(cohort, split_column, str(path))
    root = Path(images_root) if images_root is not None else path.parent
    has_images = cohort.has_role("path")
    if images_root is not None and not has_images:
        raise UsageError(f"{path}: --images-root was given but the cohort has no path column "
                         f"(a column named path, file or filename). Columns: "
                         f"{', '.join(columns)}.")
    if has_images and not root.is_dir():
        raise UsageError(f"--images-root {str(root)!r} is not a folder.")
    findings = audit_findings(
        cohort, masks, kinds, headers=_headers(cohort, root) if has_images else None,
        **(_pixel_inputs(cohort, root) if has_images else {}),
        split_columns=list(split_columns), seed=seed)
    image_paths = ([root / str(p) for p in cohort.column("path").dropna()]
                   if has_images else None)
    manifest = build_manifest({"cohort": path}, seed=seed, images=image_paths,
                              images_root=root if has_images else None,
                              extra={"audit": {"split_column": split_column,
                                               "partitions": kinds}})
    claim = {"title": f"Leakage audit of {path.name}",
             "statement": (f"The leakage audit of {path.name} (claimladder audit: no model, "
                           "no predictions; rung 1 leakage checks only)."),
             "intended_use": "", "not_intended_for": [],
             "positive_label": positive_label if isinstance(positive_label, (int, str, bool))
             else str(positive_label)}
    return Evidence.from_findings(findings, claim=claim, provenance=manifest)


def audit_dicom(dicom_dir: str | os.PathLike[str], *, seed: int = 0) -> Evidence:
    """Run the label-free leakage checks on a folder of DICOM files.

    The cohort is built from the headers: one row per file in sorted path order,
    image ids ``IMG00001``... in that order, and patient pseudonyms ``P00001``... by
    PatientID (falling back to StudyInstanceUID, then the file). No identifier value
    enters the evidence. There are no labels and no partitions, so the header PHI
    audit, burned-in text, duplicates (within the folder) and patient identity checks
    run; the label checks are ``not_evaluable``.

    Raises
    ------
    UsageError
        ``dicom_dir`` is not a folder or holds no readable DICOM file.
    """
    root = Path(dicom_dir)
    if not root.is_dir():
        raise UsageError(f"--dicom {str(root)!r} is not a folder. Fix: pass the folder that "
                         "holds the DICOM files (searched recursively).")
    headers = dicom_header_index(root, on_error="record")
    if "error" in headers.columns:
        headers = headers[headers["error"].isna()].drop(columns="error")
    if not len(headers):
        raise UsageError(f"--dicom {str(root)!r} holds no readable DICOM file (*.dcm, *.dicom or "
                         "files with the DICM marker).")
    headers = headers.reset_index(drop=True)
    identity = headers.get("PatientID", pd.Series([None] * len(headers))).astype(object)
    for fallback in ("StudyInstanceUID", "path"):
        if fallback in headers.columns:
            identity = identity.where(identity.notna() & (identity.astype(str) != ""),
                                      headers[fallback].astype(object))
    codes = pd.factorize(identity.astype(str))[0]
    table = pd.DataFrame({
        "image_id": [f"IMG{k + 1:05d}" for k in range(len(headers))],
        "patient_id": [f"P{c + 1:05d}" for c in codes],
        "path": [Path(os.path.relpath(p, root)).as_posix() for p in headers["path"]],
        _NO_LABEL: np.nan,
    })
    cohort = Cohort(table=table, roles=ColumnRoles(image_id="image_id", patient_id="patient_id",
                                                   label=_NO_LABEL, path="path"),
                    positive_label=1, source=str(root))
    masks, kinds = {"all": np.ones(len(table), dtype=bool)}, {"all": "development"}
    findings = audit_findings(cohort, masks, kinds, headers=headers,
                              **_pixel_inputs(cohort, root), seed=seed,
                              has_labels=False)
    manifest = build_manifest({}, seed=seed, images=list(headers["path"]), images_root=root,
                              extra={"audit": {"dicom_files": len(headers)}})
    claim = {"title": f"Leakage audit of {root.name or 'a DICOM folder'}",
             "statement": (f"The label-free leakage audit of {len(headers)} DICOM file(s) "
                           "(claimladder audit --dicom: header PHI, burned-in text, duplicates,"
                           " patient identity; image ids number the files in sorted path "
                           "order)."),
             "intended_use": "", "not_intended_for": []}
    return Evidence.from_findings(findings, claim=claim, provenance=manifest)
