"""Recalibration maps fitted on a named (calibration) partition: Platt, temperature, isotonic, beta."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import isotonic_regression
from scipy.special import expit, logsumexp, softmax

from .._core import check_option
from ..metrics._inputs import as_scores
from ..splits import FitRecord
from ._inputs import (
    binary_inputs,
    check_partition,
    multiclass_inputs,
    n_patients,
    probability_matrix,
)
from ._logistic import EPS, irls, logit

__all__ = ["RECALIBRATION_METHODS", "Recalibrator", "fit_recalibration"]

RECALIBRATION_METHODS = ("platt", "temperature", "isotonic", "beta")
_DESCRIPTIONS = {
    "platt": "Platt scaling (logistic regression on logit p)",
    "temperature": "temperature scaling",
    "isotonic": "isotonic regression (PAV)",
    "beta": "beta calibration (Kull et al. 2017)",
}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Recalibrator:
    """A fitted recalibration map and the record of what it was fitted on.

    Parameters
    ----------
    method : {"platt", "temperature", "isotonic", "beta"}
        The map.
    params : dict
        Fitted values: ``platt`` ``{"intercept", "slope"}`` (on logit p);
        ``temperature`` ``{"temperature"}``; ``beta`` ``{"a", "b", "c"}`` with
        ``p' = expit(c + a ln p - b ln(1 - p))``; ``isotonic`` ``{"x", "y"}``,
        the knots of the non-decreasing piecewise-linear map.
    fit_record : FitRecord
        Kind ``"recalibration"``, the partition, image and patient counts, the
        parameters; add it to the study's :class:`~claimladder.splits.TuningLedger`.
    n_classes : int
        2 for binary maps (input: positive-class probabilities); K for
        multiclass temperature scaling (input: (n, K) matrices).
    """

    method: str
    params: Mapping[str, Any]
    fit_record: FitRecord
    n_classes: int = 2
    _x: np.ndarray | None = field(default=None, repr=False)
    _y: np.ndarray | None = field(default=None, repr=False)

    def transform(self, y_prob: Any) -> np.ndarray:
        """Recalibrated probabilities, the same shape as ``y_prob``.

        Parameters
        ----------
        y_prob : array-like of shape (n,) or (n, n_classes)
            Positive-class probabilities (binary maps) or class probability
            matrices (multiclass temperature scaling).

        Returns
        -------
        numpy.ndarray
        """
        owner = "Recalibrator.transform"
        if self.n_classes > 2:
            prob = probability_matrix(y_prob, owner)
            if prob.shape[1] != self.n_classes:
                raise ValueError(
                    f"This recalibrator was fitted on {self.n_classes} classes but y_prob has "
                    f"{prob.shape[1]} columns."
                )
            log_p = np.log(np.clip(prob, EPS, 1.0))
            return softmax(log_p / self.params["temperature"], axis=1)
        p = as_scores(y_prob, "y_prob", owner, probabilities=True)
        if self.method == "platt":
            return expit(self.params["intercept"] + self.params["slope"] * logit(p))
        if self.method == "temperature":
            return expit(logit(p) / self.params["temperature"])
        if self.method == "beta":
            q = np.clip(p, EPS, 1 - EPS)
            return expit(self.params["c"] + self.params["a"] * np.log(q)
                         - self.params["b"] * np.log1p(-q))
        return np.interp(p, self._x, self._y)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"method": self.method, "params": _jsonable(self.params),
                "n_classes": self.n_classes, "fit_record": self.fit_record.to_dict()}


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, list)) else float(v))
            for k, v in params.items()}


def _fit_temperature(log_p: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the log loss of ``softmax(log_p / T)`` (Newton on ``1/T``)."""
    rows = np.arange(y.size)
    true = log_p[rows, y]

    def nll(beta: float) -> float:
        return float(np.sum(logsumexp(beta * log_p, axis=1) - beta * true))

    beta, value = 1.0, nll(1.0)
    for _ in range(100):
        s = softmax(beta * log_p, axis=1)
        mean = np.sum(s * log_p, axis=1)
        grad = float(np.sum(mean - true))
        hess = float(np.sum(np.sum(s * log_p**2, axis=1) - mean**2))
        if not hess > 0:
            break
        step = -grad / hess
        for _half in range(60):
            new_value = nll(beta + step)
            if new_value <= value + 1e-12 * abs(value):
                break
            step *= 0.5
        beta += step
        value = nll(beta)
        if abs(step) <= 1e-12 * (1 + abs(beta)):
            break
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(
            "Temperature scaling failed: the fitted inverse temperature is not positive, so "
            "the scores rank the classes backwards on the calibration data. Check the class "
            "order of y_prob, or use method='platt' or 'isotonic'."
        )
    return 1.0 / beta


