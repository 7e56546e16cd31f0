"""Ranking statistics: AUROC, average precision and ROC operating points.

The data are sorted once. For one binary problem let ``q_0 < ... < q_(m-1)``
be the distinct scores of the positive rows. Every weighted ranking statistic
needs only, per positive level ``i`` and per replicate,

* ``P_i``: the weight of positives scoring exactly ``q_i``;
* ``D_i``: the weight of negatives scoring in ``[q_(i-1), q_i)``, so that the
  negatives strictly below ``q_i`` weigh ``below_i = D_0 + ... + D_i``;
* ``E_i``: the weight of negatives scoring exactly ``q_i``, kept only for the
  levels where such ties occur in the data;
* ``A``: the weight of negatives scoring above every positive, so that
  ``N = below_(m-1) + E_(m-1) + A`` is the total weight of negatives.

These sums are linear in the cluster counts, so one sparse matrix of about
``2m`` rows maps a block of count vectors to all of them (see ``_engine``).
One cumulative sum over the ``D`` rows then gives, with ties handled exactly
as the Mann-Whitney statistic (ties count one half),

* AUROC ``= sum_i P_i (below_i + E_i / 2) / (P N)``;
* average precision ``= sum_i P_i TP_i / (TP_i + FP_i) / P`` with
  ``TP_i = sum_(j >= i) P_j`` and ``FP_i = N - below_i`` (scikit-learn's
  step-wise definition over distinct thresholds);
* sensitivity at a specificity and the reverse, re-deriving the threshold from
  the weighted ROC curve (optimal thresholds can always be taken at positive
  levels).

With unit counts these are the ordinary statistics; with bootstrap counts
they equal the statistics of the explicitly resampled rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import rankdata

from ._engine import Statistic

__all__: list[str] = []

#: Tolerance on the rate in "rate >= target" comparisons of operating points.
RATE_TOLERANCE = 1e-9

RANK_KINDS = ("roc_auc", "average_precision", "sensitivity_at_specificity",
              "specificity_at_sensitivity")


@dataclass(frozen=True, slots=True)
class _Layout:
    """Row layout of the segment-sum matrix of one binary problem."""

    m: int  # positive levels: rows [0, m) are D, [m, 2m) are P
    ties: np.ndarray  # levels with tied negatives: rows [2m, 2m + t) are their E
    n_rows: int  # 2m + t + 1; the last row is A (negatives above every positive)


@dataclass(frozen=True, slots=True)
class _Curve:
    """Weighted ROC quantities at the positive levels, shape (m, B)."""

    p: np.ndarray  # positive weight at each level (float64)
    below: np.ndarray  # negative weight strictly below each level
    ties: np.ndarray  # tied levels
    e: np.ndarray  # negative weight at each tied level, shape (t, B)
    n_pos: np.ndarray  # (B,)
    n_neg: np.ndarray  # (B,)

    @classmethod
    def from_sums(cls, y: np.ndarray, layout: _Layout) -> _Curve:
        m, t = layout.m, layout.ties.size
        # Float32 partial sums are exact here: the engine uses float32 only while every
        # sum is an integer below 2**24.
        below = np.cumsum(y[:m], axis=0)
        p = np.asarray(y[m:2 * m], dtype=np.float64)
        e = y[2 * m:2 * m + t]
        n_neg = np.asarray(y[2 * m + t], dtype=np.float64) + below[-1]
        if t and layout.ties[-1] == m - 1:
            n_neg += e[-1]  # negatives tied with the top level are neither below nor above
        return cls(p=p, below=below, ties=layout.ties, e=e, n_pos=p.sum(axis=0), n_neg=n_neg)

    def tp(self) -> np.ndarray:
        """Positive weight at or above each level."""
        return np.cumsum(self.p[::-1], axis=0)[::-1]


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def curve_auc(c: _Curve) -> np.ndarray:
    num = np.einsum("ij,ij->j", c.p, c.below, dtype=np.float64)
    if c.ties.size:
        num += 0.5 * np.einsum("ij,ij->j", c.p[c.ties], c.e, dtype=np.float64)
    return _safe_divide(num, c.n_pos * c.n_neg)


def curve_average_precision(c: _Curve) -> np.ndarray:
    tp = c.tp()
    fp = c.n_neg - c.below
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=c.p > 0)
    return _safe_divide(np.einsum("ij,ij->j", c.p, precision), c.n_pos)


def curve_sensitivity_at_specificity(c: _Curve, target: float) -> np.ndarray:
    # Specificity at threshold q_i is below_i / N; it grows with i, sensitivity falls.
    feasible = c.below >= (target - RATE_TOLERANCE) * c.n_neg
    tp = c.tp()
    first = np.argmax(feasible, axis=0)
    best = np.where(feasible.any(axis=0), tp[first, np.arange(tp.shape[1])], 0.0)
    value = _safe_divide(best, c.n_pos)
    return np.where(c.n_neg > 0, value, np.nan)


def curve_specificity_at_sensitivity(c: _Curve, target: float) -> np.ndarray:
    tp = c.tp()
    feasible = tp >= (target - RATE_TOLERANCE) * c.n_pos
    last = feasible.shape[0] - 1 - np.argmax(feasible[::-1], axis=0)
    value = _safe_divide(c.below[last, np.arange(tp.shape[1])], c.n_neg)
    return np.where(c.n_pos > 0, value, np.nan)


def rank_sums_matrix(y: np.ndarray, s: np.ndarray, codes: np.ndarray,
                     n_clusters: int) -> tuple[sparse.csr_array, _Layout]:
    """The segment-sum matrix (rows x n_clusters) of one binary problem, and its layout."""
    levels = np.unique(s[y])
    m = levels.size
    neg = ~y
    s_neg, c_neg = s[neg], codes[neg]
    after = np.searchsorted(levels, s_neg, side="right")  # levels <= score
    before = np.searchsorted(levels, s_neg, side="left")  # levels < score
    tied = after > before  # the negative equals level `before`
    ties, tie_row = np.unique(before[tied], return_inverse=True)
    below_rows = after < m  # negatives at or above the top level are never "below"
    above = before >= m
    rows = np.concatenate([
        after[below_rows],
        m + np.searchsorted(levels, s[y]),
        2 * m + tie_row,
        np.full(int(above.sum()), 2 * m + ties.size),
    ])
    cols = np.concatenate([c_neg[below_rows], codes[y], c_neg[tied], c_neg[above]])
    layout = _Layout(m=m, ties=ties, n_rows=2 * m + ties.size + 1)
    mt = sparse.coo_array((np.ones(rows.size), (rows, cols)),
                          shape=(layout.n_rows, n_clusters)).tocsr()
    mt.sum_duplicates()
    return sparse.csr_array(mt), layout


def rank_statistic(kind: str, y: np.ndarray, s: np.ndarray, codes: np.ndarray,
                   n_clusters: int, *, target: float | None = None) -> Statistic:
    """A resampleable ranking statistic of one binary problem (one output)."""
    mt, layout = rank_sums_matrix(y, s, codes, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        if layout.m == 0:
            return np.full((sums.shape[1], 1), np.nan)
        c = _Curve.from_sums(sums, layout)
        if kind == "roc_auc":
            value = curve_auc(c)
        elif kind == "average_precision":
            value = curve_average_precision(c)
        elif kind == "sensitivity_at_specificity":
            value = curve_sensitivity_at_specificity(c, target)
        else:
            value = curve_specificity_at_sensitivity(c, target)
        return value[:, None]

    jackknife_fn = None
    if kind == "roc_auc":
        def jackknife_fn() -> np.ndarray:
            return auc_jackknife(y, s, codes, n_clusters)[:, None]

    return Statistic(mt=mt, reduce=reduce, n_outputs=1, integer=True,
                     jackknife_fn=jackknife_fn)


# -- DeLong ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placements:
    """Structural components of the AUROC (DeLong 1988), summed per cluster.

    ``v10[c]`` sums, over the positives of cluster ``c``, the fraction of
    negatives scoring below them (ties one half); ``v01[c]`` sums, over the
    negatives of cluster ``c``, the fraction of positives scoring above them.
    """

    theta: float
    n_pos: int
    n_neg: int
    m: np.ndarray  # positives per cluster
    n: np.ndarray  # negatives per cluster
    v10: np.ndarray
    v01: np.ndarray


def placement_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per positive, negatives below (+ half ties); per negative, positives above (+ half ties).

    Midranks as in Sun & Xu (2014): for a positive, its midrank among all rows
    minus its midrank among positives; O(n log n).
    """
    all_ranks = rankdata(s)
    pos_counts = all_ranks[y] - rankdata(s[y])
    below_neg = all_ranks[~y] - rankdata(s[~y])  # positives below each negative (+ half ties)
    return pos_counts, y.sum() - below_neg


