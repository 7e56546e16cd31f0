"""The demo study: its files, and each planted failure measured from them.

Every planted effect is measured in the planted study against a threshold
well inside its documented strength, and in the clean control against the
threshold it must stay under. The measurements are in ``measure_demo.py``;
strengths at the default size are quoted in ``claimladder.datasets._demo``.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from claimladder._core import ClaimladderError
from claimladder.datasets import PROTOCOL_CHANGE_DATE, make_demo_study

COHORT_COLUMNS = [
    "image_id", "patient_id", "path", "site", "manufacturer", "scanner", "protocol",
    "study_date", "age", "sex", "view", "quality", "priority", "split", "naive_split",
    "reader_1", "reader_2", "reader_3", "label_certainty", "adjudicated", "label",
]  # fmt: skip


# ------------------------------------------------------------------ files
@pytest.mark.parametrize("variant", ["planted", "clean"])
def test_cohort_schema(variant, request):
    loaded = request.getfixturevalue(variant)
    c = loaded.cohort
    assert list(c.columns) == COHORT_COLUMNS
    assert c["image_id"].is_unique
    assert c["image_id"].str.fullmatch(r"IMG\d{5}").all()
    assert c["patient_id"].str.fullmatch(r"P\d{4}").all()
    assert c["image_id"].is_monotonic_increasing
    assert set(c["site"]) == {"A", "B", "C", "D"}
    assert set(c["view"]) <= {"PA", "AP", "LL"}
    assert set(c["quality"]) == {"good", "poor"}
    assert set(c["priority"]) == {"routine", "urgent"}
    assert set(c["label_certainty"]) <= {"definite", "probable", "possible"}
    assert set(c["sex"].dropna()) == {"F", "M"}
    for col in ("reader_1", "reader_2", "reader_3", "label"):
        assert set(c[col]) == {0, 1}
    assert c["adjudicated"].dtype == bool
    pd.to_datetime(c["study_date"], format="%Y-%m-%d")
    assert (c["age"].dropna() == c["age"].dropna().round()).all()
    dev = c["site"].isin(["A", "B"])
    assert set(c.loc[dev, "split"]) == {"train", "calib", "test"}
    assert set(c.loc[~dev, "split"]) == {"external"}
    assert set(c.loc[~dev, "naive_split"]) == {"external"}
    assert set(c.loc[dev, "naive_split"]) == {"train", "test"}
    # paths: relative POSIX paths under images/<site>/, all present
    assert not c["path"].str.startswith("/").any()
    assert c["path"].str.contains("\\\\", regex=False).sum() == 0
    assert (c["path"].str.split("/").str[1] == c["site"]).all()
    assert all((loaded.study.root / p).is_file() for p in c["path"])
    n_files = len(list((loaded.study.root / "images").rglob("*.dcm")))
    assert n_files == len(c) == loaded.study.n_images


@pytest.mark.parametrize("variant", ["planted", "clean"])
def test_label_is_truth_when_adjudicated_else_majority(variant, request):
    loaded = request.getfixturevalue(variant)
    c, t = loaded.cohort, loaded.truth
    majority = (c[["reader_1", "reader_2", "reader_3"]].sum(axis=1) >= 2).astype(int)
    expected = np.where(c["adjudicated"], t["lesion"], majority)
    np.testing.assert_array_equal(c["label"], expected)
    assert 0.08 < c["adjudicated"].mean() < 0.22


@pytest.mark.parametrize("variant", ["planted", "clean"])
def test_study_toml_shape(variant, request):
    study = request.getfixturevalue(f"{variant}_study")
    spec = tomllib.loads(study.study_path.read_text(encoding="utf-8"))
    assert set(spec) == {
        "study", "claim", "data", "cohort", "partitions", "subgroups", "leakage", "metrics",
        "criteria", "readers", "deployment", "preprocessing",
    }  # fmt: skip
    assert [t["partition"] for t in spec["preprocessing"]] == ["development"]
    assert spec["leakage"] == {"split_columns": ["naive_split"]}
    assert spec["claim"]["positive_label"] == 1
    assert spec["data"]["cohort"] == "cohort.csv"
    assert spec["data"]["predictions"] == "predictions.csv"
    assert spec["data"]["images_root"] == "."
    assert spec["data"]["columns"]["acquired_at"] == "study_date"
    assert spec["data"]["columns"]["annotators"] == ["reader_1", "reader_2", "reader_3"]
    assert spec["cohort"] == {
        "include": ["age >= 18", "view in ['PA', 'AP']"],
        "exclude": ["quality == 'poor'"],
    }
    assert spec["partitions"]["external"] == {"site_C": "site == 'C'", "site_D": "site == 'D'"}
    assert spec["subgroups"]["age_bands"] == [18, 40, 65, 80]
    assert spec["metrics"]["primary"] == "roc_auc"
    assert spec["criteria"]["internal"]["min_auroc"] == 0.75
    assert spec["criteria"]["bias"] == {"max_subgroup_auroc_gap": 0.05, "min_group_size": 30}
    assert "planted_truth" not in study.study_path.read_text(encoding="utf-8")
    # every column the spec names exists in the cohort
    cohort_cols = set(pd.read_csv(study.cohort_path, nrows=1).columns)
    columns = spec["data"]["columns"]
    named = [v for k, v in columns.items() if isinstance(v, str)]
    named += columns["annotators"] + columns["attributes"]
    assert set(named) <= cohort_cols


def test_partitions_evaluate_on_the_cohort(planted, md):
    spec = tomllib.loads(planted.study.study_path.read_text(encoding="utf-8"))
    c = planted.cohort
    sizes = {
        name: len(c.query(rule)) for name, rule in spec["partitions"].items() if name != "external"
    }
    assert sizes["development"] > sizes["internal_test"] > sizes["calibration"] > 0
    included = c.query(" and ".join(spec["cohort"]["include"]))
    included = included.query(f"not ({spec['cohort']['exclude'][0]})")
    np.testing.assert_array_equal(included.index, np.flatnonzero(md.included(c)))


def test_development_ids_are_the_included_development_partition(planted, md):
    c = planted.cohort
    mask = md.included(c) & c["site"].isin(["A", "B"]) & (c["split"] == "train")
    assert planted.study.development_ids == tuple(c.loc[mask, "image_id"])


def test_same_seed_gives_identical_files(tmp_path):
    first = make_demo_study(tmp_path / "a", n_patients=30, rng=7, image_size=64)
    second = make_demo_study(tmp_path / "b", n_patients=30, rng=7, image_size=64)
    other = make_demo_study(tmp_path / "c", n_patients=30, rng=8, image_size=64)
    for name in ("cohort.csv", "planted_truth.csv", "study.toml"):
        assert (first.root / name).read_bytes() == (second.root / name).read_bytes()
    assert first.cohort_path.read_bytes() != other.cohort_path.read_bytes()
    paths = pd.read_csv(first.cohort_path)["path"]
    for p in paths[:5]:
        assert (first.root / p).read_bytes() == (second.root / p).read_bytes()


def test_refuses_a_foreign_non_empty_folder_and_replaces_its_own(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ClaimladderError, match="not empty"):
        make_demo_study(tmp_path, n_patients=20, image_size=64)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    out = tmp_path / "demo"
    make_demo_study(out, n_patients=40, image_size=64)
    (out / "predictions.csv").write_text("image_id,model,score\n")
    make_demo_study(out, n_patients=20, image_size=64)
    assert not (out / "predictions.csv").exists()  # stale: it described the old cohort
    listed = set(pd.read_csv(out / "cohort.csv")["path"])
    on_disk = {p.relative_to(out).as_posix() for p in (out / "images").rglob("*.dcm")}
    assert on_disk == listed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_patients": 5}, "n_patients"),
        ({"image_size": 32}, "image_size"),
        ({"clean": "yes"}, "clean"),
    ],
)
def test_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make_demo_study(tmp_path, **kwargs)


# ---------------------------------------------------------------- headers
@pytest.mark.parametrize("variant", ["planted", "clean"])
def test_dicom_headers_match_the_cohort(variant, request):
    loaded = request.getfixturevalue(variant)
    c, h = loaded.cohort, loaded.headers
    assert (h["Modality"] == "DX").all()
    assert (h["PatientID"] == c["patient_id"]).all()
    assert (h["StudyDate"] == c["study_date"].str.replace("-", "")).all()
    assert (h["ViewPosition"] == c["view"]).all()
    assert (h["Manufacturer"] == c["manufacturer"]).all()
    assert (h["ManufacturerModelName"] == c["scanner"]).all()
    assert (h["ProtocolName"] == c["protocol"]).all()
    assert h["SOPInstanceUID"].is_unique and h["StudyInstanceUID"].is_unique
    assert h["SOPInstanceUID"].str.fullmatch(r"2\.25\.\d+").all()
    has_age = c["age"].notna()
    expected_age = c.loc[has_age, "age"].astype(int).map("{:03d}Y".format)
    assert (h.loc[has_age, "PatientAge"] == expected_age).all()
    assert h.loc[~has_age, "PatientAge"].isna().all()
    assert (h.loc[c["sex"].notna(), "PatientSex"] == c.loc[c["sex"].notna(), "sex"]).all()
    # one institution and one vendor per site
    assert (h.groupby(c["site"])["InstitutionName"].nunique() == 1).all()
    description = np.where(c["priority"] == "urgent", "CXR URGENT", "CXR ROUTINE")
    assert (h["StudyDescription"] == description).all()


def test_site_c_is_monochrome1_with_a_rescale_and_decodes_upright(planted, md):
    c, h, images = planted.cohort, planted.headers, planted.images
    at_c = (c["site"] == "C").to_numpy()
    assert (h.loc[at_c, "PhotometricInterpretation"] == "MONOCHROME1").all()
    assert (h.loc[at_c, "RescaleSlope"].astype(float) == 0.5).all()
    assert (h.loc[~at_c, "PhotometricInterpretation"] == "MONOCHROME2").all()
    # read_image undoes the inversion: site C looks like site A (mediastinum bright)
    reference = images[(c["site"] == "A").to_numpy()].mean(axis=0).ravel()
    corr = [np.corrcoef(img.ravel(), reference)[0, 1] for img in images[at_c]]
    assert np.median(corr) > 0.8


def test_clean_headers_have_no_traps(clean_measures):
    assert clean_measures["monochrome1_C"] == 0
    assert clean_measures["monochrome1_other"] == 0
    for site in "ABCD":
        assert clean_measures[f"burned_in_header_{site}"] == 0


# --------------------------------------------------------- planted effects
def test_marker_shortcut_at_site_a(planted_measures, clean_measures):
    m = planted_measures
    assert m["marker_agrees_truth"] == 1.0  # the pixel detector sees exactly the planted markers
    assert m["marker_A_pos"] >= 0.75
    assert m["marker_A_neg"] <= 0.15
    assert m["marker_auroc_A"] >= 0.8
    assert m["marker_B"] == 0 and m["marker_D"] == 0
    assert 0.03 <= m["marker_C"] <= 0.25  # present at C, unrelated to the label
    assert abs(m["marker_auroc_C"] - 0.5) <= 0.15
    for site in "ABCD":
        assert clean_measures[f"marker_auroc_{site}"] == 0.5
    assert clean_measures["marker_A_pos"] == clean_measures["marker_C"] == 0


def test_burned_in_text_at_site_d(planted_measures, clean_measures):
    assert planted_measures["text_D"] == 1.0
    assert planted_measures["burned_in_header_D"] == 1.0
    for site in "ABC":
        assert planted_measures[f"text_{site}"] <= 0.02
        assert planted_measures[f"burned_in_header_{site}"] == 0
    for site in "ABCD":
        assert clean_measures[f"text_{site}"] <= 0.02


def test_priority_leaks_the_label_at_development_sites_only(planted_measures, clean_measures):
    assert planted_measures["priority_auroc_dev"] >= 0.68
    assert abs(planted_measures["priority_auroc_external"] - 0.5) <= 0.08
    assert planted_measures["description_auroc_dev"] == planted_measures["priority_auroc_dev"]
    assert abs(clean_measures["priority_auroc_dev"] - 0.5) <= 0.08
    assert abs(clean_measures["priority_auroc_external"] - 0.5) <= 0.08


def test_file_names_embed_the_label_at_site_b(planted_measures, clean_measures, planted):
    assert planted_measures["filename_token_B"] == 1.0
    assert planted_measures["filename_token_matches_label_B"] == 1.0
    assert planted_measures["filename_token_other_sites"] == 0
    assert clean_measures["filename_token_B"] == 0
    b = planted.cohort[planted.cohort["site"] == "B"]
    assert (
        b["path"]
        == "images/B/" + b["image_id"] + np.where(b["label"] == 1, "_opacity", "_normal") + ".dcm"
    ).all()


def test_site_b_protocol_change_shows_as_drift(planted_measures, clean_measures, planted):
    m = planted_measures
    assert m["B_protocol_changes_at_date"] == 1.0
    assert m["B_noise_ratio_after_before"] >= 1.15
    assert m["B_brightness_shift_after_before"] >= 0.04
    assert 0.9 <= clean_measures["B_noise_ratio_after_before"] <= 1.1
    assert abs(clean_measures["B_brightness_shift_after_before"]) <= 0.02
    assert clean_measures["B_protocols_before"] == clean_measures["B_protocols_after"] == 1
    assert clean_measures["B_protocol_changes_at_date"] == 0
    c, t = planted.cohort, planted.truth
    after = pd.to_datetime(c["study_date"]).dt.date >= PROTOCOL_CHANGE_DATE
    assert set(t.loc[(c["site"] == "B") & after, "protocol_phase"]) == {"after"}
    assert set(t.loc[(c["site"] == "B") & ~after, "protocol_phase"]) == {"before"}


def test_external_sites_differ_in_acquisition(planted_measures, clean_measures):
    m = planted_measures
    # C: correlated noise and lower resolution -> smoother residual, lower fine-scale noise
    assert m["noise_corr_C"] >= m["noise_corr_A"] + 0.08
    assert m["noise_level_C"] <= 0.5 * m["noise_level_A"]
    # D: portable unit, lower SNR
    assert m["noise_level_D"] >= 1.4 * m["noise_level_A"]
    c = clean_measures
    for site in "BCD":
        assert abs(c[f"noise_corr_{site}"] - c["noise_corr_A"]) <= 0.03
        assert 0.9 <= c[f"noise_level_{site}"] / c["noise_level_A"] <= 1.1


def test_site_d_is_portable_ap(planted, clean):
    assert set(planted.cohort.loc[planted.cohort["site"] == "D", "view"]) == {"AP"}
    assert planted.truth.loc[planted.cohort["site"] == "D", "support_devices"].mean() > 0.5
    assert set(clean.cohort.loc[clean.cohort["site"] == "D", "view"]) == {"PA", "AP", "LL"}
    assert not clean.truth["support_devices"].any()


def test_lesions_are_fainter_at_age_70_and_over(planted_measures, clean_measures):
    assert 0.35 <= planted_measures["truth_contrast_ratio_old_young"] <= 0.45
    ratio = planted_measures["pixel_contrast_old"] / planted_measures["pixel_contrast_young"]
    assert ratio <= 0.65
    assert 0.85 <= clean_measures["truth_contrast_ratio_old_young"] <= 1.15
    clean_ratio = clean_measures["pixel_contrast_old"] / clean_measures["pixel_contrast_young"]
    assert clean_ratio >= 0.8
    assert planted_measures["pixel_contrast_young"] > 0.05  # lesions are visible at all


@pytest.mark.parametrize(("variant", "differs"), [("planted", True), ("clean", False)])
def test_prevalence_by_site(variant, differs, request):
    loaded = request.getfixturevalue(variant)
    c = loaded.cohort.assign(lesion=loaded.truth["lesion"])
    # one image per patient: follow-ups of a patient share the lesion, so
    # image-level counts are clustered and a chi-square on them is too liberal
    first = c.sort_values(["patient_id", "study_date"]).groupby("patient_id").head(1)
    p_value = chi2_contingency(pd.crosstab(first["site"], first["lesion"]))[1]
    if differs:
        assert p_value < 0.01
        by_site = c.groupby("site")["label"].mean()
        assert by_site["C"] == by_site.min()
    else:
        assert p_value > 0.05


def test_annotators_err_at_different_rates_mostly_on_subtle_lesions(
    planted_measures, clean_measures
):
    m = planted_measures
    assert m["reader_1_error"] < m["reader_2_error"] < m["reader_3_error"]
    assert m["reader_1_error"] <= 0.05
    assert 0.04 <= m["reader_2_error"] <= 0.12
    assert 0.15 <= m["reader_3_error"] <= 0.25
    assert m["reader_3_error_subtle_pos"] >= 2 * m["reader_3_error_clear_pos"]
    assert m["reader_3_error_subtle_pos"] >= 3 * m["reader_3_error_neg"]
    assert m["definite_subtle_pos"] <= 0.2 and m["definite_clear_pos"] >= 0.5
    assert m["adjudicated_label_is_truth"] == 1.0
    assert m["label_error"] >= 0.02  # the reference standard is imperfect
    c = clean_measures
    for k in (1, 2, 3):
        assert c[f"reader_{k}_error"] <= 0.04
    assert abs(c["definite_subtle_pos"] - c["definite_clear_pos"]) <= 0.15
    assert c["label_error"] <= 0.01


def test_near_duplicates_cross_patients_and_partitions(planted_measures, clean_measures, planted):
    m = planted_measures
    assert m["duplicates_planted"] >= 5
    assert m["duplicates_found"] == m["duplicates_found_planted"] == m["duplicates_planted"]
    assert m["duplicates_crossing_split"] == m["duplicates_planted"]
    assert clean_measures["duplicates_found"] == 0
    c, t = planted.cohort.set_index("image_id"), planted.truth.set_index("image_id")
    for copy, original in t.loc[t["duplicate_of"] != "", "duplicate_of"].items():
        assert c.at[copy, "patient_id"] != c.at[original, "patient_id"]
        assert c.at[copy, "site"] == c.at[original, "site"]
        assert t.at[copy, "true_patient_id"] == c.at[original, "patient_id"]


def test_patient_split_is_disjoint_and_naive_split_is_not(planted_measures, clean_measures):
    assert planted_measures["split_shared_patients"] == 0
    assert planted_measures["naive_split_shared_patients"] >= 10
    assert clean_measures["split_shared_patients"] == 0
    assert clean_measures["naive_split_shared_patients"] == 0


@pytest.mark.parametrize("variant", ["planted", "clean"])
def test_split_is_stratified_by_site_and_label(variant, request):
    loaded = request.getfixturevalue(variant)
    c = loaded.cohort.assign(lesion=loaded.truth["lesion"])
    real = (loaded.truth["duplicate_of"] == "").to_numpy()
    dev = c[c["site"].isin(["A", "B"]).to_numpy() & real]
    shares = dev.groupby("split")["patient_id"].nunique() / dev["patient_id"].nunique()
    assert shares["train"] == pytest.approx(0.6, abs=0.05)
    assert shares["test"] == pytest.approx(0.25, abs=0.05)
    # strata: site x patient ever positive; shares agree to rounding
    patients = dev.groupby("patient_id").agg(
        split=("split", "first"), site=("site", "first"), pos=("lesion", "max")
    )
    share = patients.groupby("split")["pos"].mean()
    assert share.max() - share.min() <= 0.05
    site_share = pd.crosstab(patients["split"], patients["site"], normalize="index")["A"]
    assert site_share.max() - site_share.min() <= 0.08  # +-1 patient per stratum in calib


@pytest.mark.parametrize("variant", ["planted", "clean"])
def test_cohort_facts_present_in_both_variants(variant, request):
    loaded = request.getfixturevalue(f"{variant}_measures")
    for key in ("children", "lateral", "poor_quality", "age_missing", "sex_missing"):
        assert loaded[key] > 0, key
    c = request.getfixturevalue(variant).cohort
    assert (c["age"].dropna() < 18).any()
    assert 0.005 <= c["age"].isna().mean() <= 0.04
    assert c["sex"].isna().mean() <= 0.03
    # follow-ups: several images per patient, dated in order, same site
    multi = c.groupby("patient_id").filter(lambda g: len(g) > 1)
    assert multi["patient_id"].nunique() >= 50
    assert (multi.groupby("patient_id")["site"].nunique() == 1).all()
    assert multi.groupby("patient_id")["study_date"].nunique().min() >= 2


def test_ages_increase_with_follow_up_dates(planted):
    c = planted.cohort.dropna(subset=["age"]).sort_values(["patient_id", "study_date"])
    steps = c.groupby("patient_id")["age"].diff().dropna()
    assert (steps >= 0).all() and (steps <= 2).all()


def test_planted_truth_columns(planted):
    t = planted.truth
    for col in (
        "image_id", "lesion", "lesion_radius_px", "lesion_contrast", "marker",
        "burned_in_text", "duplicate_of", "protocol_phase", "age_true", "sex_true",
    ):  # fmt: skip
        assert col in t.columns, col
    assert ((t["lesion"] == 1) == (t["lesion_radius_px"] > 0)).all()
    assert t.loc[t["lesion"] == 1, ["lesion_row", "lesion_col"]].notna().all().all()
    assert set(t["protocol_phase"]) == {"before", "after", "none"}


def test_image_size_scales_the_pixels(tmp_path):
    study = make_demo_study(tmp_path, n_patients=20, image_size=192, clean=True)
    from claimladder.io import read_image

    first = pd.read_csv(study.cohort_path)["path"].iloc[0]
    assert read_image(study.root / first).shape == (192, 192)


def test_dates_are_within_the_study_period(planted):
    dates = pd.to_datetime(planted.cohort["study_date"]).dt.date
    assert dates.min() >= dt.date(2019, 1, 1)
    assert dates.max() <= dt.date(2026, 12, 31)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", planted.cohort["study_date"].iloc[0])


def test_progress_bars_go_to_stderr(tmp_path, capsys):
    make_demo_study(tmp_path, n_patients=20, image_size=64, progress=True)
    captured = capsys.readouterr()
    assert "Rendering" in captured.err and "Writing DICOM" in captured.err
    assert captured.out == ""
