"""Benchmark: near-duplicate images across a train/test split.

Compares, on the same decoded uint8 arrays in one process,

* ours: :func:`claimladder.features.perceptual_hash` (the whole batch as two
  matrix products per chunk) + :func:`claimladder.features.near_duplicate_pairs`
  (multi-index hashing, cross-split pairs only);
* ours + confirmation: the same, then
  :func:`claimladder.features.verify_near_duplicates` as ``leakage.near_duplicates``
  runs it (candidates confirmed by hash rarity or by their pixel noise; timed
  separately, on the candidates' images only);
* the peer: ``imagehash.phash`` per image (a PIL image made from the same
  array) + brute-force Hamming distances with NumPy (XOR + popcount over the
  train x test block, in row blocks).

The base images are smooth random fields with an elliptical "body", bright
blobs and sensor noise, each drawn independently (so they are mutually
distinct, unlike copies of one phantom). A fraction of them (default 2 %) get
a planted near duplicate in the other split: re-encoded as JPEG (quality
70-90), cropped by 2-5 % and resized back, brightness-shifted by 10-30 grey
levels, or given Gaussian noise (sigma 2-8), in turn. Recall and precision are
measured against the planted pairs.

Usage::

    python benchmarks/bench_near_duplicates.py                 # 20,000 images, both methods
    python benchmarks/bench_near_duplicates.py --n 100000      # ours only (the peer takes minutes)

imagehash is needed for the comparison only (``pip install imagehash``); it is
not a dependency of claimladder. With ``--n`` above ``--peer-limit`` (default
20,000) the peer is skipped. Images are generated and hashed in chunks, so
memory stays bounded; only hashing and search are timed.
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np
from PIL import Image

VARIANTS = ("jpeg", "crop", "brightness", "noise")


def _bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """Rows interpolate a coarse grid of ``in_size`` knots onto ``out_size`` pixels."""
    pos = np.linspace(0, in_size - 1, out_size)
    lo = np.minimum(np.floor(pos).astype(int), in_size - 2)
    frac = pos - lo
    m = np.zeros((out_size, in_size))
    m[np.arange(out_size), lo] = 1 - frac
    m[np.arange(out_size), lo + 1] = frac
    return m


def make_images(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct, realistic-ish greyscale images, uint8 ``(n, size, size)``."""
    from threadpoolctl import threadpool_limits

    out = np.empty((n, size, size), dtype=np.uint8)
    # Small batches stay in cache; their small matrix products run fastest on
    # one BLAS thread when other processes share the cores.
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, 64):
            out[start : start + 64] = _make_batch(min(64, n - start), size, rng)
    return out


