"""Agreement tables, annotators against a reference, and the rung-0 label findings."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from claimladder._core import Finding, Rung, Status, UndefinedMetricWarning
from claimladder.labels import (
    AGREEMENT_COLUMNS,
    ANNOTATOR_COLUMNS,
    agreement_strata,
    agreement_table,
    annotator_performance,
    check_agreement,
    check_annotators,
    pairwise_agreement,
)

FAST = {"n_resamples": 200, "rng": 0}


def _readers(seed: int, n: int, error_rates, missing: float = 0.0) -> tuple[pd.DataFrame,
                                                                             np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.4).astype(int)
    cols = {}
    for j, rate in enumerate(error_rates):
        wrong = rng.random(n) < rate
        values = np.where(wrong, 1 - truth, truth).astype(float)
        values[rng.random(n) < missing] = np.nan
        cols[f"reader_{j + 1}"] = values
    return pd.DataFrame(cols), truth


@pytest.mark.filterwarnings("ignore::claimladder._core.SmallSampleWarning")  # 6-item group
def test_agreement_table_per_site_equals_subset_computation():
    ratings, _ = _readers(0, 240, (0.05, 0.1, 0.3), missing=0.1)
    site = np.array(["A", "B", "C"] * 80, dtype=object)
    site[:6] = None
    table = agreement_table(ratings, site, by_name="site", **FAST)
    assert list(table.columns) == list(AGREEMENT_COLUMNS)
    assert table["group"].tolist() == ["all", "A", "B", "C", "missing"]
    values = ratings.to_numpy()
    site_filled = np.where(pd.isna(site), "missing", site)
    for _, row in table.iloc[1:].iterrows():
        sub = values[site_filled == row["group"]]
        ref = krippendorff.alpha(reliability_data=sub.T, level_of_measurement="nominal")
        assert row["estimate"] == pytest.approx(ref, abs=1e-12)
        assert row["scope"] == "site" and row["evaluable"]
    assert table["estimate"].iloc[0] == pytest.approx(
        krippendorff.alpha(reliability_data=values.T, level_of_measurement="nominal"), abs=1e-12)


def test_agreement_table_undefined_group_is_a_row_not_an_error():
    ratings = pd.DataFrame({"a": [1, 1, 0, 1, 0, 1, 1, 1], "b": [1, 1, 0, 0, 1, 1, 1, 1]})
    site = ["A"] * 5 + ["B"] * 3  # site B: every rating is 1
    with pytest.warns(UndefinedMetricWarning):
        table = agreement_table(ratings, site, statistic="cohen_kappa", include_overall=False,
                                **FAST)
    b = table.set_index("group").loc["B"]
    assert not b["evaluable"] and np.isnan(b["estimate"]) and "undefined" in b["reason"]
    with pytest.raises(ValueError, match="exactly two rater"):
        agreement_table(pd.concat([ratings, ratings.add_prefix("x")], axis=1),
                        statistic="cohen_kappa")
    with pytest.raises(ValueError, match="Did you mean 'fleiss_kappa'"):
        agreement_table(ratings, statistic="fleis_kappa")


def test_agreement_table_is_reproducible_and_shares_the_category_order():
    ratings, _ = _readers(1, 120, (0.1, 0.2, 0.2))
    site = ["A", "B"] * 60
    a = agreement_table(ratings, site, statistic="fleiss_kappa", n_resamples=100, rng=5)
    b = agreement_table(ratings, site, statistic="fleiss_kappa", n_resamples=100, rng=5)
    pd.testing.assert_frame_equal(a, b)


def test_pairwise_agreement_matches_sklearn_per_pair():
    ratings, _ = _readers(2, 150, (0.05, 0.15, 0.3), missing=0.1)
    table = pairwise_agreement(ratings, **FAST)
    assert table["group"].tolist() == ["reader_1 vs reader_2", "reader_1 vs reader_3",
                                       "reader_2 vs reader_3"]
    for (_, row), (a, b) in zip(table.iterrows(), [(0, 1), (0, 2), (1, 2)]):
        both = ratings.iloc[:, [a, b]].notna().all(axis=1).to_numpy()
        ref = cohen_kappa_score(ratings.iloc[both, a], ratings.iloc[both, b])
        assert row["estimate"] == pytest.approx(ref, abs=1e-12)
        assert row["n"] == both.sum()


def test_agreement_strata():
    strata = agreement_strata(pd.DataFrame({"a": [1, 1, 0, None, "x"],
                                            "b": [1, 0, 0, 1, "x"],
                                            "c": [None, 1, 0, None, "y"]}))
    assert strata.tolist() == ["unanimous", "split", "unanimous", "single", "split"]


def test_annotator_performance_matches_direct_counts():
    ratings, truth = _readers(3, 300, (0.03, 0.1, 0.25), missing=0.05)
    reference = pd.Series(truth, dtype=float).where(np.arange(300) % 2 == 0)  # adjudicated half
    patients = np.arange(300) // 3
    table = annotator_performance(ratings, reference, groups=patients, **FAST)
    assert list(table.columns) == list(ANNOTATOR_COLUMNS)
    assert sorted(set(table["metric"])) == ["cohen_kappa", "error_rate", "sensitivity",
                                            "specificity"]
    for name in ratings.columns:
        x = ratings[name].to_numpy()
        rows = reference.notna().to_numpy() & ~np.isnan(x)
        r, v = reference.to_numpy()[rows], x[rows]
        got = table[table["annotator"] == name].set_index("metric")
        assert got.loc["error_rate", "estimate"] == pytest.approx(np.mean(r != v))
        assert got.loc["sensitivity", "estimate"] == pytest.approx(np.mean(v[r == 1] == 1))
        assert got.loc["specificity", "estimate"] == pytest.approx(np.mean(v[r == 0] == 0))
        assert got.loc["cohen_kappa", "estimate"] == pytest.approx(cohen_kappa_score(r, v))
        assert (got["n"] == rows.sum()).all()
        assert (got["n_clusters"] == np.unique(patients[rows]).size).all()
        assert (got["ci_low"] <= got["estimate"]).all() and (
            got["estimate"] <= got["ci_high"]).all()
    errors = table[table["metric"] == "error_rate"].set_index("annotator")["estimate"]
    assert errors.idxmax() == "reader_3" and errors.idxmin() == "reader_1"


def test_annotator_performance_multiclass_has_no_sensitivity():
    ratings = pd.DataFrame({"a": [0, 1, 2, 2, 1, 0] * 4, "b": [0, 2, 2, 1, 1, 0] * 4})
    table = annotator_performance(ratings, [0, 1, 2, 2, 1, 0] * 4, **FAST)
    assert set(table["metric"]) == {"error_rate", "cohen_kappa"}


# -- findings ---------------------------------------------------------------------------------


def _is_json_safe(finding: Finding) -> None:
    import json

    assert json.loads(json.dumps(finding.to_dict(), allow_nan=False))["check"] == finding.check


def test_check_agreement_pass_warn_not_evaluable():
    good, _ = _readers(4, 200, (0.03, 0.05, 0.05))
    ids = [f"img{i}" for i in range(200)]
    f = check_agreement(good, ids=ids, by=["A", "B"] * 100, by_name="site", **FAST)
    assert f.check == "labels.agreement" and f.rung == Rung.COHORT
    assert f.status == Status.PASS and f.estimate.value >= 0.667
    split = agreement_strata(good) == "split"
    assert f.examples == tuple(np.asarray(ids)[split][:10])
    assert set(f.table["scope"]) == {"overall", "site", "pair"}
    _is_json_safe(f)

    noisy, _ = _readers(5, 200, (0.2, 0.3, 0.35))
    f = check_agreement(noisy, **FAST)
    assert f.status == Status.WARN and "below 0.667" in f.message

    with pytest.warns(UndefinedMetricWarning):
        f = check_agreement([[1, 1], [1, 1], [1, 1]], **FAST)
    assert f.status == Status.NOT_EVALUABLE
    _is_json_safe(f)


def test_check_annotators_flags_the_noisy_reader():
    ratings, truth = _readers(6, 400, (0.02, 0.04, 0.3))
    reference = pd.Series(truth, dtype=float).where(np.arange(400) % 4 == 0)
    ids = np.asarray([f"img{i}" for i in range(400)])
    f = check_annotators(ratings, reference, ids=ids, **FAST)
    assert f.check == "labels.annotator_reference" and f.rung == Rung.COHORT
    assert f.status == Status.WARN and "reader_3" in f.message
    assert f.params["n_reference"] == 100
    wrong = reference.notna().to_numpy() & (ratings["reader_3"].to_numpy() != truth)
    assert f.examples == tuple(ids[wrong][:10])
    _is_json_safe(f)

    good, truth = _readers(7, 400, (0.02, 0.04, 0.05))
    f = check_annotators(good, pd.Series(truth, dtype=float).where(np.arange(400) % 4 == 0),
                         **FAST)
    assert f.status == Status.PASS

    f = check_annotators(good, [np.nan] * 395 + [1, 0, 1, 0, 1], **FAST)
    assert f.status == Status.NOT_EVALUABLE and "adjudicate" in f.message


@pytest.mark.filterwarnings("ignore::claimladder._core.SmallSampleWarning")
def test_small_groups_warn_rather_than_crash():
    # Two items, one per site: each site's kappa is undefined (one category per rater).
    ratings = pd.DataFrame({"a": [1, 0], "b": [1, 0]})
    with pytest.warns(UndefinedMetricWarning):
        t = agreement_table(ratings, ["A", "B"], statistic="cohen_kappa", **FAST)
    assert t["evaluable"].tolist() == [True, False, False]
