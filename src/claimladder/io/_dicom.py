"""Reading DICOM files: headers, and pixels as the display pipeline defines them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    get_decoder,
    pixel_array,
)
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .._core import check_option
from ._common import DICOM_EXTENSIONS, image_error, luminance, require_file

__all__ = ["JPEG_EXTRA_FIX", "VoiOption", "read_dicom", "read_dicom_header"]

VoiOption = Literal["auto", "none"]

#: The fix quoted when a compressed transfer syntax lacks a decoding plugin;
#: the extra installs the pylibjpeg plugins, which cover every compressed
#: syntax pydicom 3 can decode (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE).
JPEG_EXTRA_FIX = "install the 'jpeg' extra: pip install 'claimladder[jpeg]'"

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# Attributes the modality and VOI transforms read, copied into a per-frame view.
_PIXEL_VALUE_KEYWORDS = (
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "ModalityLUTSequence",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "VOILUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
)
# Enhanced multi-frame objects keep rescale and window per frame in these
# functional-group macros instead of the top level (PS3.3 C.7.6.16.2.9, .10).
_FUNCTIONAL_GROUP_MACROS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")

_NO_PARSE_FIX = (
    "Re-export or re-transfer the file; 'dcmdump' (DCMTK) or 'gdcmdump' shows where it breaks."
)


def _transfer_syntax_text(ts: UID) -> str:
    return f"transfer syntax {ts.name!r} ({ts!s})"


def _is_plausible_dataset(ds: Dataset) -> bool:
    """Whether a dataset read with ``force=True`` looks like DICOM rather than noise."""
    try:
        return any(elem.tag.group in (0x0008, 0x0010, 0x0020, 0x0028) for elem in ds)
    except Exception:  # noqa: BLE001 - noise may fail to parse in any way
        return False


def _infer_transfer_syntax(ds: Dataset) -> None:
    """Give a dataset without file meta the transfer syntax it was read with.

    Files written without the Part 10 header (old archives, ACR-NEMA style)
    have no Transfer Syntax UID, which pydicom needs to decode pixels; the
    encoding pydicom detected while parsing is the best evidence there is.
    """
    if not isinstance(getattr(ds, "file_meta", None), FileMetaDataset):
        ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" in ds.file_meta:
        return
    is_implicit, is_little = ds.original_encoding
    if is_implicit in (None, True) and is_little in (None, True):
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif is_little in (None, True):
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian


def _open_dataset(path: Path, *, stop_before_pixels: bool) -> Dataset:
    """Read a DICOM dataset, turning every failure into an ImageReadError."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        # Only a file that claims to be DICOM by its name is parsed without
        # the Part 10 header; anything else would be read as noise.
        if path.suffix.lower() not in DICOM_EXTENSIONS:
            raise image_error(
                path,
                "it is not a DICOM file (no 'DICM' marker at byte 128)",
                "Check the path, or give a DICOM file without the Part 10 header "
                "the extension .dcm so that it is parsed anyway.",
            ) from None
    except Exception as exc:  # a corrupt file can fail in any way
        raise image_error(
            path,
            f"the DICOM header cannot be parsed ({type(exc).__name__}: {exc}); "
            "the file is truncated or corrupt",
            _NO_PARSE_FIX,
        ) from exc
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except Exception as exc:
        raise image_error(
            path,
            f"it has no DICOM Part 10 header and cannot be parsed without one "
            f"({type(exc).__name__}: {exc})",
            _NO_PARSE_FIX,
        ) from exc
    if not _is_plausible_dataset(ds):
        raise image_error(
            path,
            "it is not a DICOM file, or is truncated (no 'DICM' marker at byte 128 and "
            f"no standard DICOM attributes in its {path.stat().st_size} bytes)",
            "Check that the path points to a DICOM file; re-export or re-transfer it "
            "if it should be one.",
        )
    _infer_transfer_syntax(ds)
    return ds


