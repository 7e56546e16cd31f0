"""Decision curves against dcurves, and the utility.net_benefit finding.

Reference: dcurves 1.1.7 (Python port of the R/Stata ``dca``), called as
``dcurves.dca(data=frame, outcome="y", modelnames=["p"], thresholds=t)``.
Net benefit is a closed-form function of counts, so agreement is required to
1e-12 (float rounding only).
"""

from __future__ import annotations

import json
import warnings

import dcurves
import numpy as np
import pandas as pd
import pytest

from claimladder._core import Rung, SmallSampleWarning, Status, UndefinedMetricWarning
from claimladder.utility import (
    DECISION_CURVE_COLUMNS,
    DEFAULT_THRESHOLDS,
    check_net_benefit,
    decision_curve_plot,
    net_benefit,
)

TOL = 1e-12
_STRATEGY = {"p": "model", "all": "treat_all", "none": "treat_none"}


def _dcurves(y, p, thresholds) -> pd.DataFrame:
    frame = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p, dtype=float)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dcurves' own pandas deprecation warnings
        ref = dcurves.dca(data=frame, outcome="y", modelnames=["p"], thresholds=thresholds)
    ref = ref.assign(strategy=ref["model"].map(_STRATEGY))
    return ref[["threshold", "strategy", "net_benefit", "tp_rate", "fp_rate"]]


def _datasets():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    smooth = np.clip(0.3 * y + 0.35 + rng.normal(0, 0.15, 300), 0, 1)
    yield "continuous", y, smooth
    yield "ties", y, np.round(smooth, 1)  # many scores equal to a threshold
    yield "zeros-and-ones", y, np.where(rng.random(300) < 0.2, y.astype(float), smooth)
    yield "tiny", np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.5, 0.9])
    yield "rare", (rng.random(400) < 0.04).astype(int), rng.beta(1, 8, 400)


