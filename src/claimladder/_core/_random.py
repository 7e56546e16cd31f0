"""Random number generation following SPEC 7: one ``rng`` argument, spawned children."""

from __future__ import annotations

import numpy as np

__all__ = ["RngLike", "check_rng", "spawn"]

RngLike = int | np.random.Generator | np.random.SeedSequence | None


def check_rng(rng: RngLike) -> np.random.Generator:
    """Normalise ``rng`` (int seed, Generator, SeedSequence or None) to a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise ValueError(
        "The 'rng' parameter must be an int, a numpy.random.Generator, a SeedSequence or None. "
        f"Got {type(rng).__name__} instead."
    )


def spawn(rng: RngLike, n: int) -> list[np.random.Generator]:
    """Return ``n`` independent child generators of ``rng``.

    Children depend only on the parent's seed and their index, so results do
    not depend on the order in which units are processed or on parallelism.
    """
    return check_rng(rng).spawn(n)