def read_dicom_header(path: str | os.PathLike[str]) -> Dataset:
    """Read the header of a DICOM file, without its pixel data.

    Parameters
    ----------
    path : str or path-like
        A DICOM Part 10 file. A file named ``*.dcm``/``*.dicom`` without the
        Part 10 header (no ``DICM`` marker) is parsed anyway, and its transfer
        syntax is inferred from the encoding.

    Returns
    -------
    pydicom.dataset.Dataset
        Every element before the pixel data, with ``file_meta``.

    Raises
    ------
    ImageReadError
        The file is missing, not DICOM, or its header cannot be parsed.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> ds = read_dicom_header(get_testdata_file("CT_small.dcm"))
    >>> ds.Modality, "PixelData" in ds
    ('CT', False)
    """
    path = require_file(path)
    return _open_dataset(path, stop_before_pixels=True)


def _number_of_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _check_frame(frame: object, n_frames: int, path: Path, owner: str) -> int:
    if (
        isinstance(frame, bool)
        or not isinstance(frame, (int, np.integer))
        or not (0 <= int(frame) < n_frames)
    ):
        raise ValueError(
            f"The 'frame' parameter of {owner} must be an int in [0, {n_frames - 1}] "
            f"for {str(path)!r}, which has {n_frames} frame(s). Got {frame!r} instead."
        )
    return int(frame)


