"""Recalibration maps against scikit-learn, statsmodels, betacal and scipy; the partition guard."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, logsumexp
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from claimladder.calibration import Recalibrator, fit_recalibration
from claimladder.splits import TuningLedger


def _overconfident(seed, n=1000, k=2.5, shift=0.4):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = (rng.uniform(size=n) < expit(shift + z)).astype(int)
    return y, expit(k * z)


def test_platt_equals_unpenalised_logistic_regression():
    y, p = _overconfident(0)
    rec = fit_recalibration(y, p, method="platt", partition="calibration")
    lp = np.log(p / (1 - p))[:, None]
    sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(lp, y)
    assert rec.params["slope"] == pytest.approx(sk.coef_[0, 0], abs=1e-6)
    assert rec.params["intercept"] == pytest.approx(sk.intercept_[0], abs=1e-6)
    new = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(rec.transform(new),
                               sk.predict_proba(np.log(new / (1 - new))[:, None])[:, 1],
                               atol=1e-6)


def test_platt_with_smoothed_targets_equals_sklearn_sigmoid_calibration():
    # sklearn 1.9 sklearn.calibration._sigmoid_calibration(predictions, y): Platt's smoothed
    # targets, fitted by L-BFGS on the raw predictions (here logit p); returns (-slope, -b).
    from sklearn.calibration import _sigmoid_calibration

    y, p = _overconfident(1, n=400)
    rec = fit_recalibration(y, p, method="platt", smooth_targets=True, partition="calib")
    lp = np.log(p / (1 - p))
    a, b = _sigmoid_calibration(lp, y)
    assert rec.params["slope"] == pytest.approx(-a, abs=1e-4)
    assert rec.params["intercept"] == pytest.approx(-b, abs=1e-4)


def test_isotonic_equals_sklearn():
    y, p = _overconfident(2)
    p = np.round(p, 3)  # ties
    rec = fit_recalibration(y, p, method="isotonic", partition="calibration")
    iso = IsotonicRegression(out_of_bounds="clip").fit(p, y)
    new = np.concatenate([np.linspace(0, 1, 101), p[:50]])
    np.testing.assert_allclose(rec.transform(new), iso.predict(new), atol=1e-12)
    np.testing.assert_allclose(rec.params["x"], iso.X_thresholds_, atol=0)


def test_beta_equals_betacal_and_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    betacal = pytest.importorskip("betacal")
    rng = np.random.default_rng(3)
    p = rng.beta(0.6, 0.9, size=1500)
    y = (rng.uniform(size=1500) < p**0.6 / (p**0.6 + (1 - p) ** 1.4)).astype(int)
    rec = fit_recalibration(y, p, method="beta", partition="calibration")
    q = np.clip(p, np.finfo(float).eps, 1 - np.finfo(float).eps)
    design = sm.add_constant(np.column_stack([np.log(q), -np.log1p(-q)]))
    fit = sm.Logit(y, design).fit(disp=0, tol=1e-12)
    assert (rec.params["c"], rec.params["a"], rec.params["b"]) == pytest.approx(
        tuple(fit.params), abs=1e-7)
    # betacal 1.1.0 (the authors' package) fits sklearn LogisticRegression(C=1e11) with
    # lbfgs at its default tolerance; its predictions differ from the exact MLE by up to
    # 1.8e-4 here (measured), hence 1e-3.
    bc = betacal.BetaCalibration("abm").fit(p, y)
    new = np.linspace(0.01, 0.99, 99)
    np.testing.assert_allclose(rec.transform(new), bc.predict(new), atol=1e-3)


def test_beta_drops_a_negative_coefficient_as_betacal_does():
    betacal = pytest.importorskip("betacal")
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.99, size=800)
    y = (rng.uniform(size=800) < 1 - p).astype(int)  # anti-monotone: a or b wants to be < 0
    rec = fit_recalibration(y, p, method="beta", partition="calibration")
    # One coefficient was negative and is fixed at 0 (the refit, like betacal's, does not
    # re-check the other's sign).
    assert 0.0 in (rec.params["a"], rec.params["b"])
    new = np.linspace(0.02, 0.98, 49)
    np.testing.assert_allclose(rec.transform(new),
                               betacal.BetaCalibration("abm").fit(p, y).predict(new),
                               atol=1e-3)


def test_binary_temperature_equals_scipy_minimisation():
    y, p = _overconfident(5)
    rec = fit_recalibration(y, p, method="temperature", partition="calibration")
    lp = np.log(p / (1 - p))

    def nll(t):
        q = expit(lp / t)
        return -np.sum(y * np.log(q) + (1 - y) * np.log1p(-q))

    best = minimize_scalar(nll, bounds=(0.05, 20), method="bounded",
                           options={"xatol": 1e-12}).x
    assert rec.params["temperature"] == pytest.approx(best, rel=1e-6)


def test_multiclass_temperature_equals_scipy_minimisation():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(600, 5)) * 3
    true = np.exp(logits / 3) / np.exp(logits / 3).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=r) for r in true])
    prob = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    rec = fit_recalibration(y, prob, method="temperature", partition="calibration")

    def nll(t):
        z = np.log(prob) / t
        return np.sum(logsumexp(z, axis=1) - z[np.arange(600), y])

    best = minimize_scalar(nll, bounds=(0.05, 20), method="bounded",
                           options={"xatol": 1e-12}).x
    assert rec.params["temperature"] == pytest.approx(best, rel=1e-6)
    out = rec.transform(prob)
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-12)
    assert (out.argmax(1) == prob.argmax(1)).all()
    assert rec.n_classes == 5


def test_recalibration_improves_calibration_on_held_out_data():
    from claimladder.calibration import expected_calibration_error

    y, p = _overconfident(7, n=4000, shift=0.0)  # temperature cannot fix a shift
    before = expected_calibration_error(y[2000:], p[2000:], n_resamples=10, rng=0).value
    for method in ("platt", "temperature", "isotonic", "beta"):
        rec = fit_recalibration(y[:2000], p[:2000], method=method, partition="calibration")
        after = expected_calibration_error(y[2000:], rec.transform(p[2000:]), n_resamples=10,
                                           rng=0).value
        assert after < before / 2, method


@pytest.mark.parametrize("name", ["internal_test", "test", "my_test_set", "external_C",
                                  "external"])
def test_refuses_test_partitions(name):
    y, p = _overconfident(8, n=100)
    with pytest.raises(ValueError, match="refuses to fit on partition.*Fit on the calibration"):
        fit_recalibration(y, p, partition=name)


def test_refuses_sealed_partition_and_records_forced_fits():
    y, p = _overconfident(9, n=100)
    with pytest.raises(ValueError, match="sealed"):
        fit_recalibration(y, p, partition="holdout", sealed_partitions=["holdout"])
    with pytest.warns(UserWarning, match="forced"):
        rec = fit_recalibration(y, p, partition="internal_test", force=True)
    assert rec.fit_record.params["forced"] is True
    ledger = TuningLedger().add(rec.fit_record)
    assert [f.status.value for f in ledger.check(sealed_names=[])] == ["fail"]
    ok = fit_recalibration(y, p, partition="calibration", groups=np.arange(100) // 2)
    assert ok.fit_record.kind == "recalibration" and ok.fit_record.n_patients == 50
    assert [f.status.value for f in TuningLedger().add(ok.fit_record).check([])] == ["pass"]


def test_misuse_messages():
    y, p = _overconfident(10, n=50)
    with pytest.raises(ValueError, match="needs both classes"):
        fit_recalibration(np.zeros(50), p, partition="calibration")
    with pytest.raises(ValueError, match="Did you mean 'platt'"):
        fit_recalibration(y, p, method="plat", partition="calibration")
    with pytest.raises(ValueError, match="method='temperature' for a probability matrix"):
        fit_recalibration(y, np.column_stack([1 - p, p]), method="isotonic",
                          partition="calibration")
    with pytest.raises(ValueError, match="non-empty name"):
        fit_recalibration(y, p, partition="")


def test_recalibrator_is_frozen_and_serialisable():
    y, p = _overconfident(11, n=200)
    rec = fit_recalibration(y, p, method="isotonic", partition="calibration")
    assert isinstance(rec, Recalibrator)
    with pytest.raises(AttributeError):
        rec.method = "platt"
    d = rec.to_dict()
    assert d["fit_record"]["partition"] == "calibration" and d["method"] == "isotonic"
    import json

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        json.dumps(d, allow_nan=False)
