"""Tuning ledger: fitting on a sealed or test partition fails rung 1."""

from __future__ import annotations

import json

import pytest

from claimladder import Rung, Status
from claimladder.splits import (
    FitRecord,
    SplitFileError,
    TuningLedger,
    check_fit_partition,
    is_test_partition,
    read_ledger,
    write_ledger,
)

SEALED = ["internal_test", "site_D"]


@pytest.mark.parametrize(("partition", "status"), [
    ("development", Status.PASS),
    ("calibration", Status.PASS),
    ("fold_2", Status.PASS),
    ("internal_test", Status.FAIL),
    ("site_D", Status.FAIL),          # sealed under a name without a test-like prefix
    ("external_C", Status.FAIL),      # a test partition by name, though not sealed
    ("external_temporal", Status.FAIL),
], ids=lambda v: str(v))
def test_fit_partition_status(partition, status):
    record = FitRecord(kind="threshold", partition=partition, n_images=150,
                       params={"threshold": 0.37})
    finding = check_fit_partition(record, SEALED)
    assert finding.status is status
    assert finding.rung is Rung.INTERNAL
    assert finding.check == "provenance.tuning_ledger"
    assert finding.params["partition"] == partition
    assert partition in finding.message


def test_preprocessing_fit_is_a_leakage_check():
    record = FitRecord(kind="preprocessing", partition="internal_test", n_images=80,
                       description="intensity mean and std")
    finding = check_fit_partition(record, sealed_names=())
    assert finding.check == "leakage.preprocessing_fit"
    assert finding.status is Status.FAIL
    assert "intensity mean and std" in finding.message and "sealed" not in finding.message
    sealed = check_fit_partition(
        FitRecord(kind="preprocessing", partition="holdout", n_images=80), "holdout")
    assert sealed.status is Status.FAIL and "sealed partition 'holdout'" in sealed.message


def test_extra_test_names():
    record = FitRecord(kind="recalibration", partition="holdout", n_images=50)
    assert check_fit_partition(record, ()).status is Status.PASS
    assert check_fit_partition(record, (), test_names=["holdout"]).status is Status.FAIL
    assert is_test_partition("holdout", test_names=["holdout"])
    assert not is_test_partition("development", sealed_names=["internal_test"])


def test_ledger_checks_every_record_and_round_trips(tmp_path):
    ledger = (TuningLedger()
              .add(FitRecord(kind="preprocessing", partition="development", n_images=800,
                             n_patients=300, description="z-score"))
              .add(FitRecord(kind="threshold", partition="internal_test", n_images=200,
                             params={"threshold": 0.42})))
    findings = ledger.check(sealed_names=["internal_test"])
    assert [(f.check, f.status) for f in findings] == [
        ("leakage.preprocessing_fit", Status.PASS), ("provenance.tuning_ledger", Status.FAIL)]
    path = write_ledger(ledger, tmp_path / "ledger.json")
    back = read_ledger(path)
    assert back == ledger
    assert back.to_frame()["partition"].tolist() == ["development", "internal_test"]
    for f in findings:
        json.dumps(f.to_dict(), allow_nan=False)


def test_fit_record_validation(tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'threshold'"):
        FitRecord(kind="treshold", partition="development", n_images=5)
    with pytest.raises(ValueError, match="'n_images' parameter of FitRecord"):
        FitRecord(kind="model", partition="development", n_images=0)
    with pytest.raises(ValueError, match="'partition'"):
        FitRecord(kind="model", partition="", n_images=3)
    with pytest.raises(TypeError, match="FitRecord objects"):
        TuningLedger(records=({"kind": "model"},))
    (tmp_path / "bad.json").write_text(json.dumps(
        {"format": "claimladder.tuning_ledger", "records": [{"kind": "model"}]}))
    with pytest.raises(SplitFileError, match="malformed tuning ledger"):
        read_ledger(tmp_path / "bad.json")
