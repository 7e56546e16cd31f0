"""Resampling and DCT as matrices, so that a whole batch is resized by two products.

A separable resize of an ``(H, W)`` image to ``(h, w)`` is ``R_h @ X @ R_w.T``
with ``R_h`` of shape ``(h, H)``; composing it with further linear maps (a 2D
DCT) stays a pair of small matrices. The matrices depend only on the sizes and
are cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["area_matrix", "dct_matrix", "lanczos_matrix"]


def _lanczos3(x: np.ndarray) -> np.ndarray:
    # Pillow's lanczos_filter (src/libImaging/Resample.c): sinc(x) sinc(x/3) on [-3, 3).
    out = np.sinc(x) * np.sinc(x / 3.0)
    out[(x < -3.0) | (x >= 3.0)] = 0.0
    return out


@lru_cache(maxsize=64)
def lanczos_matrix(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's ``Image.LANCZOS`` resampling weights, as an ``(out_size, in_size)`` matrix.

    Follows ``precompute_coeffs`` of Pillow's ``Resample.c``: the kernel is
    stretched by the reduction factor (antialiasing), its support rounded to
    whole pixels, and each row normalised to sum 1. Pillow additionally rounds
    the weights to fixed point and the result of each pass to uint8; here the
    arithmetic stays in floating point.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    matrix = np.zeros((out_size, in_size))
    for out in range(out_size):
        center = (out + 0.5) * scale
        # int() truncates toward zero like Pillow's (int) cast.
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        weights = _lanczos3((np.arange(lo, hi) - center + 0.5) / filterscale)
        total = weights.sum()
        matrix[out, lo:hi] = weights / total if total != 0 else weights
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=64)
def area_matrix(in_size: int, out_size: int) -> np.ndarray:
    """Exact area-average resampling weights, ``(out_size, in_size)``.

    Output pixel ``k`` covers ``[k, k + 1) * in_size / out_size`` in input
    pixel units; its weight on input pixel ``i`` is the overlap of that
    interval with ``[i, i + 1)`` divided by the interval's length. Each row
    sums to 1; when enlarging, this is nearest-neighbour with blended seams.
    """
    step = in_size / out_size
    edges_out = np.arange(out_size + 1) * step
    lo = np.maximum(edges_out[:-1, None], np.arange(in_size)[None, :])
    hi = np.minimum(edges_out[1:, None], np.arange(1, in_size + 1)[None, :])
    matrix = np.clip(hi - lo, 0.0, None) / step
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=16)
def dct_matrix(size: int) -> np.ndarray:
    """The unnormalised DCT-II of ``scipy.fftpack.dct(x, type=2)``, as a matrix.

    ``y[k] = 2 * sum_n x[n] cos(pi * k * (2n + 1) / (2 * size))``.
    """
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    matrix = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size))
    matrix.setflags(write=False)
    return matrix
