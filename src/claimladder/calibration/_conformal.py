"""Split conformal prediction sets (LAC, APS), marginal or Mondrian, and their coverage per subgroup."""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import (
    RngLike,
    SmallSampleWarning,
    check_option,
    check_probability,
    check_rng,
    spawn,
    table_to_dict,
)
from ..metrics._engine import Statistic
from ..metrics._inputs import as_1d, as_scores, binary_labels, check_lengths, clusters
from ..splits import FitRecord
from ._inputs import (
    check_partition,
    class_codes,
    n_patients,
    probability_matrix,
    subgroup_codes,
)
from ._resample import (
    bootstrap_options,
    long_table,
    make_parts,
    ratio,
    resample,
    sum_map,
)

__all__ = [
    "CONFORMAL_SCORES",
    "ConformalClassifier",
    "conformal_coverage_table",
    "conformal_sets",
    "fit_conformal",
]

CONFORMAL_SCORES = ("lac", "aps")
MONDRIAN = (None, "class")
#: Slack on ``(n + 1)(1 - alpha)`` before the ceiling, so that e.g. 90.00000000000001 is 90.
_CEIL_SLACK = 1e-9
_ROW_BLOCK = 2**20


def _as_matrix(y_prob: Any, owner: str) -> np.ndarray:
    """(n, K) probabilities; a 1-D positive-class probability becomes ``[1 - p, p]``."""
    arr = y_prob.to_numpy() if hasattr(y_prob, "to_numpy") else np.asarray(y_prob)
    if arr.ndim == 1:
        p = as_scores(arr, "y_prob", owner, probabilities=True)
        return np.column_stack([1 - p, p])
    return probability_matrix(arr, owner)


