"""A small writer of greyscale Secondary Capture DICOM files."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_dict, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import DSfloat, validate_value

from .._core import atomic_write_bytes, check_option, check_positive_int, did_you_mean

__all__ = ["write_dicom"]

# Attributes that describe the pixel encoding or the file itself: write_dicom
# derives them from the array and its own arguments, so that they always agree.
_DERIVED = frozenset(
    {
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "SamplesPerPixel",
        "PlanarConfiguration",
        "NumberOfFrames",
        "FrameIncrementPointer",
        "PixelData",
        "PhotometricInterpretation",
        "SOPClassUID",
    }
)

# Type 2 attributes of the Patient, General Study, General Series and General
# Image modules: present, empty unless the caller gives a value.
_TYPE2_EMPTY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "InstanceNumber",
    "PatientOrientation",
)


def _check_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    checked = {}
    for keyword, value in meta.items():
        tag = tag_for_keyword(keyword) if isinstance(keyword, str) else None
        if tag is None:
            raise ValueError(
                "The 'meta' parameter of write_dicom must map DICOM keywords to values. "
                f"Got key {keyword!r} instead.{did_you_mean(str(keyword), keyword_dict)}"
            )
        if keyword in _DERIVED or tag >> 16 == 0x0002:
            raise ValueError(
                f"The 'meta' parameter of write_dicom must not set {keyword!r}: write_dicom "
                "derives it from the array and its 'bits_stored' and "
                "'photometric_interpretation' parameters."
            )
        vr = dictionary_VR(tag)
        multi = isinstance(value, (list, tuple))
        converted = [_convert(keyword, vr, item) for item in (value if multi else [value])]
        checked[keyword] = converted if multi else converted[0]
    return checked


def _convert(keyword: str, vr: str, item: Any) -> Any:
    """Check one value against its VR, giving numbers for DS/IS their string form."""
    if not isinstance(item, (str, int, float, np.integer, np.floating)) or isinstance(
        item, (bool, np.bool_)
    ):
        raise TypeError(
            f"The 'meta' parameter of write_dicom must give {keyword!r} a str, int, "
            f"float or a list of them. Got {item!r} instead."
        )
    if vr == "DS" and not isinstance(item, str):
        item = str(DSfloat(float(item), auto_format=True))
    elif vr == "IS" and not isinstance(item, str):
        if float(item) != int(item):
            raise ValueError(
                f"The 'meta' parameter of write_dicom must give {keyword!r} (VR IS) an "
                f"integer. Got {item!r} instead."
            )
        item = str(int(item))
    elif isinstance(item, (np.integer, np.floating)):
        item = item.item()
    try:
        validate_value(vr, item, config.RAISE)
    except ValueError as exc:
        raise ValueError(
            f"The 'meta' parameter of write_dicom has an invalid value for "
            f"{keyword!r} (VR {vr}): {item!r}. {exc}"
        ) from None
    return item


def _stored_array(array: Any, bits_stored: int) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(
            "The 'array' parameter of write_dicom must be a non-empty (H, W) image or "
            f"(F, H, W) stack of frames. Got shape {arr.shape} instead."
        )
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise ValueError(
                "The 'array' parameter of write_dicom must hold integer values (DICOM "
                "stores integers). Round or rescale it first, and record the scaling "
                "with RescaleSlope/RescaleIntercept in 'meta'."
            )
    elif arr.dtype.kind not in "iu":
        raise ValueError(
            f"The 'array' parameter of write_dicom must be numeric. Got dtype {arr.dtype} instead."
        )
    low, high = float(arr.min()), float(arr.max())
    if low >= 0:
        if high > 2**bits_stored - 1:
            raise ValueError(
                f"The 'array' parameter of write_dicom must fit in {bits_stored} bits "
                f"(0 to {2**bits_stored - 1}). Got values up to {high:g}; rescale the "
                "array or raise 'bits_stored' (at most 16)."
            )
        return arr.astype(np.uint16)
    limit = 2 ** (bits_stored - 1)
    if low < -limit or high > limit - 1:
        raise ValueError(
            f"The 'array' parameter of write_dicom must fit in signed {bits_stored} bits "
            f"({-limit} to {limit - 1}). Got values from {low:g} to {high:g}."
        )
    return arr.astype(np.int16)


def write_dicom(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    meta: Mapping[str, Any] | None = None,
    bits_stored: int = 16,
    photometric_interpretation: Literal["MONOCHROME2", "MONOCHROME1"] = "MONOCHROME2",
    entropy_srcs: Sequence[str] | None = None,
) -> Path:
    """Write a greyscale 16-bit Secondary Capture DICOM file, atomically.

    Parameters
    ----------
    path : str or path-like
        Output file; parent directories are created.
    array : numpy.ndarray
        Integer-valued ``(H, W)`` image, or ``(F, H, W)`` frames (written as
        Multi-frame Grayscale Word Secondary Capture). Non-negative values are
        stored unsigned, otherwise signed (Pixel Representation 1).
    meta : mapping of str to str, int, float or list, optional
        Header attributes by DICOM keyword, set as given, e.g.
        ``{"PatientID": "P001", "Manufacturer": "Acme", "StudyDate": "20240131",
        "PatientAge": "045Y", "RescaleSlope": 2, "BurnedInAnnotation": "NO",
        "Modality": "DX", "StudyInstanceUID": "1.2.3"}``. Values are checked
        against their VR. Attributes that describe the pixel encoding (Rows,
        BitsStored, PhotometricInterpretation, ...) and file meta elements are
        derived, not accepted.
    bits_stored : int, default=16
        Bits Stored (1 to 16); Bits Allocated is always 16.
    photometric_interpretation : {"MONOCHROME2", "MONOCHROME1"}, default="MONOCHROME2"
        ``"MONOCHROME1"`` declares that the minimum value is displayed white.
    entropy_srcs : sequence of str, optional
        Seeds for the Study, Series and SOP Instance UIDs that ``meta`` does
        not give (:func:`pydicom.uid.generate_uid` with ``entropy_srcs``, one
        per role), so equal inputs give byte-identical files. Without it the
        UIDs are random.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        ``array`` is not a 2D/3D integer-valued array fitting ``bits_stored``,
        or ``meta`` has an unknown keyword (with a suggestion), a derived
        attribute, or a value invalid for its VR.

    Notes
    -----
    The file has a Part 10 header (preamble, ``DICM``, file meta with
    Explicit VR Little Endian), Specific Character Set ``ISO_IR 192``
    (UTF-8), Conversion Type ``WSD``, Modality ``OT`` unless ``meta`` sets
    it, and empty Type 2 patient and study attributes unless given. No
    date or time is filled in, so the output depends on the inputs only. It
    is serialised in memory and written with an atomic rename.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, pydicom
    >>> pixels = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_dicom(pathlib.Path(tmp) / "a.dcm", pixels,
    ...                        meta={"PatientID": "P001", "Modality": "DX"},
    ...                        entropy_srcs=["demo", "P001", "0"])
    ...     ds = pydicom.dcmread(path)
    >>> ds.PatientID, ds.Modality, ds.pixel_array.max()
    ('P001', 'DX', np.uint16(11000))
    >>> ds.SOPInstanceUID == pydicom.uid.generate_uid(
    ...     entropy_srcs=["demo", "P001", "0", "SOPInstanceUID"])
    True
    """
    bits_stored = check_positive_int(bits_stored, param="bits_stored", owner="write_dicom")
    if bits_stored > 16:
        raise ValueError(
            "The 'bits_stored' parameter of write_dicom must be an int in [1, 16]. "
            f"Got {bits_stored!r} instead."
        )
    check_option(
        photometric_interpretation,
        ("MONOCHROME2", "MONOCHROME1"),
        param="photometric_interpretation",
        owner="write_dicom",
    )
    meta = _check_meta(meta or {})
    arr = _stored_array(array, bits_stored)

    def uid(role: str) -> str:
        if role in meta:
            return str(meta[role])
        if entropy_srcs is None:
            return generate_uid()
        return generate_uid(entropy_srcs=[*map(str, entropy_srcs), role])

    multi_frame = arr.ndim == 3
    sop_class = (
        MultiFrameGrayscaleWordSecondaryCaptureImageStorage
        if multi_frame
        else SecondaryCaptureImageStorage
    )
    sop_instance = uid("SOPInstanceUID")

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = sop_class
    file_meta.MediaStorageSOPInstanceUID = sop_instance
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = file_meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyInstanceUID = uid("StudyInstanceUID")
    ds.SeriesInstanceUID = uid("SeriesInstanceUID")
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    for keyword in _TYPE2_EMPTY:
        setattr(ds, keyword, None)
    for keyword, value in meta.items():
        setattr(ds, keyword, value)
    ds.set_pixel_data(
        arr,
        photometric_interpretation=photometric_interpretation,
        bits_stored=bits_stored,
        generate_instance_uid=False,
    )
    if multi_frame:
        ds.NumberOfFrames = arr.shape[0]
        # Multi-frame SC requires a Frame Increment Pointer (PS3.3 C.8.6.3);
        # Page Number Vector just numbers the frames.
        ds.FrameIncrementPointer = 0x00182001
        ds.PageNumberVector = list(range(1, arr.shape[0] + 1))

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return atomic_write_bytes(path, buffer.getvalue())