def placements(y: np.ndarray, s: np.ndarray, codes: np.ndarray, n_clusters: int) -> Placements:
    """DeLong placement values summed per cluster (all zero for clusters without rows)."""
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    pos_counts, neg_counts = placement_counts(y, s)
    v10 = np.bincount(codes[y], weights=pos_counts / max(n_neg, 1), minlength=n_clusters)
    v01 = np.bincount(codes[~y], weights=neg_counts / max(n_pos, 1), minlength=n_clusters)
    theta = float(pos_counts.sum() / (n_pos * n_neg)) if n_pos and n_neg else np.nan
    return Placements(theta=theta, n_pos=n_pos, n_neg=n_neg,
                      m=np.bincount(codes[y], minlength=n_clusters).astype(np.float64),
                      n=np.bincount(codes[~y], minlength=n_clusters).astype(np.float64),
                      v10=v10, v01=v01)


def obuchowski_covariance(a: Placements, b: Placements) -> float:
    """Cluster-robust covariance of two AUROC estimates on the same rows.

    Obuchowski (1997), eqs. 2-4: with ``I10`` clusters holding positives,
    ``I01`` holding negatives and ``I`` in all,

    ``S10 = I10 / ((I10 - 1) M) sum_c (V10_c - m_c A)(V10'_c - m_c A')``,
    ``S01`` likewise, ``S11 = I / (I - 1) sum_c (V10_c - m_c A)(V01'_c - n_c A')``,
    ``cov = S10 / M + S01 / N + (S11 + S11') / (M N)``.

    With one row per cluster this is DeLong's (1988) covariance. NaN when fewer
    than two clusters hold positives or negatives.
    """
    i10 = int(np.count_nonzero(a.m))
    i01 = int(np.count_nonzero(a.n))
    i_all = int(np.count_nonzero(a.m + a.n))
    if i10 < 2 or i01 < 2 or not (np.isfinite(a.theta) and np.isfinite(b.theta)):
        return np.nan
    big_m, big_n = a.n_pos, a.n_neg
    a10, b10 = a.v10 - a.m * a.theta, b.v10 - b.m * b.theta
    a01, b01 = a.v01 - a.n * a.theta, b.v01 - b.n * b.theta
    s10 = i10 / ((i10 - 1) * big_m) * float(a10 @ b10)
    s01 = i01 / ((i01 - 1) * big_n) * float(a01 @ b01)
    s11 = i_all / (i_all - 1) * float(a10 @ b01 + b10 @ a01)
    return s10 / big_m + s01 / big_n + s11 / (big_m * big_n)


