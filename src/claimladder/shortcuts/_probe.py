"""A linear probe, cross-validated by patient, with its permutation null in one pass.

The shortcut checks ask "can a simple classifier predict X from Y?", where X
is the site, the scanner or the label and Y is something that should not
carry it (image statistics, border strips, the model's score beyond the
label). The probe is ridge regression on one-hot targets (a linear
discriminant): its solution is one linear map of the targets, so the
observed target and every permuted copy are fit with one factorisation per
fold, and a permutation test of hundreds of permutations costs about as
much as a handful of ordinary fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from .._core import ConfidenceInterval, Estimate, RngLike, check_rng, spawn

__all__ = ["ProbeResult", "auc_columns", "balanced_accuracy_ci", "ridge_probe"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ProbeResult:
    """Out-of-fold scores of the probe and its permutation test.

    Attributes
    ----------
    classes : numpy.ndarray
        Target classes, in score-column order.
    codes : numpy.ndarray of int
        Class index of every row.
    scores : numpy.ndarray of shape (n, K)
        Out-of-fold decision score of every class (the ridge fit without its
        intercept, so that folds are comparable).
    auroc : float
        Binary: AUROC of the second class's score; else the macro
        one-vs-rest AUROC.
    null : numpy.ndarray
        The same statistic under each permutation of the target.
    threshold : float
        ``1 - alpha`` quantile of ``null``.
    p_value : float
        ``(1 + #(null >= auroc)) / (1 + n_permutations)``.
    balanced_accuracy : float
        Mean per-class recall of the arg-max class.
    permuted_by : str
        ``"cluster"`` (targets permuted between patients) or ``"row"``.
    n_splits : int
        Folds actually used.
    folds : numpy.ndarray of int
        Fold of every row (whole patients per fold).
    """

    classes: np.ndarray
    codes: np.ndarray
    scores: np.ndarray
    auroc: float
    null: np.ndarray
    threshold: float
    p_value: float
    balanced_accuracy: float
    permuted_by: str
    n_splits: int
    folds: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """Arg-max class index of every row."""
        return np.argmax(self.scores, axis=1)


def _folds(cluster_codes: np.ndarray, n_clusters: int, n_splits: int,
           rng: np.random.Generator) -> np.ndarray:
    """Fold of every row: clusters dealt round-robin in a random order."""
    order = rng.permutation(n_clusters)
    fold_of_cluster = np.empty(n_clusters, dtype=int)
    fold_of_cluster[order] = np.arange(n_clusters) % n_splits
    return fold_of_cluster[cluster_codes]


def auc_columns(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of every column: ``labels`` and ``scores`` both (n, m); NaN without both classes."""
    ranks = rankdata(scores, axis=0)
    n_pos = labels.sum(axis=0)
    n_neg = labels.shape[0] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((labels * ranks).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _statistic(codes: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Per replicate: AUROC of class 1 (binary) or macro OvR AUROC.

    ``codes`` (n, R) class indices, ``scores`` (n, R, K).
    """
    n, r = codes.shape
    if k == 2:
        return auc_columns((codes == 1).astype(float), scores[:, :, 1])
    labels = (codes[:, :, None] == np.arange(k)).reshape(n, r * k).astype(float)
    auc = auc_columns(labels, scores.reshape(n, r * k)).reshape(r, k)
    return auc.mean(axis=1)


def ridge_probe(features: np.ndarray, target: np.ndarray, clusters: np.ndarray | None, *,
                n_splits: int = 5, n_permutations: int = 200, alpha: float = 0.05,
                ridge: float = 1.0, rng: RngLike = None) -> ProbeResult:
    """Cross-validated ridge probe of ``target`` from ``features`` with a permutation test.

    Parameters
    ----------
    features : numpy.ndarray of shape (n, d)
        Finite features (standardised inside each training fold).
    target : numpy.ndarray of shape (n,)
        Class of each row (at least two classes).
    clusters : numpy.ndarray of shape (n,), optional
        Patient ids: folds never split a patient, and targets constant
        within patients are permuted between patients.
    n_splits : int, default 5
        Folds (at most the number of patients).
    n_permutations : int, default 200
        Permutations of the target for the null distribution.
    alpha : float, default 0.05
        The threshold is the ``1 - alpha`` quantile of the null.
    ridge : float, default 1.0
        Penalty per training row: ``lambda = ridge * n_train`` on
        standardised features.
    rng : int, Generator or None
        Seeds the folds and the permutations.

    Returns
    -------
    ProbeResult

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.shortcuts import ridge_probe
    >>> rng = np.random.default_rng(0)
    >>> target = np.repeat(["A", "B"], 40)
    >>> features = rng.normal(size=(80, 3)) + (target == "B")[:, None]
    >>> probe = ridge_probe(features, target, None, n_permutations=99, rng=0)
    >>> probe.auroc > probe.threshold, probe.p_value
    (True, 0.01)
    """
    gen = check_rng(rng)
    fold_rng, perm_rng = spawn(gen, 2)
    x = np.asarray(features, dtype=np.float64)
    n, d = x.shape
    classes, codes = np.unique(np.asarray(target, dtype=object).astype(str), return_inverse=True)
    k = classes.size
    if clusters is None:
        cluster_codes, n_clusters = np.arange(n), n
    else:
        uniq, cluster_codes = np.unique(np.asarray(clusters, dtype=object).astype(str),
                                        return_inverse=True)
        n_clusters = uniq.size
    n_splits = int(min(n_splits, n_clusters))
    fold = _folds(cluster_codes, n_clusters, n_splits, fold_rng)
    # Targets constant within every patient are permuted between patients, so the
    # null keeps the within-patient correlation of the data.
    per_cluster = np.full(n_clusters, -1)
    per_cluster[cluster_codes] = codes
    constant = bool(np.all(per_cluster[cluster_codes] == codes))
    replicates = np.empty((n, n_permutations + 1), dtype=int)
    replicates[:, 0] = codes
    for b in range(n_permutations):
        if constant:
            replicates[:, b + 1] = perm_rng.permutation(per_cluster)[cluster_codes]
        else:
            replicates[:, b + 1] = perm_rng.permutation(codes)
    onehot = (replicates[:, :, None] == np.arange(k)).astype(np.float64)  # (n, R, K)
    r = replicates.shape[1]
    scores = np.zeros((n, r, k))
    for f in range(n_splits):
        test = fold == f
        train = ~test
        if not test.any() or train.sum() < 2:
            continue
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        std[std == 0] = 1.0
        xtr = (x[train] - mean) / std
        xte = (x[test] - mean) / std
        y = onehot[train].reshape(train.sum(), r * k)
        yc = y - y.mean(axis=0)
        lam = ridge * xtr.shape[0]
        if d <= xtr.shape[0]:
            w = np.linalg.solve(xtr.T @ xtr + lam * np.eye(d), xtr.T @ yc)
        else:
            w = xtr.T @ np.linalg.solve(xtr @ xtr.T + lam * np.eye(xtr.shape[0]), yc)
        # No intercept: the training fold's class frequencies would shift each fold's
        # scores against the classes it holds out (pooled out-of-fold AUROC then sits
        # below 0.5 under the null); a constant common to all folds changes no AUROC.
        scores[test] = (xte @ w).reshape(test.sum(), r, k)
    stat = _statistic(replicates, scores, k)
    observed, null = float(stat[0]), stat[1:]
    finite = null[np.isfinite(null)]
    threshold = float(np.quantile(finite, 1 - alpha)) if finite.size else math.nan
    p_value = (float((1 + np.count_nonzero(finite >= observed)) / (1 + finite.size))
               if finite.size and math.isfinite(observed) else math.nan)
    oof = scores[:, 0, :]
    predicted = np.argmax(oof, axis=1)
    recalls = [np.mean(predicted[codes == c] == c) for c in range(k) if np.any(codes == c)]
    return ProbeResult(classes=classes, codes=codes, scores=oof, auroc=observed, null=null,
                       threshold=threshold, p_value=p_value,
                       balanced_accuracy=float(np.mean(recalls)),
                       permuted_by="cluster" if constant and clusters is not None else "row",
                       n_splits=n_splits, folds=fold)


def balanced_accuracy_ci(codes: np.ndarray, predicted: np.ndarray, clusters: np.ndarray | None,
                         *, n_resamples: int, confidence_level: float,
                         rng: RngLike) -> Estimate:
    """Multiclass balanced accuracy with a (cluster) bootstrap percentile interval.

    Each replicate draws patients with replacement (multinomial counts) and
    weights their rows by the count; replicates missing a class are dropped.
    """
    gen = check_rng(rng)
    codes = np.asarray(codes)
    n = codes.size
    k = int(codes.max()) + 1 if n else 0
    if clusters is None:
        cluster_codes, n_clusters = np.arange(n), n
    else:
        _, cluster_codes = np.unique(np.asarray(clusters, dtype=object).astype(str),
                                     return_inverse=True)
        n_clusters = int(cluster_codes.max()) + 1 if n else 0
    correct = (predicted == codes).astype(float)
    # Per-cluster counts of rows and of correct rows of each class: (n_clusters, k).
    total = np.zeros((n_clusters, k))
    hits = np.zeros((n_clusters, k))
    np.add.at(total, (cluster_codes, codes), 1.0)
    np.add.at(hits, (cluster_codes, codes), correct)
    point = float(np.mean(hits.sum(axis=0)[total.sum(axis=0) > 0]
                          / total.sum(axis=0)[total.sum(axis=0) > 0]))
    weights = gen.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters),
                              size=n_resamples).astype(float)
    t = weights @ total
    h = weights @ hits
    ok = (t > 0).all(axis=1)
    reps = (h[ok] / t[ok]).mean(axis=1)
    tail = (1 - confidence_level) / 2
    low, high = ((float(np.quantile(reps, tail)), float(np.quantile(reps, 1 - tail)))
                 if reps.size else (math.nan, math.nan))
    method = "cluster-bootstrap-percentile" if clusters is not None else "bootstrap-percentile"
    return Estimate(value=point, ci=ConfidenceInterval(low=low, high=high),
                    confidence_level=confidence_level, method=method, n=n,
                    n_clusters=n_clusters if clusters is not None else None)
