"""Validation of annotator ratings: an (items x raters) table with missing ratings allowed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__: list[str] = []

_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Ratings:
    """Ratings coded as category indices.

    Attributes
    ----------
    codes : numpy.ndarray of int, shape (n_items, n_raters)
        Index into ``levels`` of each rating, -1 where the rating is missing.
    levels : numpy.ndarray
        The categories, in order (sorted unless the caller gave ``labels``).
    raters : tuple of str
        Rater names (DataFrame columns, or ``"rater_0"``, ...).
    """

    codes: np.ndarray
    levels: np.ndarray
    raters: tuple[str, ...]

    @property
    def present(self) -> np.ndarray:
        return self.codes >= 0

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_raters(self) -> int:
        return int(self.codes.shape[1])

    @property
    def n_ratings(self) -> np.ndarray:
        """Ratings per item."""
        return self.present.sum(axis=1)

    def subset(self, rows: np.ndarray) -> Ratings:
        """The items ``rows`` (same levels and raters)."""
        return Ratings(codes=self.codes[rows], levels=self.levels, raters=self.raters)

    def numeric_levels(self, owner: str, level: str) -> np.ndarray:
        """The levels as floats, for interval and ratio distances."""
        try:
            values = np.asarray(self.levels, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"level={level!r} of {owner} needs numeric ratings; got categories "
                f"{list(self.levels)[:_SHOWN]}. Use level='nominal' (or 'ordinal' with labels= "
                "giving the order), or recode the ratings as numbers."
            ) from None
        if not np.all(np.isfinite(values)):
            raise ValueError(f"level={level!r} of {owner} needs finite numeric ratings.")
        return values


def _frame(ratings: Any, owner: str) -> pd.DataFrame:
    if isinstance(ratings, pd.DataFrame):
        frame = ratings
    else:
        arr = np.asarray(ratings, dtype=object) if not isinstance(ratings, np.ndarray) \
            else ratings
        if arr.ndim != 2:
            raise ValueError(
                f"ratings passed to {owner} must be two-dimensional (n_items, n_raters): one "
                f"row per item and one column per rater, NaN where a rater did not rate. Got "
                f"an array of shape {arr.shape} instead."
            )
        frame = pd.DataFrame(arr, columns=[f"rater_{j}" for j in range(arr.shape[1])])
    if frame.shape[1] < 2:
        raise ValueError(
            f"ratings passed to {owner} must have at least two rater columns; got "
            f"{frame.shape[1]}. Pass one column per rater."
        )
    return frame


def _key(value: Any) -> Any:
    """Numbers (bool, int, float, numpy scalars) compare as floats; anything else as itself."""
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(value)
    return value


def _numeric(frame: pd.DataFrame) -> np.ndarray | None:
    """The ratings as floats (NaN missing), or None when some rating is not a number."""
    try:
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return None


def _levels_from_labels(labels: Sequence[Any], owner: str) -> np.ndarray:
    levels = list(labels)
    if not levels:
        raise ValueError(f"labels passed to {owner} must name at least one category.")
    keys = [_key(v) for v in levels]
    if len(set(keys)) != len(keys):
        raise ValueError(f"labels passed to {owner} contains duplicates: {levels}.")
    if all(isinstance(k, float) for k in keys):
        return np.asarray(keys, dtype=np.float64)
    return np.asarray(levels, dtype=object)


def parse_ratings(ratings: Any, owner: str, *, labels: Sequence[Any] | None = None) -> Ratings:
    """Code ``ratings`` (DataFrame or 2-D array-like, NaN/None/NA missing) as category indices.

    Numbers compare as numbers (``True``, ``1`` and ``1.0`` are one category);
    without ``labels`` the categories are the sorted distinct ratings (numbers
    numerically, anything else by its text). With ``labels`` every rating must
    be one of them.
    """
    frame = _frame(ratings, owner)
    raters = tuple(str(c) for c in frame.columns)
    present = ~np.asarray(frame.isna(), dtype=bool)
    numeric = _numeric(frame)
    if numeric is not None:
        observed = numeric[present]
    else:
        observed = np.asarray([_key(v) for v in frame.to_numpy(dtype=object)[present]],
                              dtype=object)
    if labels is not None:
        levels = _levels_from_labels(labels, owner)
    elif numeric is not None:
        levels = np.unique(observed)
    else:
        uniques = pd.unique(pd.Series(observed, dtype=object))
        if all(isinstance(k, float) for k in uniques):
            levels = np.sort(np.asarray(uniques, dtype=np.float64))
        else:
            levels = np.asarray(sorted(uniques, key=str), dtype=object)
    lookup = {_key(v): i for i, v in enumerate(levels.tolist())}
    index = np.fromiter((lookup.get(k, -1) for k in observed.tolist()), dtype=np.intp,
                        count=observed.size)
    bad = index < 0
    if bad.any():
        unknown = sorted({str(v) for v in observed[bad]})[:_SHOWN]
        raise ValueError(
            f"ratings passed to {owner} contain {int(bad.sum())} value(s) not in labels "
            f"({unknown}). Add them to labels=, or recode the ratings."
        )
    codes = np.full(present.shape, -1, dtype=np.intp)
    codes[present] = index
    return Ratings(codes=codes, levels=levels, raters=raters)


def pair_ratings(r1: Any, r2: Any, owner: str,
                 labels: Sequence[Any] | None = None) -> Ratings:
    """Two raters' ratings as a two-column :class:`Ratings`."""
    a = r1.to_numpy() if isinstance(r1, (pd.Series, pd.Index)) else np.asarray(r1, dtype=object)
    b = r2.to_numpy() if isinstance(r2, (pd.Series, pd.Index)) else np.asarray(r2, dtype=object)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"r1 and r2 passed to {owner} must be one-dimensional (one rating per "
                         f"item). Got shapes {a.shape} and {b.shape}.")
    if a.shape != b.shape:
        raise ValueError(f"r1 and r2 passed to {owner} have different lengths ({a.size} and "
                         f"{b.size}); pass one rating per item from each rater.")
    frame = pd.DataFrame({"r1": pd.Series(a, dtype=object), "r2": pd.Series(b, dtype=object)})
    return parse_ratings(frame, owner, labels=labels)
