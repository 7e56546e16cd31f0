"""A table of DICOM header attributes, one row per file, for cohort and leakage checks."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydicom.datadict import keyword_dict, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence

from .._core import ImageReadError, check_option, did_you_mean
from ._common import DICOM_EXTENSIONS, has_dicom_magic
from ._dicom import read_dicom_header

__all__ = ["DEFAULT_ATTRIBUTES", "dicom_header_index"]

#: Attributes :func:`dicom_header_index` reads by default: identifiers and
#: dates (PHI and leakage checks), acquisition device and protocol (site and
#: scanner shortcuts), and the pixel encoding (robustness, burned-in text).
DEFAULT_ATTRIBUTES: tuple[str, ...] = (
    "SOPInstanceUID",
    "SOPClassUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "AccessionNumber",
    "StudyID",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "StudyTime",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "SoftwareVersions",
    "DeviceSerialNumber",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "ReferringPhysicianName",
    "BodyPartExamined",
    "ViewPosition",
    "PatientOrientation",
    "Laterality",
    "ImageLaterality",
    "ImageType",
    "KVP",
    "Exposure",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "TransferSyntaxUID",
    "LossyImageCompression",
    "BurnedInAnnotation",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
)

OnError = Literal["record", "raise"]


def _check_attributes(attributes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(attributes, str):
        attributes = (attributes,)
    attributes = tuple(attributes)
    for keyword in attributes:
        if not isinstance(keyword, str) or tag_for_keyword(keyword) is None:
            raise ValueError(
                "The 'attributes' parameter of dicom_header_index must hold DICOM "
                f"keywords such as 'PatientID'. Got {keyword!r} instead."
                f"{did_you_mean(str(keyword), keyword_dict)}"
            )
    reserved = {"path", "n_private_tags", "error"} & set(attributes)
    if len(set(attributes)) != len(attributes) or reserved:
        raise ValueError(
            "The 'attributes' parameter of dicom_header_index must list each keyword "
            f"once. Got {list(attributes)!r} instead."
        )
    return attributes


def _is_candidate(path: Path) -> bool:
    return path.suffix.lower() in DICOM_EXTENSIONS or (
        path.name != "DICOMDIR" and has_dicom_magic(path)
    )


def _walk(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and _is_candidate(path):
                found.append(path)
    return found


def _collect_paths(paths_or_root: Any) -> list[Path]:
    if isinstance(paths_or_root, (str, os.PathLike)):
        root = Path(paths_or_root)
        if root.is_dir():
            return _walk(root)
        if not root.exists():
            raise ImageReadError(
                f"Cannot index DICOM headers under {str(root)!r}: the path does not exist. "
                f"Check the path (relative paths resolve against {os.getcwd()!r})."
            )
        return [root]
    try:
        return [Path(p) for p in paths_or_root]
    except TypeError:
        raise ValueError(
            "The 'paths_or_root' parameter of dicom_header_index must be a directory, a "
            f"file path or an iterable of file paths. Got {paths_or_root!r} instead."
        ) from None


def _element_value(ds: Dataset, keyword: str) -> Any:
    # Group 0002 (Transfer Syntax UID, ...) lives in the file meta information.
    holder = ds.file_meta if tag_for_keyword(keyword) >> 16 == 0x0002 else ds
    if holder is None or keyword not in holder:
        return None
    value = holder[keyword].value
    if value is None or value == "" or (isinstance(value, (list, MultiValue)) and not value):
        return None
    return value


def _summarise(value: Any) -> Any:
    """Replace values that have no plain form: sequences by their item count, bytes by hex."""
    if isinstance(value, DicomSequence):
        return len(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _text(value: Any) -> str:
    """DICOM text of a value; ``str`` of DS/IS keeps the value as written in the file."""
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(str(v) for v in value)
    return str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _column(values: list[Any]) -> pd.Series:
    """One column of plain values: Int64, float64, or strings when types are mixed."""
    present = [v for v in values if v is not None]
    multi = any(isinstance(v, (MultiValue, list, tuple)) for v in present)
    if present and not multi and all(_is_int(v) for v in present):
        return pd.Series([None if v is None else int(v) for v in values], dtype="Int64")
    if present and not multi and all(isinstance(v, (int, float)) for v in present):
        return pd.Series([float("nan") if v is None else float(v) for v in values])
    return pd.Series([None if v is None else _text(v) for v in values], dtype="str")


def _read_row(ds: Dataset, attributes: tuple[str, ...]) -> tuple[dict, int, list[str]]:
    """Attribute values, private tag count, and what could not be read.

    A malformed value (wrong VR, bad encoding) loses that cell only, so that
    one bad attribute does not hide the rest of the header.
    """
    row, problems = {}, []
    for keyword in attributes:
        try:
            row[keyword] = _summarise(_element_value(ds, keyword))
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on malformed values
            row[keyword] = None
            problems.append(f"attribute {keyword} is unreadable ({type(exc).__name__}: {exc})")
    return row, _count_private(ds), problems


def _count_private(ds: Dataset) -> int:
    """Private elements, nested sequences included; a malformed value still counts its tag."""
    count = 0
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset would convert every value
        count += tag.is_private
        try:
            elem = ds[tag]
        except Exception:  # noqa: BLE001, S112 - the tag counts without converting the value
            continue
        if elem.VR == "SQ":
            count += sum(_count_private(item) for item in elem.value)
    return count


def dicom_header_index(
    paths_or_root: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
    progress: bool = False,
    on_error: OnError = "record",
) -> pd.DataFrame:
    """Index DICOM headers: one row per file, one column per attribute.

    Only headers are read (``stop_before_pixels=True``), so indexing is fast
    and works on files whose pixel data is compressed with an unsupported
    syntax or truncated.

    Parameters
    ----------
    paths_or_root : path or iterable of paths
        A directory (walked recursively, in sorted order, for files named
        ``*.dcm``/``*.dicom`` or carrying the ``DICM`` marker at byte 128;
        ``DICOMDIR`` files are skipped), a single file, or a list of files
        (indexed in the given order).
    attributes : sequence of str, default=DEFAULT_ATTRIBUTES
        DICOM keywords to read. ``TransferSyntaxUID`` and other group 0002
        keywords are read from the file meta information.
    progress : bool, default=False
        Show a rich progress bar on standard error.
    on_error : {"record", "raise"}, default="record"
        ``"record"``: an unreadable file gives a row whose ``error`` column
        says what failed, and indexing goes on; ``"raise"``: the first
        unreadable file raises :class:`ImageReadError`.

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, then ``attributes`` in order, then ``n_private_tags``
        (private elements, nested sequences included) and ``error`` (missing
        when the file was read). Values are plain: person names and other
        text as strings, multi-valued attributes joined with ``"\\"``,
        sequences as their number of items, integer attributes as ``Int64``;
        a column mixing single numbers and multi-valued strings is all strings.
        Absent or empty attributes are missing values.

    Raises
    ------
    ImageReadError
        ``paths_or_root`` does not exist, or (``on_error="raise"``) a file
        cannot be read.
    ValueError
        An attribute is not a DICOM keyword (with a suggestion), or
        ``on_error`` is not a known option.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> paths = [get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")]
    >>> index = dicom_header_index(paths, attributes=["Modality", "Rows", "PixelSpacing"])
    >>> index["Modality"].tolist(), index["Rows"].tolist()
    (['CT', 'MR'], [128, 64])
    >>> index["PixelSpacing"].tolist()
    ['0.661468\\\\0.661468', '0.3125\\\\0.3125']
    """
    attributes = _check_attributes(attributes)
    check_option(on_error, ("record", "raise"), param="on_error", owner="dicom_header_index")
    paths = _collect_paths(paths_or_root)

    columns: dict[str, list[Any]] = {keyword: [] for keyword in attributes}
    n_private: list[int | None] = []
    errors: list[str | None] = []
    for path in _progress(paths, enabled=progress):
        try:
            ds = read_dicom_header(path)
        except ImageReadError as exc:
            if on_error == "raise":
                raise
            row, count = dict.fromkeys(attributes), None
            errors.append(str(exc))
        else:
            row, count, problems = _read_row(ds, attributes)
            if problems and on_error == "raise":
                raise ImageReadError(
                    f"Cannot index the DICOM header of {str(path)!r}: {'; '.join(problems)}. "
                    "Re-export the file, or pass on_error='record' to index it with these "
                    "attributes missing."
                )
            errors.append(f"In {str(path)!r}: {'; '.join(problems)}." if problems else None)
        for keyword in attributes:
            columns[keyword].append(row[keyword])
        n_private.append(count)

    frame = pd.DataFrame({"path": pd.Series([str(p) for p in paths], dtype="str")})
    for keyword in attributes:
        frame[keyword] = _column(columns[keyword])
    frame["n_private_tags"] = pd.Series(n_private, dtype="Int64")
    frame["error"] = pd.Series(errors, dtype="str")
    return frame


def _progress(paths: list[Path], *, enabled: bool) -> Iterable[Path]:
    if not enabled:
        yield from paths
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("Indexing DICOM headers", total=len(paths))
        for path in paths:
            yield path
            bar.advance(task)
