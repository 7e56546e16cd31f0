"""Fitted preprocessing: which data its statistics came from.

Normalisation statistics, intensity windows, PCA bases, resampling targets:
anything computed from image data and then applied to every image carries
information about the data it was fitted on. Fitted on a test partition, it
leaks that partition into every prediction; fitted on calibration data, it
makes the calibration set part of the model. Only training (development)
data may be used.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .._core import Finding, Rung, Status, did_you_mean
from ._common import PARTITION_KINDS

__all__ = ["FittedTransform", "check_preprocessing_fit"]

_FIT_ALLOWED = ("development",)


def _json_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(float(value)))


@dataclass(frozen=True, slots=True, kw_only=True)
class FittedTransform:
    """A preprocessing step whose statistics were fitted on data, and on which data.

    Parameters
    ----------
    name : str
        What it is, e.g. ``"intensity z-score"`` or ``"PCA whitening"``.
    partition : str
        The partition its statistics were computed on (a name declared in the
        study's ``[partitions]``, e.g. ``"development"``).
    statistics : mapping of str to number or list of numbers, default {}
        The fitted values (e.g. ``{"mean": 412.3, "sd": 88.1}``); JSON-safe and
        finite. Recorded for replay; they are not checked.
    n_images : int, optional
        Number of images it was fitted on.
    description : str, default ""
        How it was fitted.

    Examples
    --------
    >>> from claimladder.leakage import FittedTransform
    >>> t = FittedTransform(name="z-score", partition="development",
    ...                     statistics={"mean": 412.3, "sd": 88.1}, n_images=548)
    >>> t.to_dict()["partition"]
    'development'
    """

    name: str
    partition: str
    statistics: Mapping[str, Any] = field(default_factory=dict)
    n_images: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for attr in ("name", "partition"):
            value = getattr(self, attr)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"The {attr!r} parameter of FittedTransform must be a non-empty string. "
                    f"Got {value!r} instead."
                )
        if not isinstance(self.statistics, Mapping):
            raise TypeError(
                "The 'statistics' parameter of FittedTransform must be a mapping of name to "
                f"number or list of numbers. Got {type(self.statistics).__name__} instead."
            )
        for key, value in self.statistics.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            if not isinstance(key, str) or not all(_json_number(v) for v in values):
                raise ValueError(
                    f"FittedTransform {self.name!r}: statistic {key!r} must be a finite number "
                    f"or a list of finite numbers. Got {value!r} instead."
                )
        if self.n_images is not None and (
            isinstance(self.n_images, bool) or not isinstance(self.n_images, int)
            or self.n_images < 1
        ):
            raise ValueError(
                "The 'n_images' parameter of FittedTransform must be an int >= 1 or None. "
                f"Got {self.n_images!r} instead."
            )
        object.__setattr__(self, "statistics", {
            k: list(v) if isinstance(v, (list, tuple)) else v
            for k, v in self.statistics.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"name": self.name, "partition": self.partition,
                "statistics": dict(self.statistics), "n_images": self.n_images,
                "description": self.description}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedTransform:
        """Inverse of :meth:`to_dict` (also reads a study.toml ``[[preprocessing]]`` table)."""
        return cls(name=data.get("name"), partition=data.get("partition"),
                   statistics=dict(data.get("statistics") or {}),
                   n_images=data.get("n_images"), description=data.get("description") or "")


def check_preprocessing_fit(
    transforms: Sequence[FittedTransform],
    kinds: Mapping[str, str],
    *,
    sealed_names: Collection[str] = (),
) -> Finding:
    """Were all fitted preprocessing steps fitted on training data only?

    Parameters
    ----------
    transforms : sequence of FittedTransform
        Every fitted preprocessing step of the model under test.
    kinds : mapping of str to str
        Partition name -> kind (``development``, ``calibration``, ``internal_test``,
        ``external``), as in the study's partitions.
    sealed_names : collection of str, optional
        Partitions with a seal (nothing may be fitted on them whatever their kind).

    Returns
    -------
    Finding
        ``leakage.preprocessing_fit`` (rung 1): fail when any transform was fitted on a
        partition that is not of kind ``development`` (a test, external, calibration or
        sealed partition); pass otherwise; ``not_evaluable`` when no transform is
        declared. The table lists each transform, its partition and kind (statistics
        stay in ``params``).

    Raises
    ------
    ValueError
        A transform names a partition that ``kinds`` does not declare (the message
        suggests the closest name).

    Examples
    --------
    >>> from claimladder.leakage import FittedTransform, check_preprocessing_fit
    >>> kinds = {"development": "development", "internal_test": "internal_test"}
    >>> ok = FittedTransform(name="z-score", partition="development")
    >>> check_preprocessing_fit([ok], kinds).status.value
    'pass'
    >>> bad = FittedTransform(name="PCA", partition="internal_test")
    >>> check_preprocessing_fit([ok, bad], kinds).status.value
    'fail'
    """
    transforms = list(transforms)
    for t in transforms:
        if not isinstance(t, FittedTransform):
            raise TypeError(
                "The 'transforms' parameter of check_preprocessing_fit must hold "
                f"FittedTransform objects. Got {type(t).__name__}."
            )
        if t.partition not in kinds:
            raise ValueError(
                f"FittedTransform {t.name!r} names partition {t.partition!r}, which is not "
                f"declared.{did_you_mean(t.partition, list(kinds))} Declared partitions: "
                f"{', '.join(map(repr, kinds))}."
            )
    sealed = set([sealed_names] if isinstance(sealed_names, str) else sealed_names)
    criterion = "every fitted preprocessing step is fitted on development (training) data"
    if not transforms:
        return Finding(
            check="leakage.preprocessing_fit", rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
            message=("No fitted preprocessing was declared (study.toml [[preprocessing]]: name, "
                     "partition, statistics), so whether normalisation statistics came from "
                     "training data only was not verified."),
            criterion=criterion)
    rows = []
    for t in transforms:
        kind = kinds[t.partition]
        allowed = kind in _FIT_ALLOWED and t.partition not in sealed
        reason = ("" if allowed else "sealed partition" if t.partition in sealed
                  else f"{kind} partition" if kind in PARTITION_KINDS else f"kind {kind!r}")
        rows.append({"transform": t.name, "partition": t.partition, "kind": kind,
                     "n_images": t.n_images, "statistics": ", ".join(t.statistics) or "-",
                     "fitted_on_training_data": allowed, "problem": reason})
    table = pd.DataFrame(rows)
    bad = table[~table["fitted_on_training_data"]]
    params = {"transforms": [t.to_dict() for t in transforms]}
    if len(bad):
        listed = "; ".join(f"{r.transform!r} on {r.partition!r} ({r.problem})"
                           for r in bad.itertuples())
        return Finding(
            check="leakage.preprocessing_fit", rung=Rung.INTERNAL, status=Status.FAIL,
            message=(f"{len(bad)} of {len(table)} fitted preprocessing step(s) were fitted on "
                     f"data other than the training data: {listed}. Their statistics carry "
                     "that data into every prediction; refit them on the development "
                     "partition and re-evaluate."),
            criterion=criterion, table=table, params=params)
    return Finding(
        check="leakage.preprocessing_fit", rung=Rung.INTERNAL, status=Status.PASS,
        message=(f"All {len(table)} fitted preprocessing step(s) were fitted on development "
                 "data: " + ", ".join(repr(n) for n in table["transform"]) + "."),
        criterion=criterion, table=table, params=params)
