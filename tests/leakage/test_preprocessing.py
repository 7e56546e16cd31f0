"""leakage.preprocessing_fit: fitted preprocessing must come from training data."""

from __future__ import annotations

import math

import pytest

from claimladder._core import Status
from claimladder.leakage import FittedTransform, check_preprocessing_fit

KINDS = {"train": "development", "calib": "calibration", "test": "internal_test",
         "site_C": "external"}


@pytest.mark.parametrize(("partition", "status", "problem"), [
    ("train", Status.PASS, ""),
    ("calib", Status.FAIL, "calibration partition"),
    ("test", Status.FAIL, "internal_test partition"),
    ("site_C", Status.FAIL, "external partition"),
], ids=["development", "calibration", "internal-test", "external"])
def test_only_development_data_passes(partition, status, problem):
    t = FittedTransform(name="z-score", partition=partition,
                        statistics={"mean": 412.5, "sd": 88.0}, n_images=300)
    finding = check_preprocessing_fit([t], KINDS)
    assert finding.check == "leakage.preprocessing_fit" and finding.status is status
    assert finding.table["problem"].tolist() == [problem]
    assert finding.params["transforms"][0]["statistics"] == {"mean": 412.5, "sd": 88.0}
    if status is Status.FAIL:
        assert partition in finding.message and "refit" in finding.message


def test_a_sealed_development_partition_fails():
    t = FittedTransform(name="PCA", partition="train")
    finding = check_preprocessing_fit([t], KINDS, sealed_names=["train"])
    assert finding.status is Status.FAIL
    assert finding.table["problem"].tolist() == ["sealed partition"]


def test_one_bad_transform_among_good_ones_fails_and_is_named():
    good = FittedTransform(name="z-score", partition="train")
    bad = FittedTransform(name="histogram matching", partition="test")
    finding = check_preprocessing_fit([good, bad, good], KINDS)
    assert finding.status is Status.FAIL
    assert "1 of 3" in finding.message and "'histogram matching'" in finding.message
    assert finding.table["fitted_on_training_data"].tolist() == [True, False, True]


def test_nothing_declared_is_not_evaluable():
    finding = check_preprocessing_fit([], KINDS)
    assert finding.status is Status.NOT_EVALUABLE
    assert "[[preprocessing]]" in finding.message


def test_unknown_partition_is_an_error_with_a_suggestion():
    with pytest.raises(ValueError, match="Did you mean 'train'"):
        check_preprocessing_fit([FittedTransform(name="x", partition="trian")], KINDS)
    with pytest.raises(TypeError, match="FittedTransform"):
        check_preprocessing_fit([{"name": "x", "partition": "train"}], KINDS)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"name": "", "partition": "train"}, ValueError),
    ({"name": "x", "partition": None}, ValueError),
    ({"name": "x", "partition": "train", "statistics": {"mean": math.nan}}, ValueError),
    ({"name": "x", "partition": "train", "statistics": {"mean": "high"}}, ValueError),
    ({"name": "x", "partition": "train", "statistics": [1, 2]}, TypeError),
    ({"name": "x", "partition": "train", "n_images": 0}, ValueError),
], ids=["empty-name", "no-partition", "nan", "text", "not-a-mapping", "zero-images"])
def test_invalid_records(kwargs, error):
    with pytest.raises(error):
        FittedTransform(**kwargs)


def test_round_trip():
    t = FittedTransform(name="window", partition="train", statistics={"level": [40, 400]},
                        n_images=12, description="CT window")
    assert FittedTransform.from_dict(t.to_dict()) == t


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    from claimladder.datasets import make_demo_study

    demo = make_demo_study(tmp_path_factory.mktemp("pre") / "s", n_patients=30, image_size=64)
    text = demo.study_path.read_text().replace('predictions = "predictions.csv"\n', "")
    return demo.study_path, text


def _rung1(study_path, text):
    from claimladder.ladder import load_study, run_ladder

    study_path.write_text(text)
    evidence = run_ladder(load_study(study_path), rungs=[1])
    return next(f for f in evidence.findings if f.check == "leakage.preprocessing_fit")


def test_study_toml_declarations_reach_the_ladder(tiny_demo):
    from claimladder._core import StudySpecError

    path, text = tiny_demo
    assert _rung1(path, text).status is Status.PASS  # the demo model: fitted on development
    moved = text.replace('partition = "development"', 'partition = "internal_test"')
    assert _rung1(path, moved).status is Status.FAIL
    with pytest.raises(StudySpecError, match="Did you mean 'development'"):
        _rung1(path, text.replace('partition = "development"', 'partition = "developmnt"'))
    with pytest.raises(StudySpecError, match="finite number"):
        _rung1(path, text.replace('partition = "development"',
                                  'partition = "development"\nstatistics = {mean = nan}'))
    with pytest.raises(StudySpecError, match=r"\[preprocessing\]"):
        _rung1(path, text.replace('partition = "development"',
                                  'partition = "development"\nfitted_on = "x"'))
