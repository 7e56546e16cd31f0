"""Baselines: prevalence, heuristics, the metadata-only model, comparisons and the finding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from claimladder._core import Rung, Status, UndefinedMetricWarning
from claimladder.metrics import compare_paired
from claimladder.utility import (
    BASELINE_COLUMNS,
    check_metadata_baseline,
    compare_to_baselines,
    fit_metadata_baseline,
    heuristic_baseline,
    prevalence_baseline,
)


def _cohort(seed: int, n: int = 400) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Metadata where site and priority carry label information, age does not."""
    rng = np.random.default_rng(seed)
    site = rng.choice(["A", "B", "C"], n, p=[0.4, 0.4, 0.2])
    risk = np.select([site == "A", site == "B"], [0.2, 0.5], 0.35)
    y = (rng.random(n) < risk).astype(int)
    priority = np.where(rng.random(n) < np.where(y == 1, 0.7, 0.2), "urgent", "routine")
    age = rng.normal(60, 12, n)
    age[rng.random(n) < 0.1] = np.nan
    table = pd.DataFrame({"site": site, "priority": priority, "age": age,
                          "view": pd.array(rng.choice(["PA", "AP", None], n), dtype="string")})
    train = np.arange(n) < int(0.6 * n)
    return table, y, train


def test_prevalence_baseline_is_the_development_prevalence():
    y = np.array([1, 0, 0, 0, 1, 1, 1, 1])
    train = np.array([True] * 4 + [False] * 4)
    scores = prevalence_baseline(y, train_mask=train)
    assert np.all(scores == 0.25)
    assert roc_auc_score(y, scores) == 0.5
    with pytest.raises(ValueError, match="single class"):
        prevalence_baseline([0, 0, 1], train_mask=[True, True, False])
    with pytest.raises(ValueError, match="boolean"):
        prevalence_baseline([0, 1, 1], train_mask=[1, 1, 0])


def test_heuristic_baseline_is_oriented_on_development_rows_only():
    x = np.array([5.0, 1.0, 4.0, 2.0, 9.0, 8.0])
    train = np.array([True, True, True, True, False, False])
    y = np.array([0, 1, 0, 1, 1, 0])
    a = heuristic_baseline(x, y, train_mask=train)
    b = heuristic_baseline(x, np.array([0, 1, 0, 1, 0, 1]), train_mask=train)  # test labels
    np.testing.assert_array_equal(a, -x)
    np.testing.assert_array_equal(a, b)


def test_metadata_baseline_test_scores_equal_a_plain_sklearn_fit_on_development_rows():
    table, y, train = _cohort(0)
    cols = ["site", "priority"]
    scores = fit_metadata_baseline(table, y, columns=cols, train_mask=train, rng=0)
    # Reference: one-hot (every category has >= 5 training rows) + L2 logistic, C=1.
    x = pd.get_dummies(table[cols]).astype(float).to_numpy()
    ref = LogisticRegression(C=1.0, max_iter=5000).fit(x[train], y[train])
    np.testing.assert_allclose(scores[~train], ref.predict_proba(x[~train])[:, 1], atol=1e-6)
    assert roc_auc_score(y[~train], scores[~train]) > 0.7


def test_metadata_baseline_never_reads_test_labels():
    table, y, train = _cohort(1)
    y_hidden = np.where(train, y, -1).astype(object)
    y_hidden[~train] = None
    a = fit_metadata_baseline(table, y, columns=["site", "priority", "age", "view"],
                              train_mask=train, rng=0)
    b = fit_metadata_baseline(table, y_hidden, columns=["site", "priority", "age", "view"],
                              train_mask=train, rng=0)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1))


def test_development_rows_get_honest_out_of_fold_scores():
    # Thirty noise columns and 120 development rows: an in-sample fit looks good,
    # out-of-fold scores do not.
    rng = np.random.default_rng(2)
    n = 200
    table = pd.DataFrame(rng.normal(0, 1, (n, 30)), columns=[f"x{i}" for i in range(30)])
    y = rng.integers(0, 2, n)
    train = np.arange(n) < 120
    scores = fit_metadata_baseline(table, y, columns=list(table.columns), train_mask=train,
                                   groups=np.arange(n) // 2, rng=0)
    in_sample = LogisticRegression(max_iter=5000).fit(table[train], y[train]).predict_proba(
        table[train])[:, 1]
    assert roc_auc_score(y[train], in_sample) > 0.75
    assert roc_auc_score(y[train], scores[train]) < 0.65


def test_unseen_categories_missing_values_and_dates():
    table, y, train = _cohort(3)
    table["site"] = table["site"].where(train, "Z")  # a test-only site
    table["date"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(y)), unit="D")
    table["flag"] = pd.array(np.where(np.arange(len(y)) % 3, True, None), dtype="boolean")
    scores = fit_metadata_baseline(table, y, columns=["site", "age", "view", "date", "flag"],
                                   train_mask=train, rng=0)
    assert np.all(np.isfinite(scores))


