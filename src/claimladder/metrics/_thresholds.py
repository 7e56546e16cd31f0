"""Operating points: sensitivity at a specificity, the reverse, and threshold choice."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._core import Estimate, RngLike, check_option
from ._estimate import SPECS, compute, prepare
from ._inputs import as_scores, binary_labels, check_lengths, check_target, options
from ._ranking import RATE_TOLERANCE

__all__ = [
    "Threshold",
    "choose_threshold",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
]

_OPERATING_NOTES = """\
The point value reads the empirical ROC curve (no interpolation): among the
    thresholds ``y_score >= t`` whose {given} is at least the target (up to a
    tolerance of 1e-9 on the rate), the best {wanted}. It is what
    :func:`choose_threshold` with ``rule="{rule}"`` achieves on the same data.
    The bootstrap re-derives the threshold in every replicate from the
    replicate's weighted ROC curve, so the interval includes the uncertainty
    of choosing the threshold; it is not the interval of {wanted} at a fixed
    threshold (use :func:`{fixed}` with ``threshold=`` for that)."""


def sensitivity_at_specificity(
    y_true: Any,
    y_score: Any,
    *,
    specificity: float = 0.9,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Highest sensitivity among thresholds that reach a specificity, with a CI.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores, higher meaning more likely positive.
    specificity : float, default 0.9
        Target specificity, in (0, 1].
    groups : array-like of shape (n,), optional
        Cluster (patient) ids: the bootstrap resamples clusters.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Percentile or BCa interval.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7).
    pos_label : default 1
        Positive label.

    Returns
    -------
    Estimate
        NaN with an :class:`UndefinedMetricWarning` without both classes.

    Notes
    -----
    {notes}

    Examples
    --------
    >>> from claimladder.metrics import sensitivity_at_specificity
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1] * 3
    >>> s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9] * 3
    >>> sensitivity_at_specificity(y, s, specificity=1.0, n_resamples=100, rng=0).value
    0.75
    """
    return _operating_point("sensitivity_at_specificity", y_true, y_score, specificity, groups,
                            method, n_resamples, confidence_level, rng, pos_label)


