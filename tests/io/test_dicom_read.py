"""read_image on DICOM: the display pipeline, compressed syntaxes, and errors.

Expected values are computed here from the raw stored values
(``Dataset.pixel_array``) and the header, with the formulas of DICOM PS3.3
C.11.1 (Modality LUT / rescale) and C.11.2 (VOI LUT / window), written out
independently of claimladder's implementation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import MPEG2MPML, JPEG2000Lossless

from claimladder._core import ImageReadError
from claimladder.io import read_image

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


def _file(name: str) -> str:
    """A pydicom or pydicom-data test file; skip when pydicom-data is absent."""
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"test file {name} not installed (pip install pydicom-data)")
    return path


def _raw(name: str) -> tuple[Dataset, np.ndarray]:
    ds = pydicom.dcmread(_file(name))
    return ds, ds.pixel_array.astype(np.float64)


def _stored_range(ds: Dataset) -> tuple[float, float]:
    bits = ds.BitsStored
    if ds.PixelRepresentation == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _linear_window(x, center, width, y_min, y_max):
    """PS3.3 C.11.2.1.2.1, LINEAR: the window formula as the standard states it."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    below = x <= center - 0.5 - (width - 1) / 2
    above = x > center - 0.5 + (width - 1) / 2
    mid = ~below & ~above
    out[below] = y_min
    out[above] = y_max
    out[mid] = ((x[mid] - (center - 0.5)) / (width - 1) + 0.5) * (y_max - y_min) + y_min
    return out


def _lut(item: Dataset, values: np.ndarray, byteorder: str = "<") -> np.ndarray:
    """Apply a LUT item (descriptor: entries, first mapped value, bits) to values."""
    n_entries, first, _bits = item.LUTDescriptor
    n_entries = n_entries or 2**16
    data = item.LUTData
    table = (
        np.frombuffer(data, dtype=f"{byteorder}u2")
        if isinstance(data, bytes)
        else np.asarray(data, dtype=np.float64)
    )
    index = np.clip(values - first, 0, n_entries - 1).astype(np.int64)
    return table[index].astype(np.float64)


# --- the greyscale pipeline ------------------------------------------------


def test_rescale_slope_intercept_is_applied():
    ds, raw = _raw("CT_small.dcm")
    assert "WindowCenter" not in ds  # so "auto" and "none" both stop at HU
    expected = raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    got = read_image(_file("CT_small.dcm"))
    assert got.dtype == np.float32 and got.shape == raw.shape
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert got.min() < 0  # Hounsfield units, not stored values


def test_window_applied_with_voi_auto_and_skipped_with_none():
    ds, raw = _raw("MR_small.dcm")
    y_min, y_max = _stored_range(ds)  # no rescale: window output spans the stored range
    expected = _linear_window(raw, float(ds.WindowCenter), float(ds.WindowWidth), y_min, y_max)
    np.testing.assert_allclose(read_image(_file("MR_small.dcm")), expected, rtol=1e-6, atol=0.01)
    np.testing.assert_array_equal(read_image(_file("MR_small.dcm"), voi="none"), raw)


def test_modality_lut_sequence():
    ds, raw = _raw("mlut_18.dcm")
    expected = _lut(ds.ModalityLUTSequence[0], raw)
    np.testing.assert_array_equal(read_image(_file("mlut_18.dcm"), voi="none"), expected)


def test_voi_lut_sequence():
    ds, raw = _raw("vlut_04.dcm")
    expected = _lut(ds.VOILUTSequence[0], raw)
    assert not np.array_equal(expected, raw)
    np.testing.assert_array_equal(read_image(_file("vlut_04.dcm")), expected)
    np.testing.assert_array_equal(read_image(_file("vlut_04.dcm"), voi="none"), raw)


