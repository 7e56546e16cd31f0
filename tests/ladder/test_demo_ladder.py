"""The ladder on the embedded demo study: planted failures are caught, the clean control is quiet.

Run at the demo's default size (as `claimladder demo` does), once per variant.
"""

import pytest

from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.ladder import load_study, partition_image_ids, run_ladder


def _evidence(tmp_path_factory, clean):
    root = tmp_path_factory.mktemp("clean" if clean else "planted")
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
    assert any("age = " in entry for entry in planted.not_validated_for)
    # the portable unit is miscalibrated, and confidently wrong: its abstention rule fails
    assert _status(planted, "calibration.ece", partition="site_D") == ["fail"]
    assert _status(planted, "calibration.abstention", partition="site_D") == ["fail"]
    annotators = next(f for f in planted.findings if f.check == "labels.annotator_reference")
    kappa = annotators.table[annotators.table["metric"] == "cohen_kappa"].set_index("annotator")
    assert kappa.loc["reader_3", "estimate"] < kappa.loc["reader_1", "estimate"]
    # the corner marker: masking non-anatomical regions costs the model its AUROC
    assert _status(planted, "shortcuts.masking") == ["fail"]
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
                  "shortcuts.site_predictability"):
        assert "fail" not in _status(clean, check), check
