"""Point values against scikit-learn 1.9, undefined cases and input validation.

scikit-learn is the independent implementation: every metric's point value
must equal it (tolerance 1e-12: both compute the same finite sums in float64,
only the order of summation differs).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from claimladder._core import SmallSampleWarning, UndefinedMetricWarning
from claimladder.metrics import (
    accuracy,
    average_precision,
    balanced_accuracy,
    brier_score,
    f1,
    log_loss,
    npv,
    ppv,
    roc_auc,
    sensitivity,
    specificity,
)

TOL = 1e-12


def _cases():
    rng = np.random.default_rng(42)
    y = rng.integers(0, 2, 200)
    continuous = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    yield "continuous", y, continuous
    yield "ties", y, np.round(continuous, 1)
    yield "all_equal", y, np.full(200, 0.5)
    yield "tiny", np.array([0, 1, 1]), np.array([0.2, 0.9, 0.2])
    yield "two_rows", np.array([1, 0]), np.array([0.4, 0.6])
    yield "perfect", np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])
    yield "extreme_probabilities", np.array([0, 1, 0, 1, 1]), np.array([0.0, 1.0, 1.0, 0.0, 0.5])


CASES = list(_cases())
IDS = [c[0] for c in CASES]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize(("name", "y", "s"), CASES, ids=IDS)
def test_ranking_metrics_equal_sklearn(name, y, s):
    est = _quiet(roc_auc, y, s, n_resamples=20, rng=0)
    assert est.value == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert (est.n, est.n_pos, est.n_clusters) == (len(y), int(y.sum()), None)
    ap = _quiet(average_precision, y, s, n_resamples=20, rng=0)
    assert ap.value == pytest.approx(skm.average_precision_score(y, s), abs=TOL)


@pytest.mark.parametrize(("name", "y", "s"), CASES, ids=IDS)
@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_threshold_metrics_equal_sklearn(name, y, s, threshold):
    pred = (s >= threshold).astype(int)
    expected = {
        sensitivity: skm.recall_score(y, pred, zero_division=np.nan),
        specificity: skm.recall_score(y, pred, pos_label=0, zero_division=np.nan),
        ppv: skm.precision_score(y, pred, zero_division=np.nan),
        npv: skm.precision_score(y, pred, pos_label=0, zero_division=np.nan),
        f1: skm.f1_score(y, pred, zero_division=np.nan),
        accuracy: skm.accuracy_score(y, pred),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected[balanced_accuracy] = skm.balanced_accuracy_score(y, pred)
    for fn, value in expected.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = fn(y, s, threshold=threshold, n_resamples=20, rng=0)
            via_pred = fn(y, y_pred=pred, n_resamples=20, rng=0)
        if math.isnan(value):
            assert math.isnan(est.value), fn.__name__
        else:
            assert est.value == pytest.approx(value, abs=TOL), fn.__name__
        assert est.value == via_pred.value or math.isnan(est.value)


@pytest.mark.parametrize(("name", "y", "s"), CASES, ids=IDS)
def test_probabilistic_metrics_equal_sklearn(name, y, s):
    est = _quiet(brier_score, y, s, n_resamples=20, rng=0)
    assert est.value == pytest.approx(skm.brier_score_loss(y, s), abs=TOL)
    est = _quiet(log_loss, y, s, n_resamples=20, rng=0)
    assert est.value == pytest.approx(skm.log_loss(y, y_proba=s, labels=[0, 1]), abs=1e-10)


def test_string_labels_and_pos_label():
    y = np.array(["benign", "malignant", "malignant", "benign", "malignant"])
    s = np.array([0.2, 0.7, 0.4, 0.5, 0.9])
    est = roc_auc(y, s, pos_label="malignant", method="delong")
    assert est.value == pytest.approx(skm.roc_auc_score(y == "malignant", s), abs=TOL)
    assert est.n_pos == 3
    with pytest.raises(ValueError, match="pos_label=1 is not one of the labels"):
        roc_auc(y, s)


def test_pandas_inputs_are_accepted():
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "s": [0.1, 0.9, 0.4, 0.3], "p": ["a", "a", "b", "b"]})
    est = roc_auc(frame["y"], frame["s"], groups=frame["p"], method="delong")
    assert est.value == pytest.approx(0.75)
    assert est.n_clusters == 2


@pytest.mark.parametrize("fn", [roc_auc, average_precision], ids=["roc_auc", "ap"])
def test_single_class_is_nan_with_warning(fn):
    with pytest.warns(UndefinedMetricWarning, match="undefined"):
        est = fn([0, 0, 0], [0.1, 0.5, 0.3], rng=0)
    assert math.isnan(est.value) and math.isnan(est.ci.low) and math.isnan(est.ci.high)
    assert est.n == 3 and est.n_pos == 0
    assert not est.is_defined


@pytest.mark.parametrize(
    ("fn", "y", "pred"),
    [(sensitivity, [0, 0], [0, 1]), (specificity, [1, 1], [0, 1]), (ppv, [0, 1], [0, 0]),
     (npv, [0, 1], [1, 1]), (balanced_accuracy, [1, 1], [1, 0])],
    ids=["sensitivity", "specificity", "ppv", "npv", "balanced_accuracy"],
)
def test_undefined_threshold_metrics_are_nan(fn, y, pred):
    with pytest.warns(UndefinedMetricWarning):
        est = fn(y, y_pred=pred, rng=0)
    assert math.isnan(est.value)


def test_empty_input_is_nan():
    with pytest.warns(UndefinedMetricWarning, match="no rows"):
        est = accuracy([], y_pred=[], rng=0)
    assert math.isnan(est.value) and est.n == 0


def test_fewer_than_two_clusters_is_nan():
    with pytest.warns(UndefinedMetricWarning, match="1 cluster"):
        est = roc_auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], groups=["p"] * 4, rng=0)
    assert math.isnan(est.value) and est.n_clusters == 1


def test_probability_metrics_defined_with_one_class():
    est = _quiet(brier_score, [1, 1, 1], [0.9, 0.8, 0.7], n_resamples=20, rng=0)
    assert est.value == pytest.approx(skm.brier_score_loss([1, 1, 1], [0.9, 0.8, 0.7]))


@pytest.mark.parametrize("where", ["y_true", "y_score", "groups"])
def test_nan_inputs_raise_with_count_and_positions(where):
    y = np.array([0, 1, 0, 1, 0, 1, 1, 0], dtype=float)
    s = np.linspace(0, 1, 8)
    g = np.array(["a", "b", "c", "d", "e", "f", "g", "h"], dtype=object)
    if where == "y_true":
        y[[2, 5]] = np.nan
    elif where == "y_score":
        s[[2, 5]] = np.nan
    else:
        g[[2, 5]] = None
    with pytest.raises(ValueError, match=rf"{where} .*2 NaN/missing value\(s\) at positions "
                                         r"\[2, 5\]"):
        roc_auc(y, s, groups=g, rng=0)


def test_many_nan_positions_are_truncated():
    s = np.full(20, np.nan)
    with pytest.raises(ValueError, match=r"20 NaN.*\[0, 1, 2, 3, 4, \.\.\.\]"):
        roc_auc(np.arange(20) % 2, s)


def test_infinite_scores_raise():
    with pytest.raises(ValueError, match="1 infinite value"):
        roc_auc([0, 1], [0.1, np.inf])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"method": "delongg"}, "Did you mean 'delong'"),
     ({"confidence_level": 1.5}, "confidence_level"),
     ({"n_resamples": 0}, "n_resamples"),
     ({"method": "wilson"}, "method")],
    ids=["typo", "level", "resamples", "wrong_method"],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        roc_auc([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.4], **kwargs)


def test_bad_data_shapes_raise():
    with pytest.raises(ValueError, match="different lengths"):
        roc_auc([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="3 distinct labels"):
        roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="one-dimensional"):
        roc_auc([[0, 1]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="groups .* 2 values"):
        roc_auc([0, 1, 0], [0.1, 0.2, 0.3], groups=[1, 2])
    with pytest.raises(ValueError, match="exactly one of y_score"):
        sensitivity([0, 1], [0.1, 0.9], y_pred=[0, 1])
    with pytest.raises(ValueError, match="probabilities in"):
        brier_score([0, 1], [0.1, 1.2])
    with pytest.raises(ValueError, match="'threshold' parameter"):
        sensitivity([0, 1], [0.1, 0.9], threshold=float("nan"))


def test_method_labels_and_cluster_counts():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    s = rng.random(60) + y
    g = np.repeat(np.arange(20), 3)
    assert roc_auc(y, s, rng=0, n_resamples=50).method == "bootstrap-percentile"
    est = roc_auc(y, s, groups=g, rng=0, n_resamples=50, method="bca")
    assert (est.method, est.n_clusters) == ("cluster-bootstrap-bca", 20)
    assert roc_auc(y, s, groups=g, method="delong").method == "delong-obuchowski"
    assert sensitivity(y, s, groups=g, method="wilson-cluster").method == "wilson-cluster"


def test_same_seed_same_result_and_ci_contains_estimate():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.random(300) + 0.5 * y
    g = np.repeat(np.arange(100), 3)
    a = roc_auc(y, s, groups=g, rng=7, n_resamples=300)
    b = roc_auc(y, s, groups=g, rng=7, n_resamples=300)
    assert a == b
    assert a.ci.low < a.value < a.ci.high
    assert roc_auc(y, s, groups=g, rng=8, n_resamples=300) != a
