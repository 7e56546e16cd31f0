"""Metadata corruption: missing, wrong and shuffled fields, for models that take metadata."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._core import RngLike, check_rng
from ._base import GradedPerturbation, check_nonnegative, check_range, image_seeds

__all__ = [
    "MetadataPerturbation",
    "MetadataResult",
    "MissingMetadata",
    "RandomMetadataPerturbation",
    "RandomMissingMetadata",
    "RandomShuffledMetadata",
    "RandomWrongMetadata",
    "ShuffledMetadata",
    "WrongMetadata",
]

_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MetadataResult:
    """A corrupted metadata table and what changed.

    Parameters
    ----------
    metadata : pandas.DataFrame
        Same index, columns and dtypes where possible as the input.
    changes : pandas.DataFrame
        One row per corrupted cell: ``row`` (position), ``column``,
        ``before``, ``after``.
    """

    metadata: pd.DataFrame
    changes: pd.DataFrame


def _check_columns(columns: Any, owner: str) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        return (columns,)
    out = tuple(str(c) for c in columns)
    if not out:
        raise ValueError(f"The 'columns' parameter of {owner} must name at least one column.")
    return out


class MetadataPerturbation(GradedPerturbation):
    """Corrupts a fraction of the cells of a metadata table.

    Each row draws, from its own seed, one uniform number per column; a cell
    is corrupted when its number is below ``fraction``. With one seed, a
    higher severity therefore corrupts a superset of the cells.
    """

    __slots__ = ()
    kind: ClassVar[str] = "metadata"
    uses_rng: ClassVar[bool] = True

    @property
    def is_identity(self) -> bool:
        return self.fraction == 0

    def _columns(self, frame: pd.DataFrame) -> list[Any]:
        if self.columns is None:
            return list(frame.columns)
        lookup = {str(c): c for c in frame.columns}
        missing = [c for c in self.columns if c not in lookup]
        if missing:
            raise KeyError(f"{type(self).__name__} got columns {missing} that the metadata table "
                           f"does not have; it has {list(lookup)}.")
        return [lookup[c] for c in self.columns]

    def __call__(self, metadata: pd.DataFrame, *, rng: RngLike | Sequence[int] = None
                 ) -> pd.DataFrame:
        """Corrupt ``metadata`` (see :meth:`apply`); returns only the table."""
        return self.apply(metadata, rng=rng).metadata

    def apply(self, metadata: pd.DataFrame, *, rng: RngLike | Sequence[int] = None
              ) -> MetadataResult:
        """Corrupt a metadata table.

        Parameters
        ----------
        metadata : pandas.DataFrame
            One row per image.
        rng : int, Generator, SeedSequence, None, or sequence of int
            Source of the per-row seeds, or the seeds themselves.

        Returns
        -------
        MetadataResult
        """
        owner = type(self).__name__
        if not isinstance(metadata, pd.DataFrame):
            raise TypeError(f"{owner} corrupts a pandas.DataFrame of metadata. Got "
                            f"{type(metadata).__name__}.")
        columns = self._columns(metadata)
        seeds = image_seeds(rng, len(metadata), owner=owner)
        out = metadata.copy()
        if self.is_identity or not columns or not len(metadata):
            return MetadataResult(metadata=out, changes=_changes([]))
        draws = np.empty((len(metadata), len(columns)))
        gens = [np.random.default_rng(int(s)) for s in seeds]
        for i, gen in enumerate(gens):
            draws[i] = gen.random(len(columns))
        hit = draws < self.fraction
        records = []
        for j, column in enumerate(columns):
            rows = np.flatnonzero(hit[:, j])
            if rows.size == 0:
                continue
            before = metadata[column].to_numpy(dtype=object)
            after = self._corrupt(before, rows, gens, seeds)
            after_rows = after[rows]
            series = pd.Series(after, index=metadata.index, dtype=object)
            try:
                out[column] = series.astype(metadata[column].dtype)
            except (TypeError, ValueError):
                out[column] = series
            records += [(int(r), str(column), before[r], a)
                        for r, a in zip(rows, after_rows, strict=True)]
        return MetadataResult(metadata=out, changes=_changes(records))

    @abc.abstractmethod
    def _corrupt(self, values: np.ndarray, rows: np.ndarray, gens: list[np.random.Generator],
                 seeds: np.ndarray) -> np.ndarray:
        """New values of one column (object array) with ``rows`` corrupted."""


def _changes(records: list[tuple[Any, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=["row", "column", "before", "after"])
    return frame.astype({"before": object, "after": object})


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class MissingMetadata(MetadataPerturbation):
    """Missing fields: a fraction of cells become NA (an absent DICOM tag, an unfilled form).

    Parameters
    ----------
    fraction : float, default 0.1
        Probability that each cell is blanked, in [0, 1].
    columns : tuple of str, optional
        Columns to corrupt; default all.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.robustness import MissingMetadata
    >>> meta = pd.DataFrame({"age": [30.0, 40.0, 50.0, 60.0], "sex": ["F", "M", "F", "M"]})
    >>> result = MissingMetadata(fraction=0.5, columns=("age",)).apply(meta, rng=0)
    >>> int(result.metadata["age"].isna().sum()) == len(result.changes)
    True
    """

    fraction: float = 0.1
    columns: tuple[str, ...] | None = None

    name: ClassVar[str] = "metadata_missing"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"fraction": f} for f in _FRACTIONS)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "fraction", check_nonnegative(
            self.fraction, param="fraction", owner=owner, upper=1.0))
        object.__setattr__(self, "columns", _check_columns(self.columns, owner))

    def _corrupt(self, values, rows, gens, seeds):
        out = values.copy()
        out[rows] = None
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class WrongMetadata(MetadataPerturbation):
    """Wrong fields: a fraction of cells take another value seen in the same column.

    Parameters
    ----------
    fraction : float, default 0.1
        Probability that each cell is replaced, in [0, 1].
    columns : tuple of str, optional
        Columns to corrupt; default all.

    Notes
    -----
    The replacement is drawn uniformly (with the row's seed) from the
    column's distinct non-missing values other than the current one: a
    plausible but wrong entry (the wrong sex, another scanner, a mistyped
    age). A column with a single distinct value cannot be made wrong and
    is left unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.robustness import WrongMetadata
    >>> meta = pd.DataFrame({"sex": ["F", "M"] * 4})
    >>> result = WrongMetadata(fraction=1.0).apply(meta, rng=0)
    >>> result.metadata["sex"].tolist()
    ['M', 'F', 'M', 'F', 'M', 'F', 'M', 'F']
    """

    fraction: float = 0.1
    columns: tuple[str, ...] | None = None

    name: ClassVar[str] = "metadata_wrong"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"fraction": f} for f in _FRACTIONS)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "fraction", check_nonnegative(
            self.fraction, param="fraction", owner=owner, upper=1.0))
        object.__setattr__(self, "columns", _check_columns(self.columns, owner))

    def _corrupt(self, values, rows, gens, seeds):
        out = values.copy()
        pool = pd.unique(pd.Series([v for v in values if not _isna(v)], dtype=object))
        if len(pool) < 2:
            return out
        for r in rows:
            others = [v for v in pool if _isna(values[r]) or v != values[r]]
            out[r] = others[int(gens[r].integers(len(others)))]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ShuffledMetadata(MetadataPerturbation):
    """Shuffled fields: the selected cells of a column trade values (records mixed up).

    Parameters
    ----------
    fraction : float, default 0.1
        Probability that each cell takes part in the shuffle, in [0, 1].
    columns : tuple of str, optional
        Columns to corrupt; default all.

    Notes
    -----
    The selected cells of each column are put in a random order (drawn from
    the selected rows' seeds) and each takes the value of the next one,
    cyclically, so no selected cell keeps its own entry (it may receive an
    equal value from another row).

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.robustness import ShuffledMetadata
    >>> meta = pd.DataFrame({"age": [10, 20, 30, 40, 50, 60]})
    >>> out = ShuffledMetadata(fraction=1.0)(meta, rng=0)
    >>> sorted(out["age"]) == sorted(meta["age"]), bool((out["age"] != meta["age"]).all())
    (True, True)
    """

    fraction: float = 0.1
    columns: tuple[str, ...] | None = None

    name: ClassVar[str] = "metadata_shuffled"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"fraction": f} for f in _FRACTIONS)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "fraction", check_nonnegative(
            self.fraction, param="fraction", owner=owner, upper=1.0))
        object.__setattr__(self, "columns", _check_columns(self.columns, owner))

    def _corrupt(self, values, rows, gens, seeds):
        out = values.copy()
        if rows.size < 2:
            return out
        digest = hashlib.sha256(b"|".join(str(int(seeds[r])).encode() for r in rows))
        order = rows[np.random.default_rng(int(digest.hexdigest()[:15], 16)).permutation(
            rows.size)]
        out[order] = values[np.roll(order, -1)]
        return out


class RandomMetadataPerturbation:
    """Draws a metadata perturbation's ``fraction`` once per table, then delegates."""

    __slots__ = ()
    deterministic: ClassVar[type[MetadataPerturbation]]
    kind: ClassVar[str] = "metadata"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "fraction", check_range(self.fraction, param="fraction",
                                                         owner=owner, upper=1.0))
        object.__setattr__(self, "columns", _check_columns(self.columns, owner))

    @property
    def name(self) -> str:
        """``"random_"`` + the deterministic name."""
        return f"random_{self.deterministic.name}"

    @property
    def is_identity(self) -> bool:
        return self.fraction == (0.0, 0.0)

    def describe(self) -> str:
        """Canonical text, e.g. ``"random_metadata_missing(fraction=(0.0, 0.2), columns=None)"``."""
        return f"{self.name}(fraction={self.fraction!r}, columns={self.columns!r})"

    def __call__(self, metadata: pd.DataFrame, *, rng: RngLike = None) -> pd.DataFrame:
        """Corrupt ``metadata`` (see :meth:`apply`); returns only the table."""
        return self.apply(metadata, rng=rng).metadata

    def apply(self, metadata: pd.DataFrame, *, rng: RngLike = None) -> MetadataResult:
        """Draw ``fraction`` from ``rng``, then corrupt with per-row seeds drawn from it.

        The drawn fraction is recorded in a ``fraction`` column of ``changes``.
        """
        gen = check_rng(rng)
        fraction = float(gen.uniform(*self.fraction))
        result = self.deterministic(fraction=fraction, columns=self.columns).apply(
            metadata, rng=gen)
        return MetadataResult(metadata=result.metadata,
                              changes=result.changes.assign(fraction=fraction))


_RANDOM_DOC = """{what} with ``fraction`` drawn uniformly from a range once per table.

    Parameters
    ----------
    fraction : (float, float) or float, default (0.0, 0.2)
        Range of :class:`{det}`'s ``fraction`` (the corruption rate of one
        export); a float ``b`` means ``(0, b)``.
    columns : tuple of str, optional
        Columns to corrupt; default all.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomMissingMetadata(RandomMetadataPerturbation):
    fraction: tuple[float, float] = (0.0, 0.2)
    columns: tuple[str, ...] | None = None
    deterministic: ClassVar[type[MetadataPerturbation]] = MissingMetadata


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomWrongMetadata(RandomMetadataPerturbation):
    fraction: tuple[float, float] = (0.0, 0.2)
    columns: tuple[str, ...] | None = None
    deterministic: ClassVar[type[MetadataPerturbation]] = WrongMetadata


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomShuffledMetadata(RandomMetadataPerturbation):
    fraction: tuple[float, float] = (0.0, 0.2)
    columns: tuple[str, ...] | None = None
    deterministic: ClassVar[type[MetadataPerturbation]] = ShuffledMetadata


for _cls, _what in ((RandomMissingMetadata, "Missing fields"),
                    (RandomWrongMetadata, "Wrong fields"),
                    (RandomShuffledMetadata, "Shuffled fields")):
    _cls.__doc__ = _RANDOM_DOC.format(what=_what, det=_cls.deterministic.__name__)