def test_monochrome1_is_inverted_so_higher_is_brighter():
    ds, raw = _raw("RG3_UNCR.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    low, high = _stored_range(ds)
    got = read_image(_file("RG3_UNCR.dcm"), voi="none")
    np.testing.assert_array_equal(got, (low + high) - raw)
    # The ordering of intensities is reversed against the stored values.
    flat_raw, flat_got = raw.ravel()[::97], got.ravel()[::97]
    order = np.argsort(flat_raw, kind="stable")
    assert np.all(np.diff(flat_got[order]) <= 0)
    assert np.corrcoef(flat_raw, flat_got)[0, 1] == pytest.approx(-1.0)

    windowed = _linear_window(raw, float(ds.WindowCenter), float(ds.WindowWidth), low, high)
    np.testing.assert_allclose(
        read_image(_file("RG3_UNCR.dcm")), (low + high) - windowed, rtol=1e-6, atol=1e-3
    )


def test_monochrome1_lossless_jpeg2000_matches_uncompressed():
    np.testing.assert_array_equal(
        read_image(_file("RG3_J2KR.dcm")), read_image(_file("RG3_UNCR.dcm"))
    )


def test_enhanced_multiframe_uses_per_frame_rescale(tmp_path):
    ds = pydicom.dcmread(_file("eCT_Supplemental.dcm"))
    raw = ds.pixel_array.astype(np.float64)
    shared = ds.SharedFunctionalGroupsSequence[0]
    window = shared.FrameVOILUTSequence[0]
    intercepts = [-1000.0, -1500.0]
    for item, intercept in zip(ds.PerFrameFunctionalGroupsSequence, intercepts, strict=True):
        transform = Dataset()
        transform.RescaleSlope = "2"
        transform.RescaleIntercept = str(intercept)
        transform.RescaleType = "US"
        item.PixelValueTransformationSequence = DicomSequence([transform])
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path)

    got = read_image(path, voi="none")
    assert got.shape == raw.shape == (2, 512, 512)
    for i, intercept in enumerate(intercepts):
        np.testing.assert_array_equal(got[i], (raw[i] * 2 + intercept).astype(np.float32))

    low, high = _stored_range(ds)
    windowed = read_image(path)
    for i, intercept in enumerate(intercepts):
        expected = _linear_window(
            raw[i] * 2 + intercept,
            float(window.WindowCenter),
            float(window.WindowWidth),
            low * 2 + intercept,
            high * 2 + intercept,
        )
        np.testing.assert_allclose(windowed[i], expected, rtol=1e-6, atol=0.05)
    np.testing.assert_array_equal(read_image(path, frame=1), windowed[1])


def test_enhanced_multiframe_shared_rescale():
    ds, raw = _raw("eCT_Supplemental.dcm")
    transform = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    assert "RescaleIntercept" not in ds  # only in the functional groups
    expected = raw * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
    np.testing.assert_array_equal(read_image(_file("eCT_Supplemental.dcm"), voi="none"), expected)


# --- frames and transfer syntaxes ------------------------------------------


def test_multiframe_shape_and_frame_selection():
    _, raw = _raw("emri_small.dcm")
    full = read_image(_file("emri_small.dcm"))
    assert full.shape == (10, 64, 64)
    np.testing.assert_array_equal(full, raw)
    single = read_image(_file("emri_small.dcm"), frame=3)
    assert single.shape == (64, 64)
    np.testing.assert_array_equal(single, full[3])
    with pytest.raises(ValueError, match=r"'frame' parameter of read_image.*\[0, 9\].*Got 10"):
        read_image(_file("emri_small.dcm"), frame=10)
    with pytest.raises(ValueError, match="'frame'"):
        read_image(_file("emri_small.dcm"), frame=-1)


def test_single_frame_accepts_frame_zero_only():
    full = read_image(_file("CT_small.dcm"))
    np.testing.assert_array_equal(read_image(_file("CT_small.dcm"), frame=0), full)
    with pytest.raises(ValueError, match=r"\[0, 0\]"):
        read_image(_file("CT_small.dcm"), frame=1)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_padded.dcm",
    ],
)
def test_transfer_syntaxes_decode_to_the_same_image(name):
    np.testing.assert_array_equal(read_image(_file(name)), read_image(_file("MR_small.dcm")))


