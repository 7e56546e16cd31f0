"""Sealed test sets: a content hash taken once, verified before every use, and an access log.

A seal records, for every image of a partition, a digest of its label and of its
image file, and a hash over all of them. Verifying the seal later says whether the
partition is still the one that was sealed and, if not, how many cases were added,
removed, relabelled or re-imaged. The access log next to the seal records every
evaluation against the sealed set, so a report can say how often the test set was
looked at and under how many different study specs.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    Finding,
    ImageReadError,
    Rung,
    Status,
    atomic_write_text,
    check_positive_int,
    table_from_dict,
    table_to_dict,
)
from ..cohort import Cohort, evaluate_rule
from ..provenance import file_sha256
from ._common import (
    IntegrityError,
    SplitError,
    SplitFileError,
    listing,
    read_json_file,
    utc_now,
)

try:  # POSIX advisory locks serialize concurrent appends; elsewhere O_APPEND alone.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Seal",
    "SealCheck",
    "access_log_path",
    "access_summary",
    "check_sealed_access",
    "count_evaluations",
    "log_access",
    "read_access_log",
    "read_seal",
    "seal_partition",
    "seal_sha256",
    "verify_seal",
    "write_seal",
]

SEAL_FORMAT = "claimladder.seal"
SEAL_FORMAT_VERSION = "1"
_MISSING_FILE = "missing"
_GENESIS = "0" * 64
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LOG_COLUMNS = ["entry", "when", "seal", "seal_sha256", "spec_sha256", "checks"]
MaskOrIds = np.ndarray | pd.Series | Sequence[Any] | str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _label_text(value: Any) -> str:
    """Canonical text of a label, so that ``1``, ``1.0`` and ``np.int64(1)`` agree."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def seal_sha256(records: pd.DataFrame) -> str:
    """SHA-256 over sorted ``"<image_id>\\t<label_sha256>\\t<file_sha256>\\n"`` lines."""
    lines = sorted(f"{i}\t{lab}\t{f}\n" for i, lab, f in zip(
        records["image_id"], records["label_sha256"], records["file_sha256"], strict=True))
    return _sha("".join(lines))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Seal:
    """The sealed content of one partition.

    Parameters
    ----------
    name : str
        Partition name (``"internal_test"``, ``"external_C"``).
    records : pandas.DataFrame
        One row per image: ``image_id``, ``label_sha256`` (digest of image id and
        label), ``file_sha256`` (digest of the image file; empty when files were not
        sealed).
    n_patients : int
        Number of distinct patients (the ids themselves are not stored).
    n_pos : int
        Number of positive images.
    sealed_at : str
        UTC time of sealing (ISO 8601).
    with_files : bool
        Whether image files were hashed.
    source : str, optional
        Name of the cohort file.

    Attributes
    ----------
    sha256 : str
        Content hash (:func:`seal_sha256` of ``records``).

    Notes
    -----
    The seal protects integrity, not secrecy: a binary label's digest can be
    recovered by hashing both candidate values, so keep the seal with the data.
    """

    name: str
    records: pd.DataFrame
    n_patients: int
    n_pos: int
    sealed_at: str
    with_files: bool
    source: str | None = None
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        records = pd.DataFrame({
            c: self.records[c].fillna("").astype(str).to_numpy(dtype=object)
            for c in ("image_id", "label_sha256", "file_sha256")})
        if records["image_id"].duplicated().any():
            raise SplitError(f"Seal {self.name!r}: image ids repeat. Fix: one row per image.")
        object.__setattr__(self, "records", records)
        object.__setattr__(self, "sha256", seal_sha256(records))

    @property
    def n_images(self) -> int:
        """Number of sealed images."""
        return len(self.records)

    @property
    def image_ids(self) -> list[str]:
        """Sealed image ids, in sealing order."""
        return self.records["image_id"].tolist()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary, the content of the seal file."""
        return {
            "format": SEAL_FORMAT, "format_version": SEAL_FORMAT_VERSION,
            "name": self.name, "sha256": self.sha256, "n_images": self.n_images,
            "n_patients": int(self.n_patients), "n_pos": int(self.n_pos),
            "sealed_at": self.sealed_at, "with_files": bool(self.with_files),
            "source": self.source, "records": table_to_dict(self.records),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Seal:
        """Rebuild from :meth:`to_dict` (the hash is recomputed, not trusted)."""
        return cls(name=data["name"], records=table_from_dict(data["records"]),
                   n_patients=int(data["n_patients"]), n_pos=int(data["n_pos"]),
                   sealed_at=data["sealed_at"], with_files=bool(data["with_files"]),
                   source=data.get("source"))


def _select(cohort: Cohort, mask_or_ids: MaskOrIds, *, owner: str, strict: bool) -> np.ndarray:
    """Boolean row mask from a mask, a rule string or a list of image ids."""
    if isinstance(mask_or_ids, str):
        return evaluate_rule(cohort.table, mask_or_ids, context=f"{owner} rule")
    values = mask_or_ids.to_numpy() if isinstance(mask_or_ids, pd.Series) else np.asarray(
        list(mask_or_ids) if not isinstance(mask_or_ids, np.ndarray) else mask_or_ids,
        dtype=object)
    if values.dtype == bool or (len(values) and all(
            isinstance(v, (bool, np.bool_)) for v in values)):
        if len(values) != cohort.n_images:
            raise ValueError(
                f"The 'mask_or_ids' parameter of {owner} is a mask of {len(values)} values, "
                f"but the cohort has {cohort.n_images} rows."
            )
        return values.astype(bool)
    ids = pd.Series(values, dtype=object).astype(str)
    known = cohort.image_ids
    unknown = ids[~ids.isin(known)].tolist()
    if unknown and strict:
        raise SplitError(
            f"{owner}: {len(unknown)} image id(s) are not in {cohort.describe_source()} "
            f"({listing(unknown)}). Fix: seal ids of the cohort's rows."
        )
    return np.isin(known, ids.to_numpy())


def _records(cohort: Cohort, mask: np.ndarray, images_root: str | os.PathLike[str] | None,
             *, strict: bool, owner: str) -> pd.DataFrame:
    ids = cohort.image_ids[mask]
    labels = cohort.column("label").to_numpy(dtype=object)[mask]
    label_digests = [_sha(f"{i}\t{_label_text(v)}") for i, v in zip(ids, labels, strict=True)]
    files = [""] * len(ids)
    if images_root is not None:
        if not cohort.has_role("path"):
            raise SplitError(
                f"{owner}: images_root was given but {cohort.describe_source()} assigns no "
                "'path' column, so no image file can be hashed. Fix: set `path = \"<column>\"` "
                "under [data.columns], or leave images_root out."
            )
        root = Path(images_root)
        paths = cohort.column("path").to_numpy(dtype=object)[mask]
        files = []
        for image_id, rel in zip(ids, paths, strict=True):
            present = rel is not None and not pd.isna(rel) and str(rel).strip() != ""
            target = root / str(rel) if present else None
            if target is not None and target.is_file():
                files.append(file_sha256(target))
            elif strict:
                raise ImageReadError(
                    f"{owner}: the image of {image_id!r} "
                    f"({'no path' if target is None else target}) does not exist, so it "
                    "cannot be sealed. Fix: check images_root and the path column, or "
                    "exclude the case before sealing."
                )
            else:
                files.append(_MISSING_FILE)
    return pd.DataFrame({"image_id": ids, "label_sha256": label_digests, "file_sha256": files})


def seal_partition(
    cohort: Cohort,
    mask_or_ids: MaskOrIds,
    *,
    name: str,
    images_root: str | os.PathLike[str] | None = None,
) -> Seal:
    """Seal one partition: hash its image ids, labels and (optionally) image files.

    Parameters
    ----------
    cohort : Cohort
        The cohort holding the partition.
    mask_or_ids : array-like of bool, sequence of image ids, or str
        The partition's rows: a boolean mask over the cohort, its image ids, or a
        row rule such as ``"split == 'test'"``.
    name : str
        Partition name recorded in the seal.
    images_root : path-like, optional
        Folder the cohort's ``path`` column is relative to; when given, every image
        file is hashed (SHA-256) into the seal.

    Returns
    -------
    Seal

    Raises
    ------
    SplitError
        An id is not in the cohort, the partition is empty, or files were asked
        for without a ``path`` role.
    ImageReadError
        An image file does not exist.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> t = pd.DataFrame({"image_id": ["a", "b", "c"], "patient_id": ["p", "p", "q"],
    ...                   "label": [1, 0, 1]})
    >>> seal = seal_partition(Cohort(table=t, roles=ColumnRoles()), ["a", "b"], name="test")
    >>> seal.n_images, seal.n_patients, seal.n_pos
    (2, 1, 1)
    """
    owner = "seal_partition"
    mask = _select(cohort, mask_or_ids, owner=owner, strict=True)
    if not mask.any():
        raise SplitError(f"{owner}: partition {name!r} selects no row; there is nothing to seal.")
    records = _records(cohort, mask, images_root, strict=True, owner=owner)
    label = cohort.column("label")[mask]
    return Seal(name=str(name), records=records,
                n_patients=int(pd.Series(cohort.patient_ids[mask]).nunique()),
                n_pos=int((label == cohort.positive_label).sum()), sealed_at=utc_now(),
                with_files=images_root is not None,
                source=None if cohort.source is None else Path(cohort.source).name)


@dataclass(frozen=True, slots=True, kw_only=True)
class SealCheck:
    """Whether a partition still matches its seal, and what changed (counts only).

    Attributes
    ----------
    name : str
        Sealed partition name.
    matches : bool
        True when the content hash is unchanged.
    seal_sha256, observed_sha256 : str
        Hash recorded in the seal and hash of the partition now.
    n_sealed, n_observed : int
        Images in the seal and in the partition now.
    n_added, n_removed : int
        Image ids present now but not sealed, and sealed but absent now.
    n_labels_changed : int
        Images whose label differs from the sealed one.
    n_files_changed, n_files_missing : int
        Images whose file bytes differ, and images whose file is gone.
    files_checked : bool
        Whether image files were compared (the seal recorded them).
    examples : tuple of str
        Up to ten affected image ids (never patient ids).
    """

    name: str
    matches: bool
    seal_sha256: str
    observed_sha256: str
    n_sealed: int
    n_observed: int
    n_added: int
    n_removed: int
    n_labels_changed: int
    n_files_changed: int
    n_files_missing: int
    files_checked: bool
    examples: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """One sentence for a reviewer."""
        if self.matches:
            what = "ids, labels and image files" if self.files_checked else "ids and labels"
            return (f"Sealed partition {self.name!r} is unchanged ({self.n_sealed} images; "
                    f"{what} match the seal).")
        parts = [f"{v} {k}" for k, v in (
            ("image(s) added", self.n_added), ("image(s) removed", self.n_removed),
            ("label(s) changed", self.n_labels_changed),
            ("image file(s) changed", self.n_files_changed),
            ("image file(s) missing", self.n_files_missing)) if v]
        return (f"Sealed partition {self.name!r} no longer matches its seal: "
                f"{', '.join(parts)}; results on it are not results on the sealed set.")

    def to_finding(self) -> Finding:
        """The check as a ``provenance.sealed_test_set`` finding (rung 1)."""
        table = pd.DataFrame({
            "quantity": ["n_sealed", "n_observed", "n_added", "n_removed", "n_labels_changed",
                         "n_files_changed", "n_files_missing"],
            "count": [self.n_sealed, self.n_observed, self.n_added, self.n_removed,
                      self.n_labels_changed, self.n_files_changed, self.n_files_missing]})
        return Finding(
            check="provenance.sealed_test_set", rung=Rung.INTERNAL,
            status=Status.PASS if self.matches else Status.FAIL, message=self.message,
            criterion="the partition's content hash equals the sealed one", table=table,
            examples=self.examples,
            params={"partition": self.name, "seal_sha256": self.seal_sha256,
                    "observed_sha256": self.observed_sha256,
                    "files_checked": self.files_checked})


def verify_seal(
    seal: Seal,
    cohort: Cohort,
    mask_or_ids: MaskOrIds,
    *,
    images_root: str | os.PathLike[str] | None = None,
) -> SealCheck:
    """Compare a partition with its seal.

    Parameters
    ----------
    seal : Seal
        The seal (from :func:`read_seal`).
    cohort : Cohort
        The cohort now.
    mask_or_ids : array-like of bool, sequence of image ids, or str
        The partition's rows now (as for :func:`seal_partition`); image ids that
        are no longer in the cohort count as removed.
    images_root : path-like, optional
        Required when the seal hashed image files; ignored otherwise.

    Returns
    -------
    SealCheck

    Raises
    ------
    ValueError
        The seal hashed image files but ``images_root`` was not given.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> t = pd.DataFrame({"image_id": ["a", "b", "c"], "patient_id": ["p", "p", "q"],
    ...                   "label": [1, 0, 1]})
    >>> seal = seal_partition(Cohort(table=t, roles=ColumnRoles()), ["a", "b"], name="test")
    >>> t.loc[1, "label"] = 1
    >>> check = verify_seal(seal, Cohort(table=t, roles=ColumnRoles()), ["a", "b"])
    >>> check.matches, check.n_labels_changed
    (False, 1)
    """
    owner = "verify_seal"
    if seal.with_files and images_root is None:
        raise ValueError(
            f"{owner}: the seal of {seal.name!r} includes image file hashes; pass images_root "
            "so the files can be compared."
        )
    mask = _select(cohort, mask_or_ids, owner=owner, strict=False)
    now = _records(cohort, mask, images_root if seal.with_files else None, strict=False,
                   owner=owner)
    sealed = seal.records.set_index("image_id")
    current = now.set_index("image_id")
    added = current.index.difference(sealed.index, sort=False)
    removed = sealed.index.difference(current.index, sort=False)
    common = current.index.intersection(sealed.index, sort=False)
    labels = common[(current.loc[common, "label_sha256"]
                     != sealed.loc[common, "label_sha256"]).to_numpy(dtype=bool)]
    files_changed = files_missing = pd.Index([])
    if seal.with_files:
        now_files = current.loc[common, "file_sha256"]
        differs = (now_files != sealed.loc[common, "file_sha256"]).to_numpy(dtype=bool)
        gone = (now_files == _MISSING_FILE).to_numpy(dtype=bool)
        files_changed, files_missing = common[differs & ~gone], common[gone]
    observed = seal_sha256(now)
    examples = [*added, *removed, *labels, *files_changed, *files_missing]
    return SealCheck(
        name=seal.name, matches=observed == seal.sha256, seal_sha256=seal.sha256,
        observed_sha256=observed, n_sealed=seal.n_images, n_observed=len(now),
        n_added=len(added), n_removed=len(removed), n_labels_changed=len(labels),
        n_files_changed=len(files_changed), n_files_missing=len(files_missing),
        files_checked=seal.with_files,
        examples=tuple(dict.fromkeys(str(e) for e in examples))[:10])


def write_seal(seal: Seal, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a seal as JSON, atomically; refuses to replace an existing seal by default.

    Parameters
    ----------
    seal : Seal
    path : path-like
        Destination, e.g. ``seals/internal_test.seal.json``.
    overwrite : bool, default=False
        Replace an existing file. Re-sealing a test set is a deliberate act: the
        access log of the old seal stays and records the change of hash.

    Raises
    ------
    SplitFileError
        The file exists and ``overwrite`` is False.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> t = pd.DataFrame({"image_id": ["a", "b"], "patient_id": ["p", "q"], "label": [1, 0]})
    >>> seal = seal_partition(Cohort(table=t, roles=ColumnRoles()), ["a", "b"], name="test")
    >>> path = write_seal(seal, pathlib.Path(tempfile.mkdtemp()) / "test.seal.json")
    >>> read_seal(path).sha256 == seal.sha256
    True
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SplitFileError(
            f"{path}: a seal already exists. Fix: verify against it with verify_seal, or pass "
            "overwrite=True to re-seal deliberately (its access log is kept)."
        )
    text = json.dumps(seal.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_seal(path: str | os.PathLike[str]) -> Seal:
    """Read a seal file and verify that its records still give its hash.

    Raises
    ------
    SplitFileError
        The file is missing, not JSON, or not a claimladder seal.
    IntegrityError
        The records no longer give the recorded ``sha256`` (the file was edited).
    """
    data = read_json_file(path, SEAL_FORMAT, what="seal")
    try:
        seal = Seal.from_dict(data)
        recorded = str(data["sha256"])
    except (KeyError, TypeError, ValueError) as error:
        raise SplitFileError(
            f"{path}: malformed seal file ({type(error).__name__}: {error}). Fix: restore it "
            "from a backup; a seal cannot be rebuilt from changed data."
        ) from error
    if recorded != seal.sha256:
        raise IntegrityError(
            f"{path}: the seal's records give sha256 {seal.sha256[:12]}..., but it records "
            f"{recorded[:12]}...; the seal file was edited. Fix: restore the original seal "
            "file; a seal is never edited by hand."
        )
    return seal


# -- access log ------------------------------------------------------------------------------

def access_log_path(seal_path: str | os.PathLike[str]) -> Path:
    """The access log of a seal: ``x.seal.json`` -> ``x.seal.access.jsonl`` beside it.

    Examples
    --------
    >>> access_log_path("seals/internal_test.seal.json").as_posix()
    'seals/internal_test.seal.access.jsonl'
    """
    path = Path(seal_path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(f"{stem}.access.jsonl")


def _when_text(when: Any) -> str:
    if when is None:
        return utc_now()
    if isinstance(when, _dt.datetime):
        stamp = when if when.tzinfo else when.replace(tzinfo=_dt.UTC)
        return stamp.isoformat(timespec="seconds")
    try:
        return pd.Timestamp(when).isoformat()
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The 'when' parameter of log_access must be a datetime or ISO 8601 string. "
            f"Got {when!r} instead."
        ) from error


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def log_access(
    seal_path: str | os.PathLike[str],
    *,
    spec_sha256: str,
    checks: Sequence[str],
    when: _dt.datetime | str | None = None,
) -> dict[str, Any]:
    """Append one evaluation of a sealed set to its access log.

    Each entry is one JSON line with the seal name and hash, the study spec hash,
    the checks run, the time, and ``prev_sha256``, the SHA-256 of the previous
    line: editing or deleting an earlier entry breaks the chain, which
    :func:`read_access_log` reports. The line is written with one ``O_APPEND``
    write under an exclusive lock, then flushed to disk (``fsync``).

    Parameters
    ----------
    seal_path : path-like
        The seal file (read and verified first).
    spec_sha256 : str
        SHA-256 (64 hex digits) of the study spec used, e.g. ``file_sha256("study.toml")``.
    checks : sequence of str
        Check ids evaluated on the sealed set.
    when : datetime or str, optional
        Time of the evaluation (default: now, UTC).

    Returns
    -------
    dict
        The entry written.

    Raises
    ------
    IntegrityError
        The seal file was edited, or the log ends with an incomplete line.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> t = pd.DataFrame({"image_id": ["a", "b"], "patient_id": ["p", "q"], "label": [1, 0]})
    >>> seal = seal_partition(Cohort(table=t, roles=ColumnRoles()), ["a", "b"], name="test")
    >>> path = write_seal(seal, pathlib.Path(tempfile.mkdtemp()) / "test.seal.json")
    >>> _ = log_access(path, spec_sha256="0" * 64, checks=["internal.roc_auc"])
    >>> count_evaluations(path)
    1
    """
    if not isinstance(spec_sha256, str) or not _HEX64.match(spec_sha256.lower()):
        raise ValueError(
            "The 'spec_sha256' parameter of log_access must be a SHA-256 hex digest (64 hex "
            f"digits), e.g. file_sha256('study.toml'). Got {spec_sha256!r} instead."
        )
    if isinstance(checks, str) or not all(isinstance(c, str) for c in checks):
        raise ValueError(
            "The 'checks' parameter of log_access must be a list of check ids (str). "
            f"Got {checks!r} instead."
        )
    seal = read_seal(seal_path)
    log = access_log_path(seal_path)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        previous = _last_line(log)
        entry = {"seal": seal.name, "seal_sha256": seal.sha256, "when": _when_text(when),
                 "spec_sha256": spec_sha256.lower(), "checks": list(checks),
                 "prev_sha256": _GENESIS if previous is None else _sha(previous)}
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        _write_all(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return entry


def _last_line(log: Path) -> str | None:
    data = log.read_bytes()
    if not data:
        return None
    if not data.endswith(b"\n"):
        raise IntegrityError(
            f"{log}: the last line is incomplete (a write was interrupted or the file was "
            "edited). Fix: move the file aside and inspect it; do not append to a damaged log."
        )
    return data[:-1].rsplit(b"\n", 1)[-1].decode("utf-8")


def read_access_log(seal_path: str | os.PathLike[str]) -> pd.DataFrame:
    """The access log of a seal, one row per evaluation, after checking its chain.

    Returns
    -------
    pandas.DataFrame
        Columns ``entry`` (1-based), ``when``, ``seal``, ``seal_sha256``,
        ``spec_sha256``, ``checks`` (comma-separated); empty when never accessed.

    Raises
    ------
    IntegrityError
        A line is not JSON, or its ``prev_sha256`` does not match the line before it
        (an entry was edited, inserted or deleted).
    """
    log = access_log_path(seal_path)
    if not log.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _LOG_COLUMNS})
    rows, previous = [], None
    for number, line in enumerate(log.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            expected = _GENESIS if previous is None else _sha(previous)
            chained = entry["prev_sha256"] == expected
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise IntegrityError(
                f"{log}: line {number} is not a log entry ({error}). Fix: restore the log from "
                "a backup; an access log is append-only."
            ) from error
        if not chained:
            raise IntegrityError(
                f"{log}: line {number} does not follow line {number - 1} (prev_sha256 "
                "mismatch): an entry was edited, inserted or deleted. Fix: restore the log "
                "from a backup; an access log is append-only."
            )
        rows.append({"entry": number, "when": entry.get("when"), "seal": entry.get("seal"),
                     "seal_sha256": entry.get("seal_sha256"),
                     "spec_sha256": entry.get("spec_sha256"),
                     "checks": ",".join(entry.get("checks") or [])})
        previous = line
    return pd.DataFrame(rows, columns=_LOG_COLUMNS)


def count_evaluations(seal_path: str | os.PathLike[str]) -> int:
    """Number of evaluations recorded in a seal's access log."""
    return len(read_access_log(seal_path))


