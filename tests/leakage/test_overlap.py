"""check_patient_overlap and check_split_column on synthetic cohorts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claimladder._core import AlignmentError, Status
from claimladder.cohort import Cohort, ColumnRoles
from claimladder.leakage import FUZZY_IDENTITY, check_patient_overlap, check_split_column

KINDS = {"development": "development", "calibration": "calibration",
         "internal_test": "internal_test", "site_C": "external"}


def _cohort(n_patients: int = 40, images_per_patient: int = 2, seed: int = 0) -> Cohort:
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"PAT-{k:04d}-X" for k in range(n_patients)], images_per_patient)
    table = pd.DataFrame({
        "image_id": [f"IMG-{k:05d}" for k in range(len(patients))],
        "patient_id": patients,
        "label": rng.integers(0, 2, len(patients)),
        "site": np.where(np.arange(len(patients)) < len(patients) * 0.75, "A", "C"),
    })
    return Cohort(table=table, roles=ColumnRoles(site="site"))


def _masks(cohort: Cohort, leaked: int = 0) -> dict[str, np.ndarray]:
    """Patient-disjoint partitions; ``leaked`` patients of development get a copy in test."""
    codes = pd.factorize(cohort.table["patient_id"])[0]
    n = codes.max() + 1
    external = cohort.table["site"].to_numpy() == "C"
    dev = (codes < n * 0.4) & ~external
    calib = (codes >= n * 0.4) & (codes < n * 0.5) & ~external
    test = (codes >= n * 0.5) & ~external
    if leaked:
        # The first image of each leaked development patient is also in the test side.
        first = np.flatnonzero(dev)[::2][:leaked]
        test = test.copy()
        test[first] = True
        dev = dev.copy()
        dev[first] = False
        dev[first + 1] = True
    return {"development": dev, "calibration": calib, "internal_test": test, "site_C": external}


def _headers(cohort: Cohort, **overrides) -> pd.DataFrame:
    n = cohort.n_images
    codes = pd.factorize(cohort.table["patient_id"])[0]
    frame = pd.DataFrame({
        "PatientID": [f"MRN{900000 + c}" for c in codes],
        "AccessionNumber": [f"ACC{700000 + k}" for k in range(n)],
        "StudyInstanceUID": [f"1.2.3.{k}" for k in range(n)],
        "SeriesInstanceUID": [f"1.2.3.{k}.1" for k in range(n)],
        "SOPInstanceUID": [f"1.2.3.{k}.1.1" for k in range(n)],
        "PatientBirthDate": [f"19{40 + c % 50:02d}{1 + c % 12:02d}{1 + c % 27:02d}"
                             for c in codes],
        "PatientSex": np.where(codes % 2 == 0, "F", "M"),
        "InstitutionName": "General Hospital",
    })
    for column, values in overrides.items():
        frame[column] = values
    return frame


def _row(finding, key, fit="development", test="internal_test"):
    table = finding.table
    return table[(table["key"] == key) & (table["fit_partition"] == fit)
                 & (table["test_partition"] == test)].iloc[0]


def test_disjoint_partitions_pass():
    cohort = _cohort()
    finding = check_patient_overlap(cohort, _masks(cohort), KINDS, headers=_headers(cohort))
    assert finding.check == "leakage.patient_overlap"
    assert finding.status is Status.PASS
    assert finding.examples == ()
    assert (finding.table["n_shared"] == 0).all()
    # 2 fitting x 2 test partitions x (2 cohort keys + 5 DICOM keys + fuzzy)
    assert len(finding.table) == 2 * 2 * 8


def test_planted_overlap_is_found_and_ids_are_not_printed():
    cohort = _cohort()
    masks = _masks(cohort, leaked=3)
    finding = check_patient_overlap(cohort, masks, KINDS)
    assert finding.status is Status.FAIL
    row = _row(finding, "patient_id")
    assert row["n_shared"] == 3 and row["n_hidden"] == 0 and row["n_test_images"] == 3
    test_ids = set(cohort.image_ids[masks["internal_test"]])
    assert finding.examples and set(finding.examples) <= test_ids
    text = json.dumps(finding.to_dict(), allow_nan=False)
    assert "PAT-" not in text


def test_dicom_identifiers_find_overlap_hidden_behind_new_patient_ids():
    cohort = _cohort()
    masks = _masks(cohort)
    dev_patient_row = np.flatnonzero(masks["development"])[0]
    test_rows = np.flatnonzero(masks["internal_test"])[:2]  # one test patient, re-registered
    headers = _headers(cohort)
    headers.loc[test_rows, "PatientID"] = headers.loc[dev_patient_row, "PatientID"]
    finding = check_patient_overlap(cohort, masks, KINDS, headers=headers)
    assert finding.status is Status.FAIL
    row = _row(finding, "PatientID")
    assert (row["n_shared"], row["n_hidden"], row["n_test_images"]) == (1, 1, 2)
    assert _row(finding, "patient_id")["n_shared"] == 0
    assert set(finding.examples) == set(cohort.image_ids[test_rows])
    text = json.dumps(finding.to_dict(), allow_nan=False)
    assert "MRN" not in text and "PAT-" not in text


@pytest.mark.parametrize("key", ["AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID",
                                 "SOPInstanceUID"])
def test_shared_study_and_instance_identifiers_fail(key):
    cohort = _cohort()
    masks = _masks(cohort)
    headers = _headers(cohort)
    dev_row = np.flatnonzero(masks["development"])[3]
    test_row = np.flatnonzero(masks["internal_test"])[5]
    headers.loc[test_row, key] = headers.loc[dev_row, key]
    finding = check_patient_overlap(cohort, masks, KINDS, headers=headers)
    assert finding.status is Status.FAIL
    assert _row(finding, key)["n_shared"] == 1
    assert finding.examples == (cohort.image_ids[test_row],)
    assert headers.loc[dev_row, key] not in json.dumps(finding.to_dict())


def test_fuzzy_identity_warns():
    cohort = _cohort()
    masks = _masks(cohort)
    headers = _headers(cohort)
    dev_row = np.flatnonzero(masks["development"])[0]
    test_rows = np.flatnonzero(masks["internal_test"])[:2]
    for column in ("PatientBirthDate", "PatientSex"):
        headers.loc[test_rows, column] = headers.loc[dev_row, column]
    finding = check_patient_overlap(cohort, masks, KINDS, headers=headers)
    assert finding.status is Status.WARN
    row = _row(finding, FUZZY_IDENTITY)
    assert (row["n_shared"], row["n_hidden"], row["n_test_images"]) == (1, 1, 2)
    assert bool(row["exact"]) is False
    assert "cohort site" in finding.params["fuzzy_identity"]
    assert headers.loc[dev_row, "PatientBirthDate"] not in json.dumps(finding.to_dict())
    off = check_patient_overlap(cohort, masks, KINDS, headers=headers, fuzzy_identity=False)
    assert off.status is Status.PASS


def test_fuzzy_identity_needs_the_same_site():
    cohort = _cohort()
    masks = _masks(cohort)
    headers = _headers(cohort)
    dev_row = np.flatnonzero(masks["development"])[0]
    ext_rows = np.flatnonzero(masks["site_C"])[:2]  # same birth date and sex, another site
    for column in ("PatientBirthDate", "PatientSex"):
        headers.loc[ext_rows, column] = headers.loc[dev_row, column]
    finding = check_patient_overlap(cohort, masks, KINDS, headers=headers)
    assert finding.status is Status.PASS


def test_missing_identifiers_never_match():
    cohort = _cohort()
    masks = _masks(cohort)
    headers = _headers(cohort, AccessionNumber=[None if k % 2 else "" for k in
                                                range(cohort.n_images)])
    headers["PatientBirthDate"] = None
    finding = check_patient_overlap(cohort, masks, KINDS, headers=headers)
    assert finding.status is Status.PASS


def test_same_side_partitions_are_not_compared():
    cohort = _cohort()
    masks = _masks(cohort)
    masks["calibration"] = masks["calibration"] | masks["development"]
    finding = check_patient_overlap(cohort, masks, KINDS)
    assert finding.status is Status.PASS


def test_without_test_partition_not_evaluable():
    cohort = _cohort()
    masks = _masks(cohort)
    finding = check_patient_overlap(cohort, {"development": masks["development"]},
                                    {"development": "development"})
    assert finding.status is Status.NOT_EVALUABLE
    assert "test" in finding.message


def test_misuse_raises():
    cohort = _cohort()
    masks = _masks(cohort)
    with pytest.raises(ValueError, match="no kind for partition 'site_C'"):
        check_patient_overlap(cohort, masks, {k: v for k, v in KINDS.items() if k != "site_C"})
    with pytest.raises(ValueError, match="Did you mean 'external'"):
        check_patient_overlap(cohort, masks, {**KINDS, "site_C": "externl"})
    with pytest.raises(AlignmentError, match="one entry per cohort row"):
        check_patient_overlap(cohort, {**masks, "site_C": masks["site_C"][:-1]}, KINDS)
    with pytest.raises(AlignmentError, match="rows but the cohort"):
        check_patient_overlap(cohort, masks, KINDS, headers=_headers(cohort).iloc[:-1])


def test_split_column():
    cohort = _cohort(n_patients=30)
    rng = np.random.default_rng(1)
    naive = np.where(rng.random(cohort.n_images) < 0.7, "train", "test")
    table = cohort.table.assign(naive_split=naive)
    codes = pd.factorize(table["patient_id"])[0]
    table["patient_split"] = np.where(codes % 3 == 0, "test", "train")
    cohort = Cohort(table=table, roles=cohort.roles)
    naive_finding = check_split_column(cohort, "naive_split")
    assert naive_finding.status is Status.FAIL
    assert naive_finding.params["split_column"] == "naive_split"
    assert naive_finding.message.startswith("Split column 'naive_split'")
    assert set(naive_finding.table["fit_partition"]) == {"naive_split=train"}
    assert check_split_column(cohort, "patient_split").status is Status.PASS
    with pytest.raises(ValueError, match="Did you mean 'naive_split'"):
        check_split_column(cohort, "naive_splt")
    with pytest.raises(ValueError, match="must not share values"):
        check_split_column(cohort, "naive_split", fit_values=["train"], test_values=["train"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=4, max_size=40), st.integers(1, 3))
def test_shared_patients_equal_the_set_intersection(sides, images):
    """Property: the shared count is the intersection of the two sides' patient sets."""
    # side per patient: 0 development, 1 internal test, 2 both, 3 neither
    rows = [(p, s) for p, s in enumerate(sides) for _ in range(images)]
    table = pd.DataFrame({"image_id": [f"i{k}" for k in range(len(rows))],
                          "patient_id": [f"p{p}" for p, _ in rows],
                          "label": [k % 2 for k in range(len(rows))]})
    if table["label"].nunique() < 2:
        table.loc[0, "label"] = 1
    cohort = Cohort(table=table, roles=ColumnRoles())
    side = np.array([s for _, s in rows])
    image_index = np.arange(len(rows))
    first = image_index % images == 0  # a patient "on both sides" splits its images
    dev = (side == 0) | ((side == 2) & first)
    test = (side == 1) | ((side == 2) & (~first if images > 1 else first))
    finding = check_patient_overlap(cohort, {"d": dev, "t": test},
                                    {"d": "development", "t": "internal_test"})
    expected = set(cohort.patient_ids[dev]) & set(cohort.patient_ids[test])
    row = finding.table.set_index("key").loc["patient_id"]
    assert row["n_shared"] == len(expected)
    assert (finding.status is Status.FAIL) == bool(expected)
