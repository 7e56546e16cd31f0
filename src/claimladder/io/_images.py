"""One entry point for every image format claimladder reads."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image, UnidentifiedImageError

from .._core import check_option
from ._common import (
    DICOM_EXTENSIONS,
    has_dicom_magic,
    image_error,
    luminance,
    require_file,
)
from ._dicom import VoiOption, _check_frame, read_dicom

__all__ = ["IMAGE_EXTENSIONS", "Volume", "read_image", "read_volume"]

_NIFTI_EXTENSIONS = (".nii", ".nii.gz")
_PILLOW_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_NUMPY_EXTENSIONS = (".npy",)

#: Every file name ending :func:`read_image` recognises (others are read as
#: DICOM when they carry the ``DICM`` marker).
IMAGE_EXTENSIONS = DICOM_EXTENSIONS + _NIFTI_EXTENSIONS + _PILLOW_EXTENSIONS + _NUMPY_EXTENSIONS

# Array index (d, h, w) is voxel index (k, j, i): this permutation composes the
# NIfTI affine so that it maps array indices directly.
_DHW_TO_IJK = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_NIFTI_EXTENSIONS):
        return "nifti"
    suffix = path.suffix.lower()
    if suffix in DICOM_EXTENSIONS:
        return "dicom"
    if suffix in _PILLOW_EXTENSIONS:
        return "pillow"
    if suffix in _NUMPY_EXTENSIONS:
        return "numpy"
    if has_dicom_magic(path):  # e.g. archives that name files by their SOP UID
        return "dicom"
    supported = ", ".join(IMAGE_EXTENSIONS)
    raise image_error(
        path,
        f"its format is not recognised (extension {suffix or 'none'!r}, and no DICOM "
        "'DICM' marker at byte 128)",
        f"Supported extensions: {supported}; convert the image to one of them.",
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Volume:
    """A 3D image with its geometry.

    Parameters
    ----------
    array : numpy.ndarray
        float32 voxel values, shape ``(D, H, W)``.
    spacing : tuple of float
        Voxel size in millimetres along ``(D, H, W)``.
    affine : numpy.ndarray
        4 x 4 matrix mapping array indices ``(d, h, w, 1)`` to RAS+ world
        coordinates in millimetres.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray


