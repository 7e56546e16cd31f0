"""Binned calibration metrics against netcal, Kumar et al.'s package and brute-force oracles."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from claimladder._core import SmallSampleWarning, UndefinedMetricWarning
from claimladder.calibration import (
    brier_score_decomposition,
    calibration_in_the_large,
    debiased_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    observed_expected_ratio,
)
from claimladder.metrics import brier_score
from reference import calibration as ref
from reference.bootstrap import cluster_draws, resampled_rows

netcal_metrics = pytest.importorskip("netcal.metrics")


def _random(seed, n, power=1.3):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p**power).astype(int)
    return y, p


# Inputs with the awkward cases: ties, one repeated probability, empty bins, tiny n, 0 and 1.
CASES = {
    "random": _random(0, 400),
    "ties": (np.array([0, 1, 1, 0, 1, 0, 1, 1] * 5),
             np.array([0.25, 0.25, 0.7, 0.7, 0.7, 0.1, 0.9, 0.9] * 5)),
    "all_same_prob": (np.array([0, 1, 1, 0, 1, 1]), np.full(6, 0.42)),
    "empty_bins": (np.array([0, 0, 1, 1, 1]), np.array([0.01, 0.02, 0.97, 0.98, 0.99])),
    "tiny": (np.array([1]), np.array([0.3])),
    "extremes": (np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 1.0, 0.0])),
}


def _off_edges(p, n_bins):
    """Whether no probability lies on an interior uniform edge (where conventions differ)."""
    edges = np.linspace(0, 1, n_bins + 1)[1:-1]
    return not np.isin(p, edges).any()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("n_bins", [5, 15])
def test_ece_equals_netcal_and_brute_force(name, n_bins):
    y, p = CASES[name]
    ours = expected_calibration_error(y, p, n_bins=n_bins, n_resamples=20, rng=0).value
    # Brute-force oracle, right-closed bins, same uniform edges.
    expected = ref.ece(y.tolist(), p.tolist(), list(np.linspace(0, 1, n_bins + 1)))
    assert ours == pytest.approx(expected, abs=1e-12)
    # netcal 1.4.0 (netcal.metrics.ECE(bins).measure(p, y)) clips p to [eps, 1 - eps] and
    # uses left-closed bins; off the edges the two agree up to that clipping.
    if _off_edges(p, n_bins):
        assert ours == pytest.approx(netcal_metrics.ECE(n_bins).measure(p, y), abs=1e-12)


def test_bin_edge_convention_difference_with_netcal_is_explained():
    # 0.2 and 0.4 lie on the edges of 5 uniform bins: right-closed (ours, sklearn, Guo et al.)
    # and left-closed (netcal, numpy.histogram) put them in different bins.
    y = np.array([0, 1, 1, 0, 1, 0])
    p = np.array([0.2, 0.2, 0.4, 0.4, 0.9, 0.1])
    edges = list(np.linspace(0, 1, 6))
    ours = expected_calibration_error(y, p, n_bins=5, n_resamples=10, rng=0).value
    theirs = netcal_metrics.ECE(5).measure(p, y)
    assert ours == pytest.approx(ref.ece(y.tolist(), p.tolist(), edges, "right"), abs=1e-12)
    assert theirs == pytest.approx(ref.ece(y.tolist(), p.tolist(), edges, "left"), abs=1e-12)
    assert ours != pytest.approx(theirs)


@pytest.mark.parametrize("name", ["random", "ties", "all_same_prob", "empty_bins"])
def test_quantile_ece_equals_brute_force(name):
    y, p = CASES[name]
    ours = expected_calibration_error(y, p, n_bins=4, strategy="quantile", n_resamples=10,
                                      rng=0).value
    edges = ref.quantile_edges(p.tolist(), 4)
    assert ours == pytest.approx(ref.ece(y.tolist(), p.tolist(), edges), abs=1e-12)


@pytest.mark.parametrize("name", ["random", "ties", "empty_bins"])
def test_mce_equals_netcal_and_brute_force(name):
    y, p = CASES[name]
    ours = maximum_calibration_error(y, p, n_bins=10, n_resamples=10, rng=0).value
    assert ours == pytest.approx(ref.mce(y.tolist(), p.tolist(), ref.uniform_edges(10)),
                                 abs=1e-12)
    if _off_edges(p, 10):
        assert ours == pytest.approx(netcal_metrics.MCE(10).measure(p, y), abs=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_debiased_error_equals_kumar_et_al(strategy):
    # uncertainty-calibration 0.1.4 (pip install uncertainty-calibration), the authors' code:
    # calibration.lower_bound_scaling_ce(p=2, debias=True, binning_scheme=...) with our edges.
    kumar = pytest.importorskip("calibration")
    for seed in range(3):
        y, p = _random(seed, 600, power=1.6)
        ours = debiased_calibration_error(y, p, n_bins=10, strategy=strategy, n_resamples=10,
                                          rng=0).value
        edges = (np.linspace(0, 1, 11) if strategy == "uniform"
                 else np.percentile(p, np.linspace(0, 100, 11)))
        upper = list(edges[1:-1]) + [1.0]  # Kumar's bins are upper edges, searched left
        theirs = kumar.lower_bound_scaling_ce(p, y, p=2, debias=True, num_bins=10,
                                              binning_scheme=lambda probs, num_bins, u=upper: u)
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_debiased_error_is_smaller_than_plugin_l2_error():
    y, p = _random(4, 300, power=1.0)  # calibrated: the plug-in error is pure noise
    debiased = debiased_calibration_error(y, p, n_bins=10, n_resamples=10, rng=0).value
    plugin = math.sqrt(brier_score_decomposition(y, p, n_bins=10, strategy="quantile",
                                                 n_resamples=10, rng=0).reliability.value)
    assert debiased < plugin


def test_brier_decomposition_identity_with_bin_constant_probabilities():
    rng = np.random.default_rng(3)
    levels = np.array([0.05, 0.2, 0.35, 0.6, 0.8, 0.95])
    p = levels[rng.integers(0, levels.size, 500)]
    y = (rng.uniform(size=500) < p**1.2).astype(int)
    d = brier_score_decomposition(y, p, n_bins=20, n_resamples=50, rng=0)
    assert d.reliability.value - d.resolution.value + d.uncertainty.value == pytest.approx(
        d.brier.value, abs=1e-12)
    assert abs(d.within_bin.value) < 1e-12
    # Every replicate obeys the identity too (the within-bin term of each replicate is 0).
    assert d.within_bin.ci.low == pytest.approx(0, abs=1e-12)
    assert d.within_bin.ci.high == pytest.approx(0, abs=1e-12)
    assert d.brier.value == pytest.approx(brier_score(y, p, n_resamples=10, rng=0).value,
                                          abs=1e-15)


def test_brier_decomposition_remainder_with_continuous_probabilities():
    y, p = _random(5, 300)
    d = brier_score_decomposition(y, p, n_bins=10, n_resamples=10, rng=0)
    total = d.reliability.value - d.resolution.value + d.uncertainty.value + d.within_bin.value
    assert total == pytest.approx(d.brier.value, abs=1e-12)
    assert d.uncertainty.value == pytest.approx(y.mean() * (1 - y.mean()), abs=1e-15)


def test_mean_calibration_formulas():
    y, p = _random(6, 200)
    citl = calibration_in_the_large(y, p, n_resamples=10, rng=0).value
    oe = observed_expected_ratio(y, p, n_resamples=10, rng=0).value
    assert citl == pytest.approx(p.mean() - y.mean(), abs=1e-15)
    assert oe == pytest.approx(y.sum() / p.sum(), rel=1e-14)


def test_cluster_bootstrap_replicates_equal_ece_of_the_explicit_resample():
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(60), 3)
    p = rng.uniform(size=g.size)
    y = (rng.uniform(size=g.size) < p).astype(int)
    from claimladder.calibration._binned import bin_edges, binned_statistic
    from claimladder.metrics._engine import bootstrap

    stat = binned_statistic(y.astype(bool), p, g, 60, bin_edges(p, 5, "uniform"))
    reps = bootstrap(stat, 30, 11)[:, 0]
    for r, draw in enumerate(cluster_draws(60, 30, seed=11)):
        rows = resampled_rows(g, draw)
        expected = ref.ece(y[rows].tolist(), p[rows].tolist(), ref.uniform_edges(5))
        assert reps[r] == pytest.approx(expected, abs=1e-12)
    est = expected_calibration_error(y, p, n_bins=5, groups=g, n_resamples=30, rng=11)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert (est.ci.low, est.ci.high) == pytest.approx((lo, hi), abs=1e-12)
    assert est.method == "cluster-bootstrap-percentile" and est.n_clusters == 60


def test_interval_contains_estimate_and_is_reproducible():
    y, p = _random(8, 500)
    a = expected_calibration_error(y, p, n_resamples=200, rng=1)
    b = expected_calibration_error(y, p, n_resamples=200, rng=1)
    assert a == b
    assert a.ci.low <= a.value <= a.ci.high
    bca = expected_calibration_error(y, p, method="bca", n_resamples=200, rng=1)
    assert bca.method == "bootstrap-bca" and bca.value == a.value


def test_row_order_invariance():
    y, p = _random(9, 300)
    perm = np.random.default_rng(0).permutation(300)
    a = expected_calibration_error(y, p, n_bins=7, strategy="quantile", n_resamples=10, rng=0)
    b = expected_calibration_error(y[perm], p[perm], n_bins=7, strategy="quantile",
                                   n_resamples=10, rng=0)
    assert a.value == pytest.approx(b.value, abs=1e-14)


def test_empty_input_is_nan_with_warning():
    with pytest.warns(UndefinedMetricWarning, match="no rows"):
        est = expected_calibration_error([], [], n_resamples=10, rng=0)
    assert math.isnan(est.value) and est.n == 0


def test_single_class_is_defined_but_single_patient_is_not():
    est = expected_calibration_error([0, 0, 0], [0.1, 0.2, 0.3], n_bins=2, n_resamples=10,
                                     rng=0)
    assert est.value == pytest.approx(0.2)
    with pytest.warns(UndefinedMetricWarning, match="single cluster"):
        est = expected_calibration_error([0, 1, 1], [0.1, 0.2, 0.3], groups=[7, 7, 7],
                                         n_resamples=10, rng=0)
    assert math.isnan(est.value)


def test_observed_expected_ratio_undefined_when_nothing_is_expected():
    with pytest.warns(UndefinedMetricWarning, match="expected count is 0"):
        est = observed_expected_ratio([0, 1], [0.0, 0.0], n_resamples=10, rng=0)
    assert math.isnan(est.value)


def test_rare_bins_warn_about_dropped_replicates():
    # MCE is defined on every replicate, so no replicate is dropped; the O/E ratio of a
    # sample of zeros is undefined on every replicate that draws only zero probabilities.
    y = np.array([0, 1, 0, 0])
    p = np.array([0.0, 0.0, 0.0, 0.5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        observed_expected_ratio(y, p, n_resamples=200, rng=0)
    assert any(issubclass(w.category, SmallSampleWarning) for w in caught)


@pytest.mark.parametrize("bad", [{"n_bins": 0}, {"strategy": "quantil"}, {"method": "wald"}])
def test_bad_options_raise(bad):
    with pytest.raises(ValueError, match="quantile" if "strategy" in bad else "must"):
        expected_calibration_error([0, 1], [0.2, 0.8], **bad)


def test_probabilities_outside_unit_interval_raise():
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        expected_calibration_error([0, 1], [0.2, 1.3])


def test_ece_equals_brute_force_on_arbitrary_inputs():
    # Property test (hypothesis): any small sample, grid-valued probabilities (many ties and
    # values on bin edges), either strategy.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=1, max_size=40),
           st.integers(1, 8), st.sampled_from(["uniform", "quantile"]))
    def check(rows, n_bins, strategy):
        y = np.array([r[0] for r in rows])
        p = np.array([r[1] / 20 for r in rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy,
                                              n_resamples=5, rng=0)
        # numpy's percentile edges (a last-ulp difference from a hand interpolation could
        # move a tied value across an edge; the edge formula is checked separately above).
        edges = list(np.linspace(0, 1, n_bins + 1) if strategy == "uniform"
                     else np.percentile(p, np.linspace(0, 100, n_bins + 1)))
        assert ours.value == pytest.approx(ref.ece(y.tolist(), p.tolist(), edges), abs=1e-12)

    check()
