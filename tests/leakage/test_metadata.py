"""check_metadata_label: planted leaks, calibration under the null, reference AUROCs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from claimladder._core import AlignmentError, Status
from claimladder.cohort import Cohort, ColumnRoles
from claimladder.leakage import check_metadata_label, is_workflow_field
from claimladder.leakage._metadata import _block_permutations

DEV_SITES = ("A", "B")


def _study(seed: int, n_patients: int = 300) -> tuple[Cohort, dict, dict]:
    """Patients with 1-4 images at four sites; development = 70 % of A/B patients."""
    g = np.random.default_rng(seed)
    site_p = np.array(["A", "B", "C", "D"])[g.integers(0, 4, n_patients)]
    n_img = 1 + g.choice(4, n_patients, p=[0.55, 0.25, 0.12, 0.08])
    pat = np.repeat(np.arange(n_patients), n_img)
    site = site_p[pat]
    y_pat = g.random(n_patients) < np.where(np.isin(site_p, DEV_SITES), 0.35, 0.25)
    # Labels mostly constant within a patient: the clustering the null must respect.
    y = np.where(g.random(len(pat)) < 0.8, y_pat[pat], g.random(len(pat)) < 0.3).astype(int)
    dev_site = np.isin(site, DEV_SITES)
    urgent = np.where(dev_site, g.random(len(pat)) < np.where(y == 1, 0.7, 0.15),
                      g.random(len(pat)) < 0.3)
    table = pd.DataFrame({
        "image_id": [f"I{k:05d}" for k in range(len(pat))],
        "patient_id": [f"P{k:04d}" for k in pat],
        "label": y,
        "site": site,
        "priority": np.where(urgent, "urgent", "routine"),
        # predictive at the development sites only, not a workflow field
        "kvp_setting": np.where(dev_site, g.normal(size=len(pat)) + 0.9 * y,
                                g.normal(size=len(pat))),
        # predictive everywhere and available at inference
        "lesion_size_mm": g.normal(size=len(pat)) + 1.2 * y,
        # noise: image level, patient level numeric, patient level categorical
        "noise_image": g.normal(size=len(pat)),
        "noise_patient": g.normal(size=n_patients)[pat],
        "noise_category": np.array(list("abcdef"))[g.integers(0, 6, n_patients)][pat],
        "exam_urgency": np.where(g.random(len(pat)) < 0.3, "urgent", "routine"),  # noise
    })
    split = np.where(dev_site, np.where(g.random(n_patients)[pat] < 0.7, "dev", "test"), "ext")
    masks = {"development": split == "dev", "internal_test": split == "test",
             "external": split == "ext"}
    kinds = {name: name for name in masks}
    return Cohort(table=table, roles=ColumnRoles(site="site")), masks, kinds


@pytest.fixture(scope="module")
def planted():
    cohort, masks, kinds = _study(11)
    finding = check_metadata_label(cohort, None, masks, kinds, rng=0)
    return cohort, masks, kinds, finding


def test_planted_columns_are_flagged(planted):
    *_, finding = planted
    table = finding.table.set_index("column")
    assert finding.check == "leakage.metadata_label"
    assert finding.status is Status.FAIL
    assert table.loc["priority", "flagged"]
    assert "workflow field" in table.loc["priority", "reason"]
    assert table.loc["kvp_setting", "flagged"]
    assert "differs" in table.loc["kvp_setting", "reason"]
    assert not table.loc["kvp_setting", "workflow"]
    assert table.loc["kvp_setting", "site_gap"] > 0.15
    assert table.loc["kvp_setting", "auroc_site_C"] < 0.65
    assert table.loc["kvp_setting", "auroc_site_A"] > 0.65
    # Predictive, consistent and available at inference: reported, not flagged.
    assert table.loc["lesion_size_mm", "strongly_predictive"]
    assert not table.loc["lesion_size_mm", "flagged"]
    for column in ("noise_image", "noise_patient", "noise_category", "exam_urgency"):
        assert not table.loc[column, "flagged"], column
    assert "priority" in finding.message and "kvp_setting" in finding.message
    json.dumps(finding.to_dict(), allow_nan=False)


def test_site_only_flags_warn(planted):
    cohort, masks, kinds, _ = planted
    finding = check_metadata_label(cohort, ["kvp_setting", "lesion_size_mm"], masks, kinds,
                                   rng=0)
    assert finding.status is Status.WARN
    assert "lesion_size_mm" not in finding.message.split("should not")[1]


def test_declared_workflow_fields_replace_detection(planted):
    cohort, masks, kinds, _ = planted
    finding = check_metadata_label(cohort, ["priority", "lesion_size_mm"], masks, kinds,
                                   workflow_fields=["lesion_size_mm"], rng=0)
    table = finding.table.set_index("column")
    assert table.loc["lesion_size_mm", "workflow"] and table.loc["lesion_size_mm", "flagged"]
    assert not table.loc["priority", "workflow"]
    assert table.loc["priority", "flagged"]  # still flagged: its association is site-specific
    assert "workflow" not in table.loc["priority", "reason"]


def test_numeric_auroc_matches_sklearn(planted):
    cohort, masks, _, finding = planted
    dev = masks["development"]
    y = cohort.y_true[dev]
    table = finding.table.set_index("column")
    for column in ("kvp_setting", "lesion_size_mm", "noise_image"):
        auc = roc_auc_score(y, cohort.table.loc[dev, column])
        assert table.loc[column, "auroc_dev"] == pytest.approx(max(auc, 1 - auc), abs=1e-12)
    external = masks["external"]
    auc_ext = roc_auc_score(cohort.y_true[external], cohort.table.loc[external, "kvp_setting"])
    assert table.loc["kvp_setting", "auroc_external"] == pytest.approx(auc_ext, abs=1e-12)


def test_categorical_auroc_matches_a_reference_target_encoding(planted):
    """Reference: pandas group means per training fold (smoothing 10 towards the prior)."""
    cohort, masks, _, finding = planted
    dev = masks["development"]
    frame = cohort.table.loc[dev, ["patient_id", "noise_category", "label"]].reset_index()
    oof = np.empty(len(frame))
    splitter = GroupKFold(n_splits=5)
    for train, held in splitter.split(frame, frame["label"], frame["patient_id"]):
        fit = frame.iloc[train]
        prior = fit["label"].mean()
        stats = fit.groupby("noise_category")["label"].agg(["sum", "count"])
        levels = frame.iloc[held]["noise_category"]
        sums = levels.map(stats["sum"]).fillna(0).to_numpy()
        counts = levels.map(stats["count"]).fillna(0).to_numpy()
        oof[held] = (sums + 10 * prior) / (counts + 10)
    expected = roc_auc_score(frame["label"], oof)
    got = finding.table.set_index("column").loc["noise_category", "auroc_dev"]
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_noise_columns_are_not_flagged(seed):
    """False positives: over seeds, pure-noise columns are never flagged.

    Measured over 100 seeds of this design (8 noise columns each, alpha 0.05):
    raw p <= 0.05 in 2-6 % per column (calibrated), flagged 0/800.
    """
    cohort, masks, kinds = _study(1000 + seed, n_patients=200)
    columns = ["noise_image", "noise_patient", "noise_category", "exam_urgency"]
    finding = check_metadata_label(cohort, columns, masks, kinds, rng=seed)
    assert finding.status is Status.PASS
    assert not finding.table["flagged"].any()


def test_null_p_values_are_calibrated():
    """Raw p-values of noise columns: about 5 % at or below 0.05 (a loose binomial bound)."""
    p_values = []
    for seed in range(25):
        cohort, masks, kinds = _study(2000 + seed, n_patients=150)
        finding = check_metadata_label(cohort, ["noise_image", "noise_patient",
                                                "noise_category", "exam_urgency"],
                                       masks, kinds, n_permutations=100, rng=seed)
        p_values.extend(finding.table["p_value"].tolist())
    rate = np.mean(np.asarray(p_values) <= 0.05)
    # 100 tests at a true rate of 5 %: P(rate > 0.13) < 0.1 %.
    assert rate <= 0.13


def test_block_permutations_keep_patients_together():
    y = np.array([1, 1, 1, 0, 0, 1, 0, 0, 0])
    groups = np.array(["a", "a", "a", "b", "b", "c", "d", "d", "d"])
    permuted = _block_permutations(y, groups, 50, np.random.default_rng(0))
    for row in permuted:
        for g in ("a", "b", "d"):
            assert len(set(row[groups == g])) == 1  # every donor's labels are constant
    assert set(np.unique(permuted)) <= {0, 1}


def test_seed_gives_identical_tables_whatever_the_column_order(planted):
    cohort, masks, kinds, finding = planted
    columns = list(finding.table["column"])[::-1]
    again = check_metadata_label(cohort, columns, masks, kinds, rng=0)
    pd.testing.assert_frame_equal(
        again.table.set_index("column").loc[finding.table["column"]].reset_index(),
        finding.table)


def test_skipped_columns_say_why(planted):
    cohort, masks, kinds, _ = planted
    table = cohort.table.assign(constant="x", accession=[f"A{k}" for k in range(cohort.n_images)],
                                empty=np.nan)
    cohort = Cohort(table=table, roles=cohort.roles)
    finding = check_metadata_label(cohort, ["constant", "accession", "empty", "priority"],
                                   masks, kinds, rng=0)
    reasons = finding.table.set_index("column")["reason"]
    assert reasons["constant"] == "skipped: constant in the development partition"
    assert reasons["accession"].startswith("skipped: identifier-like")
    assert reasons["empty"] == "skipped: missing in every development row"


def test_header_columns_are_tested_with_a_prefix(planted):
    cohort, masks, kinds, _ = planted
    headers = pd.DataFrame({
        "path": [f"x/{k}.dcm" for k in range(cohort.n_images)],
        "StudyDescription": np.where(cohort.table["priority"] == "urgent", "CXR URGENT",
                                     "CXR ROUTINE"),
        "StudyDate": [f"2021{1 + k % 12:02d}{1 + k % 28:02d}" for k in range(cohort.n_images)],
        "error": None,
    })
    finding = check_metadata_label(cohort, [], masks, kinds, headers=headers, rng=0)
    table = finding.table.set_index("column")
    assert list(table.index) == ["dicom:StudyDescription", "dicom:StudyDate"]
    assert table.loc["dicom:StudyDescription", "flagged"]
    assert table.loc["dicom:StudyDate", "kind"] == "numeric"
    assert finding.status is Status.FAIL


def test_default_columns_exclude_roles():
    cohort, masks, kinds = _study(3, n_patients=60)
    table = cohort.table.assign(reader_1=cohort.table["label"], certainty="definite")
    roles = ColumnRoles(site="site", annotators=("reader_1",), label_certainty="certainty")
    finding = check_metadata_label(Cohort(table=table, roles=roles), None, masks, kinds, rng=0)
    assert not {"image_id", "patient_id", "label", "site", "reader_1", "certainty"} & set(
        finding.table["column"])


def test_without_external_rows_development_sites_are_compared():
    cohort, masks, _ = _study(21, n_patients=500)
    finding = check_metadata_label(
        cohort, ["kvp_setting"], {"development": masks["development"] | masks["external"]},
        {"development": "development"}, rng=0)
    row = finding.table.iloc[0]
    assert np.isnan(row["auroc_external"])
    assert "between development sites" in row["reason"]


def test_not_evaluable_cases():
    cohort, masks, kinds = _study(5, n_patients=60)
    one_class = cohort.table.assign(label=0)
    one_class.loc[0, "label"] = 1
    flat = Cohort(table=one_class, roles=cohort.roles)
    finding = check_metadata_label(flat, None, masks, kinds, rng=0)
    assert finding.status is Status.NOT_EVALUABLE
    assert "positive" in finding.message
    finding = check_metadata_label(cohort, None, {"t": masks["internal_test"]},
                                   {"t": "internal_test"}, rng=0)
    assert finding.status is Status.NOT_EVALUABLE


def test_misuse_raises():
    cohort, masks, kinds = _study(6, n_patients=60)
    with pytest.raises(ValueError, match="Did you mean 'priority'"):
        check_metadata_label(cohort, ["priorty"], masks, kinds)
    with pytest.raises(AlignmentError, match="one patient id per cohort row"):
        check_metadata_label(cohort, None, masks, kinds, groups=["p"] * 3)
    with pytest.raises(ValueError, match="n_permutations"):
        check_metadata_label(cohort, None, masks, kinds, n_permutations=5)
    with pytest.raises(ValueError, match="alpha"):
        check_metadata_label(cohort, None, masks, kinds, alpha=1.5)


@pytest.mark.parametrize(("name", "expected"), [
    ("priority", True), ("Exam Priority", True), ("dicom:ReferringPhysicianName", True),
    ("RequestedProcedureDescription", True), ("accession_no", True), ("ward", True),
    ("age", False), ("sex", False), ("dicom:Manufacturer", False), ("StationName", False),
    ("view", False),
])  # fmt: skip
def test_is_workflow_field(name, expected):
    assert is_workflow_field(name) is expected
