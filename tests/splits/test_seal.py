"""Sealed partitions: verification detects every kind of change; the access log is append-only."""

from __future__ import annotations

import hashlib
import json
import threading

import pandas as pd
import pytest

from claimladder import ImageReadError
from claimladder.cohort import Cohort, ColumnRoles
from claimladder.provenance import file_sha256
from claimladder.splits import (
    IntegrityError,
    SplitError,
    SplitFileError,
    access_log_path,
    access_summary,
    check_sealed_access,
    count_evaluations,
    log_access,
    read_access_log,
    read_seal,
    seal_partition,
    seal_sha256,
    verify_seal,
    write_seal,
)

SPEC_A = hashlib.sha256(b"study A").hexdigest()
SPEC_B = hashlib.sha256(b"study B").hexdigest()


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for k in range(6):
        (root / f"img{k}.bin").write_bytes(bytes([k]) * (10 + k))
    return root


def make_cohort(table: pd.DataFrame) -> Cohort:
    return Cohort(table=table, roles=ColumnRoles(path="file"))


@pytest.fixture
def table():
    return pd.DataFrame({
        "image_id": [f"i{k}" for k in range(6)],
        "patient_id": ["p0", "p0", "p1", "p2", "p3", "p3"],
        "label": [1, 0, 1, 0, 0, 1],
        "file": [f"img{k}.bin" for k in range(6)],
        "split": ["train", "train", "test", "test", "test", "test"],
    })


def test_seal_counts_and_independent_hash(table, images):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="internal_test",
                          images_root=images)
    assert (seal.n_images, seal.n_patients, seal.n_pos) == (4, 3, 2)
    assert seal.with_files and seal.name == "internal_test"
    # Recompute the content hash from first principles.
    lines = []
    for k in range(2, 6):
        label_digest = hashlib.sha256(f"i{k}\t{table.label[k]}".encode()).hexdigest()
        file_digest = hashlib.sha256((images / f"img{k}.bin").read_bytes()).hexdigest()
        lines.append(f"i{k}\t{label_digest}\t{file_digest}\n")
    assert seal.sha256 == hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    assert seal.records["file_sha256"].tolist() == [
        file_sha256(images / f"img{k}.bin") for k in range(2, 6)]
    assert "p1" not in json.dumps(seal.to_dict())  # no patient id is stored


@pytest.mark.parametrize("selector", ["rule", "mask", "ids", "series"])
def test_unchanged_partition_verifies_whatever_the_selector(table, images, selector):
    cohort = make_cohort(table)
    select = {"rule": "split == 'test'", "mask": (table["split"] == "test").to_numpy(),
              "ids": ["i2", "i3", "i4", "i5"], "series": table["split"] == "test"}[selector]
    seal = seal_partition(cohort, select, name="t", images_root=images)
    check = verify_seal(seal, cohort, select, images_root=images)
    assert check.matches and check.files_checked
    assert (check.n_added, check.n_removed, check.n_labels_changed, check.n_files_changed) == \
        (0, 0, 0, 0)
    assert check.to_finding().status.value == "pass"


def test_integer_and_float_labels_seal_alike(table):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="t")
    as_float = table.assign(label=table["label"].astype(float))
    assert verify_seal(seal, make_cohort(as_float), "split == 'test'").matches


def test_verify_detects_added_row(table, images):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="t", images_root=images)
    table.loc[1, "split"] = "test"
    check = verify_seal(seal, make_cohort(table), "split == 'test'", images_root=images)
    assert not check.matches and check.n_added == 1 and check.n_removed == 0
    assert check.examples == ("i1",)
    assert "1 image(s) added" in check.message


def test_verify_detects_removed_row_including_rows_gone_from_the_cohort(table, images):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="t", images_root=images)
    smaller = table.drop(index=3).reset_index(drop=True)
    check = verify_seal(seal, make_cohort(smaller), seal.image_ids, images_root=images)
    assert not check.matches and (check.n_removed, check.n_added) == (1, 0)
    assert check.n_sealed == 4 and check.n_observed == 3


