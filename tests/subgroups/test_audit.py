"""The bias-audit table against Fairlearn and scikit-learn, and its edge cases."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import recall_score, roc_auc_score

from claimladder.metrics import holm_adjust
from claimladder.subgroups import age_band_labels, metric_table, subgroup_labels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n_patients = 300
    patient = np.repeat(np.arange(n_patients), 2)
    y = rng.integers(0, 2, patient.size)
    sex = np.where(rng.random(n_patients) < 0.5, "F", "M")[patient]
    site = rng.choice(["A", "B", "C"], n_patients)[patient]
    # site C is harder: noisier scores
    noise = np.where(site == "C", 2.0, 0.7)
    score = 1 / (1 + np.exp(-(2 * y - 1 + noise * rng.normal(size=y.size))))
    score = np.round(score, 2)  # ties
    return y, score, patient, pd.DataFrame({"sex": sex, "site": site})


def test_point_values_equal_fairlearn_metricframe(data):
    y, score, patient, attrs = data
    audit = metric_table(y, score, attrs, metrics=("roc_auc", "sensitivity"), groups=patient,
                         intersections=False, min_group_size=1, n_resamples=50, rng=0)
    table = audit.table
    for attribute in ("sex", "site"):
        frame = MetricFrame(metrics={"roc_auc": roc_auc_score},
                            y_true=y, y_pred=score, sensitive_features=attrs[attribute])
        ours = table[(table.attribute == attribute) & (table.metric == "roc_auc")]
        np.testing.assert_allclose(ours.set_index("group")["estimate"].sort_index(),
                                   frame.by_group["roc_auc"].sort_index(), rtol=1e-12)
        sens = MetricFrame(metrics=recall_score, y_true=y, y_pred=(score >= 0.5).astype(int),
                           sensitive_features=attrs[attribute])
        ours = table[(table.attribute == attribute) & (table.metric == "sensitivity")]
        np.testing.assert_allclose(ours.set_index("group")["estimate"].sort_index(),
                                   sens.by_group.sort_index(), rtol=1e-12)


def test_gap_flags_and_intervals(data):
    y, score, patient, attrs = data
    audit = metric_table(y, score, attrs, groups=patient, n_resamples=300, rng=1)
    table, gaps = audit.table, audit.gaps
    assert {"sex x site"} <= set(table["attribute"])  # 2-way intersections
    row = gaps[(gaps.attribute == "site") & (gaps.metric == "roc_auc")].iloc[0]
    assert row.worst_group == "C"
    site = table[(table.attribute == "site") & (table.metric == "roc_auc")].set_index("group")
    assert row.gap == pytest.approx(site.estimate.max() - site.estimate.min())
    assert row.gap_ci_low <= row.gap <= row.gap_ci_high
    # simultaneous level: Bonferroni over the 3 audited attributes and intersections
    assert row.confidence_level == pytest.approx(1 - 0.05 / 3)
    assert (table.ci_low <= table.estimate + 1e-12).all()
    # Holm is applied within each metric across the whole audit
    auroc = table[table.metric == "roc_auc"]
    np.testing.assert_allclose(auroc.p_holm, holm_adjust(auroc.p_value.to_numpy()))
    assert site.loc["C", "p_holm"] < 0.05  # the harder site differs from overall


def test_small_and_single_class_groups_are_not_evaluable():
    y = np.array([0, 1] * 20 + [1, 1, 1])
    score = np.linspace(0.1, 0.9, y.size)
    attrs = pd.DataFrame({"site": ["A"] * 40 + ["B"] * 3})
    audit = metric_table(y, score, attrs, groups=None, min_group_size=2, n_resamples=50, rng=0)
    b = audit.table[(audit.table.group == "B") & (audit.table.metric == "roc_auc")].iloc[0]
    assert not b.evaluable and "one class" in b.reason and np.isnan(b.estimate)
    audit = metric_table(y, score, attrs, min_group_size=30, n_resamples=50, rng=0)
    b = audit.table[(audit.table.group == "B") & (audit.table.metric == "roc_auc")].iloc[0]
    assert b.reason == "n=3 < 30"
    gap = audit.gaps[audit.gaps.metric == "roc_auc"].iloc[0]
    assert gap.n_groups == 1 and np.isnan(gap.gap)  # nothing to compare


def test_missing_values_become_their_own_group():
    table = pd.DataFrame({"sex": ["F", None, "M", ""], "age": [10, 30, None, 90]})
    labels = subgroup_labels(table, ["sex", "age"], age_column="age", age_bands=[18, 65])
    assert labels["sex"].tolist() == ["F", "missing", "M", "missing"]
    assert labels["age"].tolist() == ["<18", "18-64", "missing", ">=65"]
    assert age_band_labels(pd.Series([18.0]), [18]).tolist() == [">=18"]


def test_deterministic_under_seed(data):
    y, score, patient, attrs = data
    a = metric_table(y, score, attrs, groups=patient, n_resamples=100, rng=5).table
    b = metric_table(y, score, attrs, groups=patient, n_resamples=100, rng=5).table
    pd.testing.assert_frame_equal(a, b)
