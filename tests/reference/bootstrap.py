"""Explicit resampling: the rows a cluster bootstrap replicate stands for.

claimladder never materialises resampled rows; these helpers do, so tests can
compare its weighted computation with scikit-learn on the explicit resample.
The draw protocol is claimladder's documented one (``claimladder.metrics._engine``):
chunks of 64 replicates, chunk ``c`` drawn by child ``c`` of ``rng.spawn``, one
``integers(0, n_clusters, size=n_clusters, dtype=int32)`` call per replicate.
"""

from __future__ import annotations

import numpy as np

CHUNK = 64


def cluster_draws(n_clusters: int, n_resamples: int, seed: int) -> list[np.ndarray]:
    """The cluster indices drawn for each replicate, re-derived from the protocol."""
    children = np.random.default_rng(seed).spawn(-(-n_resamples // CHUNK))
    draws = []
    for r in range(n_resamples):
        child = children[r // CHUNK]
        draws.append(child.integers(0, n_clusters, size=n_clusters, dtype=np.int32))
    return draws


def resampled_rows(cluster_codes: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """Row indices of the explicit resample: every row of every drawn cluster, with repeats."""
    rows = [np.flatnonzero(cluster_codes == c) for c in draw]
    return np.concatenate(rows) if rows else np.array([], dtype=int)
