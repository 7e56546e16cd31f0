"""Multiple-testing adjustment shared by every check that flags many things at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["holm_adjust"]


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, capped at 1.

    NaN entries (tests that could not be run) stay NaN and do not count towards
    the number of tests.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, float("nan"), 0.03]).round(3).tolist()
    [0.03, 0.06, nan, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    out[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    return out
