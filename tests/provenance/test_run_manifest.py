"""Input hashes in the provenance manifest, image files included."""

from __future__ import annotations

import hashlib

import pytest

from claimladder.provenance import build_manifest, combined_digest, file_sha256, hash_files


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    contents = {"a/1.dcm": b"first" * 1000, "a/2.dcm": b"", "3.png": bytes(range(256)) * 5000}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return root, contents


def test_hash_files_matches_hashlib_in_order(files):
    root, contents = files
    names = ["3.png", "a/1.dcm", "a/2.dcm", "3.png"]  # a repeated path is hashed once
    for n_threads in (1, 4):
        records = hash_files([root / n for n in names], n_threads=n_threads)
        assert [r["path"] for r in records] == [str(root / n) for n in names]
        for name, record in zip(names, records):
            assert record["sha256"] == hashlib.sha256(contents[name]).hexdigest()
            assert record["bytes"] == len(contents[name])


def test_unreadable_files_are_recorded_not_raised(files):
    root, _ = files
    (record,) = hash_files([root / "missing.dcm"])
    assert record["sha256"] is None and record["error"] == "FileNotFoundError"


def test_combined_digest_is_sha256sum_of_relative_paths(files, tmp_path):
    root, contents = files
    records = hash_files(sorted(root.rglob("*.*")))
    lines = sorted(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in contents.items())
    expected = hashlib.sha256("".join(lines).encode()).hexdigest()
    assert combined_digest(records, root=root) == expected
    assert combined_digest(list(reversed(records)), root=root) == expected  # order-free
    # Moving the folder keeps the digest; changing one byte changes it.
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    assert combined_digest(hash_files(sorted(moved.rglob("*.*"))), root=moved) == expected
    (moved / "a/2.dcm").write_bytes(b"x")
    assert combined_digest(hash_files(sorted(moved.rglob("*.*"))), root=moved) != expected


def test_manifest_has_one_images_entry_without_file_names(files, tmp_path):
    root, contents = files
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("image_id,path\n")
    paths = [root / n for n in contents] + [root / "gone.dcm"]
    manifest = build_manifest({"cohort": cohort, "predictions": None}, seed=3, images=paths,
                              images_root=root)
    images = manifest["inputs"]["images"]
    assert images["count"] == 4 and images["unreadable"] == 1
    assert images["bytes"] == sum(len(d) for d in contents.values())
    assert images["sha256"] == combined_digest(hash_files(paths), root=root)
    assert images["file"] == "4 image files"  # no folder name: evidence is location-free
    assert "1.dcm" not in str(manifest)  # names can hold identifiers: not listed
    assert manifest["inputs"]["cohort"]["sha256"] == file_sha256(cohort)
    assert "predictions" not in manifest["inputs"] and manifest["seed"] == 3
