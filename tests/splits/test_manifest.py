"""Split manifests: split_cohort modes, hash round trip, tamper detection."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from claimladder import ClaimladderError
from claimladder.cohort import Cohort, ColumnRoles
from claimladder.splits import (
    IntegrityError,
    Split,
    SplitError,
    SplitFileError,
    read_split,
    split_cohort,
    split_sha256,
    write_split,
)


@pytest.fixture
def cohort() -> Cohort:
    rng = np.random.default_rng(0)
    rows = []
    for p in range(120):
        site = ["A", "B", "C"][p % 3]
        first = pd.Timestamp("2019-01-01") + pd.Timedelta(days=int(rng.integers(0, 900)))
        positive = rng.random() < 0.3
        for j in range(int(rng.integers(1, 4))):
            rows.append({"image_id": f"img{p:03d}_{j}", "patient_id": f"pat{p:03d}",
                         "dx": int(positive), "hospital": site,
                         "scanner": ["GE", "Siemens"][(p + j) % 2],
                         "study_date": (first + pd.Timedelta(days=200 * j)).date().isoformat()})
    table = pd.DataFrame(rows)
    roles = ColumnRoles(label="dx", site="hospital", scanner="scanner", acquired_at="study_date")
    return Cohort(table=table, roles=roles, source="/data/cohort.csv")


def check_manifest(split: Split, cohort: Cohort) -> None:
    table = split.table
    assert table["image_id"].tolist() == cohort.image_ids.tolist()  # every case accounted for
    assert table["patient_id"].tolist() == cohort.patient_ids.tolist()
    sided = table[~table["partition"].str.startswith("excluded_")]
    assert sided.groupby("patient_id")["partition"].nunique().max() == 1
    info_counts = {k: v["n_images"] for k, v in split.info["partitions"].items()}
    assert info_counts == table["partition"].value_counts().to_dict()
    json.dumps(split.to_dict(), allow_nan=False)  # JSON-safe


def test_split_by_patient_gives_nested_partitions(cohort):
    split = split_cohort(cohort, calibration_size=0.1, seed=3)
    check_manifest(split, cohort)
    assert split.names == ["development", "calibration", "internal_test"]
    assert split.method == "nested_partitions" and split.seed == 3
    assert split.params["test_size"] == 0.2 and split.params["by"] == "patient"
    shares = split.table["partition"].value_counts(normalize=True)
    assert shares["internal_test"] == pytest.approx(0.2, abs=0.02)
    assert split.info["source"] == "cohort.csv"


def test_split_by_patient_kfold_replays_as_sklearn_cv(cohort):
    split = split_cohort(cohort, n_splits=4, seed=0)
    check_manifest(split, cohort)
    assert split.names == ["fold_1", "fold_2", "fold_3", "fold_4"]
    folds = split.cv(cohort.image_ids)
    assert len(folds) == 4
    tested = np.sort(np.concatenate([test for _, test in folds]))
    assert np.array_equal(tested, np.arange(cohort.n_images))
    # Replaying in another row order selects the same images.
    order = np.random.default_rng(1).permutation(cohort.n_images)
    shuffled = cohort.image_ids[order]
    for (_, a), (_, b) in zip(folds, split.cv(shuffled), strict=True):
        assert set(cohort.image_ids[a]) == set(shuffled[b])


def test_split_by_site_leave_one_out_and_held_out(cohort):
    loso = split_cohort(cohort, by="site")
    check_manifest(loso, cohort)
    assert loso.names == ["fold_A", "fold_B", "fold_C"] and loso.method == "LeaveOneSiteOut"
    held = split_cohort(cohort, by="site", held_out=["C"], test_size=0.25, seed=1)
    check_manifest(held, cohort)
    assert held.names == ["development", "internal_test", "external_C"]
    external = held.table["partition"] == "external_C"
    assert (cohort.table.loc[external.to_numpy(), "hospital"] == "C").all()
    assert held.method == "GroupHoldout+nested_partitions"


def test_split_by_site_refuses_patient_at_two_sites(cohort):
    table = cohort.table.copy()
    last = table.index[-1]
    assert table.loc[last, "hospital"] == "C" and table.loc[0, "hospital"] == "A"
    table.loc[last, "patient_id"] = table.loc[0, "patient_id"]  # one patient at A and C
    moved = Cohort(table=table, roles=cohort.roles)
    with pytest.raises(SplitError, match="more than one site.*Fix"):
        split_cohort(moved, by="site")
    with pytest.raises(SplitError, match="both sides"):
        split_cohort(moved, by="site", held_out=["C"])


def test_split_by_time_reports_gap_and_straddlers(cohort):
    split = split_cohort(cohort, by="time", cutoff="2020-06-01", gap="60D", seed=0)
    check_manifest(split, cohort)
    dates = pd.to_datetime(cohort.table["study_date"])
    parts = split.table["partition"].to_numpy()
    assert (dates[parts == "development"] < "2020-06-01").all()
    assert (dates[parts == "external_temporal"] >= pd.Timestamp("2020-07-31")).all()
    gap = (dates >= "2020-06-01") & (dates < pd.Timestamp("2020-07-31"))
    assert split.info["n_gap_images"] == int(gap.sum()) == int((parts == "excluded_gap").sum())
    # Straddlers (default 'test') lose their pre-cutoff images; count them independently.
    train_side = dates < "2020-06-01"
    test_side = dates >= pd.Timestamp("2020-07-31")
    pid = cohort.table["patient_id"]
    straddling = set(pid[train_side]) & set(pid[test_side])
    assert split.info["n_straddling_patients"] == len(straddling) > 0
    assert split.info["n_straddling_images"] == int((train_side & pid.isin(straddling)).sum())
    assert split.params["cutoff"] == "2020-06-01T00:00:00"
    assert split.params["gap"] == pd.Timedelta("60D").isoformat()


def test_split_by_scanner_hold_out(cohort):
    split = split_cohort(cohort, by="scanner", held_out=["Siemens"], straddlers="drop")
    check_manifest(split, cohort)
    assert set(split.names) <= {"development", "external_Siemens", "excluded_straddling"}
    assert split.method == "ScannerHoldout"


def test_seed_is_recorded_and_reproduces_the_split(cohort):
    first = split_cohort(cohort, calibration_size=0.1)
    assert isinstance(first.seed, int)
    again = split_cohort(cohort, calibration_size=0.1, seed=first.seed)
    assert again.sha256 == first.sha256
    other = split_cohort(cohort, calibration_size=0.1, seed=first.seed + 1)
    assert other.sha256 != first.sha256


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"by": "sight"}, ValueError, "Did you mean 'site'"),
    ({"by": "time"}, ValueError, "'cutoff' parameter.*required"),
    ({"by": "scanner"}, ValueError, "'held_out' parameter.*required"),
    ({"by": "site", "n_splits": 3}, ValueError, "'n_splits'.*does not apply"),
    ({"by": "site", "test_size": 0.2}, ValueError, "'test_size'.*leave-one-site-out"),
    ({"n_splits": 3, "test_size": 0.2}, ValueError, "'test_size'.*k-fold"),
    ({"by": "protocol", "held_out": ["x"]}, SplitError, "needs the 'protocol' column role"),
    ({"strata": "hospitl"}, SplitError, "Did you mean 'hospital'"),
    ({"seed": 1.5}, ValueError, "'seed'.*must be an int"),
], ids=["unknown-by", "no-cutoff", "no-held-out", "kfold-site", "loso-test-size",
        "kfold-test-size", "no-role", "bad-strata", "bad-seed"])
def test_split_cohort_argument_errors(cohort, kwargs, error, match):
    with pytest.raises(error, match=match):
        split_cohort(cohort, **kwargs)


# -- hash, files, tampering -----------------------------------------------------------------

@pytest.mark.skipif(shutil.which("sort") is None or shutil.which("sha256sum") is None,
                    reason="coreutils sort/sha256sum not available")
def test_split_hash_equals_coreutils_sort_sha256sum(cohort, tmp_path):
    split = split_cohort(cohort, seed=0)
    lines = "".join(f"{i}\t{p}\n" for i, p in zip(split.table["image_id"],
                                                  split.table["partition"], strict=True))
    out = subprocess.run("LC_ALL=C sort | sha256sum", input=lines.encode(), shell=True,
                         capture_output=True, check=True)
    assert out.stdout.split()[0].decode() == split.sha256


def test_hash_ignores_row_order_and_patient_ids_but_not_assignment():
    ids, parts = ["a", "b", "c"], ["development", "development", "internal_test"]
    base = split_sha256(ids, parts)
    assert split_sha256(ids[::-1], parts[::-1]) == base
    assert split_sha256(ids, ["development", "internal_test", "internal_test"]) != base
    reference = hashlib.sha256(b"a\tdevelopment\nb\tdevelopment\nc\tinternal_test\n")
    assert base == reference.hexdigest()


def test_write_read_round_trip(cohort, tmp_path):
    split = split_cohort(cohort, by="time", cutoff="2020-06-01", calibration_size=0.1, seed=2)
    path = write_split(split, tmp_path / "sub" / "split.json")
    back = read_split(path)
    assert back.sha256 == split.sha256
    pd.testing.assert_frame_equal(back.table, split.table)
    assert (back.method, back.seed, back.params, back.info, back.created_at) == (
        split.method, split.seed, split.params, split.info, split.created_at)
    assert not list(tmp_path.joinpath("sub").glob("*.tmp"))


def test_read_split_detects_tampering(cohort, tmp_path):
    path = write_split(split_cohort(cohort, seed=0), tmp_path / "split.json")
    data = json.loads(path.read_text())
    rows = data["assignments"]["rows"]
    column = data["assignments"]["columns"].index("partition")
    moved = next(r for r in rows if r[column] == "development")
    patient = moved[data["assignments"]["columns"].index("patient_id")]
    for row in rows:  # move a whole patient so the split stays patient-disjoint
        if row[data["assignments"]["columns"].index("patient_id")] == patient:
            row[column] = "internal_test"
    path.write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="changed after it was written.*Fix") as info:
        read_split(path)
    assert isinstance(info.value, ClaimladderError)


def test_read_split_detects_edited_hash_and_bad_files(cohort, tmp_path):
    path = write_split(split_cohort(cohort, seed=0), tmp_path / "split.json")
    data = json.loads(path.read_text())
    data["sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(IntegrityError):
        read_split(path)
    with pytest.raises(SplitFileError, match="not found"):
        read_split(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SplitFileError, match="not valid JSON"):
        read_split(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "claimladder.seal"}))
    with pytest.raises(SplitFileError, match="not a claimladder split"):
        read_split(tmp_path / "other.json")


def test_split_refuses_patient_in_two_partitions_except_excluded():
    table = pd.DataFrame({"image_id": ["a", "b", "c"], "patient_id": ["p", "p", "q"],
                          "partition": ["development", "internal_test", "development"]})
    with pytest.raises(SplitError, match="1 patient\\(s\\) are in more than one partition"):
        Split(table=table, method="manual")
    table.loc[0, "partition"] = "excluded_straddling"
    split = Split(table=table, method="manual")
    assert split.names == ["development", "internal_test", "excluded_straddling"]
    assert split.counts().to_dict("list") == {
        "partition": ["development", "internal_test", "excluded_straddling"],
        "n_images": [1, 1, 1], "n_patients": [1, 1, 1]}
    masks = split.masks(["c", "zz", "b"])
    assert masks["development"].tolist() == [True, False, False]
    assert masks["internal_test"].tolist() == [False, False, True]
    with pytest.raises(SplitError, match="no fold_\\* partitions"):
        split.cv(["a"])
    with pytest.raises(ValueError, match="Did you mean 'development'"):
        split.image_ids("developement")


def test_split_refuses_duplicate_ids_and_tabs():
    with pytest.raises(SplitError, match="unique"):
        Split(table=pd.DataFrame({"image_id": ["a", "a"], "patient_id": ["p", "q"],
                                  "partition": ["x", "y"]}), method="manual")
    with pytest.raises(SplitError, match="tab or line break"):
        Split(table=pd.DataFrame({"image_id": ["a\tb"], "patient_id": ["p"],
                                  "partition": ["x"]}), method="manual")
