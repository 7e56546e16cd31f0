"""Binned calibration statistics: ECE, MCE, debiased ECE, Brier decomposition, mean calibration.

All of them are functions of three sums per bin (rows, predicted
probabilities, positives) plus the sum of squared errors, which are linear in
the bootstrap counts: a replicate is one sparse product, whatever the number
of rows.

Binning convention (identical to :func:`sklearn.calibration.calibration_curve`):
``strategy="uniform"`` uses the edges ``numpy.linspace(0, 1, n_bins + 1)`` and
``strategy="quantile"`` the edges ``numpy.percentile(y_prob, linspace(0, 100,
n_bins + 1))`` of the sample being evaluated; a probability goes to bin
``numpy.searchsorted(edges[1:-1], p, side="left")``, so bins are closed on the
right, ``(e_{k-1}, e_k]``, and the first bin also holds ``e_0``. Quantile edges
are computed once on the evaluated sample and kept fixed in the bootstrap
replicates. Empty bins contribute nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._core import Estimate, RngLike
from ..metrics._engine import Statistic
from ._inputs import BinaryInputs, binary_inputs, check_n_bins, check_strategy
from ._resample import Part, bootstrap_options, make_parts, ratio, resample, sum_map

__all__ = [
    "BrierDecomposition",
    "brier_score_decomposition",
    "calibration_in_the_large",
    "debiased_calibration_error",
    "expected_calibration_error",
    "maximum_calibration_error",
    "observed_expected_ratio",
]

#: Outputs of the binned statistic, in order.
BINNED_OUTPUTS = (
    "expected_calibration_error",
    "maximum_calibration_error",
    "debiased_calibration_error",
    "brier_score",
    "brier_reliability",
    "brier_resolution",
    "brier_uncertainty",
    "brier_within_bin",
    "calibration_in_the_large",
    "observed_expected_ratio",
)

_TITLES = {
    "expected_calibration_error": "Expected calibration error",
    "maximum_calibration_error": "Maximum calibration error",
    "debiased_calibration_error": "Debiased calibration error",
    "calibration_in_the_large": "Calibration-in-the-large",
    "observed_expected_ratio": "Observed/expected ratio",
}


def bin_edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin edges of ``p`` (see the module docstring)."""
    if strategy == "quantile":
        if p.size == 0:
            return np.linspace(0.0, 1.0, n_bins + 1)
        return np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
    return np.linspace(0.0, 1.0, n_bins + 1)


