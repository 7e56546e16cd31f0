"""Performance by label certainty, models surer than their labels, candidate label errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from claimladder._core import Rung, Status, UndefinedMetricWarning
from claimladder.labels import (
    LABEL_ISSUE_COLUMNS,
    STRATA_COLUMNS,
    agreement_strata,
    check_label_errors,
    check_model_vs_label_certainty,
    find_label_issues,
    out_of_fold_probabilities,
    performance_by_label_certainty,
)

FAST = {"n_resamples": 200, "rng": 0}


def _study(seed: int, n: int = 600, error_rate: float = 0.2):
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.4).astype(int)
    ratings = pd.DataFrame({f"r{j}": np.where(rng.random(n) < error_rate, 1 - truth, truth)
                            for j in range(3)})
    majority = (ratings.sum(axis=1) >= 2).astype(int).to_numpy()
    return rng, truth, ratings, majority


def test_performance_by_label_certainty_matches_per_stratum_auroc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    score = y + rng.normal(0, np.where(np.arange(300) < 150, 0.5, 1.5))
    certainty = np.where(np.arange(300) < 150, "definite", "possible").astype(object)
    certainty[:3] = None
    with pytest.warns(UndefinedMetricWarning, match="missing"):
        table = performance_by_label_certainty(y, score, certainty, **FAST)
    assert list(table.columns) == list(STRATA_COLUMNS)
    assert table["group"].tolist() == ["definite", "missing", "possible", "all"]
    filled = np.where(pd.isna(certainty), "missing", certainty)
    for _, row in table.iterrows():
        rows = np.ones(300, bool) if row["group"] == "all" else filled == row["group"]
        if row["group"] == "missing":
            assert np.isnan(row["estimate"])  # three rows, all positive: undefined
            continue
        assert row["estimate"] == pytest.approx(roc_auc_score(y[rows], score[rows]))
    by = table.set_index("group")["estimate"]
    assert by["definite"] > by["possible"]


def test_model_that_knows_the_label_is_flagged():
    rng, _truth, ratings, majority = _study(1)
    # The score leaks the (majority-vote) label itself: surer than any annotator.
    leak = majority + rng.normal(0, 0.2, majority.size)
    ids = np.asarray([f"img{i}" for i in range(majority.size)])
    f = check_model_vs_label_certainty(majority, leak, ratings, ids=ids, **FAST)
    assert f.check == "labels.model_vs_label_certainty" and f.rung == Rung.INTERNAL
    assert f.status == Status.WARN and "more certain than its labels" in f.message
    assert f.estimate.ci.low > 0
    split = agreement_strata(ratings) == "split"
    assert f.examples == tuple(ids[split][:10])
    assert {"agreement", "split_cases"} <= set(f.table["scope"])
    json.dumps(f.to_dict(), allow_nan=False)


def test_model_of_the_finding_is_not_flagged():
    rng, truth, ratings, majority = _study(2)
    # A decent model of the underlying finding (AUROC about 0.85 against the truth).
    model = truth + rng.normal(0, 0.7, truth.size)
    certainty = np.where(agreement_strata(ratings) == "split", "possible", "definite")
    f = check_model_vs_label_certainty(majority, model, ratings, certainty=certainty, **FAST)
    assert f.status == Status.PASS
    assert "label_certainty" in set(f.table["scope"])
    split_rows = f.table[(f.table["scope"] == "agreement")].set_index("group")["estimate"]
    assert split_rows["split"] < split_rows["unanimous"]


def test_model_vs_label_certainty_not_evaluable_without_split_cases():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 50)
    ratings = np.column_stack([y, y, y])
    f = check_model_vs_label_certainty(y, rng.random(50), ratings, **FAST)
    assert f.status == Status.NOT_EVALUABLE and "split" in f.message


# -- label errors -----------------------------------------------------------------------------


def _confident_joint_reference(y: np.ndarray, p: np.ndarray) -> set[int]:
    """Loop version of the confident-joint off-diagonal (Northcutt et al. 2021, sec. 3.1)."""
    k = p.shape[1]
    t = [np.mean([p[i, j] for i in range(len(y)) if y[i] == j]) for j in range(k)]
    issues = set()
    for i in range(len(y)):
        above = [j for j in range(k) if p[i, j] >= t[j]]
        if not above:
            continue
        best = max(above, key=lambda j: p[i, j])
        if best != y[i]:
            issues.add(i)
    return issues


@pytest.mark.parametrize("seed,k", [(0, 2), (1, 3), (2, 4)])
def test_find_label_issues_matches_loop_reference(seed, k):
    rng = np.random.default_rng(seed)
    n = 200
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    table = find_label_issues(y, p)
    assert list(table.columns) == list(LABEL_ISSUE_COLUMNS)
    assert set(table["position"]) == _confident_joint_reference(y, p)
    assert table["self_confidence"].is_monotonic_increasing
    assert (table["given_label"] != table["suggested_label"]).all()


def test_find_label_issues_binary_one_column_and_string_labels():
    y = np.asarray(["neg", "neg", "pos", "pos", "neg", "pos"])
    p_pos = np.asarray([0.1, 0.9, 0.8, 0.2, 0.3, 0.7])
    table = find_label_issues(y, p_pos, pos_label="pos", ids=list("abcdef"))
    assert table["id"].tolist() == ["b", "d"]
    assert table["suggested_label"].tolist() == ["pos", "neg"]
    with pytest.raises(ValueError, match="shape"):
        find_label_issues(y, np.ones((6, 3)) / 3)


def test_planted_label_flips_are_recovered():
    rng = np.random.default_rng(4)
    n = 600
    x = rng.normal(0, 1, (n, 3))
    truth = (x @ np.array([2.0, -1.5, 1.0]) + rng.normal(0, 0.5, n) > 0).astype(int)
    flipped = rng.random(n) < 0.08
    given = np.where(flipped, 1 - truth, truth)
    p = out_of_fold_probabilities(x, given, groups=np.arange(n) // 2, rng=0)
    table = find_label_issues(given, p)
    found = np.zeros(n, bool)
    found[table["position"]] = True
    precision = flipped[found].mean()
    recall = found[flipped].mean()
    assert precision > 0.5 > flipped.mean()  # 6x the base rate at least
    assert recall > 0.5
    f = check_label_errors(given, p, ids=[f"img{i}" for i in range(n)], **FAST)
    assert f.check == "labels.label_errors" and f.rung == Rung.COHORT
    assert f.status == Status.WARN
    assert f.estimate.value == pytest.approx(found.mean())
    assert f.examples[0] == f"img{table['position'].iloc[0]}"
    clean = check_label_errors(truth, out_of_fold_probabilities(x, truth, rng=0), **FAST)
    assert clean.status == Status.PASS


def test_out_of_fold_probabilities_never_score_a_row_with_itself_and_keep_patients():
    n = 60
    x = np.column_stack([np.arange(n, dtype=float), np.random.default_rng(0).normal(0, 1, n)])
    y = (np.arange(n) % 3 == 0).astype(int)
    patients = np.arange(n) // 4
    seen: list[tuple[set, set]] = []

    def fit_predict(x_train, y_train, x_test):
        seen.append((set(x_train[:, 0].astype(int)), set(x_test[:, 0].astype(int))))
        return np.tile([0.5, 0.5], (len(x_test), 1))

    out = out_of_fold_probabilities(x, y, groups=patients, fit_predict=fit_predict, rng=1)
    assert out.shape == (n, 2)
    scored = set()
    for train, test in seen:
        assert not train & test
        scored |= test
        test_patients = {patients[i] for i in test}
        assert not test_patients & {patients[i] for i in train}
    assert scored == set(range(n))
    a = out_of_fold_probabilities(x, y, rng=7)
    b = out_of_fold_probabilities(x, y, rng=7)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="single class"):
        out_of_fold_probabilities(x, np.zeros(n))
