"""Errors and input validation shared by the splitters, manifests and seals."""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._core import ClaimladderError

__all__ = [
    "EXCLUDED_PREFIX",
    "STRADDLER_POLICIES",
    "IntegrityError",
    "SplitError",
    "SplitFileError",
    "read_json_file",
]

#: Partition names starting with this prefix hold rows that belong to no side of a split
#: (e.g. ``excluded_gap``); they are listed so that every case stays accounted for.
EXCLUDED_PREFIX = "excluded_"
#: What to do with a patient whose images fall on both sides of a split.
STRADDLER_POLICIES = ("test", "train", "drop", "raise")

_MAX_LISTED = 5


class SplitError(ClaimladderError, ValueError):
    """The data cannot be split as asked (a patient at two sites, too few patients, ...)."""


class SplitFileError(ClaimladderError, OSError):
    """A split manifest, seal or access log file is missing, unreadable or malformed."""


class IntegrityError(ClaimladderError, ValueError):
    """A split manifest, seal or access log no longer matches its recorded hash."""


def listing(values: Sequence[Any]) -> str:
    """``"'a', 'b' (+3 more)"`` for error messages."""
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:_MAX_LISTED])
    more = f" (+{len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else ""
    return shown + more


def utc_now() -> str:
    """Current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def n_rows(X: Any, groups: Any, owner: str) -> int:
    """Number of rows of ``X`` (or of ``groups`` when ``X`` is None)."""
    source = X if X is not None else groups
    if source is None:
        raise ValueError(f"{owner} needs X or groups to know the number of rows. Got neither.")
    shape = getattr(source, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(source)


def as_labels(values: Any, *, n: int, param: str, owner: str, required: str) -> np.ndarray:
    """Validate a per-row id / label vector: present, 1-d, ``n`` long, no missing value.

    Values are returned as strings so that ``1`` and ``"1"`` never form two groups
    by accident of file parsing.
    """
    if values is None:
        raise ValueError(
            f"The {param!r} parameter of {owner} must hold {required}, one per row. "
            "Got None instead."
        )
    series = pd.Series(np.asarray(values, dtype=object).ravel() if not isinstance(
        values, pd.Series) else values.to_numpy(dtype=object))
    if len(series) != n:
        raise ValueError(
            f"The {param!r} parameter of {owner} must have one value per row ({n}). "
            f"Got {len(series)} values instead."
        )
    missing = series.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise SplitError(
            f"{owner}: {int(missing.sum())} row(s) have no value in {param!r} "
            f"(row positions {listing(rows.tolist())}). Fix: fill in {required} for every "
            "row, or exclude those rows from the cohort first."
        )
    return series.astype(str).to_numpy(dtype=object)


def strata_codes(*columns: Any, n: int) -> np.ndarray:
    """Integer code of each row's combination of stratum values (missing is a value)."""
    if not columns:
        return np.zeros(n, dtype=np.int64)
    keys = [pd.Series(np.asarray(c, dtype=object).ravel()).astype(str).to_numpy(dtype=object)
            if c is not None else np.full(n, "", dtype=object) for c in columns]
    for key in keys:
        if len(key) != n:
            raise ValueError(f"A stratification vector has {len(key)} values for {n} rows.")
    joined = pd.Series(keys[0])
    for key in keys[1:]:
        joined = joined + "\x1f" + pd.Series(key)
    codes, _ = pd.factorize(joined, sort=True)
    return codes.astype(np.int64)


def to_timestamp(value: Any, *, param: str, owner: str) -> pd.Timestamp:
    """Parse a cutoff (ISO string, date, datetime, Timestamp) into a Timestamp."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The {param!r} parameter of {owner} must be a date or an ISO 8601 string "
            f"such as '2021-01-01'. Got {value!r} instead."
        ) from error
    if stamp is pd.NaT:
        raise ValueError(
            f"The {param!r} parameter of {owner} must be a date or an ISO 8601 string "
            f"such as '2021-01-01'. Got {value!r} instead."
        )
    return stamp


def to_timedelta(value: Any, *, param: str, owner: str) -> pd.Timedelta:
    """Parse a gap (``"30D"``, timedelta, Timedelta, None for zero) into a Timedelta."""
    if value is None:
        return pd.Timedelta(0)
    try:
        delta = pd.Timedelta(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The {param!r} parameter of {owner} must be a duration such as '30D' or a "
            f"datetime.timedelta. Got {value!r} instead."
        ) from error
    if delta is pd.NaT or delta < pd.Timedelta(0):
        raise ValueError(
            f"The {param!r} parameter of {owner} must be a non-negative duration. "
            f"Got {value!r} instead."
        )
    return delta


def read_json_file(
    path: str | os.PathLike[str], expected_format: str, *, what: str
) -> dict:
    """Read a claimladder JSON file and check its ``format`` field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise SplitFileError(
            f"{path}: {what} file not found. Fix: check the path, or create it first."
        ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise SplitFileError(f"{path}: cannot read the {what} file ({error}).") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SplitFileError(
            f"{path}: not valid JSON (line {error.lineno}: {error.msg}); a {what} file is "
            "written by claimladder and must not be edited by hand."
        ) from error
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SplitFileError(
            f"{path}: not a claimladder {what} file (format {found!r}, expected "
            f"{expected_format!r}). Fix: pass the file written by claimladder."
        )
    return data
