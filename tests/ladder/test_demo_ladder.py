"""The ladder on the embedded demo study: planted failures are caught, the clean control is quiet.

Run at the demo's default size (as `claimladder demo` does), once per variant.
"""

import pytest

from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.ladder import load_study, partition_image_ids, run_ladder


#: Prefix of the folders the two variants are generated in (unique to this module, so
#: `_demo_root` cannot pick another test's "clean0").
_FOLDER = "ladder-demo-"


def _evidence(tmp_path_factory, clean):
    root = tmp_path_factory.mktemp(_FOLDER + ("clean" if clean else "planted"))
    demo = make_demo_study(root, clean=clean, rng=0)
    study = load_study(demo.study_path)
    model, _ = fit_demo_model(root, train_image_ids=partition_image_ids(study, "development"),
                              rng=0)
    return run_ladder(study, model=model.predict_proba)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _evidence(tmp_path_factory, clean=False)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return _evidence(tmp_path_factory, clean=True)


def _status(evidence, check, **params):
    return [f.status.value for f in evidence.findings if f.check == check
            and all(f.params.get(k) == v for k, v in params.items())]


def _verdicts(evidence):
    return {int(v.rung): v.status for v in evidence.verdicts}


@pytest.mark.slow
def test_planted_study_fails_where_planted(planted):
    assert _status(planted, "external.auroc_drop", partition="site_D") == ["fail"]
    assert _verdicts(planted)[2] == "fail"
    assert _status(planted, "bias.auroc_gap", attribute="age", partition="internal_test") == ["fail"]
    assert _status(planted, "leakage.metadata_label") == ["fail"]
    assert _status(planted, "leakage.filename_label") == ["fail"]
    assert _status(planted, "leakage.pixel_markers") == ["fail"]
    # the 26 re-exports under new pseudonyms, confirmed on pixel noise; "PORTABLE AP" at D
    assert _status(planted, "leakage.near_duplicates") == ["fail"]
    assert _status(planted, "leakage.burned_in_text") == ["warn"]
    assert _status(planted, "leakage.preprocessing_fit") == ["pass"]
    images = planted.provenance["inputs"]["images"]
    assert images["count"] == 1758 and images["unreadable"] == 0
    assert any("age = " in entry for entry in planted.not_validated_for)
    # the portable unit is miscalibrated, and confidently wrong: its abstention rule fails
    assert _status(planted, "calibration.ece", partition="site_D") == ["fail"]
    assert _status(planted, "calibration.abstention", partition="site_D") == ["fail"]
    # ... its conformal sets miss most of its positives, its images are unlike development
    # (the other vendor too), and the miscalibration shows in every subgroup there
    assert _status(planted, "calibration.conformal", partition="site_D") == ["fail"]
    for site in ("site_C", "site_D"):
        assert _status(planted, "calibration.ood", partition=site) == ["warn"]
    assert _status(planted, "calibration.ood", partition="internal_test") == ["pass"]
    assert _status(planted, "bias.calibration", partition="site_D") == ["warn"]
    annotators = next(f for f in planted.findings if f.check == "labels.annotator_reference")
    kappa = annotators.table[annotators.table["metric"] == "cohen_kappa"].set_index("annotator")
    assert kappa.loc["reader_3", "estimate"] < kappa.loc["reader_1", "estimate"]
    # the corner marker: masking the detected marker costs the model its AUROC
    assert _status(planted, "shortcuts.masking") == ["fail"]
    assert _status(planted, "shortcuts.site_from_scores") == ["fail"]
    assert _status(planted, "shortcuts.border_only") == ["fail"]
    baseline = next(f for f in planted.findings if f.check == "utility.metadata_baseline")
    assert baseline.status.value == "pass" and baseline.estimate.ci.low > 0


@pytest.mark.slow
def test_clean_study_raises_no_false_alarm(clean):
    verdicts = _verdicts(clean)
    assert verdicts[0] == "pass"
    for check in ("external.auroc_drop", "bias.auroc_gap", "leakage.metadata_label",
                  "leakage.filename_label", "leakage.pixel_markers", "leakage.patient_overlap",
                  "leakage.dicom_phi", "internal.roc_auc", "utility.metadata_baseline",
                  "labels.agreement", "labels.annotator_reference", "shortcuts.border_only",
                  "shortcuts.site_predictability", "leakage.near_duplicates",
                  "leakage.burned_in_text", "leakage.preprocessing_fit"):
        assert "fail" not in _status(clean, check), check
    assert _status(clean, "leakage.near_duplicates") == ["pass"]
    assert _status(clean, "leakage.burned_in_text") == ["pass"]
    for check in ("calibration.ece", "calibration.conformal", "calibration.ood",
                  "bias.calibration"):
        assert "fail" not in _status(clean, check), check
    assert _status(clean, "calibration.ece", partition="internal_test") == ["pass"]
    assert set(_status(clean, "calibration.ood")) == {"pass"}
    # the shortcut probes do not fire at all on the clean control
    for check in ("shortcuts.masking", "shortcuts.border_only", "shortcuts.site_predictability",
                  "shortcuts.site_from_scores"):
        assert _status(clean, check) == ["pass"], check


