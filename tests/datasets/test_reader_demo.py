"""The demo's simulated reader study and its declared deployment population."""

import tomllib

import pandas as pd
import pytest

from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.datasets._reader_demo import make_demo_readings
from claimladder.readers import load_readings


@pytest.mark.slow
@pytest.mark.parametrize("clean", [False, True], ids=["planted", "clean"])
def test_readings_are_crossed_reproducible_and_declared(tmp_path, clean):
    demo = make_demo_study(tmp_path, n_patients=80, image_size=64, clean=clean, rng=3)
    spec = tomllib.loads(demo.study_path.read_text())
    assert spec["readers"]["table"] == "readers.csv"
    assert not (tmp_path / "readers.csv").exists()  # it follows the model's scores
    fit_demo_model(tmp_path, train_image_ids=demo.development_ids, rng=0)
    first = (tmp_path / "readers.csv").read_bytes()
    make_demo_readings(tmp_path, rng=0)
    again = (tmp_path / "readers.csv").read_bytes()
    make_demo_readings(tmp_path, rng=1)
    assert (tmp_path / "readers.csv").read_bytes() != again
    make_demo_readings(tmp_path, rng=0)
    assert (tmp_path / "readers.csv").read_bytes() == again
    assert first  # written by fit_demo_model
    cohort = pd.read_csv(demo.cohort_path, dtype={"image_id": str})
    study = load_readings(tmp_path / "readers.csv",
                          cohort.set_index("image_id")["label"])
    assert study.modalities == ("unaided", "aided") and study.n_readers == 5
    assert study.decisions is not None and study.times is not None
    read_sites = set(cohort.set_index("image_id").loc[list(study.case_ids), "site"])
    assert read_sites <= {"A", "B", "C"}
    deployment = spec["deployment"]
    assert set(deployment) >= {"prevalence", "scanner_vendors", "numeric", "categories"}
    if clean:
        assert "Veridian Radiography" not in deployment["scanner_vendors"]
    else:
        assert deployment["prevalence"] == 0.08
        assert "Veridian Radiography" in deployment["scanner_vendors"]


def test_no_reader_section_writes_nothing(tmp_path):
    (tmp_path / "study.toml").write_text('[data]\ncohort = "cohort.csv"\n')
    assert make_demo_readings(tmp_path) is None
