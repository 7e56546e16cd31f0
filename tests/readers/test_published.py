"""OR-Hillis against published analyses of two public reader studies.

The raw ratings of these studies ship only inside GPL-licensed R packages, so
the tests start where the published listings start: the per-reader AUROCs and
the Obuchowski-Rockette covariance estimates those packages print. From them
:func:`claimladder.readers.or_from_estimates` must reproduce every statistic the
listings report (mean squares, variance components, F, ddf, p, standard
errors and intervals of the three analyses). The covariance estimators that
precede this stage are checked against the independent loops of
``tests/reference/mrmc_reference.py`` in ``test_mrmc.py``.

Sources (values copied to the printed precision):

* Van Dyke CW et al. Cine MRI in the diagnosis of thoracic aortic dissection.
  RSNA 1993 -- 5 readers, 114 cases (45 diseased), spin-echo MRI (trt0) vs
  cine MRI (trt1), 5-point ratings. Empirical (Wilcoxon) AUROCs and jackknife
  covariances: RJafroc (Chakraborty), ``StSignificanceTesting(dataset02,
  FOM = "Wilcoxon", method = "OR")``, listings of the chapter "Illustrations
  of the OR method" of the RJafroc documentation. DeLong covariances: Smith &
  Hillis, "MRMCaov: Multi-Reader Multi-Case ANOVA Software for R", section
  "Covariance estimation methods" (``mrmc(empirical_auc(...), cov = DeLong)``).
* Zanca F et al. (RJafroc ``dataset04``, FROC data reduced to inferred ROC by
  the highest rating) -- 5 modalities, 4 readers, 200 cases; same RJafroc
  chapter. Exercises the multi-modality F test (4 numerator df).

RJafroc reports differences as first minus second treatment; ours are second
minus first, so estimates and intervals change sign.
"""

from __future__ import annotations

import numpy as np
import pytest

from claimladder.readers import or_from_estimates

RTOL = 2e-6  # the listings print 7-8 significant digits
ABS = 2e-8  # for bounds near zero: the AUROCs are printed to 8 decimals

VD_AUC = np.array([
    [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066],
    [0.94782609, 0.90531401, 0.92173913, 0.99935588, 0.92995169],
])
VD_JACKKNIFE = {
    "var": 0.00080228827, "cov1": 0.00034661371, "cov2": 0.00034407483, "cov3": 0.00023902837,
    "var_by_modality": [0.00101410277, 0.00059047376],
    "cov2_by_modality": [0.00048396180, 0.00020418785],
    "var_by_reader": [0.00069890056, 0.00110605283, 0.00084234345, 0.00015057773, 0.00121356676],
    "cov1_by_reader": [3.7346610e-04, 7.6015978e-04, 3.5532241e-04, 1.0833995e-06, 2.4303685e-04],
}
VD_DELONG = {
    "var": 0.0007921325, "cov1": 0.0003420090, "cov2": 0.0003395265, "cov3": 0.0002358497,
    "cov2_by_modality": [0.0004775239, 0.0002015292],
}
ZANCA_AUC = np.array([
    [0.90425, 0.79820, 0.81175, 0.86645],
    [0.86425, 0.84470, 0.82050, 0.87160],
    [0.81295, 0.81635, 0.75275, 0.85730],
    [0.90235, 0.83150, 0.78865, 0.87980],
    [0.84140, 0.77300, 0.77115, 0.84800],
])
ZANCA_JACKKNIFE = {
    "var": 7.8911924e-04, "cov1": 2.9480096e-04, "cov2": 2.3331406e-04, "cov3": 2.1212789e-04,
    "cov2_by_modality": [0.00021118589, 0.00026649085, 0.00024646233, 0.00022042897,
                      0.00022200226],
}


def published_covariance(t: int, r: int, *, var: float, cov1: float, cov2: float,
                         cov3: float, var_by_modality=None, cov2_by_modality=None,
                         var_by_reader=None, cov1_by_reader=None) -> np.ndarray:
    """A ``(t r, t r)`` covariance matrix whose OR averages are the published ones.

    Entries are filled so that every average an analysis uses -- overall,
    per modality (single-modality intervals) and per reader (fixed-reader
    tests) -- equals the published estimate; absent breakdowns are constant.
    """
    var_t = np.full(t, var) if var_by_modality is None else np.asarray(var_by_modality)
    var_r = np.full(r, var) if var_by_reader is None else np.asarray(var_by_reader)
    cov2_t = np.full(t, cov2) if cov2_by_modality is None else np.asarray(cov2_by_modality)
    cov1_r = np.full(r, cov1) if cov1_by_reader is None else np.asarray(cov1_by_reader)
    # The breakdowns must average to the overall values, or the listing is misread.
    for parts, whole in ((var_t, var), (var_r, var), (cov2_t, cov2), (cov1_r, cov1)):
        assert parts.mean() == pytest.approx(whole, rel=1e-6)
    cov = np.empty((t, r, t, r))
    for i in range(t):
        for j in range(r):
            for k in range(t):
                for m in range(r):
                    if i == k and j == m:
                        cov[i, j, k, m] = var_t[i] + var_r[j] - var
                    elif j == m:
                        cov[i, j, k, m] = cov1_r[j]
                    elif i == k:
                        cov[i, j, k, m] = cov2_t[i]
                    else:
                        cov[i, j, k, m] = cov3
    return cov.reshape(t * r, t * r)


