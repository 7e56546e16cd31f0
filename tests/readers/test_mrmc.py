"""OR-Hillis and DBM against the loop-based oracles of tests/reference/mrmc_reference.py."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from claimladder import UndefinedMetricWarning
from claimladder.metrics import roc_auc
from claimladder.readers import ReaderStudy, dbm, or_hillis, pseudovalues
from claimladder.readers._auc import auc_and_covariance, jackknife_auc
from reference import mrmc_reference as ref
from reference.auroc import pairwise_auroc


def _rows(study):
    return [[study.scores[i, j] for j in range(study.n_readers)]
            for i in range(study.n_modalities)]


@pytest.mark.parametrize("ratings", [None, 5], ids=["continuous", "5-point"])
@pytest.mark.parametrize("covariance", ["jackknife", "delong"])
def test_or_hillis_matches_reference(study_factory, covariance, ratings):
    study = study_factory(3, n_readers=4, n_neg=11, n_pos=9, ratings=ratings)
    mine = or_hillis(study, covariance=covariance)
    oracle = ref.or_analysis(study.truth, _rows(study), method=covariance)
    np.testing.assert_allclose(mine.auc["auc"].to_numpy(), oracle["theta"].reshape(-1),
                               rtol=1e-12)
    vc = mine.variance_components
    for name, key in [("var_error", "var"), ("cov1", "cov1"), ("cov2", "cov2"),
                      ("cov3", "cov3"), ("ms_t", "ms_t"), ("ms_r", "ms_r"), ("ms_tr", "ms_tr"),
                      ("var_reader", "var_r"), ("var_modality_reader", "var_tr")]:
        assert getattr(vc, name) == pytest.approx(oracle[key], rel=1e-9, abs=1e-15), name
    assert mine.difference.value == pytest.approx(oracle["difference"], rel=1e-12)
    for analysis in ("RRRC", "FRRC", "RRFC"):
        test = mine.test(analysis)
        want = oracle[analysis]
        assert test.f_statistic == pytest.approx(want["f"], rel=1e-9), analysis
        assert test.p_value == pytest.approx(want["p"], rel=1e-8), analysis
        row = test.differences.iloc[0]
        assert row["std_error"] == pytest.approx(want["se"], rel=1e-9), analysis
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(want["ci"], rel=1e-8)
        if "ddf" in want:
            assert test.ddf == pytest.approx(want["ddf"], rel=1e-9), analysis
    single = mine.rrrc.modality_auc
    np.testing.assert_allclose(single["std_error"], [s["se"] for s in oracle["single_rrrc"]],
                               rtol=1e-9)
    np.testing.assert_allclose(single["df"], [s["df"] for s in oracle["single_rrrc"]],
                               rtol=1e-9)
    np.testing.assert_allclose(mine.per_reader["std_error"],
                               [p["se"] for p in oracle["per_reader"]], rtol=1e-9)


def test_fast_jackknife_equals_explicit_deletion(study_factory):
    study = study_factory(5, n_readers=2, n_neg=7, n_pos=6, ratings=4)
    fast = jackknife_auc(study.scores, study.truth)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(fast[i, j],
                                       ref.jackknife_values(study.truth, study.scores[i, j]),
                                       rtol=1e-12)


def test_auc_matches_pairwise_and_metrics(study_factory):
    study = study_factory(6, ratings=5)
    aucs, cov, _ = auc_and_covariance(study.scores[0], study.truth, "delong")
    for j in range(study.n_readers):
        assert aucs[j] == pytest.approx(pairwise_auroc(study.truth, study.scores[0, j]))
        # DeLong variance agrees with claimladder.metrics' DeLong interval half-width.
        est = roc_auc(study.truth, study.scores[0, j], method="delong")
        half = (est.ci.high - est.ci.low) / 2
        if 0 < est.ci.low and est.ci.high < 1:  # not clipped
            assert half == pytest.approx(1.959963984540054 * np.sqrt(cov[j, j]), rel=1e-9)


def test_dbm_matches_reference(study_factory):
    study = study_factory(7, n_readers=3, n_neg=8, n_pos=7, ratings=5)
    mine = dbm(study)
    oracle = ref.dbm_analysis(study.truth, _rows(study))
    np.testing.assert_allclose(mine.pseudovalues, oracle["Y"], rtol=1e-10, atol=1e-12)
    ms = mine.anova.set_index("source")["ms"]
    for key, value in oracle["ms"].items():
        assert ms[key] == pytest.approx(value, rel=1e-9), key
    for analysis in ("RRRC", "FRRC", "RRFC"):
        test = {"RRRC": mine.rrrc, "FRRC": mine.frrc, "RRFC": mine.rrfc}[analysis]
        assert test.f_statistic == pytest.approx(oracle[analysis]["f"], rel=1e-9)
        assert test.ddf == pytest.approx(oracle[analysis]["ddf"], rel=1e-9)


def test_dbm_mean_squares_match_statsmodels_anova(study_factory):
    """The pseudovalue mean squares agree with an OLS ANOVA fitted by statsmodels."""
    smf = pytest.importorskip("statsmodels.formula.api")
    anova_lm = pytest.importorskip("statsmodels.stats.anova").anova_lm
    study = study_factory(8, n_readers=3, n_neg=9, n_pos=8, ratings=5)
    result = dbm(study)
    y = result.pseudovalues
    t, r, c = y.shape
    frame = pd.DataFrame({"y": y.reshape(-1), "mod": np.repeat(np.arange(t), r * c),
                          "rdr": np.tile(np.repeat(np.arange(r), c), t),
                          "case": np.tile(np.arange(c), t * r)})
    fit = smf.ols("y ~ C(mod) + C(rdr) + C(case) + C(mod):C(rdr) + C(mod):C(case)"
                  " + C(rdr):C(case)", data=frame).fit()
    table = anova_lm(fit, typ=1)
    mine = result.anova.set_index("source")["ms"]
    pairs = {"C(mod)": "T", "C(rdr)": "R", "C(case)": "C", "C(mod):C(rdr)": "TR",
             "C(mod):C(case)": "TC", "C(rdr):C(case)": "RC", "Residual": "TRC"}
    for theirs, ours in pairs.items():
        assert table.loc[theirs, "mean_sq"] == pytest.approx(mine[ours], rel=1e-7), ours


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dbm_equals_or_jackknife(study_factory, seed):
    """Hillis et al. (2005): DBM and OR with jackknife covariances give the same tests."""
    study = study_factory(seed, n_readers=5, n_neg=15, n_pos=12, ratings=5 if seed % 2 else None)
    a, b = or_hillis(study), dbm(study)
    c = study.n_cases
    vc = a.variance_components
    ms = b.anova.set_index("source")["ms"]
    assert ms["T"] == pytest.approx(c * vc.ms_t, rel=1e-9)
    assert ms["TR"] == pytest.approx(c * vc.ms_tr, rel=1e-9)
    assert ms["TC"] - ms["TRC"] == pytest.approx(c * study.n_readers * (vc.cov2 - vc.cov3),
                                                 rel=1e-8, abs=1e-12)
    for x, y in ((a.rrrc, b.rrrc), (a.rrfc, b.rrfc)):
        assert x.f_statistic == pytest.approx(y.f_statistic, rel=1e-9)
        assert x.ddf == pytest.approx(y.ddf, rel=1e-9)
        assert x.p_value == pytest.approx(y.p_value, rel=1e-8)
        pd.testing.assert_frame_equal(x.modality_auc, y.modality_auc, rtol=1e-8)
    assert a.difference.ci.low == pytest.approx(b.difference.ci.low, rel=1e-9)
    if vc.cov2 >= vc.cov3:
        assert a.frrc.f_statistic == pytest.approx(b.frrc.f_statistic, rel=1e-9)
    # Mean pseudovalue = AUROC for the Wilcoxon statistic (no normalization needed).
    np.testing.assert_allclose(pseudovalues(study.scores, study.truth).mean(axis=-1),
                               a.auc["auc"].to_numpy().reshape(2, -1), rtol=1e-12)


def _permuted(study, reader_order=None, case_order=None):
    reader_order = np.arange(study.n_readers) if reader_order is None else reader_order
    case_order = np.arange(study.n_cases) if case_order is None else case_order
    return ReaderStudy(case_ids=tuple(np.asarray(study.case_ids)[case_order]),
                       reader_ids=tuple(np.asarray(study.reader_ids)[reader_order]),
                       modalities=study.modalities, truth=study.truth[case_order],
                       scores=study.scores[:, reader_order][:, :, case_order])


@pytest.mark.parametrize("covariance", ["jackknife", "delong"])
def test_invariances(study_factory, covariance):
    study = study_factory(11, n_readers=4, n_neg=10, n_pos=10)
    base = or_hillis(study, covariance=covariance)
    rng = np.random.default_rng(0)
    for variant in (_permuted(study, reader_order=rng.permutation(4)),
                    _permuted(study, case_order=rng.permutation(20))):
        other = or_hillis(variant, covariance=covariance)
        for analysis in ("RRRC", "FRRC", "RRFC"):
            assert other.test(analysis).f_statistic == pytest.approx(
                base.test(analysis).f_statistic, rel=1e-10)
            assert other.test(analysis).ddf == pytest.approx(base.test(analysis).ddf,
                                                             rel=1e-10)
        assert other.difference.ci.low == pytest.approx(base.difference.ci.low, rel=1e-10)
    swapped = or_hillis(study, modalities=("aided", "unaided"), covariance=covariance)
    assert swapped.difference.value == pytest.approx(-base.difference.value, rel=1e-12)
    assert swapped.difference.ci.low == pytest.approx(-base.difference.ci.high, rel=1e-10)
    assert swapped.f_statistic == pytest.approx(base.f_statistic, rel=1e-12)
    assert swapped.p_value == pytest.approx(base.p_value, rel=1e-12)
    # A monotone transformation of every rating leaves the AUROC analysis unchanged.
    monotone = ReaderStudy(case_ids=study.case_ids, reader_ids=study.reader_ids,
                           modalities=study.modalities, truth=study.truth,
                           scores=np.exp(study.scores))
    assert or_hillis(monotone, covariance=covariance).p_value == pytest.approx(base.p_value,
                                                                               rel=1e-12)


def test_three_modalities(study_factory):
    study = study_factory(4, n_readers=4, modalities=("a", "b", "c"), effect=0.8)
    result = or_hillis(study, modalities=None)
    assert result.rrrc.ndf == 2
    assert list(result.rrrc.differences["comparison"]) == ["b - a", "c - a", "c - b"]
    oracle_pair = or_hillis(study, modalities=("a", "c"))
    # A pairwise difference is the same number with any set of compared modalities.
    assert result.rrrc.differences["estimate"].iloc[1] == pytest.approx(
        oracle_pair.difference.value)
    # The F test of three modalities reduces to the OR reference with t = 3.
    oracle = ref.or_analysis(study.truth, _rows(study))
    assert result.f_statistic == pytest.approx(oracle["RRRC"]["f"], rel=1e-9)
    assert result.ddf == pytest.approx(oracle["RRRC"]["ddf"], rel=1e-9)


def test_one_reader_gives_nan_random_reader_analyses(study_factory):
    study = study_factory(2, n_readers=1)
    with pytest.warns(UndefinedMetricWarning, match="at least two readers"):
        result = or_hillis(study)
    assert np.isnan(result.f_statistic) and np.isnan(result.difference.ci.low)
    assert np.isnan(result.rrfc.f_statistic)
    assert np.isfinite(result.frrc.f_statistic)  # fixed readers: still a z test
    cov = ref.covariance_matrix(study.truth, [study.scores[0, 0], study.scores[1, 0]],
                                "jackknife")
    oracle_se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert result.frrc.differences["std_error"].iloc[0] == pytest.approx(oracle_se, rel=1e-9)
    assert result.per_reader["std_error"].iloc[0] == pytest.approx(oracle_se, rel=1e-9)


def test_identical_modalities_give_zero_difference(study_factory):
    study = study_factory(9)
    same = ReaderStudy(case_ids=study.case_ids, reader_ids=study.reader_ids,
                       modalities=study.modalities, truth=study.truth,
                       scores=np.stack([study.scores[0], study.scores[0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(UndefinedMetricWarning, match="error term is zero"):
            result = or_hillis(same)
    assert result.difference.value == 0
    assert np.isnan(result.f_statistic)


def test_options_are_validated(study_factory):
    study = study_factory(1)
    with pytest.raises(ValueError, match="Did you mean 'delong'"):
        or_hillis(study, covariance="delon")
    with pytest.raises(ValueError, match="confidence_level"):
        or_hillis(study, confidence_level=95)
    with pytest.raises(ValueError, match="Did you mean 'aided'"):
        or_hillis(study, modalities=("unaided", "aidded"))
    with pytest.raises(ValueError, match="not the string"):
        or_hillis(study, modalities="aided")
    with pytest.raises(ValueError, match="at least 2"):
        or_hillis(study, modalities=("aided",))


def test_result_serializes(study_factory):
    import json

    result = or_hillis(study_factory(1))
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert "or-hillis-jackknife" in text
    table = result.to_frame()
    assert set(table["analysis"]) == {"RRRC", "FRRC", "RRFC"}
    assert json.dumps(dbm(study_factory(1)).to_dict(), allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_or_hillis_matches_reference_on_random_tied_ratings(data):
    """Random small designs with heavily tied integer ratings (hypothesis)."""
    r = data.draw(st.integers(2, 4), label="readers")
    n_neg = data.draw(st.integers(2, 6), label="negatives")
    n_pos = data.draw(st.integers(2, 6), label="positives")
    c = n_neg + n_pos
    ratings = data.draw(st.lists(st.integers(1, 4), min_size=2 * r * c, max_size=2 * r * c),
                        label="ratings")
    truth = np.r_[np.zeros(n_neg, int), np.ones(n_pos, int)]
    scores = np.asarray(ratings, dtype=float).reshape(2, r, c)
    study = ReaderStudy(case_ids=tuple(map(str, range(c))), reader_ids=tuple(map(str, range(r))),
                        modalities=("unaided", "aided"), truth=truth, scores=scores)
    covariance = data.draw(st.sampled_from(["jackknife", "delong"]), label="covariance")
    oracle_theta = np.array([[ref.auc(truth, scores[i, j]) for j in range(r)] for i in range(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning leaks to users
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # degenerate draws
        mine = or_hillis(study, covariance=covariance)
    np.testing.assert_allclose(mine.auc["auc"].to_numpy(), oracle_theta.reshape(-1),
                               rtol=1e-12)
    vc = mine.variance_components
    den = vc.ms_tr + r * max(vc.cov2 - vc.cov3, 0.0)
    assume(vc.ms_tr > 1e-12 and den > 1e-12 and vc.var_error - vc.cov1 > 1e-12)
    oracle = ref.or_analysis(truth, _rows(study), method=covariance)
    for name, key in [("var_error", "var"), ("cov1", "cov1"), ("cov2", "cov2"),
                      ("cov3", "cov3"), ("ms_tr", "ms_tr")]:
        assert getattr(vc, name) == pytest.approx(oracle[key], rel=1e-8, abs=1e-14), name
    assert mine.f_statistic == pytest.approx(oracle["RRRC"]["f"], rel=1e-7)
    assert mine.ddf == pytest.approx(oracle["RRRC"]["ddf"], rel=1e-7)
    assert mine.p_value == pytest.approx(oracle["RRRC"]["p"], rel=1e-6, abs=1e-12)
    assert mine.difference.ci.low <= mine.difference.value <= mine.difference.ci.high


def test_degenerate_study_is_nan_with_a_reason():
    from claimladder.readers import mrmc_finding

    truth = np.array([0, 0, 1, 1])
    perfect = np.tile([1.0, 2, 3, 4], (3, 1))
    study = ReaderStudy(case_ids=tuple("abcd"), reader_ids=tuple("xyz"),
                        modalities=("unaided", "aided"), truth=truth,
                        scores=np.stack([perfect, perfect[:, ::-1]]))
    with pytest.warns(UndefinedMetricWarning, match="error term is zero"):
        result = or_hillis(study)
    assert result.difference.value == -1.0 and np.isnan(result.f_statistic)
    finding = mrmc_finding(result)
    assert finding.status.value == "not_evaluable" and "variance of the difference" in \
        finding.message
