"""Agreement coefficients against reference implementations.

References (versions installed in the dev environment):
- scikit-learn 1.9 ``sklearn.metrics.cohen_kappa_score`` (unweighted, linear, quadratic);
- statsmodels 0.14 ``statsmodels.stats.inter_rater.cohens_kappa`` and ``fleiss_kappa``
  (with ``aggregate_raters``);
- krippendorff 0.9 ``krippendorff.alpha(reliability_data=ratings.T, level_of_measurement=...)``.
The coefficients are closed-form functions of counts, so agreement is required to
1e-12 (float rounding only).
"""

from __future__ import annotations

import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, to_table
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from claimladder._core import SmallSampleWarning, UndefinedMetricWarning
from claimladder.labels import cohen_kappa, fleiss_kappa, krippendorff_alpha

TOL = 1e-12
FAST = {"n_resamples": 200, "rng": 0}


def _noisy_raters(rng, n_items, n_raters, n_cat, p_agree):
    truth = rng.integers(0, n_cat, n_items)
    noise = rng.integers(0, n_cat, (n_items, n_raters))
    return np.where(rng.random((n_items, n_raters)) < p_agree, truth[:, None], noise)


# -- Cohen's kappa ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"], ids=["plain", "lin", "quad"])
@pytest.mark.parametrize("seed,n,n_cat", [(0, 300, 2), (1, 200, 4), (2, 12, 3), (3, 40, 5)],
                         ids=["binary", "four", "tiny", "five"])
def test_cohen_matches_sklearn_and_statsmodels(weights, seed, n, n_cat):
    rng = np.random.default_rng(seed)
    r = _noisy_raters(rng, n, 2, n_cat, 0.6)
    est = cohen_kappa(r[:, 0], r[:, 1], weights=weights, **FAST)
    assert est.value == pytest.approx(cohen_kappa_score(r[:, 0], r[:, 1], weights=weights),
                                      abs=TOL)
    table = to_table(r)[0]
    sm = cohens_kappa(table, wt={None: None, "linear": "linear", "quadratic": "quadratic"}[
        weights]).kappa
    assert est.value == pytest.approx(sm, abs=TOL)
    assert est.n == n and est.n_clusters is None
    assert est.ci.low <= est.value <= est.ci.high


def test_cohen_labels_order_and_strings():
    # Ordinal strings: the order comes from labels=, not from the alphabet.
    order = ["none", "mild", "moderate", "severe"]
    rng = np.random.default_rng(5)
    r = _noisy_raters(rng, 80, 2, 4, 0.5)
    a, b = np.asarray(order)[r[:, 0]], np.asarray(order)[r[:, 1]]
    est = cohen_kappa(a, b, weights="quadratic", labels=order, **FAST)
    assert est.value == pytest.approx(
        cohen_kappa_score(a, b, weights="quadratic", labels=order), abs=TOL)
    # An unused label changes nothing for unweighted kappa, as in sklearn.
    est = cohen_kappa(r[:, 0], r[:, 1], labels=[0, 1, 2, 3, 4], **FAST)
    assert est.value == pytest.approx(
        cohen_kappa_score(r[:, 0], r[:, 1], labels=[0, 1, 2, 3, 4]), abs=TOL)
    with pytest.raises(ValueError, match="not in labels"):
        cohen_kappa(a, b, labels=order[:3])


def test_cohen_missing_ratings_use_complete_pairs():
    rng = np.random.default_rng(7)
    r = _noisy_raters(rng, 120, 2, 3, 0.7).astype(float)
    r[rng.random(r.shape) < 0.15] = np.nan
    both = ~np.isnan(r).any(axis=1)
    est = cohen_kappa(r[:, 0], pd.Series(r[:, 1]), **FAST)
    assert est.n == both.sum()
    assert est.value == pytest.approx(cohen_kappa_score(r[both, 0], r[both, 1]), abs=TOL)
    # None in object arrays is missing too; ints and floats are one category.
    a = [1, 0, None, 1, 0, 1.0] * 5
    b = [1, 0, 1, None, 1, 1] * 5
    est = cohen_kappa(a, b, **FAST)
    keep = [i for i in range(30) if a[i] is not None and b[i] is not None]
    assert est.value == pytest.approx(
        cohen_kappa_score([int(a[i]) for i in keep], [b[i] for i in keep]), abs=TOL)