def _fit_beta(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    q = np.clip(p, EPS, 1 - EPS)
    la, lb = np.log(q), -np.log1p(-q)
    ones = np.ones_like(q)
    coef = irls(np.column_stack([ones, la, lb]), y, w)[:, 0]
    a, b, c = coef[1], coef[2], coef[0]
    # Kull et al. (2017), section 3.3: a, b >= 0 keeps the map monotone; refit without the
    # offending term, as the authors' betacal package does.
    if a < 0:
        coef = irls(np.column_stack([ones, lb]), y, w)[:, 0]
        a, b, c = 0.0, coef[1], coef[0]
    elif b < 0:
        coef = irls(np.column_stack([ones, la]), y, w)[:, 0]
        a, b, c = coef[1], 0.0, coef[0]
    return {"a": float(a), "b": float(b), "c": float(c)}


def _fit_isotonic(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the isotonic (PAV) fit, ties pooled and redundant knots dropped (as sklearn)."""
    x, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y.astype(np.float64)) / counts
    fitted = isotonic_regression(means, weights=counts.astype(np.float64), increasing=True).x
    fitted = np.clip(fitted, 0.0, 1.0)
    if x.size > 2:
        keep = np.ones(x.size, dtype=bool)
        keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
        x, fitted = x[keep], fitted[keep]
    return x, fitted


def fit_recalibration(
    y_true: Any,
    y_prob: Any,
    *,
    method: Literal["platt", "temperature", "isotonic", "beta"] = "platt",
    partition: str,
    sealed_partitions: Collection[str] = (),
    force: bool = False,
    groups: Any = None,
    classes: Any = None,
    pos_label: Any = 1,
    smooth_targets: bool = False,
) -> Recalibrator:
    """Fit a recalibration map on the data of one named partition.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels of the calibration data.
    y_prob : array-like of shape (n,) or (n, n_classes)
        Positive-class probabilities, or class probability matrices (only
        ``method="temperature"`` is multiclass).
    method : {"platt", "temperature", "isotonic", "beta"}, default "platt"
        ``platt``: logistic regression of ``y`` on ``logit(p)`` (two
        parameters). ``temperature``: ``softmax(log p / T)`` (one parameter;
        ranking preserved). ``isotonic``: the non-decreasing step-free map of
        the pool-adjacent-violators fit, interpolated linearly and clipped at the
        ends. ``beta``: ``expit(c + a ln p - b ln(1 - p))`` with ``a, b >= 0``
        (Kull et al. 2017).
    partition : str
        Name of the partition the data come from (e.g. ``"calibration"``).
        Recorded in the fit record.
    sealed_partitions : collection of str, optional
        Names of the sealed (locked) partitions.
    force : bool, default False
        Fit even on a test or sealed partition (with a warning; the record
        carries ``params["forced"] = True``).
    groups : array-like of shape (n,), optional
        Patient ids, only to count patients in the fit record.
    classes : sequence, optional
        Class label of each column of a probability matrix.
    pos_label : default 1
        The positive class of binary labels.
    smooth_targets : bool, default False
        Platt only: fit to Platt's (1999) smoothed targets ``(N+ + 1) / (N+ + 2)``
        and ``1 / (N- + 2)`` instead of 0/1 (as
        :class:`sklearn.calibration.CalibratedClassifierCV` does).

    Returns
    -------
    Recalibrator
        Frozen; ``transform(p)`` applies the map.

    Raises
    ------
    ValueError
        When ``partition`` is a test partition (its name contains ``"test"`` or
        starts with ``"external"``) or is sealed, unless ``force=True``; for
        invalid data; for a multiclass matrix with a binary-only method; when
        Platt or beta scaling has no finite fit (one class only, perfect
        separation).

    Notes
    -----
    Platt and beta fits are unpenalised maximum likelihood (Newton-Raphson);
    they equal ``statsmodels`` ``Logit`` and ``sklearn`` ``LogisticRegression(
    penalty=None)`` on the same features. Isotonic regression equals
    :class:`sklearn.isotonic.IsotonicRegression` with ``out_of_bounds="clip"``.
    Temperature scaling minimises the log loss over ``1/T`` by Newton's method
    (convex in ``1/T``).

    References
    ----------
    Platt J. Probabilistic outputs for support vector machines. In: Advances in Large
    Margin Classifiers. MIT Press; 1999.
    Zadrozny B, Elkan C. Transforming classifier scores into accurate multiclass
    probability estimates. KDD 2002.
    Guo C, Pleiss G, Sun Y, Weinberger KQ. On calibration of modern neural networks.
    ICML 2017, section 4.2.
    Kull M, Silva Filho TM, Flach P. Beta calibration: a well-founded and easily
    implemented improvement on logistic calibration for binary classifiers.
    AISTATS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import fit_recalibration
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=1000)
    >>> y = rng.uniform(size=1000) < 1 / (1 + np.exp(-z))
    >>> p = 1 / (1 + np.exp(-3 * z))  # over-confident
    >>> rec = fit_recalibration(y, p, method="temperature", partition="calibration")
    >>> round(rec.params["temperature"], 2), rec.fit_record.partition
    (3.6, 'calibration')
    >>> fit_recalibration(y, p, partition="internal_test")
    Traceback (most recent call last):
    ...
    ValueError: fit_recalibration refuses to fit on partition 'internal_test': ...
    """
    owner = "fit_recalibration"
    method = check_option(method, RECALIBRATION_METHODS, param="method", owner=owner)
    forced = check_partition(partition, sealed_partitions=sealed_partitions, force=force,
                             owner=owner)
    arr = y_prob.to_numpy() if hasattr(y_prob, "to_numpy") else np.asarray(y_prob)
    if arr.ndim == 2:
        if method != "temperature":
            raise ValueError(
                f"fit_recalibration(method={method!r}) is binary; y_prob has {arr.shape[1]} "
                "columns. Use method='temperature' for a probability matrix, or recalibrate "
                "one column against the rest (y_true == label) with a binary method."
            )
        data = multiclass_inputs(y_true, arr, classes=classes, groups=groups, owner=owner)
        if data.n == 0:
            raise ValueError(f"{owner} needs at least one row of calibration data.")
        temperature = _fit_temperature(np.log(np.clip(data.prob, EPS, 1.0)), data.y)
        params: dict[str, Any] = {"temperature": temperature}
        return _make(method, params, partition, data.n, n_patients(data.clusters), forced,
                     n_classes=data.prob.shape[1])
    data = binary_inputs(y_true, arr, groups=groups, pos_label=pos_label, owner=owner)
    if data.n == 0:
        raise ValueError(f"{owner} needs at least one row of calibration data.")
    y, p = data.y, data.p
    if method in ("platt", "beta") and (y.all() or not y.any()):
        raise ValueError(
            f"{owner}(method={method!r}) needs both classes in the calibration data; "
            f"partition {partition!r} has {int(y.sum())} positive and {int((~y).sum())} "
            "negative rows. Use a larger calibration partition."
        )
    x_knots = y_knots = None
    if method == "platt":
        target = y.astype(np.float64)
        if smooth_targets:
            n_pos, n_neg = int(y.sum()), int((~y).sum())
            target = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
        coef = irls(np.column_stack([np.ones(data.n), logit(p)]), target,
                    np.ones((data.n, 1)), start=np.array([0.0, 1.0]))[:, 0]
        params = {"intercept": float(coef[0]), "slope": float(coef[1])}
    elif method == "temperature":
        log_p = np.column_stack([np.log(np.clip(1 - p, EPS, 1.0)), np.log(np.clip(p, EPS, 1.0))])
        params = {"temperature": _fit_temperature(log_p, y.astype(np.intp))}
    elif method == "beta":
        params = _fit_beta(y.astype(np.float64), p, np.ones((data.n, 1)))
    else:
        x_knots, y_knots = _fit_isotonic(y, p)
        params = {"x": x_knots.tolist(), "y": y_knots.tolist()}
    if any(isinstance(v, float) and math.isnan(v) for v in params.values()):
        raise ValueError(
            f"{owner}(method={method!r}) has no finite fit on partition {partition!r}: the "
            "scores separate the classes perfectly. Use method='isotonic' or more data."
        )
    return _make(method, params, partition, data.n, n_patients(data.clusters), forced,
                 x=x_knots, y=y_knots)


def _make(method: str, params: dict[str, Any], partition: str, n: int, patients: int | None,
          forced: bool, *, n_classes: int = 2, x: np.ndarray | None = None,
          y: np.ndarray | None = None) -> Recalibrator:
    record_params: dict[str, Any] = {"method": method}
    if method == "isotonic":
        record_params["n_knots"] = len(params["x"])
    else:
        record_params.update(params)
    if n_classes > 2:
        record_params["n_classes"] = n_classes
    if forced:
        record_params["forced"] = True
    record = FitRecord(kind="recalibration", partition=partition, n_images=n,
                       n_patients=patients, description=_DESCRIPTIONS[method],
                       params=record_params)
    return Recalibrator(method=method, params=params, fit_record=record, n_classes=n_classes,
                        _x=x, _y=y)
