"""Reading cohort and prediction tables from CSV and Parquet."""

from __future__ import annotations

import csv
import gzip
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .._core import TableReadError, did_you_mean

__all__ = ["TABLE_EXTENSIONS", "read_table"]

_CSV_SEPARATORS = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
_PARQUET_EXTENSIONS = (".parquet", ".pq")

#: File name endings :func:`read_table` reads.
TABLE_EXTENSIONS = (*_CSV_SEPARATORS, *_PARQUET_EXTENSIONS)


def _table_error(path: Path, problem: str, fix: str) -> TableReadError:
    return TableReadError(f"Cannot read table {str(path)!r}: {problem}. {fix}")


def _extension(path: Path) -> str:
    name = path.name.lower()
    # Longest first, so that "x.csv.gz" is not taken for a plain ".gz".
    for ext in sorted(TABLE_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffixes else ""
    raise _table_error(
        path,
        f"its extension {suffix or 'none'!r} is not a supported table format",
        f"Supported extensions: {', '.join(TABLE_EXTENSIONS)}; export the table to "
        f"CSV or Parquet.{did_you_mean(path.suffix.lower(), TABLE_EXTENSIONS)}",
    )


def _first_long_row(path: Path, sep: str, encoding: str) -> str:
    """Describe the first row longer than the header: ``" (line 2: 3 fields, not 2)"``."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        rows = csv.reader(handle, delimiter=sep)
        header = next(rows, [])
        for row in rows:
            if len(row) > len(header):
                return f" (line {rows.line_num}: {len(row)} fields, not {len(header)})"
    return ""


def _read_csv(path: Path, sep: str, dtype: Any, encoding: str) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # pandas drops or shifts the cells of a row with more fields than
            # the header with only a warning; a cohort table must not lose data.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, sep=sep, dtype=dtype, encoding=encoding, index_col=False)
    except pd.errors.EmptyDataError:
        raise _table_error(
            path,
            "the file is empty (no header row)",
            "Write the table with a header row naming the columns.",
        ) from None
    except pd.errors.ParserWarning:
        raise _table_error(
            path,
            f"a row has more fields than the header{_first_long_row(path, sep, encoding)}",
            "Fix the row, or quote cells that contain the separator.",
        ) from None
    except pd.errors.ParserError as exc:
        raise _table_error(
            path,
            f"it cannot be parsed as {'tab' if sep == chr(9) else 'comma'}-separated "
            f"values ({str(exc).strip()})",
            "Check the separator, unbalanced quotes and the number of fields per row.",
        ) from None
    except UnicodeDecodeError as exc:
        raise _table_error(
            path,
            f"it is not valid {encoding} text ({exc.reason} at byte {exc.start})",
            "Save it as UTF-8, or pass the file's encoding, e.g. encoding='latin-1'.",
        ) from None
    except (ValueError, TypeError) as exc:
        # e.g. dtype={"age": int} on a column with missing or non-numeric values
        raise _table_error(
            path,
            f"a column does not convert to the requested dtype ({exc})",
            "Check the 'dtype' argument against the column's values (missing values "
            "need a nullable dtype such as 'Int64' or 'str').",
        ) from None
    except (EOFError, OSError) as exc:
        raise _table_error(
            path,
            f"it cannot be read ({type(exc).__name__}: {exc}); a compressed file may be truncated",
            "Re-export the table.",
        ) from None


def _read_parquet(path: Path, dtype: Any) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401 - only to give the install fix
    except ImportError:
        raise _table_error(
            path,
            "reading Parquet needs pyarrow, which is not installed",
            "Install the 'parquet' extra: pip install 'claimladder[parquet]'.",
        ) from None
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own error types
        raise _table_error(
            path,
            f"it cannot be parsed as Parquet ({type(exc).__name__}: {exc}); the file is "
            "empty, truncated or not Parquet",
            "Re-export the table.",
        ) from None
    if dtype is None:
        return frame
    try:
        if isinstance(dtype, Mapping):
            missing = [c for c in dtype if c not in frame.columns]
            if missing:
                raise KeyError(f"no column(s) {missing}")
        return frame.astype(dtype)
    except (KeyError, ValueError, TypeError) as exc:
        raise _table_error(
            path,
            f"a column does not convert to the requested dtype ({exc})",
            f"Check the 'dtype' argument; the columns are {list(frame.columns)}.",
        ) from None


def read_table(
    path: str | os.PathLike[str],
    *,
    dtype: Any = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet table.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, ``.tsv``, ``.csv.gz``, ``.tsv.gz``, ``.parquet`` or ``.pq``.
    dtype : dtype or mapping of column to dtype, optional
        Passed to :func:`pandas.read_csv`; for Parquet, applied with
        :meth:`pandas.DataFrame.astype`. Use ``{"patient_id": str}`` to keep
        identifiers such as ``"007"`` from becoming the number 7.
    encoding : str, default="utf-8"
        Text encoding of CSV/TSV files.

    Returns
    -------
    pandas.DataFrame
        The table as pandas parses it: no column is renamed, no index is set.

    Raises
    ------
    TableReadError
        The file is missing, empty, unparseable (with the parser's line), has a
        row with more fields than the header, cannot take the requested
        ``dtype``, has an unsupported extension (listing the supported ones),
        or is Parquet without pyarrow installed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "cohort.csv"
    ...     _ = path.write_text("patient_id,age\\n007,54\\n012,61\\n")
    ...     table = read_table(path, dtype={"patient_id": str})
    >>> table["patient_id"].tolist(), table["age"].tolist()
    (['007', '012'], [54, 61])
    """
    path = Path(path)
    if not path.exists():
        raise _table_error(
            path,
            "the file does not exist",
            f"Check the path (relative paths resolve against {os.getcwd()!r}).",
        )
    if path.is_dir():
        raise _table_error(path, "it is a directory", "Pass the path of one table file.")
    ext = _extension(path)
    if ext in _PARQUET_EXTENSIONS:
        return _read_parquet(path, dtype)
    return _read_csv(path, _CSV_SEPARATORS[ext], dtype, encoding)
