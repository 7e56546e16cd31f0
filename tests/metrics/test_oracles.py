"""AUROC and DeLong against the slow oracles in tests/reference and a published value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtri

from claimladder.metrics import compare_paired, roc_auc
from claimladder.metrics._ranking import obuchowski_covariance as fast_covariance
from claimladder.metrics._ranking import placements
from reference.auroc import pairwise_auroc
from reference.delong import delong_covariance, obuchowski_covariance


def _data(seed: int, n: int, decimals: int | None, n_clusters: int | None = None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = rng.normal(size=n) + 0.8 * y
    if decimals is not None:
        s = np.round(s, decimals)
    g = None if n_clusters is None else rng.integers(0, n_clusters, n)
    return y, s, g


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1, 0], ids=["continuous", "ties", "heavy_ties"])
def test_auroc_equals_pairwise_reference(seed, decimals):
    y, s, _ = _data(seed, 80, decimals)
    assert roc_auc(y, s, method="delong").value == pytest.approx(pairwise_auroc(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1], ids=["continuous", "ties"])
def test_delong_variance_equals_reference(seed, decimals):
    y, s, _ = _data(seed, 70, decimals)
    p = placements(y.astype(bool), s, np.arange(y.size), y.size)
    assert fast_covariance(p, p) == pytest.approx(delong_covariance(y, s, s), rel=1e-10)
    est = roc_auc(y, s, method="delong")
    half = ndtri(0.975) * math.sqrt(delong_covariance(y, s, s))
    assert est.ci.low == pytest.approx(max(0.0, est.value - half), abs=1e-12)
    assert est.ci.high == pytest.approx(min(1.0, est.value + half), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1], ids=["continuous", "ties"])
def test_clustered_delong_equals_obuchowski_reference(seed, decimals):
    y, s, g = _data(seed, 90, decimals, n_clusters=25)
    yb = y.astype(bool)
    codes = np.unique(g, return_inverse=True)[1]
    p = placements(yb, s, codes, codes.max() + 1)
    assert fast_covariance(p, p) == pytest.approx(obuchowski_covariance(y, s, s, g), rel=1e-10)


def test_obuchowski_reduces_to_delong_with_singleton_clusters():
    y, s, _ = _data(11, 60, 1)
    groups = np.arange(60)
    assert obuchowski_covariance(y, s, s, groups) == pytest.approx(delong_covariance(y, s, s))
    a = roc_auc(y, s, method="delong")
    b = roc_auc(y, s, method="delong", groups=groups)
    assert (a.ci.low, a.ci.high) == pytest.approx((b.ci.low, b.ci.high), abs=1e-12)


@pytest.mark.parametrize("clustered", [False, True], ids=["delong", "obuchowski"])
def test_paired_delong_equals_reference(clustered):
    y, s_a, g = _data(5, 80, 1, n_clusters=30)
    s_b = np.round(s_a * 0.5 + np.random.default_rng(9).normal(size=80), 1)
    groups = g if clustered else None
    if clustered:
        cov = obuchowski_covariance(y, s_a, s_b, g)
        var = (obuchowski_covariance(y, s_a, s_a, g) + obuchowski_covariance(y, s_b, s_b, g)
               - 2 * cov)
    else:
        var = (delong_covariance(y, s_a, s_a) + delong_covariance(y, s_b, s_b)
               - 2 * delong_covariance(y, s_a, s_b))
    result = compare_paired(y, s_a, s_b, groups=groups)
    diff = pairwise_auroc(y, s_a) - pairwise_auroc(y, s_b)
    assert result.difference.value == pytest.approx(diff, abs=1e-12)
    z = diff / math.sqrt(var)
    assert result.statistic == pytest.approx(z, rel=1e-9)
    half = ndtri(0.975) * math.sqrt(var)
    assert result.difference.ci.low == pytest.approx(diff - half, abs=1e-12)
    assert result.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)


def test_hanley_mcneil_published_auroc():
    # Hanley & McNeil (1982), Radiology 143:29-36, Table 1: CT ratings (1 = definitely
    # normal ... 5 = definitely abnormal) of 58 normal and 51 abnormal patients; the
    # published trapezoidal (Wilcoxon) area is 0.893.
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    y = np.r_[np.zeros(58, int), np.ones(51, int)]
    s = np.r_[normal, abnormal].astype(float)
    est = roc_auc(y, s, method="delong")
    assert round(est.value, 3) == 0.893
    # DeLong's SE for these data is not published there; Hanley & McNeil's approximate
    # SE is 0.032 and the nonparametric DeLong SE must be of that size (within 20 %).
    se = (est.ci.high - est.value) / ndtri(0.975)
    assert 0.8 * 0.032 < se < 1.2 * 0.032


def test_oracles_on_a_hand_computed_example():
    # Positives {0.35, 0.8}, negatives {0.1, 0.4}: 3 of 4 pairs ordered, AUC 0.75.
    # Placements V10 = (1/2, 1), V01 = (1, 1/2); S10 = S01 = 0.125 (ddof 1);
    # var = S10/2 + S01/2 = 0.125.
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert pairwise_auroc(y, s) == 0.75
    assert delong_covariance(y, s, s) == pytest.approx(0.125)
    assert obuchowski_covariance(y, s, s, [1, 2, 3, 4]) == pytest.approx(0.125)
    est = roc_auc(y, s, method="delong")
    half = ndtri(0.975) * math.sqrt(0.125)
    assert (est.value, est.ci.low, est.ci.high) == pytest.approx((0.75, 0.75 - half, 1.0))
