"""Splitters: patients never straddle, folds cover rows once, stratification, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score

from claimladder.cohort import Cohort, ColumnRoles
from claimladder.splits import (
    GroupHoldout,
    LeaveOneSiteOut,
    PatientHoldout,
    PatientKFold,
    ScannerHoldout,
    SplitError,
    TemporalSplit,
    nested_partitions,
)

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
START = pd.Timestamp("2020-01-01")
CUTOFF = pd.Timestamp("2021-01-01")


@st.composite
def cohorts(draw, min_patients: int = 1, max_patients: int = 25) -> pd.DataFrame:
    """Random patients with 1-5 images, random labels, one site each, per-image scanner/date."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=min_patients, max_size=max_patients))
    n, total = len(sizes), sum(sizes)

    def per(n_values, values):
        return draw(st.lists(values, min_size=n_values, max_size=n_values))

    patient = np.repeat(np.arange(n), sizes)
    frame = pd.DataFrame({
        "image_id": [f"i{k}" for k in range(total)],
        "patient_id": [f"p{p}" for p in patient],
        "label": per(total, st.integers(0, 1)),
        "site": np.array(per(n, st.sampled_from(["A", "B", "C"])), dtype=object)[patient],
        "scanner": per(total, st.sampled_from(["GE", "Siemens", "Philips"])),
        "acquired_at": START + pd.to_timedelta(per(total, st.integers(0, 730)), unit="D"),
    })
    # Rows of a patient need not be contiguous: shuffle them.
    order = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(total)
    return frame.iloc[order].reset_index(drop=True)


def realistic_cohort(n_patients: int = 300, seed: int = 0, prevalence: float = 0.3):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_patients)
    patients = np.repeat([f"p{i}" for i in range(n_patients)], sizes)
    y = np.repeat(rng.random(n_patients) < prevalence, sizes).astype(int)
    flip = rng.random(len(y)) < 0.1
    y[flip] = 1 - y[flip]
    sites = np.repeat(rng.choice(["A", "B", "C"], n_patients, p=[0.5, 0.3, 0.2]), sizes)
    return patients, y, sites


def assert_patient_disjoint(patients, train, test):
    assert not set(patients[train]) & set(patients[test])


# -- property tests -----------------------------------------------------------------------

@SETTINGS
@given(frame=cohorts(min_patients=2), data=st.data())
def test_kfold_is_patient_disjoint_and_covers_every_row_once(frame, data):
    patients, y = frame["patient_id"].to_numpy(), frame["label"].to_numpy()
    k = data.draw(st.integers(2, min(5, frame["patient_id"].nunique())), label="n_splits")
    stratify = data.draw(st.booleans(), label="stratify")
    folds = list(PatientKFold(k, stratify=stratify, rng=data.draw(st.integers(0, 100)))
                 .split(frame, y, groups=patients))
    assert len(folds) == k
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(frame)))  # every row exactly once
    for train, test in folds:
        assert len(test) > 0
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(frame)))
        assert_patient_disjoint(patients, train, test)


@SETTINGS
@given(frame=cohorts(min_patients=2), data=st.data())
def test_kfold_with_second_stratum_stays_patient_disjoint(frame, data):
    patients = frame["patient_id"].to_numpy()
    k = data.draw(st.integers(2, min(4, frame["patient_id"].nunique())))
    for train, test in PatientKFold(k, rng=1).split(frame, frame["label"], groups=patients,
                                                    strata=frame["scanner"]):
        assert_patient_disjoint(patients, train, test)


@SETTINGS
@given(frame=cohorts(min_patients=2), test_size=st.floats(0.1, 0.5), seed=st.integers(0, 50))
def test_holdout_is_patient_disjoint_and_complete(frame, test_size, seed):
    patients = frame["patient_id"].to_numpy()
    try:
        splits = list(PatientHoldout(test_size, rng=seed).split(frame, frame["label"], patients))
    except SplitError as error:  # tiny cohorts: the greedy fill may leave the test part empty
        assert "received no patient" in str(error)
        return
    (train, test), = splits
    assert len(train) and len(test)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(frame)))
    assert_patient_disjoint(patients, train, test)


@SETTINGS
@given(frame=cohorts(min_patients=3), seed=st.integers(0, 50))
def test_nested_partitions_keep_each_patient_in_one_partition(frame, seed):
    try:
        parts = nested_partitions(frame["patient_id"], frame["label"], calibration_size=0.15,
                                  test_size=0.2, rng=seed)
    except SplitError as error:
        assert "received no patient" in str(error)
        return
    assert len(parts) == len(frame) and parts.notna().all()
    assert set(parts) == {"development", "calibration", "internal_test"}
    assert (frame.groupby(parts.to_numpy())["patient_id"].apply(set)
            .pipe(lambda s: sum(len(v) for v in s)) == frame["patient_id"].nunique())


