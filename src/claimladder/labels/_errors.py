"""Candidate label errors by confident learning on out-of-fold predicted probabilities."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._core import (
    Finding,
    RngLike,
    Rung,
    SmallSampleWarning,
    Status,
    check_positive_int,
    check_probability,
    check_rng,
)
from ._annotators import MAX_EXAMPLES, _as_1d
from ._stats import clusters, estimate, mean_statistic, options

__all__ = [
    "LABEL_ISSUE_COLUMNS",
    "check_label_errors",
    "find_label_issues",
    "out_of_fold_probabilities",
]

#: Columns of :func:`find_label_issues`.
LABEL_ISSUE_COLUMNS = ("position", "id", "given_label", "suggested_label", "self_confidence",
                       "suggested_confidence")

FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _default_fit_predict(x_train: np.ndarray, y_train: np.ndarray,
                         x_test: np.ndarray) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    return model.predict_proba(x_test)


def out_of_fold_probabilities(
    features: Any,
    y: Any,
    *,
    groups: Any = None,
    fit_predict: FitPredict | None = None,
    n_splits: int = 5,
    rng: RngLike = None,
) -> np.ndarray:
    """Out-of-fold predicted class probabilities (cross-fitting, patients kept together).

    Parameters
    ----------
    features : array-like of shape (n, n_features)
        Inputs of the model (image features, embeddings, metadata codes).
    y : array-like of shape (n,)
        Given labels.
    groups : array-like of shape (n,), optional
        Patient ids: folds never split a patient (``StratifiedGroupKFold``).
    fit_predict : callable, optional
        ``fit_predict(x_train, y_train, x_test) -> probabilities`` of shape
        ``(n_test, n_classes)``, columns in the order of the sorted distinct labels;
        ``y_train`` holds class indices ``0..n_classes-1``. Default:
        standardised L2 logistic regression.
    n_splits : int, default 5
        Folds.
    rng : int, numpy.random.Generator or None
        Seed of the fold shuffle (SPEC 7).

    Returns
    -------
    numpy.ndarray of shape (n, n_classes)
        Each row predicted by a model that never saw it; columns follow the
        sorted distinct labels. A class missing from a fold's training data gets
        probability 0 there.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.labels import out_of_fold_probabilities
    >>> x = np.arange(40, dtype=float)[:, None]
    >>> p = out_of_fold_probabilities(x, (x[:, 0] > 19).astype(int), rng=0)
    >>> p.shape, bool(p[0, 0] > 0.5), bool(p[-1, 1] > 0.5)
    ((40, 2), True, True)
    """
    owner = "out_of_fold_probabilities"
    n_splits = check_positive_int(n_splits, param="n_splits", owner=owner, minimum=2)
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    labels = _as_1d(y, "y", x.shape[0], owner)
    try:
        codes, classes = pd.factorize(pd.Series(labels).infer_objects(), sort=True)
    except TypeError:
        codes, classes = pd.factorize(pd.Series(labels).astype(str), sort=True)
    if (codes < 0).any():
        raise ValueError(f"y passed to {owner} contains {int((codes < 0).sum())} missing "
                         "label(s). Drop unlabelled cases first.")
    if classes.size < 2:
        raise ValueError(f"y passed to {owner} holds a single class; out-of-fold "
                         "probabilities need at least two.")
    seed = int(check_rng(rng).integers(2**31 - 1))
    fit_predict = fit_predict or _default_fit_predict
    out = np.zeros((x.shape[0], classes.size))
    with warnings.catch_warnings():
        # Small classes make sklearn warn that a fold lacks members; the result stays valid.
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        if groups is None:
            folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(
                x, codes)
        else:
            g = _as_1d(groups, "groups", x.shape[0], owner)
            folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                         random_state=seed).split(x, codes, g)
        folds = list(folds)
    for train, test in folds:
        present = np.unique(codes[train])
        if present.size == classes.size:
            out[test] = fit_predict(x[train], codes[train], x[test])
        elif present.size == 1:
            out[test, present[0]] = 1.0
        else:
            remap = np.searchsorted(present, codes[train])
            out[np.ix_(test, present)] = fit_predict(x[train], remap, x[test])
    return out


def _probabilities(pred_probs: Any, n_classes: int, n: int, owner: str) -> np.ndarray:
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.shape != (n, n_classes):
        raise ValueError(f"pred_probs passed to {owner} must have shape (n, n_classes) = "
                         f"({n}, {n_classes}) (or (n,) for the positive class of binary "
                         f"labels). Got {np.asarray(pred_probs).shape} instead.")
    if not np.all(np.isfinite(p)) or (p < 0).any() or (p > 1).any():
        raise ValueError(f"pred_probs passed to {owner} must be probabilities in [0, 1] "
                         "without NaN.")
    return p


def _classes(y: np.ndarray, classes: Any, pos_label: Any, binary_1d: bool) -> np.ndarray:
    if classes is not None:
        return np.asarray(list(classes), dtype=object)
    found = pd.unique(pd.Series(y, dtype=object))
    try:
        found = np.sort(np.asarray(found))
    except TypeError:
        found = np.asarray(sorted(found, key=str), dtype=object)
    if binary_1d:
        others = [c for c in found if c != pos_label]
        negative = others[0] if others else (0 if pos_label == 1 else f"not {pos_label}")
        return np.asarray([negative, pos_label], dtype=object)
    return np.asarray(found, dtype=object)


def find_label_issues(
    y_true: Any,
    pred_probs: Any,
    *,
    ids: Any = None,
    classes: Any = None,
    pos_label: Any = 1,
) -> pd.DataFrame:
    """Candidate label errors: cases whose given label disagrees with a confident prediction.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Given labels.
    pred_probs : array-like of shape (n, n_classes) or (n,)
        Out-of-fold predicted probabilities (see :func:`out_of_fold_probabilities`);
        a 1-D array is the probability of ``pos_label`` in a binary task.
    ids : array-like of shape (n,), optional
        Case ids for the ``id`` column (positions otherwise).
    classes : sequence, optional
        The classes of the columns of ``pred_probs``; default the sorted
        distinct labels (binary 1-D: ``[other, pos_label]``).
    pos_label : default 1
        Positive class of a 1-D ``pred_probs``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LABEL_ISSUE_COLUMNS`, one row per candidate, sorted by
        ``self_confidence`` (the predicted probability of the given label),
        lowest -- most suspicious -- first.

    Notes
    -----
    Confident learning (Northcutt, Jiang & Chuang 2021): the threshold of class
    ``j`` is the mean predicted probability of ``j`` over the cases labelled
    ``j``. A case is *confidently* of class ``j`` when ``p_j`` reaches that
    threshold (the largest ``p_j`` among several); the candidates are the
    off-diagonal cells of this confident joint -- cleanlab's
    ``filter_by="confident_learning"``. They are cases to review, not proven
    errors: a weak model is confidently wrong too. The probabilities must be
    out-of-fold, or the model will have memorised the given labels.

    References
    ----------
    Northcutt CG, Jiang L, Chuang IL. Confident learning: estimating uncertainty
    in dataset labels. J Artif Intell Res 2021;70:1373-1411.

    Examples
    --------
    >>> from claimladder.labels import find_label_issues
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> p = [0.1, 0.2, 0.9, 0.8, 0.7, 0.9]
    >>> find_label_issues(y, p, ids=list("abcdef"))[["id", "given_label", "suggested_label"]]
      id  given_label  suggested_label
    0  c            0                1
    """
    owner = "find_label_issues"
    y = _as_1d(y_true, "y_true", len(np.asarray(pred_probs)), owner)
    missing = np.asarray(pd.isna(y), dtype=bool)
    if missing.any():
        raise ValueError(f"y_true passed to {owner} contains {int(missing.sum())} missing "
                         "label(s). Drop unlabelled cases first.")
    binary_1d = np.asarray(pred_probs).ndim == 1
    cls = _classes(y, classes, pos_label, binary_1d)
    p = _probabilities(pred_probs, cls.size, y.size, owner)
    index = pd.Index(cls)
    given = index.get_indexer(pd.Index(y))
    if (given < 0).any():
        unknown = sorted({str(v) for v in y[given < 0]})[:10]
        raise ValueError(f"y_true passed to {owner} holds labels {unknown} that are not among "
                         f"the classes {list(cls)}. Pass classes= in the order of the columns of "
                         "pred_probs.")
    thresholds = np.full(cls.size, np.inf)
    for j in range(cls.size):
        if (given == j).any():
            thresholds[j] = p[given == j, j].mean()
    confident = p >= thresholds[None, :] - 1e-12
    masked = np.where(confident, p, -np.inf)
    suggested = masked.argmax(axis=1)
    has = confident.any(axis=1)
    issue = has & (suggested != given)
    rows = np.flatnonzero(issue)
    case_ids = (np.arange(y.size).astype(str) if ids is None
                else _as_1d(ids, "ids", y.size, owner).astype(str))
    self_conf = p[np.arange(y.size), given]
    table = pd.DataFrame({
        "position": rows,
        "id": case_ids[rows],
        "given_label": y[rows],
        "suggested_label": cls[suggested[rows]],
        "self_confidence": self_conf[rows],
        "suggested_confidence": p[rows, suggested[rows]],
    }, columns=list(LABEL_ISSUE_COLUMNS))
    if len(table):
        for col in ("given_label", "suggested_label"):
            table[col] = pd.Series(list(table[col]), index=table.index).infer_objects()
    return table.sort_values(["self_confidence", "position"], kind="stable").reset_index(
        drop=True)


def check_label_errors(
    y_true: Any,
    pred_probs: Any,
    *,
    ids: Any = None,
    groups: Any = None,
    classes: Any = None,
    pos_label: Any = 1,
    max_fraction: float = 0.05,
    partition: str | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Finding:
    """Finding ``labels.label_errors`` (rung 0): how many labels look wrong?

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Given labels of the development data.
    pred_probs : array-like of shape (n, n_classes) or (n,)
        Out-of-fold predicted probabilities (:func:`out_of_fold_probabilities`).
    ids : array-like of shape (n,), optional
        Image ids; the examples are the most suspicious candidates.
    groups : array-like of shape (n,), optional
        Patient ids: the interval of the candidate fraction resamples patients.
    classes, pos_label
        As for :func:`find_label_issues`.
    max_fraction : float, default 0.05
        Criterion on the share of candidate label errors.
    partition : str, optional
        Recorded in ``params`` (normally the development partition).
    n_resamples, confidence_level, rng
        Bootstrap of the candidate fraction.

    Returns
    -------
    Finding
        ``warn`` when the share of candidates exceeds ``max_fraction``, ``pass``
        otherwise; the table is :func:`find_label_issues`'s.

    Notes
    -----
    Rung 0 (cohort): label quality is part of the cohort definition. The
    finding warns rather than fails because candidates are only suspects until
    a reader has reviewed them.

    Examples
    --------
    >>> from claimladder.labels import check_label_errors
    >>> f = check_label_errors([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.9, 0.8, 0.7, 0.9],
    ...                        ids=list("abcdef"), n_resamples=100, rng=0)
    >>> f.status.value, f.examples
    ('warn', ('c',))
    """
    owner = "check_label_errors"
    max_fraction = check_probability(max_fraction, param="max_fraction", owner=owner)
    opts = options("bootstrap", n_resamples, confidence_level, owner)
    table = find_label_issues(y_true, pred_probs, ids=ids, classes=classes, pos_label=pos_label)
    n = len(np.asarray(pred_probs))
    flagged = np.zeros(n)
    flagged[table["position"].to_numpy(dtype=np.intp)] = 1.0
    cl = clusters(None if groups is None else _as_1d(groups, "groups", n, owner), n, owner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        est, _ = estimate(mean_statistic(flagged, cl.codes, cl.n_clusters),
                          name="Candidate label-error fraction", opts=opts, rng=rng, n=n, cl=cl,
                          undefined_reason="there are no cases", stacklevel=4)
    criterion = f"share of candidate label errors <= {max_fraction:g}"
    params = {"max_fraction": max_fraction, "partition": partition,
              "n_candidates": len(table), "method": "confident_learning",
              "n_resamples": n_resamples, "confidence_level": confidence_level}
    examples = tuple(table["id"].astype(str).head(MAX_EXAMPLES))
    if not est.is_defined:
        return Finding(check="labels.label_errors", rung=Rung.COHORT,
                       status=Status.NOT_EVALUABLE, message="There are no cases to check.",
                       criterion=criterion, params=params)
    if est.value > max_fraction:
        status = Status.WARN
        message = (f"{len(table)} of {n} labels ({est.format()}) disagree with a confident "
                   f"out-of-fold prediction, more than {max_fraction:.0%}. Fix: have a reader "
                   "review the listed cases before training or testing on them.")
    else:
        status = Status.PASS
        message = (f"{len(table)} of {n} labels ({est.format()}) disagree with a confident "
                   f"out-of-fold prediction (at most {max_fraction:.0%} allowed).")
    return Finding(check="labels.label_errors", rung=Rung.COHORT, status=status,
                   message=message, estimate=est, criterion=criterion, table=table,
                   examples=examples, params=params)
