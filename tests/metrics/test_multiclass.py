"""One-vs-rest AUROC against scikit-learn 1.9."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from claimladder._core import UndefinedMetricWarning
from claimladder.metrics import roc_auc_ovr
from reference.bootstrap import cluster_draws, resampled_rows


def _data(seed=0, n=150, k=4, decimals=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if decimals is not None:
        p = np.round(p, decimals)
        p = p / p.sum(axis=1, keepdims=True)
    return y, p


@pytest.mark.parametrize("average", ["macro", "weighted"])
@pytest.mark.parametrize("decimals", [None, 1], ids=["continuous", "ties"])
@pytest.mark.parametrize("k", [3, 5])
def test_equals_sklearn(average, decimals, k):
    y, p = _data(k, k=k, decimals=decimals)
    est = roc_auc_ovr(y, p, average=average, n_resamples=30, rng=0)
    expected = skm.roc_auc_score(y, p, multi_class="ovr", average=average)
    assert est.value == pytest.approx(expected, abs=1e-12)
    assert est.n == y.size and est.n_pos is None


def test_string_labels_and_explicit_label_order():
    y, p = _data(1, k=3)
    names = np.array(["cyst", "nodule", "normal"])
    est = roc_auc_ovr(names[y], p, n_resamples=20, rng=0)
    assert est.value == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"), abs=1e-12)
    reordered = roc_auc_ovr(names[y], p[:, ::-1], labels=names[::-1], n_resamples=20, rng=0)
    assert reordered.value == pytest.approx(est.value, abs=1e-12)


def test_cluster_replicate_equals_sklearn_on_explicit_resample():
    y, p = _data(2, n=120, k=3)
    g = np.repeat(np.arange(40), 3)
    est_w = roc_auc_ovr(y, p, average="weighted", groups=g, n_resamples=5, rng=3)
    assert est_w.n_clusters == 40
    # The interval of 5 replicates is a function of all 5 replicate values: recompute them
    # on the explicit resamples (weighted by each replicate's own class support).
    draws = cluster_draws(40, 5, seed=3)
    values = []
    for r in range(5):
        rows = resampled_rows(g, draws[r])
        values.append(skm.roc_auc_score(y[rows], p[rows], multi_class="ovr",
                                        average="weighted"))
    low, high = np.quantile(values, [0.025, 0.975])
    assert (est_w.ci.low, est_w.ci.high) == pytest.approx((low, high), abs=1e-12)


def test_bca_interval_contains_estimate():
    y, p = _data(3)
    est = roc_auc_ovr(y, p, method="bca", n_resamples=300, rng=1,
                      groups=np.repeat(np.arange(50), 3))
    assert est.ci.low < est.value < est.ci.high
    assert est.method == "cluster-bootstrap-bca"


def test_missing_class_is_nan_with_warning():
    y, p = _data(4, k=3)
    y[y == 2] = 0
    with pytest.warns(UndefinedMetricWarning, match=r"class\(es\) \[2\]"):
        est = roc_auc_ovr(y, p, labels=[0, 1, 2], rng=0)
    assert math.isnan(est.value)


def test_validation():
    y, p = _data(5, k=3)
    with pytest.raises(ValueError, match="3 columns but there are 2 classes"):
        roc_auc_ovr(y[y < 2], p[y < 2])
    bad = p.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 row\(s\) with NaN.*\[7\]"):
        roc_auc_ovr(y, bad)
    with pytest.raises(ValueError, match="Did you mean 'macro'"):
        roc_auc_ovr(y, p, average="macr")