@SETTINGS
@given(frame=cohorts(min_patients=1))
def test_leave_one_site_out_yields_one_disjoint_fold_per_site(frame):
    sites, patients = frame["site"].to_numpy(), frame["patient_id"].to_numpy()
    splitter = LeaveOneSiteOut()
    if len(set(sites)) < 2:
        with pytest.raises(SplitError, match="only one site"):
            splitter.split(frame, groups=sites, patients=patients)
        return
    folds = list(splitter.split(frame, groups=sites, patients=patients))
    assert len(folds) == len(set(sites)) == splitter.get_n_splits(groups=sites)
    for (train, test), site in zip(folds, sorted(set(sites)), strict=True):
        assert set(sites[test]) == {site} and site not in set(sites[train])
        assert len(train) + len(test) == len(frame)
        assert_patient_disjoint(patients, train, test)


def reference_sides(patients, side, policy):
    """Slow, obvious straddler resolution used as the oracle."""
    side = list(side)
    straddling = {p for p in set(patients)
                  if any(s == "train" for q, s in zip(patients, side, strict=True) if q == p)
                  and any(s == "test" for q, s in zip(patients, side, strict=True) if q == p)}
    if policy == "raise":
        return None if straddling else side
    drop = {"test": {"train"}, "train": {"test"}, "drop": {"train", "test"}}[policy]
    return ["excluded_straddling" if p in straddling and s in drop else s
            for p, s in zip(patients, side, strict=True)]


@SETTINGS
@given(frame=cohorts(min_patients=1), gap_days=st.integers(0, 60),
       policy=st.sampled_from(["test", "train", "drop", "raise"]))
def test_temporal_split_matches_reference_and_respects_cutoff_and_gap(frame, gap_days, policy):
    patients, times = frame["patient_id"].to_numpy(), frame["acquired_at"]
    gap = pd.Timedelta(days=gap_days)
    raw = ["train" if t < CUTOFF else "test" if t >= CUTOFF + gap else "excluded_gap"
           for t in times]
    expected = reference_sides(list(patients), raw, policy)
    splitter = TemporalSplit(CUTOFF.date().isoformat(), gap=f"{gap_days}D", straddlers=policy)
    if expected is None or "train" not in expected or "test" not in expected:
        with pytest.raises(SplitError):
            splitter.assign(frame, groups=patients, times=times)
        return
    side = splitter.assign(frame, groups=patients, times=times.astype(str))
    assert side.tolist() == expected
    (train, test), = splitter.split(frame, groups=patients, times=times)
    assert (times.iloc[train] < CUTOFF).all()
    assert (times.iloc[test] >= CUTOFF + gap).all()
    assert_patient_disjoint(patients, train, test)
    if policy == "test":  # the test side is the whole test period
        assert len(test) == int((times >= CUTOFF + gap).sum())


@SETTINGS
@given(frame=cohorts(min_patients=1), policy=st.sampled_from(["test", "train", "drop", "raise"]),
       held=st.sets(st.sampled_from(["GE", "Siemens", "Philips"]), min_size=1, max_size=2))
def test_scanner_holdout_matches_reference(frame, policy, held):
    patients, scanners = frame["patient_id"].to_numpy(), frame["scanner"].to_numpy()
    splitter = ScannerHoldout(held_out=sorted(held), straddlers=policy)
    raw = ["test" if s in held else "train" for s in scanners]
    expected = reference_sides(list(patients), raw, policy)
    missing = held - set(scanners)
    if missing or expected is None or "train" not in expected or "test" not in expected:
        with pytest.raises(SplitError):
            splitter.assign(frame, groups=scanners, patients=patients)
        return
    assert splitter.assign(frame, groups=scanners, patients=patients).tolist() == expected
    (train, test), = splitter.split(frame, groups=scanners, patients=patients)
    assert set(scanners[test]) <= held and not set(scanners[train]) & held
    assert_patient_disjoint(patients, train, test)


# -- stratification ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kfold_prevalence_and_size_stay_near_overall(seed):
    patients, y, _ = realistic_cohort(seed=seed)
    for _, test in PatientKFold(5, rng=seed).split(None, y, groups=patients):
        assert abs(y[test].mean() - y.mean()) < 0.02
        assert abs(len(test) / len(y) - 0.2) < 0.01