def auc_jackknife(y: np.ndarray, s: np.ndarray, codes: np.ndarray,
                  n_clusters: int) -> np.ndarray:
    """Leave-one-cluster-out AUROC for every cluster, O(n log n).

    Deleting cluster ``c`` removes the pairs with a positive or a negative in
    ``c``: ``T_(-c) = T - R_c - Q_c + W_c``, where ``R_c`` and ``Q_c`` are the
    cluster's placement counts and ``W_c`` counts its within-cluster pairs
    (found by a binary search on (cluster, score) keys). Clusters without rows
    keep the full-sample value.
    """
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    pos_counts, neg_counts = placement_counts(y, s)
    total = pos_counts.sum()
    r = np.bincount(codes[y], weights=pos_counts, minlength=n_clusters)
    q = np.bincount(codes[~y], weights=neg_counts, minlength=n_clusters)
    _, dense = np.unique(s, return_inverse=True)
    width = np.int64(dense.max() + 1 if dense.size else 1)
    keys = codes.astype(np.int64) * width + dense
    neg_keys = np.sort(keys[~y])
    lo = np.searchsorted(neg_keys, keys[y], side="left")
    hi = np.searchsorted(neg_keys, keys[y], side="right")
    start = np.searchsorted(neg_keys, codes[y].astype(np.int64) * width, side="left")
    w = np.bincount(codes[y], weights=(lo - start) + 0.5 * (hi - lo), minlength=n_clusters)
    m_c = np.bincount(codes[y], minlength=n_clusters)
    n_c = np.bincount(codes[~y], minlength=n_clusters)
    den = (n_pos - m_c).astype(np.float64) * (n_neg - n_c)
    return _safe_divide(total - r - q + w, den)
