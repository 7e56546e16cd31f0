"""The chunked cohort audit: the in-memory results, with memory bounded on 1,000,000 rows."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from claimladder.ladder import load_study, stream_cohort_audit, study_partitions

STUDY = """
[claim]
statement = "The model detects X"

[data]
cohort = "cohort.csv"

[data.columns]
image_id = "image_id"
patient_id = "patient_id"
label = "label"
site = "site"

[cohort]
include = ["age >= 18"]
exclude = ["quality == 'poor'"]

[partitions]
development = "site in ['A', 'B'] and split == 'train'"
calibration = "site in ['A', 'B'] and split == 'calib'"
internal_test = "site in ['A', 'B'] and split == 'test'"

[partitions.external]
site_C = "site == 'C'"
"""


def _write_study(folder: Path, n: int, *, seed: int = 0, patients_per_image: float = 0.5) -> Path:
    rng = np.random.default_rng(seed)
    n_patients = max(int(n * patients_per_image), 1)
    table = pd.DataFrame({
        "image_id": np.char.add("img", np.arange(n).astype(str)),
        "patient_id": np.char.add("p", rng.integers(0, n_patients, n).astype(str)),
        "label": rng.integers(0, 2, n).astype(float),
        "site": rng.choice(np.array(["A", "B", "C"]), n),
        "split": rng.choice(np.array(["train", "calib", "test"]), n, p=[0.6, 0.1, 0.3]),
        "age": rng.integers(5, 95, n).astype(float),
        "quality": rng.choice(np.array(["good", "poor"]), n, p=[0.9, 0.1]),
    })
    table.loc[rng.choice(n, max(n // 100, 1), replace=False), "age"] = np.nan
    table.loc[rng.choice(n, max(n // 200, 1), replace=False), "label"] = np.nan
    table.to_csv(folder / "cohort.csv", index=False)
    (folder / "study.toml").write_text(STUDY)
    return folder / "study.toml"


def _in_memory(study_path: Path) -> dict:
    study = load_study(study_path)
    _, flow, parts = study_partitions(study)
    cohort = flow.included
    patients = {name: set(cohort.patient_ids[mask]) for name, mask in parts.masks.items()}
    fit, test = ("development", "calibration"), ("internal_test", "site_C")
    return {
        "flow": flow.steps["n_images"].tolist(),
        "partitions": {name: (int(mask.sum()), len(patients[name]),
                              int(np.nansum(cohort.y_true[mask])))
                       for name, mask in parts.masks.items()},
        "overlap": {(a, b): len(patients[a] & patients[b]) for a in fit for b in test},
    }


@pytest.mark.parametrize("chunk_rows", [7, 97, 100_000], ids=["7-rows", "97-rows", "one-chunk"])
def test_streamed_audit_equals_the_in_memory_path(tmp_path, chunk_rows):
    path = _write_study(tmp_path, 600)
    expected = _in_memory(path)
    audit = stream_cohort_audit(load_study(path), chunk_rows=chunk_rows)
    assert audit.n_rows == 600
    assert audit.flow["n_images"].tolist() == expected["flow"]
    got = {r.partition: (r.n_images, r.n_patients, r.n_pos)
           for r in audit.partitions.itertuples()}
    assert got == expected["partitions"]
    overlap = {(r.partition_a, r.partition_b): r.n_shared_patients
               for r in audit.overlap.itertuples()}
    assert overlap == expected["overlap"]
    assert sum(overlap.values()) > 0  # the generator shares patients: the check can fail
    finding = audit.overlap_finding()
    assert finding.status.value == "fail" and len(finding.examples) == 10
    assert audit.n_duplicate_image_ids == 0


def test_disjoint_patients_pass_and_duplicated_ids_are_counted(tmp_path):
    path = _write_study(tmp_path, 300)
    table = pd.read_csv(tmp_path / "cohort.csv", dtype={"image_id": str, "patient_id": str})
    table["patient_id"] = table["image_id"].str.replace("img", "q")  # one image per patient
    table.loc[3, "image_id"] = table.loc[4, "image_id"]
    table.to_csv(tmp_path / "cohort.csv", index=False)
    audit = stream_cohort_audit(load_study(path), chunk_rows=50)
    assert audit.overlap["n_shared_patients"].sum() == 0
    assert audit.overlap_finding().status.value == "pass"
    assert audit.n_duplicate_image_ids == 1


@pytest.mark.slow
def test_a_million_row_cohort_streams_in_bounded_memory(tmp_path):
    """Peak Python allocations while auditing 1,000,000 rows stay under 64 MiB.

    The bound: one chunk of 50,000 parsed rows (7 short columns, ~25 MB as
    pandas objects), 8 bytes per row of image-id hashes (8 MB) and 8 bytes
    per distinct patient per partition (< 8 MB).
    """
    path = _write_study(tmp_path, 1_000_000, patients_per_image=0.4)
    study = load_study(path)
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        audit = stream_cohort_audit(study, chunk_rows=50_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audit.n_rows == 1_000_000
    assert audit.partitions["n_images"].sum() > 500_000
    assert audit.overlap["n_shared_patients"].sum() > 0
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    print(f"1M rows: peak {peak / 2**20:.1f} MiB, {time.perf_counter() - started:.1f} s")
