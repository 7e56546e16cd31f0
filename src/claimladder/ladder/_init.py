"""``claimladder init``: a commented study.toml with guessed column roles."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["guess_roles", "write_study_template"]

# Candidate column names per role, most specific first (compared after normalisation).
_CANDIDATES: dict[str, tuple[str, ...]] = {
    "image_id": ("image_id", "imageid", "image", "img_id", "sop_instance_uid", "sopinstanceuid",
                 "instance_id", "file_id", "dicom_id"),
    "patient_id": ("patient_id", "patientid", "patient", "subject_id", "subject", "pid",
                   "mrn", "participant_id", "case_id"),
    "label": ("label", "target", "y", "y_true", "ground_truth", "truth", "diagnosis",
              "finding", "outcome", "class"),
    "path": ("path", "image_path", "file", "filename", "file_name", "filepath", "dicom_path"),
    "site": ("site", "hospital", "institution", "center", "centre", "institution_name"),
    "scanner": ("scanner", "scanner_model", "device", "model_name", "manufacturer_model_name",
                "station"),
    "manufacturer": ("manufacturer", "vendor"),
    "protocol": ("protocol", "protocol_name", "sequence", "series_description"),
    "acquired_at": ("acquired_at", "study_date", "acquisition_date", "date", "exam_date",
                    "studydate", "acquisition_time"),
    "label_certainty": ("label_certainty", "certainty", "label_confidence", "confidence"),
}
_ATTRIBUTES = ("age", "sex", "gender", "race", "ethnicity", "view", "view_position", "bmi",
               "body_part", "priority", "setting", "insurance")
_ANNOTATOR = re.compile(r"^(reader|annotator|rater|radiologist|grader)[_\- ]?\w*$")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def guess_roles(columns: Sequence[str]) -> dict[str, object]:
    """Guess which columns play which role from their names.

    Examples
    --------
    >>> guess_roles(["ImageID", "Patient ID", "Label", "Age", "Sex", "reader_1"])["patient_id"]
    'Patient ID'
    """
    by_norm = {_norm(c): c for c in columns}
    roles: dict[str, object] = {}
    used: set[str] = set()
    for role, candidates in _CANDIDATES.items():
        for cand in candidates:
            column = by_norm.get(cand)
            if column is not None and column not in used:
                roles[role] = column
                used.add(column)
                break
    roles["annotators"] = [c for c in columns if c not in used and _ANNOTATOR.match(_norm(c))]
    used.update(roles["annotators"])  # type: ignore[arg-type]
    roles["attributes"] = [by_norm[a] for a in _ATTRIBUTES if a in by_norm
                           and by_norm[a] not in used]
    return roles


def _toml(value: object) -> str:
    return json.dumps(value)  # JSON strings and lists of strings are valid TOML


def write_study_template(cohort_path: str | Path, table: pd.DataFrame) -> str:
    """Text of a commented ``study.toml`` for ``table`` (read from ``cohort_path``)."""
    roles = guess_roles([str(c) for c in table.columns])
    lines = [
        "# study.toml written by `claimladder init`: edit every line marked EDIT.",
        "# Reference: the study spec section of the claimladder README.",
        "",
        "[study]",
        'title = "EDIT: a short title"',
        "",
        "[claim]",
        'statement = "EDIT: The model detects <finding> on <modality> in <population>"',
        'intended_use = "EDIT: who uses it, where, for which decision"',
        'not_intended_for = []  # EDIT: e.g. ["children", "lateral views"]',
        "positive_label = 1     # label value of a positive case",
        "",
        "[data]",
        f"cohort = {_toml(str(cohort_path))}",
        'predictions = "predictions.csv"  # EDIT: image_id + score (+ model) per image',
        'images_root = "."',
        "",
        "[data.columns]  # cohort column playing each role (guessed; check them)",
    ]
    for role in _CANDIDATES:
        if role in roles:
            lines.append(f"{role} = {_toml(roles[role])}")
        else:
            lines.append(f'# {role} = "..."  # no column guessed')
    lines.append(f"attributes = {_toml(roles['attributes'])}")
    lines.append(f"annotators = {_toml(roles['annotators'])}")
    split = next((c for c in table.columns if _norm(c) in ("split", "partition", "fold", "set")),
                 None)
    lines += ["", "[cohort]  # pandas expressions over the cohort columns",
              "include = []  # EDIT: e.g. [\"age >= 18\"]", "exclude = []", "",
              "[partitions]  # row filters; each row in at most one partition"]
    if split is not None:
        values = sorted(map(str, table[split].dropna().unique()))[:6]
        lines.append(f"# values of {split!r}: {', '.join(values)}")
        lines += [f"development = \"{split} == 'train'\"  # EDIT",
                  f"calibration = \"{split} == 'calib'\"  # EDIT",
                  f"internal_test = \"{split} == 'test'\"  # EDIT"]
    else:
        lines += ["development = \"split == 'train'\"  # EDIT",
                  "internal_test = \"split == 'test'\"  # EDIT"]
    lines += ["", "[partitions.external]  # EDIT: independent sites / scanners / periods",
              "# site_C = \"site == 'C'\"", "",
              "[metrics]", 'primary = "roc_auc"', "threshold = 0.5", "confidence_level = 0.95",
              "n_resamples = 2000", "seed = 0", "",
              "[criteria]  # what must be true at each rung",
              "internal.min_auroc = 0.70", "external.max_auroc_drop = 0.05",
              "bias.max_subgroup_auroc_gap = 0.05", "bias.min_group_size = 30", ""]
    return "\n".join(lines)
