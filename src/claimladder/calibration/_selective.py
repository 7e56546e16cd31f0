"""Selective prediction: risk-coverage curves, AURC, and abstention ("I don't know") rules.

The model answers a case when its confidence reaches a threshold and
abstains otherwise. Confidence is the largest class probability; for a binary
model with decision threshold ``t`` it is ``0.5 + 0.5 * m`` with ``m`` the
margin normalised to [0, 1] (``(p - t) / (1 - t)`` above ``t``, ``(t - p) / t``
below), which equals ``max(p, 1 - p)`` when ``t = 0.5``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import beta as beta_dist

from .._core import (
    ConfidenceInterval,
    Estimate,
    RngLike,
    SmallSampleWarning,
    check_option,
    check_probability,
)
from ..metrics._engine import Statistic
from ..metrics._estimate import check_threshold
from ..metrics._inputs import as_scores, binary_labels, check_lengths, clusters
from ..splits import FitRecord
from ._inputs import (
    check_partition,
    class_codes,
    n_patients,
    probability_matrix,
    subgroup_codes,
)
from ._resample import (
    Part,
    bootstrap_options,
    long_table,
    make_parts,
    ratio,
    resample,
    sum_map,
)

__all__ = [
    "AbstentionEvaluation",
    "AbstentionRule",
    "abstention_rule",
    "aurc",
    "evaluate_abstention",
    "risk_coverage_curve",
]


@dataclass(frozen=True, slots=True)
class Decisions:
    """Per-row prediction, confidence, correctness (and labels for binary sensitivity)."""

    confidence: np.ndarray
    error: np.ndarray  # bool
    positive: np.ndarray | None  # bool, binary only
    predicted_positive: np.ndarray | None


def decisions(y_true: Any, y_prob: Any, *, threshold: float, classes: Any, pos_label: Any,
              owner: str) -> Decisions:
    """Predicted class, confidence and error of every row (binary or multiclass)."""
    arr = y_prob.to_numpy() if hasattr(y_prob, "to_numpy") else np.asarray(y_prob)
    if arr.ndim == 2:
        prob = probability_matrix(arr, owner)
        y, _ = class_codes(y_true, classes, prob.shape[1], owner)
        check_lengths(owner, y_true=y, y_prob=prob)
        pred = prob.argmax(axis=1)
        conf = prob[np.arange(prob.shape[0]), pred]
        return Decisions(confidence=conf, error=pred != y, positive=None,
                         predicted_positive=None)
    t = check_threshold(threshold, owner)
    if not 0 < t < 1:
        raise ValueError(f"The 'threshold' parameter of {owner} must be in (0, 1). Got {t}.")
    y = binary_labels(y_true, pos_label, owner)
    p = as_scores(arr, "y_prob", owner, probabilities=True)
    check_lengths(owner, y_true=y, y_prob=p)
    pred = p >= t
    margin = np.where(pred, (p - t) / (1 - t), (t - p) / t)
    return Decisions(confidence=0.5 + 0.5 * margin, error=pred != y, positive=y,
                     predicted_positive=pred)


def _levels(confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct confidences, descending, and each row's level index."""
    values, inverse = np.unique(-confidence, return_inverse=True)
    return -values, inverse.astype(np.intp)


def risk_coverage_curve(
    y_true: Any,
    y_prob: Any,
    *,
    threshold: float = 0.5,
    classes: Any = None,
    pos_label: Any = 1,
) -> pd.DataFrame:
    """Risk (error rate among answered cases) against coverage (fraction answered).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_prob : array-like of shape (n,) or (n, n_classes)
        Positive-class probabilities (binary) or class probability matrices.
    threshold : float, default 0.5
        Binary decision threshold (see the module docstring for the confidence).
    classes : sequence, optional
        Class label of each column of a probability matrix.
    pos_label : default 1
        Positive class of binary labels.

    Returns
    -------
    pandas.DataFrame
        One row per distinct confidence, most confident first: ``confidence_threshold``
        (answer cases with confidence >= it), ``coverage``, ``risk``,
        ``n_answered``, ``n_errors``.

    References
    ----------
    El-Yaniv R, Wiener Y. On the foundations of noise-free selective classification.
    J Mach Learn Res 2010;11:1605-1641.

    Examples
    --------
    >>> from claimladder.calibration import risk_coverage_curve
    >>> curve = risk_coverage_curve([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6])
    >>> curve[["coverage", "risk"]].to_dict("list")
    {'coverage': [0.25, 0.5, 1.0], 'risk': [0.0, 0.0, 0.5]}
    """
    d = decisions(y_true, y_prob, threshold=threshold, classes=classes, pos_label=pos_label,
                  owner="risk_coverage_curve")
    values, level = _levels(d.confidence)
    count = np.cumsum(np.bincount(level, minlength=values.size))
    errors = np.cumsum(np.bincount(level, weights=d.error, minlength=values.size))
    n = d.confidence.size
    return pd.DataFrame({"confidence_threshold": values,
                         "coverage": count / n if n else count.astype(float),
                         "risk": errors / np.maximum(count, 1), "n_answered": count,
                         "n_errors": errors.astype(np.int64)})


