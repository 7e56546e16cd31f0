"""stress_test on ImageFiles: bit-identical to the decoded array, chunked, clear errors."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import claimladder.robustness._stress as stress_module
from claimladder._core import UsageError
from claimladder.cohort import ImageFiles
from claimladder.io import read_image
from claimladder.models import PredictionCache, load_model
from claimladder.parallel import DaskExecutor, ProcessExecutor, SerialExecutor, use_executor
from claimladder.robustness import stress_test

N = 36
SIZE = 20
_YY, _XX = np.mgrid[:SIZE, :SIZE]
BLOB = np.exp(-((_YY - 10.0) ** 2 + (_XX - 10.0) ** 2) / 12.0)
# Three perturbations, four severities, chunks of 8: five chunks per cell, the last one short.
KWARGS = {"perturbations": ["gaussian_noise", "gaussian_blur", "crop"], "severities": (0, 1, 3),
          "rng": 3, "chunk_size": 8, "n_resamples": 200}


def _pixels(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Grey images on the 8-bit scale; positives carry a faint central blob."""
    return 100 + 15 * rng.standard_normal((y.size, SIZE, SIZE)) + 12 * y[:, None, None] * BLOB


def write_files(folder, pixels: np.ndarray) -> list[str]:
    """Even images as 8-bit PNG, odd ones as float32 .npy: both formats in one set."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(pixels):
        if i % 2 == 0:
            path = folder / f"img{i:03d}.png"
            Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(path)
        else:
            path = folder / f"img{i:03d}.npy"
            np.save(path, image.astype(np.float32))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], N // 2)
    paths = write_files(tmp_path_factory.mktemp("stress_files"), _pixels(rng, y))
    # The reference input: the decoded images, stacked as float32.
    decoded = np.stack([read_image(p) for p in paths]).astype(np.float32)
    train_y = np.tile([0, 1], 40)
    train = _pixels(rng, train_y).reshape(train_y.size, -1)
    # A picklable model (it travels to worker processes) with BLAS products inside.
    estimator = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=500))
    estimator.fit(train, train_y)
    groups = np.arange(N) // 2
    return ImageFiles(paths), decoded, y, groups, estimator


def _cached_scores(cache: PredictionCache) -> dict:
    # Every score the run computed, by cache key token: the keys and the values at once.
    return {token: value.tolist() for token, value in cache._memory.items()}


def _run(estimator, images, y, groups, **kwargs):
    cache = PredictionCache()
    result = stress_test(load_model(estimator, cache=cache), images, y, groups=groups,
                         image_ids=[f"IMG{i:03d}" for i in range(N)], **{**KWARGS, **kwargs})
    return result, _cached_scores(cache)


def _same(first, second) -> None:
    (a, cache_a), (b, cache_b) = first, second
    assert a.table.equals(b.table)
    assert a.flips.equals(b.flips)
    assert a.boundaries == b.boundaries
    assert json.dumps([f.to_dict() for f in a.to_findings()], sort_keys=True, default=str) \
        == json.dumps([f.to_dict() for f in b.to_findings()], sort_keys=True, default=str)
    assert cache_a.keys() == cache_b.keys()
    assert cache_a == cache_b


def test_files_give_the_array_result_in_process(dataset):
    files, decoded, y, groups, estimator = dataset
    from_array = _run(estimator, decoded, y, groups, executor=SerialExecutor())
    from_files = _run(estimator, files, y, groups, executor=SerialExecutor())
    _same(from_array, from_files)
    table = from_files[0].table
    # The comparison is not vacuous: the perturbations change the scores.
    assert (table.loc[table["severity"] > 0, "mean_abs_change"] > 0).all()
    assert len(from_files[1]) == N * (1 + 3 * 2)


@pytest.mark.slow
def test_files_give_the_array_result_on_processes(dataset):
    files, decoded, y, groups, estimator = dataset
    serial = _run(estimator, decoded, y, groups, executor=SerialExecutor())
    with ProcessExecutor(2) as executor:
        from_files = _run(estimator, files, y, groups, executor=executor)
        from_array = _run(estimator, decoded, y, groups, executor=executor)
        assert executor.n_executed["stress_test"] == 2 * 5 * (1 + 3 * 2)
    _same(serial, from_files)
    _same(from_array, from_files)


@pytest.mark.slow
def test_files_give_the_array_result_on_dask(dataset):
    pytest.importorskip("distributed")
    files, decoded, y, groups, estimator = dataset
    serial = _run(estimator, decoded, y, groups, executor=SerialExecutor())
    with DaskExecutor(workers=2) as executor:
        remote = _run(estimator, files, y, groups, executor=executor)
    _same(serial, remote)


def test_metadata_perturbations_read_files_in_chunks(dataset):
    """The in-process path (metadata perturbations) scores the clean images chunk by chunk."""
    files, decoded, y, groups, _ = dataset
    meta = pd.DataFrame({"age": np.where(y == 1, 70.0, 40.0)
                         + np.random.default_rng(1).normal(0, 8, N)})

    def model(x, metadata):
        age = metadata["age"].fillna(55.0).to_numpy()
        return 1 / (1 + np.exp(-(age - 55.0) / 10 - (x.mean(axis=(1, 2)) - 100.0)))

    kwargs = {**KWARGS, "perturbations": ["metadata_missing", "gaussian_noise"]}
    results = [stress_test(load_model(model, takes_metadata=True), images, y, groups=groups,
                           metadata=meta, **kwargs) for images in (decoded, files)]
    assert results[0].table.equals(results[1].table)
    assert results[0].flips.equals(results[1].flips)
    drops = results[1].table.set_index(["perturbation", "severity"])["drop"]
    assert drops[("metadata_missing", 3)] > 0


def test_units_carry_paths_and_the_caller_decodes_one_chunk_at_a_time(dataset, monkeypatch,
                                                                     live_images):
    files, _, y, groups, estimator = dataset
    chunk = KWARGS["chunk_size"]
    seen_units = []
    real_run_units = stress_module.run_units

    def inspecting_run_units(fn, units, **kwargs):
        seen_units.extend(units)
        return real_run_units(fn, units, **kwargs)

    monkeypatch.setattr(stress_module, "run_units", inspecting_run_units)
    stress_test(load_model(estimator), files, y, groups=groups, executor=SerialExecutor(),
                **KWARGS)
    # First pass + clean + 6 perturbed cells: each image decoded 8 times, one chunk alive at once.
    assert live_images.total == N * (1 + 1 + 3 * 2)
    assert 0 < live_images.peak <= chunk
    assert len(seen_units) == 5 * (1 + 3 * 2)
    for unit in seen_units:
        images = unit.args[2]
        assert isinstance(images, ImageFiles) and 0 < len(images) <= chunk
        assert not any(isinstance(a, np.ndarray) and a.ndim >= 2 for a in unit.args)


def test_memory_stays_bounded_by_the_chunk(tmp_path):
    """Peak traced memory is a fraction of the image set: no step holds every image."""
    rng = np.random.default_rng(5)
    n, side, chunk = 480, 64, 12
    y = np.tile([0, 1], n // 2)
    pixels = 100 + 15 * rng.standard_normal((n, side, side))
    files = ImageFiles(write_files(tmp_path / "big", pixels))
    whole = n * side * side * 4  # the float32 stack of every image: 7.9 MB

    def model(x):
        return 1 / (1 + np.exp(-(x.mean(axis=(1, 2)) - 100.0)))

    tracemalloc.start()
    try:
        stress_test(model, files, y, perturbations=["gaussian_noise"], severities=(0, 2),
                    rng=0, chunk_size=chunk, executor=SerialExecutor())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One chunk is 196 kB; the perturbation works in float64 on a copy, so a few chunks
    # are alive at the peak (1.3 MB measured, with the per-image scores and digests); holding
    # the set (7.9 MB as a stack, or as units of decoded chunks) would exceed this.
    assert peak < whole / 3, peak


def test_use_executor_routes_file_units(dataset):
    files, _, y, groups, estimator = dataset
    executor = SerialExecutor()
    with use_executor(executor):
        stress_test(load_model(estimator), files, y, groups=groups, **KWARGS)
    assert executor.n_executed["stress_test"] == 5 * (1 + 3 * 2)


def _corrupt(path) -> None:
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n not really a png")


@pytest.mark.parametrize("problem", ["unreadable", "missing", "no_path", "shape", "volume"])
def test_a_bad_file_is_named_with_its_position(tmp_path, problem):
    rng = np.random.default_rng(2)
    y = np.tile([0, 1], 10)
    paths = write_files(tmp_path / "set", _pixels(rng, y))
    bad = 13  # in the second chunk of 8: found by the chunked first pass
    if problem == "unreadable":
        paths[bad] = str(tmp_path / "set" / "broken.png")
        _corrupt(paths[bad])
        match = r"Image 13 of the ImageFiles passed to stress_test \('.*broken\.png'\) cannot"
    elif problem == "missing":
        paths[bad] = str(tmp_path / "set" / "gone.png")
        match = r"Image 13 .*gone\.png'\) cannot be read: .*Fix: repair or replace"
    elif problem == "no_path":
        paths[bad] = ""
        match = r"Image 13 .* cannot be read: no file is given"
    elif problem == "shape":
        np.save(paths[bad], np.zeros((SIZE, SIZE + 1), np.float32))
        match = (r"Image 13 .*img013\.npy'\) has shape \(20, 21\), unlike the first image's "
                 r"\(20, 20\).*Fix: resample")
    else:
        np.save(paths[bad], np.zeros((3, SIZE, SIZE), np.float32))
        match = r"Image 13 .*img013\.npy'\) has shape \(3, 20, 20\); stress_test reads 2D"
    with pytest.raises(UsageError, match=match):
        stress_test(lambda x: np.full(len(x), 0.5), ImageFiles(paths), y,
                    perturbations=["gaussian_noise"], severities=(0, 1), rng=0, chunk_size=8)


def test_a_file_changed_during_the_run_is_refused(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    y = np.tile([0, 1], 10)
    paths = write_files(tmp_path / "set", _pixels(rng, y))
    real_scan = stress_module._scan_files

    def scan_then_edit(files, chunk_size, owner):
        digests = real_scan(files, chunk_size, owner)
        np.save(paths[3], np.zeros((SIZE, SIZE), np.float32))  # after the first pass
        return digests

    monkeypatch.setattr(stress_module, "_scan_files", scan_then_edit)
    with pytest.raises(UsageError, match=r"img003\.npy' changed while stress_test ran"):
        stress_test(lambda x: np.full(len(x), 0.5), ImageFiles(paths), y,
                    perturbations=["gaussian_noise"], severities=(0, 1), rng=0, chunk_size=8,
                    executor=SerialExecutor())


def test_no_files_and_a_bad_chunk_size_are_refused():
    with pytest.raises(ValueError, match="got no images"):
        stress_test(lambda x: x.mean(axis=(1, 2)), ImageFiles([]), np.array([]))
    with pytest.raises(ValueError, match="'chunk_size' parameter of stress_test must be an int"):
        stress_test(lambda x: x.mean(axis=(1, 2)), np.zeros((4, 8, 8)), np.array([0, 1, 0, 1]),
                    chunk_size=0)