def test_verify_detects_changed_label(table):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="t")
    table.loc[4, "label"] = 1
    check = verify_seal(seal, make_cohort(table), "split == 'test'")
    assert not check.matches
    assert (check.n_labels_changed, check.n_added, check.n_removed) == (1, 0, 0)
    assert not check.files_checked
    finding = check.to_finding()
    assert finding.status.value == "fail" and finding.check == "provenance.sealed_test_set"
    assert finding.examples == ("i4",)


def test_verify_detects_changed_and_missing_image_files(table, images):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="t", images_root=images)
    (images / "img2.bin").write_bytes(b"re-exported with another window")
    (images / "img5.bin").unlink()
    check = verify_seal(seal, make_cohort(table), "split == 'test'", images_root=images)
    assert not check.matches
    assert (check.n_files_changed, check.n_files_missing, check.n_labels_changed) == (1, 1, 0)
    assert "1 image file(s) changed, 1 image file(s) missing" in check.message


def test_verify_needs_images_root_when_files_were_sealed(table, images):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="t", images_root=images)
    with pytest.raises(ValueError, match="pass images_root"):
        verify_seal(seal, make_cohort(table), "split == 'test'")


def test_seal_errors(table, images):
    cohort = make_cohort(table)
    with pytest.raises(SplitError, match="1 image id\\(s\\) are not in"):
        seal_partition(cohort, ["i2", "nope"], name="t")
    with pytest.raises(SplitError, match="selects no row"):
        seal_partition(cohort, "split == 'validation'", name="t")
    (images / "img3.bin").unlink()
    with pytest.raises(ImageReadError, match="'i3'.*does not exist.*Fix"):
        seal_partition(cohort, "split == 'test'", name="t", images_root=images)
    no_paths = Cohort(table=table, roles=ColumnRoles())
    with pytest.raises(SplitError, match="no 'path' column"):
        seal_partition(no_paths, "split == 'test'", name="t", images_root=images)


def test_seal_file_round_trip_overwrite_and_tampering(table, images, tmp_path):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="t", images_root=images)
    path = write_seal(seal, tmp_path / "t.seal.json")
    back = read_seal(path)
    assert back.sha256 == seal.sha256 and back.n_patients == 3 and back.with_files
    assert verify_seal(back, make_cohort(table), "split == 'test'", images_root=images).matches
    with pytest.raises(SplitFileError, match="already exists"):
        write_seal(seal, path)
    write_seal(seal, path, overwrite=True)
    data = json.loads(path.read_text())
    data["records"]["rows"][0][1] = hashlib.sha256(b"i2\t0").hexdigest()  # relabel in the file
    path.write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="seal file was edited"):
        read_seal(path)
    assert seal_sha256(seal.records) == seal.sha256


# -- access log -----------------------------------------------------------------------------

@pytest.fixture
def seal_path(table, tmp_path):
    seal = seal_partition(make_cohort(table), "split == 'test'", name="internal_test")
    return write_seal(seal, tmp_path / "internal_test.seal.json")


def test_access_log_appends_and_counts(seal_path):
    assert count_evaluations(seal_path) == 0
    assert list(read_access_log(seal_path).columns) == [
        "entry", "when", "seal", "seal_sha256", "spec_sha256", "checks"]
    log_access(seal_path, spec_sha256=SPEC_A, checks=["internal.roc_auc"],
               when="2024-05-01T10:00:00+00:00")
    log_access(seal_path, spec_sha256=SPEC_A, checks=["internal.roc_auc", "calibration.ece"])
    log_access(seal_path, spec_sha256=SPEC_B.upper(), checks=[])
    log = read_access_log(seal_path)
    assert count_evaluations(seal_path) == 3 == len(log)
    assert log["entry"].tolist() == [1, 2, 3]
    assert log["checks"].tolist() == ["internal.roc_auc", "internal.roc_auc,calibration.ece", ""]
    assert log["spec_sha256"].tolist() == [SPEC_A, SPEC_A, SPEC_B]
    assert log["when"].iloc[0] == "2024-05-01T10:00:00+00:00"
    assert access_log_path(seal_path).name == "internal_test.seal.access.jsonl"
    lines = access_log_path(seal_path).read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["seal"] == "internal_test" for line in lines)
    summary = access_summary([seal_path])
    assert summary.iloc[0][["seal", "n_evaluations", "n_specs"]].tolist() == [
        "internal_test", 3, 2]
    assert summary.iloc[0]["first_access"] == "2024-05-01T10:00:00+00:00"