def test_cohen_single_category_is_undefined_like_sklearn():
    with pytest.warns(UndefinedMetricWarning, match="chance"):
        est = cohen_kappa([1] * 10, [1] * 10, **FAST)
    assert np.isnan(est.value) and np.isnan(est.ci.low)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(cohen_kappa_score([1] * 10, [1] * 10))


def test_cohen_constant_but_different_raters_is_zero_like_sklearn():
    # Each rater uses one category, different ones: observed = expected agreement = 0.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        est = cohen_kappa([0] * 10, [1] * 10, **FAST)
    assert est.value == pytest.approx(cohen_kappa_score([0] * 10, [1] * 10), abs=TOL)


def test_cohen_no_complete_pair_is_undefined():
    with pytest.warns(UndefinedMetricWarning):
        est = cohen_kappa([1, None, 0], [None, 1, None], **FAST)
    assert np.isnan(est.value) and est.n == 0


def test_cohen_input_errors():
    with pytest.raises(ValueError, match="different lengths"):
        cohen_kappa([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="Did you mean 'linear'"):
        cohen_kappa([0, 1], [0, 1], weights="lineer")


def test_cohen_cluster_bootstrap_counts_patients_and_is_reproducible():
    rng = np.random.default_rng(11)
    r = _noisy_raters(rng, 200, 2, 2, 0.7)
    patients = np.repeat(np.arange(50), 4)
    a = cohen_kappa(r[:, 0], r[:, 1], groups=patients, n_resamples=300, rng=3)
    b = cohen_kappa(r[:, 0], r[:, 1], groups=patients, n_resamples=300, rng=3)
    assert a == b
    assert a.n_clusters == 50 and a.method == "cluster-bootstrap-percentile"
    # Permuting rows (labels and patients together) leaves the point value unchanged.
    perm = rng.permutation(200)
    c = cohen_kappa(r[perm, 0], r[perm, 1], groups=patients[perm], n_resamples=300, rng=3)
    assert c.value == pytest.approx(a.value, abs=TOL)
    bca = cohen_kappa(r[:, 0], r[:, 1], groups=patients, method="bca", n_resamples=300, rng=3)
    assert bca.method == "cluster-bootstrap-bca" and bca.ci.low <= bca.value <= bca.ci.high


def test_cohen_ci_coverage_is_plausible():
    # Percentile bootstrap of kappa: the true kappa of the generating process
    # (two raters agreeing with a shared truth w.p. 0.8, binary, balanced) is
    # covered in most of 40 small simulated studies (binomial 95 % range >= 33).
    p = 0.8
    agree = p**2 + (1 - p) ** 2  # P(both copy truth) + P(both wrong) for binary
    kappa_true = (agree - 0.5) / 0.5
    rng = np.random.default_rng(123)
    covered = 0
    for i in range(40):
        truth = rng.integers(0, 2, 150)
        r = np.where(rng.random((150, 2)) < p, truth[:, None], 1 - truth[:, None])
        est = cohen_kappa(r[:, 0], r[:, 1], n_resamples=300, rng=i)
        covered += est.ci.low <= kappa_true <= est.ci.high
    assert covered >= 33


# -- Fleiss' kappa ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed,n,raters,n_cat", [(0, 200, 3, 2), (1, 150, 5, 4), (2, 6, 3, 3),
                                                 (3, 60, 2, 2)],
                         ids=["binary3", "five4", "tiny", "two-raters"])
def test_fleiss_matches_statsmodels(seed, n, raters, n_cat):
    rng = np.random.default_rng(seed)
    r = _noisy_raters(rng, n, raters, n_cat, 0.6)
    est = fleiss_kappa(r, **FAST)
    assert est.value == pytest.approx(sm_fleiss_kappa(aggregate_raters(r)[0]), abs=TOL)
    assert est.n == n


def _fleiss_unequal_reference(ratings: np.ndarray) -> float:
    """Loop implementation of Fleiss' kappa with unequal raters per item (Fleiss et al. 2003)."""
    items = [row[~np.isnan(row)] for row in ratings]
    items = [row for row in items if row.size >= 2]
    cats = np.unique(np.concatenate(items))
    total = sum(row.size for row in items)
    p_j = np.array([sum((row == c).sum() for row in items) / total for c in cats])
    p_i = []
    for row in items:
        m = row.size
        p_i.append(sum((row == c).sum() * ((row == c).sum() - 1) for c in cats) / (m * (m - 1)))
    p_bar, p_e = np.mean(p_i), np.sum(p_j**2)
    return (p_bar - p_e) / (1 - p_e)


