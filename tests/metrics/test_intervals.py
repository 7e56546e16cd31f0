"""Proportion intervals against statsmodels 0.15, and the analytic intervals' edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from claimladder._core import SmallSampleWarning
from claimladder.metrics import accuracy, npv, ppv, roc_auc, sensitivity, specificity
from claimladder.metrics._counting import design_effect

STATSMODELS = {"wilson": "wilson", "clopper-pearson": "beta"}


@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
@pytest.mark.parametrize("level", [0.95, 0.8])
@pytest.mark.parametrize(("tp", "fn", "fp", "tn"),
                         [(0, 10, 3, 7), (3, 7, 0, 10), (10, 0, 5, 5), (1, 0, 0, 1),
                          (57, 56, 12, 88)])
def test_proportion_intervals_equal_statsmodels(method, level, tp, fn, fp, tn):
    y = np.r_[np.ones(tp + fn, int), np.zeros(fp + tn, int)]
    pred = np.r_[np.ones(tp, int), np.zeros(fn, int), np.ones(fp, int), np.zeros(tn, int)]
    checks = [(sensitivity, tp, tp + fn), (specificity, tn, tn + fp), (ppv, tp, tp + fp),
              (npv, tn, tn + fn), (accuracy, tp + tn, y.size)]
    for fn_, successes, trials in checks:
        if trials == 0:
            continue
        est = fn_(y, y_pred=pred, method=method, confidence_level=level)
        low, high = proportion_confint(successes, trials, alpha=1 - level,
                                       method=STATSMODELS[method])
        assert est.ci.low == pytest.approx(low, abs=1e-12), fn_.__name__
        assert est.ci.high == pytest.approx(high, abs=1e-12), fn_.__name__
        assert est.method == method


def test_row_intervals_refuse_multi_row_clusters():
    y = [1, 1, 0, 0]
    with pytest.raises(ValueError, match="wilson-cluster"):
        sensitivity(y, y_pred=[1, 0, 0, 0], groups=["a", "a", "b", "b"], method="wilson")
    # Singleton clusters are independent rows: allowed.
    est = sensitivity(y, y_pred=[1, 0, 0, 0], groups=[1, 2, 3, 4], method="clopper-pearson")
    assert est.n_clusters == 4


def test_wilson_cluster_without_groups_is_wilson():
    y = np.r_[np.ones(30, int), np.zeros(30, int)]
    pred = np.r_[np.ones(21, int), np.zeros(39, int)]
    a = sensitivity(y, y_pred=pred, method="wilson-cluster")
    b = sensitivity(y, y_pred=pred, method="wilson")
    assert (a.ci.low, a.ci.high) == (b.ci.low, b.ci.high)


def test_wilson_cluster_widens_by_the_design_effect():
    # 20 patients x 4 images, outcome identical within a patient: deff = 4 (up to G/(G-1)),
    # so the interval equals Wilson on 20 independent patients scaled by G/(G-1).
    per_patient = np.r_[np.ones(13, int), np.zeros(7, int)]
    pred = np.repeat(per_patient, 4)
    y = np.ones(80, int)
    g = np.repeat(np.arange(20), 4)
    deff = design_effect(np.bincount(g, weights=pred), np.bincount(g))
    assert deff == pytest.approx(4 * 20 / 19)
    est = sensitivity(y, y_pred=pred, groups=g, method="wilson-cluster")
    n_eff = 80 / deff
    low, high = proportion_confint(13 / 20 * n_eff, n_eff, method="wilson")
    assert (est.ci.low, est.ci.high) == pytest.approx((low, high), abs=1e-12)
    plain = proportion_confint(52, 80, method="wilson")
    assert est.ci.high - est.ci.low > plain[1] - plain[0]


def test_design_effect_is_floored_at_one():
    # Perfectly balanced clusters (one success, one failure each) have no between-cluster
    # variance; the interval must not become narrower than the binomial one.
    assert design_effect(np.ones(10), np.full(10, 2.0)) == 1.0


def test_delong_needs_two_clusters_with_each_class():
    with pytest.warns(SmallSampleWarning, match="at least two"):
        est = roc_auc([1, 1, 0, 0, 0], [0.9, 0.8, 0.1, 0.2, 0.3], groups=[1, 1, 2, 3, 4],
                      method="delong")
    assert est.value == 1.0 and math.isnan(est.ci.low)


def test_delong_interval_is_clipped_to_unit_interval():
    est = roc_auc([0, 0, 1, 1, 1], [0.1, 0.2, 0.7, 0.8, 0.9], method="delong")
    assert est.value == 1.0 and est.ci.high == 1.0 and est.ci.low == 1.0
