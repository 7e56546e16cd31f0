"""Decision impact: changed calls, two-way bootstrap, reading time, misled readers."""

from __future__ import annotations

import numpy as np
import pytest

from claimladder import UndefinedMetricWarning
from claimladder.readers import ReaderStudy, ReaderStudyError, decision_changes
from claimladder.readers._decisions import _ratio, _two_way_weights


def _study(unaided, aided, truth, times=None):
    dec = np.stack([unaided, aided]).astype(int)
    r, c = dec.shape[1:]
    return ReaderStudy(case_ids=tuple(f"c{k}" for k in range(c)),
                       reader_ids=tuple(f"R{j}" for j in range(r)),
                       modalities=("unaided", "aided"), truth=np.asarray(truth),
                       scores=dec.astype(float), decisions=dec, times=times)


def test_rates_equal_hand_counts():
    truth = np.array([0, 0, 1, 1, 1])
    unaided = np.array([[0, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 1, 1]])
    aided = np.array([[0, 0, 1, 1, 0], [1, 0, 0, 1, 1], [0, 0, 0, 1, 1]])
    impact = decision_changes(_study(unaided, aided, truth), n_resamples=50, rng=0)
    # Wrong->right: R0 c1 (1->0, negative), R0 c3 (0->1, positive), R1 c1, R1 c4 = 4 pairs.
    # Right->wrong: R1 c2 (1->0 on a positive) = 1 pair. Changed: 5 of 15.
    assert impact.changed.value == pytest.approx(5 / 15)
    assert impact.wrong_to_right.value == pytest.approx(4 / 15)
    assert impact.right_to_wrong.value == pytest.approx(1 / 15)
    assert impact.net_corrected.value == pytest.approx(3 / 15)
    right1 = (unaided == truth).sum()
    right2 = (aided == truth).sum()
    assert impact.accuracy_first.value == pytest.approx(right1 / 15)
    assert impact.accuracy_second.value == pytest.approx(right2 / 15)
    table = impact.table.set_index("metric")
    assert table.loc["sensitivity_first", "estimate"] == pytest.approx(
        unaided[:, truth == 1].mean())
    assert table.loc["specificity_second", "estimate"] == pytest.approx(
        1 - aided[:, truth == 0].mean())
    assert table.loc["wrong_to_right", "count"] == 4
    pr = impact.per_reader.set_index("reader_id")
    assert pr.loc["R1", "n_right_to_wrong"] == 1 and pr.loc["R2", "n_changed"] == 0


def test_bilinear_bootstrap_equals_explicit_resampling():
    rng = np.random.default_rng(5)
    truth = np.r_[np.zeros(7, int), np.ones(6, int)]
    x = rng.integers(0, 2, size=(4, 13)).astype(float)
    den = rng.integers(0, 2, size=(4, 13)).astype(float) + 1
    wr, wc = _two_way_weights(4, truth, 20, rng=3)
    # Cases are resampled within truth class: class counts are preserved.
    np.testing.assert_array_equal(wc[:, truth == 1].sum(axis=1), 6)
    np.testing.assert_array_equal(wr.sum(axis=1), 4)
    _, reps = _ratio(x, den, wr, wc)
    for b in range(20):
        readers = np.repeat(np.arange(4), wr[b].astype(int))
        cases = np.repeat(np.arange(13), wc[b].astype(int))
        sub_x = x[np.ix_(readers, cases)]
        sub_d = den[np.ix_(readers, cases)]
        assert reps[b] == pytest.approx(sub_x.sum() / sub_d.sum(), rel=1e-12)


def test_intervals_are_reproducible_and_contain_estimate(study_factory):
    study = study_factory(31, n_readers=5, n_neg=20, n_pos=20, decisions=True, times=True)
    a = decision_changes(study, n_resamples=400, rng=7)
    b = decision_changes(study, n_resamples=400, rng=7)
    c = decision_changes(study, n_resamples=400, rng=8)
    assert a.changed.ci == b.changed.ci
    assert a.changed.ci != c.changed.ci
    for e in (a.changed, a.wrong_to_right, a.net_corrected, a.time_difference):
        assert e.ci.low <= e.value <= e.ci.high
        assert e.method == "two-way-bootstrap-percentile"
        assert e.n_clusters == 5


