"""The weighted-resampling engine behind every bootstrap interval.

A bootstrap replicate of clustered data is a vector of multinomial counts over
clusters (patients): ``counts[c]`` copies of every row of cluster ``c``. Every
statistic here is a function of a few *weighted sums over rows*, each of which
is linear in the counts. A statistic is therefore described once, before any
resampling, by a sparse matrix ``mt`` (features x clusters) that maps counts
to those sums, and a vectorised ``reduce`` that turns the sums into the value.
The data are sorted once while ``mt`` is built (see ``_ranking``); a block of
replicates is then one sparse-times-dense product plus a few cumulative sums
over the features, with no per-replicate sort and bounded memory.

Randomness (SPEC 7): replicates are drawn in chunks of :data:`CHUNK`; chunk
``c`` uses the ``c``-th child of ``spawn(rng, n_chunks)`` and draws, for each of
its replicates in order, ``child.integers(0, n_clusters, size=n_clusters,
dtype=np.int32)`` cluster indices, whose ``bincount`` is the replicate's count
vector. The memory-driven processing block never changes the draws, so results
do not depend on the block size or on the order in which chunks are processed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.special import ndtr, ndtri

from .._core import (
    ConfidenceInterval,
    Estimate,
    RngLike,
    SmallSampleWarning,
    UndefinedMetricWarning,
    spawn,
)

__all__: list[str] = []

#: Replicates per spawned generator; part of the reproducibility contract.
CHUNK = 64
#: Elements per processing block: bounds a block's memory (a few hundred MB at most).
BLOCK_BUDGET = 2**26
#: Cost budget (features x jackknife units) of an exact leave-one-cluster-out jackknife;
#: beyond it the jackknife deletes blocks of clusters (see :func:`jackknife`).
JACKKNIFE_BUDGET = 2**27
#: Feature sums per jackknife step (bounds its memory to tens of MB).
JACKKNIFE_STEP = 2**22
#: Fewest cluster blocks of the grouped jackknife.
MIN_JACKKNIFE_BLOCKS = 200
#: Fraction of undefined bootstrap replicates above which a SmallSampleWarning is issued.
MAX_UNDEFINED_FRACTION = 0.01

Reduce = Callable[[np.ndarray], np.ndarray]


@dataclass(eq=False)
class Statistic:
    """A resampleable statistic: ``reduce(mt @ counts.T)`` gives its replicates.

    Parameters
    ----------
    mt : scipy.sparse.csr_array, shape (n_features, n_clusters)
        Feature sums per cluster.
    reduce : callable
        Maps feature sums of shape (n_features, B) to values of shape (B, n_outputs),
        NaN where the statistic is undefined. The sums arrive as float32 when
        ``integer`` makes that exact (see :meth:`product_dtype`), so ``reduce``
        must convert to float64 before products or long sums.
    n_outputs : int
        Number of values per replicate.
    integer : bool
        Whether every entry of ``mt`` is an integer, so that float32 sums are exact
        while they stay below 2**24.
    jackknife_fn : callable, optional
        Closed-form leave-one-cluster-out values, shape (n_clusters, n_outputs).
    """

    mt: sparse.csr_array
    reduce: Reduce
    n_outputs: int
    integer: bool
    jackknife_fn: Callable[[], np.ndarray] | None = None
    _point: np.ndarray | None = field(default=None, repr=False)
    _typed: dict = field(default_factory=dict, repr=False)

    @property
    def n_clusters(self) -> int:
        return int(self.mt.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.mt.shape[0])

    def product_dtype(self) -> type:
        """float32 when every sum is an integer below 2**24 (then exact), else float64."""
        if "dtype" not in self._typed:
            dtype = np.float64
            if self.integer and self.mt.nnz:
                # A replicate's counts sum to n_clusters, so a feature sum is at most this.
                bound = float(self.n_clusters) * float(np.abs(self.mt.data).max())
                dtype = np.float32 if bound < 2**24 else np.float64
            self._typed["dtype"] = dtype
            self._typed["mt"] = self.mt.astype(dtype)
        return self._typed["dtype"]

    def evaluate(self, counts: np.ndarray) -> np.ndarray:
        """Values for a block of count vectors, shape (B, n_clusters) -> (B, n_outputs).

        ``reduce`` receives float32 sums when those are exact (see
        :meth:`product_dtype`) and accumulates in float64.
        """
        dtype = self.product_dtype()
        return self.evaluate_transposed(np.ascontiguousarray(np.asarray(counts).T, dtype=dtype))

    def evaluate_transposed(self, x: np.ndarray) -> np.ndarray:
        """As :meth:`evaluate`, for C-contiguous counts (n_clusters, B) in the product dtype."""
        return self.reduce(self._typed["mt"] @ x)

    def point(self) -> np.ndarray:
        """Values on the original sample (every count equal to one)."""
        if self._point is None:
            y = self.mt @ np.ones((self.n_clusters, 1))
            self._point = self.reduce(np.asarray(y, dtype=np.float64))[0]
        return self._point


def stack(stats: Sequence[Statistic]) -> Statistic:
    """One statistic whose outputs are the outputs of ``stats``, sharing every replicate."""
    if len(stats) == 1:
        return stats[0]
    n_clusters = {s.n_clusters for s in stats}
    if len(n_clusters) != 1:
        raise ValueError("Stacked statistics must share their clusters.")
    bounds = np.cumsum([0] + [s.n_features for s in stats])
    mt = sparse.vstack([s.mt for s in stats], format="csr")

    def reduce(y: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [s.reduce(y[a:b]) for s, a, b in zip(stats, bounds[:-1], bounds[1:])]
        )

    jackknife_fn = None
    if all(s.jackknife_fn is not None for s in stats):
        def jackknife_fn() -> np.ndarray:
            return np.column_stack([s.jackknife_fn() for s in stats])

    return Statistic(mt=sparse.csr_array(mt), reduce=reduce,
                     n_outputs=sum(s.n_outputs for s in stats),
                     integer=all(s.integer for s in stats), jackknife_fn=jackknife_fn)


def _block_size(stat: Statistic) -> int:
    per_replicate = stat.n_clusters + 4 * stat.n_features + 1
    return int(max(1, min(CHUNK, BLOCK_BUDGET // per_replicate)))


def bootstrap(stat: Statistic, n_resamples: int, rng: RngLike) -> np.ndarray:
    """Bootstrap replicates, shape (n_resamples, n_outputs), NaN where undefined.

    Clusters are resampled with replacement (rows when every row is its own
    cluster); see the module docstring for the exact draw protocol.
    """
    n_clusters = stat.n_clusters
    out = np.full((n_resamples, stat.n_outputs), np.nan)
    block = _block_size(stat)
    children = spawn(rng, -(-n_resamples // CHUNK))
    counts = np.empty((block, n_clusters), dtype=stat.product_dtype())
    draw = np.empty(n_clusters, dtype=np.intp)  # reused: fresh large arrays cost page faults
    for c, child in enumerate(children):
        first = c * CHUNK
        size = min(CHUNK, n_resamples - first)
        for start in range(0, size, block):
            b = min(block, size - start)
            for r in range(b):
                # Rows are filled contiguously and transposed once per block: writing
                # columns of a (clusters, block) array directly is several times slower.
                draw[:] = child.integers(0, n_clusters, size=n_clusters, dtype=np.int32)
                counts[r] = np.bincount(draw, minlength=n_clusters)
            x = np.ascontiguousarray(counts[:b].T)
            out[first + start:first + start + b] = stat.evaluate_transposed(x)
    return out


def jackknife(stat: Statistic) -> np.ndarray:
    """Leave-one-cluster-out values, shape (n_units, n_outputs).

    Uses the statistic's closed form when it has one. Otherwise each unit's
    value is ``reduce(Y0 - mt[:, unit])``, exact for every statistic here.
    When the exact jackknife would touch more than :data:`JACKKNIFE_BUDGET`
    feature sums, clusters are pooled into ``K`` blocks (cluster code mod
    ``K``) and whole blocks are deleted: the acceleration of BCa is a ratio
    of cumulants that the grouped jackknife estimates consistently.
    """
    if stat.jackknife_fn is not None:
        return stat.jackknife_fn()
    n_clusters, n_features = stat.n_clusters, max(stat.n_features, 1)
    y0 = np.asarray(stat.mt @ np.ones(n_clusters), dtype=np.float64)
    if n_clusters * n_features <= JACKKNIFE_BUDGET:
        units, removed = n_clusters, stat.mt.tocsc()
    else:
        units = int(min(n_clusters, max(MIN_JACKKNIFE_BLOCKS, JACKKNIFE_BUDGET // n_features)))
        codes = np.arange(n_clusters)
        indicator = sparse.csc_array(
            (np.ones(n_clusters), (codes, codes % units)), shape=(n_clusters, units)
        )
        removed = sparse.csc_array(stat.mt @ indicator)
    step = int(max(1, JACKKNIFE_STEP // n_features))
    values = [stat.reduce(y0[:, None] - removed[:, a:a + step].toarray())
              for a in range(0, units, step)]
    return np.concatenate(values, axis=0)


# -- intervals ---------------------------------------------------------------


def percentile_interval(replicates: np.ndarray, confidence_level: float) -> tuple[float, float]:
    """Percentile interval of finite replicates (linear interpolation, as SciPy)."""
    alpha = (1 - confidence_level) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    return float(low), float(high)


def acceleration(jackknife_samples: Sequence[np.ndarray]) -> float:
    """BCa acceleration from jackknife values of one or several independent samples.

    Efron & Tibshirani (1993), eq. 14.15; for several samples the per-sample
    sums are combined as in :func:`scipy.stats.bootstrap`.
    """
    nums, dens = 0.0, 0.0
    for values in jackknife_samples:
        values = values[np.isfinite(values)]
        n = values.size
        if n < 2:
            continue
        u = (n - 1) * (values.mean() - values)
        nums += np.sum(u**3) / n**3
        dens += np.sum(u**2) / n**2
    if dens <= 0:
        return 0.0
    return float(nums / (6 * dens**1.5))


def bca_interval(
    replicates: np.ndarray,
    theta_hat: float,
    jackknife_samples: Sequence[np.ndarray],
    confidence_level: float,
) -> tuple[float, float]:
    """Bias-corrected and accelerated interval (Efron 1987; Efron & Tibshirani 1993, 14.3).

    Returns NaNs when the bias correction is infinite (every replicate on one
    side of the estimate).
    """
    b = replicates.size
    fraction = (np.count_nonzero(replicates < theta_hat)
                + np.count_nonzero(replicates <= theta_hat)) / (2 * b)
    z0 = ndtri(fraction)
    if not np.isfinite(z0):
        return math.nan, math.nan
    a = acceleration(jackknife_samples)
    alpha = (1 - confidence_level) / 2
    z = ndtri([alpha, 1 - alpha])
    levels = ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))
    if not np.all(np.isfinite(levels)):
        return math.nan, math.nan
    low, high = np.quantile(replicates, levels)
    return float(low), float(high)


# -- estimates ---------------------------------------------------------------


def method_label(method: str, clustered: bool) -> str:
    """The ``Estimate.method`` string for a CI method."""
    if method == "bootstrap":
        return "cluster-bootstrap-percentile" if clustered else "bootstrap-percentile"
    if method == "bca":
        return "cluster-bootstrap-bca" if clustered else "bootstrap-bca"
    if method == "delong":
        return "delong-obuchowski" if clustered else "delong"
    return method


def nan_ci() -> ConfidenceInterval:
    return ConfidenceInterval(low=math.nan, high=math.nan)


def undefined(
    *,
    reason: str,
    name: str,
    method: str,
    confidence_level: float,
    n: int,
    n_clusters: int | None,
    n_pos: int | None,
    stacklevel: int = 4,
) -> Estimate:
    """A NaN estimate, with an UndefinedMetricWarning that says why."""
    warnings.warn(f"{name} is undefined: {reason}. Returning NaN.", UndefinedMetricWarning,
                  stacklevel=stacklevel)
    return Estimate(value=math.nan, ci=nan_ci(), confidence_level=confidence_level,
                    method=method, n=n, n_clusters=n_clusters, n_pos=n_pos)


@dataclass(frozen=True, slots=True)
class Interval:
    """A bootstrap interval, the replicates it dropped, and whether BCa was degenerate."""

    low: float
    high: float
    n_undefined: int
    n_total: int
    bca_failed: bool = False

    @property
    def too_many_undefined(self) -> bool:
        return self.n_undefined > MAX_UNDEFINED_FRACTION * self.n_total


def undefined_replicates_message(name: str, n_undefined: int, n_total: int) -> str:
    return (
        f"{name}: {n_undefined} of {n_total} bootstrap replicates were undefined (e.g. no "
        "positive or no negative case was drawn) and were dropped, so the interval is "
        "conditional on both classes being present and may be too narrow. Pool rare "
        "subgroups or report the estimate as not evaluable."
    )


def bootstrap_interval(
    replicates: np.ndarray,
    theta_hat: float,
    *,
    method: str,
    confidence_level: float,
    name: str,
    jackknife_samples: Sequence[np.ndarray] = (),
    stacklevel: int = 4,
    warn: bool = True,
) -> Interval:
    """Percentile or BCa interval from replicates, dropping undefined (NaN) ones.

    With ``warn``, a SmallSampleWarning is issued when more than
    :data:`MAX_UNDEFINED_FRACTION` of the replicates were undefined, and when
    the BCa interval is degenerate.
    """
    finite = replicates[np.isfinite(replicates)]
    n_undefined = int(replicates.size - finite.size)
    result_kw = {"n_undefined": n_undefined, "n_total": int(replicates.size)}
    if warn and n_undefined > MAX_UNDEFINED_FRACTION * replicates.size:
        warnings.warn(undefined_replicates_message(name, n_undefined, replicates.size),
                      SmallSampleWarning, stacklevel=stacklevel)
    if finite.size < 2:
        return Interval(math.nan, math.nan, **result_kw)
    if method == "bca":
        low, high = bca_interval(finite, theta_hat, jackknife_samples, confidence_level)
        if math.isnan(low):
            if warn:
                warnings.warn(
                    f"{name}: the BCa interval is undefined because every bootstrap replicate "
                    "lies on one side of the estimate; use method='bootstrap' (percentile).",
                    SmallSampleWarning, stacklevel=stacklevel,
                )
            return Interval(low, high, bca_failed=True, **result_kw)
    else:
        low, high = percentile_interval(finite, confidence_level)
    return Interval(low, high, **result_kw)
