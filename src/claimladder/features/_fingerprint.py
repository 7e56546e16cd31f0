"""Pixel-level verification of near-duplicate candidates by their shared fine-scale noise.

Two exposures of the same anatomy have different quantum noise; two exports
of one exposure share it. The fine-scale residual (image minus its Gaussian
blur) is therefore a fingerprint of the acquisition: it survives re-quantisation,
gain and offset changes, and a shift of a few pixels is absorbed by trying
every shift up to ``max_shift``. Perceptual hashes cannot tell apart images
that look alike at low resolution (phantoms, one view of one body part at one
site); the fingerprint can.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage, special

from .._core import check_positive_int
from ._batch import (
    Images,
    as_image_batch,
    check_fraction,
    check_real_dtype,
    single_blas_thread,
)
from ._hashing import as_hashes, popcount64

__all__ = ["fingerprint_correlation", "verify_near_duplicates"]

#: Images are reduced by an integer factor to a short side of about this many pixels.
_TARGET_SIDE = 128
#: Half-width of the central sampled region and the grid step, in reduced pixels.
_HALF_WIDTH = 40
_STRIDE = 5
#: Gaussian sigma (reduced pixels) of the blur subtracted to leave the fine-scale residual.
_SIGMA = 1.5
# Pairs whose ids are grouped by their second image so that each image's shifted
# samples are read once; groups are scored in one product per image.


def _reduced(image: np.ndarray) -> np.ndarray:
    """Block-average by the integer factor that brings the short side near 128 pixels.

    An integer factor keeps every noise grain in one reduced pixel: a
    fractional resize interpolates neighbours and blurs the fingerprint.
    """
    array = np.nan_to_num(np.asarray(image, dtype=np.float32), copy=False)
    factor = max(1, round(min(array.shape) / _TARGET_SIDE))
    if factor == 1:
        return array
    h, w = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    return array[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _reduced_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The shape :func:`_reduced` gives an image of ``shape`` (without reducing it)."""
    factor = max(1, round(min(shape) / _TARGET_SIDE))
    return shape[0] // factor, shape[1] // factor


def _samples(residual: np.ndarray, offsets: np.ndarray, max_shift: int) -> np.ndarray:
    """Normalised residual samples on the central grid at every shift, ``(n_shifts, P)``."""
    h, w = residual.shape
    cy, cx = h // 2, w // 2
    rows, cols = np.meshgrid(cy + offsets, cx + offsets, indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    shifts = range(-max_shift, max_shift + 1)
    out = np.stack([residual[rows + dy, cols + dx] for dy in shifts for dx in shifts])
    out -= out.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norm, out=out, where=norm > 0)
    out[(norm == 0)[:, 0]] = 0.0  # a flat centre correlates with nothing
    return out


