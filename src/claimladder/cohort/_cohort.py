"""The cohort: one row per image, with column roles and validation."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import CohortSchemaError, did_you_mean
from ..io import read_table
from ._roles import REQUIRED_ROLES, ColumnRoles

__all__ = ["Cohort", "load_cohort", "format_rows"]

_MAX_LISTED = 5


def format_rows(index: Sequence[int] | pd.Index, *, header_rows: int = 1) -> str:
    """Format table row positions as 1-based file line numbers, e.g. ``"rows 3, 9 (+4 more)"``.

    Row positions count data rows from 0; the file line adds the header line.
    """
    positions = [int(i) + 1 + header_rows for i in list(index)]
    shown = ", ".join(str(p) for p in positions[:_MAX_LISTED])
    more = f" (+{len(positions) - _MAX_LISTED} more)" if len(positions) > _MAX_LISTED else ""
    return f"line{'s' if len(positions) > 1 else ''} {shown}{more}"


def _listing(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(str(v)) for v in list(values)[:_MAX_LISTED])
    more = f" (+{len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else ""
    return shown + more


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Cohort:
    """A table with one row per image and the roles its columns play.

    Parameters
    ----------
    table : pandas.DataFrame
        The user's table, columns under their own names, default RangeIndex.
    roles : ColumnRoles
        Which column plays which role.
    positive_label : object
        Value of the label column that denotes the positive class.
    source : str, optional
        File the table came from, quoted in error messages.

    Notes
    -----
    Rows with a missing label are kept: the cohort flow counts them as an
    exclusion step, so every case stays accounted for.
    """

    table: pd.DataFrame
    roles: ColumnRoles
    positive_label: Any = 1
    source: str | None = None

    def __post_init__(self) -> None:
        _cohort_iv(self)

    # -- columns by role -------------------------------------------------
    def column(self, role: str) -> pd.Series:
        """The column playing ``role`` (raises ``KeyError`` when unassigned)."""
        name = getattr(self.roles, role)
        if name is None:
            raise KeyError(f"No column has the role {role!r} in this cohort.")
        return self.table[name]

    def has_role(self, role: str) -> bool:
        """Whether a column is assigned to ``role``."""
        return getattr(self.roles, role, None) is not None

    @property
    def image_ids(self) -> np.ndarray:
        """Image ids as strings, in row order."""
        return self.column("image_id").astype(str).to_numpy()

    @property
    def patient_ids(self) -> np.ndarray:
        """Patient ids as strings, in row order."""
        return self.column("patient_id").astype(str).to_numpy()

    @property
    def y_true(self) -> np.ndarray:
        """Binary labels (1 = positive class), float with NaN where the label is missing."""
        label = self.column("label")
        y = np.array(label == self.positive_label, dtype=float)
        y[label.isna().to_numpy()] = np.nan
        return y

    @property
    def n_images(self) -> int:
        """Number of rows."""
        return len(self.table)

    @property
    def n_patients(self) -> int:
        """Number of distinct patients."""
        return int(self.column("patient_id").nunique())

    def subset(self, mask: np.ndarray | pd.Series) -> Cohort:
        """Rows where ``mask`` is true, as a new cohort (index reset)."""
        mask = np.asarray(mask, dtype=bool)
        return Cohort(
            table=self.table.loc[mask].reset_index(drop=True),
            roles=self.roles,
            positive_label=self.positive_label,
            source=self.source,
        )

    def describe_source(self) -> str:
        """Name of the source file for messages."""
        return self.source or "the cohort table"


def _cohort_iv(cohort: Cohort) -> None:
    table, roles, where = cohort.table, cohort.roles, cohort.describe_source()
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Cohort.table must be a pandas DataFrame. Got {type(table).__name__}.")
    columns = [str(c) for c in table.columns]
    for role in roles.describe():
        names = getattr(roles, role)
        for name in (names if isinstance(names, tuple) else (names,)):
            if name is not None and name not in columns:
                required = " (required)" if role in REQUIRED_ROLES else ""
                raise CohortSchemaError(
                    f"{where}: column {name!r} for the role {role!r}{required} is missing."
                    f"{did_you_mean(name, columns)} Columns present: {_listing(columns)}. "
                    f"Fix: rename the column in the file, or set `{role} = \"<column>\"` "
                    "under [data.columns] in study.toml."
                )
    for role in ("image_id", "patient_id"):
        col = table[getattr(roles, role)]
        missing = col.isna() | (col.astype(str).str.strip() == "")
        if missing.any():
            raise CohortSchemaError(
                f"{where}: {int(missing.sum())} row(s) have no {role} in column "
                f"{getattr(roles, role)!r} ({format_rows(np.flatnonzero(missing))}). "
                f"Fix: fill in the {role} of every row or remove those rows."
            )
    ids = table[roles.image_id].astype(str)
    duplicated = ids.duplicated(keep=False)
    if duplicated.any():
        dup_values = ids[duplicated].unique()
        raise CohortSchemaError(
            f"{where}: image_id must be unique but {len(dup_values)} value(s) of column "
            f"{roles.image_id!r} repeat ({_listing(dup_values)}; "
            f"{format_rows(np.flatnonzero(duplicated))}). "
            "Fix: give every image its own id (one row per image); several images of one "
            "patient share the patient_id, not the image_id."
        )
    labels = table[roles.label].dropna().unique()
    if len(labels) and cohort.positive_label not in set(labels):
        raise CohortSchemaError(
            f"{where}: no row has the positive label {cohort.positive_label!r} in column "
            f"{roles.label!r} (values present: {_listing(sorted(map(str, labels)))}). "
            "Fix: set `positive_label` under [claim] in study.toml to the value that marks "
            "a positive case."
        )
    if len(labels) > 2:
        raise CohortSchemaError(
            f"{where}: column {roles.label!r} has {len(labels)} distinct values "
            f"({_listing(sorted(map(str, labels)))}), but this version verifies binary claims. "
            "Fix: map the label to two values (positive vs the rest) in the cohort file."
        )


def load_cohort(
    path: str | os.PathLike[str],
    *,
    roles: ColumnRoles | None = None,
    positive_label: Any = 1,
) -> Cohort:
    """Read a cohort table (CSV or Parquet) and validate it against ``roles``.

    Parameters
    ----------
    path : path-like
        CSV or Parquet file, one row per image.
    roles : ColumnRoles, optional
        Column roles; default expects ``image_id``, ``patient_id``, ``label``.
    positive_label : object, default=1
        Label value of the positive class.

    Returns
    -------
    Cohort

    Raises
    ------
    TableReadError
        The file is missing or unreadable.
    CohortSchemaError
        A role's column is missing, ids are missing or duplicated, or labels are unusable.
    """
    roles = roles or ColumnRoles()
    id_columns = {roles.image_id: str, roles.patient_id: str}
    table = read_table(path, dtype=id_columns)
    table.columns = [str(c) for c in table.columns]
    positive_label = _coerce_label(table, roles.label, positive_label)
    return Cohort(table=table, roles=roles, positive_label=positive_label, source=str(path))


def _coerce_label(table: pd.DataFrame, column: str, positive_label: Any) -> Any:
    """Match the type of ``positive_label`` to the label column (``1`` vs ``"1"``)."""
    if column not in table.columns:
        return positive_label
    values = table[column].dropna()
    if not len(values) or positive_label in set(values.unique()):
        return positive_label
    if pd.api.types.is_numeric_dtype(values) and isinstance(positive_label, str):
        try:
            return type(values.iloc[0])(float(positive_label))
        except ValueError:
            return positive_label
    if not pd.api.types.is_numeric_dtype(values):
        return str(positive_label)
    return positive_label