def _load_nifti(path: Path, *, canonical: bool) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Return the data in (k, j, i) order, spacing in that order, and the (d, h, w) affine."""
    try:
        img = nib.load(path)
        if canonical and len(img.shape) >= 3:
            img = nib.as_closest_canonical(img)
        data = np.asarray(img.get_fdata(dtype=np.float32))
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # nibabel, gzip and numpy raise many types
        raise image_error(
            path,
            f"it cannot be read as NIfTI ({type(exc).__name__}: {exc}); the file is "
            "truncated, corrupt or not NIfTI",
            "Re-export the volume, or check it with 'nib-ls' (nibabel).",
        ) from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim > 3 or data.ndim < 2:
        raise image_error(
            path,
            f"it has {data.ndim} dimensions with shape {data.shape}; a 2D image or "
            "3D volume was expected",
            "Split 4D series into one 3D file per time point or channel "
            "(e.g. 'fslsplit' or nibabel's four_to_three).",
        )
    zooms = zooms + (1.0,) * (3 - len(zooms))
    # Reverse the axes: (i, j, k) -> (k, j, i) = (D, H, W); see read_volume Notes.
    return data.T, zooms[: data.ndim][::-1], affine @ _DHW_TO_IJK


def read_volume(path: str | os.PathLike[str], *, canonical: bool = True) -> Volume:
    """Read a NIfTI volume (``.nii``, ``.nii.gz``) with its voxel spacing and affine.

    Parameters
    ----------
    path : str or path-like
        NIfTI-1 or NIfTI-2 file.
    canonical : bool, default=True
        Reorient the voxel axes to the closest RAS+ orientation first
        (:func:`nibabel.as_closest_canonical`), so that volumes stored with
        different axis orders and flips give comparable arrays.

    Returns
    -------
    Volume
        ``array`` of shape ``(D, H, W)`` (a 2D file gives ``D = 1``),
        float32 with the NIfTI scaling (``scl_slope``, ``scl_inter``) applied;
        ``spacing`` in millimetres along ``(D, H, W)``; ``affine`` mapping
        ``(d, h, w, 1)`` to world coordinates.

    Raises
    ------
    ImageReadError
        The file is missing, not NIfTI, corrupt, or has more than three
        non-singleton dimensions.

    Notes
    -----
    NIfTI voxel axes ``(i, j, k)`` are reversed into ``(D, H, W) = (k, j, i)``:
    with ``canonical=True`` that is (inferior to superior, posterior to
    anterior, left to right), so ``array[d]`` is an axial slice. Trailing
    singleton dimensions (e.g. a time axis of length 1) are dropped.

    Examples
    --------
    >>> import tempfile, pathlib, nibabel, numpy as np
    >>> data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)  # (i, j, k)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "v.nii.gz"
    ...     nibabel.save(nibabel.Nifti1Image(data, np.diag([0.5, 0.75, 2.0, 1.0])), path)
    ...     volume = read_volume(path)
    >>> volume.array.shape, volume.spacing
    ((4, 3, 2), (2.0, 0.75, 0.5))
    >>> float(volume.array[3, 2, 1]) == float(data[1, 2, 3])
    True
    """
    path = require_file(path)
    if not path.name.lower().endswith(_NIFTI_EXTENSIONS):
        raise image_error(
            path,
            "read_volume reads NIfTI files (.nii, .nii.gz) only",
            "Use read_image for DICOM, PNG, JPEG, TIFF, BMP and .npy files.",
        )
    data, spacing, affine = _load_nifti(path, canonical=canonical)
    if data.ndim == 2:
        data = data[np.newaxis]
        spacing = (1.0, *spacing)
    return Volume(
        array=np.ascontiguousarray(data, dtype=np.float32),
        spacing=tuple(float(s) for s in spacing),
        affine=affine,
    )


def _pillow_frame(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
        return luminance(np.asarray(img))
    if mode in ("LA", "La"):
        return np.asarray(img)[..., 0].astype(np.float64)
    if mode in ("P", "PA"):
        return luminance(np.asarray(img.convert("RGB")))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return luminance(np.asarray(img.convert("RGB")))
    # "1", "L", "I", "F" and the 16-bit "I;16*" modes hold one channel; the
    # array keeps the stored values (uint16 for 16-bit PNG/TIFF).
    return np.asarray(img).astype(np.float64)


def _pillow_error(path: Path, exc: Exception) -> Exception:
    if isinstance(exc, Image.DecompressionBombError):
        return image_error(
            path,
            f"Pillow refused it as a possible decompression bomb ({exc})",
            "If the image is trusted, raise PIL.Image.MAX_IMAGE_PIXELS before reading.",
        )
    return image_error(
        path,
        f"Pillow cannot decode it ({type(exc).__name__}: {exc}); the file is "
        "truncated, corrupt, or not the format its extension says",
        "Re-export the image, or check it with another viewer.",
    )


# What Pillow raises on files it cannot decode; frame errors are raised apart.
_PILLOW_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
                  ValueError, EOFError, struct.error)  # fmt: skip


def _read_pillow(path: Path, frame: int | None) -> np.ndarray:
    try:
        img = Image.open(path)
    except _PILLOW_ERRORS as exc:
        raise _pillow_error(path, exc) from exc
    with img:
        n_frames = int(getattr(img, "n_frames", 1))
        if frame is not None:
            indices = [_check_frame(frame, n_frames, path, "read_image")]
        else:
            indices = list(range(n_frames))
        frames = []
        try:
            for index in indices:
                img.seek(index)
                frames.append(_pillow_frame(img))
        except _PILLOW_ERRORS as exc:
            raise _pillow_error(path, exc) from exc
    if len(frames) == 1 and (frame is not None or n_frames == 1):
        return frames[0].astype(np.float32)
    return np.stack(frames).astype(np.float32)


def _read_numpy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # np.load raises ValueError, EOFError, OSError
        fix = "Save a plain numeric array with numpy.save(path, array)."
        if "allow_pickle" in str(exc):
            problem = "it holds Python objects, which are never unpickled (allow_pickle=False)"
        else:
            problem = f"it is not a valid .npy file ({type(exc).__name__}: {exc})"
        raise image_error(path, problem, fix) from exc
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise image_error(
            path,
            "it is an .npz archive, not a single array",
            "Save one array per file with numpy.save(path, array).",
        )
    if arr.dtype.kind not in "biuf":
        raise image_error(
            path,
            f"it holds dtype {arr.dtype}, not real numbers",
            "Save a boolean, integer or float array with numpy.save(path, array).",
        )
    if arr.ndim not in (2, 3):
        raise image_error(
            path,
            f"it holds an array of shape {arr.shape}; (H, W) or (D, H, W) was expected",
            "Save one 2D image or one 3D volume per file.",
        )
    return arr.astype(np.float32)


def read_image(
    path: str | os.PathLike[str],
    *,
    frame: int | None = None,
    voi: VoiOption = "auto",
) -> np.ndarray:
    """Read an image file as a float32 greyscale array.

    Parameters
    ----------
    path : str or path-like
        DICOM (``.dcm``, ``.dicom``, or any name when the file has the
        ``DICM`` marker at byte 128), NIfTI (``.nii``, ``.nii.gz``), PNG,
        JPEG, TIFF, BMP, or NumPy ``.npy``.
    frame : int, optional
        Read only this frame: a frame of a multi-frame DICOM (only that
        frame is decoded), a slice ``D`` of a NIfTI volume or 3D ``.npy``, or a
        page of a multi-page TIFF. ``0`` is accepted for single-frame images.
    voi : {"auto", "none"}, default="auto"
        DICOM only: ``"auto"`` applies the VOI LUT, or else the first window
        (Window Center/Width with its VOI LUT Function), when the file has one;
        ``"none"`` stops after the Modality LUT/rescale (e.g. Hounsfield units).

    Returns
    -------
    numpy.ndarray
        float32, ``(H, W)`` for a single-frame image, ``(F, H, W)`` for a
        multi-frame DICOM or multi-page TIFF, ``(D, H, W)`` for a 3D NIfTI or
        ``.npy`` volume, and ``(H, W)`` whenever ``frame`` is given.

    Raises
    ------
    ImageReadError
        The file is missing, corrupt or truncated, not a supported format, a
        DICOM object without pixel data, or compressed with a transfer syntax
        no installed plugin decodes (the message names the syntax and the fix).
    ValueError
        ``frame`` is out of range, or ``voi`` is not a known option.

    Notes
    -----
    DICOM greyscale pixels go through the display pipeline of PS3.3 C.11:
    Modality LUT or Rescale Slope/Intercept, then (``voi="auto"``) the VOI
    LUT or window, whose output pydicom scales to the modality output range.
    MONOCHROME1 images are then inverted within the range the standard
    defines for that stage (``low + high - x``), so that higher always means
    brighter. Enhanced multi-frame objects use each frame's rescale and
    window from the functional groups. The Presentation LUT is not applied.

    Colour images (RGB, YBR, palette colour, CMYK) become luminance
    ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601) on the stored scale, without
    rounding; an alpha channel is dropped. 16-bit PNG and TIFF keep their
    values. ``.npy`` arrays are returned as stored (never unpickled). NIfTI
    volumes are reoriented and transposed as in :func:`read_volume`.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> image = read_image(get_testdata_file("CT_small.dcm"))  # rescaled to HU
    >>> image.shape, image.dtype
    ((128, 128), dtype('float32'))
    >>> read_image(get_testdata_file("emri_small.dcm")).shape  # 10 frames
    (10, 64, 64)
    """
    check_option(voi, ("auto", "none"), param="voi", owner="read_image")
    path = require_file(path)
    kind = _format(path)
    if kind == "dicom":
        return read_dicom(path, frame=frame, voi=voi, owner="read_image")
    if kind == "pillow":
        return _read_pillow(path, frame)
    if kind == "nifti":
        arr, _, _ = _load_nifti(path, canonical=True)
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    else:
        arr = _read_numpy(path)
    if frame is None:
        return arr
    n_frames = arr.shape[0] if arr.ndim == 3 else 1
    frame = _check_frame(frame, n_frames, path, "read_image")
    return arr[frame] if arr.ndim == 3 else arr