def test_gradient_boosting_is_seeded():
    table, y, train = _cohort(4, n=300)
    cols = ["site", "priority", "age"]
    kw = {"columns": cols, "train_mask": train, "model": "gradient_boosting", "n_splits": 2,
          "rng": 5}
    a = fit_metadata_baseline(table, y, **kw)
    b = fit_metadata_baseline(table, y, **kw)
    np.testing.assert_array_equal(a, b)
    assert roc_auc_score(y[~train], a[~train]) > 0.6


def test_metadata_baseline_argument_errors():
    table, y, train = _cohort(5, n=60)
    with pytest.raises(ValueError, match="Did you mean 'priority'"):
        fit_metadata_baseline(table, y, columns=["priorty"], train_mask=train)
    with pytest.raises(ValueError, match="Did you mean 'logistic'"):
        fit_metadata_baseline(table, y, columns=["site"], train_mask=train, model="logistc")
    with pytest.raises(ValueError, match="selects no row"):
        fit_metadata_baseline(table, y, columns=["site"], train_mask=np.zeros(60, bool))


def test_compare_to_baselines_equals_compare_paired_per_baseline():
    table, y, train = _cohort(6)
    test = ~train
    rng = np.random.default_rng(7)
    candidate = y[test] + rng.normal(0, 0.8, test.sum())
    meta = fit_metadata_baseline(table, y, columns=["site", "priority"], train_mask=train,
                                 rng=0)[test]
    baselines = {"prevalence": prevalence_baseline(y, train_mask=train)[test], "metadata": meta}
    out = compare_to_baselines(y[test], candidate, baselines, n_resamples=200, rng=0)
    assert list(out.columns) == list(BASELINE_COLUMNS)
    assert out["baseline"].tolist() == ["prevalence", "metadata"]
    for _, row in out.iterrows():
        ref = compare_paired(y[test], candidate, baselines[row["baseline"]])
        assert row["difference"] == pytest.approx(ref.difference.value)
        assert row["p_value"] == pytest.approx(ref.p_value)
        assert row["ci_low"] == pytest.approx(ref.difference.ci.low)
    prevalence_row = out.set_index("baseline").loc["prevalence"]
    assert prevalence_row["baseline_estimate"] == 0.5
    assert prevalence_row["difference"] == pytest.approx(roc_auc_score(y[test], candidate) - 0.5)
    boot = compare_to_baselines(y[test], candidate, baselines, method="bootstrap",
                                groups=np.arange(test.sum()) // 2, n_resamples=200, rng=0)
    assert (boot["method"] == "cluster-bootstrap-percentile").all()


def test_check_metadata_baseline_statuses():
    rng = np.random.default_rng(8)
    n = 600
    y = rng.integers(0, 2, n)
    meta = np.clip(0.15 * y + 0.4 + rng.normal(0, 0.2, n), 0, 1)  # AUROC about 0.7
    image = y + rng.normal(0, 0.5, n)  # AUROC about 0.92
    f = check_metadata_baseline(y, image, meta, min_auroc_gain=0.05, columns=["site"],
                                partition="internal_test")
    assert f.check == "utility.metadata_baseline" and f.rung == Rung.UTILITY
    assert f.status == Status.PASS and f.estimate.value > 0.05 and f.estimate.ci.low > 0
    json.dumps(f.to_dict(), allow_nan=False)

    shortcut = meta + rng.normal(0, 0.05, n)  # the "image" model only echoes the metadata
    f = check_metadata_baseline(y, shortcut, meta, min_auroc_gain=0.05)
    assert f.status == Status.FAIL and "may be a shortcut" in f.message

    small = slice(0, 30)  # a real gain, too few cases to be sure of it
    f = check_metadata_baseline(y[small], (y + rng.normal(0, 1.2, n))[small], meta[small],
                                min_auroc_gain=0.05)
    expected = (Status.FAIL if f.estimate.value < 0.05 else
                Status.PASS if f.estimate.ci.low > 0 else Status.WARN)
    assert f.status == expected

    with pytest.warns(UndefinedMetricWarning):
        f = check_metadata_baseline(np.ones(20, int), image[:20], meta[:20])
    assert f.status == Status.NOT_EVALUABLE