def _analyse(auc, components, covariance):
    t, r = auc.shape
    return or_from_estimates(
        auc, published_covariance(t, r, **components),
        modalities=tuple(f"trt{i}" for i in range(t)),
        reader_ids=tuple(f"rdr{j}" for j in range(r)), covariance=covariance,
        confidence_level=0.95, n_cases=114, n_pos=45)


def test_van_dyke_jackknife_matches_rjafroc():
    result = _analyse(VD_AUC, VD_JACKKNIFE, "jackknife")
    vc = result.variance_components
    # Treatment-by-reader ANOVA of the AUROCs and the OR variance components.
    assert vc.ms_t == pytest.approx(0.00479617053, rel=RTOL)
    assert vc.ms_r == pytest.approx(0.00383619999, rel=RTOL)
    assert vc.ms_tr == pytest.approx(0.00055103062, rel=RTOL)
    assert vc.var_reader == pytest.approx(0.00153499935, rel=RTOL)
    assert vc.var_modality_reader == pytest.approx(0.00020040252, rel=RTOL)
    means = result.rrrc.modality_auc["auc"].to_numpy()
    np.testing.assert_allclose(means, [0.89703704, 0.94083736], rtol=RTOL)

    rrrc = result.rrrc
    assert rrrc.f_statistic == pytest.approx(4.4563187, rel=RTOL)
    assert rrrc.ddf == pytest.approx(15.259675, rel=RTOL)
    assert rrrc.p_value == pytest.approx(0.051665686, rel=RTOL)
    assert rrrc.error_term == pytest.approx(0.0010762629, rel=RTOL)
    row = rrrc.differences.iloc[0]
    assert row["estimate"] == pytest.approx(0.043800322, rel=RTOL)
    assert row["std_error"] == pytest.approx(0.020748618, rel=RTOL)
    assert row["statistic"] == pytest.approx(2.1109995, rel=RTOL)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.00035885444, 0.087959499),
                                                            abs=ABS)
    single = rrrc.modality_auc
    np.testing.assert_allclose(single["std_error"], [0.033173597, 0.021566368], rtol=RTOL)
    np.testing.assert_allclose(single["df"], [12.744648, 12.710190], rtol=RTOL)
    np.testing.assert_allclose(single["ci_low"], [0.82522360, 0.89413783], rtol=RTOL)
    np.testing.assert_allclose(single["ci_high"], [0.96885048, 0.98753689], rtol=RTOL)
    assert result.difference.value == pytest.approx(0.043800322, rel=RTOL)
    assert result.difference.ci.low == pytest.approx(-0.00035885444, abs=ABS)

    # Fixed readers: RJafroc prints chi2 on 1 df; ours is F = chi2 / (t - 1) on infinite ddf.
    frrc = result.frrc
    assert frrc.f_statistic == pytest.approx(5.4759532, rel=RTOL)
    assert frrc.p_value == pytest.approx(0.019279843, rel=RTOL)
    assert frrc.error_term == pytest.approx(0.00087586039, rel=RTOL)
    row = frrc.differences.iloc[0]
    assert row["std_error"] == pytest.approx(0.018717483, rel=RTOL)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.0071147303, 0.080485914),
                                                            rel=RTOL)
    # RJafroc's single-treatment FRRC intervals use t on c - 1 df; the standard errors agree.
    np.testing.assert_allclose(frrc.modality_auc["std_error"], [0.024289710, 0.016776324],
                               rtol=RTOL)
    per_reader = result.per_reader
    np.testing.assert_allclose(per_reader["estimate"],
                               [0.028180354, 0.046537842, 0.017874396, 0.026247987,
                                0.100161031], rtol=RTOL)
    np.testing.assert_allclose(per_reader["std_error"],
                               [0.025512133, 0.026301827, 0.031209647, 0.017291289,
                                0.044057460], rtol=RTOL)
    np.testing.assert_allclose(per_reader["p_value"],
                               [0.269338854, 0.076831017, 0.566834139, 0.129017153,
                                0.023000993], rtol=RTOL)
    np.testing.assert_allclose(per_reader["ci_high"],
                               [0.078183215, 0.098088476, 0.079044180, 0.060138290,
                                0.186512066], rtol=RTOL)

    # Fixed cases: the paired t test of the reader AUROCs.
    rrfc = result.rrfc
    assert rrfc.f_statistic == pytest.approx(8.704, rel=1e-4)
    assert rrfc.ddf == 4
    assert rrfc.p_value == pytest.approx(0.041958752, rel=RTOL)
    row = rrfc.differences.iloc[0]
    assert row["std_error"] == pytest.approx(0.014846287, rel=RTOL)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.0025804202, 0.085020224),
                                                            rel=RTOL)
    np.testing.assert_allclose(rrfc.modality_auc["std_error"], [0.024829936, 0.016153030],
                               rtol=RTOL)
    np.testing.assert_allclose(rrfc.modality_auc["ci_low"], [0.82809808, 0.89598936],
                               rtol=RTOL)
    np.testing.assert_allclose(rrfc.modality_auc["ci_high"], [0.96597599, 0.98568536],
                               rtol=RTOL)


