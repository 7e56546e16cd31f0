"""The tuning ledger: what was fitted on which partition; nothing may be fitted on a test set."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .._core import Finding, Rung, Status, atomic_write_text, check_option, check_positive_int
from ._common import SplitFileError, read_json_file

__all__ = [
    "FIT_KINDS",
    "FitRecord",
    "TuningLedger",
    "check_fit_partition",
    "is_test_partition",
    "read_ledger",
    "write_ledger",
]

LEDGER_FORMAT = "claimladder.tuning_ledger"
LEDGER_FORMAT_VERSION = "1"
#: What can be fitted; ``preprocessing`` covers normalization statistics, resampling
#: targets, intensity windows and any other statistic computed from image data.
FIT_KINDS = ("model", "preprocessing", "threshold", "recalibration", "hyperparameters",
             "feature_selection", "other")
FitKind = Literal["model", "preprocessing", "threshold", "recalibration", "hyperparameters",
                  "feature_selection", "other"]
#: Check id of a ledger record by kind: statistics of the images themselves fitted on the
#: wrong data are leakage; every other choice is a provenance (tuning) problem.
_CHECK_IDS = {"preprocessing": "leakage.preprocessing_fit"}
_DEFAULT_CHECK = "provenance.tuning_ledger"


@dataclass(frozen=True, slots=True, kw_only=True)
class FitRecord:
    """One thing that was fitted, and the data it was fitted on.

    Parameters
    ----------
    kind : {'model', 'preprocessing', 'threshold', 'recalibration', 'hyperparameters', \
'feature_selection', 'other'}
        What was fitted.
    partition : str
        Name of the partition it was fitted on (``"development"``, ``"calibration"``).
    n_images : int
        Number of images used for the fit.
    description : str, default=""
        What exactly, e.g. ``"intensity mean and std"`` or ``"Platt scaling"``.
    n_patients : int, optional
        Number of patients used.
    data_sha256 : str, optional
        Hash of the data used (a split's or seal's ``sha256``).
    fitted_at : str, optional
        When (ISO 8601).
    params : dict
        JSON-safe fitted values or settings (e.g. ``{"threshold": 0.37}``).
    """

    kind: FitKind
    partition: str
    n_images: int
    description: str = ""
    n_patients: int | None = None
    data_sha256: str | None = None
    fitted_at: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_option(self.kind, FIT_KINDS, param="kind", owner="FitRecord")
        if not isinstance(self.partition, str) or not self.partition:
            raise ValueError(
                "The 'partition' parameter of FitRecord must be a non-empty partition name. "
                f"Got {self.partition!r} instead."
            )
        object.__setattr__(self, "n_images", check_positive_int(
            self.n_images, param="n_images", owner="FitRecord"))
        if self.n_patients is not None:
            object.__setattr__(self, "n_patients", check_positive_int(
                self.n_patients, param="n_patients", owner="FitRecord"))
        object.__setattr__(self, "params", dict(self.params))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"kind": self.kind, "partition": self.partition, "n_images": self.n_images,
                "description": self.description, "n_patients": self.n_patients,
                "data_sha256": self.data_sha256, "fitted_at": self.fitted_at,
                "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in ("kind", "partition", "n_images")},
                   **{k: data.get(k) for k in ("n_patients", "data_sha256", "fitted_at")},
                   description=data.get("description") or "",
                   params=dict(data.get("params") or {}))


def is_test_partition(name: str, sealed_names: Collection[str] = (),
                      test_names: Collection[str] = ()) -> bool:
    """Whether nothing may be fitted on partition ``name``.

    A partition is off-limits when it is sealed, named in ``test_names``, called
    ``internal_test``, or named ``external...`` (the names :func:`split_cohort` and
    the study spec give to test sets).

    Examples
    --------
    >>> is_test_partition("external_C"), is_test_partition("calibration")
    (True, False)
    """
    return (name in set(sealed_names) or name in set(test_names) or name == "internal_test"
            or name.startswith("external"))


def check_fit_partition(
    record: FitRecord,
    sealed_names: Collection[str],
    *,
    test_names: Collection[str] = (),
) -> Finding:
    """Fail when something was fitted on a sealed or test partition.

    Parameters
    ----------
    record : FitRecord
    sealed_names : collection of str
        Names of the sealed partitions.
    test_names : collection of str, optional
        Further test partition names (see :func:`is_test_partition` for the defaults).

    Returns
    -------
    Finding
        Rung 1 (internal validation). The check id is ``leakage.preprocessing_fit``
        for ``kind="preprocessing"`` (image statistics fitted on test data leak it
        into every prediction) and ``provenance.tuning_ledger`` for every other
        kind. ``fail`` when the partition is sealed or a test partition, else ``pass``.

    Examples
    --------
    >>> r = FitRecord(kind="threshold", partition="internal_test", n_images=200)
    >>> check_fit_partition(r, sealed_names=["internal_test"]).status.value
    'fail'
    """
    if isinstance(sealed_names, str):
        sealed_names = [sealed_names]
    if isinstance(test_names, str):
        test_names = [test_names]
    check = _CHECK_IDS.get(record.kind, _DEFAULT_CHECK)
    what = record.kind + (f" ({record.description})" if record.description else "")
    sealed = record.partition in set(sealed_names)
    if sealed or is_test_partition(record.partition, (), test_names):
        kind = "sealed" if sealed else "test"
        status = Status.FAIL
        message = (f"The {what} was fitted on the {kind} partition {record.partition!r} "
                   f"({record.n_images} images), so results on it are optimistic. Fit it on "
                   "development or calibration data and re-evaluate.")
    else:
        status = Status.PASS
        message = (f"The {what} was fitted on {record.partition!r} ({record.n_images} images), "
                   "not on a sealed or test partition.")
    return Finding(check=check, rung=Rung.INTERNAL, status=status, message=message,
                   criterion="nothing is fitted on a sealed or test partition",
                   params=record.to_dict())


@dataclass(frozen=True, slots=True, kw_only=True)
class TuningLedger:
    """Every fit made while building the model under test, in order.

    Examples
    --------
    >>> ledger = TuningLedger().add(FitRecord(kind="preprocessing", partition="development",
    ...                                       n_images=800, description="z-score"))
    >>> ledger = ledger.add(FitRecord(kind="threshold", partition="calibration", n_images=100))
    >>> [f.status.value for f in ledger.check(sealed_names=["internal_test"])]
    ['pass', 'pass']
    """

    records: tuple[FitRecord, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))
        for record in self.records:
            if not isinstance(record, FitRecord):
                raise TypeError(
                    f"TuningLedger.records must hold FitRecord objects. Got "
                    f"{type(record).__name__}."
                )

    def add(self, record: FitRecord) -> TuningLedger:
        """A new ledger with ``record`` appended."""
        return TuningLedger(records=(*self.records, record))

    def check(self, sealed_names: Collection[str], *,
              test_names: Collection[str] = ()) -> list[Finding]:
        """:func:`check_fit_partition` for every record, in order."""
        return [check_fit_partition(r, sealed_names, test_names=test_names)
                for r in self.records]

    def to_frame(self) -> pd.DataFrame:
        """One row per record."""
        columns = ["kind", "partition", "n_images", "description", "n_patients", "data_sha256",
                   "fitted_at"]
        return pd.DataFrame([{c: r.to_dict()[c] for c in columns} for r in self.records],
                            columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary, the content of the ledger file."""
        return {"format": LEDGER_FORMAT, "format_version": LEDGER_FORMAT_VERSION,
                "records": [r.to_dict() for r in self.records]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuningLedger:
        """Inverse of :meth:`to_dict`."""
        return cls(records=tuple(FitRecord.from_dict(r) for r in data.get("records", ())))

    @classmethod
    def from_records(cls, records: Iterable[FitRecord]) -> TuningLedger:
        """A ledger holding ``records``."""
        return cls(records=tuple(records))


def write_ledger(ledger: TuningLedger, path: str | os.PathLike[str]) -> Path:
    """Write the ledger as JSON, atomically."""
    text = json.dumps(ledger.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_ledger(path: str | os.PathLike[str]) -> TuningLedger:
    """Read a ledger file.

    Raises
    ------
    SplitFileError
        The file is missing, not JSON, not a ledger, or a record is invalid.
    """
    data = read_json_file(path, LEDGER_FORMAT, what="tuning ledger")
    try:
        return TuningLedger.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise SplitFileError(
            f"{path}: malformed tuning ledger ({type(error).__name__}: {error}). Fix: each "
            "record needs kind, partition and n_images."
        ) from error
