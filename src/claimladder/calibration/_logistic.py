"""Logistic calibration (intercept and slope) and Spiegelhalter's z test.

The calibration intercept and slope are maximum-likelihood fits of
``logit P(y = 1) = a + b * logit(p)``. Following Van Calster et al. (2016,
2019), the *intercept* is fitted with the slope fixed at 1 (``logit(p)`` as an
offset: "mean calibration"), and the *slope* ``b`` with a free intercept
("weak calibration"). A bootstrap replicate of clustered data is a vector of
row weights (patient counts), so the statistic's features are the rows
themselves and ``reduce`` runs a Newton (IRLS) solver vectorised over a block
of replicates, started at the calibrated model ``a = 0, b = 1``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.special import expit, ndtr

from .._core import Estimate, RngLike, UndefinedMetricWarning
from ..metrics._engine import Statistic
from ._inputs import binary_inputs
from ._resample import Part, bootstrap_options, make_parts, resample

__all__ = [
    "LogisticCalibration",
    "SpiegelhalterTest",
    "calibration_intercept",
    "calibration_slope",
    "logistic_calibration",
    "spiegelhalter_test",
]

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit (as log_loss does).
EPS = float(np.finfo(np.float64).eps)
MAX_ITER = 100
TOL = 1e-10
#: Elements (rows x replicates) per solver block; bounds the solver's memory.
SOLVER_BLOCK = 2**22
#: Newton steps larger than this (in any coefficient) are checked for ascent.
CHECKED_STEP = 0.5

LOGISTIC_OUTPUTS = ("calibration_intercept", "calibration_slope", "slope_model_intercept")


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q) - np.log1p(-q)


def _loglik(eta: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    # sum_i w_i [y_i eta_i - log(1 + exp(eta_i))], stable for large |eta|.
    return (w * (y[:, None] * eta - np.logaddexp(0.0, eta))).sum(axis=0)


def irls(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, offset: np.ndarray | None = None,
         start: np.ndarray | None = None) -> np.ndarray:
    """Weighted logistic MLE for every column of weights ``w`` (n, B); returns (d, B).

    Newton-Raphson with step halving (the log-likelihood is concave, so halving
    always finds an ascent step; it is checked only for steps larger than
    :data:`CHECKED_STEP`, since Newton steps near the optimum always ascend). A
    column whose fit does not converge in :data:`MAX_ITER` steps (no finite
    MLE: one class only or perfect separation) or whose Hessian is singular is
    NaN. ``y`` may be fractional (smoothed targets).
    """
    _n, d = x.shape
    b = w.shape[1]
    beta = np.zeros((d, b)) if start is None else np.repeat(
        np.asarray(start, dtype=np.float64).reshape(d, 1), b, axis=1)
    iu = np.triu_indices(d)
    pairs = x[:, iu[0]] * x[:, iu[1]]  # (n, d(d+1)/2)

    def linear(coef: np.ndarray) -> np.ndarray:
        eta = np.multiply.outer(x[:, 0], coef[0])
        for k in range(1, d):
            eta += np.multiply.outer(x[:, k], coef[k])
        return eta if offset is None else eta + offset[:, None]

    eta = linear(beta)
    done = np.zeros(b, dtype=bool)
    failed = np.zeros(b, dtype=bool)
    for _ in range(MAX_ITER):
        mu = expit(eta)
        grad = x.T @ (w * (y[:, None] - mu))  # (d, B)
        mu *= 1 - mu
        mu *= w
        hv = pairs.T @ mu  # (pairs, B)
        hess = np.empty((b, d, d))
        hess[:, iu[0], iu[1]] = hv.T
        hess[:, iu[1], iu[0]] = hv.T
        with np.errstate(all="ignore"):
            good = np.isfinite(hess).all(axis=(1, 2)) & (np.abs(np.linalg.det(hess)) > 1e-300)
        step = np.zeros((d, b))
        if good.any():
            try:
                step[:, good] = np.linalg.solve(hess[good], grad[:, good].T[..., None])[..., 0].T
            except np.linalg.LinAlgError:
                good[:] = False
        failed |= ~good & ~done
        active = ~done & ~failed
        if not active.any():
            break
        step[:, ~active] = 0.0
        big = active & (np.abs(step).max(axis=0) > CHECKED_STEP)
        if big.any():
            cols = np.flatnonzero(big)
            ll = _loglik(eta[:, cols], y, w[:, cols])
            scale = np.ones(cols.size)
            for _half in range(30):
                trial = beta[:, cols] + step[:, cols] * scale
                new_ll = _loglik(linear(trial), y, w[:, cols])
                worse = new_ll < ll - 1e-12 * (1 + np.abs(ll))
                if not worse.any():
                    break
                scale = np.where(worse, 0.5 * scale, scale)
            step[:, cols] *= scale
        beta = beta + step
        eta = linear(beta)
        done |= active & (np.abs(step).max(axis=0) <= TOL * (1 + np.abs(beta).max(axis=0)))
        if done.all():
            break
    beta[:, ~done] = np.nan
    return beta


def logistic_values(y: np.ndarray, lp: np.ndarray, w: np.ndarray,
                    start: np.ndarray | None = None) -> np.ndarray:
    """(B, 3): intercept with slope 1 (offset), slope, intercept of the slope model.

    ``start`` (the three values on the full sample) starts the solver close to a
    replicate's solution; the default is the calibrated model.
    """
    start = np.array([0.0, 1.0, 0.0]) if start is None or not np.isfinite(start).all() \
        else start
    yf = y.astype(np.float64)
    out = np.empty((w.shape[1], 3))
    step = max(1, SOLVER_BLOCK // max(lp.size, 1))
    ones = np.ones((lp.size, 1))
    design = np.column_stack([ones, lp])
    for a in range(0, w.shape[1], step):
        wb = w[:, a:a + step]
        out[a:a + step, 0] = irls(ones, yf, wb, offset=lp, start=start[:1])[0]
        both = irls(design, yf, wb, start=np.array([start[2], start[1]]))
        out[a:a + step, 1] = both[1]
        out[a:a + step, 2] = both[0]
    return out


def logistic_statistic(y: np.ndarray, p: np.ndarray, codes: np.ndarray,
                       n_clusters: int) -> Statistic:
    """Resampleable logistic calibration: features are the rows (weights = cluster counts)."""
    n = y.size
    mt = sparse.csr_array((np.ones(n), (np.arange(n), codes)), shape=(n, n_clusters))
    lp = logit(p)
    point = logistic_values(y, lp, np.ones((n, 1)))[0] if n else None

    def reduce(weights: np.ndarray) -> np.ndarray:
        return logistic_values(y, lp, np.asarray(weights, dtype=np.float64), point)

    return Statistic(mt=mt, reduce=reduce, n_outputs=3, integer=True)


def logistic_undefined_reason(y: np.ndarray):
    def reason(part: Part, output: int) -> str:
        yp = y[part.rows]
        if yp.all() or not yp.any():
            return "y_true holds a single class, so the logistic model has no finite fit"
        return ("the logistic recalibration did not converge: the score separates the classes "
                "perfectly, so the slope is infinite")
    return reason


@dataclass(frozen=True, slots=True, kw_only=True)
class LogisticCalibration:
    """Calibration intercept and slope (Van Calster et al. 2016), from shared replicates.

    Parameters
    ----------
    intercept : Estimate
        ``a`` in ``logit P(y=1) = a + logit(p)`` (slope fixed at 1): 0 is ideal;
        negative means risks are over-estimated on average.
    slope : Estimate
        ``b`` in ``logit P(y=1) = a' + b logit(p)``: 1 is ideal; below 1 means
        predictions are too extreme (typical of overfitting), above 1 too modest.
    slope_model_intercept : Estimate
        ``a'`` of the slope model (not a measure of mean calibration by itself).
    """

    intercept: Estimate
    slope: Estimate
    slope_model_intercept: Estimate

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"intercept": self.intercept.to_dict(), "slope": self.slope.to_dict(),
                "slope_model_intercept": self.slope_model_intercept.to_dict()}


def _logistic(owner: str, y_true: Any, y_prob: Any, *, groups: Any, method: str,
              n_resamples: int, confidence_level: float, rng: RngLike,
              pos_label: Any, report: tuple[int, ...] = (0, 1, 2)) -> list[Estimate]:
    opts = bootstrap_options(method, n_resamples, confidence_level, owner)
    data = binary_inputs(y_true, y_prob, groups=groups, pos_label=pos_label, owner=owner)
    parts = make_parts(data.clusters, data.y, None, [], True)

    def build(part: Part) -> Statistic:
        return logistic_statistic(data.y[part.rows], data.p[part.rows], part.codes,
                                  data.clusters.n_clusters)

    result = resample(parts, build, outputs=LOGISTIC_OUTPUTS, opts=opts, rng=rng,
                      title="Logistic calibration",
                      undefined_reason=logistic_undefined_reason(data.y), warn_outputs=report,
                      stacklevel=5)
    return result.estimates[0]


_PARAMS = """\
Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_prob : array-like of shape (n,)
        Predicted probability of the positive class, in [0, 1] (clipped to
        [eps, 1 - eps] before the logit, eps the float64 machine epsilon).
    groups : array-like of shape (n,), optional
        Cluster (patient) id of each row; the bootstrap then resamples patients.
    method : {"bootstrap", "bca"}, default "bootstrap"
        Interval method.
    n_resamples : int, default 2000
        Bootstrap replicates.
    confidence_level : float, default 0.95
        Nominal coverage of the interval.
    rng : int, numpy.random.Generator or None
        Seed or generator of the bootstrap (SPEC 7).
    pos_label : default 1
        The label of the positive class."""

_REFS = """\
References
    ----------
    Cox DR. Two further applications of a model for binary regression.
    Biometrika 1958;45:562-565.
    Van Calster B, Nieboer D, Vergouwe Y, et al. A calibration hierarchy for risk
    models was defined: from utopia to empirical data. J Clin Epidemiol
    2016;74:167-176.
    Van Calster B, McLernon DJ, van Smeden M, et al. Calibration: the Achilles heel
    of predictive analytics. BMC Med 2019;17:230."""

_NOTES = """\
Maximum likelihood by Newton-Raphson; equals ``statsmodels`` ``Logit`` /
    ``GLM(..., offset=logit(p))``. Replicates are refitted on the resampled
    patients (row weights), started at the calibrated model. NaN with an
    :class:`~claimladder._core.UndefinedMetricWarning` when only one class is
    present or the score separates the classes perfectly (no finite MLE);
    such bootstrap replicates are dropped and counted."""


def logistic_calibration(
    y_true: Any,
    y_prob: Any,
    *,
    groups: Any = None,
    method: Literal["bootstrap", "bca"] = "bootstrap",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> LogisticCalibration:
    """Calibration intercept (slope fixed at 1) and calibration slope, with intervals.

    {params}

    Returns
    -------
    LogisticCalibration
        ``intercept``, ``slope`` and ``slope_model_intercept`` from one bootstrap.

    Notes
    -----
    {notes}

    {refs}

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import logistic_calibration
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=3000)
    >>> y = rng.uniform(size=3000) < 1 / (1 + np.exp(-z))
    >>> p = 1 / (1 + np.exp(-2 * z))  # over-confident: true slope 0.5
    >>> res = logistic_calibration(y, p, n_resamples=200, rng=0)
    >>> round(res.slope.value, 2), round(res.intercept.value, 2)
    (0.49, 0.05)
    """
    est = _logistic("logistic_calibration", y_true, y_prob, groups=groups, method=method,
                    n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                    pos_label=pos_label)
    return LogisticCalibration(intercept=est[0], slope=est[1], slope_model_intercept=est[2])


def calibration_intercept(
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
    """Calibration intercept: ``a`` in ``logit P(y=1) = a + logit(p)`` (0 is ideal).

    {params}

    Returns
    -------
    Estimate
        The intercept with its interval (same replicates as :func:`logistic_calibration`).

    Notes
    -----
    {notes}

    {refs}

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import calibration_intercept
    >>> rng = np.random.default_rng(1)
    >>> z = rng.normal(size=2000)
    >>> y = rng.uniform(size=2000) < 1 / (1 + np.exp(-(z - 0.5)))
    >>> p = 1 / (1 + np.exp(-z))  # risks over-estimated by 0.5 on the logit scale
    >>> est = calibration_intercept(y, p, n_resamples=200, rng=0)
    >>> round(est.value, 2)  # statsmodels GLM with offset: -0.38 (SE 0.05)
    -0.38
    """
    return _logistic("calibration_intercept", y_true, y_prob, groups=groups, method=method,
                     n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                     pos_label=pos_label, report=(0,))[0]


def calibration_slope(
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
    """Calibration slope: ``b`` in ``logit P(y=1) = a' + b logit(p)`` (1 is ideal).

    {params}

    Returns
    -------
    Estimate
        The slope with its interval (same replicates as :func:`logistic_calibration`).

    Notes
    -----
    {notes}

    {refs}

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import calibration_slope
    >>> rng = np.random.default_rng(2)
    >>> z = rng.normal(size=2000)
    >>> y = rng.uniform(size=2000) < 1 / (1 + np.exp(-z))
    >>> p = 1 / (1 + np.exp(-0.5 * z))  # too modest: true slope 2
    >>> est = calibration_slope(y, p, n_resamples=200, rng=0)
    >>> round(est.value, 1), est.ci.low < 2 < est.ci.high
    (2.0, True)
    """
    return _logistic("calibration_slope", y_true, y_prob, groups=groups, method=method,
                     n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                     pos_label=pos_label, report=(1,))[1]


for _f in (logistic_calibration, calibration_intercept, calibration_slope):
    _f.__doc__ = _f.__doc__.format(params=_PARAMS, notes=_NOTES, refs=_REFS)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpiegelhalterTest:
    """Spiegelhalter's z test of calibration.

    Parameters
    ----------
    statistic : float
        The z statistic (NaN when undefined).
    p_value : float
        Two-sided p-value under the standard normal.
    n : int
    n_clusters : int or None
    method : str
        ``"spiegelhalter"`` (binomial variance) or ``"spiegelhalter-cluster-robust"``.
    """

    statistic: float
    p_value: float
    n: int
    n_clusters: int | None
    method: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)
        return {"statistic": num(self.statistic), "p_value": num(self.p_value), "n": self.n,
                "n_clusters": self.n_clusters, "method": self.method}


def spiegelhalter_test(
    y_true: Any,
    y_prob: Any,
    *,
    groups: Any = None,
    pos_label: Any = 1,
) -> SpiegelhalterTest:
    """Spiegelhalter's (1986) z test of the null hypothesis that the probabilities are calibrated.

    ``Z = sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p))``; under the null
    (independent ``y_i ~ Bernoulli(p_i)``) Z is approximately standard normal.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_prob : array-like of shape (n,)
        Predicted probabilities, in [0, 1].
    groups : array-like of shape (n,), optional
        Cluster (patient) ids. Images of one patient are not independent, so
        the variance is then the empirical cluster-robust one,
        ``sum_c (sum_{{i in c}} (y_i - p_i)(1 - 2 p_i))^2``.
    pos_label : default 1
        The label of the positive class.

    Returns
    -------
    SpiegelhalterTest
        Statistic and two-sided p-value; NaN with an
        :class:`~claimladder._core.UndefinedMetricWarning` when the variance is
        zero (every p in {{0, 0.5, 1}}) or the input is empty.

    Notes
    -----
    The numerator is the Brier score minus its expectation under calibration,
    so the test is sensitive to miscalibration in either direction; a small
    p-value at large n may reflect clinically negligible miscalibration, so
    report it next to the ECE and the calibration slope.

    References
    ----------
    Spiegelhalter DJ. Probabilistic prediction in patient management and clinical
    trials. Stat Med 1986;5:421-433.

    Examples
    --------
    >>> from claimladder.calibration import spiegelhalter_test
    >>> res = spiegelhalter_test([0, 1, 0, 1, 1, 0], [0.2, 0.6, 0.4, 0.7, 0.5, 0.3])
    >>> round(res.statistic, 3), round(res.p_value, 3)
    (-1.37, 0.171)
    """
    owner = "spiegelhalter_test"
    data = binary_inputs(y_true, y_prob, groups=groups, pos_label=pos_label, owner=owner)
    y, p = data.y.astype(np.float64), data.p
    c = data.clusters
    n_clusters = int(np.unique(c.codes).size) if c.given else None
    method = "spiegelhalter-cluster-robust" if c.given else "spiegelhalter"
    term = (y - p) * (1 - 2 * p)
    if c.given:
        var = float(np.sum(np.bincount(c.codes, weights=term, minlength=c.n_clusters) ** 2))
    else:
        var = float(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    if data.n == 0 or not var > 0:
        warnings.warn(
            "Spiegelhalter's test is undefined: "
            + ("there are no rows" if data.n == 0 else "its variance is zero")
            + ". Returning NaN.", UndefinedMetricWarning, stacklevel=2)
        return SpiegelhalterTest(statistic=math.nan, p_value=math.nan, n=data.n,
                                 n_clusters=n_clusters, method=method)
    z = float(term.sum() / math.sqrt(var))
    return SpiegelhalterTest(statistic=z, p_value=float(2 * ndtr(-abs(z))), n=data.n,
                             n_clusters=n_clusters, method=method)
