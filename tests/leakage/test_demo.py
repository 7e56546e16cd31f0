"""The leakage checks on a small demo study: planted leaks found, the clean study quiet."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest

from claimladder._core import Status
from claimladder.cohort import ColumnRoles, assign_partitions, load_cohort
from claimladder.datasets import make_demo_study
from claimladder.io import dicom_header_index
from claimladder.leakage import (
    FUZZY_IDENTITY,
    check_dicom_phi,
    check_filename_label,
    check_metadata_label,
    check_patient_overlap,
    check_split_column,
)

N_PATIENTS = 160  # planted leaks found at this size for demo seeds 0-4 (checked by hand)


def _load(root):
    demo = make_demo_study(root, n_patients=N_PATIENTS, image_size=64,
                           clean=root.name == "clean", rng=0)
    spec = tomllib.loads(demo.study_path.read_text())
    cohort = load_cohort(demo.cohort_path, roles=ColumnRoles.from_mapping(
        spec["data"]["columns"]), positive_label=spec["claim"]["positive_label"])
    parts = spec["partitions"]
    assignment = assign_partitions(
        cohort, development=parts["development"], calibration=parts["calibration"],
        internal_test=parts["internal_test"], external=parts["external"])
    headers = dicom_header_index([demo.root / p for p in cohort.table["path"]])
    truth = pd.read_csv(demo.planted_truth_path, dtype={"duplicate_of": str})
    return cohort, assignment, headers, truth


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _load(tmp_path_factory.mktemp("demo") / "planted")


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return _load(tmp_path_factory.mktemp("demo") / "clean")


def test_naive_split_overlap(planted, clean):
    cohort, _, headers, _ = planted
    assert check_split_column(cohort, "naive_split", headers=headers).status is Status.FAIL
    cohort, _, headers, _ = clean
    assert check_split_column(cohort, "naive_split", headers=headers).status is Status.PASS


def test_re_exports_under_a_new_pseudonym_match_on_fuzzy_identity(planted):
    cohort, parts, headers, truth = planted
    finding = check_patient_overlap(cohort, parts.masks, parts.kinds, headers=headers)
    assert finding.status is Status.WARN
    fit = np.zeros(cohort.n_images, bool)
    test = np.zeros(cohort.n_images, bool)
    for name, mask in parts.masks.items():
        (fit if parts.kinds[name] in ("development", "calibration") else test)[mask] = True
    ids = pd.Series(np.arange(cohort.n_images), index=cohort.image_ids)
    has_identity = headers["PatientBirthDate"].notna() & headers["PatientSex"].notna()
    crossing = set()
    for dup, orig in truth.loc[truth["duplicate_of"].notna(), ["image_id", "duplicate_of"]].values:
        if dup not in ids or orig not in ids:
            continue  # excluded by the cohort rules
        i, j = ids[dup], ids[orig]
        if not (has_identity[i] and has_identity[j]):
            continue
        if fit[i] and test[j]:
            crossing.add(orig)
        elif fit[j] and test[i]:
            crossing.add(dup)
    assert crossing, "the demo should plant re-exports across the split"
    fuzzy = finding.table[finding.table["key"] == FUZZY_IDENTITY]
    assert fuzzy["n_hidden"].sum() >= len(crossing)
    assert set(finding.examples) & crossing


def test_metadata_leak(planted, clean):
    cohort, parts, headers, _ = planted
    finding = check_metadata_label(cohort, None, parts.masks, parts.kinds, headers=headers, rng=0)
    assert finding.status is Status.FAIL
    flagged = set(finding.table.loc[finding.table["flagged"], "column"])
    assert flagged == {"priority", "dicom:StudyDescription"}
    cohort, parts, headers, _ = clean
    finding = check_metadata_label(cohort, None, parts.masks, parts.kinds, headers=headers, rng=0)
    assert finding.status is Status.PASS


def test_filename_leak(planted, clean):
    cohort, _, headers, _ = planted
    finding = check_filename_label(cohort, headers=headers)
    assert finding.status is Status.FAIL
    assert {"opacity", "normal"} <= set(finding.table.loc[finding.table["flagged"], "item"])
    cohort, _, headers, _ = clean
    assert check_filename_label(cohort, headers=headers).status is Status.PASS


def test_dicom_phi_reports_keywords_not_values(planted):
    cohort, _, headers, _ = planted
    finding = check_dicom_phi(headers, image_ids=cohort.image_ids)
    failing = set(finding.table.loc[finding.table["severity"] == "fail", "keyword"])
    # The demo flags its files de-identified and keeps pseudonyms, but writes birth dates.
    assert failing <= {"PatientBirthDate"}
    text = json.dumps(finding.to_dict(), allow_nan=False)
    for column in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                   "StudyInstanceUID", "InstitutionName", "DeviceSerialNumber"):
        values = headers[column].dropna().astype(str)
        assert not any(v in text for v in values if len(v) >= 4), column
