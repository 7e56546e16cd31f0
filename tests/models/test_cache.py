"""The prediction cache: keys, hits and misses, persistence, concurrency, corrupt shards."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from claimladder.models import CacheKey, PredictionCache, image_digests, load_model


def test_keys_differ_in_every_field():
    base = CacheKey(image="a", perturbation="p", severity=1, seed=0)
    variants = [CacheKey(image="b", perturbation="p", severity=1, seed=0),
                CacheKey(image="a", perturbation="q", severity=1, seed=0),
                CacheKey(image="a", perturbation="p", severity=2, seed=0),
                CacheKey(image="a", perturbation="p", severity=1, seed=1),
                CacheKey(image="a", perturbation="p", severity=1, seed=None)]
    tokens = {base.token, *(v.token for v in variants)}
    assert len(tokens) == 6
    assert CacheKey(image="a", perturbation="p", severity=1, seed=0).token == base.token


def test_image_digests_follow_content_dtype_and_shape():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    d = image_digests([a, a.copy(), a.astype(np.float64), a.reshape(4, 3), a + 1])
    assert d[0] == d[1]
    assert len(set(d)) == 4


def test_memory_hits_and_misses():
    cache = PredictionCache()
    keys = [CacheKey(image=str(i)) for i in range(4)]
    values, hit = cache.get(keys)
    assert values is None and not hit.any() and cache.misses == 4
    cache.put(keys[:2], np.array([0.1, 0.2]))
    values, hit = cache.get(keys)
    assert hit.tolist() == [True, True, False, False] and cache.hits == 2
    np.testing.assert_allclose(values[:2, 0], [0.1, 0.2])
    assert np.isnan(values[2:]).all()


def test_disk_cache_persists_and_separates_namespaces(tmp_path):
    keys = [CacheKey(image=str(i), perturbation="noise", severity=2, seed=7) for i in range(3)]
    first = PredictionCache(tmp_path, namespace="model-a")
    first.put(keys, np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]]))
    second = PredictionCache(tmp_path, namespace="model-a")
    values, hit = second.get(keys)
    assert hit.all()
    np.testing.assert_allclose(values, [[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])
    other = PredictionCache(tmp_path, namespace="model-b")
    assert not other.get(keys)[1].any()
    assert not list(tmp_path.rglob("*.tmp"))


def test_reader_sees_shards_written_later_by_another_run(tmp_path):
    reader = PredictionCache(tmp_path, namespace="m")
    writer = PredictionCache(tmp_path, namespace="m")
    key = [CacheKey(image="x")]
    assert not reader.get(key)[1].any()
    writer.put(key, np.array([0.5]))
    assert reader.get(key)[1].all()


def test_concurrent_writers_lose_nothing(tmp_path):
    def work(offset: int) -> None:
        cache = PredictionCache(tmp_path, namespace="m")
        for start in range(0, 50, 5):
            keys = [CacheKey(image=f"{offset}-{i}") for i in range(start, start + 5)]
            cache.put(keys, np.full(5, offset / 10))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh = PredictionCache(tmp_path, namespace="m")
    keys = [CacheKey(image=f"{k}-{i}") for k in range(4) for i in range(50)]
    values, hit = fresh.get(keys)
    assert hit.all()
    np.testing.assert_allclose(values[:, 0], np.repeat(np.arange(4) / 10, 50))


def test_corrupt_shard_is_skipped(tmp_path):
    cache = PredictionCache(tmp_path, namespace="m")
    cache.put([CacheKey(image="good")], np.array([0.3]))
    shard_dir = next(p.parent for p in tmp_path.rglob("shard-*.npz"))
    (shard_dir / "shard-broken.npz").write_bytes(b"truncated")
    fresh = PredictionCache(tmp_path, namespace="m")
    values, hit = fresh.get([CacheKey(image="good"), CacheKey(image="bad")])
    assert hit.tolist() == [True, False] and values[0, 0] == pytest.approx(0.3)


def test_put_checks_lengths():
    with pytest.raises(ValueError, match="one row per key"):
        PredictionCache().put([CacheKey(image="a")], np.array([0.1, 0.2]))


def test_adapter_disk_cache_across_adapters(tmp_path):
    calls = []

    def model(x):
        calls.append(len(x))
        return x.mean(axis=(1, 2))

    images = np.random.default_rng(0).random((6, 4, 4), dtype=np.float32)
    first = load_model(model, cache=tmp_path)
    expected = first.predict_proba(images)
    second = load_model(model, cache=tmp_path)
    np.testing.assert_array_equal(second.predict_proba(images), expected)
    assert calls == [6]
    # Perturbation keys are separate entries.
    keys = second.image_keys(images, perturbation="gaussian_noise(sigma=0.02)", severity=2,
                             seed=0)
    second.predict_proba(images * 0.5, keys=keys)
    assert calls == [6, 6]
    values, hit = second.cached(keys)
    assert hit.all()
    np.testing.assert_allclose(values[:, 0], expected * 0.5, rtol=1e-6)