def test_kfold_with_site_stratum_balances_sites_and_labels():
    patients, y, sites = realistic_cohort(n_patients=400, seed=5)
    for _, test in PatientKFold(4, rng=0).split(None, y, groups=patients, strata=sites):
        for site in "ABC":
            assert abs((sites[test] == site).mean() - (sites == site).mean()) < 0.03
        assert abs(y[test].mean() - y.mean()) < 0.02


def test_unstratified_kfold_balances_fold_sizes():
    patients, _, _ = realistic_cohort(seed=7)
    sizes = [len(t) for _, t in PatientKFold(5, stratify=False, rng=0).split(
        None, groups=patients)]
    assert max(sizes) - min(sizes) <= 5


@pytest.mark.parametrize("seed", [0, 1])
def test_holdout_and_nested_shares_and_prevalence(seed):
    patients, y, _ = realistic_cohort(seed=seed)
    _, test = next(PatientHoldout(0.25, rng=seed).split(None, y, groups=patients))
    assert abs(len(test) / len(y) - 0.25) < 0.01
    assert abs(y[test].mean() - y.mean()) < 0.02
    parts = nested_partitions(patients, y, calibration_size=0.1, test_size=0.2, rng=seed)
    shares = parts.value_counts(normalize=True)
    assert shares["calibration"] == pytest.approx(0.1, abs=0.01)
    assert shares["internal_test"] == pytest.approx(0.2, abs=0.01)
    for name in ("development", "calibration", "internal_test"):
        assert abs(y[parts.to_numpy() == name].mean() - y.mean()) < 0.03


# -- determinism ---------------------------------------------------------------------------

def folds_of(splitter, patients, y):
    return tuple(tuple(test.tolist()) for _, test in splitter.split(None, y, groups=patients))


def test_same_rng_same_folds_and_different_rng_different_folds():
    patients, y, _ = realistic_cohort(n_patients=60, seed=11)
    for seed in (0, 1, 2):
        assert folds_of(PatientKFold(5, rng=seed), patients, y) == \
            folds_of(PatientKFold(5, rng=seed), patients, y)
        assert folds_of(PatientKFold(5, rng=np.random.default_rng(seed)), patients, y) == \
            folds_of(PatientKFold(5, rng=np.random.default_rng(seed)), patients, y)
    by_seed = [folds_of(PatientKFold(5, rng=seed), patients, y) for seed in range(8)]
    for a, b in itertools.combinations(by_seed, 2):
        assert a != b
    holdouts = [next(PatientHoldout(0.2, rng=s).split(None, y, patients))[1].tolist()
                for s in range(8)]
    assert len({tuple(h) for h in holdouts}) == 8


def test_int_rng_repeats_across_calls_generator_advances():
    patients, y, _ = realistic_cohort(n_patients=60, seed=3)
    fixed = PatientKFold(5, rng=4)
    assert folds_of(fixed, patients, y) == folds_of(fixed, patients, y)
    moving = PatientKFold(5, rng=np.random.default_rng(4))
    assert folds_of(moving, patients, y) != folds_of(moving, patients, y)


def test_folds_do_not_depend_on_row_order_of_patients_given_same_rows():
    patients, y, _ = realistic_cohort(n_patients=80, seed=2)
    order = np.random.default_rng(0).permutation(len(y))
    a = PatientKFold(5, rng=0).fold_of(None, y, patients)
    b = PatientKFold(5, rng=0).fold_of(None, y[order], patients[order])
    # Same patients land together in the same fold whatever the row order.
    assert dict(zip(patients, a, strict=True)) == dict(zip(patients[order], b, strict=True))


# -- scikit-learn compatibility and errors --------------------------------------------------

def test_works_as_cv_in_scikit_learn():
    patients, y, _ = realistic_cohort(n_patients=120, seed=0)
    X = np.random.default_rng(0).normal(size=(len(y), 3))
    scores = cross_val_score(LogisticRegression(), X, y, groups=patients,
                             cv=PatientKFold(4, rng=0))
    assert len(scores) == 4
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=PatientKFold(3, rng=0))
    search.fit(X, y, groups=patients)
    assert search.n_splits_ == 3
    assert repr(PatientKFold(3, rng=0)) == "PatientKFold(n_splits=3, stratify=True, rng=0)"


