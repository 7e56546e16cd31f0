"""The demo model: trains on the given ids only, and behaves like a shortcut-prone model."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from claimladder._core import AlignmentError, StudySpecError
from claimladder.datasets import (
    DEFAULT_N_PATIENTS,
    DEMO_MODEL_NAME,
    make_demo_predictions,
    make_demo_study,
)
from claimladder.io import write_dicom


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    study = make_demo_study(root / "study", n_patients=80)
    make_demo_predictions(study.root, train_image_ids=study.development_ids)
    return study, pd.read_csv(study.predictions_path)


def test_predictions_cover_every_cohort_image(small):
    study, predictions = small
    cohort = pd.read_csv(study.cohort_path)
    assert list(predictions.columns) == ["image_id", "model", "score"]
    assert list(predictions["image_id"]) == list(cohort["image_id"])
    assert (predictions["model"] == DEMO_MODEL_NAME).all()
    assert predictions["score"].between(0, 1).all()
    assert predictions["score"].nunique() > len(predictions) // 2
    assert not list(study.root.glob(".predictions.csv.*"))  # no temporary file left


def test_same_seed_gives_identical_predictions(small, tmp_path):
    study, _ = small
    copy = tmp_path / "copy"
    shutil.copytree(study.root, copy)
    make_demo_predictions(copy, train_image_ids=study.development_ids)
    assert (copy / "predictions.csv").read_bytes() == study.predictions_path.read_bytes()


def test_fits_on_the_training_images_only(small, tmp_path):
    """Flip the labels and scramble the pixels of every other image: the fit must not move."""
    study, predictions = small
    copy = tmp_path / "tampered"
    shutil.copytree(study.root, copy)
    cohort = pd.read_csv(copy / "cohort.csv")
    train = cohort["image_id"].isin(study.development_ids).to_numpy()
    cohort.loc[~train, "label"] = 1 - cohort.loc[~train, "label"]
    cohort.to_csv(copy / "cohort.csv", index=False)
    rng = np.random.default_rng(0)
    for path in cohort.loc[~train, "path"]:
        write_dicom(copy / path, rng.integers(0, 4096, (128, 128)), bits_stored=12)
    make_demo_predictions(copy, train_image_ids=study.development_ids)
    tampered = pd.read_csv(copy / "predictions.csv")
    np.testing.assert_array_equal(tampered["score"][train], predictions["score"][train])
    assert not np.allclose(tampered["score"][~train], predictions["score"][~train])


def test_training_ids_change_the_model(small, tmp_path):
    study, predictions = small
    copy = tmp_path / "half"
    shutil.copytree(study.root, copy)
    half = study.development_ids[: len(study.development_ids) // 2]
    make_demo_predictions(copy, train_image_ids=half)
    assert not np.allclose(pd.read_csv(copy / "predictions.csv")["score"], predictions["score"])


def test_unknown_training_id_is_an_alignment_error(small):
    study, _ = small
    with pytest.raises(AlignmentError, match="IMG99999"):
        make_demo_predictions(study.root, train_image_ids=["IMG99999", *study.development_ids])


def test_one_class_training_set_is_an_alignment_error(small):
    study, _ = small
    cohort = pd.read_csv(study.cohort_path)
    negatives = cohort.loc[cohort["label"] == 0, "image_id"][:20]
    with pytest.raises(AlignmentError, match="one class"):
        make_demo_predictions(study.root, train_image_ids=negatives)


def test_a_single_string_is_rejected(small):
    study, _ = small
    with pytest.raises(TypeError, match="iterable of image ids"):
        make_demo_predictions(study.root, train_image_ids="IMG00001")


def test_missing_study_is_a_spec_error(tmp_path):
    with pytest.raises(StudySpecError, match="study.toml"):
        make_demo_predictions(tmp_path, train_image_ids=["IMG00001"])


# ---------------------------------------------------------------- behaviour
def _aurocs(md, study) -> dict[str, float]:
    make_demo_predictions(study.root, train_image_ids=study.development_ids)
    cohort = pd.read_csv(study.cohort_path).merge(
        pd.read_csv(study.predictions_path), on="image_id"
    )
    c = cohort[md.included(cohort).to_numpy()]
    internal = c[c["site"].isin(["A", "B"]) & (c["split"] == "test")]
    external = c[c["site"].isin(["C", "D"])]
    out = {
        "internal": md.auroc(internal["label"], internal["score"]),
        "external": md.auroc(external["label"], external["score"]),
        "internal_old": md.auroc(
            internal.loc[internal["age"] >= 70, "label"],
            internal.loc[internal["age"] >= 70, "score"],
        ),
        "internal_young": md.auroc(
            internal.loc[internal["age"] < 70, "label"], internal.loc[internal["age"] < 70, "score"]
        ),
    }
    for site in ("C", "D"):
        part = c[c["site"] == site]
        out[site] = md.auroc(part["label"], part["score"])
    return out


@pytest.mark.slow
def test_shortcut_model_drops_externally_on_the_planted_study(md, tmp_path):
    """Default-size planted study (rng 0): internal 0.92; C 0.69, D 0.56.

    Internal test, age >= 70 vs < 70: 0.77 vs 0.98.
    """
    study = make_demo_study(tmp_path, n_patients=DEFAULT_N_PATIENTS)
    a = _aurocs(md, study)
    assert a["internal"] >= 0.85
    assert a["internal"] - a["C"] >= 0.1
    assert a["internal"] - a["D"] >= 0.1
    assert a["internal"] - a["external"] >= 0.1
    assert a["internal_young"] - a["internal_old"] >= 0.05


@pytest.mark.slow
def test_model_generalizes_on_the_clean_study(md, tmp_path):
    """Default-size clean study (rng 0): internal 0.98, external 0.93 (C 0.93, D 0.92).

    The gap is sampling error: over seeds 0-5 it was 0.05, 0.01, 0.03,
    -0.04, 0.06, 0.01 (internal test ~220 images, external ~600), hence the
    0.06 tolerance.
    """
    study = make_demo_study(tmp_path, n_patients=DEFAULT_N_PATIENTS, clean=True)
    a = _aurocs(md, study)
    assert a["internal"] >= 0.85
    assert abs(a["internal"] - a["external"]) <= 0.06
    assert abs(a["internal_young"] - a["internal_old"]) <= 0.05


def test_progress_bar_goes_to_stderr(small, tmp_path, capsys):
    study, _ = small
    copy = tmp_path / "progress"
    shutil.copytree(study.root, copy)
    make_demo_predictions(copy, train_image_ids=study.development_ids, progress=True)
    assert "Reading images" in capsys.readouterr().err
