"""Multiclass calibration errors: top-label (confidence) ECE and classwise ECE."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._core import Estimate, RngLike
from ..metrics._engine import Statistic, stack
from ._binned import BINNED_OUTPUTS, bin_edges, binned_statistic
from ._inputs import check_n_bins, check_strategy, multiclass_inputs
from ._resample import Part, bootstrap_options, make_parts, resample

__all__ = ["classwise_calibration_error", "top_label_calibration_error"]

_ECE = BINNED_OUTPUTS.index("expected_calibration_error")


def top_label(prob: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (largest probability) and correctness of the argmax (first on ties)."""
    pred = prob.argmax(axis=1)
    return prob[np.arange(prob.shape[0]), pred], pred == y


def classwise_statistic(prob: np.ndarray, y: np.ndarray, codes: np.ndarray, n_clusters: int,
                        n_bins: int, strategy: str) -> Statistic:
    """Mean over classes of the one-vs-rest ECE (one output)."""
    k = prob.shape[1]
    parts = [binned_statistic(y == c, prob[:, c], codes, n_clusters,
                              bin_edges(prob[:, c], n_bins, strategy)) for c in range(k)]
    joint = stack(parts)
    width = len(BINNED_OUTPUTS)

    def reduce(sums: np.ndarray) -> np.ndarray:
        return joint.reduce(sums)[:, _ECE::width].mean(axis=1, keepdims=True)

    return Statistic(mt=joint.mt, reduce=reduce, n_outputs=1, integer=False)


_PARAMS = """\
Parameters
    ----------
    y_true : array-like of shape (n,)
        True class of each row, one of ``classes``.
    y_prob : array-like of shape (n, n_classes)
        Predicted class probabilities (rows sum to 1).
    classes : sequence, optional
        Class label of each column of ``y_prob`` (default ``0..n_classes-1``).
    n_bins : int, default 15
        Number of bins.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width or equal-mass bins (see :func:`expected_calibration_error`).
    groups : array-like of shape (n,), optional
        Cluster (patient) id of each row; the bootstrap then resamples patients.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Interval method.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage of the interval.
    rng : int, numpy.random.Generator or None
        Seed or generator of the bootstrap (SPEC 7)."""


def _estimate(owner: str, title: str, y_true: Any, y_prob: Any, *, classes: Any, n_bins: int,
              strategy: str, groups: Any, method: str, n_resamples: int,
              confidence_level: float, rng: RngLike, classwise: bool) -> Estimate:
    n_bins = check_n_bins(n_bins, owner)
    strategy = check_strategy(strategy, owner)
    opts = bootstrap_options(method, n_resamples, confidence_level, owner)
    data = multiclass_inputs(y_true, y_prob, classes=classes, groups=groups, owner=owner)
    conf, correct = top_label(data.prob, data.y)
    parts = make_parts(data.clusters, None, None, [], True)
    g = data.clusters.n_clusters

    def build(part: Part) -> Statistic:
        if classwise:
            return classwise_statistic(data.prob[part.rows], data.y[part.rows], part.codes, g,
                                       n_bins, strategy)
        c = conf[part.rows]
        return binned_statistic(correct[part.rows], c, part.codes, g,
                                bin_edges(c, n_bins, strategy))

    outputs = ("classwise_calibration_error",) if classwise else BINNED_OUTPUTS
    result = resample(parts, build, outputs=outputs, opts=opts, rng=rng, title=title,
                      warn_outputs=[0 if classwise else _ECE], stacklevel=5)
    return result.estimates[0][0 if classwise else _ECE]


def top_label_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    classes: Any = None,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Estimate:
    """Top-label (confidence) ECE of a multiclass model (Guo et al. 2017).

    The binned ECE of the pairs (largest class probability, whether the argmax
    class is correct).

    {params}

    Returns
    -------
    Estimate
        The ECE with its (cluster) bootstrap interval (``n_pos`` is None).

    Notes
    -----
    Equals ``netcal.metrics.ECE`` on a probability matrix (up to netcal's
    left-closed bins, see :func:`expected_calibration_error`). Ties for the
    largest probability go to the first column, as ``numpy.argmax``.

    References
    ----------
    Guo C, Pleiss G, Sun Y, Weinberger KQ. On calibration of modern neural networks.
    ICML 2017, section 2.

    Examples
    --------
    >>> from claimladder.calibration import top_label_calibration_error
    >>> prob = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]]
    >>> est = top_label_calibration_error([0, 1, 0, 1], prob, n_bins=5, n_resamples=100,
    ...                                   rng=0)
    >>> round(est.value, 3)
    0.375
    """
    return _estimate("top_label_calibration_error", "Top-label calibration error", y_true,
                     y_prob, classes=classes, n_bins=n_bins, strategy=strategy, groups=groups,
                     method=method, n_resamples=n_resamples, confidence_level=confidence_level,
                     rng=rng, classwise=False)


def classwise_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    classes: Any = None,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> Estimate:
    """Classwise ECE (Kull et al. 2019): the mean over classes of the one-vs-rest binned ECE.

    {params}

    Returns
    -------
    Estimate
        The classwise ECE with its (cluster) bootstrap interval.

    Notes
    -----
    Each class ``c`` contributes the ECE of ``y_prob[:, c]`` against
    ``y_true == c`` (its own quantile edges with ``strategy="quantile"``). It
    equals ``calibration.lower_bound_scaling_ce(p=1, debias=False,
    mode="marginal")`` of Kumar et al. with the same bins.

    References
    ----------
    Kull M, Perello-Nieto M, Kangsepp M, et al. Beyond temperature scaling: obtaining
    well-calibrated multiclass probabilities with Dirichlet calibration. NeurIPS 2019,
    section 2.

    Examples
    --------
    >>> from claimladder.calibration import classwise_calibration_error
    >>> prob = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]]
    >>> est = classwise_calibration_error([0, 1, 0, 1], prob, n_bins=5, n_resamples=100,
    ...                                   rng=0)
    >>> round(est.value, 3)
    0.267
    """
    return _estimate("classwise_calibration_error", "Classwise calibration error", y_true,
                     y_prob, classes=classes, n_bins=n_bins, strategy=strategy, groups=groups,
                     method=method, n_resamples=n_resamples, confidence_level=confidence_level,
                     rng=rng, classwise=True)


for _f in (top_label_calibration_error, classwise_calibration_error):
    _f.__doc__ = _f.__doc__.format(params=_PARAMS)
