"""Cohort rules, partitions and patient overlap over a cohort table read in chunks.

For cohorts too large to hold as a DataFrame (a million rows and more): the
table is read ``chunk_rows`` rows at a time, the study's rules are evaluated
on each chunk, and only 64-bit hashes of the ids are kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._core import Finding, Rung, Status, TableReadError, check_positive_int
from ..cohort import evaluate_rule
from ._study import Study

__all__ = ["StreamedCohortAudit", "stream_cohort_audit"]

_FIT_KINDS = ("development", "calibration")
_TEST_KINDS = ("internal_test", "external")
_MAX_EXAMPLES = 10


def _hash_ids(values: pd.Series) -> np.ndarray:
    # SipHash of the string form (pandas' fixed key): equal ids give equal hashes in
    # every chunk and every run.
    return pd.util.hash_array(values.astype(str).to_numpy(dtype=object), categorize=False)


def _chunks(path: Path, rows: int, id_columns: list[str]) -> Iterator[pd.DataFrame]:
    suffix = "".join(path.suffixes[-2:]).lower()
    dtype = {c: str for c in id_columns}
    try:
        if suffix.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                table = batch.to_pandas()
                for c in id_columns:
                    if c in table.columns:
                        table[c] = table[c].astype(str)
                yield table
        else:
            sep = "\t" if suffix.endswith((".tsv", ".tab")) else ","
            yield from pd.read_csv(path, sep=sep, chunksize=rows, dtype=dtype)
    except FileNotFoundError:
        raise TableReadError(f"{path}: file not found. Fix: correct [data] cohort in the "
                             "study file.") from None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StreamedCohortAudit:
    """What :func:`stream_cohort_audit` counted.

    Attributes
    ----------
    n_rows : int
        Rows of the cohort table.
    flow : pandas.DataFrame
        ``step, n_images_removed, n_images``: the inclusion / exclusion steps.
    partitions : pandas.DataFrame
        ``partition, kind, n_images, n_patients, n_pos``.
    overlap : pandas.DataFrame
        ``partition_a, partition_b, n_shared_patients, examples`` for every
        pair of a fitting and a test partition (examples: up to 10 image ids
        of the test side).
    n_duplicate_image_ids : int
        Rows whose image id repeats an earlier row's.
    chunk_rows : int
    """

    n_rows: int
    flow: pd.DataFrame
    partitions: pd.DataFrame
    overlap: pd.DataFrame
    n_duplicate_image_ids: int
    chunk_rows: int

    def overlap_finding(self) -> Finding:
        """``leakage.patient_overlap_streamed`` (rung 1): fail when a patient crosses."""
        shared = self.overlap[self.overlap["n_shared_patients"] > 0]
        criterion = "no patient in both a fitting and a test partition"
        params = {"chunk_rows": self.chunk_rows, "n_rows": self.n_rows,
                  "id_hash": "pandas siphash-64"}
        if len(shared):
            worst = shared.sort_values("n_shared_patients", ascending=False).iloc[0]
            examples = tuple(itertools.chain.from_iterable(shared["examples"]))
            return Finding(
                check="leakage.patient_overlap_streamed", rung=Rung.INTERNAL, status=Status.FAIL,
                message=(f"{int(shared['n_shared_patients'].sum())} patient(s) appear in both a "
                         f"fitting and a test partition (most: {worst.n_shared_patients} "
                         f"between {worst.partition_a} and {worst.partition_b})."),
                criterion=criterion, table=self.overlap.drop(columns="examples"),
                examples=examples[:_MAX_EXAMPLES], params=params)
        return Finding(check="leakage.patient_overlap_streamed", rung=Rung.INTERNAL,
                       status=Status.PASS,
                       message=f"No patient crosses fitting and test partitions "
                               f"({self.n_rows} rows read in chunks of {self.chunk_rows}).",
                       criterion=criterion, table=self.overlap.drop(columns="examples"),
                       params=params)


def stream_cohort_audit(study: Study, *, chunk_rows: int = 100_000) -> StreamedCohortAudit:
    """Apply the study's cohort and partition rules chunk by chunk and count patient overlap.

    Parameters
    ----------
    study : Study
        Its cohort table (CSV, TSV or Parquet), column roles, ``[cohort]``
        rules and ``[partitions]``.
    chunk_rows : int, default 100000
        Rows read at a time.

    Returns
    -------
    StreamedCohortAudit

    Notes
    -----
    Memory is bounded by one chunk (``chunk_rows`` parsed rows, about
    ``chunk_rows`` x 0.5 kB for a dozen short text columns) plus 8 bytes per
    row (the image-id hashes, to find repeated ids) and 8 bytes per distinct
    patient of each partition: 38 MiB peak of Python allocations
    (tracemalloc) for a 1,000,000-row, 7-column cohort read in chunks of
    50,000 rows (tests/parallel/test_stream.py). Ids are compared by
    64-bit hashes: the chance that two of a million distinct ids collide
    is below 3e-8. Rules are evaluated row by row, so every rule must
    depend on its own row only (as the study's rules do). A second pass
    (only when patients cross) collects example image ids.

    Examples
    --------
    >>> import tempfile
    >>> from claimladder.datasets import make_demo_study
    >>> from claimladder.ladder import load_study, stream_cohort_audit
    >>> demo = make_demo_study(tempfile.mkdtemp(), n_patients=60, rng=0)
    >>> audit = stream_cohort_audit(load_study(demo.study_path), chunk_rows=50)
    >>> audit.n_rows == demo.n_images, audit.overlap_finding().status.value
    (True, 'pass')
    """
    chunk_rows = check_positive_int(chunk_rows, param="chunk_rows", owner="stream_cohort_audit")
    roles = study.roles
    path = Path(study.cohort_path)
    rules = [("no reference label", None, "missing")]
    rules += [(f"include: {r}", r, "include") for r in study.include]
    rules += [(f"exclude: {r}", r, "exclude") for r in study.exclude]
    parts = study.partitions
    partition_rules = [(name, parts[name], name)
                       for name in ("development", "calibration", "internal_test")
                       if parts.get(name) is not None]
    partition_rules += [(name, rule, "external") for name, rule in (parts.get("external") or
                                                                     {}).items()]
    removed = np.zeros(len(rules), dtype=np.int64)
    n_rows = 0
    image_hashes: list[np.ndarray] = []
    patients: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in partition_rules}
    counts = {name: [0, 0] for name, _, _ in partition_rules}  # images, positives

    def included(chunk: pd.DataFrame, tally: bool) -> np.ndarray:
        keep = np.ones(len(chunk), dtype=bool)
        for k, (_, rule, kind) in enumerate(rules):
            if kind == "missing":
                drop = chunk[roles.label].isna().to_numpy()
            else:
                hit = evaluate_rule(chunk, rule, context=f"[cohort] {kind}")
                drop = ~hit if kind == "include" else hit
            if tally:
                removed[k] += int((keep & drop).sum())
            keep &= ~drop
        return keep

    def masks(chunk: pd.DataFrame) -> dict[str, np.ndarray]:
        return {name: evaluate_rule(chunk, rule, context=f"[partitions] {name}")
                for name, rule, _ in partition_rules}

    id_columns = [roles.image_id, roles.patient_id]
    for chunk in _chunks(path, chunk_rows, id_columns):
        n_rows += len(chunk)
        image_hashes.append(_hash_ids(chunk[roles.image_id]))
        chunk = chunk[included(chunk, tally=True)].reset_index(drop=True)
        positive = (chunk[roles.label] == study.positive_label).to_numpy()
        pid = _hash_ids(chunk[roles.patient_id])
        for name, mask in masks(chunk).items():
            patients[name].append(np.unique(pid[mask]))
            counts[name][0] += int(mask.sum())
            counts[name][1] += int(positive[mask].sum())
        if sum(len(p) for v in patients.values() for p in v) > 4 * chunk_rows:
            for name in patients:  # fold the per-chunk sets so memory stays O(patients)
                patients[name] = [np.unique(np.concatenate(patients[name]))]
    unique = {name: (np.unique(np.concatenate(v)) if v else np.zeros(0, np.uint64))
              for name, v in patients.items()}
    all_ids = np.concatenate(image_hashes) if image_hashes else np.zeros(0, np.uint64)
    del image_hashes
    n_duplicates = int(all_ids.size - np.unique(all_ids).size)
    del all_ids

    kinds = {name: kind for name, _, kind in partition_rules}
    pairs = []
    for a, b in itertools.combinations(kinds, 2):
        fit_test = ((kinds[a] in _FIT_KINDS and kinds[b] in _TEST_KINDS)
                    or (kinds[b] in _FIT_KINDS and kinds[a] in _TEST_KINDS))
        if fit_test:
            shared = np.intersect1d(unique[a], unique[b], assume_unique=True)
            test = b if kinds[b] in _TEST_KINDS else a
            pairs.append([a, b, test, shared])
    examples: dict[int, list[str]] = {k: [] for k in range(len(pairs))}
    if any(p[3].size for p in pairs):  # second pass, only for the example ids
        for chunk in _chunks(path, chunk_rows, id_columns):
            chunk = chunk[included(chunk, tally=False)].reset_index(drop=True)
            pid = _hash_ids(chunk[roles.patient_id])
            chunk_masks = masks(chunk)
            for k, (_, _, test, shared) in enumerate(pairs):
                if shared.size and len(examples[k]) < _MAX_EXAMPLES:
                    hit = chunk_masks[test] & np.isin(pid, shared)
                    ids = chunk.loc[hit, roles.image_id].astype(str).tolist()
                    examples[k].extend(ids[:_MAX_EXAMPLES - len(examples[k])])
    overlap = pd.DataFrame(
        [{"partition_a": a, "partition_b": b, "n_shared_patients": int(shared.size),
          "examples": tuple(examples[k])} for k, (a, b, _, shared) in enumerate(pairs)],
        columns=["partition_a", "partition_b", "n_shared_patients", "examples"])
    steps, remaining = [{"step": "source cohort", "n_images_removed": 0, "n_images": n_rows}], \
        n_rows
    for (step, _, kind), n in zip(rules, removed, strict=True):
        if kind == "missing" and not n:
            continue
        remaining -= int(n)
        steps.append({"step": step, "n_images_removed": int(n), "n_images": remaining})
    table = pd.DataFrame([{"partition": name, "kind": kinds[name], "n_images": counts[name][0],
                           "n_patients": int(unique[name].size), "n_pos": counts[name][1]}
                          for name in kinds],
                         columns=["partition", "kind", "n_images", "n_patients", "n_pos"])
    return StreamedCohortAudit(n_rows=n_rows, flow=pd.DataFrame(steps), partitions=table,
                               overlap=overlap, n_duplicate_image_ids=n_duplicates,
                               chunk_rows=chunk_rows)