@pytest.mark.parametrize(
    "name",
    [
        "emri_small_RLE.dcm",
        "emri_small_big_endian.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
    ],
)
def test_compressed_multiframe_decodes_to_the_same_frames(name):
    np.testing.assert_array_equal(read_image(_file(name)), read_image(_file("emri_small.dcm")))


def test_lossy_jpeg2000_is_close_to_the_original():
    lossy = read_image(_file("MR2_J2KI.dcm"), voi="none")
    original = read_image(_file("MR2_UNCI.dcm"), voi="none")
    assert lossy.shape == original.shape
    assert np.abs(lossy - original).mean() < 0.01 * original.max()


# --- colour ------------------------------------------------------------------


def test_rgb_becomes_bt601_luminance():
    _, raw = _raw("US1_UNCR.dcm")
    assert raw.shape[-1] == 3
    np.testing.assert_allclose(read_image(_file("US1_UNCR.dcm")), raw @ LUMA, rtol=1e-6)


def test_ybr_jpeg2000_lossless_matches_uncompressed_rgb():
    np.testing.assert_allclose(
        read_image(_file("US1_J2KR.dcm")), read_image(_file("US1_UNCR.dcm")), atol=1e-3
    )


def test_palette_colour_becomes_luminance():
    ds, raw = _raw("OBXXXX1A.dcm")
    expected = apply_color_lut(raw.astype(np.uint16), ds).astype(np.float64) @ LUMA
    np.testing.assert_allclose(read_image(_file("OBXXXX1A.dcm")), expected, rtol=1e-6)


def test_multiframe_rgb():
    _, raw = _raw("SC_rgb_rle_2frame.dcm")
    got = read_image(_file("SC_rgb_rle_2frame.dcm"))
    assert got.shape == (2, 100, 100)
    np.testing.assert_allclose(got, raw @ LUMA, rtol=1e-6)


# --- deid-data: real-world files ---------------------------------------------


@pytest.fixture(scope="module")
def deid_root() -> Path:
    deid_data = pytest.importorskip("deid_data")
    return Path(deid_data.__file__).parent / "data"


def test_deid_ct_brain_colour_jpeg(deid_root):
    path = deid_root / "humans" / "ctbrain1.dcm"
    ds = pydicom.dcmread(path)
    got = read_image(path)
    assert got.shape == (ds.Rows, ds.Columns)
    np.testing.assert_allclose(got, ds.pixel_array.astype(np.float64) @ LUMA, rtol=1e-6)


def test_deid_ultrasound_multiframe_single_frame(deid_root):
    path = deid_root / "ultrasounds" / "ultrasound-multiframe.dcm"
    header = pydicom.dcmread(path, stop_before_pixels=True)
    frame = read_image(path, frame=4)
    assert frame.shape == (header.Rows, header.Columns)
    raw = pydicom.pixels.pixel_array(path, index=4).astype(np.float64)
    np.testing.assert_allclose(frame, raw @ LUMA, rtol=1e-6)


def test_deid_greyscale_ultrasound_window(deid_root):
    path = deid_root / "ultrasounds" / "GREYSCALE_IMAGE.dcm"
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(np.float64)
    low, high = _stored_range(ds)
    expected = _linear_window(raw, float(ds.WindowCenter), float(ds.WindowWidth), low, high)
    np.testing.assert_allclose(read_image(path), expected, rtol=1e-6, atol=1e-3)


# --- files that cannot be read ------------------------------------------------


def test_extensionless_and_uid_named_files_are_found_by_magic(tmp_path):
    expected = read_image(_file("CT_small.dcm"))
    for name in ("IM0001", "1.2.840.113619.2.1"):
        shutil.copy(_file("CT_small.dcm"), tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / name), expected)


