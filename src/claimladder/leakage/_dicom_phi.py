"""Audit DICOM headers against the Basic Application Level Confidentiality Profile."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydicom.datadict import dictionary_description
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .._core import AlignmentError, Finding, ImageReadError, Rung, Status
from ..io import read_dicom_header
from ._annex_e import (
    BASIC_PROFILE,
    CATEGORY_SEVERITY,
    ProfileAttribute,
    canonical_tag,
    profile_by_tag,
)
from ._common import MAX_EXAMPLES, clean_values

__all__ = ["check_dicom_phi"]

_CHECK = "leakage.dicom_phi"
_PSEUDONYM_KEYWORDS = ("PatientName", "PatientID")
_COLUMNS = ["keyword", "tag", "name", "action", "category", "severity", "n_files_present",
            "n_files_audited", "note"]
_SEVERITY_ORDER = {"fail": 0, "warn": 1, "info": 2}


def _non_empty(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (bytes, bytearray)):
        return len(value) > 0
    if isinstance(value, (list, tuple, MultiValue)):
        return any(_non_empty(v) for v in value)
    return str(value).strip() != ""


class _FileAudit:
    """What one file carries: profile tags present, private elements, the two flags."""

    __slots__ = ("burned_in", "identity_removed", "n_private", "present")

    def __init__(self) -> None:
        self.present: set[int] = set()
        self.n_private = 0
        self.burned_in = False
        self.identity_removed = False


def _walk(dataset: Dataset, audit: _FileAudit, profile: dict[int, ProfileAttribute]) -> None:
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset converts every value
        if tag.is_private:
            audit.n_private += 1
        try:
            element = dataset[tag]
        except Exception:  # noqa: BLE001, S112 - a malformed value still counts its tag
            continue
        if element.VR == "SQ":
            if canonical_tag(int(tag)) in profile and len(element.value):
                audit.present.add(canonical_tag(int(tag)))
            for item in element.value:
                _walk(item, audit, profile)
            continue
        if canonical_tag(int(tag)) in profile and _non_empty(element.value):
            audit.present.add(canonical_tag(int(tag)))


def _audit_file(path: Path, profile: dict[int, ProfileAttribute]) -> _FileAudit:
    ds = read_dicom_header(path)
    audit = _FileAudit()
    if ds.file_meta is not None:
        _walk(ds.file_meta, audit, profile)
    _walk(ds, audit, profile)
    audit.burned_in = str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES"
    audit.identity_removed = (
        str(ds.get("PatientIdentityRemoved", "") or "").strip().upper() == "YES"
    )
    return audit


def _from_paths(paths: list[Path]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray,
                                            np.ndarray, list[str]]:
    profile = profile_by_tag()
    tags = [row.tag for row in BASIC_PROFILE]
    present = np.zeros((len(paths), len(tags)), dtype=bool)
    private = np.zeros(len(paths), dtype=bool)
    burned = np.zeros(len(paths), dtype=bool)
    deid = np.zeros(len(paths), dtype=bool)
    readable = np.ones(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        try:
            audit = _audit_file(path, profile)
        except ImageReadError:
            readable[i] = False
            continue
        present[i] = [t in audit.present for t in tags]
        private[i] = audit.n_private > 0
        burned[i], deid[i] = audit.burned_in, audit.identity_removed
    frame = pd.DataFrame(present, columns=[row.keyword for row in BASIC_PROFILE])
    return frame, private, burned, deid, readable, []


def _from_table(headers: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                 np.ndarray, np.ndarray, list[str]]:
    n = len(headers)
    readable = (headers["error"].isna().to_numpy() if "error" in headers.columns
                else np.ones(n, dtype=bool))
    present = {}
    not_audited = []
    for row in BASIC_PROFILE:
        if row.keyword in headers.columns:
            values = clean_values(headers[row.keyword])
            present[row.keyword] = np.array([v is not None for v in values]) & readable
        else:
            present[row.keyword] = np.zeros(n, dtype=bool)
            not_audited.append(row.keyword)
    frame = pd.DataFrame(present)

    def flag(keyword: str) -> np.ndarray:
        if keyword not in headers.columns:
            return np.zeros(n, dtype=bool)
        return np.array([v is not None and v.upper() == "YES"
                         for v in clean_values(headers[keyword])])

    if "n_private_tags" in headers.columns:
        counts = pd.to_numeric(headers["n_private_tags"], errors="coerce").fillna(0)
        private = counts.to_numpy() > 0
    else:
        private = np.zeros(n, dtype=bool)
        not_audited.append("private attributes")
    return (frame, private & readable, flag("BurnedInAnnotation") & readable,
            flag("PatientIdentityRemoved") & readable, readable, not_audited)


def _inputs(headers: Any) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray,
                                    np.ndarray, list[str], str]:
    if isinstance(headers, pd.DataFrame):
        return (*_from_table(headers.reset_index(drop=True)), "header table")
    if isinstance(headers, (str, os.PathLike)):
        headers = [headers]
    if not isinstance(headers, Iterable):
        raise TypeError(
            "The 'headers' parameter of check_dicom_phi must be a DICOM header table (from "
            "claimladder.io.dicom_header_index) or a list of DICOM file paths. Got "
            f"{type(headers).__name__} instead."
        )
    paths = [Path(p) for p in headers]
    for path in paths:
        if path.is_dir():
            raise ValueError(
                f"check_dicom_phi got the folder {str(path)!r}, but audits files. Fix: pass "
                "claimladder.io.dicom_header_index(folder)['path'].tolist() to audit every "
                "DICOM file under it."
            )
    return (*_from_paths(paths), "full headers")


def check_dicom_phi(
    headers: pd.DataFrame | Sequence[str | os.PathLike[str]],
    *,
    image_ids: Sequence[str] | None = None,
) -> Finding:
    """Audit DICOM headers for attributes the Basic Confidentiality Profile removes.

    Every attribute of :data:`~claimladder.leakage.BASIC_PROFILE` (a subset of
    DICOM PS3.15 2024b Table E.1-1) that holds a non-empty value is counted,
    together with private attributes, ``BurnedInAnnotation = YES`` and files
    not flagged ``PatientIdentityRemoved = YES``. Only keywords, tags and
    counts are reported, never values.

    Parameters
    ----------
    headers : pandas.DataFrame or sequence of path
        A header table from :func:`claimladder.io.dicom_header_index` (only the
        profile attributes among its columns are audited; ``n_private_tags``
        counts private attributes; rows with an ``error`` are skipped), or DICOM
        file paths, whose complete headers are read, sequences included.
    image_ids : sequence of str, optional
        Image id of each row or file, used as examples. Without it the finding
        lists no examples (file names may themselves carry identifiers).

    Returns
    -------
    Finding
        ``leakage.dicom_phi`` (rung 1). Table: one row per attribute present in
        at least one file (``keyword``, ``tag``, ``name``, profile ``action``,
        ``category``, ``severity``, ``n_files_present``, ``n_files_audited``,
        ``note``). Status ``fail`` when direct patient identifiers are present
        (names, ids, birth date, address, telephone, other ids, insurance);
        ``PatientName`` and ``PatientID`` count as pseudonyms (``warn``) in
        files flagged ``PatientIdentityRemoved = YES``. ``warn`` for dates,
        institution, staff names, device serials, UIDs (``info`` in files
        flagged de-identified, assumed remapped), free text, private attributes
        and burned-in annotation; ``pass`` otherwise. Sex, age, size, weight and
        descriptions are reported as ``info`` (Retain Patient Characteristics
        and Clean Descriptors options). ``not_evaluable`` when no file could be
        read.

    Raises
    ------
    TypeError
        ``headers`` is neither a table nor paths.
    ValueError
        A path is a folder.
    AlignmentError
        ``image_ids`` does not have one id per row or file.

    References
    ----------
    DICOM PS3.15 2024b, Annex E, Table E.1-1 and sections E.1.1, E.3.1.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> finding = check_dicom_phi([get_testdata_file("CT_small.dcm")], image_ids=["ct1"])
    >>> finding.status.value, finding.examples
    ('fail', ('ct1',))
    >>> row = finding.table.set_index("keyword").loc["PatientName"]
    >>> row["tag"], row["action"], row["severity"], int(row["n_files_present"])
    ('(0010,0010)', 'Z', 'fail', 1)
    """
    present, private, burned, deid, readable, not_audited, source = _inputs(headers)
    n_files = len(present)
    if image_ids is not None:
        image_ids = [str(i) for i in image_ids]
        if len(image_ids) != n_files:
            raise AlignmentError(
                f"The 'image_ids' parameter of check_dicom_phi has {len(image_ids)} ids but "
                f"{n_files} files or rows were given. Fix: pass one image id per file, in order."
            )
    n_audited = int(readable.sum())
    params = {"source": source, "n_files": n_files, "n_files_unreadable": n_files - n_audited,
              "profile": "DICOM PS3.15 2024b Table E.1-1, Basic Profile (subset)",
              "n_profile_attributes": len(BASIC_PROFILE),
              "attributes_not_audited": not_audited}
    if n_audited == 0:
        return Finding(check=_CHECK, rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
                       message=f"None of the {n_files} DICOM file(s) could be read, so their "
                               "headers were not audited.", params=params)

    rows, fail_files, warn_files = _rows(present, private, burned, deid, readable, n_audited)
    table = pd.DataFrame(rows, columns=_COLUMNS)
    if len(table):
        order = table["severity"].map(_SEVERITY_ORDER)
        table = table.assign(_o=order).sort_values("_o", kind="stable").drop(columns="_o")
        table = table.reset_index(drop=True)
    return _finding(table, params, fail_files, warn_files, image_ids, n_audited, source)


def _rows(present: pd.DataFrame, private: np.ndarray, burned: np.ndarray, deid: np.ndarray,
          readable: np.ndarray, n_audited: int
          ) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    rows = []
    fail_files = np.zeros(len(present), dtype=bool)
    warn_files = np.zeros(len(present), dtype=bool)
    for attr in BASIC_PROFILE:
        mask = present[attr.keyword].to_numpy()
        if not mask.any():
            continue
        severity, note = CATEGORY_SEVERITY[attr.category], ""
        if attr.keyword in _PSEUDONYM_KEYWORDS:
            identified = mask & ~deid
            if not identified.any():
                severity = "warn"
                note = "only in files flagged PatientIdentityRemoved=YES: taken as a pseudonym"
            elif identified.sum() < mask.sum():
                note = f"{int((mask & deid).sum())} in files flagged de-identified"
            fail_files |= identified
            warn_files |= mask & deid
        elif attr.category == "uid":
            original = mask & ~deid
            severity = "warn" if original.any() else "info"
            if (mask & deid).any():
                note = (f"{int((mask & deid).sum())} in files flagged de-identified: assumed "
                        "remapped")
            warn_files |= original
        elif severity == "fail":
            fail_files |= mask
        elif severity == "warn":
            warn_files |= mask
        rows.append(_row(attr, severity, int(mask.sum()), n_audited, note))
    if private.any():
        rows.append({"keyword": "(private attributes)", "tag": "(gggg,eeee), gggg odd",
                     "name": "Private attributes", "action": "X", "category": "private",
                     "severity": "warn", "n_files_present": int(private.sum()),
                     "n_files_audited": n_audited, "note": ""})
        warn_files |= private
    if burned.any():
        rows.append({"keyword": "BurnedInAnnotation", "tag": "(0028,0301)",
                     "name": dictionary_description(0x00280301), "action": "C (E.3.1)",
                     "category": "pixel", "severity": "warn",
                     "n_files_present": int(burned.sum()), "n_files_audited": n_audited,
                     "note": "value YES: pixels may show identifying text (Clean Pixel Data "
                             "Option)"})
        warn_files |= burned
    not_flagged = readable & ~deid
    if not_flagged.any():
        rows.append({"keyword": "PatientIdentityRemoved", "tag": "(0012,0062)",
                     "name": dictionary_description(0x00120062), "action": "set YES (E.1.1)",
                     "category": "flag", "severity": "info",
                     "n_files_present": int(not_flagged.sum()), "n_files_audited": n_audited,
                     "note": "files not flagged YES (absent or NO)"})
    return rows, fail_files & readable, warn_files & readable & ~fail_files


def _row(attr: ProfileAttribute, severity: str, n_present: int, n_audited: int,
         note: str) -> dict[str, Any]:
    try:
        name = dictionary_description(attr.tag)
    except KeyError:
        name = attr.keyword
    return {"keyword": attr.keyword, "tag": attr.tag_text, "name": name,
            "action": attr.action, "category": attr.category, "severity": severity,
            "n_files_present": n_present, "n_files_audited": n_audited, "note": note}


def _listing(table: pd.DataFrame, severity: str, limit: int = 6) -> str:
    rows = table[table["severity"] == severity]
    parts = [f"{r.keyword} ({r.n_files_present})" for r in rows.head(limit).itertuples()]
    if len(rows) > limit:
        parts.append(f"+{len(rows) - limit} more")
    return ", ".join(parts)


def _finding(table: pd.DataFrame, params: dict[str, Any], fail_files: np.ndarray,
             warn_files: np.ndarray, image_ids: list[str] | None, n_audited: int,
             source: str) -> Finding:
    criterion = ("no attribute that the DICOM Basic Confidentiality Profile removes or "
                 "replaces holds a value")
    scope = ("" if source == "full headers" else
             " Only the profile attributes present as columns of the header table were "
             "audited; pass the file paths for a complete audit.")
    if fail_files.any():
        status = Status.FAIL
        message = (f"{int(fail_files.sum())} of {n_audited} DICOM file(s) carry direct patient "
                   f"identifiers: {_listing(table, 'fail')}. De-identify the files (DICOM "
                   "PS3.15 Annex E Basic Profile) before they leave the institution or reach a "
                   "model.")
        chosen = fail_files
    elif warn_files.any():
        status = Status.WARN
        message = (f"No direct patient identifier, but {int(warn_files.sum())} of {n_audited} "
                   f"file(s) keep attributes the Basic Profile removes or replaces: "
                   f"{_listing(table, 'warn')}.")
        chosen = warn_files
    else:
        status = Status.PASS
        message = (f"None of the {n_audited} audited DICOM file(s) holds an identifying "
                   "attribute of the Basic Confidentiality Profile.")
        chosen = np.zeros_like(fail_files)
    message += scope
    examples = [] if image_ids is None else [image_ids[i] for i in np.flatnonzero(chosen)]
    return Finding(check=_CHECK, rung=Rung.INTERNAL, status=status, message=message,
                   criterion=criterion, table=table, examples=tuple(examples[:MAX_EXAMPLES]),
                   params=params)