def test_access_summary_orders_times_as_instants(seal_path):
    # 09:00 at -05:00 is 14:00 UTC: later than 12:00 UTC although it sorts first as text.
    log_access(seal_path, spec_sha256=SPEC_A, checks=["a"], when="2024-05-01T09:00:00-05:00")
    log_access(seal_path, spec_sha256=SPEC_A, checks=["b"], when="2024-05-01T12:00:00+00:00")
    row = access_summary([seal_path]).iloc[0]
    assert row["first_access"] == "2024-05-01T12:00:00+00:00"
    assert row["last_access"] == "2024-05-01T09:00:00-05:00"


def test_sealed_access_finding_warns_on_several_specs(seal_path):
    log_access(seal_path, spec_sha256=SPEC_A, checks=["internal.roc_auc"])
    assert check_sealed_access(seal_path).status.value == "pass"
    log_access(seal_path, spec_sha256=SPEC_B, checks=["internal.roc_auc"])
    finding = check_sealed_access(seal_path)
    assert finding.status.value == "warn" and "2 different study specs" in finding.message
    assert check_sealed_access(seal_path, max_specs=2).status.value == "pass"


def test_access_log_detects_deleted_and_edited_entries(seal_path):
    for k in range(3):
        log_access(seal_path, spec_sha256=SPEC_A, checks=[f"check.{k}"])
    log = access_log_path(seal_path)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + lines[2])
    with pytest.raises(IntegrityError, match="line 2 does not follow line 1"):
        read_access_log(seal_path)
    edited = json.loads(lines[0])
    edited["spec_sha256"] = SPEC_B
    log.write_text(json.dumps(edited, sort_keys=True, separators=(",", ":")) + "\n"
                   + "".join(lines[1:]))
    with pytest.raises(IntegrityError, match="line 2"):
        count_evaluations(seal_path)


def test_access_log_refuses_to_append_after_a_torn_line(seal_path):
    log_access(seal_path, spec_sha256=SPEC_A, checks=["a"])
    with access_log_path(seal_path).open("a") as handle:
        handle.write('{"seal": "internal_te')
    with pytest.raises(IntegrityError, match="last line is incomplete"):
        log_access(seal_path, spec_sha256=SPEC_A, checks=["b"])


def test_concurrent_appends_keep_every_line_and_the_chain(seal_path):
    def worker(k: int) -> None:
        for j in range(10):
            log_access(seal_path, spec_sha256=SPEC_A, checks=[f"w{k}.{j}"])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = read_access_log(seal_path)  # raises if the chain were broken
    assert len(log) == 60
    assert sorted(log["checks"]) == sorted(f"w{k}.{j}" for k in range(6) for j in range(10))


def test_log_access_validates_arguments_and_the_seal(seal_path, tmp_path):
    with pytest.raises(ValueError, match="SHA-256 hex digest"):
        log_access(seal_path, spec_sha256="study.toml", checks=["a"])
    with pytest.raises(ValueError, match="list of check ids"):
        log_access(seal_path, spec_sha256=SPEC_A, checks="internal.roc_auc")
    with pytest.raises(SplitFileError, match="not found"):
        log_access(tmp_path / "none.seal.json", spec_sha256=SPEC_A, checks=["a"])
    assert not access_log_path(tmp_path / "none.seal.json").exists()
