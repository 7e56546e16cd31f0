"""Split conformal sets against MAPIE and crepes; coverage by simulation (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from claimladder._core import SmallSampleWarning
from claimladder.calibration import (
    conformal_coverage_table,
    conformal_sets,
    fit_conformal,
)
from claimladder.calibration._conformal import conformity_scores
from reference import calibration as ref


def _data(seed, n, k=4):
    rng = np.random.default_rng(seed)
    prob = rng.dirichlet(np.full(k, 0.7), size=n)
    y = np.array([rng.choice(k, p=row) for row in prob])
    return y, prob


def test_lac_sets_equal_mapie_split_conformal():
    # MAPIE 1.6.0: SplitConformalClassifier(prefit=True, conformity_score="lac").conformalize;
    # its quantile is the ceil((n+1)(1-alpha))-th smallest score (method="lower").
    mapie = pytest.importorskip("mapie.classification")
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Passthrough(ClassifierMixin, BaseEstimator):
        def fit(self, x, y):
            self.classes_ = np.arange(4)
            return self

        def predict_proba(self, x):
            return np.asarray(x)

        def predict(self, x):
            return np.asarray(x).argmax(1)

    y, prob = _data(0, 1500)
    for alpha in (0.05, 0.1, 0.23):
        mc = mapie.SplitConformalClassifier(estimator=Passthrough().fit(prob, y),
                                            confidence_level=1 - alpha,
                                            conformity_score="lac", prefit=True)
        mc.conformalize(prob[:700], y[:700])
        _, theirs = mc.predict_set(prob[700:])
        ours = fit_conformal(y[:700], prob[:700], alpha=alpha,
                             partition="calibration").predict_sets(prob[700:])
        assert (theirs[:, :, 0] == ours).all()


def test_lac_and_aps_sets_equal_crepes_p_value_rule():
    # crepes 0.9.1: ConformalClassifier().fit(alphas).predict_set(alphas_test, confidence,
    # smoothing=False) includes a class when (#{cal >= a} + 1) / (n + 1) >= 1 - confidence.
    crepes = pytest.importorskip("crepes")
    y, prob = _data(1, 1000)
    cal, test = slice(0, 499), slice(499, None)  # n = 499: (n + 1)(1 - alpha) not an integer
    for score in ("lac", "aps"):
        cal_scores = conformity_scores(prob[cal], score)[np.arange(499), y[cal]]
        cc = crepes.ConformalClassifier().fit(cal_scores)
        theirs = cc.predict_set(conformity_scores(prob[test], score), confidence=0.877,
                                smoothing=False).astype(bool)
        ours = fit_conformal(y[cal], prob[cal], alpha=0.123, score=score,
                             partition="calibration").predict_sets(prob[test])
        assert (ours == theirs).all(), score


def test_crepes_differs_only_when_the_quantile_index_is_an_integer():
    crepes = pytest.importorskip("crepes")
    scores = np.arange(1, 10) / 10.0  # n = 9, alpha = 0.2: (n + 1)(1 - alpha) = 8 exactly
    y = np.zeros(9, dtype=int)
    prob = np.column_stack([1 - scores, scores])
    model = fit_conformal(y, prob, alpha=0.2, partition="calibration")
    assert model.thresholds["quantile"].iloc[0] == pytest.approx(0.8)  # 8th smallest
    test_prob = np.array([[0.15, 0.85]])  # class 0 scores 0.85: above the 8th, below the 9th
    assert not model.predict_sets(test_prob)[0, 0]
    cc = crepes.ConformalClassifier().fit(scores)
    # crepes: p = (#{cal >= 0.85} + 1) / 10 = 0.2 >= 1 - 0.8, so it includes the class.
    assert cc.predict_set(np.array([[0.85, 0.15]]), confidence=0.8, smoothing=False)[0, 0] == 1


def test_aps_scores_equal_the_definition():
    _y, prob = _data(2, 30, k=5)
    prob[0] = [0.3, 0.3, 0.2, 0.1, 0.1]  # ties
    u = np.random.default_rng(0).uniform(size=30)
    for weights in (None, u):
        scores = conformity_scores(prob, "aps", weights)
        for i in range(30):
            for k in range(5):
                w = 1.0 if weights is None else weights[i]
                assert scores[i, k] == pytest.approx(ref.aps_score(prob[i].tolist(), k, w),
                                                     abs=1e-12)


def test_quantile_equals_sorting_reference_and_small_cells_give_full_sets():
    y, prob = _data(3, 40)
    model = fit_conformal(y, prob, alpha=0.1, partition="calibration")
    expected = ref.conformal_threshold((1 - prob[np.arange(40), y]).tolist(), 0.1)
    assert model.thresholds["quantile"].iloc[0] == expected
    with pytest.warns(SmallSampleWarning, match="threshold is infinite"):
        tiny = fit_conformal(y[:5], prob[:5], alpha=0.1, partition="calibration")
    assert math.isinf(tiny.thresholds["quantile"].iloc[0])
    assert tiny.predict_sets(prob).all()


def test_class_conditional_thresholds_equal_per_class_crepes():
    crepes = pytest.importorskip("crepes")
    y, prob = _data(4, 1200)
    model = fit_conformal(y[:599], prob[:599], alpha=0.1, mondrian="class",
                          partition="calibration")
    sets = model.predict_sets(prob[599:])
    cal_scores = 1 - prob[np.arange(599), y[:599]]
    cc = crepes.ConformalClassifier().fit(cal_scores, bins=y[:599])
    for k in range(4):
        theirs = cc.predict_set((1 - prob[599:, k])[:, None], bins=np.full(601, k),
                                confidence=0.9, smoothing=False)[:, 0].astype(bool)
        assert (sets[:, k] == theirs).all()


def test_group_conditional_thresholds_equal_crepes_mondrian_bins():
    crepes = pytest.importorskip("crepes")
    y, prob = _data(5, 1000)
    site = np.array(["A", "B", "C"])[np.random.default_rng(1).integers(0, 3, 1000)]
    model = fit_conformal(y[:500], prob[:500], alpha=0.15, subgroup=site[:500],
                          partition="calibration")
    sets = model.predict_sets(prob[500:], subgroup=site[500:])
    cc = crepes.ConformalClassifier().fit(1 - prob[np.arange(500), y[:500]], bins=site[:500])
    theirs = cc.predict_set(1 - prob[500:], bins=site[500:], confidence=0.85,
                            smoothing=False).astype(bool)
    assert (sets == theirs).all()
    with pytest.raises(ValueError, match="had no calibration data"):
        model.predict_sets(prob[:3], subgroup=["A", "B", "Z"])
    with pytest.raises(ValueError, match="pass subgroup"):
        model.predict_sets(prob[:3])


def test_binary_input_and_labels():
    rng = np.random.default_rng(6)
    p = rng.uniform(size=400)
    labels = np.where(rng.uniform(size=400) < p, "disease", "healthy")
    model = fit_conformal(labels[:200], p[:200], alpha=0.2, pos_label="disease",
                          partition="calibration")
    assert model.classes == ("healthy", "disease")
    sets = model.predict_sets(p[200:])
    table = conformal_coverage_table(sets, labels[200:], classes=model.classes,
                                     n_resamples=50, rng=0)
    y = (labels[200:] == "disease").astype(int)
    cov = table.loc[table.metric == "coverage", "estimate"].iloc[0]
    assert cov == pytest.approx(sets[np.arange(200), y].mean())
    size = table.loc[table.metric == "mean_set_size", "estimate"].iloc[0]
    assert size == pytest.approx(sets.sum(1).mean())


def test_conformal_sets_convenience_equals_fit_then_predict():
    y, prob = _data(7, 300)
    a = conformal_sets(y[:150], prob[:150], prob[150:], alpha=0.1, score="aps",
                       partition="calibration")
    b = fit_conformal(y[:150], prob[:150], alpha=0.1, score="aps",
                      partition="calibration").predict_sets(prob[150:])
    assert (a == b).all()
    r1 = conformal_sets(y[:150], prob[:150], prob[150:], alpha=0.1, score="aps",
                        randomized=True, partition="calibration", rng=3)
    r2 = conformal_sets(y[:150], prob[:150], prob[150:], alpha=0.1, score="aps",
                        randomized=True, partition="calibration", rng=3)
    assert (r1 == r2).all()


def test_refuses_test_partition():
    y, prob = _data(8, 50)
    with pytest.raises(ValueError, match="refuses to fit on partition 'external_site'"):
        fit_conformal(y, prob, partition="external_site")


def test_coverage_table_per_subgroup_with_clusters():
    y, prob = _data(9, 600)
    g = np.arange(600) // 3
    sex = np.where(g % 2 == 0, "F", "M")
    sets = fit_conformal(y[:300], prob[:300], alpha=0.1,
                         partition="calibration").predict_sets(prob[300:])
    table = conformal_coverage_table(sets, y[300:], subgroup=sex[300:], groups=g[300:],
                                     n_resamples=100, rng=0)
    assert list(dict.fromkeys(table.group)) == ["F", "M", "overall"]
    for label in ("F", "M"):
        mask = sex[300:] == label
        row = table[(table.group == label) & (table.metric == "coverage")].iloc[0]
        assert row.estimate == pytest.approx(sets[mask][np.arange(mask.sum()),
                                                        y[300:][mask]].mean())
        assert row.ci_low <= row.estimate <= row.ci_high
        assert row.method == "cluster-bootstrap-percentile"


@pytest.mark.slow
def test_marginal_and_group_conditional_coverage_by_simulation():
    """Over 300 calibration/test draws, coverage >= 1 - alpha marginally and per group.

    A model miscalibrated differently in two groups (over-confident in B): marginal
    conformal covers on average but under-covers group B; Mondrian by group covers both.
    """
    rng = np.random.default_rng(2024)
    alpha, reps, n_cal, n_test = 0.1, 300, 400, 400
    marginal, mondrian = [], []
    for _ in range(reps):
        n = n_cal + n_test
        group = rng.integers(0, 2, n)
        logits = rng.normal(size=(n, 3)) * 1.5
        true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        y = np.array([rng.choice(3, p=row) for row in true])
        sharp = np.where(group[:, None] == 1, 3.0, 1.0) * logits  # over-confident in group 1
        prob = np.exp(sharp) / np.exp(sharp).sum(1, keepdims=True)
        cal, test = slice(0, n_cal), slice(n_cal, None)
        yt, gt = y[test], group[test]
        m = fit_conformal(y[cal], prob[cal], alpha=alpha, partition="calibration")
        s = m.predict_sets(prob[test])[np.arange(n_test), yt]
        marginal.append([s.mean(), s[gt == 0].mean(), s[gt == 1].mean()])
        g = fit_conformal(y[cal], prob[cal], alpha=alpha, subgroup=group[cal],
                          partition="calibration")
        s = g.predict_sets(prob[test], subgroup=gt)[np.arange(n_test), yt]
        mondrian.append([s.mean(), s[gt == 0].mean(), s[gt == 1].mean()])
    marginal, mondrian = np.mean(marginal, axis=0), np.mean(mondrian, axis=0)
    se = 0.5 / math.sqrt(reps * n_test / 2)  # generous Monte Carlo error of a group mean
    assert marginal[0] >= 1 - alpha - 3 * se
    assert marginal[2] < 1 - alpha - 3 * se  # marginal coverage hides group 1's shortfall
    assert mondrian[1] >= 1 - alpha - 3 * se
    assert mondrian[2] >= 1 - alpha - 3 * se
    # Upper bound 1 - alpha + 1 / (n + 1) per cell (continuous scores), n ~ 200 per group.
    assert mondrian[1] <= 1 - alpha + 1 / 150 + 3 * se
