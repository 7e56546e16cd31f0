"""Descriptive tables: Table 1 per partition and missingness per column."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._cohort import Cohort

__all__ = ["table_one", "missingness", "described_columns"]

_MAX_LEVELS = 8


def described_columns(cohort: Cohort) -> list[str]:
    """Columns worth describing: acquisition context, attributes and label certainty."""
    roles = cohort.roles
    names = [roles.site, roles.manufacturer, roles.scanner, roles.protocol,
             *roles.attributes, roles.label_certainty]
    return list(dict.fromkeys(n for n in names if n is not None))


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def table_one(cohort: Cohort, partitions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Characteristics of each partition ("Table 1"), as a long table.

    Parameters
    ----------
    cohort : Cohort
        The included cohort.
    partitions : mapping of str to bool array
        Partition name -> row mask; a partition named ``"all"`` is added first.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable, level, partition, n, percent, mean, sd, summary``.
        Numeric variables have one row (level ``""``) summarised as mean (SD) and
        median; categorical ones one row per level, ``percent`` of the partition's
        images; each variable adds a ``missing`` level when values are missing.
    """
    parts = {"all": np.ones(cohort.n_images, dtype=bool), **dict(partitions)}
    rows: list[dict] = []
    for name, mask in parts.items():
        table = cohort.table.loc[np.asarray(mask, dtype=bool)]
        n = len(table)
        label = table[cohort.roles.label]
        n_pos = int((label == cohort.positive_label).sum())
        rows.append(_count_row("images", "", name, n, n))
        rows.append(_count_row("patients", "", name, int(table[cohort.roles.patient_id].nunique()),
                               None))
        rows.append(_count_row("positive label", "", name, n_pos, n))
        for column in described_columns(cohort):
            values = table[column]
            n_missing = int(values.isna().sum())
            if _is_numeric(values):
                present = values.dropna().astype(float)
                mean = float(present.mean()) if len(present) else np.nan
                sd = float(present.std(ddof=1)) if len(present) > 1 else np.nan
                median = float(present.median()) if len(present) else np.nan
                summary = (f"{mean:.1f} ({sd:.1f}); median {median:.0f}"
                           if len(present) > 1 else "n/a")
                rows.append({"variable": column, "level": "", "partition": name,
                             "n": int(len(present)), "percent": np.nan, "mean": mean, "sd": sd,
                             "summary": summary})
            else:
                counts = values.dropna().astype(str).value_counts()
                levels = sorted(counts.index)
                if len(levels) > _MAX_LEVELS:
                    top = set(counts.index[:_MAX_LEVELS - 1])
                    other = int(counts[~counts.index.isin(top)].sum())
                    levels = sorted(top)
                    counts = counts[counts.index.isin(top)]
                    rows.append(_count_row(column, "other", name, other, n))
                for level in levels:
                    rows.append(_count_row(column, level, name, int(counts[level]), n))
            if n_missing:
                rows.append(_count_row(column, "missing", name, n_missing, n))
    return pd.DataFrame(rows, columns=["variable", "level", "partition", "n", "percent", "mean",
                                       "sd", "summary"])


def _count_row(variable: str, level: str, partition: str, count: int, total: int | None) -> dict:
    percent = 100.0 * count / total if total else np.nan
    summary = f"{count}" if total is None or not total else f"{count} ({percent:.1f}%)"
    return {"variable": variable, "level": level, "partition": partition, "n": count,
            "percent": percent, "mean": np.nan, "sd": np.nan, "summary": summary}


def missingness(cohort: Cohort, partitions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Missing values per column and partition.

    Returns
    -------
    pandas.DataFrame
        Columns ``column, partition, n_missing, n, fraction`` for every column named
        by a role (plus described columns), partitions ``all`` first.
    """
    parts = {"all": np.ones(cohort.n_images, dtype=bool), **dict(partitions)}
    columns = list(dict.fromkeys(cohort.roles.all_columns()))
    rows = []
    for column in columns:
        values = cohort.table[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        for name, mask in parts.items():
            mask = np.asarray(mask, dtype=bool)
            n = int(mask.sum())
            k = int(empty.to_numpy()[mask].sum())
            rows.append({"column": column, "partition": name, "n_missing": k, "n": n,
                         "fraction": k / n if n else np.nan})
    return pd.DataFrame(rows, columns=["column", "partition", "n_missing", "n", "fraction"])
