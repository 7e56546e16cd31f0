"""Roe & Metz simulation; type I error and power of OR-Hillis (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from claimladder.readers import (
    RoeMetzParameters,
    decision_changes,
    or_hillis,
    roe_metz_1997,
    simulate_power,
    simulate_roe_metz,
)
from claimladder.readers._auc import auc_and_covariance
from claimladder.readers._or import or_core
from claimladder.readers._simulate import _simulate_scores


def test_published_structures():
    # Roe & Metz (1997) Table 1 as transcribed in RJafroc's RoeMetzVarStr and, for the first
    # line, in MRMCaov's RMH_to_OR example: mu 0.75 / 1.5 / 2.5 for AUROC .702 / .855 / .962.
    p = roe_metz_1997(0.702, reader_variability="low", case_correlation="high")
    assert (p.mu, p.var_reader, p.var_modality_reader, p.var_case, p.var_modality_case,
            p.var_reader_case, p.var_error) == (0.75, 0.0055, 0.0055, 0.3, 0.3, 0.2, 0.2)
    assert roe_metz_1997(0.962, reader_variability="high", case_correlation="low").var_reader \
        == 0.056
    for auc in (0.702, 0.855, 0.962):
        for cc in ("low", "high"):
            q = roe_metz_1997(auc, reader_variability="high", case_correlation=cc)
            assert q.var_case + q.var_modality_case + q.var_reader_case + q.var_error == \
                pytest.approx(1.0)
            assert q.auc[0] == pytest.approx(auc, abs=1.5e-3)
    with pytest.raises(ValueError, match="0.702, 0.855, 0.962"):
        roe_metz_1997(0.8, reader_variability="low", case_correlation="low")
    with pytest.raises(ValueError, match="Did you mean 'high'"):
        roe_metz_1997(0.855, reader_variability="hihg", case_correlation="low")
    with pytest.raises(ValueError, match="variance >= 0"):
        RoeMetzParameters(mu=1.0, var_reader=-1, var_modality_reader=0, var_case=0,
                          var_modality_case=0, var_reader_case=0, var_error=1)


def test_simulated_moments_match_the_model():
    """Latent ratings have the model's means and covariance structure."""
    p = RoeMetzParameters(mu=1.5, delta=0.4, var_reader=0.03, var_modality_reader=0.02,
                          var_case=0.3, var_modality_case=0.1, var_reader_case=0.2,
                          var_error=0.4)
    truth = np.r_[np.zeros(3, np.int8), np.ones(3, np.int8)]
    x = _simulate_scores(p, 100_000, 3, truth, np.random.default_rng(0))  # (S, 2, 3, 6)
    np.testing.assert_allclose(x[:, 0, :, :3].mean(), 0.0, atol=0.015)
    np.testing.assert_allclose(x[:, 0, :, 3:].mean(), 1.5, atol=0.015)
    np.testing.assert_allclose(x[:, 1, :, 3:].mean(), 1.9, atol=0.015)
    total = 0.03 + 0.02 + 0.3 + 0.1 + 0.2 + 0.4
    a = x[:, 0, 0, 0]
    pairs = {  # covariance of rating (modality, reader, case) pairs, from the model
        "same-case-other-reader": (x[:, 0, 1, 0], 0.3 + 0.1),
        "same-case-other-modality": (x[:, 1, 0, 0], 0.3 + 0.2 + 0.03),
        "other-case-same-truth-same-reader": (x[:, 0, 0, 1], 0.03 + 0.02),
        "other-case-same-truth-other-modality": (x[:, 1, 0, 1], 0.03),
        "other-case-other-truth": (x[:, 0, 0, 3], 0.0),
    }
    # Sample covariances of 1e5 draws have standard errors <= 0.0035; tolerance ~4 SE.
    assert np.var(a) == pytest.approx(total, rel=0.02)
    for name, (b, cov) in pairs.items():
        assert np.cov(a, b)[0, 1] == pytest.approx(cov, abs=0.015), name


def test_simulate_study_is_reproducible():
    p = roe_metz_1997(0.855, reader_variability="low", case_correlation="high", delta=0.3)
    a = simulate_roe_metz(p, n_readers=3, n_normal=10, n_abnormal=8, rng=4)
    b = simulate_roe_metz(p, n_readers=3, n_normal=10, n_abnormal=8, rng=4)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.case_ids[0] == "case0000" and a.reader_ids[-1] == "reader03"
    assert or_hillis(a).n_cases == 18


