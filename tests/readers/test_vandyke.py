"""Published analyses of the Van Dyke et al. (1993) reader study, reproduced.

Reference values, all for the empirical (trapezoidal/Wilcoxon) AUROC with jackknife
covariances, treatment 1 = "trt0" and treatment 2 = "trt1", differences "1 - 2":

[IOWA] OR-DBM MRMC 2.51 (Schartz, Hillis, Pesce, Berbaum; build 20181028), listing
       "VanDyke trap area jackknife anova.txt" of 04/30/2020, stored in RJafroc as
       tests/testthat/goodValues361/Iowa/VanDyke.txt (8 significant digits for AUROCs and
       variance components, 2-5 for test statistics).
[BOOK] Chakraborty, RJafrocBook, chapter "Illustration of the OR method", section
       "Illustration with dataset02": printed output of RJafroc::StSignificanceTesting(
       dataset02, FOM = "Wilcoxon", method = "OR", analysisOption = "RRRC"/"FRRC"/"RRFC").
[AOV]  MRMCaov README: summary(mrmc(empirical_auc(truth, rating), treatment, reader, case,
       data = VanDyke)).

The three sources agree with each other wherever they overlap. Tolerances: rel 1e-6 for
values printed with 7-8 significant digits (the listing's rounding is below 5e-8
relative), and half a unit of the last printed digit otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

from claimladder.readers import dbm, or_hillis

# Reader x treatment AUROCs [IOWA] "TREATMENT x READER AUC ESTIMATES" (also [BOOK] $foms).
AUC_TRT0 = [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066]
AUC_TRT1 = [0.94782609, 0.90531401, 0.92173913, 0.99935588, 0.92995169]

PUBLISHED = {
    # [BOOK] $ANOVA$TRanova and $VarCom (more digits than [IOWA]; [IOWA] agrees to 8 digits).
    "ms_t": 0.0047961705, "ms_r": 0.0038362000, "ms_tr": 0.00055103062,
    "var_reader": 0.00153499935, "var_modality_reader": 0.00020040252,
    "cov1": 0.00034661371, "cov2": 0.00034407483, "cov3": 0.00023902837,
    "var_error": 0.00080228827,
}


@pytest.fixture(scope="module")
def jackknife(vandyke):
    return or_hillis(vandyke, modalities=("trt1", "trt0"), covariance="jackknife")


def test_reader_aucs_match_listing(jackknife):
    auc = jackknife.auc.pivot(index="reader_id", columns="modality", values="auc")
    np.testing.assert_allclose(auc["trt0"].to_numpy(), AUC_TRT0, rtol=0, atol=5e-9)
    np.testing.assert_allclose(auc["trt1"].to_numpy(), AUC_TRT1, rtol=0, atol=5e-9)
    # [IOWA] TREATMENT AUC MEANS 0.89703704, 0.94083736; difference 1 - 2 = -0.04380032.
    means = jackknife.rrrc.modality_auc.set_index("modality")["auc"]
    assert means["trt0"] == pytest.approx(0.89703704, abs=5e-9)
    assert means["trt1"] == pytest.approx(0.94083736, abs=5e-9)
    assert jackknife.difference.value == pytest.approx(-0.04380032, abs=5e-9)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_variance_components_and_mean_squares(jackknife, name):
    vc = jackknife.variance_components
    assert getattr(vc, name) == pytest.approx(PUBLISHED[name], rel=1e-6)


def test_rrrc(jackknife):
    # [BOOK] $RRRC$FTests: FStat 4.4563187, DF 1 and 15.259675, p 0.051665686, error MS
    # 0.0010762629; $ciDiffTrt: StdErr 0.020748618, t -2.1109995, CI -0.087959499 to
    # 0.00035885444. [IOWA] F 4.46, Pr 0.0517, ddf 15.26; [AOV] F 4.456319, df2 15.25967.
    assert jackknife.f_statistic == pytest.approx(4.4563187, rel=1e-6)
    assert jackknife.ddf == pytest.approx(15.259675, rel=1e-6)
    assert jackknife.p_value == pytest.approx(0.051665686, rel=1e-6)
    assert jackknife.rrrc.error_term == pytest.approx(0.0010762629, rel=1e-6)
    row = jackknife.rrrc.differences.iloc[0]
    assert row["std_error"] == pytest.approx(0.020748618, rel=1e-6)
    assert row["statistic"] == pytest.approx(-2.1109995, rel=1e-6)
    assert jackknife.difference.ci.low == pytest.approx(-0.087959499, rel=1e-6)
    assert jackknife.difference.ci.high == pytest.approx(0.00035885444, rel=1e-5)


def test_rrrc_single_treatment_intervals(jackknife):
    # [BOOK] $RRRC$ciAvgRdrEachTrt; [IOWA] Analysis 1 (c), [AOV] "treatment CIs".
    table = jackknife.rrrc.modality_auc.set_index("modality")
    expected = {"trt0": (0.033173597, 12.744648, 0.82522360, 0.96885048),
                "trt1": (0.021566368, 12.710190, 0.89413783, 0.98753689)}
    for modality, (se, df, low, high) in expected.items():
        row = table.loc[modality]
        np.testing.assert_allclose([row["std_error"], row["df"], row["ci_low"], row["ci_high"]],
                                   [se, df, low, high], rtol=1e-6)


def test_frrc(jackknife):
    # [BOOK] $FRRC: Chisq 5.4759532 (1 df), p 0.019279843, error 0.00087586039, StdErr
    # 0.018717483, z -2.3400755, CI -0.080485914 to -0.0071147303.
    frrc = jackknife.frrc
    assert frrc.f_statistic * frrc.ndf == pytest.approx(5.4759532, rel=1e-6)
    assert frrc.ddf == np.inf
    assert frrc.p_value == pytest.approx(0.019279843, rel=1e-6)
    assert frrc.error_term == pytest.approx(0.00087586039, rel=1e-6)
    row = frrc.differences.iloc[0]
    np.testing.assert_allclose(
        [row["std_error"], row["statistic"], row["ci_low"], row["ci_high"]],
        [0.018717483, -2.3400755, -0.080485914, -0.0071147303], rtol=1e-6)
    # [BOOK] $FRRC$ciAvgRdrEachTrt (normal intervals).
    single = frrc.modality_auc.set_index("modality")
    np.testing.assert_allclose(single.loc[["trt0", "trt1"], "std_error"],
                               [0.024289710, 0.016776324], rtol=1e-6)
    np.testing.assert_allclose(single.loc[["trt0", "trt1"], "ci_low"],
                               [0.84943008, 0.90795637], rtol=1e-6)


def test_frrc_per_reader(jackknife):
    # [BOOK] $FRRC$ciDiffTrtEachRdr and $IndividualRdrVarCov1 ([IOWA] Analysis 2 (d)).
    expected_se = [0.025512133, 0.026301827, 0.031209647, 0.017291289, 0.044057460]
    expected_p = [0.269338854, 0.076831017, 0.566834139, 0.129017153, 0.023000993]
    var_each = [0.00069890056, 0.00110605283, 0.00084234345, 0.00015057773, 0.00121356676]
    cov1_each = [3.7346610e-04, 7.6015978e-04, 3.5532241e-04, 1.0833995e-06, 2.4303685e-04]
    pr = jackknife.per_reader
    np.testing.assert_allclose(pr["estimate"], np.subtract(AUC_TRT0, AUC_TRT1), atol=1e-8)
    np.testing.assert_allclose(pr["std_error"], expected_se, rtol=1e-6)
    np.testing.assert_allclose(pr["p_value"], expected_p, rtol=1e-6)
    np.testing.assert_allclose(pr["var_error"], var_each, rtol=1e-6)
    np.testing.assert_allclose(pr["cov1"], cov1_each, rtol=1e-6)


def test_rrfc(jackknife):
    # [BOOK] $RRFC: F 8.704 (printed with 4 digits), p 0.041958752, StdErr 0.014846287,
    # t -2.9502542, CI -0.085020224 to -0.0025804202; single-treatment StdErr 0.024829936,
    # 0.016153030 on 4 df.
    rrfc = jackknife.rrfc
    assert rrfc.f_statistic == pytest.approx(8.704, abs=5e-4)
    assert rrfc.ddf == 4
    assert rrfc.p_value == pytest.approx(0.041958752, rel=1e-6)
    row = rrfc.differences.iloc[0]
    np.testing.assert_allclose(
        [row["std_error"], row["statistic"], row["ci_low"], row["ci_high"]],
        [0.014846287, -2.9502542, -0.085020224, -0.0025804202], rtol=1e-6)
    np.testing.assert_allclose(rrfc.modality_auc["std_error"], [0.016153030, 0.024829936],
                               rtol=1e-6)


def test_dbm_matches_listing(vandyke):
    # [IOWA] "Corresponding DBM variance component and covariance estimates": Var(R)
    # 0.00153500, Var(C) 0.02724923, Var(T*R) 0.00020040, Var(T*C) 0.01197530, Var(R*C)
    # 0.01226473, Var(T*R*C) + Var(Error) 0.03997160 (8 decimals printed).
    result = dbm(vandyke, modalities=("trt1", "trt0"))
    comps = result.variance_components.set_index("component")["estimate"]
    expected = {"var_reader": 0.00153500, "var_case": 0.02724923,
                "var_modality_reader": 0.00020040, "var_modality_case": 0.01197530,
                "var_reader_case": 0.01226473, "var_error": 0.03997160}
    for name, value in expected.items():
        assert comps[name] == pytest.approx(value, abs=5e-9), name
    # The DBM-Hillis RRRC test equals OR-Hillis with jackknife covariances (Hillis et al.
    # 2005), hence the published OR values: F 4.4563187 on 1 and 15.259675 df.
    assert result.f_statistic == pytest.approx(4.4563187, rel=1e-6)
    assert result.ddf == pytest.approx(15.259675, rel=1e-6)
    assert result.difference.value == pytest.approx(-0.04380032, abs=5e-9)
