"""Paired and unpaired comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from claimladder._core import UndefinedMetricWarning, spawn
from claimladder.metrics import (
    Comparison,
    bootstrap_distribution,
    compare_paired,
    compare_unpaired,
    roc_auc,
)
from claimladder.metrics._compare import bootstrap_p_value
from reference.delong import obuchowski_covariance


def _two_models(seed=0, n_patients=60, per_patient=2):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_patients), per_patient)
    y = rng.integers(0, 2, g.size)
    a = np.round(y + rng.normal(size=g.size), 2)
    b = np.round(0.5 * y + rng.normal(size=g.size), 2)
    return y, a, b, g


def test_paired_bootstrap_uses_the_same_clusters_for_both_models():
    y, a, b, g = _two_models()
    result = compare_paired(y, a, b, groups=g, method="bootstrap", n_resamples=200, rng=4)
    # Same seed and clusters -> the separate distributions use the same draws, so the paired
    # interval is the percentile interval of their replicate-wise differences.
    da = bootstrap_distribution("roc_auc", y, a, groups=g, n_resamples=200, rng=4)
    db = bootstrap_distribution("roc_auc", y, b, groups=g, n_resamples=200, rng=4)
    diff = da.replicates - db.replicates
    low, high = np.quantile(diff, [0.025, 0.975])
    assert (result.difference.ci.low, result.difference.ci.high) == pytest.approx((low, high))
    assert result.difference.value == pytest.approx(
        skm.roc_auc_score(y, a) - skm.roc_auc_score(y, b))
    assert result.p_value == pytest.approx(bootstrap_p_value(diff))
    assert result.estimate_a == da.estimate and result.estimate_b == db.estimate
    assert result.method == "cluster-bootstrap-percentile"
    assert math.isnan(result.statistic)


def test_paired_delong_default_and_clustered_variance():
    y, a, b, g = _two_models(1)
    result = compare_paired(y, a, b, groups=g)
    assert result.method == "delong-obuchowski"
    var = (obuchowski_covariance(y, a, a, g) + obuchowski_covariance(y, b, b, g)
           - 2 * obuchowski_covariance(y, a, b, g))
    assert result.statistic == pytest.approx(result.difference.value / math.sqrt(var))
    assert result.estimate_a.ci == roc_auc(y, a, groups=g, method="delong").ci


def test_identical_models_have_zero_difference_and_p_one():
    y, a, _, g = _two_models(2)
    result = compare_paired(y, a, a, groups=g)
    assert result.difference.value == 0 and result.p_value == 1.0
    boot = compare_paired(y, a, a, groups=g, method="bootstrap", n_resamples=50, rng=0)
    assert boot.p_value == 1.0
    assert boot.difference.ci.low == boot.difference.ci.high == 0


@pytest.mark.parametrize("metric", ["sensitivity", "brier_score", "average_precision"])
def test_paired_comparison_of_other_metrics(metric):
    y, a, b, g = _two_models(3)
    pa, pb = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    result = compare_paired(y, pa, pb, metric=metric, groups=g, n_resamples=100, rng=0,
                            method="bca")
    assert result.method == "cluster-bootstrap-bca"
    assert result.difference.ci.low <= result.difference.value <= result.difference.ci.high
    with pytest.raises(ValueError, match="method"):
        compare_paired(y, pa, pb, metric=metric, method="delong")


def test_per_model_thresholds():
    y = np.array([0, 1, 0, 1, 1, 0] * 4)
    a = np.array([0.2, 0.9, 0.4, 0.6, 0.3, 0.1] * 4)
    result = compare_paired(y, a, a * 2, metric="sensitivity", threshold=(0.5, 1.0),
                            n_resamples=50, rng=0)
    assert result.difference.value == 0


def test_unpaired_delong_variances_add():
    y1, a, _, g1 = _two_models(4)
    y2, _, b, g2 = _two_models(5)
    result = compare_unpaired(y1, a, y2, b, groups_1=g1, groups_2=g2)
    var = obuchowski_covariance(y1, a, a, g1) + obuchowski_covariance(y2, b, b, g2)
    assert result.statistic == pytest.approx(result.difference.value / math.sqrt(var))
    assert result.difference.n == y1.size + y2.size
    assert result.difference.n_clusters == 120
    assert isinstance(result, Comparison)
    assert result.to_dict()["difference"]["value"] == pytest.approx(result.difference.value)


def test_unpaired_bootstrap_resamples_each_dataset_independently():
    y1, a, _, g1 = _two_models(6)
    y2, _, b, g2 = _two_models(7, n_patients=40)
    result = compare_unpaired(y1, a, y2, b, groups_1=g1, groups_2=g2, method="bootstrap",
                              n_resamples=150, rng=12)
    child_1, child_2 = spawn(12, 2)
    d1 = bootstrap_distribution("roc_auc", y1, a, groups=g1, n_resamples=150, rng=child_1)
    d2 = bootstrap_distribution("roc_auc", y2, b, groups=g2, n_resamples=150, rng=child_2)
    low, high = np.quantile(d1.replicates - d2.replicates, [0.025, 0.975])
    assert (result.difference.ci.low, result.difference.ci.high) == pytest.approx((low, high))
    bca = compare_unpaired(y1, a, y2, b, groups_1=g1, groups_2=g2, method="bca",
                           n_resamples=150, rng=12)
    assert bca.difference.ci.low < bca.difference.value < bca.difference.ci.high


def test_undefined_side_gives_nan_comparison():
    with pytest.warns(UndefinedMetricWarning, match="difference is undefined"):
        result = compare_unpaired([0, 0], [0.1, 0.2], [0, 1], [0.1, 0.9])
    assert math.isnan(result.difference.value) and math.isnan(result.p_value)


def test_bootstrap_p_value_is_never_zero():
    assert bootstrap_p_value(np.full(99, 0.3)) == pytest.approx(2 / 100)
    assert bootstrap_p_value(np.array([-1.0, 1.0])) == 1.0