# CT_small.dcm ends with 138 bytes of Data Set Trailing Padding, so -200 cuts pixel data.
@pytest.mark.parametrize("keep", [100, 300, 600, 1000, 20_000, -200])
def test_truncated_file_raises_with_the_file_name(tmp_path, keep):
    data = Path(_file("CT_small.dcm")).read_bytes()
    path = tmp_path / f"cut_{keep}.dcm"
    path.write_bytes(data[:keep])
    with pytest.raises(ImageReadError, match=f"cut_{keep}.dcm") as info:
        read_image(path)
    assert "truncated" in str(info.value).replace(str(path), "")


def test_pydicom_truncated_pixel_data():
    with pytest.raises(ImageReadError, match=r"MR_truncated\.dcm.*shorter than the header"):
        read_image(_file("MR_truncated.dcm"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match=r"nope\.dcm.*does not exist"):
        read_image(tmp_path / "nope.dcm")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)


def test_not_dicom_with_dcm_extension(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_bytes(b"these are clinical notes, not an image\n" * 20)
    with pytest.raises(ImageReadError, match=r"notes\.dcm.*not a DICOM file"):
        read_image(path)


def test_unknown_extension_lists_supported_formats(tmp_path):
    path = tmp_path / "scan.xyz"
    path.write_text("not an image")
    with pytest.raises(ImageReadError, match=r"scan\.xyz.*\.dcm.*\.nii\.gz.*\.png.*\.npy"):
        read_image(path)


def test_dicom_without_pixel_data():
    with pytest.raises(ImageReadError, match=r"rtplan\.dcm.*no pixel data.*RT Plan Storage"):
        read_image(_file("rtplan.dcm"))


def test_transfer_syntax_without_any_decoder(tmp_path):
    ds = pydicom.dcmread(_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "video.dcm"
    ds.save_as(path)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert "video.dcm" in message
    assert MPEG2MPML.name in message and str(MPEG2MPML) in message
    assert "gdcmconv" in message


def test_missing_decoding_plugin_names_syntax_and_fix(monkeypatch):
    # Simulate an installation without pylibjpeg/Pillow: no plugin can decode.
    monkeypatch.setattr(get_decoder(JPEG2000Lossless), "_available", {})
    with pytest.raises(ImageReadError) as info:
        read_image(_file("MR_small_jp2klossless.dcm"))
    message = str(info.value)
    assert "MR_small_jp2klossless.dcm" in message
    assert JPEG2000Lossless.name in message and str(JPEG2000Lossless) in message
    assert "pip install 'claimladder[jpeg]'" in message


def test_undecodable_real_file_gives_clear_error_or_matches_pydicom():
    # JPEG-lossy.dcm is a 12-bit JPEG that neither Pillow nor libjpeg decodes
    # in this environment; if a future plugin does, we must return its pixels.
    path = _file("JPEG-lossy.dcm")
    try:
        reference = pydicom.dcmread(path).pixel_array
    except Exception:  # noqa: BLE001 - any decoding failure
        with pytest.raises(ImageReadError) as info:
            read_image(path)
        message = str(info.value)
        assert "JPEG-lossy.dcm" in message
        assert "JPEG Extended" in message and "1.2.840.10008.1.2.4.51" in message
        assert "claimladder[jpeg]" in message
    else:
        np.testing.assert_array_equal(read_image(path), reference)


def test_unknown_voi_option_suggests():
    with pytest.raises(ValueError, match="Did you mean 'none'"):
        read_image(_file("CT_small.dcm"), voi="nnone")


def test_file_without_part10_header_is_read_with_inferred_syntax(tmp_path):
    ds = pydicom.dcmread(_file("CT_small.dcm"))
    path = tmp_path / "legacy.dcm"
    # A bare dataset (no preamble, no DICM, no file meta), as old archives store them.
    pydicom.dcmwrite(path, Dataset(ds), implicit_vr=True, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_image(path), read_image(_file("CT_small.dcm")))
    # Without a DICOM extension such a file is not taken for DICOM.
    renamed = path.rename(tmp_path / "legacy.bin")
    with pytest.raises(ImageReadError, match=r"legacy\.bin.*not recognised"):
        read_image(renamed)
