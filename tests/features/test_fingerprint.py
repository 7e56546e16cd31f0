"""Noise-fingerprint verification of near-duplicate candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from claimladder.features import (
    fingerprint_correlation,
    near_duplicate_pairs,
    perceptual_hash,
    verify_near_duplicates,
)
from claimladder.features._fingerprint import _unrelated_cdf


def _body(size=128):
    """Asymmetric, structured anatomy (a symmetric one leaves DCT terms tied at the median)."""
    y, x = np.mgrid[0:size, 0:size] / size
    body = 150 + 60 * x - 40 * y + 30 * np.sin(9 * y + 2 * x)
    body -= 90 * np.exp(-((x - 0.3) ** 2 + (y - 0.45) ** 2) / 0.03)
    return body - 70 * np.exp(-((x - 0.68) ** 2 + (y - 0.55) ** 2) / 0.02)


def _exposures(n, rng, size=128, sigma=3.0):
    """``n`` exposures of one body: identical anatomy, independent noise (phantom-like)."""
    body = _body(size)
    return [body + rng.normal(0, sigma, body.shape) for _ in range(n)]


def _re_export(image, dy, dx, gain, offset):
    """Shift (edge-padded), rescale and re-quantise, as the demo's re-exports."""
    padded = np.pad(image, 3, mode="edge")
    moved = padded[3 - dy:3 - dy + image.shape[0], 3 - dx:3 - dx + image.shape[1]]
    return np.round(moved * gain + offset)


