"""Subgroup labels: attribute values, age bands, binned numbers, 2-way intersections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

__all__ = ["MISSING", "subgroup_labels", "age_band_labels", "intersection_labels"]

#: Label of rows whose attribute is missing: audited as its own group, never dropped.
MISSING = "missing"
_MAX_LEVELS_BEFORE_BINNING = 10


def age_band_labels(age: pd.Series, bands: Sequence[float]) -> pd.Series:
    """Band ages by the edges ``bands``: ``[18, 40, 65]`` gives ``<18, 18-39, 40-64, >=65``.

    Examples
    --------
    >>> age_band_labels(pd.Series([10, 18, 39.5, 64, 65, None]), [18, 40, 65]).tolist()
    ['<18', '18-39', '18-39', '40-64', '>=65', 'missing']
    """
    edges = [float(b) for b in bands]
    values = pd.to_numeric(age, errors="coerce").to_numpy(dtype=float)
    names = [f"<{edges[0]:g}"]
    names += [f"{lo:g}-{hi - 1:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    names.append(f">={edges[-1]:g}")
    index = np.searchsorted(edges, values, side="right")
    labels = np.array(names, dtype=object)[np.clip(index, 0, len(names) - 1)]
    labels[np.isnan(values)] = MISSING
    return pd.Series(labels, index=age.index, name=age.name)


def _quartile_labels(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    edges = np.unique(np.nanquantile(numbers.to_numpy(dtype=float), [0.25, 0.5, 0.75]))
    return age_band_labels(numbers, edges.tolist())


def subgroup_labels(
    table: pd.DataFrame,
    attributes: Sequence[str],
    *,
    age_column: str | None = None,
    age_bands: Sequence[float] | None = None,
) -> pd.DataFrame:
    """One string label column per attribute.

    Categorical values are used as they are; the age column is banded by
    ``age_bands``; other numeric columns with more than 10 distinct values are
    cut at their quartiles. Missing values become the group :data:`MISSING`.
    """
    out = {}
    for name in attributes:
        column = table[name]
        if name == age_column and age_bands:
            out[name] = age_band_labels(column, age_bands)
        elif (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
              and column.nunique() > _MAX_LEVELS_BEFORE_BINNING):
            out[name] = _quartile_labels(column)
        else:
            labels = column.astype(object).where(column.notna(), MISSING).astype(str)
            out[name] = labels.str.strip().replace("", MISSING)
    return pd.DataFrame(out, index=table.index)


def intersection_labels(labels: pd.DataFrame) -> Mapping[str, pd.Series]:
    """All 2-way intersections ``"a x b" -> "value_a & value_b"`` of the label columns."""
    return {f"{a} x {b}": labels[a] + " & " + labels[b]
            for a, b in combinations(labels.columns, 2)}
