"""check_masking on ImageFiles: bit-identical to the decoded array, chunked, clear errors."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from claimladder import Status
from claimladder._core import UsageError
from claimladder.cohort import ImageFiles
from claimladder.io import read_image
from claimladder.models import PredictionCache, load_model
from claimladder.shortcuts import check_masking

N = 60  # the first 30 patients of the planted set
CHUNK = 8  # eight chunks, the last one short


def write_files(folder, images: np.ndarray) -> list[str]:
    """One float32 .npy file per image (read back exactly)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"img{i:03d}.npy"
        np.save(path, image.astype(np.float32))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def dataset(planted, tmp_path_factory):
    files = ImageFiles(write_files(tmp_path_factory.mktemp("masking_files"),
                                   planted.images[:N]))
    decoded = np.stack([read_image(p) for p in files.paths]).astype(np.float32)
    return files, decoded, planted.y[:N], planted.groups[:N], planted.ids[:N]


def _run(model, images, data, **kwargs):
    _, _, y, groups, ids = data
    cache = PredictionCache()
    finding = check_masking(load_model(model, cache=cache), images, y, groups=groups,
                            image_ids=ids, rng=0, chunk_size=CHUNK, **kwargs)
    # Every score computed, by cache key token: the keys and the values at once.
    return finding, {token: value.tolist() for token, value in cache._memory.items()}


def _same(first, second) -> None:
    (a, cache_a), (b, cache_b) = first, second
    assert a.table.equals(b.table)
    assert a.params["example_scores"] == b.params["example_scores"]
    assert a.examples == b.examples
    assert json.dumps(a.to_dict(), sort_keys=True, default=str) \
        == json.dumps(b.to_dict(), sort_keys=True, default=str)
    assert cache_a.keys() == cache_b.keys()
    assert cache_a == cache_b


@pytest.mark.parametrize("fill", ["background", "label_swap"])
def test_files_give_the_array_finding(dataset, models, fill):
    files, decoded, *_ = dataset
    regions = ["corners", "text"] if fill == "background" else ["corners"]
    from_files = _run(models["shortcut"], files, dataset, fill=fill, regions=regions)
    from_array = _run(models["shortcut"], decoded, dataset, fill=fill, regions=regions)
    _same(from_array, from_files)
    # Not a vacuous comparison: the marker model fails, with examples and their scores.
    finding = from_files[0]
    assert finding.status is Status.FAIL
    assert finding.params["example_scores"] and len(finding.examples) > 0


def test_chunking_leaves_the_statistics_unchanged(dataset, models):
    """One chunk holding every image (the former whole-array path) gives the same finding."""
    _, decoded, y, groups, ids = dataset
    findings = [check_masking(models["shortcut"], decoded, y, groups=groups, image_ids=ids,
                              regions=["corners"], fill="label_swap", rng=0, chunk_size=size)
                for size in (N, 7)]
    assert findings[0].table.equals(findings[1].table)
    assert findings[0].params == findings[1].params


@pytest.mark.parametrize("fill", ["background", "label_swap"])
def test_memory_stays_bounded_by_the_chunk(tmp_path, live_images, fill):
    """At most one chunk (plus its donors) decoded at once; traced peak far below the set."""
    rng = np.random.default_rng(3)
    n, side, chunk = 360, 48, 12
    y = np.tile([0, 1], n // 2)
    pixels = (0.3 + 0.05 * rng.standard_normal((n, side, side))).astype(np.float32)
    pixels[y == 1, 1:4, 1:4] = 1.0
    files = ImageFiles(write_files(tmp_path / "big", pixels))
    whole = n * side * side * 4  # the float32 stack of every image: 3.3 MB
    def model(x):
        return x[:, :5, :5].mean(axis=(1, 2))

    tracemalloc.start()
    try:
        finding = check_masking(model, files, y, regions=["corners"], fill=fill, rng=0,
                                chunk_size=chunk)
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert finding.status is Status.FAIL
    donors = fill == "label_swap"
    # Each chunk once, and (label_swap) the donors it needs: same class, then other class.
    decodes = live_images.total
    assert (decodes == n) if not donors else (2 * n < decodes <= 3 * n)
    assert 0 < live_images.peak <= (2 * chunk if donors else chunk)
    # A chunk is 110 kB; 0.5-0.7 MB was traced at the peak (background, label_swap); holding
    # the set (as a stack, or as the decoded list) would exceed this.
    assert traced < whole / 2, traced


@pytest.mark.parametrize("problem", ["unreadable", "shape", "volume"])
def test_a_bad_file_is_named_with_its_position(tmp_path, problem):
    rng = np.random.default_rng(2)
    y = np.tile([0, 1], 10)
    paths = write_files(tmp_path / "set",
                        (0.3 + 0.05 * rng.standard_normal((20, 32, 32))).astype(np.float32))
    bad = 13  # in the second chunk of 8
    if problem == "unreadable":
        paths[bad] = str(tmp_path / "set" / "broken.png")
        with open(paths[bad], "wb") as handle:
            handle.write(b"\x89PNG\r\n\x1a\n not really a png")
        match = (r"Image 13 of the ImageFiles passed to check_masking \('.*broken\.png'\) "
                 r"cannot be read: .*Fix: repair or replace the file")
    elif problem == "shape":
        Image.fromarray(np.zeros((33, 32), np.uint8)).save(tmp_path / "set" / "odd.png")
        paths[bad] = str(tmp_path / "set" / "odd.png")
        match = (r"Image 13 .*odd\.png'\) has shape \(33, 32\), unlike the first image's "
                 r"\(32, 32\).*Fix: resample")
    else:
        np.save(paths[bad], np.zeros((3, 32, 32), np.float32))
        match = r"Image 13 .*img013\.npy'\) has shape \(3, 32, 32\); check_masking reads 2D images"
    for fill in ("background", "label_swap"):  # label_swap may meet it first as a donor
        with pytest.raises(UsageError, match=match):
            check_masking(lambda x: x.mean(axis=(1, 2)), ImageFiles(paths), y,
                          regions=["corners"], fill=fill, rng=0, chunk_size=8)


def test_no_files_and_a_bad_chunk_size_are_refused():
    with pytest.raises(ValueError, match="got no images"):
        check_masking(lambda x: x.mean(axis=(1, 2)), ImageFiles([]), np.array([]))
    with pytest.raises(ValueError, match="'chunk_size' parameter of check_masking must be an"):
        check_masking(lambda x: x.mean(axis=(1, 2)), np.zeros((4, 8, 8)), [0, 1, 0, 1],
                      chunk_size=0)
