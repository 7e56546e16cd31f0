"""The reader-study data model: a fully crossed table of readings and the case truth."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import AlignmentError, ClaimladderError, did_you_mean
from ..io import read_table

__all__ = [
    "OPTIONAL_COLUMNS",
    "READING_COLUMNS",
    "ReaderStudy",
    "ReaderStudyError",
    "load_readings",
    "resolve_study",
]

#: Columns every reading table must have (after ``columns`` renaming).
READING_COLUMNS: tuple[str, ...] = ("case_id", "reader_id", "modality", "score")
#: Columns a reading table may have: the reader's binary call and the reading time.
OPTIONAL_COLUMNS: tuple[str, ...] = ("decision", "time_s")

_MAX_SHOWN = 5


class ReaderStudyError(ClaimladderError, ValueError):
    """A reader-study table is malformed, incomplete (not fully crossed) or inconsistent."""


def _show(items: Sequence[Any]) -> str:
    shown = ", ".join(repr(x) for x in list(items)[:_MAX_SHOWN])
    more = len(items) - _MAX_SHOWN
    return shown + (f" (+{more} more)" if more > 0 else "")


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ReaderStudy:
    """A fully crossed reader study: every reader reads every case in every modality.

    Build it with :func:`load_readings` from a long table; the constructor
    takes the dense arrays and validates them once.

    Parameters
    ----------
    case_ids : tuple of str
        Case identifiers, in the order of the last axis of the arrays.
    reader_ids : tuple of str
        Reader identifiers (second axis).
    modalities : tuple of str
        Reading conditions, e.g. ``("unaided", "aided")`` (first axis).
    truth : numpy.ndarray of shape (n_cases,)
        Reference standard, 1 for a positive (abnormal) case and 0 otherwise;
        both classes must be present.
    scores : numpy.ndarray of shape (n_modalities, n_readers, n_cases)
        Ratings, higher meaning more confident that the case is positive
        (a 1-5 scale, a 0-100 probability, ...). Finite.
    decisions : numpy.ndarray of the same shape, optional
        The reader's binary call (1 = positive), when recorded.
    times : numpy.ndarray of the same shape, optional
        Reading time in seconds; NaN where not recorded.

    Raises
    ------
    ReaderStudyError
        Mismatched shapes, duplicated ids, non-finite scores, labels other
        than 0/1 or a single class, decisions other than 0/1, negative times.
    """

    case_ids: tuple[str, ...]
    reader_ids: tuple[str, ...]
    modalities: tuple[str, ...]
    truth: np.ndarray
    scores: np.ndarray
    decisions: np.ndarray | None = None
    times: np.ndarray | None = None

    def __post_init__(self) -> None:
        _reader_study_iv(self)

    @property
    def n_cases(self) -> int:
        """Number of cases."""
        return len(self.case_ids)

    @property
    def n_readers(self) -> int:
        """Number of readers."""
        return len(self.reader_ids)

    @property
    def n_modalities(self) -> int:
        """Number of modalities (reading conditions)."""
        return len(self.modalities)

    @property
    def n_pos(self) -> int:
        """Number of positive cases."""
        return int(self.truth.sum())

    def modality_index(self, modality: str, *, owner: str = "ReaderStudy") -> int:
        """Position of ``modality`` on the first axis; a clear error names the available ones."""
        if modality not in self.modalities:
            raise ReaderStudyError(
                f"{owner}: modality {modality!r} is not in the reader study, whose modalities "
                f"are {list(self.modalities)}.{did_you_mean(str(modality), self.modalities)} "
                "Pass modalities that the 'modality' column contains."
            )
        return self.modalities.index(modality)

    def select(self, modalities: Sequence[str], *, owner: str = "ReaderStudy.select"
               ) -> ReaderStudy:
        """The study restricted to ``modalities``, in that order."""
        modalities = tuple(str(m) for m in modalities)
        if len(set(modalities)) != len(modalities):
            raise ReaderStudyError(
                f"{owner}: the modalities {list(modalities)} repeat a modality; "
                "name each modality once."
            )
        idx = [self.modality_index(m, owner=owner) for m in modalities]
        return ReaderStudy(
            case_ids=self.case_ids,
            reader_ids=self.reader_ids,
            modalities=modalities,
            truth=self.truth,
            scores=self.scores[idx],
            decisions=None if self.decisions is None else self.decisions[idx],
            times=None if self.times is None else self.times[idx],
        )

    def to_frame(self) -> pd.DataFrame:
        """The long table ``case_id, reader_id, modality, score[, decision, time_s], truth``."""
        t, r, c = self.scores.shape
        frame = pd.DataFrame({
            "case_id": np.tile(np.asarray(self.case_ids, dtype=object), t * r),
            "reader_id": np.tile(np.repeat(np.asarray(self.reader_ids, dtype=object), c), t),
            "modality": np.repeat(np.asarray(self.modalities, dtype=object), r * c),
            "score": self.scores.reshape(-1),
        })
        if self.decisions is not None:
            frame["decision"] = self.decisions.reshape(-1).astype(np.int64)
        if self.times is not None:
            frame["time_s"] = self.times.reshape(-1)
        frame["truth"] = np.tile(self.truth.astype(np.int64), t * r)
        return frame


def _reader_study_iv(study: ReaderStudy) -> None:
    for name in ("case_ids", "reader_ids", "modalities"):
        ids = tuple(str(x) for x in getattr(study, name))
        if len(set(ids)) != len(ids):
            dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique().tolist()
            raise ReaderStudyError(
                f"ReaderStudy: {name} has duplicated values {_show(dup)}; ids must be unique."
            )
        object.__setattr__(study, name, ids)
    shape = (len(study.modalities), len(study.reader_ids), len(study.case_ids))
    if min(shape) == 0:
        raise ReaderStudyError(
            f"ReaderStudy: the study is empty (modalities x readers x cases = {shape}); "
            "it needs at least one modality, one reader and one case."
        )
    truth = np.asarray(study.truth)
    if truth.shape != shape[2:]:
        raise ReaderStudyError(
            f"ReaderStudy: truth has shape {truth.shape}, expected ({shape[2]},) (one label per "
            "case, in the order of case_ids)."
        )
    if truth.dtype == bool:
        truth = truth.astype(np.int8)
    bad = ~np.isin(truth, (0, 1))
    if bad.any():
        raise ReaderStudyError(
            f"ReaderStudy: truth must be 0 (negative) or 1 (positive); {int(bad.sum())} case(s) "
            f"have other values, e.g. case {study.case_ids[int(np.argmax(bad))]!r} = "
            f"{truth[int(np.argmax(bad))]!r}. Recode the reference standard as 0/1."
        )
    truth = truth.astype(np.int8)
    n_pos = int(truth.sum())
    if n_pos == 0 or n_pos == truth.size:
        only = "positive" if n_pos else "negative"
        raise ReaderStudyError(
            f"ReaderStudy: every one of the {truth.size} cases is {only}; ROC analysis needs "
            "both positive and negative cases. Add cases of the missing class."
        )
    object.__setattr__(study, "truth", _readonly(truth))
    scores = np.asarray(study.scores, dtype=np.float64)
    if scores.shape != shape:
        raise ReaderStudyError(
            f"ReaderStudy: scores has shape {scores.shape}, expected (modalities, readers, cases) "
            f"= {shape}."
        )
    if not np.isfinite(scores).all():
        raise ReaderStudyError(
            f"ReaderStudy: {int((~np.isfinite(scores)).sum())} score(s) are NaN or infinite; "
            "every reading needs a finite score."
        )
    object.__setattr__(study, "scores", _readonly(scores))
    if study.decisions is not None:
        dec = np.asarray(study.decisions)
        if dec.shape != shape:
            raise ReaderStudyError(
                f"ReaderStudy: decisions has shape {dec.shape}, expected {shape}."
            )
        if dec.dtype == bool:
            dec = dec.astype(np.int8)
        bad = ~np.isin(dec, (0, 1))
        if bad.any():
            raise ReaderStudyError(
                f"ReaderStudy: decisions must be 0 or 1; {int(bad.sum())} are not. Record the "
                "reader's call as 1 (positive) or 0 (negative)."
            )
        object.__setattr__(study, "decisions", _readonly(dec.astype(np.int8)))
    if study.times is not None:
        times = np.asarray(study.times, dtype=np.float64)
        if times.shape != shape:
            raise ReaderStudyError(f"ReaderStudy: times has shape {times.shape}, expected {shape}.")
        if np.isinf(times).any() or (times < 0).any():
            raise ReaderStudyError(
                "ReaderStudy: reading times must be finite and >= 0 seconds (NaN where not "
                f"recorded); {int((np.isinf(times) | (times < 0)).sum())} are not."
            )
        object.__setattr__(study, "times", _readonly(times))


# -- loading ---------------------------------------------------------------------------------


def _read_source(source: Any, what: str, id_columns: Sequence[str]) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_table(source, dtype={c: str for c in id_columns})
    raise ReaderStudyError(
        f"load_readings: {what} must be a pandas DataFrame or the path of a CSV/Parquet table. "
        f"Got {type(source).__name__} instead."
    )


def _id_strings(values: pd.Series) -> np.ndarray:
    return values.astype(object).map(str).to_numpy(dtype=object)


def _truth_map(truth: Any, readings: pd.DataFrame, case_col: str) -> dict[str, Any]:
    """``case_id -> label`` from a mapping, Series, table or path (or the readings' column)."""
    if truth is None:
        if "truth" not in readings.columns:
            raise ReaderStudyError(
                "load_readings: no truth was given and the reading table has no 'truth' column. "
                "Pass truth= (a mapping case_id -> 0/1, a Series indexed by case_id, or a table "
                "with columns case_id and truth)."
            )
        per_case = readings.groupby(case_col, sort=False)["truth"].nunique(dropna=False)
        varying = per_case.index[per_case > 1].tolist()
        if varying:
            raise ReaderStudyError(
                f"load_readings: the 'truth' column differs between readings of the same case "
                f"for {len(varying)} case(s): {_show(varying)}. A case has one reference standard."
            )
        first = readings.drop_duplicates(case_col)
        return dict(zip(_id_strings(first[case_col]), first["truth"], strict=True))
    if isinstance(truth, (str, os.PathLike)):
        truth = read_table(truth, dtype={"case_id": str})
    if isinstance(truth, pd.DataFrame):
        label_col = next((c for c in ("truth", "label") if c in truth.columns), None)
        if "case_id" not in truth.columns or label_col is None:
            raise ReaderStudyError(
                "load_readings: a truth table needs the columns 'case_id' and 'truth' (or "
                f"'label'); it has {list(truth.columns)}. Rename them."
            )
        dup = truth["case_id"][truth["case_id"].duplicated()].astype(str).unique().tolist()
        if dup:
            raise ReaderStudyError(
                f"load_readings: the truth table lists {len(dup)} case id(s) more than once: "
                f"{_show(dup)}. Keep one row per case."
            )
        return dict(zip(_id_strings(truth["case_id"]), truth[label_col], strict=True))
    if isinstance(truth, pd.Series):
        if truth.index.has_duplicates:
            raise ReaderStudyError(
                "load_readings: the truth Series has duplicated case ids in its index; keep "
                "one label per case."
            )
        return dict(zip(_id_strings(truth.index.to_series()), truth.to_numpy(), strict=True))
    if isinstance(truth, Mapping):
        return {str(k): v for k, v in truth.items()}
    raise ReaderStudyError(
        "load_readings: truth must be a mapping case_id -> 0/1, a pandas Series indexed by "
        f"case_id, a table with columns case_id and truth, or a path. Got "
        f"{type(truth).__name__} instead."
    )


def _label(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number in (0.0, 1.0) else None


def load_readings(
    source: pd.DataFrame | str | os.PathLike[str],
    truth: Any = None,
    *,
    columns: Mapping[str, str] | None = None,
) -> ReaderStudy:
    """Load and validate a reader-study table.

    Parameters
    ----------
    source : pandas.DataFrame or path
        Long table, one row per reading: ``case_id``, ``reader_id``,
        ``modality``, ``score``, optionally ``decision`` (0/1) and ``time_s``
        (seconds; empty where not recorded). CSV, TSV or Parquet when a path.
    truth : mapping, pandas.Series, pandas.DataFrame, path or None
        Reference standard per case: ``{case_id: 0/1}``, a Series indexed by
        case id, or a table with columns ``case_id`` and ``truth`` (or
        ``label``). None reads a ``truth`` column of ``source``. Extra cases
        in ``truth`` are ignored.
    columns : mapping, optional
        Your column names for the roles above, e.g. ``{"reader_id": "rdr"}``.

    Returns
    -------
    ReaderStudy
        Readers, modalities and cases in order of first appearance.

    Raises
    ------
    ReaderStudyError
        A required column is missing, an id is empty, a (case, reader,
        modality) cell is read twice, a score is not a finite number, a
        decision is not 0/1, a time is negative, or the design is not fully
        crossed: the message counts the missing cells per reader and modality
        and lists the first ones.
    AlignmentError
        Cases read but absent from ``truth``.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.readers import ReaderStudyError, load_readings
    >>> rows = [(c, r, m, s) for m in ("unaided", "aided") for r in ("R1", "R2")
    ...         for c, s in zip("abcd", (1, 2, 4, 5))]
    >>> frame = pd.DataFrame(rows, columns=["case_id", "reader_id", "modality", "score"])
    >>> study = load_readings(frame, {"a": 0, "b": 0, "c": 1, "d": 1})
    >>> study.modalities, study.n_readers, study.n_cases, study.n_pos
    (('unaided', 'aided'), 2, 4, 2)
    >>> try:
    ...     load_readings(frame.iloc[1:], {"a": 0, "b": 0, "c": 1, "d": 1})
    ... except ReaderStudyError as err:
    ...     print(str(err).split(" (reader")[0])
    load_readings: the reader study is not fully crossed: 1 of 16
    """
    columns = dict(columns or {})
    unknown = set(columns) - set(READING_COLUMNS) - set(OPTIONAL_COLUMNS) - {"truth"}
    if unknown:
        raise ReaderStudyError(
            f"load_readings: 'columns' maps unknown role(s) {sorted(unknown)}; the roles are "
            f"{list(READING_COLUMNS + OPTIONAL_COLUMNS) + ['truth']}."
        )
    role_of = {role: columns.get(role, role) for role in
               READING_COLUMNS + OPTIONAL_COLUMNS + ("truth",)}
    frame = _read_source(source, "source",
                         [role_of[r] for r in ("case_id", "reader_id", "modality")])
    missing = [role_of[r] for r in READING_COLUMNS if role_of[r] not in frame.columns]
    if missing:
        raise ReaderStudyError(
            f"load_readings: the reading table lacks the column(s) {missing}; it has "
            f"{list(frame.columns)}. Rename them or pass columns={{role: your_column}}."
        )
    frame = frame.rename(columns={v: k for k, v in role_of.items() if v in frame.columns})
    frame = frame.reset_index(drop=True)
    for role in ("case_id", "reader_id", "modality"):
        empty = frame[role].isna()
        if empty.any():
            rows = (np.flatnonzero(empty.to_numpy()) + 1).tolist()
            raise ReaderStudyError(
                f"load_readings: {int(empty.sum())} reading(s) have no {role} (data rows "
                f"{_show(rows)}). Fill or drop them."
            )
    case = _id_strings(frame["case_id"])
    reader = _id_strings(frame["reader_id"])
    modality = _id_strings(frame["modality"])
    key = pd.DataFrame({"case_id": case, "reader_id": reader, "modality": modality})
    dup = key.duplicated(keep=False)
    if dup.any():
        first = key[dup].drop_duplicates().head(_MAX_SHOWN)
        cells = [f"(case {a!r}, reader {b!r}, {c!r})" for a, b, c in first.itertuples(index=False)]
        raise ReaderStudyError(
            f"load_readings: {int(key.duplicated().sum())} reading(s) repeat a (case, reader, "
            f"modality) cell already read, e.g. {', '.join(cells)}. Keep one reading per cell "
            "(a re-read session is another modality)."
        )
    score = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(score)
    if bad.any():
        rows = (np.flatnonzero(bad) + 1).tolist()
        raise ReaderStudyError(
            f"load_readings: {int(bad.sum())} score(s) are missing or not finite numbers (data "
            f"rows {_show(rows)}). Every reading needs a numeric score; drop unread cells and "
            "the readers or cases they belong to."
        )
    case_ids = tuple(dict.fromkeys(case))
    reader_ids = tuple(dict.fromkeys(reader))
    modalities = tuple(dict.fromkeys(modality))
    ci = pd.Index(case_ids).get_indexer(case)
    ri = pd.Index(reader_ids).get_indexer(reader)
    mi = pd.Index(modalities).get_indexer(modality)
    shape = (len(modalities), len(reader_ids), len(case_ids))
    seen = np.zeros(shape, dtype=bool)
    seen[mi, ri, ci] = True
    if not seen.all():
        _raise_not_crossed(seen, modalities, reader_ids, case_ids)
    scores = np.empty(shape)
    scores[mi, ri, ci] = score

    labels = _truth_map(truth, frame, "case_id")
    absent = [c for c in case_ids if c not in labels]
    if absent:
        raise AlignmentError(
            f"load_readings: {len(absent)} case(s) were read but have no truth: {_show(absent)}. "
            "Add them to the reference standard or drop their readings."
        )
    y = [_label(labels[c]) for c in case_ids]
    bad_cases = [c for c, v in zip(case_ids, y, strict=True) if v is None]
    if bad_cases:
        raise ReaderStudyError(
            f"load_readings: the truth of {len(bad_cases)} case(s) is not 0/1, e.g. case "
            f"{bad_cases[0]!r} = {labels[bad_cases[0]]!r}. Recode positives as 1, negatives as 0."
        )

    decisions = None
    if "decision" in frame.columns:
        raw = frame["decision"]
        dec = np.array([_label(v) if not pd.isna(v) else None for v in raw], dtype=object)
        bad = np.array([v is None for v in dec])
        if bad.any():
            rows = (np.flatnonzero(bad) + 1).tolist()
            raise ReaderStudyError(
                f"load_readings: {int(bad.sum())} decision(s) are missing or not 0/1 (data rows "
                f"{_show(rows)}). Record every call as 1 (positive) or 0 (negative), or drop the "
                "'decision' column."
            )
        decisions = np.empty(shape, dtype=np.int8)
        decisions[mi, ri, ci] = dec.astype(np.int8)
    times = None
    if "time_s" in frame.columns:
        raw = frame["time_s"]
        t_values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = (np.isnan(t_values) & raw.notna().to_numpy()) | np.isinf(t_values) | (t_values < 0)
        if bad.any():
            rows = (np.flatnonzero(bad) + 1).tolist()
            raise ReaderStudyError(
                f"load_readings: {int(bad.sum())} reading time(s) are not numbers >= 0 (data "
                f"rows {_show(rows)}). Give seconds, and leave the cell empty when not recorded."
            )
        times = np.full(shape, np.nan)
        times[mi, ri, ci] = t_values
    return ReaderStudy(case_ids=case_ids, reader_ids=reader_ids, modalities=modalities,
                       truth=np.asarray(y, dtype=np.int8), scores=scores, decisions=decisions,
                       times=times)


def _raise_not_crossed(seen: np.ndarray, modalities: tuple[str, ...],
                       reader_ids: tuple[str, ...], case_ids: tuple[str, ...]) -> None:
    miss = np.argwhere(~seen)
    per = {}
    for m, r, _ in miss:
        per[(modalities[m], reader_ids[r])] = per.get((modalities[m], reader_ids[r]), 0) + 1
    per_text = "; ".join(f"reader {r!r} in {m!r}: {n}" for (m, r), n in list(per.items())[:8])
    if len(per) > 8:
        per_text += f"; (+{len(per) - 8} more reader-modality pairs)"
    first = ", ".join(
        f"(reader {reader_ids[r]!r}, {modalities[m]!r}, case {case_ids[c]!r})"
        for m, r, c in miss[:_MAX_SHOWN]
    )
    raise ReaderStudyError(
        f"load_readings: the reader study is not fully crossed: {len(miss)} of {seen.size} "
        f"(reader, modality, case) cells have no reading. Missing per reader and modality: "
        f"{per_text}; first missing cells: {first}. The MRMC analyses here assume every reader "
        "reads every case in every modality: complete the readings, or drop the incomplete "
        "readers or cases before loading."
    )


def resolve_study(readings: ReaderStudy | pd.DataFrame | str | os.PathLike[str],
                  truth: Any = None, *, owner: str) -> ReaderStudy:
    """A :class:`ReaderStudy` from a study, or a table (+ truth) through :func:`load_readings`."""
    if isinstance(readings, ReaderStudy):
        if truth is not None:
            raise ReaderStudyError(
                f"{owner}: 'truth' is already part of the ReaderStudy; pass truth only with a "
                "reading table."
            )
        return readings
    if isinstance(readings, (pd.DataFrame, str, os.PathLike)):
        return load_readings(readings, truth)
    raise ReaderStudyError(
        f"{owner}: 'readings' must be a ReaderStudy, a DataFrame or a table path. Got "
        f"{type(readings).__name__} instead."
    )