def _demo_root(tmp_path_factory, name):
    """The folder `_evidence` generated the variant in (``mktemp`` numbers it)."""
    (root,) = tmp_path_factory.getbasetemp().glob(f"{_FOLDER}{name}[0-9]*")
    return root


@pytest.mark.slow
def test_planted_reader_study_and_deployment(planted, tmp_path_factory):
    import pandas as pd

    root = _demo_root(tmp_path_factory, "planted")
    # the aid raises the readers' average AUROC (OR-Hillis RRRC) ...
    assert _status(planted, "readers.mrmc_auroc") == ["pass"]
    decisions = next(f for f in planted.findings if f.check == "readers.decision_changes")
    rates = decisions.table.set_index("metric")
    assert rates.loc["right_to_wrong", "ci_low"] > 0
    # ... but misleads readers on marker-bearing negatives the shortcut model scores high
    truth = pd.read_csv(root / "planted_truth.csv", dtype={"image_id": str}).set_index("image_id")
    misled = [i for i in decisions.examples
              if truth.loc[i, "marker"] and truth.loc[i, "lesion"] == 0]
    assert misled, decisions.examples
    readings = pd.read_csv(root / "readers.csv", dtype={"case_id": str}).join(
        truth[["marker", "lesion"]], on="case_id")
    neg = readings[readings["lesion"] == 0]
    aided = neg[neg["modality"] == "aided"].groupby("marker")["decision"].mean()
    assert aided[True] > aided[False] + 0.05
    # where the model sees them (sites A and B), the aid lifts subtle lesions
    sites = pd.read_csv(root / "cohort.csv", dtype={"image_id": str}).set_index("image_id")
    readings = readings.join(truth[["conspicuity"]], on="case_id").join(sites[["site"]],
                                                                          on="case_id")
    pos = readings[readings["lesion"] == 1]
    subtle = pos[(pos["conspicuity"] < pos["conspicuity"].median())
                 & pos["site"].isin(["A", "B"])]
    called = subtle.groupby("modality")["decision"].mean()
    assert called["aided"] > called["unaided"] + 0.03
    # the declared ED population differs as documented, and each mismatch is listed
    for check in ("deployment.characteristics", "deployment.coverage", "deployment.prevalence"):
        assert _status(planted, check) == ["warn"], check
    entries = [e for e in planted.not_validated_for if e.startswith("deployment")]
    assert any("'Veridian Radiography'" in e for e in entries)
    assert any(e.startswith("deployment: age:") for e in entries)
    assert any("view = AP" in e for e in entries)
    assert any("prevalence 8.0%" in e for e in entries)
    assert not any("sex" in e for e in entries)


@pytest.mark.slow
def test_clean_reader_study_helps_honestly(clean, tmp_path_factory):
    import pandas as pd

    root = _demo_root(tmp_path_factory, "clean")
    for check in ("readers.mrmc_auroc", "readers.decision_changes", "readers.model_vs_readers"):
        assert _status(clean, check) == ["pass"], check
    truth = pd.read_csv(root / "planted_truth.csv", dtype={"image_id": str}).set_index("image_id")
    readings = pd.read_csv(root / "readers.csv", dtype={"case_id": str}).join(
        truth[["lesion", "conspicuity"]], on="case_id")
    pos = readings[readings["lesion"] == 1]
    subtle = pos[pos["conspicuity"] < pos["conspicuity"].median()]
    called = subtle.groupby("modality")["decision"].mean()
    assert called["aided"] > called["unaided"] + 0.05  # the aid lifts subtle lesions
    for check in ("deployment.characteristics", "deployment.coverage", "deployment.prevalence"):
        assert _status(clean, check) == ["pass"], check
    assert not [e for e in clean.not_validated_for if e.startswith("deployment")]


@pytest.mark.slow
def test_failure_analysis_finds_the_portable_unit(planted, clean):
    # slice finding over metadata: the portable unit (site D, AP views) has more errors ...
    slices = next(f for f in planted.findings if f.check == "failure.slices")
    assert slices.status.value == "warn"
    flagged = slices.table[(slices.table["p_holm"] < 0.05) & (slices.table["difference"] > 0)]
    assert {"partition = site_D", "view = AP"} <= set(flagged["slice"])
    # ... and the clean control has no slice with significantly more errors
    assert _status(clean, "failure.slices") == ["pass"]
    # the gallery shows 6 + 6 thumbnails, with the portable unit's burned-in text blacked out
    gallery = next(f for f in planted.findings if f.check == "failure.worst_cases").plots[0].data
    assert len(gallery) == 12 and gallery["thumbnail"].str.startswith("data:image/png").all()
    assert gallery.loc[gallery["partition"] == "site_D", "text_regions_masked"].gt(0).all()
