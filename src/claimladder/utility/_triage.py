"""Triage simulation: deprioritise cases below a threshold chosen for a target sensitivity."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    Finding,
    RngLike,
    Rung,
    SmallSampleWarning,
    Status,
    UndefinedMetricWarning,
    check_positive_int,
    check_probability,
)
from ..metrics import Threshold, choose_threshold
from ..metrics._engine import Statistic, bootstrap, bootstrap_interval, method_label
from ..metrics._inputs import as_scores, binary_labels, check_lengths, clusters
from ._common import MAX_EXAMPLES, feature_matrix

__all__ = ["TRIAGE_COLUMNS", "TRIAGE_METRICS", "TriageResult", "check_triage", "triage"]

#: Metrics of a :class:`TriageResult`, in table order.
TRIAGE_METRICS = ("fraction_deprioritized", "positives_missed", "sensitivity", "specificity",
                  "ppv", "npv", "missed_per_1000")
#: Columns of :attr:`TriageResult.table`.
TRIAGE_COLUMNS = ("partition", "metric", "estimate", "ci_low", "ci_high", "confidence_level",
                  "method", "n", "n_clusters", "n_pos")

_TP, _FP, _FN, _TN = range(4)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TriageResult:
    """What deprioritising the cases below a development threshold does on one test set.

    Attributes
    ----------
    partition : str
        The evaluated (test) partition.
    threshold : Threshold
        The operating threshold, with the partition it was chosen on.
    target_sensitivity : float
        The sensitivity the threshold was chosen to reach on development data.
    deployment_prevalence : float
        Prevalence used for ``ppv``, ``npv`` and ``missed_per_1000``.
    prevalence_source : str
        ``"declared"`` (given by the user) or ``"observed"`` (the test set's).
    estimates : dict of str to Estimate
        One per :data:`TRIAGE_METRICS`: the fraction of cases deprioritised
        (score below the threshold), the number of positives among them, the
        realised sensitivity and specificity, PPV and NPV at the deployment
        prevalence, and positives missed per 1000 cases at that prevalence.
    deprioritized : numpy.ndarray of bool
        Rows below the threshold.
    missed : numpy.ndarray of bool
        Positive rows below the threshold.
    """

    partition: str
    threshold: Threshold
    target_sensitivity: float
    deployment_prevalence: float
    prevalence_source: str
    estimates: dict[str, Estimate]
    deprioritized: np.ndarray = field(repr=False)
    missed: np.ndarray = field(repr=False)

    def __getitem__(self, metric: str) -> Estimate:
        return self.estimates[metric]

    @property
    def table(self) -> pd.DataFrame:
        """Long table with columns :data:`TRIAGE_COLUMNS`, one row per metric."""
        rows = [{"partition": self.partition, "metric": m, "estimate": e.value,
                 "ci_low": e.ci.low, "ci_high": e.ci.high,
                 "confidence_level": e.confidence_level, "method": e.method, "n": e.n,
                 "n_clusters": e.n_clusters, "n_pos": e.n_pos}
                for m, e in self.estimates.items()]
        return pd.DataFrame(rows, columns=list(TRIAGE_COLUMNS))


def _triage_statistic(y: np.ndarray, keep: np.ndarray, codes: np.ndarray, n_clusters: int,
                      prevalence: float | None) -> Statistic:
    cells = np.where(keep, np.where(y, _TP, _FP), np.where(y, _FN, _TN))
    mt = feature_matrix(cells, codes, np.ones(y.size), 4, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        tp, fp, fn, tn = np.asarray(sums, dtype=np.float64)
        n = tp + fp + fn + tn
        with np.errstate(divide="ignore", invalid="ignore"):
            sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
            if prevalence is None:
                pi = np.where(n > 0, (tp + fn) / n, np.nan)
                ppv = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
                npv = np.where(tn + fn > 0, tn / (tn + fn), np.nan)
            else:
                pi = np.full(tp.shape, prevalence)
                num_p, num_n = sens * pi, spec * (1 - pi)
                ppv = np.where(num_p + (1 - spec) * (1 - pi) > 0,
                               num_p / (num_p + (1 - spec) * (1 - pi)), np.nan)
                npv = np.where(num_n + (1 - sens) * pi > 0,
                               num_n / (num_n + (1 - sens) * pi), np.nan)
            fraction = np.where(n > 0, (fn + tn) / n, np.nan)
            per_1000 = 1000.0 * (1 - sens) * pi
        return np.column_stack([fraction, fn, sens, spec, ppv, npv, per_1000])

    return Statistic(mt=mt, reduce=reduce, n_outputs=len(TRIAGE_METRICS), integer=True)


def _resolve_threshold(threshold_from: Any, target_sensitivity: float | None,
                       partition_name: str, sealed_partitions: Iterable[str], pos_label: Any,
                       owner: str) -> Threshold:
    if isinstance(threshold_from, Threshold):
        if threshold_from.rule != "sensitivity" or (
                target_sensitivity is not None and threshold_from.target != target_sensitivity):
            raise ValueError(
                f"threshold_from passed to {owner} is a Threshold chosen with rule="
                f"{threshold_from.rule!r}, target={threshold_from.target!r}; triage needs one "
                f"chosen with rule='sensitivity' and target={target_sensitivity!r}. Pass the "
                "development labels and scores instead, or a matching Threshold."
            )
        return threshold_from
    if target_sensitivity is None:
        raise ValueError(f"{owner} needs target_sensitivity= (e.g. 0.95) when threshold_from "
                         "holds development labels and scores.")
    try:
        y_dev, score_dev = threshold_from
    except (TypeError, ValueError):
        raise ValueError(
            f"threshold_from passed to {owner} must be a pair (y_dev, score_dev) of development "
            f"(or calibration) labels and scores, or a metrics.Threshold. Got "
            f"{type(threshold_from).__name__} instead."
        ) from None
    return choose_threshold(y_dev, score_dev, rule="sensitivity", target=target_sensitivity,
                            partition=partition_name, sealed_partitions=sealed_partitions,
                            pos_label=pos_label)


def triage(
    y_true: Any,
    y_score: Any,
    *,
    threshold_from: Any,
    target_sensitivity: float | None = None,
    partition_name: str = "development",
    test_partition: str = "test",
    deployment_prevalence: float | None = None,
    sealed_partitions: Iterable[str] = (),
    groups: Any = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> TriageResult:
    """Simulate triage on a test set: deprioritise cases scored below a development threshold.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels of the test set.
    y_score : array-like of shape (n,)
        Model scores on the test set.
    threshold_from : (y_dev, score_dev) or metrics.Threshold
        Development (or calibration) labels and scores on which the threshold
        is chosen -- the highest threshold whose sensitivity there reaches
        ``target_sensitivity`` (:func:`claimladder.metrics.choose_threshold`,
        rule ``"sensitivity"``, which refuses test or sealed partitions) -- or
        a threshold chosen that way already (to apply one threshold to several
        test sets).
    target_sensitivity : float, optional
        Sensitivity to keep, in (0, 1]; required with ``(y_dev, score_dev)``.
    partition_name : str, default "development"
        Name of the partition ``threshold_from`` comes from (guarded: a name
        containing "test", or one in ``sealed_partitions``, is refused).
    test_partition : str, default "test"
        Name of the evaluated partition (recorded).
    deployment_prevalence : float, optional
        Prevalence in the intended deployment, in (0, 1). Default: the test
        set's own prevalence (``prevalence_source="observed"``).
    sealed_partitions : iterable of str
        Partitions no threshold may be fitted on.
    groups : array-like of shape (n,), optional
        Patient ids of the test rows: the bootstrap resamples patients.
    n_resamples : int, default 2000
        Bootstrap replicates, shared by every metric.
    confidence_level : float, default 0.95
        Nominal coverage of the percentile intervals.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7).
    pos_label : default 1
        Positive class.

    Returns
    -------
    TriageResult
        The threshold and, with percentile (cluster) bootstrap intervals, the
        fraction deprioritised, positives missed, realised sensitivity and
        specificity, PPV and NPV at the deployment prevalence, and positives
        missed per 1000 cases at that prevalence.

    Raises
    ------
    ValueError
        A test or sealed ``partition_name``, development data of one class,
        NaN inputs, or bad options.

    Notes
    -----
    A case is deprioritised when ``score < threshold``. PPV and NPV at a
    declared prevalence ``pi`` follow Bayes' theorem from the test set's
    sensitivity and specificity, ``PPV = sens pi / (sens pi + (1 - spec)(1 - pi))``
    and ``NPV = spec (1 - pi) / (spec (1 - pi) + (1 - sens) pi)``; their
    intervals come from the same bootstrap replicates of sensitivity and
    specificity, treating ``pi`` as known (no sampling error), as it is a
    deployment assumption rather than an estimate. Replicates in which a
    ratio is undefined (no positive drawn) are dropped, with a
    :class:`SmallSampleWarning` above 1 %.

    Examples
    --------
    >>> from claimladder.utility import triage
    >>> y_dev = [0, 0, 0, 0, 1, 1, 1, 1] * 3
    >>> s_dev = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9] * 3
    >>> y = [0, 0, 1, 0, 1, 0, 1, 0] * 3
    >>> s = [0.05, 0.2, 0.45, 0.5, 0.9, 0.35, 0.3, 0.1] * 3
    >>> r = triage(y, s, threshold_from=(y_dev, s_dev), target_sensitivity=1.0,
    ...            deployment_prevalence=0.1, n_resamples=200, rng=0)
    >>> r.threshold.value, r["fraction_deprioritized"].value, r["positives_missed"].value
    (0.4, 0.625, 3.0)
    >>> round(r["sensitivity"].value, 3), round(r["npv"].value, 3)
    (0.667, 0.956)
    """
    owner = "triage"
    n_resamples = check_positive_int(n_resamples, param="n_resamples", owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    if deployment_prevalence is not None:
        deployment_prevalence = check_probability(deployment_prevalence,
                                                  param="deployment_prevalence", owner=owner)
    if target_sensitivity is not None:
        target_sensitivity = float(target_sensitivity)
    threshold = _resolve_threshold(threshold_from, target_sensitivity, partition_name,
                                   sealed_partitions, pos_label, owner)
    y = binary_labels(y_true, pos_label, owner)
    s = as_scores(y_score, "y_score", owner)
    n = check_lengths(owner, y_true=y, y_score=s)
    cl = clusters(groups, n, owner)
    keep = s >= threshold.value
    stat = _triage_statistic(y, keep, cl.codes, cl.n_clusters, deployment_prevalence)
    label = method_label("bootstrap", cl.given)
    n_present = int(np.unique(cl.codes).size)
    common = {"confidence_level": confidence_level, "method": label, "n": n,
              "n_clusters": n_present if cl.given else None, "n_pos": int(y.sum())}
    point = stat.point() if n else np.full(len(TRIAGE_METRICS), np.nan)
    replicates = None
    if n and n_present >= 2:
        replicates = bootstrap(stat, n_resamples, rng)
    elif n:
        warnings.warn(f"{owner}: the test rows come from a single cluster (patient); the "
                      "intervals are NaN.", SmallSampleWarning, stacklevel=2)
    estimates: dict[str, Estimate] = {}
    for j, metric in enumerate(TRIAGE_METRICS):
        value = float(point[j])
        if math.isnan(value):
            warnings.warn(f"{owner}: {metric} is undefined on {test_partition!r} (n={n}, "
                          f"{int(y.sum())} positive). Returning NaN.", UndefinedMetricWarning,
                          stacklevel=2)
            low = high = math.nan
        elif replicates is None:
            low = high = math.nan
        else:
            iv = bootstrap_interval(replicates[:, j], value, method="bootstrap",
                                    confidence_level=confidence_level,
                                    name=f"Triage {metric}", stacklevel=3)
            low, high = iv.low, iv.high
        estimates[metric] = Estimate(value=value, ci=ConfidenceInterval(low=low, high=high),
                                     **common)
    prevalence = (deployment_prevalence if deployment_prevalence is not None
                  else (float(y.mean()) if n else math.nan))
    return TriageResult(
        partition=test_partition, threshold=threshold,
        target_sensitivity=float(threshold.target), deployment_prevalence=prevalence,
        prevalence_source="observed" if deployment_prevalence is None else "declared",
        estimates=estimates, deprioritized=~keep, missed=~keep & y)


def check_triage(result: TriageResult, *, ids: Any = None) -> Finding:
    """Finding ``utility.triage`` (rung 6): does the development threshold keep its promise?

    Parameters
    ----------
    result : TriageResult
        The output of :func:`triage` on one test set.
    ids : array-like of shape (n,), optional
        Image ids of the test rows; the examples are missed positives.

    Returns
    -------
    Finding
        The estimate is the realised sensitivity. ``fail`` when its upper
        confidence bound is below the target (the threshold chosen on
        development data does not deliver the promised sensitivity here);
        ``warn`` when its point estimate is below the target, or no case is
        deprioritised (no workload saved); ``pass`` otherwise;
        ``not_evaluable`` without positives. The table is ``result.table``.

    Examples
    --------
    >>> from claimladder.utility import check_triage, triage
    >>> y_dev = [0, 0, 0, 0, 1, 1, 1, 1] * 3
    >>> s_dev = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9] * 3
    >>> r = triage([0, 1, 0, 1] * 6, [0.1, 0.5, 0.2, 0.9] * 6, threshold_from=(y_dev, s_dev),
    ...            target_sensitivity=1.0, n_resamples=200, rng=0)
    >>> f = check_triage(r, ids=[f"img{i}" for i in range(24)])
    >>> f.check, f.status.value, f.estimate.value
    ('utility.triage', 'pass', 1.0)
    """
    sens = result["sensitivity"]
    frac = result["fraction_deprioritized"]
    target = result.target_sensitivity
    t = result.threshold
    criterion = (f"realised sensitivity reaches the target {target:g} (fail when the upper "
                 "confidence bound is below it)")
    params = {"partition": result.partition, "threshold": t.to_dict(),
              "target_sensitivity": target, "deployment_prevalence":
              result.deployment_prevalence, "prevalence_source": result.prevalence_source}
    examples: tuple[str, ...] = ()
    if ids is not None:
        arr = ids.to_numpy() if isinstance(ids, (pd.Series, pd.Index)) else np.asarray(ids)
        if arr.shape != result.missed.shape:
            raise ValueError(f"ids passed to check_triage must hold one id per test row "
                             f"({result.missed.size}). Got shape {arr.shape} instead.")
        examples = tuple(str(v) for v in arr[result.missed][:MAX_EXAMPLES])
    if not sens.is_defined:
        return Finding(check="utility.triage", rung=Rung.UTILITY, status=Status.NOT_EVALUABLE,
                       message=f"Triage cannot be evaluated on {result.partition!r}: it has no "
                               "positive case.", estimate=sens, criterion=criterion,
                       table=result.table, params=params)
    e = result.estimates
    prev = (f"at the {result.prevalence_source} prevalence {result.deployment_prevalence:.3g}, "
            f"PPV {e['ppv'].format()}, NPV {e['npv'].format()}, "
            f"{e['missed_per_1000'].format(1)} positives missed per 1000 cases")
    head = (f"Deprioritising cases scored below {t.value:.4g} (chosen on {t.partition!r} for "
            f"sensitivity >= {target:g}) on {result.partition!r}: {frac.format()} of cases "
            f"deprioritised, {int(result.missed.sum())} positive(s) missed, sensitivity "
            f"{sens.format()}; {prev}")
    if not math.isnan(sens.ci.high) and sens.ci.high < target:
        status = Status.FAIL
        message = (f"{head}. The sensitivity promised on development data is not reached: "
                   "re-choose the threshold on data like the deployment, or do not use the "
                   "model for triage there.")
    elif sens.value < target:
        status = Status.WARN
        message = f"{head}. The realised sensitivity is below the target."
    elif frac.value == 0:
        status = Status.WARN
        message = f"{head}. No case is deprioritised: the model saves no work at this target."
    else:
        status = Status.PASS
        message = f"{head}."
    return Finding(check="utility.triage", rung=Rung.UTILITY, status=status, message=message,
                   estimate=sens, criterion=criterion, table=result.table, examples=examples,
                   params=params)