def test_reading_time_is_paired_over_recorded_pairs():
    truth = np.array([0, 1, 0, 1])
    dec = np.tile(truth, (2, 1))
    times = np.stack([np.array([[60.0, 50, np.nan, 40], [30, 30, 30, 30]]),
                      np.array([[45.0, 40, 10, np.nan], [20, 25, 30, 35]])])
    impact = decision_changes(_study(dec, dec, truth, times), n_resamples=100, rng=0)
    # Pairs with both times: R0 c0, R0 c1, R1 c0..c3 (6 pairs).
    first = np.array([60, 50, 30, 30, 30, 30.0])
    second = np.array([45, 40, 20, 25, 30, 35.0])
    assert impact.time_first.value == pytest.approx(first.mean())
    assert impact.time_second.value == pytest.approx(second.mean())
    assert impact.time_difference.value == pytest.approx((second - first).mean())
    assert impact.time_difference.n == 6


def test_no_times_in_both_modalities_warns():
    truth = np.array([0, 1])
    dec = np.tile(truth, (1, 1))
    times = np.stack([np.array([[10.0, np.nan]]), np.array([[np.nan, 12.0]])])
    with pytest.warns(UndefinedMetricWarning, match="reading time"):
        impact = decision_changes(_study(dec, dec, truth, times), n_resamples=20, rng=0)
    assert impact.time_difference is None


def test_misled_by_confidently_wrong_model():
    truth = np.array([0, 0, 0, 1, 1, 1])
    model = np.array([0.05, 0.95, 0.6, 0.97, 0.02, 0.4])  # c1, c4 confidently wrong
    unaided = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 1]])
    aided = np.array([[0, 1, 0, 1, 0, 1], [0, 1, 1, 1, 1, 0], [0, 0, 1, 1, 0, 0]])
    impact = decision_changes(_study(unaided, aided, truth), model_scores=model,
                              n_resamples=50, rng=0)
    misled = impact.misled.set_index("case_id")
    # c1: R0 and R1 right unaided, switched to the model's positive call -> 2 misled of 3.
    # c4: R0 and R2 switched to negative -> 2 misled; R1 stayed right. c2 (model 0.6, wrong
    # but not confident) and c5 (model not confident) do not count.
    assert set(misled.index) == {"c1", "c4"}
    assert misled.loc["c1", "n_misled"] == 2 and misled.loc["c1", "n_exposed"] == 3
    assert misled.loc["c4", "n_misled"] == 2 and misled.loc["c4", "n_exposed"] == 3
    assert impact.misled_case_ids == ("c1", "c4")  # ties broken by model score
    table = impact.table.set_index("metric")
    assert table.loc["misled_rate_confidently_wrong_model", "estimate"] == pytest.approx(4 / 6)
    # The model is right on c0 and c3 only, where every reader was right and stayed right.
    assert table.loc["right_to_wrong_rate_model_right", "count"] == 0
    assert table.loc["right_to_wrong_rate_model_right", "denominator"] == 6


def test_errors(study_factory):
    no_dec = study_factory(1)
    with pytest.raises(ReaderStudyError, match="no decisions"):
        decision_changes(no_dec)
    study = study_factory(1, decisions=True)
    with pytest.raises(ReaderStudyError, match="must differ"):
        decision_changes(study, first="aided", second="aided")
    with pytest.raises(ValueError, match="confident_low"):
        decision_changes(study, model_scores=np.zeros(study.n_cases), confident_high=0.3)
    with pytest.raises(ValueError, match="Did you mean"):
        decision_changes(study, second="aidd")
