"""The ladder's pixel work streams: at most one chunk of decoded images is alive at a time."""

from __future__ import annotations

import numpy as np
import pytest

from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.ladder import _data as data_module
from claimladder.ladder import load_study, load_study_data, partition_image_ids, run_ladder
from claimladder.ladder._pixels import pixel_summaries

pytestmark = pytest.mark.slow

CHUNK = 16


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    demo = make_demo_study(folder / "study", n_patients=60, rng=3)
    spec = demo.study_path.read_text()
    demo.study_path.write_text(spec.replace("n_resamples = 1000", "n_resamples = 200"))
    loaded = load_study(demo.study_path)
    model, _ = fit_demo_model(folder / "study",
                              train_image_ids=partition_image_ids(loaded, "development"), rng=3)
    return demo.study_path, model


def test_leakage_and_ood_hold_one_chunk_of_images(study, monkeypatch, live_images):
    path, model = study
    counter = live_images
    monkeypatch.setattr(data_module, "IMAGE_CHUNK", CHUNK)
    evidence = run_ladder(load_study(path), rungs=[0, 1, 4], model=model.predict_proba)
    n = len(load_study_data(load_study(path)).cohort.image_ids)
    assert counter.total >= n > 4 * CHUNK  # every image was decoded ...
    assert counter.peak <= CHUNK  # ... but never more than one chunk at once
    checks = {f.check for f in evidence.findings}
    assert {"leakage.near_duplicates", "leakage.pixel_markers", "calibration.ood"} <= checks


def test_robustness_holds_one_chunk_of_test_images(study, monkeypatch, live_images):
    """Rung 5: probes on the summaries; stress test and masking decode chunks of the
    internal test set in their units (one chunk here: it is smaller than 256 images)."""
    path, model = study
    data = load_study_data(load_study(path))
    n, n_test = data.cohort.n_images, int(data.partitions.masks["internal_test"].sum())
    counter = live_images
    monkeypatch.setattr(data_module, "IMAGE_CHUNK", CHUNK)
    evidence = run_ladder(load_study(path), rungs=[5], model=model.predict_proba)
    checks = {f.check for f in evidence.findings}
    assert {"shortcuts.masking", "shortcuts.border_only", "robustness.gaussian_noise"} <= checks
    assert counter.total >= n
    assert counter.peak <= max(CHUNK, n_test) < n


def test_summaries_do_not_depend_on_the_chunk_size(study, monkeypatch):
    path, _ = study
    whole = pixel_summaries(load_study_data(load_study(path)))
    monkeypatch.setattr(data_module, "IMAGE_CHUNK", 7)
    chunked = pixel_summaries(load_study_data(load_study(path)))
    assert whole.shapes == chunked.shapes and whole.digests == chunked.digests
    np.testing.assert_array_equal(whole.phash, chunked.phash)
    # The thumbnail part of the border features is a float32 reduction over each
    # chunk's same-shape images, which can differ in the last bit with the chunking.
    np.testing.assert_array_equal(whole.border[:, :56], chunked.border[:, :56])
    np.testing.assert_allclose(whole.border, chunked.border, rtol=1e-6, atol=1e-6)
    assert whole.statistics.equals(chunked.statistics)
    assert whole.markers.equals(chunked.markers)