def fingerprint_correlation(
    images: Images,
    i: Sequence[int] | np.ndarray,
    j: Sequence[int] | np.ndarray,
    *,
    max_shift: int = 2,
) -> np.ndarray:
    """Correlation of the fine-scale noise of image pairs, maximised over small shifts.

    Parameters
    ----------
    images : sequence of 2D array-like, or numpy.ndarray of shape (N, H, W)
        Greyscale images of any shapes; NaN pixels count as 0. Only the
        images named in ``i`` and ``j`` are read, one at a time (up to three
        times each: shape, central samples, shifted samples), and only about
        ``(2 max_shift + 1) ** 2`` x 300 floats of samples are kept per image, so
        a sequence that decodes on access (:class:`claimladder.cohort.ImageFiles`)
        keeps memory bounded.
    i, j : array-like of int, shape (M,)
        The pairs to compare, as positions in ``images``.
    max_shift : int, default=2
        Largest shift tried along each axis, in pixels of the reduced image
        (see Notes): ``(2 max_shift + 1) ** 2`` shifts in all.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(M,)``: the largest Pearson correlation over the
        shifts, in [-1, 1]. Re-exports of one acquisition score near 1;
        distinct acquisitions of similar-looking anatomy score near 0 (up to
        about 0.75 among 250,000 candidate pairs of the demo study).

    Raises
    ------
    ValueError
        ``i`` and ``j`` differ in length or name an image that does not
        exist, or an image is not 2D.

    Notes
    -----
    Each image is block-averaged by the integer factor that brings its short
    side nearest 128 pixels, the residual ``x - G_1.5 * x`` is taken, and
    its values on a grid of 17 x 17 points (every 5th pixel of the central
    81 x 81 region, away from corner markers and burned-in text, centred on
    the image centre so that small crops of one side stay within the shift
    search) are compared at every shift of the second image. Correlation
    discards gain and offset. Resampling (a crop resized back to the full
    size) interpolates the noise away, so such pairs are not confirmed here:
    perceptual-hash evidence has to carry them.

    Cost: one product of ``(n_shifts, P) x (P, k)`` per image with ``k``
    partners, ``P = 289``: about 1 s per 250,000 pairs on 2 cores.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import fingerprint_correlation
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[0:128, 0:128]
    >>> body = 100.0 * np.exp(-((x - 64.0) ** 2 + (y - 60.0) ** 2) / 2000.0)
    >>> a = body + rng.normal(0, 2, body.shape)          # one exposure
    >>> b = np.roll(a, (1, -2), axis=(0, 1)) * 1.02 + 3  # its re-export, shifted
    >>> c = body + rng.normal(0, 2, body.shape)          # another exposure
    >>> [round(float(r), 1) for r in fingerprint_correlation([a, b, c], [0, 0], [1, 2])]
    [1.0, 0.1]
    """
    owner = "fingerprint_correlation"
    max_shift = check_positive_int(max_shift, param="max_shift", owner=owner, minimum=0)
    get, n = _image_getter(images, owner)
    i = np.asarray(i, dtype=np.int64).reshape(-1)
    j = np.asarray(j, dtype=np.int64).reshape(-1)
    if len(i) != len(j):
        raise ValueError(
            f"The 'i' and 'j' parameters of {owner} must have the same length (one entry "
            f"per pair). Got {len(i)} and {len(j)} instead."
        )
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(
            f"The 'i' and 'j' parameters of {owner} must be positions in 'images' "
            f"(0..{n - 1}). Got values from {min(i.min(), j.min())} to "
            f"{max(i.max(), j.max())} instead."
        )
    out = np.zeros(len(i), dtype=np.float32)
    if not len(i):
        return out
    needed = np.unique(np.concatenate([i, j]))
    # Images are read one at a time and only compact samples are kept: the central
    # samples of every image (P floats) and the shifted ones (shifts x P) of one image
    # at a time, so a sequence that decodes on access keeps memory bounded. The
    # grid must fit the smallest reduced image, hence a first look at every shape.
    short = min(min(_reduced_shape(get(int(k)).shape)) for k in needed)
    # The grid plus the shifts and the blur's reach must fit inside the smallest image.
    half = min(_HALF_WIDTH, (short - 1) // 2 - max_shift - 1)
    if half < _STRIDE:
        return out  # too small to hold a fingerprint: nothing is confirmed
    offsets = np.arange(-(half // _STRIDE) * _STRIDE, half + 1, _STRIDE)
    centre = (2 * max_shift + 1) * max_shift + max_shift

    def samples(k: int) -> np.ndarray:
        r = _reduced(get(k))
        return _samples(r - ndimage.gaussian_filter(r, _SIGMA, mode="nearest"), offsets,
                        max_shift)

    first = samples(int(needed[0]))[centre]
    centred = np.empty((len(needed), first.size), dtype=first.dtype)
    centred[0] = first
    for row, k in enumerate(needed[1:], start=1):  # a copy of one row: the rest is freed
        centred[row] = samples(int(k))[centre]
    position = np.searchsorted(needed, i)
    order = np.argsort(j, kind="stable")
    starts = np.flatnonzero(np.r_[True, j[order][1:] != j[order][:-1]])
    # Small products: one BLAS thread is faster than several on shared cores.
    with single_blas_thread(len(i) > 10_000):
        for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
            rows = order[start:stop]
            shifted = samples(int(j[rows[0]]))
            out[rows] = (shifted @ centred[position[rows]].T).max(axis=0)
    return out


def _image_getter(images: Images, owner: str):
    """``(get, n)``: ``get(k)`` returns image ``k`` checked to be a 2D real array.

    An ``(N, H, W)`` array is validated at once; a sequence is read only at the
    positions asked for, so one that decodes on access is never read in full.
    """
    if isinstance(images, np.ndarray):
        batch = as_image_batch(images, owner=owner, check_finite=False)
        return batch.image, len(batch)
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise ValueError(
            f"{owner}: 'images' must be a sequence of 2D arrays or one (N, H, W) array. "
            f"Got {type(images).__name__} instead."
        )

    def get(k: int) -> np.ndarray:
        array = np.asarray(images[k])
        if array.ndim != 2 or min(array.shape) < 1:
            raise ValueError(
                f"{owner}: image {k} must be a non-empty 2D array (H, W). Got shape "
                f"{array.shape} instead."
            )
        check_real_dtype(array, f"image {k}", owner)
        return array

    return get, len(images)


# Unrelated pairs sampled to estimate the distance distribution of the data.
_NULL_OFFSETS = 64
_GOLDEN = (5**0.5 - 1) / 2


def _unrelated_cdf(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Normal-tail estimate of the share of unrelated pairs within ``0..max_distance``.

    The mean and SD of the distances of pairs ``(k, k + o mod n)`` for 64
    offsets ``o`` spread by the golden ratio (deterministic, no random draw)
    are fitted with a normal distribution; its tail at ``d + 0.5`` is the
    share. A duplicate among the sampled pairs barely moves the mean and SD.
    """
    n = len(hashes)
    offsets = np.unique((np.arange(1, _NULL_OFFSETS + 1) * _GOLDEN * n).astype(np.int64) % n)
    offsets = offsets[offsets > 0]
    if n < 2 or not len(offsets):
        return np.ones(max_distance + 1)
    k = np.arange(n)
    dist = np.concatenate([popcount64(hashes ^ hashes[(k + o) % n]) for o in offsets])
    dist = dist.astype(np.float64)
    sd = max(float(dist.std()), 1.0)
    z = (np.arange(max_distance + 1) + 0.5 - float(dist.mean())) / sd
    return 0.5 * special.erfc(-z / np.sqrt(2.0))


def _excess_pairs(i: np.ndarray, j: np.ndarray, dist: np.ndarray, n: int, top: int
                  ) -> np.ndarray:
    """Per distance ``d``: candidate pairs within ``d`` beyond one partner per image.

    A re-export has one original: an image with ``k`` candidates within ``d``
    has at least ``k - 1`` unrelated ones. Half the sum of those excesses
    (each pair has two ends) is a lower bound on the unrelated pairs within ``d``.
    """
    out = np.zeros(top + 1)
    order = np.argsort(dist, kind="stable")
    degree = np.zeros(n, dtype=np.int64)
    ends = np.searchsorted(dist[order], np.arange(top + 1), side="right")
    start = 0
    for d, stop in enumerate(ends):
        rows = order[start:stop]
        np.add.at(degree, i[rows], 1)
        np.add.at(degree, j[rows], 1)
        out[d] = np.maximum(degree - 1, 0).sum() / 2.0
        start = stop
    return out


def verify_near_duplicates(
    images: Images,
    hashes: object,
    pairs: pd.DataFrame,
    *,
    groups: object = None,
    fdr: float = 0.05,
    min_correlation: float = 0.9,
    max_shift: int = 2,
) -> pd.DataFrame:
    """Confirm perceptual-hash candidates by hash rarity or by shared pixel noise.

    A hash distance is evidence only when unrelated images of *this* data
    rarely come that close. For every distance ``d`` the expected number of
    unrelated pairs within ``d`` is estimated (see Notes) and compared with the candidates found within ``d``; candidates up
    to the largest ``d`` whose estimated false-discovery rate is at most
    ``fdr`` are confirmed by their hash. The others are confirmed when their
    fine-scale noise correlates (:func:`fingerprint_correlation`) at least
    ``min_correlation``: only re-exports of one acquisition share their noise.

    Parameters
    ----------
    images : sequence of 2D array-like, or numpy.ndarray of shape (N, H, W)
        The hashed images. Only those of pairs compared on pixels are
        accessed, so a sequence that decodes on access (e.g.
        :class:`claimladder.cohort.ImageFiles`) keeps memory bounded.
    hashes : array-like of uint64, shape (N,)
        Their :func:`perceptual_hash` values.
    pairs : pandas.DataFrame
        Candidates from :func:`near_duplicate_pairs` (columns ``i``, ``j``, ``distance``)
        on the same hashes.
    groups : array-like, shape (N,), optional
        The ``groups`` given to :func:`near_duplicate_pairs`, if any (only pairs
        across groups were searched, which sets the number of pairs at risk).
    fdr : float, default=0.05
        Largest estimated share of unrelated pairs among those confirmed by hash alone.
    min_correlation : float, default=0.9
        Noise correlation that confirms a pair. Re-exports of the demo study score
        0.99-1.00 and unrelated candidate pairs at most 0.75.
    max_shift : int, default=2
        Passed to :func:`fingerprint_correlation`.

    Returns
    -------
    pandas.DataFrame
        ``pairs`` with ``hash_fdr`` (the estimated false-discovery rate at the pair's
        distance), ``correlation`` (NaN where the hash sufficed and the pixels were not
        compared) and ``confirmed`` (bool) added; same rows, same order.

    Notes
    -----
    The expected number of unrelated pairs within ``d`` is the larger of two
    estimates: a normal tail fitted to the distances of ``64 N`` pairs ``(k, k + o
    mod N)``, times the number of pairs searched; and the candidates beyond one
    partner per image (an image with ``k`` candidates within ``d`` has at least
    ``k - 1`` unrelated ones, as a re-export has one original). The second needs
    no distributional assumption and dominates when images look alike. For
    independent natural images (distances near 32) every candidate within 8 bits
    is confirmed by its hash; for images that look alike at low resolution (the
    demo's phantoms: 10 % of all pairs within 8 bits) none is, and the pixels decide.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import (near_duplicate_pairs, perceptual_hash,
    ...                                   verify_near_duplicates)
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[0:128, 0:128]
    >>> body = 100.0 * np.exp(-((x - 64.0) ** 2 + (y - 60.0) ** 2) / 2000.0)
    >>> images = [body + rng.normal(0, 2, body.shape) for _ in range(3)]
    >>> images.append(np.roll(images[0], 1, axis=1) + 2.0)  # a re-export of image 0
    >>> hashes = perceptual_hash(images)
    >>> pairs = near_duplicate_pairs(hashes, max_distance=8)
    >>> out = verify_near_duplicates(images, hashes, pairs)
    >>> out.loc[out["confirmed"], ["i", "j"]].values.tolist()
    [[0, 3]]
    """
    owner = "verify_near_duplicates"
    fdr = check_fraction(fdr, param="fdr", owner=owner, upper=1.0)
    min_correlation = check_fraction(min_correlation, param="min_correlation", owner=owner,
                                     upper=1.0)
    hashes = as_hashes(hashes, param="hashes", owner=owner).reshape(-1)
    missing = {"i", "j", "distance"} - set(getattr(pairs, "columns", ()))
    if missing:
        raise ValueError(
            f"The 'pairs' parameter of {owner} must be a DataFrame from near_duplicate_pairs "
            f"with columns i, j and distance. Missing: {', '.join(sorted(missing))}."
        )
    out = pairs.copy()
    n = len(hashes)
    if not len(out):
        out["hash_fdr"] = np.zeros(0)
        out["correlation"] = np.zeros(0, dtype=np.float32)
        out["confirmed"] = np.zeros(0, dtype=bool)
        return out
    dist = out["distance"].to_numpy(dtype=np.int64)
    top = int(dist.max())
    if groups is None:
        at_risk = n * (n - 1) / 2.0
    else:
        sizes = pd.Series(np.asarray(groups, dtype=object)).value_counts().to_numpy(float)
        at_risk = (n * n - float(np.dot(sizes, sizes))) / 2.0
    excess = _excess_pairs(out["i"].to_numpy(np.int64), out["j"].to_numpy(np.int64), dist, n,
                           top)
    expected = np.maximum(_unrelated_cdf(hashes, top) * at_risk, excess)
    found = np.cumsum(np.bincount(dist, minlength=top + 1))
    rate = np.minimum(expected / np.maximum(found, 1), 1.0)
    # Confirm by hash up to the largest distance whose estimated FDR is small enough.
    ok = np.flatnonzero(rate <= fdr)
    by_hash = dist <= (int(ok.max()) if len(ok) else -1)
    correlation = np.full(len(out), np.nan, dtype=np.float32)
    rest = np.flatnonzero(~by_hash)
    if len(rest):
        correlation[rest] = fingerprint_correlation(
            images, out["i"].to_numpy()[rest], out["j"].to_numpy()[rest], max_shift=max_shift
        )
    out["hash_fdr"] = rate[dist]
    out["correlation"] = correlation
    out["confirmed"] = by_hash | (correlation >= min_correlation)
    return out
