"""The weighted-resampling engine against explicit resampling, scikit-learn and SciPy."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from claimladder._core import SmallSampleWarning
from claimladder.metrics import _engine as engine
from claimladder.metrics import bootstrap_distribution, roc_auc
from claimladder.metrics._estimate import SPECS, build, prepare
from reference.bootstrap import cluster_draws, resampled_rows


def _clustered(seed=0, n_patients=40, per_patient=3, decimals=1):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_patients), per_patient)
    effect = rng.normal(size=n_patients)[g]
    y = (rng.random(g.size) < 0.35 + 0.1 * (effect > 0)).astype(int)
    s = np.round(np.clip(0.5 + 0.2 * y + 0.15 * effect + 0.15 * rng.normal(size=g.size), 0, 1),
                 decimals)
    return y, s, g


SKLEARN = {
    "roc_auc": lambda y, s: skm.roc_auc_score(y, s),
    "average_precision": lambda y, s: skm.average_precision_score(y, s),
    "sensitivity": lambda y, s: skm.recall_score(y, s >= 0.5),
    "ppv": lambda y, s: skm.precision_score(y, s >= 0.5, zero_division=np.nan),
    "f1": lambda y, s: skm.f1_score(y, s >= 0.5),
    "balanced_accuracy": lambda y, s: skm.balanced_accuracy_score(y, s >= 0.5),
    "brier_score": lambda y, s: skm.brier_score_loss(y, s),
    "log_loss": lambda y, s: skm.log_loss(y, y_proba=s, labels=[0, 1]),
}


@pytest.mark.parametrize("metric", list(SKLEARN))
@pytest.mark.parametrize("clustered", [True, False], ids=["cluster", "row"])
def test_replicate_equals_sklearn_on_explicit_resample(metric, clustered):
    y, s, g = _clustered()
    groups = g if clustered else None
    n_resamples = 70  # spans two 64-replicate chunks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        dist = bootstrap_distribution(metric, y, s, groups=groups, n_resamples=n_resamples,
                                      rng=123)
    codes = g if clustered else np.arange(y.size)
    draws = cluster_draws(int(codes.max()) + 1, n_resamples, seed=123)
    for r in (0, 1, 63, 64, 69):
        rows = resampled_rows(codes, draws[r])
        yy, ss = y[rows], s[rows]
        if 0 < yy.sum() < yy.size:
            expected = SKLEARN[metric](yy, ss)
            assert dist.replicates[r] == pytest.approx(expected, abs=1e-12), r
        elif metric in ("roc_auc", "balanced_accuracy"):
            assert math.isnan(dist.replicates[r])


def test_results_do_not_depend_on_block_size(monkeypatch):
    y, s, g = _clustered(seed=1)
    reference = bootstrap_distribution("roc_auc", y, s, groups=g, n_resamples=150, rng=5)
    for budget in (1, 200, 10**9):
        monkeypatch.setattr(engine, "BLOCK_BUDGET", budget)
        again = bootstrap_distribution("roc_auc", y, s, groups=g, n_resamples=150, rng=5)
        np.testing.assert_array_equal(again.replicates, reference.replicates)


def test_float32_and_float64_products_agree(monkeypatch):
    y, s, g = _clustered(seed=2)
    fast = bootstrap_distribution("average_precision", y, s, groups=g, n_resamples=40, rng=1)
    monkeypatch.setattr(engine.Statistic, "product_dtype", lambda self: _force64(self))
    slow = bootstrap_distribution("average_precision", y, s, groups=g, n_resamples=40, rng=1)
    np.testing.assert_allclose(fast.replicates, slow.replicates, rtol=0, atol=1e-12)


def _force64(stat):
    stat._typed["dtype"] = np.float64
    stat._typed["mt"] = stat.mt.astype(np.float64)
    return np.float64


def test_first_replicates_do_not_depend_on_n_resamples():
    y, s, g = _clustered(seed=3)
    short = bootstrap_distribution("roc_auc", y, s, groups=g, n_resamples=10, rng=9)
    long = bootstrap_distribution("roc_auc", y, s, groups=g, n_resamples=100, rng=9)
    np.testing.assert_array_equal(short.replicates, long.replicates[:10])


@pytest.mark.parametrize("metric", ["roc_auc", "average_precision", "specificity", "log_loss",
                                    "sensitivity_at_specificity"])
def test_jackknife_equals_explicit_leave_one_cluster_out(metric):
    y, s, g = _clustered(seed=4, n_patients=15)
    spec = SPECS[metric]
    data = prepare(spec, y, s, groups=g, target=0.8, owner="test")
    stat = build(spec, data)
    jack = engine.jackknife(stat)[:, 0]
    for c in range(15):
        keep = g != c
        sub = prepare(spec, y[keep], s[keep], target=0.8, owner="test")
        expected = build(spec, sub).point()[0]
        assert jack[c] == pytest.approx(expected, abs=1e-12, nan_ok=True), c
    if metric == "roc_auc":
        for c in range(15):
            keep = g != c
            assert jack[c] == pytest.approx(skm.roc_auc_score(y[keep], s[keep]), abs=1e-12)


def test_grouped_jackknife_beyond_budget(monkeypatch):
    y, s, g = _clustered(seed=5, n_patients=30)
    spec = SPECS["average_precision"]
    stat = build(spec, prepare(spec, y, s, groups=g, owner="test"))
    monkeypatch.setattr(engine, "JACKKNIFE_BUDGET", 1)
    monkeypatch.setattr(engine, "MIN_JACKKNIFE_BLOCKS", 7)
    jack = engine.jackknife(stat)[:, 0]
    assert jack.shape == (7,)
    for block in range(7):
        keep = (g % 7) != block
        expected = skm.average_precision_score(y[keep], s[keep])
        assert jack[block] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("metric", ["roc_auc", "brier_score"])
def test_bca_equals_scipy_on_the_same_replicates(metric):
    # scipy.stats.bootstrap (SciPy 1.17) given our replicates through `bootstrap_result`
    # computes its own row jackknife and BCa interval; rows are our clusters here.
    y, s, _ = _clustered(seed=6)
    dist = bootstrap_distribution(metric, y, s, method="bca", n_resamples=400, rng=2)
    template = stats.bootstrap((y, s), lambda a, b: SKLEARN[metric](a, b), paired=True,
                               vectorized=False, n_resamples=2, method="percentile", rng=0)
    previous = dataclasses.replace(template, bootstrap_distribution=dist.replicates)
    res = stats.bootstrap((y, s), lambda a, b: SKLEARN[metric](a, b), paired=True,
                          vectorized=False, n_resamples=0, method="BCa",
                          bootstrap_result=previous)
    assert dist.estimate.ci.low == pytest.approx(res.confidence_interval.low, abs=1e-12)
    assert dist.estimate.ci.high == pytest.approx(res.confidence_interval.high, abs=1e-12)


def test_percentile_interval_is_numpy_quantile_of_replicates():
    y, s, g = _clustered(seed=7)
    dist = bootstrap_distribution("roc_auc", y, s, groups=g, n_resamples=300, rng=4,
                                  confidence_level=0.9)
    low, high = np.quantile(dist.replicates, [0.05, 0.95])
    assert (dist.estimate.ci.low, dist.estimate.ci.high) == pytest.approx((low, high), abs=1e-12)


def test_undefined_replicates_are_dropped_counted_and_warned():
    # One positive patient among 12: about a third of the replicates draw no positive.
    y = np.r_[np.ones(2, int), np.zeros(22, int)]
    s = np.linspace(0, 1, 24)[::-1]
    g = np.repeat(np.arange(12), 2)
    with pytest.warns(SmallSampleWarning, match=r"of 300 bootstrap replicates were undefined"):
        dist = bootstrap_distribution("roc_auc", y, s, groups=g, n_resamples=300, rng=0)
    assert dist.n_undefined == int(np.isnan(dist.replicates).sum())
    assert 50 < dist.n_undefined < 160
    finite = dist.replicates[np.isfinite(dist.replicates)]
    assert (dist.estimate.ci.low, dist.estimate.ci.high) == pytest.approx(
        tuple(np.quantile(finite, [0.025, 0.975])), abs=1e-12)


def test_metric_function_uses_the_same_replicates_as_bootstrap_distribution():
    y, s, g = _clustered(seed=8)
    dist = bootstrap_distribution("roc_auc", y, s, groups=g, n_resamples=200, rng=11)
    assert roc_auc(y, s, groups=g, n_resamples=200, rng=11) == dist.estimate


def test_unit_counts_reproduce_the_point_estimate_for_every_metric():
    y, s, g = _clustered(seed=9)
    for name, spec in SPECS.items():
        data = prepare(spec, y, s, groups=g, target=0.7, owner="test")
        stat = build(spec, data)
        ones = np.ones((2, stat.n_clusters))
        np.testing.assert_allclose(stat.evaluate(ones)[:, 0], stat.point()[0], atol=1e-12,
                                   err_msg=name)
