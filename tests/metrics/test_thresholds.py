"""Operating points and threshold choice against brute force over every threshold."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from claimladder._core import SmallSampleWarning, UndefinedMetricWarning
from claimladder.metrics import (
    Threshold,
    bootstrap_distribution,
    choose_threshold,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
)
from reference.bootstrap import cluster_draws, resampled_rows


def _rates(y, s, t):
    pred = s >= t
    return pred[y == 1].mean(), (~pred[y == 0]).mean()


def _brute(y, s):
    """(threshold, sensitivity, specificity) for every candidate, incl. 'above all'."""
    candidates = np.r_[np.unique(s), np.inf]
    return [(t, *_rates(y, s, t)) for t in candidates]


def brute_sensitivity_at_specificity(y, s, target):
    return max(sens for _, sens, spec in _brute(y, s) if spec >= target - 1e-9)


def brute_specificity_at_sensitivity(y, s, target):
    return max(spec for _, sens, spec in _brute(y, s) if sens >= target - 1e-9)


def _data(seed, n=60, decimals=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    return y, np.round(rng.random(n) + 0.4 * y, decimals)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
def test_operating_points_equal_brute_force(seed, target):
    y, s = _data(seed, decimals=seed % 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        sens = sensitivity_at_specificity(y, s, specificity=target, n_resamples=10, rng=0)
        spec = specificity_at_sensitivity(y, s, sensitivity=target, n_resamples=10, rng=0)
    assert sens.value == pytest.approx(brute_sensitivity_at_specificity(y, s, target))
    assert spec.value == pytest.approx(brute_specificity_at_sensitivity(y, s, target))


@pytest.mark.parametrize("seed", range(8))
def test_choose_threshold_rules_equal_brute_force(seed):
    y, s = _data(seed, decimals=seed % 3)
    table = _brute(y, s)
    youden = choose_threshold(y, s, partition="development")
    best_j = max(sens + spec - 1 for _, sens, spec in table)
    assert youden.sensitivity + youden.specificity - 1 == pytest.approx(best_j)
    assert _rates(y, s, youden.value) == pytest.approx((youden.sensitivity, youden.specificity))
    for target in (0.7, 0.95):
        t = choose_threshold(y, s, rule="specificity", target=target, partition="calibration")
        assert t.specificity >= target
        assert t.sensitivity == pytest.approx(brute_sensitivity_at_specificity(y, s, target))
        assert _rates(y, s, t.value) == pytest.approx((t.sensitivity, t.specificity))
        t = choose_threshold(y, s, rule="sensitivity", target=target, partition="calibration")
        assert t.sensitivity >= target
        assert t.specificity == pytest.approx(brute_specificity_at_sensitivity(y, s, target))
        assert _rates(y, s, t.value) == pytest.approx((t.sensitivity, t.specificity))


def test_operating_point_agrees_with_chosen_threshold():
    y, s = _data(3)
    t = choose_threshold(y, s, rule="specificity", target=0.85, partition="development")
    est = sensitivity_at_specificity(y, s, specificity=0.85, n_resamples=20, rng=0)
    assert est.value == t.sensitivity


def test_unreachable_specificity_puts_threshold_above_every_score():
    y = np.array([0, 1, 0, 1])
    s = np.array([0.9, 0.5, 0.1, 0.2])
    t = choose_threshold(y, s, rule="specificity", target=1.0, partition="dev")
    assert t.value > 0.9 and (t.sensitivity, t.specificity) == (0.0, 1.0)


def test_bootstrap_rederives_the_threshold_in_every_replicate():
    y, s = _data(4, n=40)
    g = np.repeat(np.arange(20), 2)
    dist = bootstrap_distribution("sensitivity_at_specificity", y, s, groups=g, target=0.8,
                                  n_resamples=30, rng=3)
    draws = cluster_draws(20, 30, seed=3)
    for r in range(30):
        rows = resampled_rows(g, draws[r])
        yy, ss = y[rows], s[rows]
        if 0 < yy.sum() < yy.size:
            assert dist.replicates[r] == pytest.approx(
                brute_sensitivity_at_specificity(yy, ss, 0.8)), r


@pytest.mark.parametrize("partition", ["internal_test", "TEST", "external_test_site_C"])
def test_refuses_test_partitions(partition):
    with pytest.raises(ValueError, match="Refusing to choose a threshold.*force=True"):
        choose_threshold([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6], partition=partition)


def test_refuses_sealed_partitions_and_records_force():
    y, s = [0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6]
    with pytest.raises(ValueError, match="listed in sealed_partitions"):
        choose_threshold(y, s, partition="site_C", sealed_partitions=("site_C",))
    forced = choose_threshold(y, s, partition="site_C", sealed_partitions=["site_C"],
                              force=True)
    assert forced.forced and forced.partition == "site_C"
    ok = choose_threshold(y, s, partition="development", sealed_partitions=["site_C"])
    assert not ok.forced
    assert isinstance(ok, Threshold) and ok.n == 4 and ok.n_pos == 2
    assert ok.to_dict()["partition"] == "development"


def test_threshold_is_frozen():
    t = choose_threshold([0, 1], [0.2, 0.7], partition="dev")
    with pytest.raises(AttributeError):
        t.value = 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"rule": "youden", "target": 0.9}, "takes no target"),
     ({"rule": "sensitivity"}, "needs target"),
     ({"rule": "specificity", "target": 1.5}, r"\(0, 1\]"),
     ({"rule": "youdn"}, "Did you mean 'youden'"),
     ({"partition": ""}, "non-empty str")],
)
def test_choose_threshold_validates_options(kwargs, message):
    kwargs.setdefault("partition", "development")
    with pytest.raises(ValueError, match=message):
        choose_threshold([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6], **kwargs)


def test_choose_threshold_needs_both_classes():
    with pytest.raises(ValueError, match="single class"):
        choose_threshold([1, 1], [0.1, 0.8], partition="development")


def test_operating_point_single_class_is_nan():
    with pytest.warns(UndefinedMetricWarning):
        est = sensitivity_at_specificity([0, 0, 0], [0.1, 0.2, 0.3], rng=0)
    assert math.isnan(est.value)
