"""Loading and validating reader-study tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claimladder import AlignmentError, ClaimladderError
from claimladder.readers import ReaderStudy, ReaderStudyError, load_readings


def _frame(n_cases=6, readers=("R1", "R2"), modalities=("unaided", "aided")):
    rng = np.random.default_rng(0)
    rows = [(f"c{k}", r, m, float(rng.integers(1, 6)), int(rng.integers(0, 2)),
             float(rng.integers(20, 90)))
            for m in modalities for r in readers for k in range(n_cases)]
    return pd.DataFrame(rows, columns=["case_id", "reader_id", "modality", "score", "decision",
                                       "time_s"])


TRUTH = {f"c{k}": int(k >= 3) for k in range(6)}


def test_round_trip_and_order(tmp_path):
    frame = _frame()
    study = load_readings(frame, TRUTH)
    assert study.modalities == ("unaided", "aided")
    assert study.reader_ids == ("R1", "R2")
    assert study.case_ids == tuple(f"c{k}" for k in range(6))
    assert study.scores.shape == (2, 2, 6) and study.decisions is not None
    back = study.to_frame()
    merged = back.merge(frame, on=["case_id", "reader_id", "modality"], suffixes=("", "_in"))
    assert len(merged) == len(frame)
    np.testing.assert_array_equal(merged["score"], merged["score_in"])
    np.testing.assert_array_equal(merged["decision"], merged["decision_in"])
    np.testing.assert_array_equal(merged["time_s"], merged["time_s_in"])
    # Row order does not matter; files load the same (ids stay strings).
    shuffled = frame.sample(frac=1.0, random_state=1)
    again = load_readings(shuffled, TRUTH).select(study.modalities)
    path = tmp_path / "readings.csv"
    frame.to_csv(path, index=False)
    from_file = load_readings(path, pd.Series(TRUTH))
    for other in (again, from_file):
        order = [other.case_ids.index(c) for c in study.case_ids]
        rorder = [other.reader_ids.index(r) for r in study.reader_ids]
        np.testing.assert_array_equal(other.scores[:, rorder][:, :, order], study.scores)
    assert study.scores.flags.writeable is False


def test_truth_forms(tmp_path):
    frame = _frame()
    table = pd.DataFrame({"case_id": list(TRUTH), "label": list(TRUTH.values())})
    path = tmp_path / "truth.csv"
    table.rename(columns={"label": "truth"}).to_csv(path, index=False)
    with_col = frame.assign(truth=frame["case_id"].map(TRUTH))
    expected = load_readings(frame, TRUTH).truth
    for truth, source in ((table, frame), (path, frame), (None, with_col),
                          ({**TRUTH, "extra": 1}, frame)):
        np.testing.assert_array_equal(load_readings(source, truth).truth, expected)


def test_column_mapping():
    frame = _frame().rename(columns={"reader_id": "rdr", "score": "rating"})
    study = load_readings(frame, TRUTH, columns={"reader_id": "rdr", "score": "rating"})
    assert study.n_readers == 2
    with pytest.raises(ReaderStudyError, match="unknown role"):
        load_readings(frame, TRUTH, columns={"reader": "rdr"})


def test_not_fully_crossed_names_missing_cells():
    frame = _frame()
    drop = (frame.reader_id == "R2") & (frame.modality == "aided") & frame.case_id.isin(
        ["c1", "c4"])
    with pytest.raises(ReaderStudyError) as info:
        load_readings(frame[~drop], TRUTH)
    text = str(info.value)
    assert "not fully crossed" in text and "2 of 24" in text
    assert "reader 'R2' in 'aided': 2" in text and "case 'c1'" in text
    assert "drop the incomplete" in text


@pytest.mark.parametrize("mutate, match", [
    (lambda f: f.drop(columns="score"), "lacks the column"),
    (lambda f: pd.concat([f, f.iloc[:2]]), "repeat a"),
    (lambda f: f.assign(score=f.score.where(f.index != 3)), "not finite"),
    (lambda f: f.assign(score=f.score.astype(object).where(f.index != 3, "high")),
     "not finite"),
    (lambda f: f.assign(reader_id=f.reader_id.where(f.index != 5)), "no reader_id"),
    (lambda f: f.assign(decision=f.decision.where(f.index != 0, 2)), "not 0/1"),
    (lambda f: f.assign(time_s=f.time_s.where(f.index != 0, -1.0)), "time"),
], ids=["missing-column", "duplicate", "nan-score", "text-score", "empty-id", "decision",
        "time"])
def test_table_errors(mutate, match):
    with pytest.raises(ReaderStudyError, match=match):
        load_readings(mutate(_frame()), TRUTH)


def test_truth_errors():
    frame = _frame()
    with pytest.raises(AlignmentError, match="no truth"):
        load_readings(frame, {k: v for k, v in TRUTH.items() if k != "c2"})
    with pytest.raises(ReaderStudyError, match="not 0/1"):
        load_readings(frame, {**TRUTH, "c0": "yes"})
    with pytest.raises(ReaderStudyError, match="both positive and negative"):
        load_readings(frame, dict.fromkeys(TRUTH, 1))
    with pytest.raises(ReaderStudyError, match="no 'truth' column"):
        load_readings(frame)
    with pytest.raises(ReaderStudyError, match="differs between readings"):
        load_readings(frame.assign(truth=(np.arange(len(frame)) // 6) % 2))
    with pytest.raises(ReaderStudyError, match="more than once"):
        load_readings(frame, pd.DataFrame({"case_id": ["c0", "c0"], "truth": [0, 0]}))


def test_missing_times_are_allowed():
    frame = _frame()
    frame.loc[frame.index[:3], "time_s"] = np.nan
    study = load_readings(frame, TRUTH)
    assert np.isnan(study.times).sum() == 3


def test_errors_are_claimladder_value_errors():
    assert issubclass(ReaderStudyError, ClaimladderError)
    assert issubclass(ReaderStudyError, ValueError)


def test_constructor_validation():
    good = {"case_ids": ("a", "b"), "reader_ids": ("R",), "modalities": ("m",),
                "truth": np.array([0, 1]), "scores": np.zeros((1, 1, 2))}
    assert ReaderStudy(**good).n_pos == 1
    for change, match in [({"scores": np.zeros((1, 2, 2))}, "shape"),
                          ({"case_ids": ("a", "a")}, "duplicated"),
                          ({"truth": np.array([0, 2])}, "0 .negative. or 1"),
                          ({"scores": np.array([[[0.0, np.inf]]])}, "finite"),
                          ({"decisions": np.array([[[0, 3]]])}, "decisions"),
                          ({"times": np.array([[[1.0, -2.0]]])}, "times")]:
        with pytest.raises(ReaderStudyError, match=match):
            ReaderStudy(**{**good, **change})
