"""The ridge probe against scikit-learn, and its permutation test under the null."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from claimladder.shortcuts import ridge_probe
from claimladder.shortcuts._probe import balanced_accuracy_ci


def _data(n_patients=40, per_patient=3, k=3, effect=1.0, seed=0):
    rng = np.random.default_rng(seed)
    patient_class = rng.integers(0, k, n_patients)
    target = np.repeat(patient_class, per_patient)
    clusters = np.repeat(np.arange(n_patients), per_patient)
    x = rng.normal(size=(target.size, 6))
    x[:, 0] += effect * target
    x[:, 1] += rng.normal(size=n_patients)[clusters]  # a patient effect
    return x, np.array(["A", "B", "C", "D"])[target], clusters


@pytest.mark.parametrize("k", [2, 3])
def test_out_of_fold_scores_equal_sklearn_ridge(k):
    """Oracle: sklearn StandardScaler + Ridge(alpha = ridge * n_train) on one-hot targets,
    fit fold by fold on the probe's own folds (the probe drops the intercept)."""
    x, target, clusters = _data(k=k)
    probe = ridge_probe(x, target, clusters, n_splits=4, n_permutations=10, ridge=0.5, rng=0)
    for f in range(probe.n_splits):
        test = probe.folds == f
        train = ~test
        # Folds hold whole patients.
        assert not set(clusters[test]) & set(clusters[train])
        scaler = StandardScaler().fit(x[train])
        onehot = (probe.codes[:, None] == np.arange(k)).astype(float)
        model = Ridge(alpha=0.5 * train.sum()).fit(scaler.transform(x[train]), onehot[train])
        expected = model.predict(scaler.transform(x[test])) - model.intercept_
        np.testing.assert_allclose(probe.scores[test], expected, rtol=1e-8, atol=1e-10)
    if k == 2:
        assert probe.auroc == pytest.approx(roc_auc_score(probe.codes, probe.scores[:, 1]))
    else:
        per_class = [roc_auc_score(probe.codes == c, probe.scores[:, c]) for c in range(k)]
        assert probe.auroc == pytest.approx(np.mean(per_class))
    assert probe.balanced_accuracy == pytest.approx(
        balanced_accuracy_score(probe.codes, probe.predicted))


def test_dual_form_for_wide_features():
    x, target, clusters = _data(n_patients=10, per_patient=2, k=2)
    wide = np.hstack([x, np.random.default_rng(1).normal(size=(x.shape[0], 60))])
    probe = ridge_probe(wide, target, clusters, n_splits=2, n_permutations=5, rng=0)
    test = probe.folds == 0
    scaler = StandardScaler().fit(wide[~test])
    onehot = (probe.codes[:, None] == np.arange(2)).astype(float)
    model = Ridge(alpha=(~test).sum()).fit(scaler.transform(wide[~test]), onehot[~test])
    np.testing.assert_allclose(probe.scores[test],
                               model.predict(scaler.transform(wide[test])) - model.intercept_,
                               rtol=1e-7, atol=1e-9)


def test_signal_is_detected_and_null_is_calibrated():
    x, target, clusters = _data(effect=1.5)
    probe = ridge_probe(x, target, clusters, n_permutations=99, rng=0)
    assert probe.permuted_by == "cluster"
    assert probe.p_value == pytest.approx(0.01) and probe.auroc > probe.threshold
    nulls = [ridge_probe(*_data(effect=0.0, seed=s), n_permutations=39, rng=s)
             for s in range(40)]
    p_values = np.array([probe.p_value for probe in nulls])
    # Under the null, p is uniform on {1/40, ..., 1}: mean near 0.51, few below 0.05.
    assert 0.35 < p_values.mean() < 0.67
    assert np.mean(p_values <= 0.05) <= 0.15
    # The cross-validated AUROC itself is centred on chance (no pooled-fold bias).
    null_auroc = np.concatenate([probe.null for probe in nulls])
    assert abs(np.mean(null_auroc) - 0.5) < 0.02


def test_rows_are_permuted_when_patients_mix_classes():
    x, target, clusters = _data()
    mixed = target.copy()
    mixed[0], mixed[1] = "A", "B"
    assert ridge_probe(x, mixed, clusters, n_permutations=5, rng=0).permuted_by == "row"


def test_deterministic():
    x, target, clusters = _data()
    a = ridge_probe(x, target, clusters, n_permutations=20, rng=3)
    b = ridge_probe(x, target, clusters, n_permutations=20, rng=3)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.null, b.null)


def test_balanced_accuracy_interval():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 300)
    predicted = np.where(rng.random(300) < 0.7, codes, rng.integers(0, 3, 300))
    clusters = np.arange(300) // 3
    est = balanced_accuracy_ci(codes, predicted, clusters, n_resamples=500,
                               confidence_level=0.95, rng=0)
    assert est.value == pytest.approx(balanced_accuracy_score(codes, predicted))
    assert est.ci.low < est.value < est.ci.high and est.n_clusters == 100
    assert est.method == "cluster-bootstrap-percentile"