@pytest.mark.parametrize("name,y,p", list(_datasets()), ids=[d[0] for d in _datasets()])
def test_net_benefit_matches_dcurves(name, y, p):
    thresholds = np.round(np.arange(0, 1, 0.05), 2)
    ours = net_benefit(y, p, thresholds, n_resamples=100, rng=0)
    assert list(ours.columns) == list(DECISION_CURVE_COLUMNS)
    merged = ours.merge(_dcurves(y, p, thresholds), on=["threshold", "strategy"],
                        suffixes=("", "_ref"), validate="one_to_one")
    assert len(merged) == len(ours) == 3 * thresholds.size
    for col in ("net_benefit", "tp_rate", "fp_rate"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_ref"], atol=TOL, err_msg=col)


def test_single_class_outcomes_are_defined_where_dcurves_divides_by_zero():
    # dcurves raises ZeroDivisionError without positives; net benefit itself is
    # defined: NB = -FP / n * t / (1 - t) (Vickers & Elkin 2006, eq. 1).
    y, p = np.zeros(6, int), np.array([0.1, 0.5, 0.9, 0.0, 1.0, 0.3])
    with pytest.raises(ZeroDivisionError):
        _dcurves(y, p, [0.2, 0.5])
    table = net_benefit(y, p, [0.2, 0.5], n_resamples=100, rng=0).set_index(
        ["strategy", "threshold"])
    for t in (0.2, 0.5):
        fp = np.sum(p >= t)
        assert table.loc[("model", t), "net_benefit"] == pytest.approx(-fp / 6 * t / (1 - t))
        assert table.loc[("treat_all", t), "net_benefit"] == pytest.approx(-t / (1 - t))


def test_default_thresholds_and_interval_properties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.4 * y + 0.3 + rng.normal(0, 0.15, 200), 0, 1)
    table = net_benefit(y, p, groups=np.arange(200) // 2, n_resamples=300, rng=2)
    assert table["threshold"].nunique() == len(DEFAULT_THRESHOLDS) == 99
    assert (table["ci_low"] <= table["net_benefit"] + 1e-12).all()
    assert (table["net_benefit"] <= table["ci_high"] + 1e-12).all()
    none = table[table["strategy"] == "treat_none"]
    assert (none[["net_benefit", "ci_low", "ci_high"]] == 0).all().all()
    assert (table["n_clusters"] == 100).all() and (table["method"] ==
                                                   "cluster-bootstrap-percentile").all()
    again = net_benefit(y, p, groups=np.arange(200) // 2, n_resamples=300, rng=2)
    pd.testing.assert_frame_equal(table, again)
    # Row order does not matter (same data, same patients): point values are equal.
    perm = rng.permutation(200)
    shuffled = net_benefit(y[perm], p[perm], n_resamples=50, rng=0)
    np.testing.assert_allclose(shuffled["net_benefit"],
                               net_benefit(y, p, n_resamples=50, rng=0)["net_benefit"])


def test_cluster_bootstrap_widens_intervals_for_duplicated_patients():
    # Each patient contributes 5 identical rows: treating rows as independent
    # understates the uncertainty; resampling patients does not.
    rng = np.random.default_rng(3)
    y0 = rng.integers(0, 2, 60)
    p0 = np.clip(0.3 * y0 + 0.35 + rng.normal(0, 0.2, 60), 0, 1)
    y, p, g = np.repeat(y0, 5), np.repeat(p0, 5), np.repeat(np.arange(60), 5)
    rows = net_benefit(y, p, [0.3], n_resamples=500, rng=0)
    patients = net_benefit(y, p, [0.3], groups=g, n_resamples=500, rng=0)
    def width(t):
        return (t["ci_high"] - t["ci_low"]).iloc[0]

    assert width(patients) > 1.8 * width(rows)


def test_input_errors_and_degenerate_inputs():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        net_benefit([0, 1], [0.2, 0.8], [0.5, 1.0])
    with pytest.raises(ValueError, match="probabilities in"):
        net_benefit([0, 1], [0.2, 1.8], [0.5])
    with pytest.raises(ValueError, match="NaN"):
        net_benefit([0, 1], [0.2, np.nan], [0.5])
    with pytest.warns(UndefinedMetricWarning):
        empty = net_benefit([], [], [0.5])
    assert empty["net_benefit"].isna().all()
    with pytest.warns(SmallSampleWarning, match="single cluster"):
        one = net_benefit([0, 1, 1], [0.2, 0.6, 0.9], [0.5], groups=["p1"] * 3)
    assert one["ci_low"].isna().all() and one["net_benefit"].notna().all()


def test_decision_curve_plot():
    table = net_benefit([0, 1, 0, 1] * 10, [0.2, 0.7, 0.4, 0.9] * 10, n_resamples=50, rng=0)
    plot = decision_curve_plot(table, threshold_range=(0.1, 0.4))
    assert plot.kind == "line" and plot.options["highlight_x"] == [0.1, 0.4]
    assert set(plot.data["strategy"]) == {"model", "treat_all", "treat_none"}
    json.dumps(plot.to_dict(), allow_nan=False)


def test_check_net_benefit_statuses():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    good = np.clip(0.4 * y + 0.3 + rng.normal(0, 0.1, 500), 0, 1)
    f = check_net_benefit(y, good, threshold_range=(0.2, 0.6), n_resamples=300, rng=0)
    assert f.check == "utility.net_benefit" and f.rung == Rung.UTILITY
    assert f.status == Status.PASS and f.estimate.ci.low > 0
    assert f.plots[0].kind == "line"
    json.dumps(f.to_dict(), allow_nan=False)
    # The estimate is the smallest advantage over max(treat all, treat none) in range.
    table = f.table.pivot(index="threshold", columns="strategy", values="net_benefit")
    in_range = table.loc[(table.index >= 0.2) & (table.index <= 0.6)]
    expected = (in_range["model"] - in_range[["treat_all", "treat_none"]].max(axis=1)).min()
    assert f.estimate.value == pytest.approx(expected)

    useless = rng.random(500)  # uninformative, calibrated to nothing
    f = check_net_benefit(y, useless, threshold_range=(0.2, 0.6), n_resamples=300, rng=0)
    assert f.status == Status.FAIL and "does not improve decisions" in f.message

    # Weak models on small samples: the status follows the estimate and its bound.
    seen = set()
    for seed in range(6):
        r = np.random.default_rng(10 + seed)
        y_small = r.integers(0, 2, 120)
        weak = np.clip(0.08 * y_small + 0.46 + r.normal(0, 0.1, 120), 0, 1)
        f = check_net_benefit(y_small, weak, threshold_range=(0.45, 0.55), n_resamples=200,
                              rng=0)
        expected = (Status.FAIL if f.estimate.value <= 0 else
                    Status.PASS if f.estimate.ci.low > 0 else Status.WARN)
        assert f.status == expected
        seen.add(f.status)
    assert Status.WARN in seen
    with pytest.raises(ValueError, match="threshold_range"):
        check_net_benefit(y, good, threshold_range=(0.6, 0.2))