def bin_index(p: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Right-closed bin of each probability (first bin closed on both sides)."""
    return np.searchsorted(edges[1:-1], p, side="left").astype(np.intp)


def binned_statistic(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_clusters: int,
                     edges: np.ndarray) -> Statistic:
    """The statistic whose outputs are :data:`BINNED_OUTPUTS`.

    Features: rows, sum of p and sum of y per bin, then the sum of ``(p - y)^2``.
    """
    nb = edges.size - 1
    b = bin_index(p, edges)
    yf = y.astype(np.float64)
    feature = np.concatenate([b, nb + b, 2 * nb + b, np.full(b.size, 3 * nb, np.intp)])
    values = np.concatenate([np.ones(b.size), p, yf, (p - yf) ** 2])
    mt = sum_map(feature, np.concatenate([codes] * 4), values, 3 * nb + 1, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        s = np.asarray(sums, dtype=np.float64)
        count, sp, sy, sq = s[:nb], s[nb:2 * nb], s[2 * nb:3 * nb], s[3 * nb]
        total = count.sum(axis=0)
        gap = sp - sy
        ece = ratio(np.abs(gap).sum(axis=0), total)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_bin = np.where(count > 0, np.abs(gap) / np.where(count > 0, count, 1), -np.inf)
            mce = per_bin.max(axis=0)
            mce = np.where(total > 0, mce, np.nan)
            ybar_b = np.where(count > 0, sy / np.where(count > 0, count, 1), 0.0)
            mean_gap2 = np.where(count > 0, (gap / np.where(count > 0, count, 1)) ** 2, 0.0)
            # Kumar et al. (2019): subtract the variance of the bin's label mean (bins of >= 2).
            var = np.where(count >= 2, ybar_b * (1 - ybar_b) / np.where(count >= 2, count - 1, 1),
                           0.0)
            debiased2 = ratio((count * np.where(count >= 2, mean_gap2 - var, 0.0)).sum(axis=0),
                              total)
        debiased = np.sqrt(np.maximum(debiased2, 0.0))
        debiased = np.where(np.isnan(debiased2), np.nan, debiased)
        brier = ratio(sq, total)
        reliability = ratio((count * mean_gap2).sum(axis=0), total)
        ybar = ratio(sy.sum(axis=0), total)
        resolution = ratio((count * (ybar_b - ybar) ** 2).sum(axis=0), total)
        uncertainty = ybar * (1 - ybar)
        within = brier - (reliability - resolution + uncertainty)
        citl = ratio(sp.sum(axis=0) - sy.sum(axis=0), total)
        oe = ratio(sy.sum(axis=0), sp.sum(axis=0))
        return np.column_stack([ece, mce, debiased, brier, reliability, resolution,
                                uncertainty, within, citl, oe])

    return Statistic(mt=mt, reduce=reduce, n_outputs=len(BINNED_OUTPUTS), integer=False)


def binned_undefined_reason(part: Part, output: int) -> str:
    if BINNED_OUTPUTS[output] == "observed_expected_ratio":
        return "every predicted probability is 0, so the expected count is 0"
    return "no rows"


def part_builder(data: BinaryInputs, n_bins: int, strategy: str):
    def build(part: Part) -> Statistic:
        p = data.p[part.rows]
        return binned_statistic(data.y[part.rows], p, part.codes, data.clusters.n_clusters,
                                bin_edges(p, n_bins, strategy))
    return build


def _binned_estimates(
    owner: str,
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int,
    strategy: str,
    groups: Any,
    method: str,
    n_resamples: int,
    confidence_level: float,
    rng: RngLike,
    pos_label: Any,
    title: str,
    report: tuple[str, ...],
) -> list[Estimate]:
    n_bins = check_n_bins(n_bins, owner)
    strategy = check_strategy(strategy, owner)
    opts = bootstrap_options(method, n_resamples, confidence_level, owner)
    data = binary_inputs(y_true, y_prob, groups=groups, pos_label=pos_label, owner=owner)
    parts = make_parts(data.clusters, data.y, None, [], True)
    result = resample(parts, part_builder(data, n_bins, strategy), outputs=BINNED_OUTPUTS,
                      opts=opts, rng=rng, title=title,
                      undefined_reason=binned_undefined_reason,
                      warn_outputs=[BINNED_OUTPUTS.index(r) for r in report], stacklevel=5)
    return result.estimates[0]


_COMMON_DOC = """\
y_true : array-like of shape (n,)
        Binary labels.
    y_prob : array-like of shape (n,)
        Predicted probability of the positive class, in [0, 1].
    groups : array-like of shape (n,), optional
        Cluster (patient) id of each row; the bootstrap then resamples patients.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Percentile or bias-corrected and accelerated bootstrap interval.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage of the interval.
    rng : int, numpy.random.Generator or None
        Seed or generator of the bootstrap (SPEC 7).
    pos_label : default 1
        The label of the positive class in ``y_true``."""

_BINS_DOC = """\
n_bins : int, default 15
        Number of bins.
    strategy : {{"uniform", "quantile"}}, default "{default}"
        Equal-width bins on [0, 1] or equal-mass bins (quantiles of ``y_prob``)."""

_RETURNS_DOC = """\
Returns
    -------
    Estimate
        Value on the full sample, (cluster) bootstrap interval, ``n``,
        ``n_clusters`` (None without groups) and ``n_pos``. NaN with an
        :class:`~claimladder._core.UndefinedMetricWarning` on empty input or a
        single cluster.

    Raises
    ------
    ValueError
        NaN labels or probabilities, probabilities outside [0, 1], more than two
        labels, mismatched lengths or an unknown option."""


def _fill(doc: str, strategy: str = "uniform") -> str:
    return doc.format(common=_COMMON_DOC, bins=_BINS_DOC.format(default=strategy),
                      returns=_RETURNS_DOC)


def expected_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Expected calibration error of binary predicted probabilities (lower is better).

    ``ECE = sum_b (n_b / n) |mean(p)_b - mean(y)_b|`` over the bins ``b``
    (Naeini et al. 2015; Guo et al. 2017, eq. 3), computed on the
    positive-class probability.

    Parameters
    ----------
    {common}
    {bins}

    {returns}

    Notes
    -----
    Bins are closed on the right, as in :func:`sklearn.calibration.calibration_curve`
    and Guo et al.; ``netcal.metrics.ECE`` bins are closed on the left (NumPy
    histogram convention), so the two differ only for probabilities exactly on a
    bin edge. The binned ECE is biased upwards for small bins and depends on the
    binning; see :func:`debiased_calibration_error` and
    :func:`smooth_calibration_error`. Defined with a single class.

    References
    ----------
    Naeini MP, Cooper G, Hauskrecht M. Obtaining well calibrated probabilities using
    Bayesian binning. AAAI 2015.
    Guo C, Pleiss G, Sun Y, Weinberger KQ. On calibration of modern neural networks.
    ICML 2017, section 2.

    Examples
    --------
    >>> from claimladder.calibration import expected_calibration_error
    >>> est = expected_calibration_error([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8], n_bins=2,
    ...                                  n_resamples=200, rng=0)
    >>> round(est.value, 3)
    0.25
    """
    return _binned_estimates(
        "expected_calibration_error", y_true, y_prob, n_bins=n_bins, strategy=strategy,
        groups=groups, method=method, n_resamples=n_resamples,
        confidence_level=confidence_level, rng=rng, pos_label=pos_label,
        title="Expected calibration error",
        report=("expected_calibration_error",))[0]


def maximum_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Maximum calibration error: the largest ``|mean(p)_b - mean(y)_b|`` over non-empty bins.

    Parameters
    ----------
    {common}
    {bins}

    {returns}

    Notes
    -----
    Same bins as :func:`expected_calibration_error`. Very sensitive to sparsely
    populated bins; its bootstrap interval is wide there.

    References
    ----------
    Naeini MP, Cooper G, Hauskrecht M. Obtaining well calibrated probabilities using
    Bayesian binning. AAAI 2015.

    Examples
    --------
    >>> from claimladder.calibration import maximum_calibration_error
    >>> est = maximum_calibration_error([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8], n_bins=2,
    ...                                 n_resamples=200, rng=0)
    >>> round(est.value, 3)
    0.3
    """
    return _binned_estimates(
        "maximum_calibration_error", y_true, y_prob, n_bins=n_bins, strategy=strategy,
        groups=groups, method=method, n_resamples=n_resamples,
        confidence_level=confidence_level, rng=rng, pos_label=pos_label,
        title="Maximum calibration error",
        report=("maximum_calibration_error",))[1]


def debiased_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "quantile",
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Debiased L2 calibration error (Kumar, Liang & Ma 2019).

    ``sqrt(max(0, sum_b (n_b / n) [(mean(p)_b - mean(y)_b)^2 - ybar_b (1 - ybar_b) / (n_b - 1)]))``
    where bins with fewer than two rows contribute zero: the plug-in squared
    error of each bin minus the variance of its label mean, which removes the
    upward bias of the binned estimate.

    Parameters
    ----------
    {common}
    {bins}

    {returns}

    Notes
    -----
    This is the estimator of ``calibration.get_calibration_error(p=2,
    debias=True)`` (the ``uncertainty-calibration`` package of Kumar et al.) with
    our bins; that package's default equal-mass bins put their edges halfway
    between neighbouring sorted probabilities rather than at percentiles. Equal-mass
    bins are the default, as Kumar et al. and Roelofs et al. recommend. The value
    is an L2 error, so it is not on the same scale as the (L1)
    :func:`expected_calibration_error`; it is zero when the squared bias is
    within the sampling noise.

    References
    ----------
    Kumar A, Liang P, Ma T. Verified uncertainty calibration. NeurIPS 2019, section 5.
    Roelofs R, Cain N, Shlens J, Mozer MC. Mitigating bias in calibration error
    estimation. AISTATS 2022.

    Examples
    --------
    >>> from claimladder.calibration import debiased_calibration_error
    >>> y = [0, 1] * 50
    >>> p = [0.2, 0.9] * 50
    >>> est = debiased_calibration_error(y, p, n_bins=2, n_resamples=200, rng=0)
    >>> round(est.value, 3)
    0.158
    """
    return _binned_estimates(
        "debiased_calibration_error", y_true, y_prob, n_bins=n_bins, strategy=strategy,
        groups=groups, method=method, n_resamples=n_resamples,
        confidence_level=confidence_level, rng=rng, pos_label=pos_label,
        title="Debiased calibration error",
        report=("debiased_calibration_error",))[2]


def calibration_in_the_large(
    y_true: Any,
    y_prob: Any,
    *,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Calibration-in-the-large: mean predicted probability minus observed event rate.

    Positive values mean the model over-predicts risk on average.

    Parameters
    ----------
    {common}

    {returns}

    Notes
    -----
    The difference scale; :func:`observed_expected_ratio` gives the ratio scale
    and :func:`calibration_intercept` the logit scale (Van Calster et al. 2016,
    "mean calibration").

    References
    ----------
    Van Calster B, Nieboer D, Vergouwe Y, et al. A calibration hierarchy for risk
    models was defined: from utopia to empirical data. J Clin Epidemiol
    2016;74:167-176.

    Examples
    --------
    >>> from claimladder.calibration import calibration_in_the_large
    >>> est = calibration_in_the_large([0, 0, 1, 1], [0.2, 0.4, 0.6, 0.9], n_resamples=200,
    ...                                rng=0)
    >>> round(est.value, 3)
    0.025
    """
    return _binned_estimates(
        "calibration_in_the_large", y_true, y_prob, n_bins=1, strategy="uniform",
        groups=groups, method=method, n_resamples=n_resamples,
        confidence_level=confidence_level, rng=rng, pos_label=pos_label,
        title="Calibration-in-the-large",
        report=("calibration_in_the_large",))[8]


def observed_expected_ratio(
    y_true: Any,
    y_prob: Any,
    *,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Estimate:
    """Observed-to-expected ratio ``O/E = sum(y) / sum(p)`` (1 is perfect mean calibration).

    Parameters
    ----------
    {common}

    {returns}

    Notes
    -----
    Values below 1 mean the model over-predicts risk. Undefined (NaN) when every
    predicted probability is 0.

    References
    ----------
    Riley RD, Archer L, Snell KIE, et al. Evaluation of clinical prediction models
    (part 2): how to undertake an external validation study. BMJ 2024;384:e074820.

    Examples
    --------
    >>> from claimladder.calibration import observed_expected_ratio
    >>> est = observed_expected_ratio([0, 0, 1, 1], [0.2, 0.4, 0.6, 0.9], n_resamples=200,
    ...                               rng=0)
    >>> round(est.value, 3)
    0.952
    """
    return _binned_estimates(
        "observed_expected_ratio", y_true, y_prob, n_bins=1, strategy="uniform",
        groups=groups, method=method, n_resamples=n_resamples,
        confidence_level=confidence_level, rng=rng, pos_label=pos_label,
        title="Observed/expected ratio",
        report=("observed_expected_ratio",))[9]


@dataclass(frozen=True, slots=True, kw_only=True)
class BrierDecomposition:
    """Murphy's decomposition of the Brier score, each term with its interval.

    ``brier = reliability - resolution + uncertainty + within_bin``, where
    ``within_bin`` is zero when the probabilities are constant within each bin
    and otherwise collects the within-bin variance and covariance terms of
    Stephenson et al. (2008). Every term comes from the same bootstrap
    replicates.

    Parameters
    ----------
    brier : Estimate
        The Brier score ``mean((p - y)^2)``.
    reliability : Estimate
        ``sum_b (n_b / n) (mean(p)_b - mean(y)_b)^2`` (lower is better).
    resolution : Estimate
        ``sum_b (n_b / n) (mean(y)_b - mean(y))^2`` (higher is better).
    uncertainty : Estimate
        ``mean(y) (1 - mean(y))``, the Brier score of the prevalence forecast.
    within_bin : Estimate
        ``brier - (reliability - resolution + uncertainty)``.
    n_bins : int
    strategy : str
    """

    brier: Estimate
    reliability: Estimate
    resolution: Estimate
    uncertainty: Estimate
    within_bin: Estimate
    n_bins: int
    strategy: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"brier": self.brier.to_dict(), "reliability": self.reliability.to_dict(),
                "resolution": self.resolution.to_dict(),
                "uncertainty": self.uncertainty.to_dict(),
                "within_bin": self.within_bin.to_dict(), "n_bins": self.n_bins,
                "strategy": self.strategy}


def brier_score_decomposition(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: Literal["uniform", "quantile"] = "uniform",
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> BrierDecomposition:
    """Brier score and its Murphy (1973) decomposition: reliability, resolution, uncertainty.

    Parameters
    ----------
    {common}
    {bins}

    Returns
    -------
    BrierDecomposition
        The Brier score and each term, as Estimates from shared replicates.

    Notes
    -----
    Murphy's identity ``brier = reliability - resolution + uncertainty`` is exact
    when the predicted probability is constant within each bin (e.g. a model with
    few distinct outputs and ``strategy="quantile"``); with continuous
    probabilities the remainder is reported as ``within_bin`` rather than hidden.
    The Brier score equals :func:`claimladder.metrics.brier_score`.

    References
    ----------
    Murphy AH. A new vector partition of the probability score. J Appl Meteorol
    1973;12:595-600.
    Stephenson DB, Coelho CAS, Jolliffe IT. Two extra components in the Brier score
    decomposition. Weather Forecast 2008;23:752-757.

    Examples
    --------
    >>> from claimladder.calibration import brier_score_decomposition
    >>> d = brier_score_decomposition([0, 0, 1, 1, 1, 0], [0.2, 0.2, 0.7, 0.7, 0.7, 0.7],
    ...                               n_bins=5, n_resamples=100, rng=0)
    >>> [round(e.value, 4) for e in (d.brier, d.reliability, d.resolution, d.uncertainty)]
    [0.14, 0.015, 0.125, 0.25]
    >>> abs(d.within_bin.value) < 1e-12
    True
    """
    estimates = _binned_estimates(
        "brier_score_decomposition", y_true, y_prob, n_bins=n_bins, strategy=strategy,
        groups=groups, method=method, n_resamples=n_resamples,
        confidence_level=confidence_level, rng=rng, pos_label=pos_label,
        title="Brier score decomposition",
        report=("brier_score", "brier_reliability", "brier_resolution",
                "brier_uncertainty", "brier_within_bin"))
    return BrierDecomposition(brier=estimates[3], reliability=estimates[4],
                              resolution=estimates[5], uncertainty=estimates[6],
                              within_bin=estimates[7], n_bins=check_n_bins(n_bins, ""),
                              strategy=strategy)


for _f, _s in ((expected_calibration_error, "uniform"), (maximum_calibration_error, "uniform"),
               (debiased_calibration_error, "quantile"), (calibration_in_the_large, "uniform"),
               (observed_expected_ratio, "uniform"), (brier_score_decomposition, "uniform")):
    _f.__doc__ = _fill(_f.__doc__, _s)

