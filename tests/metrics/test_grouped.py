"""Per-subgroup estimates from one joint cluster bootstrap."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from claimladder._core import SmallSampleWarning, UndefinedMetricWarning
from claimladder.metrics import (
    GroupedEstimate,
    grouped_metric,
    grouped_roc_auc,
    roc_auc,
    sensitivity,
)
from reference.bootstrap import cluster_draws, resampled_rows


def _cohort(seed=0, n_patients=90, per_patient=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_patients), per_patient)
    y = rng.integers(0, 2, g.size)
    s = np.round(y * 0.8 + rng.normal(size=g.size), 2)
    site = np.array(["A", "B", "C"])[rng.integers(0, 3, n_patients)][g]  # per patient
    scanner = np.array(["x", "y"])[rng.integers(0, 2, g.size)]  # per image
    return y, s, g, site, scanner


def test_point_estimates_equal_sklearn_per_subgroup():
    y, s, g, site, _ = _cohort()
    res = grouped_roc_auc(y, s, site, groups=g, n_resamples=100, rng=0)
    assert res.groups == ("A", "B", "C")
    for label, est in zip(res.groups, res.estimates):
        mask = site == label
        assert est.value == pytest.approx(skm.roc_auc_score(y[mask], s[mask]), abs=1e-12)
        assert (est.n, est.n_pos) == (mask.sum(), y[mask].sum())
        assert est.n_clusters == len(np.unique(g[mask]))
    assert res.overall.value == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_joint_replicates_equal_sklearn_on_the_explicit_resample():
    y, s, g, _, scanner = _cohort(1)
    res = grouped_roc_auc(y, s, scanner, groups=g, n_resamples=20, rng=8)
    draws = cluster_draws(90, 20, seed=8)
    for r in range(20):
        rows = resampled_rows(g, draws[r])
        for k, label in enumerate(res.groups):
            mask = scanner[rows] == label
            expected = skm.roc_auc_score(y[rows][mask], s[rows][mask])
            assert res.replicates[r, k] == pytest.approx(expected, abs=1e-12)
        assert res.replicates[r, -1] == pytest.approx(skm.roc_auc_score(y[rows], s[rows]),
                                                      abs=1e-12)


def test_subgroup_intervals_are_percentiles_of_their_replicates():
    y, s, g, site, _ = _cohort(2)
    res = grouped_roc_auc(y, s, site, groups=g, n_resamples=150, rng=3)
    for k, est in enumerate(res.estimates):
        low, high = np.quantile(res.replicates[:, k], [0.025, 0.975])
        assert (est.ci.low, est.ci.high) == pytest.approx((low, high), abs=1e-12)
    assert list(res.table.columns) == ["group", "metric", "estimate", "ci_low", "ci_high",
                                       "confidence_level", "method", "n", "n_clusters",
                                       "n_pos", "n_undefined"]
    assert res.table["method"].unique().tolist() == ["cluster-bootstrap-percentile"]


def test_difference_uses_joint_replicates():
    y, s, g, site, _ = _cohort(3)
    res = grouped_roc_auc(y, s, site, groups=g, n_resamples=200, rng=1)
    gap = res.difference("A", "B")
    d = res.replicates[:, 0] - res.replicates[:, 1]
    assert gap.value == pytest.approx(res["A"].value - res["B"].value)
    assert (gap.ci.low, gap.ci.high) == pytest.approx(tuple(np.quantile(d, [0.025, 0.975])),
                                                    abs=1e-12)
    assert gap.n == res["A"].n + res["B"].n
    vs_overall = res.difference("C")
    assert vs_overall.value == pytest.approx(res["C"].value - res.overall.value)
    with pytest.raises(KeyError, match="No subgroup 'Z'"):
        res.difference("Z")


def test_bca_and_delong_per_subgroup():
    y, s, g, site, _ = _cohort(4)
    bca = grouped_roc_auc(y, s, site, groups=g, method="bca", n_resamples=200, rng=0)
    assert bca.jackknife.shape == (90, 4)
    for label, est in zip(bca.groups, bca.estimates):
        assert est.ci.low < est.value < est.ci.high, label
    assert bca.difference("A", "C").method == "cluster-bootstrap-bca"
    delong = grouped_roc_auc(y, s, site, groups=g, method="delong")
    for label, est in zip(delong.groups, delong.estimates):
        mask = site == label
        single = roc_auc(y[mask], s[mask], groups=g[mask], method="delong")
        assert est.ci == single.ci and est.method == "delong-obuchowski"
    with pytest.raises(ValueError, match="needs bootstrap replicates"):
        delong.difference("A", "B")


def test_undefined_subgroups_are_nan_with_one_warning():
    y, s, g, site, _ = _cohort(5)
    site = site.astype(object)
    site[:3] = "tiny"  # one patient's three images
    y[(site == "C")] = 0  # single class
    with pytest.warns(UndefinedMetricWarning, match=r"2 subgroup\(s\).*'C'.*'tiny'") as rec:
        res = grouped_roc_auc(y, s, site, groups=g, n_resamples=50, rng=0)
    assert sum(issubclass(w.category, UndefinedMetricWarning) for w in rec) == 1
    assert math.isnan(res["C"].value) and math.isnan(res["tiny"].ci.low)
    assert not math.isnan(res["A"].value)
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(res.difference("C", "A").value)


def test_sparse_subgroups_report_undefined_replicates():
    y, s, g, _, _ = _cohort(6)
    sub = np.where(g < 85, "big", "small")  # 5 patients in "small"
    with pytest.warns(SmallSampleWarning, match="'small'"):
        res = grouped_roc_auc(y, s, sub, groups=g, n_resamples=200, rng=0)
    assert res.n_undefined[1] > 0
    assert res.table.loc[res.table["group"] == "small", "n_undefined"].item() > 0


@pytest.mark.parametrize("metric", ["sensitivity", "brier_score", "average_precision"])
def test_other_metrics_per_subgroup(metric):
    y, s, g, site, _ = _cohort(7)
    p = 1 / (1 + np.exp(-s))
    res = grouped_metric(y, p, site, metric=metric, groups=g, n_resamples=100, rng=0)
    expected = {
        "sensitivity": lambda yy, pp: skm.recall_score(yy, pp >= 0.5),
        "brier_score": skm.brier_score_loss,
        "average_precision": skm.average_precision_score,
    }[metric]
    for label, est in zip(res.groups, res.estimates):
        mask = site == label
        assert est.value == pytest.approx(expected(y[mask], p[mask]), abs=1e-12)


def test_proportion_methods_per_subgroup_match_single_calls():
    y, s, g, site, _ = _cohort(8)
    res = grouped_metric(y, s, site, metric="sensitivity", threshold=0.3, groups=g,
                         method="wilson-cluster")
    for label, est in zip(res.groups, res.estimates):
        mask = site == label
        single = sensitivity(y[mask], s[mask], threshold=0.3, groups=g[mask],
                             method="wilson-cluster")
        assert est.ci == single.ci


def test_inputs_are_validated():
    y, s, g, site, _ = _cohort(9)
    missing = site.astype(object)
    missing[4] = None
    with pytest.raises(ValueError, match=r"subgroup .*1 NaN/missing value\(s\) at positions "
                                         r"\[4\].*'unknown'"):
        grouped_roc_auc(y, s, missing, groups=g)
    with pytest.raises(ValueError, match="different lengths"):
        grouped_roc_auc(y, s, site[:-1])
    with pytest.raises(ValueError, match="Did you mean 'roc_auc'"):
        grouped_metric(y, s, site, metric="roc_acu")


def test_pandas_categories_and_without_overall():
    y, s, g, site, _ = _cohort(10)
    res = grouped_roc_auc(pd.Series(y), pd.Series(s), pd.Series(site, dtype="category"),
                          groups=g, n_resamples=30, rng=0, include_overall=False)
    assert isinstance(res, GroupedEstimate) and res.overall is None
    assert res.replicates.shape == (30, 3)
    with pytest.raises(ValueError, match="overall"):
        res.difference("A")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert res.to_dict()["table"]["columns"][0] == "group"


def test_bca_with_a_grouped_jackknife(monkeypatch):
    from claimladder.metrics import _engine

    y, s, g, site, _ = _cohort(11)
    monkeypatch.setattr(_engine, "JACKKNIFE_BUDGET", 1)
    monkeypatch.setattr(_engine, "MIN_JACKKNIFE_BLOCKS", 9)
    res = grouped_metric(y, s, site, metric="average_precision", groups=g, method="bca",
                         n_resamples=100, rng=0)
    assert res.jackknife.shape == (9, 4)
    assert res.difference("A", "B").method == "cluster-bootstrap-bca"
