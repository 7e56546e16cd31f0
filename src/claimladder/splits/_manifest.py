"""The split manifest: which partition every image is in, how that was decided, and a hash."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import atomic_write_text, check_option, table_from_dict, table_to_dict
from ..cohort import Cohort
from ._common import (
    EXCLUDED_PREFIX,
    IntegrityError,
    SplitError,
    SplitFileError,
    listing,
    read_json_file,
    utc_now,
)
from ._splitters import (
    EXCLUDED_GAP,
    EXCLUDED_STRADDLING,
    TEST,
    TRAIN,
    GroupHoldout,
    LeaveOneSiteOut,
    PatientKFold,
    ScannerHoldout,
    TemporalSplit,
    column_for,
    nested_partitions,
)

__all__ = ["SPLIT_BY", "Split", "read_split", "split_cohort", "split_sha256", "write_split"]

#: ``format`` field of a split file, so that a seal or evidence file is not read as one.
SPLIT_FORMAT = "claimladder.split"
SPLIT_FORMAT_VERSION = "1"
#: What :func:`split_cohort` can split by.
SPLIT_BY = ("patient", "site", "time", "scanner", "protocol", "manufacturer")
_COLUMNS = ("image_id", "patient_id", "partition")
_FORBIDDEN = ("\t", "\n", "\r")


def split_sha256(image_ids: Iterable[Any], partitions: Iterable[Any]) -> str:
    """SHA-256 of the assignment: sorted ``"<image_id>\\t<partition>\\n"`` lines, UTF-8.

    The same digest comes out of ``LC_ALL=C sort lines.tsv | sha256sum`` on a file
    holding those lines, so a reviewer can check it without claimladder. Patient ids
    are not part of it, so re-pseudonymizing patients keeps the digest.

    Examples
    --------
    The digest below equals that of ``printf 'a\\ttrain\\nb\\ttest\\n' | sha256sum``:

    >>> split_sha256(["b", "a"], ["test", "train"])[:16]
    '07c52948af8d69bc'
    """
    lines = sorted(f"{i}\t{p}\n" for i, p in zip(image_ids, partitions, strict=True))
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _partition_rank(name: str) -> tuple[int, str]:
    fixed = {"development": 0, "calibration": 1, "internal_test": 2}
    if name in fixed:
        return fixed[name], ""
    if name.startswith(EXCLUDED_PREFIX):
        return 6, name
    if name.startswith("fold_"):
        suffix = name[len("fold_"):]
        return 3, suffix.zfill(12) if suffix.isdigit() else suffix
    if name.startswith("external"):
        return 4, name
    return 5, name


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Split:
    """A split manifest: the partition of every image, its patient, and how it was made.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``image_id``, ``patient_id``, ``partition`` (one row per image).
        Partitions named ``excluded_*`` hold rows on no side of the split.
    method : str
        Splitter that produced it (``"PatientKFold"``, ``"TemporalSplit"``...).
    params : dict
        Its JSON-safe parameters.
    seed : int, optional
        Seed of the random assignment (``None`` for deterministic splitters).
    info : dict
        JSON-safe counts: per partition, straddling patients, gap images.
    created_at : str, optional
        UTC time of creation (ISO 8601); not part of the hash.

    Attributes
    ----------
    sha256 : str
        :func:`split_sha256` of the table, computed on construction.

    Raises
    ------
    SplitError
        A patient is in two partitions (``excluded_*`` aside), an image id repeats,
        or an id contains a tab or line break.
    """

    table: pd.DataFrame
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        _split_iv(self)

    @property
    def names(self) -> list[str]:
        """Partition names: development, calibration, internal_test, folds, external, excluded."""
        return sorted(set(self.table["partition"].tolist()), key=_partition_rank)

    @property
    def n_images(self) -> int:
        """Number of images in the manifest."""
        return len(self.table)

    def image_ids(self, name: str) -> list[str]:
        """Image ids of one partition, in manifest order."""
        self._check_name(name)
        return self.table.loc[self.table["partition"] == name, "image_id"].tolist()

    def partition_of(self, image_ids: Iterable[Any]) -> np.ndarray:
        """Partition of each given image id (``None`` where the id is not in the manifest)."""
        lookup = dict(zip(self.table["image_id"], self.table["partition"], strict=True))
        return np.array([lookup.get(str(i)) for i in image_ids], dtype=object)

    def masks(self, image_ids: Iterable[Any]) -> dict[str, np.ndarray]:
        """Boolean mask per partition over ``image_ids`` (e.g. ``cohort.image_ids``)."""
        parts = self.partition_of(image_ids)
        return {name: parts == name for name in self.names}

    def cv(self, image_ids: Iterable[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``fold_*`` partitions as ``(train, test)`` positions over ``image_ids``.

        The list can be passed as ``cv=`` to scikit-learn; rows not in the manifest
        or in an ``excluded_*`` partition are on neither side.

        Raises
        ------
        SplitError
            The manifest has no ``fold_*`` partition.
        """
        folds = [n for n in self.names if n.startswith("fold_")]
        if not folds:
            raise SplitError(
                f"This split ({self.method}) has no fold_* partitions ({listing(self.names)}). "
                "Fix: make a k-fold or leave-one-site-out split (split_cohort with n_splits, "
                "or by='site' without held_out)."
            )
        parts = self.partition_of(image_ids)
        in_folds = np.isin(parts, folds)
        return [(np.flatnonzero(in_folds & (parts != f)), np.flatnonzero(parts == f))
                for f in folds]

    def counts(self) -> pd.DataFrame:
        """``partition, n_images, n_patients`` in :attr:`names` order."""
        grouped = self.table.groupby("partition", sort=False).agg(
            n_images=("image_id", "size"), n_patients=("patient_id", "nunique"))
        grouped = grouped.reindex(self.names)
        return grouped.rename_axis("partition").reset_index().astype(
            {"n_images": int, "n_patients": int})

    def to_frame(self) -> pd.DataFrame:
        """A copy of the ``image_id, patient_id, partition`` table (e.g. to write a CSV)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary, the content of the split file."""
        return {
            "format": SPLIT_FORMAT,
            "format_version": SPLIT_FORMAT_VERSION,
            "method": self.method,
            "params": dict(self.params),
            "seed": self.seed,
            "info": dict(self.info),
            "created_at": self.created_at,
            "sha256": self.sha256,
            "assignments": table_to_dict(self.table),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Split:
        """Rebuild from :meth:`to_dict` (the hash is recomputed, not trusted)."""
        return cls(
            table=table_from_dict(data["assignments"]),
            method=data["method"],
            params=dict(data.get("params") or {}),
            seed=data.get("seed"),
            info=dict(data.get("info") or {}),
            created_at=data.get("created_at"),
        )

    def _check_name(self, name: str) -> None:
        check_option(name, self.names, param="name", owner="Split")


def _split_iv(split: Split) -> None:
    table = split.table
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Split.table must be a pandas DataFrame. Got {type(table).__name__}.")
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise SplitError(
            f"Split.table lacks the column(s) {listing(missing)}; it needs "
            f"{', '.join(_COLUMNS)}."
        )
    clean = pd.DataFrame({c: table[c].astype(str).to_numpy(dtype=object) for c in _COLUMNS})
    for column in _COLUMNS:
        bad = clean[column].map(lambda v: any(ch in v for ch in _FORBIDDEN)).to_numpy(bool)
        if bad.any():
            raise SplitError(
                f"Split: {int(bad.sum())} {column}(s) contain a tab or line break "
                f"({listing(clean.loc[bad, column].tolist())}). Fix: remove them from the ids."
            )
    duplicated = clean["image_id"].duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise SplitError(
            f"Split: image_id must be unique; {listing(clean.loc[duplicated, 'image_id'].unique())}"
            " repeat. Fix: one row per image."
        )
    sided = clean[~clean["partition"].str.startswith(EXCLUDED_PREFIX)]
    spread = sided.groupby("patient_id")["partition"].nunique()
    straddling = spread[spread > 1]
    if len(straddling):
        raise SplitError(
            f"Split: {len(straddling)} patient(s) are in more than one partition "
            f"({listing(straddling.index.tolist())}); a split must keep each patient in one. "
            "Fix: move all images of a patient into one partition, or into an "
            f"'{EXCLUDED_PREFIX}...' partition."
        )
    object.__setattr__(split, "table", clean)
    object.__setattr__(split, "params", dict(split.params))
    object.__setattr__(split, "info", dict(split.info))
    object.__setattr__(split, "seed", None if split.seed is None else int(split.seed))
    object.__setattr__(split, "sha256", split_sha256(clean["image_id"], clean["partition"]))


def write_split(split: Split, path: str | os.PathLike[str]) -> Path:
    """Write ``split`` as one JSON file, atomically.

    Parameters
    ----------
    split : Split
    path : path-like
        Destination (``.json`` by convention); parent folders are created.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> s = Split(table=pd.DataFrame({"image_id": ["a", "b"], "patient_id": ["p", "q"],
    ...                               "partition": ["development", "internal_test"]}),
    ...           method="manual")
    >>> path = write_split(s, pathlib.Path(tempfile.mkdtemp()) / "split.json")
    >>> read_split(path).sha256 == s.sha256
    True
    """
    text = json.dumps(split.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_split(path: str | os.PathLike[str]) -> Split:
    """Read a split file and verify its hash.

    Raises
    ------
    SplitFileError
        The file is missing, not JSON, or not a claimladder split.
    IntegrityError
        The assignments no longer give the recorded ``sha256`` (the file was edited).
    """
    data = read_json_file(path, SPLIT_FORMAT, what="split")
    try:
        split = Split.from_dict(data)
        recorded = str(data["sha256"])
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, SplitError):
            raise SplitFileError(f"{path}: {error}") from error
        raise SplitFileError(
            f"{path}: malformed split file ({type(error).__name__}: {error}). "
            "Fix: regenerate it with `claimladder split`."
        ) from error
    if recorded != split.sha256:
        raise IntegrityError(
            f"{path}: the assignments give sha256 {split.sha256[:12]}..., but the file "
            f"records {recorded[:12]}...; the split was changed after it was written. "
            "Fix: restore the original file, or regenerate the split with `claimladder split` "
            "(and re-run every evaluation that used the old one); never edit a split by hand."
        )
    return split


def _json_scalar(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_scalar(v) for v in value]
    return value


def _partition_info(cohort: Cohort, partitions: np.ndarray) -> dict[str, Any]:
    label = cohort.column("label")
    frame = pd.DataFrame({
        "partition": partitions,
        "patient": cohort.patient_ids,
        "pos": (label == cohort.positive_label).to_numpy(dtype=bool),
        "missing": label.isna().to_numpy(),
    })
    out = {}
    for name, rows in frame.groupby("partition", sort=False):
        out[str(name)] = {"n_images": len(rows), "n_patients": int(rows["patient"].nunique()),
                          "n_pos": int(rows["pos"].sum()),
                          "n_missing_label": int(rows["missing"].sum())}
    return dict(sorted(out.items(), key=lambda kv: _partition_rank(kv[0])))


def split_cohort(
    cohort: Cohort,
    *,
    by: Literal["patient", "site", "time", "scanner", "protocol", "manufacturer"] = "patient",
    test_size: float | None = None,
    calibration_size: float = 0.0,
    n_splits: int | None = None,
    stratify: bool = True,
    strata: str | None = None,
    held_out: Sequence[Any] | None = None,
    cutoff: Any = None,
    gap: Any = None,
    straddlers: Literal["test", "train", "drop", "raise"] | None = None,
    seed: int | None = None,
) -> Split:
    """Split a cohort into patient-disjoint partitions and return the manifest.

    Partition names, by mode:

    * ``by="patient"``: ``development`` / ``calibration`` / ``internal_test``
      (:func:`nested_partitions`; ``test_size`` defaults to 0.2), or ``fold_1`` ...
      ``fold_k`` with ``n_splits`` (:class:`PatientKFold`).
    * ``by="site"``: ``fold_<site>`` for every site (:class:`LeaveOneSiteOut`), or
      with ``held_out``: ``external_<site>`` per held-out site and ``development``
      for the rest (:class:`GroupHoldout`, a patient at two sites is an error).
    * ``by="time"``: ``development`` before ``cutoff``, ``external_temporal`` at or
      after ``cutoff + gap``, ``excluded_gap`` in between (:class:`TemporalSplit`).
    * ``by="scanner"`` / ``"protocol"`` / ``"manufacturer"``: ``external_<value>`` per
      held-out value and ``development`` for the rest (``held_out`` required).

    With a held-out or temporal split, a ``test_size`` or ``calibration_size`` also
    splits ``development`` into ``development`` / ``calibration`` / ``internal_test``.
    Rows of patients on both sides go to ``excluded_straddling`` per ``straddlers``;
    every row of the cohort is in the manifest.

    Parameters
    ----------
    cohort : Cohort
        The cohort (after inclusion / exclusion); its roles name the columns.
    by : {'patient', 'site', 'time', 'scanner', 'protocol', 'manufacturer'}, default='patient'
        What the split holds out.
    test_size : float, optional
        Share of images in ``internal_test`` (default 0.2 for ``by="patient"``,
        no internal test otherwise).
    calibration_size : float, default=0.0
        Share of images in ``calibration``.
    n_splits : int, optional
        ``by="patient"`` only: make ``n_splits`` folds instead.
    stratify : bool, default=True
        Balance the label across random partitions.
    strata : str, optional
        Role or column crossed with the label for stratification (e.g. ``"site"``).
    held_out : sequence, optional
        Values of the ``by`` column that form the external test set(s).
    cutoff : str or datetime, optional
        ``by="time"``: first instant of the test period (required).
    gap : str or timedelta, optional
        ``by="time"``: period after ``cutoff`` excluded from both sides.
    straddlers : {'test', 'train', 'drop', 'raise'}, optional
        Policy for patients on both sides (see :class:`TemporalSplit`); default
        ``'raise'`` for sites and ``'test'`` otherwise.
    seed : int, optional
        Seed of the random steps; drawn from the OS and recorded when omitted, so
        the manifest can always be reproduced.

    Returns
    -------
    Split

    Raises
    ------
    SplitError
        The column for ``by`` is not assigned, values are missing, a partition
        would be empty, or a patient straddles under ``straddlers='raise'``.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> t = pd.DataFrame({"image_id": [f"i{k}" for k in range(8)],
    ...                   "patient_id": ["p0", "p0", "p1", "p2", "p3", "p4", "p5", "p6"],
    ...                   "label": [1, 1, 0, 1, 0, 0, 1, 0],
    ...                   "site": ["A", "A", "A", "B", "B", "C", "C", "C"]})
    >>> cohort = Cohort(table=t, roles=ColumnRoles(site="site"))
    >>> split = split_cohort(cohort, by="site", held_out=["C"], seed=0)
    >>> split.counts().to_dict("list")
    {'partition': ['development', 'external_C'], 'n_images': [5, 3], 'n_patients': [4, 3]}
    """
    owner = "split_cohort"
    by = check_option(by, SPLIT_BY, param="by", owner=owner)
    if seed is None:
        seed = secrets.randbits(32)
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"The 'seed' parameter of {owner} must be an int. Got {seed!r} instead.")
    seed = int(seed)
    n = cohort.n_images
    patients = cohort.patient_ids
    y = cohort.column("label").to_numpy(dtype=object)
    strata_values = None if strata is None else column_for(cohort, strata, owner=owner).to_numpy(
        dtype=object)
    held_list = None if held_out is None else (
        [held_out] if isinstance(held_out, str) else list(held_out))

    def forbid(**given: Any) -> None:
        for name, value in given.items():
            if value not in (None, 0, 0.0):
                raise ValueError(
                    f"The {name!r} parameter of {owner} does not apply to by={by!r} "
                    f"({mode}). Got {value!r} instead. Fix: leave it out."
                )

    partitions = np.empty(n, dtype=object)
    method = ""
    develop = np.zeros(n, dtype=bool)
    info: dict[str, Any] = {}
    policy = straddlers
    if by == "patient":
        mode = "patient-level partitions"
        forbid(held_out=held_list, cutoff=cutoff, gap=gap, straddlers=straddlers)
        if n_splits is not None:
            mode = "k-fold"
            forbid(test_size=test_size, calibration_size=calibration_size)
            splitter = PatientKFold(n_splits, stratify=stratify, rng=seed)
            folds = splitter.fold_of(None, y, patients, strata=strata_values)
            partitions[:] = [f"fold_{k + 1}" for k in folds]
            method = "PatientKFold"
        else:
            develop[:] = True
            test_size = 0.2 if test_size is None else test_size
            method = "nested_partitions"
    else:
        mode = "a hold-out split"
        forbid(n_splits=n_splits)
        role = "acquired_at" if by == "time" else by
        if not cohort.has_role(role):
            raise SplitError(
                f"{owner}: splitting by {by} needs the {role!r} column role, which "
                f"{cohort.describe_source()} does not assign. Fix: set `{role} = \"<column>\"` "
                "under [data.columns] in study.toml (or ColumnRoles)."
            )
        values = cohort.column(role).to_numpy(dtype=object)
        if by == "site" and held_list is None:
            mode = "leave-one-site-out; give held_out for a hold-out split"
            forbid(test_size=test_size, calibration_size=calibration_size, cutoff=cutoff,
                   gap=gap, straddlers=straddlers)
            folds = list(LeaveOneSiteOut().split(None, groups=values, patients=patients))
            for (_, test), site in zip(folds, LeaveOneSiteOut().site_order(values), strict=True):
                partitions[test] = f"fold_{site}"
            method = "LeaveOneSiteOut"
        else:
            if by == "time":
                forbid(held_out=held_list)
                if cutoff is None:
                    raise ValueError(
                        f"The 'cutoff' parameter of {owner} is required with by='time'. "
                        "Got None instead. Fix: give the first date of the test period, "
                        "e.g. cutoff='2021-01-01'."
                    )
                policy = straddlers or "test"
                splitter = TemporalSplit(cutoff, gap=gap, straddlers=policy)
                side = splitter.assign(None, groups=patients, times=values)
                partitions[side == TEST] = "external_temporal"
                method = "TemporalSplit"
            else:
                forbid(cutoff=cutoff, gap=gap)
                if held_list is None:
                    raise ValueError(
                        f"The 'held_out' parameter of {owner} is required with by={by!r}. "
                        f"Got None instead. Fix: name the {by} value(s) to hold out."
                    )
                policy = straddlers or ("raise" if by == "site" else "test")
                cls = ScannerHoldout if by == "scanner" else GroupHoldout
                splitter = cls(held_list, straddlers=policy)
                side = splitter.assign(None, groups=values, patients=patients)
                as_text = pd.Series(values).astype(str).to_numpy(dtype=object)
                for value in splitter.held_out:
                    partitions[(side == TEST) & (as_text == value)] = f"external_{value}"
                method = cls.__name__
            develop = side == TRAIN
            partitions[side == EXCLUDED_GAP] = EXCLUDED_GAP
            partitions[side == EXCLUDED_STRADDLING] = EXCLUDED_STRADDLING
            straddling = side == EXCLUDED_STRADDLING
            info.update({
                "straddlers": policy,
                "n_straddling_patients": len(np.unique(patients[straddling])),
                "n_straddling_images": int(straddling.sum()),
            })
            if by == "time":
                info["n_gap_images"] = int((side == EXCLUDED_GAP).sum())
    if develop.any():
        test_share = 0.0 if test_size is None else test_size
        if test_share or calibration_size:
            nested = nested_partitions(
                patients[develop], y[develop], calibration_size=calibration_size,
                test_size=test_share, stratify=stratify,
                strata=None if strata_values is None else strata_values[develop], rng=seed)
            partitions[develop] = nested.to_numpy(dtype=object)
            if method != "nested_partitions":
                method = f"{method}+nested_partitions"
        else:
            partitions[develop] = "development"
    params = {
        "by": by, "test_size": test_size, "calibration_size": calibration_size,
        "n_splits": n_splits, "stratify": bool(stratify), "strata": strata,
        "held_out": held_list, "cutoff": cutoff, "gap": gap, "straddlers": policy,
    }
    if cutoff is not None:
        params["cutoff"] = pd.Timestamp(cutoff).isoformat()
    if gap is not None:
        params["gap"] = pd.Timedelta(gap).isoformat()
    info.update({"source": None if cohort.source is None else Path(cohort.source).name,
                 "n_images": n, "n_patients": cohort.n_patients,
                 "partitions": _partition_info(cohort, partitions)})
    table = pd.DataFrame({"image_id": cohort.image_ids, "patient_id": patients,
                          "partition": partitions})
    return Split(table=table, method=method,
                 params={k: _json_scalar(v) for k, v in params.items()},
                 seed=seed, info=info, created_at=utc_now())