def _check_decodable(path: Path, ts: UID) -> None:
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise image_error(
            path,
            f"pydicom {pydicom.__version__} has no pixel data decoder for its "
            f"{_transfer_syntax_text(ts)}",
            "Convert the file to an uncompressed transfer syntax first, e.g. "
            "'gdcmconv --raw in.dcm out.dcm' (GDCM) or 'dcmconv +te in.dcm out.dcm' (DCMTK).",
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin registered"
        raise image_error(
            path,
            f"no installed plugin can decode its {_transfer_syntax_text(ts)} "
            f"(pydicom reports: {missing})",
            f"To fix, {JPEG_EXTRA_FIX}, or decompress the file first "
            "('gdcmconv --raw in.dcm out.dcm').",
        )


def _decode_error(path: Path, ts: UID, exc: Exception) -> Exception:
    text = str(exc).strip().replace("\n", " ")
    if isinstance(exc, ValueError) and ("less than expected" in text or "insufficient" in text):
        return image_error(
            path,
            f"its pixel data ({_transfer_syntax_text(ts)}) is shorter than the header "
            f"declares ({text}); the file is truncated or corrupt",
            _NO_PARSE_FIX,
        )
    fix = _NO_PARSE_FIX
    if ts.is_encapsulated:
        fix = (
            "The file may be corrupt, or use a variant the installed plugins do not "
            f"support: {JPEG_EXTRA_FIX}, or try GDCM (pip install python-gdcm), or "
            "decompress the file first ('gdcmconv --raw in.dcm out.dcm')."
        )
    return image_error(
        path,
        f"its pixel data ({_transfer_syntax_text(ts)}) cannot be decoded "
        f"({type(exc).__name__}: {text})",
        fix,
    )


def _pixel_value_view(ds: Dataset, index: int) -> Dataset:
    """The attributes that map stored values to display values, for one frame."""
    view = Dataset()
    view.file_meta = ds.file_meta  # LUT data stored as OW needs the byte order
    for keyword in _PIXEL_VALUE_KEYWORDS:
        if keyword in ds:
            view.add(ds[keyword])
    items = []
    if shared := ds.get("SharedFunctionalGroupsSequence"):
        items.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        items.append(per_frame[index])
    for item in items:  # per-frame values override shared ones
        for macro in _FUNCTIONAL_GROUP_MACROS:
            if seq := item.get(macro):
                for elem in seq[0]:
                    view.add(elem)
    return view


def _stored_range(view: Dataset, arr: np.ndarray) -> tuple[float, float]:
    if arr.dtype.kind == "f":  # Float Pixel Data has no Bits Stored
        finite = arr[np.isfinite(arr)]
        return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    bits = int(view.get("BitsStored", arr.dtype.itemsize * 8))
    if int(view.get("PixelRepresentation", 0)) == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _voi_kind(view: Dataset) -> str | None:
    """Which VOI transform ``apply_voi_lut(prefer_lut=True)`` applies, if any."""
    seq = view.get("VOILUTSequence")
    if seq and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None:
        return "lut"
    if view.get("WindowCenter") is not None and view.get("WindowWidth") is not None:
        return "window"
    return None


def _to_display(arr: np.ndarray, view: Dataset, voi: str) -> np.ndarray:
    """Modality LUT/rescale, then VOI, then MONOCHROME1 inversion, for one greyscale array.

    The value range is tracked through each step, so that MONOCHROME1 is
    inverted within the range the standard defines for the current stage
    (PS3.3 C.11.1 and C.11.2) rather than within the range this particular
    image happens to span.
    """
    low, high = _stored_range(view, arr)
    if view.get("ModalityLUTSequence"):
        arr = apply_modality_lut(arr, view)
        low, high = 0.0, 2.0 ** int(view.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    elif "RescaleSlope" in view and "RescaleIntercept" in view:
        slope, intercept = float(view.RescaleSlope), float(view.RescaleIntercept)
        arr = apply_modality_lut(arr, view)
        low, high = low * slope + intercept, high * slope + intercept
    if voi == "auto":
        kind = _voi_kind(view)
        if kind == "lut":
            if arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr)):
                arr = arr.astype(np.int64)  # VOI LUTs index integer values
            arr = apply_voi_lut(arr, view, index=0, prefer_lut=True)
            low, high = 0.0, 2.0 ** int(view.VOILUTSequence[0].LUTDescriptor[2]) - 1
        elif kind == "window":
            # pydicom maps the window onto the modality output range tracked above
            arr = apply_voi_lut(arr, view, index=0, prefer_lut=True)
    arr = np.asarray(arr, dtype=np.float64)
    if str(view.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = (low + high) - arr
    return arr


def read_dicom(
    path: str | os.PathLike[str],
    *,
    frame: int | None = None,
    voi: VoiOption = "auto",
    owner: str = "read_dicom",
) -> np.ndarray:
    """Read the pixels of a DICOM file as float32 greyscale (see :func:`read_image`)."""
    check_option(voi, ("auto", "none"), param="voi", owner=owner)
    path = require_file(path)
    ds = _open_dataset(path, stop_before_pixels=False)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
        kind = f"SOP class {UID(sop).name!r}" if sop else "unknown SOP class"
        raise image_error(
            path,
            f"it has no pixel data (no (7FE0,0010) Pixel Data element; {kind}, "
            f"{path.stat().st_size} bytes)",
            "If it is a non-image object (report, plan, presentation state) remove it "
            "from the image list; if it should be an image, the file is truncated: "
            "re-export or re-transfer it.",
        )
    _infer_transfer_syntax(ds)
    ts = UID(ds.file_meta.TransferSyntaxUID)
    _check_decodable(path, ts)
    n_frames = _number_of_frames(ds)
    if frame is not None:
        frame = _check_frame(frame, n_frames, path, owner)
    try:
        arr = pixel_array(ds, index=frame)
    except Exception as exc:  # decoders raise many exception types
        raise _decode_error(path, ts, exc) from exc

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    try:
        if photometric == "PALETTE COLOR":
            return luminance(apply_color_lut(arr, ds)).astype(np.float32)
        if int(ds.get("SamplesPerPixel", 1)) > 1:
            # pydicom has already converted YBR to RGB (its as_rgb default)
            return luminance(arr).astype(np.float32)
        frames = [frame] if frame is not None else list(range(n_frames))
        if arr.ndim == 2:
            return _to_display(arr, _pixel_value_view(ds, frames[0]), voi).astype(np.float32)
        return np.stack(
            [_to_display(arr[j], _pixel_value_view(ds, i), voi) for j, i in enumerate(frames)]
        ).astype(np.float32)
    except Exception as exc:  # invalid LUT attributes fail in many ways
        raise image_error(
            path,
            f"its colour palette, Modality LUT or VOI attributes are invalid "
            f"({type(exc).__name__}: {exc})",
            "Pass voi='none' to skip the VOI transform, or fix the header (group 0028).",
        ) from exc