def access_summary(seal_paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Per sealed set: ``seal, n_evaluations, n_specs, first_access, last_access``.

    ``n_specs`` counts distinct study spec hashes: a test set evaluated under many
    specs has probably been tuned on.
    """
    rows = []
    for seal_path in seal_paths:
        seal = read_seal(seal_path)
        log = read_access_log(seal_path)
        # Entries may carry different UTC offsets: order them as instants, not as text.
        when = pd.to_datetime(log["when"], utc=True, format="ISO8601")
        rows.append({"seal": seal.name, "n_evaluations": len(log),
                     "n_specs": int(log["spec_sha256"].nunique()),
                     "first_access": log["when"].iloc[when.argmin()] if len(log) else None,
                     "last_access": log["when"].iloc[when.argmax()] if len(log) else None})
    return pd.DataFrame(rows, columns=["seal", "n_evaluations", "n_specs", "first_access",
                                       "last_access"])


def check_sealed_access(seal_path: str | os.PathLike[str], *, max_specs: int = 1) -> Finding:
    """``provenance.sealed_access``: warn when a sealed set was evaluated under many specs.

    Parameters
    ----------
    seal_path : path-like
    max_specs : int, default=1
        Distinct study spec hashes tolerated before warning.

    Returns
    -------
    Finding
        Rung 1; ``pass`` or ``warn`` with the access counts as its table.
    """
    max_specs = check_positive_int(max_specs, param="max_specs", owner="check_sealed_access")
    summary = access_summary([seal_path])
    row = summary.iloc[0]
    n_specs, n_eval = int(row["n_specs"]), int(row["n_evaluations"])
    if n_specs > max_specs:
        status = Status.WARN
        message = (f"Sealed set {row['seal']!r} was evaluated {n_eval} time(s) under "
                   f"{n_specs} different study specs; choices made between them were tuned "
                   "on the test set.")
    else:
        status = Status.PASS
        message = (f"Sealed set {row['seal']!r} was evaluated {n_eval} time(s) under at most "
                   f"{max_specs} study spec(s).")
    return Finding(check="provenance.sealed_access", rung=Rung.INTERNAL, status=status,
                   message=message, criterion=f"distinct study specs <= {max_specs}",
                   table=summary, params={"max_specs": max_specs})