def conformity_scores(prob: np.ndarray, score: str, u: np.ndarray | None = None) -> np.ndarray:
    """Non-conformity of every class for every row, shape (n, K) (higher = less conforming).

    ``lac``: ``1 - p_k``. ``aps``: the probability mass of the classes more
    probable than ``k`` plus ``p_k`` (times ``u`` when randomized).
    """
    if score == "lac":
        return 1.0 - prob
    out = np.empty_like(prob)
    step = max(1, _ROW_BLOCK // prob.shape[1] ** 2)
    for a in range(0, prob.shape[0], step):
        block = prob[a:a + step]
        above = np.where(block[:, None, :] > block[:, :, None], block[:, None, :], 0.0).sum(-1)
        weight = 1.0 if u is None else u[a:a + block.shape[0], None]
        out[a:a + block.shape[0]] = above + weight * block
    return out


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest score; +inf when that exceeds n."""
    n = scores.size
    k = math.ceil((n + 1) * (1 - alpha) - _CEIL_SLACK)
    if k > n:
        return math.inf
    return float(np.partition(scores, k - 1)[k - 1])


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ConformalClassifier:
    """Split conformal thresholds fitted on a calibration partition.

    Parameters
    ----------
    score : {"lac", "aps"}
        Non-conformity score.
    alpha : float
        Target miscoverage: sets contain the true class with probability at least ``1 - alpha``.
    classes : tuple
        Class label of each probability column (binary: negative, positive).
    mondrian : {None, "class"}
        None: one threshold; "class": one per true class (class-conditional coverage).
    subgroups : tuple or None
        Labels of the group-conditional (Mondrian) taxonomy, when fitted with ``subgroup``.
    thresholds : pandas.DataFrame
        One row per cell: ``subgroup`` (None when not group-conditional), ``class``
        (None when not class-conditional), ``n`` calibration rows, ``quantile``
        (``inf`` when the cell has too few rows: every class is then included).
    randomized : bool
        APS only: whether the score is randomized (Romano et al. 2020).
    fit_record : FitRecord
        Kind ``"other"``, the partition the thresholds were fitted on.
    """

    score: str
    alpha: float
    classes: tuple[Any, ...]
    mondrian: str | None
    subgroups: tuple[Any, ...] | None
    thresholds: pd.DataFrame
    randomized: bool
    fit_record: FitRecord

    def predict_sets(self, y_prob: Any, *, subgroup: Any = None,
                     rng: RngLike = None) -> np.ndarray:
        """Prediction sets as a boolean matrix ``(n, n_classes)``.

        Parameters
        ----------
        y_prob : array-like of shape (n,) or (n, n_classes)
            Probabilities of the new cases (positive-class probability when binary).
        subgroup : array-like of shape (n,), optional
            Subgroup of each new case; required when fitted group-conditionally.
        rng : int, numpy.random.Generator or None
            Randomized APS only: the uniform draw of each row.

        Returns
        -------
        numpy.ndarray of bool
            ``sets[i, k]`` is True when class ``classes[k]`` is in row ``i``'s set.
        """
        owner = "ConformalClassifier.predict_sets"
        prob = _as_matrix(y_prob, owner)
        k = len(self.classes)
        if prob.shape[1] != k:
            raise ValueError(f"y_prob has {prob.shape[1]} columns but the classifier was fitted "
                             f"on {k} classes {list(self.classes)}.")
        u = check_rng(rng).uniform(size=prob.shape[0]) if self.randomized else None
        scores = conformity_scores(prob, self.score, u)
        q = self._threshold_matrix(prob.shape[0], subgroup, owner)
        return scores <= q

    def _threshold_matrix(self, n: int, subgroup: Any, owner: str) -> np.ndarray:
        table = self.thresholds
        k = len(self.classes)
        if self.subgroups is None:
            if subgroup is not None:
                raise ValueError(f"{owner}: the classifier was fitted without subgroups; do not "
                                 "pass subgroup (or refit with subgroup=).")
            if self.mondrian == "class":
                return np.broadcast_to(table["quantile"].to_numpy(dtype=float), (n, k))
            return np.full((n, k), float(table["quantile"].iloc[0]))
        if subgroup is None:
            raise ValueError(f"{owner}: the classifier was fitted group-conditionally; pass "
                             "subgroup= the group of each new case.")
        arr = as_1d(subgroup, "subgroup", owner)
        check_lengths(owner, y_prob=np.empty(n), subgroup=arr)
        index = {g: i for i, g in enumerate(self.subgroups)}
        codes = np.array([index.get(v, -1) for v in arr.tolist()], dtype=np.intp)
        if (codes < 0).any():
            unseen = sorted({str(v) for v in arr[codes < 0].tolist()})[:5]
            raise ValueError(
                f"{owner}: subgroup(s) {unseen} had no calibration data, so no threshold was "
                f"fitted for them (fitted: {list(self.subgroups)[:10]}). Calibrate on data from "
                "those groups, or use a marginal (non-group-conditional) classifier."
            )
        q = table["quantile"].to_numpy(dtype=float)
        if self.mondrian == "class":
            return q.reshape(len(self.subgroups), k)[codes]
        return np.repeat(q[codes][:, None], k, axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"score": self.score, "alpha": self.alpha, "classes": list(self.classes),
                "mondrian": self.mondrian, "randomized": self.randomized,
                "subgroups": None if self.subgroups is None else list(self.subgroups),
                "thresholds": table_to_dict(self.thresholds),
                "fit_record": self.fit_record.to_dict()}


def _labels(y_true: Any, prob_ndim: int, n_classes: int, classes: Any, pos_label: Any,
            owner: str) -> tuple[np.ndarray, tuple]:
    if prob_ndim == 1:
        y = binary_labels(y_true, pos_label, owner)
        present = pd.unique(as_1d(y_true, "y_true", owner))
        negative = next((v for v in present.tolist() if v != pos_label), None)
        return y.astype(np.intp), (negative, pos_label)
    return class_codes(y_true, classes, n_classes, owner)


def fit_conformal(
    y_true: Any,
    y_prob: Any,
    *,
    alpha: float = 0.1,
    score: Literal["lac", "aps"] = "lac",
    mondrian: Literal["class"] | None = None,
    subgroup: Any = None,
    randomized: bool = False,
    partition: str,
    sealed_partitions: Collection[str] = (),
    force: bool = False,
    classes: Any = None,
    pos_label: Any = 1,
    groups: Any = None,
    rng: RngLike = None,
) -> ConformalClassifier:
    """Fit split conformal thresholds on calibration data.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels of the calibration cases.
    y_prob : array-like of shape (n,) or (n, n_classes)
        Their predicted probabilities (positive-class probability when binary).
    alpha : float, default 0.1
        Target miscoverage in (0, 1).
    score : {"lac", "aps"}, default "lac"
        ``lac`` (least ambiguous set-valued classifier; Sadinle et al. 2019):
        ``1 - p_y``, the smallest sets on average. ``aps`` (adaptive prediction
        sets; Romano et al. 2020): the mass of the classes at least as probable
        as ``y``, sets that grow with the model's uncertainty.
    mondrian : {None, "class"}, default None
        ``"class"``: a threshold per true class, so coverage holds within each
        class (Vovk et al. 2005; Sadinle et al. 2019).
    subgroup : array-like of shape (n,), optional
        Group (site, sex, scanner...) of each calibration case: a threshold per
        group (and per class with ``mondrian="class"``), so coverage holds
        within every group. New cases must then give their group.
    randomized : bool, default False
        APS only: randomize the score (``+ U p_y``), which makes coverage exact
        rather than conservative.
    partition : str
        Name of the partition the calibration data come from.
    sealed_partitions : collection of str, optional
        Names of the sealed partitions.
    force : bool, default False
        Fit even on a test or sealed partition (with a warning; recorded).
    classes : sequence, optional
        Class label of each column of a probability matrix (default ``0..K-1``).
    pos_label : default 1
        Positive class of binary labels.
    groups : array-like of shape (n,), optional
        Patient ids, only to count patients in the fit record.
    rng : int, numpy.random.Generator or None
        Randomized APS only.

    Returns
    -------
    ConformalClassifier
        Thresholds per cell and the fit record.

    Raises
    ------
    ValueError
        A test or sealed ``partition`` (unless ``force``), invalid data or options.

    Warns
    -----
    SmallSampleWarning
        When a cell has fewer than ``1/alpha - 1`` calibration rows: its
        threshold is infinite and its sets contain every class.

    Notes
    -----
    The threshold of a cell with ``n`` calibration scores is the
    ``ceil((n + 1)(1 - alpha))``-th smallest score, and a class enters the set
    when its score is at most the threshold. Under exchangeability of
    calibration and test cases (within the cell), coverage is at least
    ``1 - alpha`` and, for continuous scores, at most ``1 - alpha + 1/(n + 1)``
    (Vovk et al. 2005; Angelopoulos & Bates 2023, section 1). This is the
    quantile of MAPIE's ``SplitConformalClassifier`` and equals crepes'
    non-smoothed p-value rule except when ``(n + 1)(1 - alpha)`` is an integer,
    where crepes also includes scores tied at the next order statistic. Sets can
    be empty with ``lac``.

    References
    ----------
    Vovk V, Gammerman A, Shafer G. Algorithmic Learning in a Random World. Springer; 2005.
    Sadinle M, Lei J, Wasserman L. Least ambiguous set-valued classifiers with bounded
    error levels. J Am Stat Assoc 2019;114:223-234.
    Romano Y, Sesia M, Candes E. Classification with valid and adaptive coverage.
    NeurIPS 2020.
    Angelopoulos AN, Bates S. Conformal prediction: a gentle introduction. Found Trends
    Mach Learn 2023;16:494-591.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import fit_conformal
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=500)
    >>> y = rng.uniform(size=500) < p
    >>> cp = fit_conformal(y[:250], p[:250], alpha=0.2, partition="calibration")
    >>> sets = cp.predict_sets(p[250:])
    >>> round(float(sets[np.arange(250), y[250:].astype(int)].mean()), 2)
    0.74
    """
    owner = "fit_conformal"
    alpha = check_probability(alpha, param="alpha", owner=owner)
    score = check_option(score, CONFORMAL_SCORES, param="score", owner=owner)
    mondrian = check_option(mondrian, MONDRIAN, param="mondrian", owner=owner)
    if randomized and score != "aps":
        raise ValueError("randomized=True applies to score='aps' only.")
    forced = check_partition(partition, sealed_partitions=sealed_partitions, force=force,
                             owner=owner)
    raw = y_prob.to_numpy() if hasattr(y_prob, "to_numpy") else np.asarray(y_prob)
    prob = _as_matrix(raw, owner)
    y, labels = _labels(y_true, raw.ndim, prob.shape[1], classes, pos_label, owner)
    n = check_lengths(owner, y_true=y, y_prob=prob)
    if n == 0:
        raise ValueError(f"{owner} needs at least one calibration row.")
    c = clusters(groups, n, owner)
    u = check_rng(rng).uniform(size=n) if randomized else None
    true_scores = conformity_scores(prob, score, u)[np.arange(n), y]
    sub, sub_labels = (None, None) if subgroup is None else subgroup_codes(subgroup, n, owner)
    rows = []
    small = []
    group_range = range(len(sub_labels)) if sub_labels is not None else [None]
    class_range = range(prob.shape[1]) if mondrian == "class" else [None]
    for gi in group_range:
        for ci in class_range:
            mask = np.ones(n, dtype=bool)
            if gi is not None:
                mask &= sub == gi
            if ci is not None:
                mask &= y == ci
            cell = true_scores[mask]
            q = conformal_quantile(cell, alpha)
            glabel = None if gi is None else sub_labels[gi]
            clabel = None if ci is None else labels[ci]
            if math.isinf(q):
                small.append(f"{glabel!r}/{clabel!r} (n={cell.size})")
            rows.append({"subgroup": glabel, "class": clabel, "n": int(cell.size),
                         "quantile": q})
    if small:
        need = math.ceil(1 / alpha - 1 - _CEIL_SLACK)
        warnings.warn(
            f"fit_conformal: {len(small)} cell(s) (subgroup/class) have fewer than {need} "
            f"calibration rows, too few for alpha={alpha}: {', '.join(small[:10])}. Their "
            "threshold is infinite, so their sets contain every class. Use a larger calibration "
            "set, a coarser taxonomy, or a larger alpha.", SmallSampleWarning, stacklevel=2)
    thresholds = pd.DataFrame(rows, columns=["subgroup", "class", "n", "quantile"])
    params = {"score": score, "alpha": alpha, "mondrian": mondrian, "randomized": randomized,
              "n_cells": len(rows)}
    if len(rows) == 1:
        params["quantile"] = rows[0]["quantile"] if math.isfinite(rows[0]["quantile"]) else None
    if forced:
        params["forced"] = True
    record = FitRecord(kind="other", partition=partition, n_images=n,
                       n_patients=n_patients(c),
                       description=f"split conformal thresholds ({score}, alpha={alpha})",
                       params=params)
    return ConformalClassifier(score=score, alpha=alpha, classes=tuple(labels),
                               mondrian=mondrian,
                               subgroups=None if sub_labels is None else tuple(sub_labels),
                               thresholds=thresholds, randomized=randomized, fit_record=record)


def conformal_sets(
    y_true: Any,
    y_prob: Any,
    y_prob_new: Any,
    *,
    alpha: float = 0.1,
    score: Literal["lac", "aps"] = "lac",
    mondrian: Literal["class"] | None = None,
    subgroup: Any = None,
    subgroup_new: Any = None,
    partition: str,
    sealed_partitions: Collection[str] = (),
    force: bool = False,
    classes: Any = None,
    pos_label: Any = 1,
    randomized: bool = False,
    rng: RngLike = None,
) -> np.ndarray:
    """Fit on calibration data and return the prediction sets of new cases in one call.

    Parameters
    ----------
    y_true, y_prob : array-like
        Calibration labels and probabilities (see :func:`fit_conformal`).
    y_prob_new : array-like of shape (m,) or (m, n_classes)
        Probabilities of the new (e.g. test) cases.
    alpha, score, mondrian, subgroup, partition, sealed_partitions, force, classes, pos_label
        As for :func:`fit_conformal`.
    subgroup_new : array-like of shape (m,), optional
        Groups of the new cases (required with ``subgroup``).
    randomized : bool, default False
        Randomized APS.
    rng : int, numpy.random.Generator or None
        Randomized APS only; split into one child for the fit and one for the sets.

    Returns
    -------
    numpy.ndarray of bool, shape (m, n_classes)
        Prediction sets of the new cases.

    Examples
    --------
    >>> from claimladder.calibration import conformal_sets
    >>> sets = conformal_sets([0, 1, 1, 0, 1] * 10, [0.2, 0.7, 0.9, 0.4, 0.6] * 10,
    ...                       [0.05, 0.5, 0.95], alpha=0.2, partition="calibration")
    >>> sets.astype(int).tolist()
    [[1, 0], [0, 0], [0, 1]]
    """
    fit_rng, set_rng = spawn(rng, 2)
    model = fit_conformal(y_true, y_prob, alpha=alpha, score=score, mondrian=mondrian,
                          subgroup=subgroup, randomized=randomized, partition=partition,
                          sealed_partitions=sealed_partitions, force=force, classes=classes,
                          pos_label=pos_label, rng=fit_rng)
    return model.predict_sets(y_prob_new, subgroup=subgroup_new, rng=set_rng)


COVERAGE_OUTPUTS = ("coverage", "mean_set_size", "empty_set_rate")


def coverage_statistic(covered: np.ndarray, size: np.ndarray, codes: np.ndarray,
                       n_clusters: int) -> Statistic:
    n = covered.size
    feature = np.repeat(np.arange(4, dtype=np.intp), n)
    values = np.concatenate([np.ones(n), covered.astype(np.float64), size.astype(np.float64),
                             (size == 0).astype(np.float64)])
    mt = sum_map(feature, np.tile(codes, 4), values, 4, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        s = np.asarray(sums, dtype=np.float64)
        return np.column_stack([ratio(s[1], s[0]), ratio(s[2], s[0]), ratio(s[3], s[0])])

    return Statistic(mt=mt, reduce=reduce, n_outputs=3, integer=True)


def conformal_coverage_table(
    sets: Any,
    y_true: Any,
    *,
    classes: Any = None,
    subgroup: Any = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    include_overall: bool = True,
) -> pd.DataFrame:
    """Empirical coverage, mean set size and empty-set rate per subgroup, with intervals.

    Parameters
    ----------
    sets : array-like of bool, shape (n, n_classes)
        Prediction sets (from :meth:`ConformalClassifier.predict_sets`).
    y_true : array-like of shape (n,)
        True labels.
    classes : sequence, optional
        Class label of each column of ``sets`` (pass ``model.classes``; default ``0..K-1``).
    subgroup : array-like of shape (n,), optional
        Group (site, sex, partition...) of each row.
    groups : array-like of shape (n,), optional
        Patient ids: the bootstrap resamples patients.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Interval method.
    n_resamples, confidence_level, rng
        Bootstrap options (SPEC 7).
    include_overall : bool, default True
        With ``subgroup``, also all rows (group ``"overall"``).

    Returns
    -------
    pandas.DataFrame
        Long table (``group, metric, estimate, ci_low, ci_high, confidence_level,
        method, n, n_clusters, n_pos, n_undefined``) with metrics ``coverage``,
        ``mean_set_size`` and ``empty_set_rate``.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import conformal_coverage_table
    >>> sets = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], dtype=bool)
    >>> t = conformal_coverage_table(sets, [0, 1, 0, 1], n_resamples=100, rng=0)
    >>> t[["metric", "estimate"]].to_dict("list")
    {'metric': ['coverage', 'mean_set_size', 'empty_set_rate'], 'estimate': [0.75, 1.25, 0.0]}
    """
    owner = "conformal_coverage_table"
    arr = np.asarray(sets)
    if arr.ndim != 2 or arr.dtype != bool:
        raise ValueError(f"sets passed to {owner} must be a boolean matrix (n, n_classes), as "
                         f"returned by predict_sets. Got dtype {arr.dtype}, shape {arr.shape}.")
    opts = bootstrap_options(method, n_resamples, confidence_level, owner)
    y, _ = class_codes(y_true, classes, arr.shape[1], owner)
    n = check_lengths(owner, sets=arr, y_true=y)
    c = clusters(groups, n, owner)
    sub, labels = (None, []) if subgroup is None else subgroup_codes(subgroup, n, owner)
    parts = make_parts(c, None, sub, labels, include_overall)
    covered = arr[np.arange(n), y]
    size = arr.sum(axis=1)

    def build(part):
        return coverage_statistic(covered[part.rows], size[part.rows], part.codes, c.n_clusters)

    result = resample(parts, build, outputs=COVERAGE_OUTPUTS, opts=opts, rng=rng,
                      title="Conformal coverage", stacklevel=3)
    return long_table(parts, result, COVERAGE_OUTPUTS)
