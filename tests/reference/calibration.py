"""Slow, obviously correct calibration oracles (loops over bins, rows and thresholds).

Every function here follows the textbook definition literally, with no
vectorisation tricks, so that claimladder's sums-per-bin / sparse-product
implementations can be checked against it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm


def bins_of(p, edges, closed="right"):
    """Bin of each probability by explicit interval membership.

    ``closed="right"``: bins ``(e_{k-1}, e_k]``, the first also holding ``e_0``
    (Guo et al.; scikit-learn). ``closed="left"``: bins ``[e_{k-1}, e_k)``, the
    last also holding ``e_K`` (NumPy histogram; netcal).
    """
    k = len(edges) - 1
    out = []
    for v in p:
        for b in range(k):
            lo, hi = edges[b], edges[b + 1]
            if closed == "right":
                inside = (lo < v <= hi) or (b == 0 and v <= hi)
                inside = inside or (b == k - 1 and v > hi)
            else:
                inside = (lo <= v < hi) or (b == k - 1 and v >= lo)
                inside = inside or (b == 0 and v < lo)
            if inside:
                out.append(b)
                break
    return out


def ece(y, p, edges, closed="right"):
    """sum over bins of (n_b / n) |mean p - mean y|."""
    b = bins_of(p, edges, closed)
    n = len(p)
    total = 0.0
    for k in range(len(edges) - 1):
        members = [i for i in range(n) if b[i] == k]
        if members:
            mp = sum(p[i] for i in members) / len(members)
            my = sum(y[i] for i in members) / len(members)
            total += len(members) / n * abs(mp - my)
    return total


def mce(y, p, edges):
    b = bins_of(p, edges)
    worst = 0.0
    for k in range(len(edges) - 1):
        members = [i for i in range(len(p)) if b[i] == k]
        if members:
            mp = sum(p[i] for i in members) / len(members)
            my = sum(y[i] for i in members) / len(members)
            worst = max(worst, abs(mp - my))
    return worst


def uniform_edges(n_bins):
    return [k / n_bins for k in range(n_bins + 1)]


def quantile_edges(p, n_bins):
    """Percentiles with linear interpolation, written out (numpy's default method)."""
    s = sorted(p)
    n = len(s)
    edges = []
    for k in range(n_bins + 1):
        h = (n - 1) * k / n_bins
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        edges.append(s[lo] + (h - lo) * (s[hi] - s[lo]))
    return edges


def reliability(y, p, edges):
    """(mean predicted, observed rate, count) of each non-empty bin, in bin order."""
    b = bins_of(p, edges)
    out = []
    for k in range(len(edges) - 1):
        members = [i for i in range(len(p)) if b[i] == k]
        if members:
            out.append((sum(p[i] for i in members) / len(members),
                        sum(y[i] for i in members) / len(members), len(members)))
    return out


def smooth_ece_at(y, p, sigma, n_eval=20001, images=6):
    """(1/n) integral_0^1 |sum_i (p_i - y_i) K(t, p_i)| dt with the reflected Gaussian kernel.

    The kernel sums the Gaussian over the images ``2m + p`` and ``2m - p``,
    ``|m| <= images`` (the method of images for Neumann boundaries), and the
    integral is a trapezoid rule on ``n_eval`` points.
    """
    t = np.linspace(0.0, 1.0, n_eval)
    r = np.asarray(p, float) - np.asarray(y, float)
    total = np.zeros_like(t)
    for m in range(-images, images + 1):
        for sign in (1.0, -1.0):
            centre = 2 * m + sign * np.asarray(p, float)
            total += (norm.pdf(t[:, None] - centre[None, :], scale=sigma) * r[None, :]).sum(1)
    return float(np.trapezoid(np.abs(total), t) / len(p))


def conformal_threshold(scores, alpha):
    """The ceil((n+1)(1-alpha))-th smallest score (inf when it exceeds n), by sorting."""
    s = sorted(scores)
    k = math.ceil((len(s) + 1) * (1 - alpha) - 1e-9)
    return math.inf if k > len(s) else s[k - 1]


def aps_score(row, k, u=1.0):
    """Mass of the classes strictly more probable than k, plus u * p_k."""
    return sum(v for v in row if v > row[k]) + u * row[k]


def aurc_distinct(confidence, error):
    """Mean over k of the error rate of the k most confident cases (distinct confidences)."""
    order = sorted(range(len(confidence)), key=lambda i: -confidence[i])
    risks = []
    errors = 0
    for k, i in enumerate(order, start=1):
        errors += error[i]
        risks.append(errors / k)
    return sum(risks) / len(risks)