def aurc_statistic(confidence: np.ndarray, error: np.ndarray, codes: np.ndarray,
                   n_clusters: int) -> Statistic:
    """Area under the risk-coverage curve; features are (count, errors) per confidence level."""
    values, level = _levels(confidence)
    m = values.size
    feature = np.concatenate([level, m + level])
    vals = np.concatenate([np.ones(level.size), error.astype(np.float64)])
    mt = sum_map(feature, np.concatenate([codes, codes]), vals, 2 * m, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        s = np.asarray(sums, dtype=np.float64)
        count, errors = np.cumsum(s[:m], axis=0), np.cumsum(s[m:], axis=0)
        risk = np.where(count > 0, errors / np.where(count > 0, count, 1), 0.0)
        total = count[-1]
        # Step integral of risk over coverage: level j adds risk_j * (its share of the weight).
        area = (risk * s[:m]).sum(axis=0)
        return ratio(area, total)[:, None]

    return Statistic(mt=mt, reduce=reduce, n_outputs=1, integer=True)


def aurc(
    y_true: Any,
    y_prob: Any,
    *,
    threshold: float = 0.5,
    classes: Any = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Area under the risk-coverage curve (Geifman et al. 2019; lower is better).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_prob : array-like of shape (n,) or (n, n_classes)
        Probabilities (binary: positive class).
    threshold : float, default 0.5
        Binary decision threshold.
    classes : sequence, optional
        Class label of each column of a probability matrix.
    groups : array-like of shape (n,), optional
        Patient ids (cluster bootstrap).
    method : {"bootstrap", "bca"}, default "bootstrap"
        Interval method.
    n_resamples, confidence_level, rng
        Bootstrap options (SPEC 7).
    pos_label : default 1
        Positive class of binary labels.

    Returns
    -------
    Estimate
        AURC with its (cluster) bootstrap interval.

    Notes
    -----
    ``AURC = sum_j risk_j * (coverage_j - coverage_{j-1})`` over the distinct
    confidences ``j`` (most confident first): with distinct confidences it is
    the mean over ``k = 1..n`` of the error rate of the ``k`` most confident
    cases, and ties are treated as one step rather than ordered arbitrarily.
    A model whose confidence is uninformative has AURC equal to its error rate.

    References
    ----------
    Geifman Y, Uziel G, El-Yaniv R. Bias-reduced uncertainty estimation for deep neural
    classifiers. ICLR 2019.

    Examples
    --------
    >>> from claimladder.calibration import aurc
    >>> est = aurc([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6], n_resamples=100, rng=0)
    >>> round(est.value, 3)
    0.25
    """
    owner = "aurc"
    opts = bootstrap_options(method, n_resamples, confidence_level, owner)
    d = decisions(y_true, y_prob, threshold=threshold, classes=classes, pos_label=pos_label,
                  owner=owner)
    c = clusters(groups, d.confidence.size, owner)
    parts = make_parts(c, None, None, [], True)

    def build(part: Part) -> Statistic:
        return aurc_statistic(d.confidence[part.rows], d.error[part.rows], part.codes,
                              c.n_clusters)

    return resample(parts, build, outputs=("aurc",), opts=opts, rng=rng, title="AURC",
                    stacklevel=3).estimates[0][0]


@dataclass(frozen=True, slots=True, kw_only=True)
class AbstentionRule:
    """Answer when confidence >= ``confidence_threshold``; otherwise say "I don't know".

    Parameters
    ----------
    confidence_threshold : float
        Chosen on calibration data (``inf``: the target was not reachable, the
        model always abstains).
    threshold : float
        Binary decision threshold used for predictions and confidence.
    target : str
        ``"error"`` or ``"sensitivity"``.
    target_value : float
        The target (maximum error rate, or minimum sensitivity, among answered cases).
    bound : str
        ``"empirical"`` or ``"clopper-pearson"`` (a one-sided bound at ``confidence_level``).
    confidence_level : float
    calibration_coverage : float
        Fraction answered on the calibration data.
    calibration_value : float
        Error rate (or sensitivity) among answered calibration cases.
    n_classes : int
    fit_record : FitRecord
        Kind ``"threshold"``, the partition it was chosen on.
    """

    confidence_threshold: float
    threshold: float
    target: str
    target_value: float
    bound: str
    confidence_level: float
    calibration_coverage: float
    calibration_value: float
    n_classes: int
    fit_record: FitRecord
    classes: tuple[Any, ...] | None = field(default=None)

    def answers(self, y_prob: Any) -> np.ndarray:
        """Boolean mask of the cases the model answers (does not abstain on)."""
        arr = y_prob.to_numpy() if hasattr(y_prob, "to_numpy") else np.asarray(y_prob)
        if arr.ndim == 2:
            prob = probability_matrix(arr, "AbstentionRule.answers")
            conf = prob.max(axis=1)
        else:
            p = as_scores(arr, "y_prob", "AbstentionRule.answers", probabilities=True)
            t = self.threshold
            conf = 0.5 + 0.5 * np.where(p >= t, (p - t) / (1 - t), (t - p) / t)
        return conf >= self.confidence_threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)
        return {"confidence_threshold": num(self.confidence_threshold),
                "threshold": self.threshold, "target": self.target,
                "target_value": self.target_value, "bound": self.bound,
                "confidence_level": self.confidence_level,
                "calibration_coverage": self.calibration_coverage,
                "calibration_value": num(self.calibration_value), "n_classes": self.n_classes,
                "fit_record": self.fit_record.to_dict()}


def _cp_upper(x: np.ndarray, n: np.ndarray, level: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(x >= n, 1.0, beta_dist.ppf(level, x + 1, np.maximum(n - x, 1e-300)))


def _cp_lower(x: np.ndarray, n: np.ndarray, level: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(x <= 0, 0.0, beta_dist.ppf(1 - level, np.maximum(x, 1e-300), n - x + 1))


def abstention_rule(
    y_true: Any,
    y_prob: Any,
    *,
    target_error: float | None = None,
    target_sensitivity: float | None = None,
    partition: str,
    sealed_partitions: Collection[str] = (),
    force: bool = False,
    threshold: float = 0.5,
    bound: Literal["empirical", "clopper-pearson"] = "empirical",
    confidence_level: float = 0.95,
    classes: Any = None,
    pos_label: Any = 1,
    groups: Any = None,
) -> AbstentionRule:
    """Choose, on calibration data, the confidence below which the model abstains.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Calibration labels.
    y_prob : array-like of shape (n,) or (n, n_classes)
        Calibration probabilities.
    target_error : float, optional
        Largest acceptable error rate among answered cases.
    target_sensitivity : float, optional
        Binary only: smallest acceptable sensitivity among answered positive cases.
        Exactly one of the two targets must be given.
    partition : str
        Name of the partition the data come from (e.g. ``"calibration"``).
    sealed_partitions : collection of str, optional
        Names of the sealed partitions.
    force : bool, default False
        Choose even on a test or sealed partition (with a warning; recorded).
    threshold : float, default 0.5
        Binary decision threshold.
    bound : {"empirical", "clopper-pearson"}, default "empirical"
        Hold the target on the calibration estimate itself, or on its one-sided
        Clopper-Pearson bound at ``confidence_level`` (a conservative rule that
        keeps the target with that confidence for this one threshold).
    confidence_level : float, default 0.95
        Level of the Clopper-Pearson bound.
    classes : sequence, optional
        Class label of each column of a probability matrix.
    pos_label : default 1
        Positive class of binary labels.
    groups : array-like of shape (n,), optional
        Patient ids, only to count patients in the fit record.

    Returns
    -------
    AbstentionRule
        The largest-coverage threshold meeting the target (``inf`` with a
        :class:`SmallSampleWarning` when none does).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import abstention_rule
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = rng.uniform(size=1000) < p
    >>> rule = abstention_rule(y, p, target_error=0.1, partition="calibration")
    >>> round(rule.confidence_threshold, 3), round(rule.calibration_coverage, 2)
    (0.789, 0.42)
    """
    owner = "abstention_rule"
    if (target_error is None) == (target_sensitivity is None):
        raise ValueError(f"{owner} needs exactly one of target_error or target_sensitivity.")
    target = "error" if target_error is not None else "sensitivity"
    value = target_error if target_error is not None else target_sensitivity
    value = check_probability(value, param=f"target_{target}", owner=owner)
    bound = check_option(bound, ("empirical", "clopper-pearson"), param="bound", owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    forced = check_partition(partition, sealed_partitions=sealed_partitions, force=force,
                             owner=owner)
    arr = y_prob.to_numpy() if hasattr(y_prob, "to_numpy") else np.asarray(y_prob)
    d = decisions(y_true, arr, threshold=threshold, classes=classes, pos_label=pos_label,
                  owner=owner)
    n = d.confidence.size
    if n == 0:
        raise ValueError(f"{owner} needs at least one calibration row.")
    if target == "sensitivity" and d.positive is None:
        raise ValueError("target_sensitivity applies to binary models; pass target_error for "
                         "a probability matrix.")
    values, level = _levels(d.confidence)
    answered = np.cumsum(np.bincount(level, minlength=values.size)).astype(np.float64)
    if target == "error":
        successes = np.cumsum(np.bincount(level, weights=d.error, minlength=values.size))
        trials = answered
        est = successes / trials
        check = est if bound == "empirical" else _cp_upper(successes, trials, confidence_level)
        ok = check <= value
    else:
        pos = d.positive
        trials = np.cumsum(np.bincount(level, weights=pos, minlength=values.size))
        successes = np.cumsum(np.bincount(level, weights=pos & d.predicted_positive,
                                          minlength=values.size))
        with np.errstate(divide="ignore", invalid="ignore"):
            est = np.where(trials > 0, successes / np.where(trials > 0, trials, 1), np.nan)
        check = est if bound == "empirical" else _cp_lower(successes, trials, confidence_level)
        ok = (trials > 0) & (check >= value)
    if ok.any():
        j = int(np.flatnonzero(ok)[-1])
        conf_threshold, coverage, achieved = float(values[j]), float(answered[j] / n), \
            float(est[j])
    else:
        warnings.warn(
            f"{owner}: no confidence threshold reaches {target} "
            f"{'<=' if target == 'error' else '>='} {value} on partition {partition!r} "
            f"({bound} bound), so the rule always abstains. Relax the target or use more "
            "calibration data.", SmallSampleWarning, stacklevel=2)
        conf_threshold, coverage, achieved = math.inf, 0.0, math.nan
    params = {"confidence_threshold": conf_threshold if math.isfinite(conf_threshold) else None,
              "target": target, "target_value": value, "bound": bound,
              "decision_threshold": float(threshold)}
    if forced:
        params["forced"] = True
    record = FitRecord(kind="threshold", partition=partition, n_images=n,
                       n_patients=n_patients(clusters(groups, n, owner)),
                       description=f"abstention threshold ({target} target {value})",
                       params=params)
    n_classes = arr.shape[1] if arr.ndim == 2 else 2
    return AbstentionRule(confidence_threshold=conf_threshold, threshold=float(threshold),
                          target=target, target_value=value, bound=bound,
                          confidence_level=confidence_level, calibration_coverage=coverage,
                          calibration_value=achieved, n_classes=n_classes, fit_record=record,
                          classes=None if classes is None else tuple(classes))


ABSTENTION_OUTPUTS = ("error", "coverage", "abstention_rate", "sensitivity", "specificity")


def abstention_statistic(answered: np.ndarray, error: np.ndarray, positive: np.ndarray | None,
                         predicted: np.ndarray | None, codes: np.ndarray,
                         n_clusters: int) -> Statistic:
    n = answered.size
    pos = np.zeros(n, bool) if positive is None else positive
    pred = np.zeros(n, bool) if predicted is None else predicted
    columns = [np.ones(n), answered, answered & error, answered & pos, answered & pos & pred,
               answered & ~pos, answered & ~pos & ~pred]
    feature = np.repeat(np.arange(len(columns), dtype=np.intp), n)
    values = np.concatenate([np.asarray(c, dtype=np.float64) for c in columns])
    mt = sum_map(feature, np.tile(codes, len(columns)), values, len(columns), n_clusters)
    binary = positive is not None

    def reduce(sums: np.ndarray) -> np.ndarray:
        s = np.asarray(sums, dtype=np.float64)
        coverage = ratio(s[1], s[0])
        nan = np.full(s.shape[1], np.nan)
        return np.column_stack([ratio(s[2], s[1]), coverage, 1 - coverage,
                                ratio(s[4], s[3]) if binary else nan,
                                ratio(s[6], s[5]) if binary else nan])

    return Statistic(mt=mt, reduce=reduce, n_outputs=len(ABSTENTION_OUTPUTS), integer=True)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AbstentionEvaluation:
    """Realized behaviour of an abstention rule on new data.

    Parameters
    ----------
    error : Estimate
        Error rate among answered cases.
    coverage : Estimate
        Fraction of cases answered.
    abstention_rate : Estimate
        ``1 - coverage``.
    sensitivity : Estimate
        Binary: sensitivity among answered positive cases (NaN for multiclass).
    specificity : Estimate
        Binary: specificity among answered negative cases (NaN for multiclass).
    table : pandas.DataFrame
        Long table of every metric per subgroup (and ``"overall"``).
    """

    error: Estimate
    coverage: Estimate
    abstention_rate: Estimate
    sensitivity: Estimate
    specificity: Estimate
    table: pd.DataFrame = field(repr=False)


def evaluate_abstention(
    rule: AbstentionRule,
    y_true: Any,
    y_prob: Any,
    *,
    subgroup: Any = None,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    classes: Any = None,
    pos_label: Any = 1,
) -> AbstentionEvaluation:
    """Error among answered cases, coverage and abstention rate of a rule on new data.

    Parameters
    ----------
    rule : AbstentionRule
        From :func:`abstention_rule` (fitted on calibration data).
    y_true : array-like of shape (n,)
        Labels of the evaluation data (e.g. a test partition or one site).
    y_prob : array-like of shape (n,) or (n, n_classes)
        Their probabilities.
    subgroup : array-like of shape (n,), optional
        Group of each row: the table then has one block per group, plus ``"overall"``.
    groups : array-like of shape (n,), optional
        Patient ids (cluster bootstrap).
    method : {"bootstrap", "bca"}, default "bootstrap"
        Interval method.
    n_resamples, confidence_level, rng
        Bootstrap options (SPEC 7).
    classes : sequence, optional
        Class label of each column of a probability matrix (default: the rule's).
    pos_label : default 1
        Positive class of binary labels.

    Returns
    -------
    AbstentionEvaluation
        Overall estimates and the long table. Error is NaN (with an
        :class:`~claimladder._core.UndefinedMetricWarning`) when nothing is answered.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import abstention_rule, evaluate_abstention
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = rng.uniform(size=2000) < p
    >>> rule = abstention_rule(y[:1000], p[:1000], target_error=0.1, partition="calibration")
    >>> res = evaluate_abstention(rule, y[1000:], p[1000:], n_resamples=200, rng=0)
    >>> round(res.error.value, 3), round(res.coverage.value, 3)
    (0.088, 0.42)
    """
    owner = "evaluate_abstention"
    opts = bootstrap_options(method, n_resamples, confidence_level, owner)
    d = decisions(y_true, y_prob, threshold=rule.threshold,
                  classes=rule.classes if classes is None else classes, pos_label=pos_label,
                  owner=owner)
    n = d.confidence.size
    c = clusters(groups, n, owner)
    sub, labels = (None, []) if subgroup is None else subgroup_codes(subgroup, n, owner)
    parts = make_parts(c, d.positive, sub, labels, True)
    answered = d.confidence >= rule.confidence_threshold

    outputs = ABSTENTION_OUTPUTS if d.positive is not None else ABSTENTION_OUTPUTS[:3]

    def build_outputs(part: Part) -> Statistic:
        r = part.rows
        stat = abstention_statistic(
            answered[r], d.error[r], None if d.positive is None else d.positive[r],
            None if d.predicted_positive is None else d.predicted_positive[r], part.codes,
            c.n_clusters)
        if d.positive is not None:
            return stat
        return Statistic(mt=stat.mt, reduce=lambda s: stat.reduce(s)[:, :3], n_outputs=3,
                         integer=True)

    def reason(part: Part, output: int) -> str:
        return {"error": "no case was answered",
                "sensitivity": "no positive case was answered",
                "specificity": "no negative case was answered"}.get(outputs[output],
                                                                    "undefined")

    result = resample(parts, build_outputs, outputs=outputs, opts=opts, rng=rng,
                      title="Abstention", undefined_reason=reason, stacklevel=3)
    overall = result.estimates[-1]
    nan = Estimate(value=math.nan, ci=ConfidenceInterval(low=math.nan, high=math.nan),
                   confidence_level=opts.confidence_level, method=overall[0].method,
                   n=overall[0].n, n_clusters=overall[0].n_clusters, n_pos=None)
    sens = overall[3] if len(outputs) > 3 else nan
    spec = overall[4] if len(outputs) > 3 else nan
    return AbstentionEvaluation(error=overall[0], coverage=overall[1],
                                abstention_rate=overall[2], sensitivity=sens,
                                specificity=spec, table=long_table(parts, result, outputs))
