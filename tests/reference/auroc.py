"""Slow, obviously correct AUROC: the fraction of (positive, negative) pairs ranked right.

O(n_pos * n_neg) time and memory; an oracle for tests only.
"""

from __future__ import annotations

import numpy as np


def pairwise_auroc(y_true, y_score) -> float:
    """P(score of a random positive > score of a random negative), ties counting 1/2."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=float)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    wins = 0.0
    for x in pos:
        for z in neg:
            if x > z:
                wins += 1.0
            elif x == z:
                wins += 0.5
    return wins / (pos.size * neg.size)