def _reference(a, b, max_shift=2):
    """Slow oracle: np.corrcoef of the residual grids at every shift, written from the spec."""
    def residual(x):
        x = np.asarray(x, dtype=np.float64)
        factor = max(1, round(min(x.shape) / 128))
        h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
        x = x[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        return x - ndimage.gaussian_filter(x, 1.5, mode="nearest")

    ra, rb = residual(a), residual(b)
    short = min(*ra.shape, *rb.shape)
    half = min(40, (short - 1) // 2 - max_shift - 1)
    offsets = np.arange(-(half // 5) * 5, half + 1, 5)
    best = -1.0
    ca = [(ra.shape[0] // 2 + r, ra.shape[1] // 2 + c) for r in offsets for c in offsets]
    va = np.array([ra[p] for p in ca])
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            vb = np.array([rb[rb.shape[0] // 2 + r + dy, rb.shape[1] // 2 + c + dx]
                           for r in offsets for c in offsets])
            best = max(best, np.corrcoef(va, vb)[0, 1])
    return best


def test_matches_slow_reference():
    rng = np.random.default_rng(0)
    a, b, c = _exposures(3, rng)
    d = _re_export(a, 2, -1, 0.97, 4.0)
    big = np.kron(a, np.ones((2, 2))) + rng.normal(0, 1, (256, 256))  # reduced by 2
    images = [a, b, c, d, big, np.kron(d, np.ones((2, 2)))]
    i, j = [0, 0, 0, 1, 4, 3], [1, 2, 3, 3, 5, 0]
    got = fingerprint_correlation(images, i, j)
    want = [_reference(images[p], images[q]) for p, q in zip(i, j)]
    # float32 sums against float64: agreement to 1e-4.
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_re_exports_score_high_and_other_exposures_low():
    rng = np.random.default_rng(1)
    originals = _exposures(12, rng)
    exports = [_re_export(x, int(rng.choice([-2, -1, 1, 2])), int(rng.choice([-2, -1, 1, 2])),
                          rng.uniform(0.97, 1.03), rng.uniform(-5, 5)) for x in originals]
    images = originals + exports
    same = fingerprint_correlation(images, range(12), range(12, 24))
    assert same.min() > 0.95
    i, j = np.triu_indices(12, 1)
    other = fingerprint_correlation(images, i, j + 12)  # original k vs export of another
    assert other.max() < 0.5


def test_shift_beyond_max_shift_is_not_found():
    rng = np.random.default_rng(2)
    (a,) = _exposures(1, rng)
    moved = np.roll(a, 4, axis=1)
    assert fingerprint_correlation([a, moved], [0], [1], max_shift=2)[0] < 0.5
    assert fingerprint_correlation([a, moved], [0], [1], max_shift=4)[0] > 0.99


def test_flat_and_tiny_images_confirm_nothing():
    flat = np.full((128, 128), 7.0)
    noisy = _exposures(1, np.random.default_rng(3))[0]
    assert fingerprint_correlation([flat, flat, noisy], [0, 0], [1, 2]).tolist() == [0.0, 0.0]
    tiny = np.arange(64.0).reshape(8, 8)
    assert fingerprint_correlation([tiny, tiny], [0], [1]).tolist() == [0.0]
    assert fingerprint_correlation([tiny], [], []).shape == (0,)


@pytest.mark.parametrize(("i", "j", "match"), [([0], [0, 1], "same length"),
                                               ([0], [5], "positions"),
                                               ([-1], [0], "positions")])
def test_bad_pairs(i, j, match):
    with pytest.raises(ValueError, match=match):
        fingerprint_correlation([np.zeros((8, 8))] * 2, i, j)


def test_alike_images_need_pixels_and_only_re_exports_pass():
    # Exposures of one body hash alike (the demo's phantoms); the hash alone is no evidence.
    rng = np.random.default_rng(4)
    images = _exposures(40, rng)
    images += [_re_export(images[k], 1, -2, 1.02, -3.0) for k in (3, 17)]
    hashes = perceptual_hash(images)
    pairs = near_duplicate_pairs(hashes, max_distance=10)
    assert len(pairs) == 42 * 41 // 2  # every pair is a hash candidate
    out = verify_near_duplicates(images, hashes, pairs)
    assert out["correlation"].notna().all()  # nothing confirmed on the hash alone
    assert out["hash_fdr"].min() > 0.05
    confirmed = set(map(tuple, out.loc[out["confirmed"], ["i", "j"]].values.tolist()))
    assert confirmed == {(3, 40), (17, 41)}


def test_distinct_images_are_confirmed_by_hash(real_images):
    # Real, mutually distinct images: a pair within 8 bits is rare, so the hash suffices
    # (and resampled crops, whose noise no longer aligns, are still confirmed).
    from PIL import Image

    originals = list(real_images.values())
    images = list(originals)
    for image in originals[:10]:
        h, w = image.shape
        box = (3, 2, w - 4, h - 5)
        images.append(np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR,
                                                                  box=box)))
    hashes = perceptual_hash(images)
    pairs = near_duplicate_pairs(hashes, max_distance=8)
    out = verify_near_duplicates(images, hashes, pairs)
    planted = {(k, len(originals) + k) for k in range(10)}
    # pHash is least robust to crops: most, not all, of these stay within 8 bits.
    assert len(planted & set(map(tuple, pairs[["i", "j"]].values.tolist()))) >= 8
    assert out["correlation"].isna().all() and out["confirmed"].all()


def test_empty_and_invalid_input():
    empty = verify_near_duplicates([], np.zeros(0, np.uint64),
                                   pd.DataFrame({"i": [], "j": [], "distance": []}))
    assert list(empty.columns)[-3:] == ["hash_fdr", "correlation", "confirmed"]
    with pytest.raises(ValueError, match="columns i, j and distance"):
        verify_near_duplicates([], np.zeros(0, np.uint64), pd.DataFrame({"i": []}))
    with pytest.raises(ValueError, match="'fdr'"):
        verify_near_duplicates([], np.zeros(0, np.uint64),
                               pd.DataFrame({"i": [], "j": [], "distance": []}), fdr=0)


def test_unrelated_share_against_all_pairs():
    # On random 64-bit hashes the distances are Binomial(64, 1/2): the estimate must not
    # fall below the exact tail (it may be above it: a normal tail is conservative here).
    from scipy.stats import binom

    rng = np.random.default_rng(6)
    hashes = rng.integers(0, 2**63, 3000, dtype=np.uint64) * np.uint64(2) + np.uint64(
        rng.integers(0, 2, 3000))
    est = _unrelated_cdf(hashes, 20)
    exact = binom.cdf(np.arange(21), 64, 0.5)
    assert (est >= 0.5 * exact).all()
    assert est[20] == pytest.approx(exact[20], rel=0.5)


class _Generated(Sequence):
    """A sequence whose images are made on access (like ImageFiles decoding a file)."""

    def __init__(self, n: int) -> None:
        self.n, self.reads = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> np.ndarray:
        if not 0 <= k < self.n:
            raise IndexError(k)
        self.reads += 1
        return np.random.default_rng(k).normal(100, 5, (64, 64)).astype(np.float32)


def test_lazy_images_are_read_one_at_a_time_with_compact_samples():
    import tracemalloc

    n = 300
    images = _Generated(n)
    i, j = np.arange(n - 1), np.arange(1, n)
    tracemalloc.start()
    try:
        lazy = fingerprint_correlation(images, i, j)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The same values as with every image in memory ...
    eager = fingerprint_correlation([images[k] for k in range(n)], i, j)
    np.testing.assert_array_equal(lazy, eager)
    # ... but neither the images (300 x 16 KiB) nor every image's shifted samples
    # (300 x 25 shifts x 121 points x 4 B = 3.6 MB) were held: only one centred row each.
    assert peak < 1_000_000, peak
