"""Triage simulation: threshold from development data, counts and Bayes PPV/NPV on test sets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from claimladder._core import Rung, Status, UndefinedMetricWarning
from claimladder.metrics import choose_threshold, npv, ppv, sensitivity, specificity
from claimladder.utility import TRIAGE_COLUMNS, TRIAGE_METRICS, check_triage, triage


def _data(seed: int, n: int, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    score = 1.5 * y + rng.normal(0, 1, n) - shift * y
    return y, score


def test_counts_and_rates_equal_direct_computation():
    y_dev, s_dev = _data(0, 400)
    y, s = _data(1, 300)
    r = triage(y, s, threshold_from=(y_dev, s_dev), target_sensitivity=0.9,
               test_partition="internal_test", n_resamples=300, rng=0)
    t = choose_threshold(y_dev, s_dev, rule="sensitivity", target=0.9, partition="development")
    assert r.threshold == t
    below = s < t.value
    assert r["fraction_deprioritized"].value == pytest.approx(below.mean())
    assert r["positives_missed"].value == np.sum(below & (y == 1))
    np.testing.assert_array_equal(r.missed, below & (y == 1))
    assert r["sensitivity"].value == pytest.approx(
        sensitivity(y, s, threshold=t.value, n_resamples=10, rng=0).value)
    assert r["specificity"].value == pytest.approx(
        specificity(y, s, threshold=t.value, n_resamples=10, rng=0).value)
    # Without a declared prevalence, PPV and NPV are the test set's own.
    assert r.prevalence_source == "observed"
    assert r["ppv"].value == pytest.approx(ppv(y, s, threshold=t.value, n_resamples=10).value)
    assert r["npv"].value == pytest.approx(npv(y, s, threshold=t.value, n_resamples=10).value)
    assert r["missed_per_1000"].value == pytest.approx(1000 * (below & (y == 1)).mean())
    for metric in TRIAGE_METRICS:
        e = r[metric]
        assert e.ci.low <= e.value <= e.ci.high, metric
    assert list(r.table.columns) == list(TRIAGE_COLUMNS)
    assert r.table["metric"].tolist() == list(TRIAGE_METRICS)


def test_declared_prevalence_uses_bayes():
    y_dev, s_dev = _data(2, 400)
    y, s = _data(3, 400)
    r = triage(y, s, threshold_from=(y_dev, s_dev), target_sensitivity=0.95,
               deployment_prevalence=0.05, n_resamples=300, rng=0)
    sens, spec, pi = r["sensitivity"].value, r["specificity"].value, 0.05
    assert r["ppv"].value == pytest.approx(sens * pi / (sens * pi + (1 - spec) * (1 - pi)))
    assert r["npv"].value == pytest.approx(
        spec * (1 - pi) / (spec * (1 - pi) + (1 - sens) * pi))
    assert r["missed_per_1000"].value == pytest.approx(1000 * (1 - sens) * pi)
    assert r.prevalence_source == "declared" and r.deployment_prevalence == 0.05
    # At a low deployment prevalence the NPV is higher than on the enriched test set.
    observed = triage(y, s, threshold_from=r.threshold, n_resamples=50, rng=0)
    assert r["npv"].value > observed["npv"].value


def test_threshold_guard_and_reuse():
    y_dev, s_dev = _data(4, 200)
    y, s = _data(5, 200)
    with pytest.raises(ValueError, match="Refusing to choose a threshold"):
        triage(y, s, threshold_from=(y, s), target_sensitivity=0.9,
               partition_name="internal_test")
    with pytest.raises(ValueError, match="Refusing"):
        triage(y, s, threshold_from=(y_dev, s_dev), target_sensitivity=0.9,
               partition_name="calib", sealed_partitions=["calib"])
    with pytest.raises(ValueError, match="target_sensitivity"):
        triage(y, s, threshold_from=(y_dev, s_dev))
    t = choose_threshold(y_dev, s_dev, rule="youden", partition="development")
    with pytest.raises(ValueError, match="rule='sensitivity'"):
        triage(y, s, threshold_from=t, target_sensitivity=0.9)
    t = choose_threshold(y_dev, s_dev, rule="sensitivity", target=0.9, partition="development")
    a = triage(y, s, threshold_from=t, n_resamples=100, rng=1)
    b = triage(y, s, threshold_from=(y_dev, s_dev), target_sensitivity=0.9, n_resamples=100,
               rng=1)
    assert a.table.equals(b.table)


def test_cluster_bootstrap_and_reproducibility():
    y_dev, s_dev = _data(6, 300)
    y, s = _data(7, 300)
    patients = np.arange(300) // 3
    kw = {"threshold_from": (y_dev, s_dev), "target_sensitivity": 0.9, "groups": patients,
          "n_resamples": 300, "rng": 4}
    a, b = triage(y, s, **kw), triage(y, s, **kw)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert (a.table["n_clusters"] == 100).all()
    assert (a.table["method"] == "cluster-bootstrap-percentile").all()


def test_check_triage_statuses():
    y_dev, s_dev = _data(8, 600)
    ids = np.asarray([f"img{i}" for i in range(400)])

    y, s = _data(9, 400)
    r = triage(y, s, threshold_from=(y_dev, s_dev), target_sensitivity=0.9, n_resamples=300,
               rng=0, test_partition="internal_test")
    f = check_triage(r, ids=ids)
    assert f.check == "utility.triage" and f.rung == Rung.UTILITY
    assert f.status in (Status.PASS, Status.WARN)
    assert f.examples == tuple(ids[r.missed][:10])
    json.dumps(f.to_dict(), allow_nan=False)

    # Positives score lower at the external site: the development threshold misses many.
    y, s = _data(10, 400, shift=1.2)
    r = triage(y, s, threshold_from=(y_dev, s_dev), target_sensitivity=0.9, n_resamples=300,
               rng=0, test_partition="site_C")
    f = check_triage(r, ids=ids)
    assert f.status == Status.FAIL and "not reached" in f.message
    assert f.estimate.ci.high < 0.9

    # Every test case scores above the threshold: nothing is deprioritised.
    y, s = _data(11, 100)
    with pytest.warns(UndefinedMetricWarning, match="npv"):  # no case predicted negative
        r = triage(y, s + 10, threshold_from=(y_dev, s_dev), target_sensitivity=0.9,
                   n_resamples=100, rng=0)
    f = check_triage(r)
    assert f.status == Status.WARN and "saves no work" in f.message

    with pytest.warns(UndefinedMetricWarning):
        r = triage(np.zeros(50, int), s[:50], threshold_from=(y_dev, s_dev),
                   target_sensitivity=0.9, n_resamples=100, rng=0)
    assert check_triage(r).status == Status.NOT_EVALUABLE
    with pytest.raises(ValueError, match="one id per test row"):
        check_triage(r, ids=ids)
