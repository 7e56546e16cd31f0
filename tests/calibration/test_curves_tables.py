"""Reliability curves vs scikit-learn, multiclass ECE vs netcal / Kumar et al., joint tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve

from claimladder._core import UndefinedMetricWarning
from claimladder.calibration import (
    CALIBRATION_METRICS,
    calibration_table,
    classwise_calibration_error,
    expected_calibration_error,
    logistic_calibration,
    reliability_curve,
    top_label_calibration_error,
)
from reference import calibration as ref
from reference.bootstrap import cluster_draws, resampled_rows


def _data(seed, n, power=1.3):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p**power).astype(int)
    return y, p


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("case", ["random", "ties", "coarse"])
def test_reliability_curve_equals_sklearn(strategy, case):
    y, p = _data(0, 500)
    if case == "ties":
        p = np.round(p, 1)
    elif case == "coarse":
        p = np.array([0.1, 0.1, 0.1, 0.5, 0.5, 0.9] * 30)
        y = np.array([0, 0, 1, 1, 0, 1] * 30)
    curve = reliability_curve(y, p, n_bins=8, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(curve["observed"], prob_true, atol=1e-14)
    np.testing.assert_allclose(curve["mean_predicted"], prob_pred, atol=1e-14)
    edges = (ref.uniform_edges(8) if strategy == "uniform"
             else ref.quantile_edges(p.tolist(), 8))
    brute = ref.reliability(y.tolist(), p.tolist(), edges)
    assert curve["n"].tolist() == [c for _, _, c in brute]


def test_wilson_band_equals_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    y, p = _data(1, 300)
    curve = reliability_curve(y, p, n_bins=5, confidence_level=0.9)
    low, high = proportion_confint(curve["n_pos"], curve["n"], alpha=0.1, method="wilson")
    np.testing.assert_allclose(curve["ci_low"], low, atol=1e-12)
    np.testing.assert_allclose(curve["ci_high"], high, atol=1e-12)
    assert (curve["method"] == "wilson").all()


def test_cluster_wilson_band_is_wider_with_correlated_images():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(100), 4)
    p = np.repeat(rng.uniform(size=100), 4)
    y = np.repeat((rng.uniform(size=100) < p[::4]).astype(int), 4)  # one label per patient
    plain = reliability_curve(y, p, n_bins=4)
    clustered = reliability_curve(y, p, n_bins=4, groups=g)
    assert ((clustered["ci_high"] - clustered["ci_low"])
            > (plain["ci_high"] - plain["ci_low"])).all()
    assert (clustered["method"] == "wilson-cluster").all()
    assert (clustered["n_clusters"] * 4 == clustered["n"]).all()


def test_bootstrap_band_is_percentile_of_explicit_resamples():
    y, p = _data(3, 120)
    g = np.arange(120) // 2
    curve = reliability_curve(y, p, n_bins=3, groups=g, method="bootstrap", n_resamples=40,
                              rng=4)
    per_bin = {k: [] for k in range(3)}
    for draw in cluster_draws(60, 40, seed=4):
        rows = resampled_rows(g, draw)
        b = np.array(ref.bins_of(p[rows].tolist(), ref.uniform_edges(3)))
        for k in range(3):
            if (b == k).any():
                per_bin[k].append(y[rows][b == k].mean())
    for _, row in curve.iterrows():
        lo, hi = np.quantile(per_bin[row["bin"]], [0.025, 0.975])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)


def test_reliability_curve_per_subgroup():
    y, p = _data(5, 400)
    site = np.where(np.arange(400) % 3 == 0, "A", "B")
    curve = reliability_curve(y, p, n_bins=4, subgroup=site)
    assert list(dict.fromkeys(curve["group"])) == ["A", "B", "overall"]
    sub = curve[curve["group"] == "A"]
    prob_true, _ = calibration_curve(y[site == "A"], p[site == "A"], n_bins=4)
    np.testing.assert_allclose(sub["observed"], prob_true, atol=1e-14)


def _multiclass(seed, n=600, k=4):
    rng = np.random.default_rng(seed)
    prob = rng.dirichlet(np.full(k, 0.8), size=n)
    sharpened = prob**1.5 / (prob**1.5).sum(axis=1, keepdims=True)  # true probabilities
    y = np.array([rng.choice(k, p=row) for row in sharpened])
    return y, prob


def test_top_label_ece_equals_netcal_and_kumar():
    netcal = pytest.importorskip("netcal.metrics")
    kumar = pytest.importorskip("calibration")
    y, prob = _multiclass(0)
    ours = top_label_calibration_error(y, prob, n_bins=15, n_resamples=10, rng=0).value
    assert ours == pytest.approx(netcal.ECE(15).measure(prob, y), abs=1e-12)
    assert ours == pytest.approx(kumar.get_ece(prob, y, num_bins=15), abs=1e-12)


def test_classwise_ece_equals_kumar_marginal():
    kumar = pytest.importorskip("calibration")
    y, prob = _multiclass(1)
    ours = classwise_calibration_error(y, prob, n_bins=10, n_resamples=10, rng=0).value
    theirs = kumar.lower_bound_scaling_ce(prob, y, p=1, debias=False, num_bins=10,
                                          binning_scheme=kumar.get_equal_prob_bins,
                                          mode="marginal")
    assert ours == pytest.approx(theirs, abs=1e-12)
    # And the mean of the binary ECEs computed one class at a time.
    each = [expected_calibration_error(y == c, prob[:, c], n_bins=10, n_resamples=10,
                                       rng=0).value for c in range(4)]
    assert ours == pytest.approx(np.mean(each), abs=1e-14)


def test_multiclass_labels_and_validation():
    y, prob = _multiclass(2, n=50, k=3)
    names = np.array(["a", "b", "c"])[y]
    a = top_label_calibration_error(names, prob, classes=["a", "b", "c"], n_resamples=10,
                                    rng=0)
    b = top_label_calibration_error(y, prob, n_resamples=10, rng=0)
    assert a.value == b.value
    with pytest.raises(ValueError, match="not among the classes"):
        top_label_calibration_error(names, prob, n_resamples=10)
    with pytest.raises(ValueError, match="sum to 1"):
        top_label_calibration_error(y, prob * 2, n_resamples=10)


def test_table_overall_equals_single_metric_functions_with_same_seed():
    y, p = _data(6, 500)
    g = np.arange(500) // 2
    table = calibration_table(y, p, groups=g, n_resamples=100, rng=9,
                              metrics=["expected_calibration_error", "calibration_slope"])
    ece = expected_calibration_error(y, p, groups=g, n_resamples=100, rng=9)
    row = table[table["metric"] == "expected_calibration_error"].iloc[0]
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == (ece.value, ece.ci.low,
                                                                 ece.ci.high)
    slope = logistic_calibration(y, p, groups=g, n_resamples=100, rng=9).slope
    row = table[table["metric"] == "calibration_slope"].iloc[0]
    assert row["estimate"] == pytest.approx(slope.value, abs=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((slope.ci.low, slope.ci.high),
                                                            abs=1e-10)
    assert list(table["group"]) == ["overall", "overall"]


def test_table_subgroups_equal_functions_on_subsets():
    y, p = _data(7, 900)
    site = np.array(["s1", "s2", "s3"])[np.arange(900) % 3]
    table = calibration_table(y, p, site, metrics=list(CALIBRATION_METRICS), n_resamples=30,
                              rng=0)
    assert list(dict.fromkeys(table["group"])) == ["s1", "s2", "s3", "overall"]
    assert len(table) == 4 * len(CALIBRATION_METRICS)
    for label in ("s1", "s3"):
        mask = site == label
        est = expected_calibration_error(y[mask], p[mask], n_resamples=10, rng=0)
        got = table[(table.group == label) & (table.metric == "expected_calibration_error")]
        assert got["estimate"].iloc[0] == pytest.approx(est.value, abs=1e-14)
        assert got["n"].iloc[0] == mask.sum() and got["n_pos"].iloc[0] == y[mask].sum()


def test_table_flags_a_single_patient_subgroup():
    y, p = _data(8, 60)
    g = np.arange(60) // 2
    site = np.where(g == 0, "tiny", "big")
    with pytest.warns(UndefinedMetricWarning, match="tiny"):
        table = calibration_table(y, p, site, groups=g, n_resamples=20, rng=0)
    tiny = table[table["group"] == "tiny"]
    assert tiny["estimate"].isna().all() and (tiny["n"] == 2).all()


def test_table_rejects_unknown_metric_and_reserved_label():
    with pytest.raises(ValueError, match="Did you mean 'brier_score'"):
        calibration_table([0, 1], [0.2, 0.8], metrics=["brier_scor"])
    with pytest.raises(ValueError, match="reserve"):
        calibration_table([0, 1], [0.2, 0.8], ["overall", "x"])


def test_table_is_json_friendly_long_format():
    y, p = _data(9, 100)
    table = calibration_table(y, p, n_resamples=20, rng=0)
    assert list(table.columns) == ["group", "metric", "estimate", "ci_low", "ci_high",
                                   "confidence_level", "method", "n", "n_clusters", "n_pos",
                                   "n_undefined"]
    assert isinstance(table, pd.DataFrame) and not math.isnan(table["estimate"].sum())