def test_fleiss_missing_ratings_use_each_items_own_count():
    rng = np.random.default_rng(9)
    r = _noisy_raters(rng, 100, 4, 3, 0.6).astype(float)
    r[rng.random(r.shape) < 0.3] = np.nan
    est = fleiss_kappa(r, **FAST)
    assert est.value == pytest.approx(_fleiss_unequal_reference(r), abs=TOL)
    assert est.n == int(((~np.isnan(r)).sum(axis=1) >= 2).sum())
    # Without missing ratings the generalisation is statsmodels' formula.
    full = _noisy_raters(rng, 50, 4, 3, 0.6)
    assert _fleiss_unequal_reference(full.astype(float)) == pytest.approx(
        sm_fleiss_kappa(aggregate_raters(full)[0]), abs=TOL)


def test_fleiss_accepts_dataframes_with_strings():
    frame = pd.DataFrame({"r1": ["pos", "neg", "neg", "pos"] * 5,
                          "r2": ["pos", "neg", "pos", "pos"] * 5,
                          "r3": ["pos", None, "neg", "neg"] * 5})
    codes = frame.apply(lambda col: col.map({"pos": 1.0, "neg": 0.0})).to_numpy(dtype=float)
    assert fleiss_kappa(frame, **FAST).value == pytest.approx(
        _fleiss_unequal_reference(codes), abs=TOL)


def test_fleiss_undefined_when_one_category():
    with pytest.warns(UndefinedMetricWarning):
        est = fleiss_kappa([[1, 1, 1]] * 5, **FAST)
    assert np.isnan(est.value)
    with pytest.raises(ValueError, match="two-dimensional"):
        fleiss_kappa([1, 0, 1])
    with pytest.raises(ValueError, match="at least two rater"):
        fleiss_kappa([[1], [0]])


# -- Krippendorff's alpha --------------------------------------------------------------------


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed,n,raters,n_cat,missing",
                         [(0, 150, 3, 2, 0.0), (1, 120, 4, 5, 0.25), (2, 8, 3, 3, 0.2),
                          (3, 60, 6, 4, 0.5)],
                         ids=["binary-complete", "five-missing", "tiny", "sparse"])
def test_alpha_matches_krippendorff_package(level, seed, n, raters, n_cat, missing):
    rng = np.random.default_rng(seed)
    r = _noisy_raters(rng, n, raters, n_cat, 0.6).astype(float) + 1.0  # ratio needs > 0 sums
    r[rng.random(r.shape) < missing] = np.nan
    ref = krippendorff.alpha(reliability_data=r.T, level_of_measurement=level)
    est = krippendorff_alpha(r, level=level, **FAST)
    assert est.value == pytest.approx(ref, abs=TOL)
    assert est.n == int(((~np.isnan(r)).sum(axis=1) >= 2).sum())


def test_alpha_continuous_interval_data():
    rng = np.random.default_rng(4)
    truth = rng.normal(0, 1, 80)
    r = truth[:, None] + rng.normal(0, 0.5, (80, 3))
    r[rng.random(r.shape) < 0.1] = np.nan
    ref = krippendorff.alpha(reliability_data=r.T, level_of_measurement="interval")
    assert krippendorff_alpha(r, level="interval", **FAST).value == pytest.approx(ref, abs=1e-10)


def test_alpha_nominal_strings_and_ordinal_labels():
    order = ["low", "mid", "high"]
    rng = np.random.default_rng(6)
    r = _noisy_raters(rng, 60, 3, 3, 0.6)
    text = pd.DataFrame(np.asarray(order, dtype=object)[r])
    text.iloc[::7, 1] = None
    numeric = r.astype(float)
    numeric[::7, 1] = np.nan
    for level in ("nominal", "ordinal"):
        ref = krippendorff.alpha(reliability_data=numeric.T, level_of_measurement=level)
        assert krippendorff_alpha(text, level=level, labels=order, **FAST).value == \
            pytest.approx(ref, abs=TOL)
    with pytest.raises(ValueError, match="numeric ratings"):
        krippendorff_alpha(text, level="interval")


