"""Property tests: row-order invariance, weights as repetitions, CIs contain estimates."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from claimladder.metrics import (
    roc_auc,
    sensitivity,
    specificity,
)
from claimladder.metrics._estimate import SPECS, build, prepare

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def clustered_data(draw, min_size=4, max_size=40):
    n = draw(st.integers(min_size, max_size))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y[0], y[1] = 0, 1  # both classes
    levels = draw(st.sampled_from([3, 10, 1000]))  # heavy ties ... almost none
    s = np.array(draw(st.lists(st.integers(0, levels), min_size=n, max_size=n))) / levels
    g = np.array(draw(st.lists(st.integers(0, max(1, n // 2)), min_size=n, max_size=n)))
    g[0], g[1] = 10_000, 10_001  # at least two clusters
    return y, s, g


def _point(name, y, s, g):
    spec = SPECS[name]
    data = prepare(spec, y, s, groups=g, target=0.8, owner="test")
    return build(spec, data)


@SETTINGS
@given(clustered_data(), st.randoms(use_true_random=False))
def test_metrics_are_invariant_to_row_order(data, random):
    y, s, g = data
    perm = np.array(random.sample(range(y.size), y.size))
    for name in SPECS:
        a = _point(name, y, s, g).point()[0]
        b = _point(name, y[perm], s[perm], g[perm]).point()[0]
        assert a == pytest.approx(b, abs=1e-12, nan_ok=True), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Cluster codes follow the sorted ids, so the clustered bootstrap and DeLong
        # intervals are invariant too, not only the point values.
        for method in ("bootstrap", "delong"):
            a = roc_auc(y, s, groups=g, method=method, n_resamples=30, rng=1)
            b = roc_auc(y[perm], s[perm], groups=g[perm], method=method, n_resamples=30, rng=1)
            assert a.value == pytest.approx(b.value, abs=1e-12)
            assert (a.ci.low, a.ci.high) == pytest.approx((b.ci.low, b.ci.high), abs=1e-12,
                                                          nan_ok=True)


@SETTINGS
@given(clustered_data(), st.data())
def test_unit_weights_equal_no_weights_and_counts_equal_repetition(data, more):
    y, s, g = data
    codes = np.unique(g, return_inverse=True)[1]
    n_clusters = int(codes.max()) + 1
    counts = np.array(more.draw(st.lists(st.integers(0, 3), min_size=n_clusters,
                                         max_size=n_clusters)))
    rows = np.repeat(np.arange(y.size), counts[codes])
    for name in SPECS:
        stat = _point(name, y, s, g)
        unit = stat.evaluate(np.ones((1, n_clusters)))[0, 0]
        assert unit == pytest.approx(stat.point()[0], abs=1e-12, nan_ok=True), name
        weighted = stat.evaluate(counts[None, :])[0, 0]
        if rows.size:
            repeated = _point(name, y[rows], s[rows], g[rows]).point()[0]
            assert weighted == pytest.approx(repeated, abs=1e-12, nan_ok=True), name
    yy, ss = y[rows], s[rows]
    if 0 < yy.sum() < yy.size:
        weighted_auc = _point("roc_auc", y, s, g).evaluate(counts[None, :])[0, 0]
        assert weighted_auc == pytest.approx(skm.roc_auc_score(yy, ss), abs=1e-12)


@SETTINGS
@given(clustered_data(min_size=6))
def test_intervals_contain_their_estimate(data):
    y, s, g = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimates = [
            roc_auc(y, s, method="delong"),
            roc_auc(y, s, groups=g, method="delong"),
            roc_auc(y, s, groups=g, n_resamples=200, rng=0),
            roc_auc(y, s, n_resamples=200, rng=0),
            sensitivity(y, s, method="wilson"),
            specificity(y, s, method="clopper-pearson"),
            sensitivity(y, s, groups=g, method="wilson-cluster"),
            sensitivity(y, s, groups=g, n_resamples=200, rng=0),
        ]
    for est in estimates:
        if math.isnan(est.ci.low):
            continue
        assert est.ci.low - 1e-12 <= est.value <= est.ci.high + 1e-12, est