def test_batch_core_equals_or_hillis():
    """simulate_power analyses each simulated study exactly as or_hillis does."""
    p = roe_metz_1997(0.855, reader_variability="high", case_correlation="low", delta=0.2)
    truth = np.r_[np.zeros(15, np.int8), np.ones(12, np.int8)]
    x = _simulate_scores(p, 4, 3, truth, np.random.default_rng(2))
    for covariance in ("jackknife", "delong"):
        aucs, cov, _ = auc_and_covariance(x.reshape(4, 6, 27), truth, covariance)
        core = or_core(aucs.reshape(4, 2, 3), cov)
        f, ddf, pval, _ = core.f_tests()["RRRC"]
        for s in range(4):
            from claimladder.readers import ReaderStudy

            study = ReaderStudy(case_ids=tuple(map(str, range(27))), reader_ids=("a", "b", "c"),
                                modalities=("unaided", "aided"), truth=truth, scores=x[s])
            single = or_hillis(study, covariance=covariance)
            assert f[s] == pytest.approx(single.f_statistic, rel=1e-10)
            assert ddf[s] == pytest.approx(single.ddf, rel=1e-10)
            assert pval[s] == pytest.approx(single.p_value, rel=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("auc, readers, correlation", [
    (0.702, "low", "high"), (0.855, "high", "high"), (0.855, "high", "low"),
    (0.962, "low", "low"),
])
def test_type_one_error_of_or_hillis_rrrc(auc, readers, correlation):
    """Under the null the RRRC test rejects at close to the nominal 5 %.

    3000 studies of 5 readers x (50 + 50) cases per structure; the binomial standard
    error at 5 % is 0.4 %. Hillis (2007) reports OR-Hillis rates near nominal, slightly
    conservative at high AUROC; the bound 3-7 % is 5 % +- ~5 binomial SE, wide enough for
    that documented deviation and narrow enough to catch a wrong ddf (the original OR
    ddf = (t-1)(r-1) = 4, or a misplaced Cov2 - Cov3 term, move the rate far outside).
    """
    p = roe_metz_1997(auc, reader_variability=readers, case_correlation=correlation)
    for covariance in ("jackknife", "delong"):
        est = simulate_power(p, n_readers=5, n_normal=50, n_abnormal=50, n_studies=3000,
                             covariance=covariance, rng=2024)
        assert 0.03 <= est.value <= 0.07, (covariance, est)


@pytest.mark.slow
def test_power_under_an_alternative():
    p = roe_metz_1997(0.855, reader_variability="high", case_correlation="high", delta=0.5)
    rrrc = simulate_power(p, n_readers=5, n_normal=50, n_abnormal=50, n_studies=1000, rng=1)
    frrc = simulate_power(p, n_readers=5, n_normal=50, n_abnormal=50, n_studies=1000,
                          analysis="FRRC", rng=1)
    assert rrrc.ci.low > 0.2
    assert frrc.value >= rrrc.value  # fixed readers: a narrower question, more power
    null = roe_metz_1997(0.855, reader_variability="high", case_correlation="high")
    assert simulate_power(null, n_readers=5, n_normal=50, n_abnormal=50, n_studies=1000,
                          rng=1).value < rrrc.ci.low


@pytest.mark.slow
def test_two_way_bootstrap_interval_covers():
    """The two-way bootstrap interval of a change rate covers at >= nominal (conservative).

    Crossed model: logit P(change) = -1 + a_j + b_k, a ~ N(0, 0.5^2), b ~ N(0, 1). The
    population rate E[expit(-1 + a + b)] is computed by Gauss-Hermite quadrature.
    """
    from claimladder.readers import ReaderStudy

    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    grid = -1 + 0.5 * nodes[:, None] + 1.0 * nodes[None, :]
    truth_rate = float((weights[:, None] * weights[None, :] / (1 + np.exp(-grid))).sum())
    rng = np.random.default_rng(7)
    n_sim, r, c, covered = 200, 6, 40, 0
    truth = np.r_[np.zeros(c // 2, int), np.ones(c // 2, int)]
    for seed in range(n_sim):
        a = rng.normal(scale=0.5, size=(r, 1))
        b = rng.normal(size=(1, c))
        change = rng.random((r, c)) < 1 / (1 + np.exp(-(-1 + a + b)))
        first = np.tile(truth, (r, 1))
        second = np.where(change, 1 - first, first)
        dec = np.stack([first, second])
        study = ReaderStudy(case_ids=tuple(map(str, range(c))),
                            reader_ids=tuple(map(str, range(r))),
                            modalities=("unaided", "aided"), truth=truth,
                            scores=dec.astype(float), decisions=dec)
        ci = decision_changes(study, n_resamples=500, rng=seed).changed.ci
        covered += ci.low <= truth_rate <= ci.high
    # Nominal 95 %; 200 replications have a binomial SE of 1.5 %. Require >= 90 %.
    assert covered / n_sim >= 0.90, covered / n_sim
    assert math.isfinite(stats.norm.ppf(covered / n_sim)) or covered == n_sim