def test_alpha_undefined_and_bad_level():
    with pytest.warns(UndefinedMetricWarning, match="no variation"):
        est = krippendorff_alpha([[2, 2], [2, 2], [2, np.nan]], **FAST)
    assert np.isnan(est.value)
    with pytest.warns(UndefinedMetricWarning):
        est = krippendorff_alpha([[1, np.nan], [np.nan, 2]], **FAST)
    assert est.n == 0
    with pytest.raises(ValueError, match="Did you mean 'ordinal'"):
        krippendorff_alpha([[1, 2]], level="ordnal")


@pytest.mark.parametrize("seed,n_cat", [(8, 2), (9, 4)])
def test_alpha_nominal_complete_is_rescaled_fleiss(seed, n_cat):
    # With complete ratings both are chance-corrected pair agreement, and
    # 1 - alpha = (N - 1) / N * (1 - kappa_Fleiss), N the number of ratings
    # (from Krippendorff 2011 eq. 4-6 and Fleiss 1971; exact, not asymptotic).
    rng = np.random.default_rng(seed)
    r = _noisy_raters(rng, 30, 3, n_cat, 0.7)
    a = krippendorff_alpha(r, n_resamples=50, rng=0).value
    k = fleiss_kappa(r, n_resamples=50, rng=0).value
    big_n = r.size
    assert 1 - a == pytest.approx((big_n - 1) / big_n * (1 - k), abs=TOL)


def test_alpha_groups_cluster_bootstrap():
    rng = np.random.default_rng(10)
    r = _noisy_raters(rng, 90, 3, 2, 0.7)
    patients = np.repeat(np.arange(30), 3)
    est = krippendorff_alpha(r, groups=patients, n_resamples=300, rng=1)
    assert est.n_clusters == 30 and est.ci.low <= est.value <= est.ci.high
    with pytest.warns(SmallSampleWarning, match="single cluster"):
        one = krippendorff_alpha(r, groups=np.zeros(90), n_resamples=50, rng=1)
    assert one.value == pytest.approx(est.value) and np.isnan(one.ci.low)


# -- input forms and random small inputs ---------------------------------------------------


def test_boolean_nullable_and_string_columns():
    frame = pd.DataFrame({"a": [True, False, True, True] * 5, "b": [True, False, False, True] * 5})
    ints = frame.astype(int)
    assert cohen_kappa(frame["a"], frame["b"], **FAST).value == pytest.approx(
        cohen_kappa_score(ints["a"], ints["b"]), abs=TOL)
    nullable = pd.DataFrame({"a": pd.array([1, 0, pd.NA, 1] * 5, dtype="Int64"),
                             "b": pd.array([1, 0, 0, pd.NA] * 5, dtype="Int64")})
    both = nullable.notna().all(axis=1)
    assert cohen_kappa(nullable["a"], nullable["b"], **FAST).value == pytest.approx(
        cohen_kappa_score(nullable.loc[both, "a"].astype(int),
                          nullable.loc[both, "b"].astype(int)), abs=TOL)
    text = pd.DataFrame({"a": pd.array(["x", "y", None, "x"] * 5, dtype="string"),
                         "b": pd.array(["x", "y", "y", "y"] * 5, dtype="string")})
    coded = text.apply(lambda c: c.map({"x": 0.0, "y": 1.0})).to_numpy(dtype=float)
    assert krippendorff_alpha(text, **FAST).value == pytest.approx(
        krippendorff.alpha(reliability_data=coded.T, level_of_measurement="nominal"), abs=TOL)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_small_inputs_match_the_references(data):
    n = data.draw(st.integers(2, 12), label="n_items")
    raters = data.draw(st.integers(2, 4), label="n_raters")
    cells = st.one_of(st.none(), st.integers(0, 2))
    rows = data.draw(st.lists(st.lists(cells, min_size=raters, max_size=raters), min_size=n,
                              max_size=n))
    r = np.asarray([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    level = data.draw(st.sampled_from(["nominal", "ordinal", "interval"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = krippendorff_alpha(r, level=level, n_resamples=20, rng=0).value
        try:
            ref = krippendorff.alpha(reliability_data=r.T, level_of_measurement=level)
        except (ValueError, ZeroDivisionError):
            ref = np.nan  # the package refuses data without variation or pairable values
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-9)
    both = ~np.isnan(r[:, :2]).any(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = cohen_kappa(r[:, 0], r[:, 1], n_resamples=20, rng=0).value
        ref = (cohen_kappa_score(r[both, 0], r[both, 1]) if both.any() else np.nan)
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-9)
