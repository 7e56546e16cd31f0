"""Risk-coverage, AURC, abstention rules and OOD flags against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf

from claimladder._core import SmallSampleWarning
from claimladder.calibration import (
    abstention_rule,
    aurc,
    evaluate_abstention,
    fit_ood_detector,
    ood_flags,
    ood_scores,
    ood_summary,
    risk_coverage_curve,
)
from claimladder.metrics import roc_auc
from reference import calibration as ref
from reference.bootstrap import cluster_draws, resampled_rows


def _binary(seed, n):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    return y, p


def test_risk_coverage_curve_equals_brute_force():
    y, p = _binary(0, 200)
    curve = risk_coverage_curve(y, p)
    conf = np.maximum(p, 1 - p)
    err = (p >= 0.5) != y
    for _, row in curve.iterrows():
        answered = conf >= row.confidence_threshold
        assert row.coverage == pytest.approx(answered.mean())
        assert row.risk == pytest.approx(err[answered].mean())


def test_aurc_equals_mean_risk_over_coverage_levels():
    y, p = _binary(1, 300)  # continuous p: distinct confidences
    conf = np.maximum(p, 1 - p)
    err = ((p >= 0.5) != y).astype(int)
    est = aurc(y, p, n_resamples=50, rng=0)
    assert est.value == pytest.approx(ref.aurc_distinct(conf.tolist(), err.tolist()),
                                      abs=1e-12)
    # Uninformative confidence (all tied): AURC is the error rate.
    tied = aurc(y, np.where(p >= 0.5, 0.8, 0.2), n_resamples=10, rng=0).value
    assert tied == pytest.approx(err.mean(), abs=1e-12)


def test_aurc_replicates_equal_explicit_resamples():
    y, p = _binary(2, 80)
    g = np.arange(80) // 2
    from claimladder.calibration._selective import aurc_statistic, decisions
    from claimladder.metrics._engine import bootstrap

    d = decisions(y, p, threshold=0.5, classes=None, pos_label=1, owner="t")
    reps = bootstrap(aurc_statistic(d.confidence, d.error, g, 40), 10, 5)[:, 0]
    for r, draw in enumerate(cluster_draws(40, 10, seed=5)):
        rows = resampled_rows(g, draw)
        # Resampled rows repeat confidences: compare with the tie-aware step integral.
        curve = risk_coverage_curve(y[rows], p[rows])
        steps = np.diff(np.concatenate([[0.0], curve.coverage]))
        assert reps[r] == pytest.approx(float((curve.risk * steps).sum()), abs=1e-12)


def test_multiclass_aurc_uses_max_probability():
    rng = np.random.default_rng(3)
    prob = rng.dirichlet(np.ones(3), size=200)
    y = rng.integers(0, 3, 200)
    conf = prob.max(1)
    err = (prob.argmax(1) != y).astype(int)
    est = aurc(y, prob, n_resamples=10, rng=0)
    assert est.value == pytest.approx(ref.aurc_distinct(conf.tolist(), err.tolist()),
                                      abs=1e-12)


def test_abstention_rule_picks_the_largest_coverage_meeting_the_target():
    y, p = _binary(4, 1000)
    rule = abstention_rule(y, p, target_error=0.1, partition="calibration")
    curve = risk_coverage_curve(y, p)
    ok = curve[curve.risk <= 0.1]
    best = ok.iloc[-1]
    assert rule.confidence_threshold == best.confidence_threshold
    assert rule.calibration_coverage == pytest.approx(best.coverage)
    assert rule.calibration_value <= 0.1
    conservative = abstention_rule(y, p, target_error=0.1, bound="clopper-pearson",
                                   partition="calibration")
    assert conservative.confidence_threshold > rule.confidence_threshold
    assert rule.fit_record.kind == "threshold" and rule.fit_record.partition == "calibration"


def test_sensitivity_target_and_unreachable_target():
    y, p = _binary(5, 800)
    rule = abstention_rule(y, p, target_sensitivity=0.95, threshold=0.3,
                           partition="calibration")
    answered = rule.answers(p)
    pos = (y == 1) & answered
    assert ((p >= 0.3) & pos).sum() / pos.sum() >= 0.95
    with pytest.warns(SmallSampleWarning, match="always abstains"):
        never = abstention_rule(y, p, target_error=1e-6, bound="clopper-pearson",
                                partition="calibration")
    assert math.isinf(never.confidence_threshold) and not never.answers(p).any()
    with pytest.raises(ValueError, match="refuses"):
        abstention_rule(y, p, target_error=0.1, partition="internal_test")
    with pytest.raises(ValueError, match="exactly one"):
        abstention_rule(y, p, partition="calibration")


def test_binary_confidence_with_a_non_default_threshold():
    p = np.array([0.1, 0.2, 0.3, 0.65, 1.0, 0.0])
    curve = risk_coverage_curve([0, 0, 1, 1, 1, 0], p, threshold=0.2)
    # margins: (0.2-0.1)/0.2=0.5, 0 (at threshold, predicted positive), 0.125, 0.5625, 1, 1
    assert curve.confidence_threshold.tolist() == pytest.approx(
        [1.0, 0.78125, 0.75, 0.5625, 0.5])


def test_evaluate_abstention_equals_direct_counts_and_per_site_table():
    y, p = _binary(6, 2000)
    rule = abstention_rule(y[:1000], p[:1000], target_error=0.15, partition="calibration")
    site = np.where(np.arange(1000) % 4 == 0, "X", "Y")
    res = evaluate_abstention(rule, y[1000:], p[1000:], subgroup=site, n_resamples=100,
                              rng=0)
    answered = rule.answers(p[1000:])
    pred = p[1000:] >= 0.5
    yt = y[1000:].astype(bool)
    assert res.coverage.value == pytest.approx(answered.mean())
    assert res.abstention_rate.value == pytest.approx(1 - answered.mean())
    assert res.error.value == pytest.approx((pred != yt)[answered].mean())
    assert res.sensitivity.value == pytest.approx(pred[answered & yt].mean())
    assert res.specificity.value == pytest.approx((~pred)[answered & ~yt].mean())
    assert res.coverage.ci.low <= res.coverage.value <= res.coverage.ci.high
    x = res.table[(res.table.group == "X") & (res.table.metric == "coverage")].iloc[0]
    assert x.estimate == pytest.approx(answered[site == "X"].mean())
    assert set(res.table.group) == {"X", "Y", "overall"}


def test_mahalanobis_equals_scipy_with_ledoit_wolf_precision():
    rng = np.random.default_rng(7)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    scale = np.diag([2.0, 1.0, 3.0])
    dev = rng.multivariate_normal([5, -2, 10], scale @ cov @ scale, size=400)
    det = fit_ood_detector(dev, partition="development")
    mean, std = dev.mean(0), dev.std(0)
    lw = LedoitWolf().fit((dev - mean) / std)
    new = rng.normal(size=(20, 3)) * 3 + [5, -2, 10]
    expected = [mahalanobis((row - mean) / std, lw.location_, lw.precision_) for row in new]
    np.testing.assert_allclose(det.score(new), expected, rtol=1e-10)
    assert det.threshold == pytest.approx(np.quantile(det.score(dev), 0.95))
    assert ood_flags(det, dev).mean() == pytest.approx(0.05, abs=0.003)
    shifted = dev + [0, 0, 15]
    assert ood_flags(det, shifted).mean() > 0.9


def test_detector_on_image_statistics_table_drops_nan_columns():
    from claimladder.features import image_statistics

    rng = np.random.default_rng(8)
    dev_images = [rng.normal(100, 10, size=(32, 32)) for _ in range(60)]
    dev_images.append(np.full((32, 32), 7.0))  # constant image: NaN SNR
    stats = image_statistics(dev_images)
    with pytest.warns(UserWarning, match="snr"):
        det = fit_ood_detector(stats, quantile=0.9, partition="development")
    assert "snr" not in det.columns
    new = image_statistics([rng.normal(100, 10, size=(32, 32)),
                            rng.normal(160, 40, size=(48, 48))])
    flags = det.flags(new)
    assert flags.tolist() == [False, True]
    with pytest.raises(ValueError, match="refuses"):
        fit_ood_detector(stats, partition="external_B")


def test_score_based_detectors():
    p = np.array([0.5, 0.99, 0.01, 0.7])
    np.testing.assert_allclose(ood_scores(p), [0.5, 0.01, 0.01, 0.3])
    ent = ood_scores(p, method="entropy")
    np.testing.assert_allclose(ent, -(p * np.log(p) + (1 - p) * np.log(1 - p)))
    prob = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(ood_scores(prob, method="entropy"), [0, np.log(3)])
    det = fit_ood_detector(p, method="entropy", quantile=0.5, partition="development")
    assert det.threshold == pytest.approx(np.quantile(ent, 0.5))


def test_ood_summary_flag_rate_and_flagged_vs_unflagged_performance():
    rng = np.random.default_rng(9)
    n = 1200
    site = np.array(["A", "B"])[np.arange(n) % 2]
    y = rng.integers(0, 2, n)
    flags = rng.uniform(size=n) < np.where(site == "B", 0.3, 0.05)
    score = y + rng.normal(size=n) * np.where(flags, 3.0, 0.5)  # worse when flagged
    table = ood_summary(flags, subgroup=site, y_true=y, y_score=score, n_resamples=100,
                        rng=0)
    rate_b = table[(table.group == "B") & (table.metric == "flag_rate")].iloc[0]
    assert rate_b.estimate == pytest.approx(flags[site == "B"].mean())
    for label in ("A", "B"):
        for flagged in (False, True):
            mask = (site == label) & (flags == flagged)
            name = f"roc_auc_{'flagged' if flagged else 'unflagged'}"
            row = table[(table.group == label) & (table.metric == name)].iloc[0]
            assert row.estimate == pytest.approx(
                roc_auc(y[mask], score[mask], method="delong").value, abs=1e-12)
            assert row.n == mask.sum()
    overall = table[(table.group == "overall") & (table.metric == "roc_auc_flagged")].iloc[0]
    assert overall.estimate == pytest.approx(roc_auc(y[flags], score[flags],
                                                     method="delong").value)
    assert list(dict.fromkeys(table.group)) == ["A", "B", "overall"]


def test_ood_summary_keeps_a_group_without_flagged_cases():
    flags = np.array([False] * 6 + [True, False, True, False])
    site = ["A"] * 6 + ["B"] * 4
    y = [0, 1] * 5
    score = np.linspace(0, 1, 10)
    from claimladder._core import UndefinedMetricWarning

    with pytest.warns(UndefinedMetricWarning, match=r"\(flagged\)"):
        table = ood_summary(flags, subgroup=site, y_true=y, y_score=score, n_resamples=20,
                            rng=0)
    empty = table[(table.group == "A") & (table.metric == "roc_auc_flagged")]
    assert len(empty) == 1 and empty.n.iloc[0] == 0 and np.isnan(empty.estimate.iloc[0])
    assert isinstance(table, pd.DataFrame)