def _make_batch(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    f32 = np.float32
    # Everything but the noise is smooth: build it at a quarter of the
    # resolution and interpolate up (16x less arithmetic).
    low = max(size // 4, 32)
    img = np.zeros((n, low, low), dtype=f32)
    # Smooth random field: octaves of Gaussian knots, amplitude ~ 1/frequency.
    for knots, amp in ((4, 40.0), (8, 20.0), (16, 10.0), (32, 5.0)):
        up = _bilinear_matrix(low, knots).astype(f32)
        z = rng.standard_normal((n, knots, knots), dtype=f32) * f32(amp)
        img += np.matmul(np.matmul(up, z), up.T)
    # An elliptical "body" with a soft edge, randomly placed, sized, turned and bright.
    grid = np.arange(low, dtype=f32) / f32(low)
    cy, cx = rng.uniform(0.3, 0.7, (2, n, 1, 1)).astype(f32)
    ay, ax = rng.uniform(0.15, 0.45, (2, n, 1, 1)).astype(f32)
    theta = rng.uniform(0, np.pi, (n, 1, 1)).astype(f32)
    level = rng.uniform(10, 40, (n, 1, 1)).astype(f32)
    c, s = np.cos(theta), np.sin(theta)
    dy, dx = grid[None, :, None] - cy, grid[None, None, :] - cx
    u = (dx * c + dy * s) / ax
    v = (dy * c - dx * s) / ay
    img += level * (f32(1.0) - np.tanh(f32(6.0) * (u * u + v * v - f32(1.0))))
    # A few bright or dark blobs (separable Gaussians).
    pixels = np.arange(low, dtype=f32)
    for _ in range(4):
        by, bx = rng.uniform(0.1, 0.9, (2, n, 1)).astype(f32) * f32(low)
        width = rng.uniform(1, 5, (n, 1)).astype(f32)
        amp = rng.uniform(-40, 60, (n, 1, 1)).astype(f32)
        gy = np.exp(-((pixels - by) ** 2) / (2 * width**2))
        gx = np.exp(-((pixels - bx) ** 2) / (2 * width**2))
        img += amp * gy[:, :, None] * gx[:, None, :]
    up = _bilinear_matrix(size, low).astype(f32)
    full = np.matmul(np.matmul(up, img), up.T)
    full += rng.standard_normal(full.shape, dtype=f32) * f32(3.0)
    full += f32(90.0)
    return np.clip(full, 0, 255).astype(np.uint8)


def make_variant(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A near duplicate of a uint8 image (see the module docstring)."""
    size = image.shape[0]
    if kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(rng.integers(70, 91)))
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))
    if kind == "crop":
        total = rng.uniform(0.02, 0.05) * size
        top, left = rng.uniform(0, total, 2)
        box = (left, top, left + size - total, top + size - total)
        return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR, box=box))
    if kind == "brightness":
        shift = rng.uniform(10, 30) * rng.choice([-1, 1])
        return np.clip(image.astype(np.float32) + shift, 0, 255).astype(np.uint8)
    if kind == "noise":
        sigma = rng.uniform(2, 8)
        noisy = image.astype(np.float32) + rng.standard_normal(image.shape) * sigma
        return np.clip(noisy, 0, 255).astype(np.uint8)
    raise ValueError(kind)


def make_dataset(n: int, size: int, fraction: float, seed: int, chunk: int):
    """Return ``(chunks, split, planted)``.

    ``chunks()`` yields ``(start, uint8 images)`` and regenerates the same data
    on every call; ``split`` labels each image "train" or "test"; ``planted``
    maps each planted pair ``(i, j)`` to its variant kind. A planted image (in
    test) is a variant of a distinct train image of its generation chunk.
    """
    rng = np.random.default_rng(seed)
    n_planted = round(fraction * n)
    split = np.where(rng.random(n) < 0.8, "train", "test")
    planted_at = np.sort(rng.choice(n, n_planted, replace=False))
    split[planted_at] = "test"
    # Each planted image copies a distinct train image of the same generation
    # chunk (so generating a chunk never needs another one).
    source = np.full(n, -1)
    taken = np.zeros(n, dtype=bool)
    taken[planted_at] = True
    for k in planted_at:
        start = (k // chunk) * chunk
        free = np.flatnonzero((split[start : start + chunk] == "train") & ~taken[start : start + chunk])
        source[k] = start + rng.choice(free)
        taken[source[k]] = True
    kinds = {int(k): VARIANTS[i % len(VARIANTS)] for i, k in enumerate(planted_at)}
    # One child generator per chunk and per planted image (SPEC 7).
    base_seeds = np.random.SeedSequence(seed).spawn(2)
    chunk_seeds = base_seeds[0].spawn((n + chunk - 1) // chunk)
    variant_seeds = dict(zip(planted_at.tolist(), base_seeds[1].spawn(n_planted)))

    def chunks():
        for c, start in enumerate(range(0, n, chunk)):
            images = make_images(min(chunk, n - start), size, np.random.default_rng(chunk_seeds[c]))
            for k in range(start, start + len(images)):
                if source[k] >= 0:
                    images[k - start] = make_variant(
                        images[source[k] - start], kinds[k],
                        np.random.default_rng(variant_seeds[k]),
                    )
            yield start, images

    pairs = {(min(int(k), int(source[k])), max(int(k), int(source[k]))): kinds[int(k)]
             for k in planted_at}
    return chunks, split, pairs


def score(found: set[tuple[int, int]], planted: dict[tuple[int, int], str]) -> dict[str, float]:
    hits = found & planted.keys()
    out = {
        "recall": len(hits) / max(len(planted), 1),
        "precision": len(hits) / max(len(found), 1),
        "found": len(found),
    }
    for kind in VARIANTS:
        of_kind = {p for p, k in planted.items() if k == kind}
        out[f"recall_{kind}"] = len(hits & of_kind) / max(len(of_kind), 1)
    return out


def run_ours(images_chunks, split, max_distance):
    from claimladder.features import near_duplicate_pairs, perceptual_hash

    parts, t_hash = [], 0.0
    for _, images in images_chunks():
        t0 = time.perf_counter()
        parts.append(perceptual_hash(images))
        t_hash += time.perf_counter() - t0
    hashes = np.concatenate(parts)
    t0 = time.perf_counter()
    pairs = near_duplicate_pairs(hashes, max_distance=max_distance, groups=split)
    t_search = time.perf_counter() - t0
    found = set(zip(pairs["i"].tolist(), pairs["j"].tolist()))
    return hashes, pairs, found, t_hash, t_search


def run_verify(images_chunks, hashes, pairs, split):
    """The confirmation step of ``leakage.near_duplicates`` on the candidates.

    Only the candidates' images are kept (the others are stood in for by one
    1 x 1 array, so the sequence is indexed like ``hashes``); only the
    verification call is timed.
    """
    from claimladder.features import verify_near_duplicates

    needed = set(pairs["i"].tolist()) | set(pairs["j"].tolist())
    placeholder = np.zeros((1, 1), dtype=np.uint8)
    images = [placeholder] * len(hashes)
    for start, chunk in images_chunks():
        for k in range(start, start + len(chunk)):
            if k in needed:
                images[k] = chunk[k - start]
    t0 = time.perf_counter()
    out = verify_near_duplicates(images, hashes, pairs, groups=split)
    t_verify = time.perf_counter() - t0
    kept = out[out["confirmed"]]
    found = set(zip(kept["i"].tolist(), kept["j"].tolist()))
    return found, t_verify, int(out["correlation"].notna().sum())


def run_peer(images_chunks, split, max_distance, block=2048):
    import imagehash

    parts, t_hash = [], 0.0
    for _, images in images_chunks():
        t0 = time.perf_counter()
        bits = np.stack([imagehash.phash(Image.fromarray(x)).hash.reshape(-1) for x in images])
        # First bit is the most significant, as in str(ImageHash).
        parts.append(np.packbits(bits, axis=1).view(">u8").reshape(-1).astype(np.uint64))
        t_hash += time.perf_counter() - t0
    hashes = np.concatenate(parts)
    t0 = time.perf_counter()
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    ht, hs = hashes[train], hashes[test]
    found = set()
    for r0 in range(0, len(ht), block):
        dist = np.bitwise_count(ht[r0 : r0 + block, None] ^ hs[None, :])
        ii, jj = np.nonzero(dist <= max_distance)
        a, b = train[ii + r0], test[jj]
        found.update(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist()))
    t_search = time.perf_counter() - t0
    return hashes, found, t_hash, t_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of images")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--fraction", type=float, default=0.02, help="planted near duplicates")
    parser.add_argument("--max-distance", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=2000, help="images generated at a time")
    parser.add_argument("--peer-limit", type=int, default=20_000,
                        help="skip the peer above this many images")
    args = parser.parse_args()

    print(f"cpus={os.cpu_count()} load average at start={os.getloadavg()}")
    t0 = time.perf_counter()
    chunks, split, planted = make_dataset(args.n, args.size, args.fraction, args.seed, args.chunk)
    with_peer = args.n <= args.peer_limit
    if with_peer:  # both methods must see the same arrays: generate them once
        cached = list(chunks())
        chunks = lambda: iter(cached)
    generated = (f"generated in {time.perf_counter() - t0:.1f} s" if with_peer
                 else "generated chunk by chunk between the timed hashing calls")
    print(f"{args.n} images {args.size}x{args.size}, {len(planted)} planted pairs "
          f"({(split == 'train').sum()} train / {(split == 'test').sum()} test); "
          f"{generated} (not timed)")

    ours_h, ours_pairs, ours_found, o_hash, o_search = run_ours(chunks, split,
                                                                 args.max_distance)
    ours = score(ours_found, planted)
    print(f"ours : hash {o_hash:7.2f} s + search {o_search:6.2f} s = {o_hash + o_search:7.2f} s  "
          + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in ours.items()))
    v_found, o_verify, n_pixels = run_verify(chunks, ours_h, ours_pairs, split)
    verified = score(v_found, planted)
    print(f"ours + confirmation (verify_near_duplicates, as leakage.near_duplicates): "
          f"{o_verify:.2f} s more ({n_pixels} candidate(s) compared on pixels)  "
          + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in verified.items()))
    if with_peer:
        peer_h, peer_found, p_hash, p_search = run_peer(chunks, split, args.max_distance)
        peer = score(peer_found, planted)
        print(f"peer : hash {p_hash:7.2f} s + search {p_search:6.2f} s = "
              f"{p_hash + p_search:7.2f} s  "
              + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in peer.items()))
        diff = np.bitwise_count(ours_h ^ peer_h)
        print(f"speed-up (hash + search): {(p_hash + p_search) / (o_hash + o_search):.1f}x; "
              f"with confirmation {(p_hash + p_search) / (o_hash + o_search + o_verify):.1f}x; "
              f"hashing alone {p_hash / o_hash:.1f}x")
        print(f"agreement with imagehash.phash: {1 - diff.mean() / 64:.4f} of bits, "
              f"{(diff == 0).mean():.3f} of hashes identical, max {diff.max()} bits differ")
    print(f"total wall time {time.perf_counter() - t0:.1f} s; "
          f"load average at end={os.getloadavg()}")


if __name__ == "__main__":
    main()
