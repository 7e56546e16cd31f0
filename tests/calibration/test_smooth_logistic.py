"""Smooth ECE against relplot and a direct kernel sum; logistic calibration against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from claimladder._core import UndefinedMetricWarning
from claimladder.calibration import (
    calibration_intercept,
    calibration_slope,
    logistic_calibration,
    smooth_calibration_error,
    spiegelhalter_test,
)
from reference import calibration as ref
from reference.bootstrap import cluster_draws, resampled_rows

sm = pytest.importorskip("statsmodels.api")


def _data(seed, n, power):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p**power).astype(int)
    return y, p


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1])
def test_smooth_ece_at_fixed_bandwidth_equals_direct_kernel_sum(sigma):
    y, p = _data(0, 150, 1.8)
    ours = smooth_calibration_error(y, p, bandwidth=sigma, n_resamples=10, rng=0).value
    # Grid of 2001 points vs the exact kernel: discretisation error O((h / sigma)^2).
    assert ours == pytest.approx(ref.smooth_ece_at(y, p, sigma, n_eval=4001, images=2),
                                 rel=2e-4)


@pytest.mark.parametrize("seed,n,power", [(1, 2000, 1.5), (2, 500, 1.0), (3, 300, 3.0),
                                          (4, 5000, 0.7)])
def test_smooth_ece_agrees_with_relplot(seed, n, power):
    # relplot 1.0.3: relplot.smECE(f, y, return_width=True) and smooth_ece(f, y, sigma).
    relplot = pytest.importorskip("relplot")
    from relplot.metrics import smooth_ece

    y, p = _data(seed, n, power)
    value, width = relplot.smECE(p, y.astype(float), return_width=True)
    at_width = smooth_calibration_error(y, p, bandwidth=width, n_resamples=10, rng=0).value
    # Same estimator at relplot's bandwidth; relplot reflects once and sums |r| * density on
    # a 200-point mesh (vs our trapezoid on 2001), which accounts for the 0.5 % tolerance.
    assert at_width == pytest.approx(smooth_ece(p, y.astype(float), width), rel=5e-3)
    ours = smooth_calibration_error(y, p, n_resamples=10, rng=0).value
    # relplot bisects 10 times (width within 2**-10 of the fixed point); ours to 1e-12.
    assert ours == pytest.approx(value, abs=2e-3)
    # The fixed point: the value is its own bandwidth.
    again = smooth_calibration_error(y, p, bandwidth=max(ours, 1e-3), n_resamples=10,
                                     rng=0).value
    assert again == pytest.approx(ours, abs=1e-9)


def test_smooth_ece_of_uniform_overprediction_is_the_mean_residual():
    # Residuals p - y > 0 in expectation everywhere: smoothing never cancels, smECE = CITL.
    y, p = _data(5, 3000, 1.5)
    ours = smooth_calibration_error(y, p, n_resamples=10, rng=0).value
    assert ours == pytest.approx(p.mean() - y.mean(), rel=1e-6)


def test_smooth_ece_bootstrap_replicates_equal_the_explicit_resample():
    y, p = _data(6, 120, 2.0)
    g = np.arange(120) // 2
    from claimladder.calibration._smooth import smooth_statistic
    from claimladder.metrics._engine import bootstrap

    reps = bootstrap(smooth_statistic(y.astype(bool), p, g, 60), 5, 3)[:, 0]
    for r, draw in enumerate(cluster_draws(60, 5, seed=3)):
        rows = resampled_rows(g, draw)
        expected = smooth_calibration_error(y[rows], p[rows], n_resamples=2, rng=0).value
        assert reps[r] == pytest.approx(expected, abs=1e-10)


def _statsmodels_fits(y, p):
    lp = np.log(np.clip(p, 1e-300, 1) / np.clip(1 - p, 1e-300, 1))
    intercept = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(),
                       offset=lp).fit(tol=1e-13).params[0]
    slope_model = sm.Logit(y, sm.add_constant(lp)).fit(disp=0, tol=1e-13, maxiter=200).params
    return intercept, slope_model[1], slope_model[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intercept_and_slope_equal_statsmodels(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=800)
    y = (rng.uniform(size=800) < 1 / (1 + np.exp(-(0.3 + 0.8 * z)))).astype(float)
    p = 1 / (1 + np.exp(-z))
    res = logistic_calibration(y, p, n_resamples=20, rng=0)
    a, b, a2 = _statsmodels_fits(y, p)
    assert res.intercept.value == pytest.approx(a, abs=1e-8)
    assert res.slope.value == pytest.approx(b, abs=1e-8)
    assert res.slope_model_intercept.value == pytest.approx(a2, abs=1e-8)
    assert calibration_intercept(y, p, n_resamples=20, rng=0) == res.intercept
    assert calibration_slope(y, p, n_resamples=20, rng=0) == res.slope


def test_logistic_replicates_equal_statsmodels_on_explicit_resamples():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(100), 2)
    z = rng.normal(size=200)
    y = (rng.uniform(size=200) < 1 / (1 + np.exp(-z))).astype(float)
    p = 1 / (1 + np.exp(-1.5 * z))
    from claimladder.calibration._logistic import logistic_statistic
    from claimladder.metrics._engine import bootstrap

    reps = bootstrap(logistic_statistic(y.astype(bool), p, g, 100), 8, 5)
    for r, draw in enumerate(cluster_draws(100, 8, seed=5)):
        rows = resampled_rows(g, draw)
        a, b, _ = _statsmodels_fits(y[rows], p[rows])
        assert reps[r, 0] == pytest.approx(a, abs=1e-7)
        assert reps[r, 1] == pytest.approx(b, abs=1e-7)


def test_single_class_and_separation_are_undefined():
    with pytest.warns(UndefinedMetricWarning, match="single class"):
        est = calibration_slope([1, 1, 1], [0.2, 0.5, 0.9], n_resamples=10, rng=0)
    assert math.isnan(est.value)
    with pytest.warns(UndefinedMetricWarning, match="separates the classes"):
        est = calibration_slope([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], n_resamples=10, rng=0)
    assert math.isnan(est.value)


def test_spiegelhalter_equals_its_formula():
    y, p = _data(7, 400, 1.3)
    res = spiegelhalter_test(y, p)
    z = np.sum((y - p) * (1 - 2 * p)) / np.sqrt(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    from scipy.stats import norm

    assert res.statistic == pytest.approx(z, rel=1e-12)
    assert res.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-10)
    g = np.arange(400) // 4
    clustered = spiegelhalter_test(y, p, groups=g)
    s = np.bincount(g, weights=(y - p) * (1 - 2 * p))
    assert clustered.statistic == pytest.approx(s.sum() / np.sqrt(np.sum(s**2)), rel=1e-12)
    assert clustered.method == "spiegelhalter-cluster-robust" and clustered.n_clusters == 100


def test_spiegelhalter_null_distribution_is_roughly_uniform():
    rng = np.random.default_rng(8)
    pvals = []
    for _ in range(200):
        p = rng.uniform(0.05, 0.95, size=300)
        y = rng.uniform(size=300) < p
        pvals.append(spiegelhalter_test(y, p).p_value)
    assert 0.02 < np.mean(np.array(pvals) < 0.05) < 0.10


def test_spiegelhalter_undefined_when_variance_is_zero():
    with pytest.warns(UndefinedMetricWarning, match="variance is zero"):
        res = spiegelhalter_test([0, 1], [0.5, 0.5])
    assert math.isnan(res.statistic)
