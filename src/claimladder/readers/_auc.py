"""Vectorized empirical AUROC, DeLong placements, case jackknife and covariance matrices.

All functions take ratings of shape ``(..., n_cases)`` and one boolean truth
vector, so that a whole batch of simulated studies (or every reader-modality
pair of one study) is handled by a few array operations: one midrank pass per
row (Sun & Xu 2014) gives every placement value, from which the AUROC, its
leave-one-case-out values and both covariance estimators follow in closed
form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

__all__: list[str] = []


@dataclass(frozen=True, slots=True)
class Placements:
    """Placement values of every row (DeLong et al. 1988, section 2).

    ``v10[..., a]`` is the fraction of negatives scored below positive ``a``
    (ties one half) and ``v01[..., b]`` the fraction of positives scored above
    negative ``b``; the empirical AUROC is the mean of either.
    """

    v10: np.ndarray  # (..., m)
    v01: np.ndarray  # (..., n)
    auc: np.ndarray  # (...)


def placements(scores: np.ndarray, truth: np.ndarray) -> Placements:
    """Placements from midranks: a positive's midrank minus its midrank among positives."""
    y = np.asarray(truth, dtype=bool)
    m, n = int(y.sum()), int((~y).sum())
    ranks = rankdata(scores, axis=-1)
    pos, neg = scores[..., y], scores[..., ~y]
    neg_below = ranks[..., y] - rankdata(pos, axis=-1)  # negatives below each positive (+ties/2)
    pos_below = ranks[..., ~y] - rankdata(neg, axis=-1)  # positives below each negative (+ties/2)
    v10 = neg_below / n
    v01 = (m - pos_below) / m
    return Placements(v10=v10, v01=v01, auc=v10.mean(axis=-1))


def auc(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Empirical (trapezoidal, Wilcoxon-Mann-Whitney) AUROC of every row."""
    return placements(scores, truth).auc


def jackknife_auc(scores: np.ndarray, truth: np.ndarray,
                  p: Placements | None = None) -> np.ndarray:
    """Leave-one-case-out AUROC of every row, shape ``(..., n_cases)``.

    Deleting positive ``a`` removes its ``n v10_a`` winning pairs:
    ``A_(-a) = (m A - v10_a) / (m - 1)``; deleting negative ``b`` likewise gives
    ``(n A - v01_b) / (n - 1)``. NaN when the deleted class has one case.
    """
    y = np.asarray(truth, dtype=bool)
    m, n = int(y.sum()), int((~y).sum())
    p = placements(scores, truth) if p is None else p
    out = np.empty(scores.shape, dtype=np.float64)
    a = p.auc[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[..., y] = (m * a - p.v10) / (m - 1) if m > 1 else np.nan
        out[..., ~y] = (n * a - p.v01) / (n - 1) if n > 1 else np.nan
    return out


def jackknife_covariance(jack: np.ndarray) -> np.ndarray:
    """Jackknife covariance ``(c - 1)/c * sum_k (A_i(k) - A_i(.))(A_j(k) - A_j(.))``.

    ``jack`` has shape ``(..., K, n_cases)``; the result ``(..., K, K)``.
    """
    c = jack.shape[-1]
    centred = jack - jack.mean(axis=-1, keepdims=True)
    return (c - 1) / c * np.einsum("...ik,...jk->...ij", centred, centred)


def delong_covariance(p: Placements) -> np.ndarray:
    """DeLong et al. (1988) covariance of the AUROCs of the rows, ``S10 / m + S01 / n``.

    ``p`` holds placements of shape ``(..., K, m)`` and ``(..., K, n)``; the
    result has shape ``(..., K, K)``. NaN when a class has a single case.
    """
    m, n = p.v10.shape[-1], p.v01.shape[-1]
    if m < 2 or n < 2:
        return np.full(p.auc.shape + p.auc.shape[-1:], np.nan)
    a10 = p.v10 - p.v10.mean(axis=-1, keepdims=True)
    a01 = p.v01 - p.v01.mean(axis=-1, keepdims=True)
    s10 = np.einsum("...ik,...jk->...ij", a10, a10) / (m - 1)
    s01 = np.einsum("...ik,...jk->...ij", a01, a01) / (n - 1)
    return s10 / m + s01 / n


def auc_and_covariance(scores: np.ndarray, truth: np.ndarray, covariance: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """AUROCs ``(..., K)``, their covariance ``(..., K, K)`` and the jackknife values.

    ``scores`` has shape ``(..., K, n_cases)``. The jackknife values (shape of
    ``scores``) are returned for ``covariance="jackknife"`` only.
    """
    p = placements(scores, truth)
    if covariance == "jackknife":
        jack = jackknife_auc(scores, truth, p)
        return p.auc, jackknife_covariance(jack), jack
    return p.auc, delong_covariance(p), None