def test_van_dyke_delong_matches_mrmcaov():
    result = _analyse(VD_AUC, VD_DELONG, "delong")
    vc = result.variance_components
    assert vc.var_reader == pytest.approx(0.0015364254, rel=1e-6)
    assert vc.var_modality_reader == pytest.approx(0.0002045840, rel=1e-5)
    rrrc = result.rrrc
    assert rrrc.error_term == pytest.approx(0.001069415, rel=1e-6)
    assert rrrc.f_statistic == pytest.approx(4.484854, rel=1e-6)
    assert rrrc.ddf == pytest.approx(15.06611, rel=1e-6)
    assert rrrc.p_value == pytest.approx(0.05123303, rel=1e-6)
    row = rrrc.differences.iloc[0]
    assert row["std_error"] == pytest.approx(0.0206825, rel=1e-5)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.0002665519, 0.0878671960),
                                                            abs=ABS)
    single = rrrc.modality_auc
    np.testing.assert_allclose(single["std_error"], [0.03307642, 0.02150464], rtol=1e-6)
    np.testing.assert_allclose(single["df"], [12.59597, 12.56530], rtol=1e-6)
    np.testing.assert_allclose(single["ci_low"], [0.8253461, 0.8942155], rtol=1e-6)
    np.testing.assert_allclose(single["ci_high"], [0.9687280, 0.9874592], rtol=1e-6)


def test_zanca_five_modalities_matches_rjafroc():
    result = _analyse(ZANCA_AUC, ZANCA_JACKKNIFE, "jackknife")
    vc = result.variance_components
    assert vc.ms_t == pytest.approx(0.00189695737, rel=RTOL)
    assert vc.ms_r == pytest.approx(0.00729417750, rel=RTOL)
    assert vc.ms_tr == pytest.approx(0.00046220687, rel=RTOL)
    assert vc.var_reader == pytest.approx(1.2837211e-03, rel=RTOL)
    assert vc.var_modality_reader == pytest.approx(-1.0925227e-05, rel=1e-5)

    rrrc = result.rrrc
    assert rrrc.ndf == 4
    assert rrrc.f_statistic == pytest.approx(3.4682364, rel=RTOL)
    assert rrrc.ddf == pytest.approx(16.803749, rel=RTOL)
    assert rrrc.p_value == pytest.approx(0.030544556, rel=RTOL)
    assert rrrc.error_term == pytest.approx(0.00054695157, rel=RTOL)
    diffs = rrrc.differences
    assert list(diffs["comparison"])[:2] == ["trt1 - trt0", "trt2 - trt0"]
    # RJafroc order trt1-trt2, trt1-trt3, ..., trt4-trt5 (first minus second).
    published_estimates = [-0.0051000, 0.0353250, -0.0054125, 0.0367750, 0.0404250,
                           -0.0003125, 0.0418750, -0.0407375, 0.0014500, 0.0421875]
    published_p = [0.761570284, 0.047689094, 0.747487331, 0.040173758, 0.025841064,
                   0.985145919, 0.021613616, 0.024868769, 0.931166167, 0.020792673]
    np.testing.assert_allclose(diffs["estimate"], -np.array(published_estimates), atol=1e-9)
    np.testing.assert_allclose(diffs["std_error"], 0.016537103, rtol=RTOL)
    np.testing.assert_allclose(diffs["p_value"], published_p, rtol=1e-5)
    np.testing.assert_allclose(diffs.loc[1, ["ci_low", "ci_high"]].to_numpy(float),
                               [-0.0702463045, -0.00040369549], rtol=1e-5)
    single = rrrc.modality_auc
    np.testing.assert_allclose(single["std_error"],
                               [0.028578244, 0.019928157, 0.026647889, 0.029408701,
                                0.025758346], rtol=RTOL)
    np.testing.assert_allclose(single["df"],
                               [5.4574766, 27.7225775, 7.0371428, 5.4032614, 6.7756525],
                               rtol=RTOL)

    frrc = result.frrc
    assert frrc.f_statistic * 4 == pytest.approx(13.601264, rel=RTOL)
    assert frrc.p_value == pytest.approx(0.0086826618, rel=RTOL)
    assert frrc.error_term == pytest.approx(0.0005578768, rel=RTOL)
    np.testing.assert_allclose(frrc.differences["std_error"], 0.016701449, rtol=RTOL)
