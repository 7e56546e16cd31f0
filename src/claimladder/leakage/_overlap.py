"""Patients on both sides of a split: by cohort id, by DICOM identifiers, by fuzzy identity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._core import Finding, Rung, Status, did_you_mean
from ..cohort import Cohort
from ._common import (
    FIT_KINDS,
    MAX_EXAMPLES,
    TEST_KINDS,
    check_headers,
    check_partitions,
    clean_values,
)

__all__ = ["FUZZY_IDENTITY", "IDENTITY_KEYS", "check_patient_overlap", "check_split_column"]

#: DICOM attributes compared across partitions when a header table is given:
#: a shared value means the same patient, order, study, series or instance.
IDENTITY_KEYS: tuple[str, ...] = (
    "PatientID",
    "AccessionNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)
#: Name of the fuzzy identity key in the finding's table.
FUZZY_IDENTITY = "birth_date+sex+site"

_CHECK = "leakage.patient_overlap"
_COLUMNS = ["fit_partition", "test_partition", "key", "exact", "n_shared", "n_hidden",
            "n_test_images"]


def _fuzzy_key(cohort: Cohort, headers: pd.DataFrame) -> tuple[np.ndarray, str] | None:
    """``birth date | sex | site`` per row (None where a part is missing)."""
    if not {"PatientBirthDate", "PatientSex"} <= set(headers.columns):
        return None
    if cohort.has_role("site"):
        site, site_source = clean_values(cohort.column("site")), "cohort site"
    elif "InstitutionName" in headers.columns:
        site, site_source = clean_values(headers["InstitutionName"]), "InstitutionName"
    else:
        site, site_source = np.full(cohort.n_images, ""), "none"
    birth = clean_values(headers["PatientBirthDate"])
    sex = clean_values(headers["PatientSex"])
    key = np.array(
        [None if b is None or s is None or t is None else f"{b}|{s.upper()}|{t}"
         for b, s, t in zip(birth, sex, site, strict=True)],
        dtype=object,
    )
    return key, site_source


def _keys(cohort: Cohort, headers: pd.DataFrame | None, fuzzy: bool
          ) -> tuple[dict[str, tuple[np.ndarray, bool]], dict[str, Any]]:
    keys: dict[str, tuple[np.ndarray, bool]] = {
        "image_id": (cohort.image_ids.astype(object), True),
        "patient_id": (cohort.patient_ids.astype(object), True),
    }
    info: dict[str, Any] = {"dicom_keys": [], "fuzzy_identity": None}
    if headers is None:
        return keys, info
    for keyword in IDENTITY_KEYS:
        if keyword in headers.columns:
            keys[keyword] = (clean_values(headers[keyword]), True)
            info["dicom_keys"].append(keyword)
    if fuzzy:
        built = _fuzzy_key(cohort, headers)
        if built is not None:
            keys[FUZZY_IDENTITY] = (built[0], False)
            info["fuzzy_identity"] = f"PatientBirthDate + PatientSex + site ({built[1]})"
    return keys, info


def _member(values: np.ndarray, allowed: set) -> np.ndarray:
    # Set membership rather than np.isin: object arrays mixing None and str cannot be sorted.
    return np.fromiter((v is not None and v in allowed for v in values.tolist()), dtype=bool,
                       count=len(values))


def _compare(values: np.ndarray, patients: np.ndarray, fit: np.ndarray, test: np.ndarray
             ) -> tuple[int, int, np.ndarray]:
    """Shared values, how many hide behind different patient ids, and test rows hit."""
    fit_values = {v for v in values[fit].tolist() if v is not None}
    hit = test & _member(values, fit_values)
    shared = set(values[hit].tolist())
    if not shared:
        return 0, 0, hit
    frame = pd.DataFrame({"value": values, "patient": patients})
    in_shared = _member(values, shared)
    fit_pat = frame[fit & in_shared].groupby("value")["patient"].agg(set)
    test_pat = frame[test & in_shared].groupby("value")["patient"].agg(set)
    hidden = sum(not (fit_pat[v] & test_pat[v]) for v in shared)
    return len(shared), int(hidden), hit


def check_patient_overlap(
    cohort: Cohort,
    masks: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    headers: pd.DataFrame | None = None,
    fuzzy_identity: bool = True,
) -> Finding:
    """Check that no patient is on both sides of a fitting / test split.

    Every pair (fitting partition, test partition) is compared on the cohort's
    image and patient ids and, when a DICOM header table is given, on the DICOM
    identifiers (:data:`IDENTITY_KEYS`) and on a fuzzy identity (same birth
    date, sex and site) that reveals a patient re-registered under a new id.

    Parameters
    ----------
    cohort : Cohort
        The cohort; its image and patient ids are compared.
    masks : mapping of str to array of bool
        Partition name -> boolean mask over the cohort rows (e.g.
        ``PartitionAssignment.masks``).
    kinds : mapping of str to str
        Partition name -> ``"development"``, ``"calibration"`` (fitting side),
        ``"internal_test"`` or ``"external"`` (test side).
    headers : pandas.DataFrame, optional
        DICOM header table with one row per cohort row, in cohort order (from
        :func:`claimladder.io.dicom_header_index`). Columns among
        :data:`IDENTITY_KEYS`, ``PatientBirthDate``, ``PatientSex`` and
        ``InstitutionName`` are used when present.
    fuzzy_identity : bool, default=True
        Also compare ``PatientBirthDate + PatientSex + site`` (the cohort's
        site role, else ``InstitutionName``). Needs ``headers``.

    Returns
    -------
    Finding
        ``leakage.patient_overlap`` (rung 1). Its table has one row per
        (fitting partition, test partition, key): ``n_shared`` distinct values
        on both sides, ``n_hidden`` of those whose rows carry different cohort
        patient ids on the two sides, ``n_test_images`` test rows carrying a
        shared value. Status ``fail`` when an exact key is shared, ``warn``
        when only the fuzzy identity matches (it may be a coincidence),
        ``pass`` otherwise, ``not_evaluable`` without a fitting or a test
        partition. Examples are image ids from the test side; identifier values
        are never reported.

    Raises
    ------
    TypeError
        ``masks`` or ``kinds`` is not a mapping, or ``headers`` is not a DataFrame.
    ValueError
        A partition has no kind or an unknown kind.
    AlignmentError
        A mask or the header table does not have one entry per cohort row.

    Notes
    -----
    Missing and empty identifiers never match. Partitions of the same side are
    not compared with each other (a patient in development and calibration is
    not a leak of the test result).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> table = pd.DataFrame({"image_id": ["a", "b", "c", "d"],
    ...                       "patient_id": ["p1", "p2", "p2", "p3"], "label": [0, 1, 1, 0]})
    >>> cohort = Cohort(table=table, roles=ColumnRoles())
    >>> masks = {"development": np.array([True, True, False, False]),
    ...          "internal_test": np.array([False, False, True, True])}
    >>> kinds = {"development": "development", "internal_test": "internal_test"}
    >>> finding = check_patient_overlap(cohort, masks, kinds)
    >>> finding.status.value, finding.examples
    ('fail', ('c',))
    >>> finding.table.loc[finding.table["key"] == "patient_id", "n_shared"].item()
    1
    """
    owner = "check_patient_overlap"
    masks, kinds = check_partitions(cohort, masks, kinds, owner=owner)
    headers = check_headers(headers, cohort, owner=owner)
    keys, info = _keys(cohort, headers, fuzzy_identity)
    patients = cohort.patient_ids.astype(object)
    fit_names = [n for n in masks if kinds[n] in FIT_KINDS]
    test_names = [n for n in masks if kinds[n] in TEST_KINDS]
    params = {"partitions": dict(kinds), "keys": list(keys), **info}

    rows: list[dict[str, Any]] = []
    exact_hit = np.zeros(cohort.n_images, dtype=bool)
    fuzzy_hit = np.zeros(cohort.n_images, dtype=bool)
    for fit in fit_names:
        for test in test_names:
            for key, (values, exact) in keys.items():
                n_shared, n_hidden, hit = _compare(values, patients, masks[fit], masks[test])
                rows.append({"fit_partition": fit, "test_partition": test, "key": key,
                             "exact": exact, "n_shared": n_shared, "n_hidden": n_hidden,
                             "n_test_images": int(hit.sum())})
                (exact_hit if exact else fuzzy_hit)[hit] = True
    table = pd.DataFrame(rows, columns=_COLUMNS)
    criterion = "no patient, study or image on both a fitting and a test side"
    if not fit_names or not test_names:
        missing = "fitting (development / calibration)" if not fit_names else "test"
        return Finding(check=_CHECK, rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
                       message=f"No {missing} partition was given, so patient overlap between "
                               "fitting and test data cannot be checked.",
                       criterion=criterion, table=table, params=params)

    image_ids = cohort.image_ids
    fuzzy_only = fuzzy_hit & ~exact_hit
    if exact_hit.any():
        status = Status.FAIL
        message = (f"{int(exact_hit.sum())} image(s) in test partitions share an identifier "
                   f"with a fitting partition ({_summary(table[table['exact']])}); their test "
                   "results are optimistic. Fix: split by patient (e.g. "
                   "claimladder.splits.PatientHoldout) and remove re-exported copies.")
        examples = image_ids[exact_hit]
    elif fuzzy_only.any():
        status = Status.WARN
        message = (f"{int(fuzzy_only.sum())} image(s) in test partitions match a patient of a "
                   "fitting partition on birth date, sex and site under a different patient id: "
                   "possibly the same person registered twice (or a coincidence). Review these "
                   "cases and merge their patient ids if they are the same person.")
        examples = image_ids[fuzzy_only]
    else:
        status = Status.PASS
        keys_text = ", ".join(keys)
        message = (f"No test image shares an identifier with a fitting partition "
                   f"(compared: {keys_text}).")
        examples = image_ids[:0]
    return Finding(check=_CHECK, rung=Rung.INTERNAL, status=status, message=message,
                   criterion=criterion, table=table, examples=tuple(examples[:MAX_EXAMPLES]),
                   params=params)


def _summary(table: pd.DataFrame) -> str:
    parts = []
    for key, group in table.groupby("key", sort=False):
        shared, hidden = int(group["n_shared"].sum()), int(group["n_hidden"].sum())
        if shared:
            text = f"{key}: {shared} shared value(s)"
            if hidden:
                text += f", {hidden} behind different cohort patient ids"
            parts.append(text)
    return "; ".join(parts)


def check_split_column(
    cohort: Cohort,
    column: str,
    *,
    fit_values: Sequence[Any] = ("train",),
    test_values: Sequence[Any] = ("test",),
    headers: pd.DataFrame | None = None,
    fuzzy_identity: bool = True,
) -> Finding:
    """Check a split column of the cohort (e.g. a naive ``split``) for patient overlap.

    Each value in ``fit_values`` becomes a fitting partition named
    ``"<column>=<value>"`` and each value in ``test_values`` a test partition;
    :func:`check_patient_overlap` then compares them.

    Parameters
    ----------
    cohort : Cohort
        The cohort holding ``column``.
    column : str
        Name of the split column.
    fit_values, test_values : sequence, default=("train",), ("test",)
        Values of ``column`` that mark rows used for fitting and for testing.
    headers : pandas.DataFrame, optional
        DICOM header table aligned with the cohort rows (see :func:`check_patient_overlap`).
    fuzzy_identity : bool, default=True
        Also compare birth date, sex and site.

    Returns
    -------
    Finding
        ``leakage.patient_overlap``, with ``params["split_column"]`` set.

    Raises
    ------
    ValueError
        ``column`` is not a cohort column (with a suggestion), or a value
        appears in both ``fit_values`` and ``test_values``.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> table = pd.DataFrame({"image_id": ["a", "b", "c"], "patient_id": ["p1", "p1", "p2"],
    ...                       "label": [0, 0, 1], "split": ["train", "test", "test"]})
    >>> finding = check_split_column(Cohort(table=table, roles=ColumnRoles()), "split")
    >>> finding.status.value, finding.examples
    ('fail', ('b',))
    """
    owner = "check_split_column"
    columns = [str(c) for c in cohort.table.columns]
    if column not in columns:
        raise ValueError(
            f"The 'column' parameter of {owner} must name a cohort column. Got {column!r} "
            f"instead.{did_you_mean(column, columns)}"
        )
    fit_values, test_values = list(fit_values), list(test_values)
    both = [v for v in fit_values if v in test_values]
    if both:
        raise ValueError(
            f"The 'fit_values' and 'test_values' parameters of {owner} must not share values. "
            f"Got {both!r} in both."
        )
    values = cohort.table[column]
    masks: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for group, kind in ((fit_values, "development"), (test_values, "internal_test")):
        for value in group:
            name = f"{column}={value}"
            masks[name] = (values == value).fillna(False).to_numpy(dtype=bool)
            kinds[name] = kind
    finding = check_patient_overlap(cohort, masks, kinds, headers=headers,
                                    fuzzy_identity=fuzzy_identity)
    params = {**finding.params, "split_column": column, "fit_values": fit_values,
              "test_values": test_values}
    return Finding(check=finding.check, rung=finding.rung, status=finding.status,
                   message=f"Split column {column!r}: {finding.message}",
                   criterion=finding.criterion, table=finding.table, examples=finding.examples,
                   params=params)
