"""Plainly written DeLong (1988) and Obuchowski (1997) variances, from O(n^2) placements.

Independent of claimladder's fast implementation: placement values come from
explicit pairwise comparisons and every sum is a Python loop over clusters, in
the notation of the papers:

* DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845, section 2:
  V10(X_i) = (1/n) sum_j psi(X_i, Y_j), V01(Y_j) = (1/m) sum_i psi(X_i, Y_j),
  S10 = sum_i (V10(X_i) - A)^2 / (m - 1), S01 likewise, var = S10/m + S01/n;
  for two modalities, covariances replace the squares.
* Obuchowski (1997), Biometrics 53:567-578, eqs. 2-4 (clustered data): with
  V10_c and V01_c the sums of the placements over cluster c, m_c and n_c its
  positive and negative counts, M, N the totals and I10, I01, I the numbers
  of clusters with positives, with negatives and in all,
  S10 = I10 / ((I10 - 1) M) sum_c (V10_c - m_c A)(V10'_c - m_c A'),
  S01 = I01 / ((I01 - 1) N) sum_c (V01_c - n_c A)(V01'_c - n_c A'),
  S11 = I / (I - 1) sum_c (V10_c - m_c A)(V01'_c - n_c A'),
  cov(A, A') = S10 / M + S01 / N + (S11 + S11') / (M N).
"""

from __future__ import annotations

import numpy as np


def _psi(x: float, y: float) -> float:
    return 1.0 if x > y else (0.5 if x == y else 0.0)


def placements(y_true, y_score):
    """(V10 per positive, V01 per negative, AUC) from explicit pairwise comparisons."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=float)
    pos, neg = s[y], s[~y]
    v10 = np.array([np.mean([_psi(x, z) for z in neg]) for x in pos])
    v01 = np.array([np.mean([_psi(x, z) for x in pos]) for z in neg])
    return v10, v01, float(v10.mean())


def delong_covariance(y_true, score_a, score_b) -> float:
    """DeLong's covariance of two AUCs on the same independent rows (variance when a == b)."""
    a10, a01, auc_a = placements(y_true, score_a)
    b10, b01, auc_b = placements(y_true, score_b)
    m, n = a10.size, a01.size
    s10 = sum((a10[i] - auc_a) * (b10[i] - auc_b) for i in range(m)) / (m - 1)
    s01 = sum((a01[j] - auc_a) * (b01[j] - auc_b) for j in range(n)) / (n - 1)
    return s10 / m + s01 / n


def obuchowski_covariance(y_true, score_a, score_b, groups) -> float:
    """Obuchowski's clustered covariance of two AUCs on the same rows."""
    y = np.asarray(y_true, dtype=bool)
    g = np.asarray(groups)
    a10, a01, auc_a = placements(y, score_a)
    b10, b01, auc_b = placements(y, score_b)
    g_pos, g_neg = g[y], g[~y]
    big_m, big_n = a10.size, a01.size
    clusters = sorted(set(g.tolist()))
    rows = []
    for c in clusters:
        m_c = int(np.sum(g_pos == c))
        n_c = int(np.sum(g_neg == c))
        rows.append((m_c, n_c, a10[g_pos == c].sum(), a01[g_neg == c].sum(),
                     b10[g_pos == c].sum(), b01[g_neg == c].sum()))
    i10 = sum(1 for r in rows if r[0] > 0)
    i01 = sum(1 for r in rows if r[1] > 0)
    i_all = len(rows)
    s10 = i10 / ((i10 - 1) * big_m) * sum(
        (v10a - m_c * auc_a) * (v10b - m_c * auc_b) for m_c, _, v10a, _, v10b, _ in rows)
    s01 = i01 / ((i01 - 1) * big_n) * sum(
        (v01a - n_c * auc_a) * (v01b - n_c * auc_b) for _, n_c, _, v01a, _, v01b in rows)
    s11_ab = i_all / (i_all - 1) * sum(
        (v10a - m_c * auc_a) * (v01b - n_c * auc_b) for m_c, n_c, v10a, _, _, v01b in rows)
    s11_ba = i_all / (i_all - 1) * sum(
        (v10b - m_c * auc_b) * (v01a - n_c * auc_a) for m_c, n_c, _, v01a, v10b, _ in rows)
    return s10 / big_m + s01 / big_n + (s11_ab + s11_ba) / (big_m * big_n)