def test_leave_one_site_out_refuses_patient_at_two_sites():
    with pytest.raises(SplitError, match=r"1 patient\(s\) have images at more than one site"
                                         r".*'p1'.*Fix"):
        LeaveOneSiteOut().split(None, groups=["A", "B", "B"], patients=["p1", "p1", "p2"])
    with pytest.raises(ValueError, match="'patients'.*patient ids"):
        LeaveOneSiteOut().split(None, groups=["A", "B"])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: PatientKFold(1), "'n_splits' parameter of PatientKFold must be an int >= 2"),
    (lambda: PatientKFold(5).split(None, [0, 1, 0], ["a", "b", "c"]), "n_splits=5 exceeds"),
    (lambda: PatientKFold(2).split(None, None, ["a", "b"]),
     r"stratify \(stratify=True\) but got y=None"),
    (lambda: PatientKFold(2).split([1, 2], [0, 1]), "'groups'.*Got None"),
    (lambda: PatientKFold(2).split(None, [0, 1, 1], ["a", None, "b"]), "1 row\\(s\\) have no"),
    (lambda: PatientKFold(2).split([1, 2, 3], [0, 1], ["a", "b"]), "one value per row \\(3\\)"),
    (lambda: PatientHoldout(1.5), "'test_size'.*\\(0, 1\\)"),
    (lambda: GroupHoldout(["Siemen"]).split(None, groups=["Siemens", "GE"],
                                            patients=["a", "b"]), "Did you mean 'Siemens'"),
    (lambda: GroupHoldout(["GE"], straddlers="tset"), "Did you mean 'test'"),
    (lambda: TemporalSplit("not a date"), "'cutoff'.*ISO 8601"),
    (lambda: TemporalSplit("2021-01-01", gap="-3D"), "non-negative"),
    (lambda: TemporalSplit("2021-01-01").split(None, groups=["a", "b"],
                                               times=["2020-01-01", "garbage"]),
     "1 row\\(s\\) have a missing or unparseable"),
    (lambda: TemporalSplit("2030-01-01").split(None, groups=["a", "b"],
                                               times=["2020-01-01", "2021-01-01"]),
     "the test side is empty.*choose a cutoff between"),
    (lambda: nested_partitions(["a", "b"], [0, 1], calibration_size=0.5, test_size=0.5),
     "sum to less than 1"),
], ids=["n_splits", "too-few-patients", "no-y", "no-groups", "missing-id", "length",
        "test-size", "unknown-held-out", "bad-policy", "bad-cutoff", "negative-gap",
        "bad-time", "empty-test", "sizes-sum"])
def test_errors_name_the_parameter_and_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_temporal_split_handles_time_zones_and_reports_straddlers():
    times = pd.Series(["2020-06-01T00:00:00+02:00", "2021-06-01T00:00:00+02:00",
                       "2021-07-01T00:00:00+02:00", "2020-12-31T23:30:00+00:00"])
    patients = ["p1", "p1", "p2", "p3"]
    side = TemporalSplit("2021-01-01").assign(None, groups=patients, times=times)
    # Mixed offsets are compared in UTC, where the naive cutoff is read: 23:30 UTC is before.
    assert side.tolist() == ["excluded_straddling", "test", "test", "train"]
    side = TemporalSplit("2021-01-01T00:00:00+00:00", straddlers="train").assign(
        None, groups=patients, times=times)
    assert side.tolist() == ["train", "excluded_straddling", "test", "train"]
    same_zone = TemporalSplit("2021-01-01").assign(
        None, groups=["a", "b"], times=["2020-12-31T23:30:00-05:00", "2021-01-01T00:30:00-05:00"])
    assert same_zone.tolist() == ["train", "test"]  # naive cutoff read at -05:00
    with pytest.raises(SplitError, match="some acquisition times carry a time zone"):
        TemporalSplit("2021-01-01").assign(None, groups=["a", "b"],
                                           times=["2020-06-01", "2021-06-01T00:00:00+02:00"])


def test_nested_partitions_from_cohort_uses_roles_and_index():
    patients, y, sites = realistic_cohort(n_patients=100, seed=1)
    table = pd.DataFrame({"image_id": [f"i{k}" for k in range(len(y))], "patient_id": patients,
                          "label": y, "hospital": sites})
    cohort = Cohort(table=table, roles=ColumnRoles(site="hospital"))
    parts = nested_partitions(cohort, strata="site", rng=0)
    assert parts.index.equals(table.index) and parts.name == "partition"
    same = nested_partitions(patients, y, strata=sites, rng=0)
    assert parts.tolist() == same.tolist()
    no_calibration = nested_partitions(cohort, calibration_size=0, rng=0)
    assert set(no_calibration) == {"development", "internal_test"}