def specificity_at_sensitivity(
    y_true: Any,
    y_score: Any,
    *,
    sensitivity: float = 0.9,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Highest specificity among thresholds that reach a sensitivity, with a CI.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores, higher meaning more likely positive.
    sensitivity : float, default 0.9
        Target sensitivity, in (0, 1].
    groups : array-like of shape (n,), optional
        Cluster (patient) ids: the bootstrap resamples clusters.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Percentile or BCa interval.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7).
    pos_label : default 1
        Positive label.

    Returns
    -------
    Estimate
        NaN with an :class:`UndefinedMetricWarning` without both classes.

    Notes
    -----
    {notes}

    Examples
    --------
    >>> from claimladder.metrics import specificity_at_sensitivity
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1] * 3
    >>> s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9] * 3
    >>> specificity_at_sensitivity(y, s, sensitivity=1.0, n_resamples=100, rng=0).value
    0.75
    """
    return _operating_point("specificity_at_sensitivity", y_true, y_score, sensitivity, groups,
                            method, n_resamples, confidence_level, rng, pos_label)


sensitivity_at_specificity.__doc__ = sensitivity_at_specificity.__doc__.replace(
    "{notes}", _OPERATING_NOTES.format(given="specificity", wanted="sensitivity",
                                       rule="specificity", fixed="sensitivity"))
specificity_at_sensitivity.__doc__ = specificity_at_sensitivity.__doc__.replace(
    "{notes}", _OPERATING_NOTES.format(given="sensitivity", wanted="specificity",
                                       rule="sensitivity", fixed="specificity"))


def _operating_point(name, y_true, y_score, target, groups, method, n_resamples,
                     confidence_level, rng, pos_label) -> Estimate:
    spec = SPECS[name]
    opts = options(method, spec.methods, n_resamples, confidence_level, name)
    data = prepare(spec, y_true, y_score, target=target, groups=groups, pos_label=pos_label,
                   owner=name)
    title = f"{spec.title} {data.target:g}"
    return compute(spec, data, opts, rng, name=title).estimate


# -- threshold choice ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """An operating threshold and where it was chosen.

    Parameters
    ----------
    value : float
        Predict positive when ``score >= value``.
    rule : str
        ``"youden"``, ``"sensitivity"`` or ``"specificity"``.
    target : float or None
        Target rate of the ``"sensitivity"`` / ``"specificity"`` rules.
    partition : str
        Name of the partition the threshold was fit on.
    n : int
        Rows it was fit on.
    n_pos : int
        Positive rows it was fit on.
    sensitivity, specificity : float
        Rates the threshold achieves on the partition it was fit on.
    forced : bool
        True when it was fit on a test or sealed partition with ``force=True``.
    """

    value: float
    rule: str
    target: float | None
    partition: str
    n: int
    n_pos: int
    sensitivity: float
    specificity: float
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"value": self.value if math.isfinite(self.value) else None, "rule": self.rule,
                "target": self.target, "partition": self.partition, "n": self.n,
                "n_pos": self.n_pos, "sensitivity": self.sensitivity,
                "specificity": self.specificity, "forced": self.forced}


def _sealed_reason(partition: str, sealed: Iterable[str]) -> str | None:
    if partition in set(sealed):
        return "it is listed in sealed_partitions"
    if "test" in partition.lower():
        return "its name contains 'test'"
    return None


def choose_threshold(
    y_true: Any,
    y_score: Any,
    *,
    rule: Literal["youden", "sensitivity", "specificity"] = "youden",
    target: float | None = None,
    partition: str,
    sealed_partitions: Iterable[str] = (),
    force: bool = False,
    pos_label: Any = 1,
) -> Threshold:
    """Choose an operating threshold on a fitting partition, refusing test data.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels of the fitting partition.
    y_score : array-like of shape (n,)
        Scores of the fitting partition.
    rule : {"youden", "sensitivity", "specificity"}, default "youden"
        ``"youden"`` maximises sensitivity + specificity - 1; ``"sensitivity"``
        maximises specificity among thresholds with sensitivity >= ``target``;
        ``"specificity"`` maximises sensitivity among thresholds with
        specificity >= ``target``.
    target : float, optional
        Target rate in (0, 1] of the ``"sensitivity"`` and ``"specificity"`` rules.
    partition : str
        Name of the partition the data come from (recorded in the result).
    sealed_partitions : iterable of str
        Partitions that must not be used for fitting anything (sealed test sets).
    force : bool, default False
        Fit on a test or sealed partition anyway; the result records ``forced=True``.
    pos_label : default 1
        Positive label.

    Returns
    -------
    Threshold
        The threshold (a score value: predict positive when ``score >= value``)
        and the rates it achieves on ``partition``.

    Raises
    ------
    ValueError
        When ``partition`` contains "test" or is sealed and ``force`` is False;
        when the partition holds a single class; on NaN inputs or bad options.

    Notes
    -----
    Candidate thresholds are the distinct scores of the positive rows (an
    optimum of every rule is among them); among equally good thresholds the
    highest is chosen, which maximises the other rate. When no threshold
    reaches a specificity target, the threshold lies just above the highest
    score (sensitivity 0). The same rules define
    :func:`sensitivity_at_specificity` and :func:`specificity_at_sensitivity`.

    Examples
    --------
    >>> from claimladder.metrics import choose_threshold
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    >>> t = choose_threshold(y, s, partition="development")
    >>> t.value, t.sensitivity, t.specificity
    (0.7, 0.75, 1.0)
    >>> choose_threshold(y, s, partition="internal_test")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Refusing to choose a threshold on partition 'internal_test': ...
    """
    owner = "choose_threshold"
    rule = check_option(rule, ("youden", "sensitivity", "specificity"), param="rule",
                        owner=owner)
    if not isinstance(partition, str) or not partition:
        raise ValueError(f"The 'partition' parameter of {owner} must be a non-empty str naming "
                         f"the partition the data come from. Got {partition!r} instead.")
    if rule == "youden":
        if target is not None:
            raise ValueError(f"rule='youden' of {owner} takes no target. Got target={target!r}.")
    else:
        if target is None:
            raise ValueError(f"rule={rule!r} of {owner} needs target= (a rate in (0, 1]).")
        target = check_target(target, "target", owner)
    reason = _sealed_reason(partition, sealed_partitions)
    if reason is not None and not force:
        raise ValueError(
            f"Refusing to choose a threshold on partition {partition!r}: {reason}. A threshold "
            "tuned on the data it is evaluated on makes every metric reported there optimistic. "
            "Choose it on a development or calibration partition and apply it unchanged to "
            f"{partition!r}; pass force=True only to reproduce an earlier choice (the Threshold "
            "then records forced=True)."
        )
    y = binary_labels(y_true, pos_label, owner)
    s = as_scores(y_score, "y_score", owner)
    check_lengths(owner, y_true=y, y_score=s)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"{owner} cannot choose a threshold on partition {partition!r}: it holds a single "
            f"class ({n_pos} positive, {n_neg} negative rows). Fit it on a partition with both."
        )
    levels, inverse = np.unique(s[y], return_inverse=True)
    p = np.bincount(inverse, minlength=levels.size)
    tp = np.cumsum(p[::-1])[::-1]
    below = np.searchsorted(np.sort(s[~y]), levels, side="left")
    if rule == "youden":
        j = tp / n_pos + below / n_neg
        i = int(np.flatnonzero(j >= j.max() - RATE_TOLERANCE)[-1])
    elif rule == "sensitivity":
        i = int(np.flatnonzero(tp >= (target - RATE_TOLERANCE) * n_pos)[-1])
    else:
        feasible = np.flatnonzero(below >= (target - RATE_TOLERANCE) * n_neg)
        i = int(feasible[0]) if feasible.size else -1
    if i < 0:
        value, sens, spec = float(np.nextafter(s.max(), np.inf)), 0.0, 1.0
    else:
        value, sens, spec = float(levels[i]), float(tp[i] / n_pos), float(below[i] / n_neg)
    return Threshold(value=value, rule=rule, target=target, partition=partition, n=int(y.size),
                     n_pos=n_pos, sensitivity=sens, specificity=spec, forced=reason is not None)
