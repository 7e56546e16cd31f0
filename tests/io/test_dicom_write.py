"""write_dicom: round trips through pydicom and read_image, validity, determinism."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import validate_file_meta
from pydicom.uid import (
    ExplicitVRLittleEndian,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from claimladder.io import dicom_header_index, read_image, write_dicom

META = {
    "PatientID": "007",
    "PatientName": "Doe^Jane",
    "PatientSex": "F",
    "PatientAge": "045Y",
    "StudyDate": "20240131",
    "Manufacturer": "Acme Imaging",
    "ManufacturerModelName": "X-1000",
    "InstitutionName": "Site A Hospital",
    "Modality": "DX",
    "ViewPosition": "PA",
    "BurnedInAnnotation": "NO",
    "PixelSpacing": [0.25, 0.25],
    "SeriesNumber": 3,
}


@pytest.fixture
def pixels():
    return np.random.default_rng(7).integers(0, 4096, size=(20, 30)).astype(np.uint16)


def test_round_trip_values_and_header(tmp_path, pixels):
    path = write_dicom(tmp_path / "sub" / "a.dcm", pixels, meta=META, entropy_srcs=["t", "1"])
    assert path == tmp_path / "sub" / "a.dcm"
    raw = path.read_bytes()
    assert raw[:128] == bytes(128) and raw[128:132] == b"DICM"

    ds = pydicom.dcmread(path)
    validate_file_meta(ds.file_meta, enforce_standard=True)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == SecondaryCaptureImageStorage
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 16, 0)
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    np.testing.assert_array_equal(ds.pixel_array, pixels)
    for keyword, value in META.items():
        got = ds.data_element(keyword).value
        if isinstance(value, list):
            assert [float(v) for v in got] == value
        elif keyword == "SeriesNumber":
            assert int(got) == value
        else:
            assert str(got) == value, keyword
    np.testing.assert_array_equal(read_image(path), pixels.astype(np.float32))


def test_rescale_in_meta_is_applied_on_read(tmp_path, pixels):
    path = write_dicom(
        tmp_path / "a.dcm", pixels, meta={"RescaleSlope": 0.5, "RescaleIntercept": -100}
    )
    np.testing.assert_array_equal(read_image(path), pixels * 0.5 - 100)


def test_window_in_meta_is_applied_on_read(tmp_path, pixels):
    path = write_dicom(tmp_path / "a.dcm", pixels, meta={"WindowCenter": 2000, "WindowWidth": 1001})
    got = read_image(path)
    # PS3.3 C.11.2.1.2.1 (c - 0.5 = 1999.5, w - 1 = 1000), unsigned 16-bit output range.
    below, above = pixels <= 1499.5, pixels > 2499.5
    assert below.any() and above.any()
    assert np.all(got[below] == 0) and np.all(got[above] == 65535)
    inside = ~below & ~above
    expected = ((pixels[inside] - 1999.5) / 1000 + 0.5) * 65535
    np.testing.assert_allclose(got[inside], expected, rtol=1e-6)


def test_uids_are_deterministic_with_entropy(tmp_path, pixels):
    a = write_dicom(tmp_path / "a.dcm", pixels, meta=META, entropy_srcs=["demo", "img-1"])
    b = write_dicom(tmp_path / "b.dcm", pixels, meta=META, entropy_srcs=["demo", "img-1"])
    c = write_dicom(tmp_path / "c.dcm", pixels, meta=META, entropy_srcs=["demo", "img-2"])
    assert a.read_bytes() == b.read_bytes()
    ds_a, ds_c = pydicom.dcmread(a), pydicom.dcmread(c)
    assert ds_a.SOPInstanceUID == generate_uid(entropy_srcs=["demo", "img-1", "SOPInstanceUID"])
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        assert ds_a.data_element(keyword).value != ds_c.data_element(keyword).value


def test_uids_given_in_meta_are_kept_and_random_otherwise(tmp_path, pixels):
    meta = {"StudyInstanceUID": "1.2.3.4", "SeriesInstanceUID": "1.2.3.4.5"}
    a = pydicom.dcmread(write_dicom(tmp_path / "a.dcm", pixels, meta=meta))
    b = pydicom.dcmread(write_dicom(tmp_path / "b.dcm", pixels, meta=meta))
    assert a.StudyInstanceUID == b.StudyInstanceUID == "1.2.3.4"
    assert a.SeriesInstanceUID == "1.2.3.4.5"
    assert a.SOPInstanceUID != b.SOPInstanceUID


def test_signed_values(tmp_path):
    arr = np.array([[-1024, 0], [1000, 3071]], dtype=np.int32)
    ds = pydicom.dcmread(write_dicom(tmp_path / "ct.dcm", arr, bits_stored=13))
    assert (ds.PixelRepresentation, ds.BitsStored) == (1, 13)
    np.testing.assert_array_equal(ds.pixel_array, arr)


def test_multiframe(tmp_path):
    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    path = write_dicom(tmp_path / "mf.dcm", frames)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    assert ds.NumberOfFrames == 3 and ds.FrameIncrementPointer == 0x00182001
    np.testing.assert_array_equal(read_image(path), frames)
    np.testing.assert_array_equal(read_image(path, frame=2), frames[2])


def test_monochrome1_written_and_inverted_on_read(tmp_path, pixels):
    path = write_dicom(
        tmp_path / "m1.dcm", pixels, bits_stored=12, photometric_interpretation="MONOCHROME1"
    )
    assert pydicom.dcmread(path).PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_array_equal(read_image(path), 4095.0 - pixels)


def test_integer_valued_float_and_bool_arrays(tmp_path):
    arr = np.array([[0.0, 2.0], [7.0, 65535.0]])
    np.testing.assert_array_equal(read_image(write_dicom(tmp_path / "f.dcm", arr)), arr)
    mask = np.eye(3, dtype=bool)
    np.testing.assert_array_equal(read_image(write_dicom(tmp_path / "b.dcm", mask)), mask)


def test_written_files_are_indexed(tmp_path, pixels):
    write_dicom(tmp_path / "a.dcm", pixels, meta=META, entropy_srcs=["x"])
    index = dicom_header_index(tmp_path)
    row = index.iloc[0]
    assert row["PatientID"] == "007" and row["Manufacturer"] == "Acme Imaging"
    assert row["PixelSpacing"] == "0.25\\0.25" and row["Rows"] == 20
    assert row["n_private_tags"] == 0 and row["TransferSyntaxUID"] == ExplicitVRLittleEndian


def test_no_temporary_file_left_behind(tmp_path, pixels):
    write_dicom(tmp_path / "a.dcm", pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["a.dcm"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"array": np.zeros(5)}, r"\(H, W\) image"),
        ({"array": np.zeros((2, 2, 2, 2))}, "shape"),
        ({"array": np.array([[0.5, 1.0]])}, "integer values"),
        ({"array": np.array([[np.nan, 1.0]])}, "integer values"),
        ({"array": np.array([[0, 70000]])}, "fit in 16 bits"),
        ({"array": np.array([[0, 5000]]), "bits_stored": 12}, "fit in 12 bits"),
        ({"array": np.array([[-40000, 0]])}, "signed 16 bits"),
        ({"array": np.array([["a"]])}, "numeric"),
        ({"bits_stored": 17}, r"\[1, 16\]"),
        ({"bits_stored": 0}, "'bits_stored'"),
        ({"photometric_interpretation": "RGB"}, "'photometric_interpretation'"),
        ({"meta": {"Manufactuer": "x"}}, "Did you mean 'Manufacturer'"),
        ({"meta": {"Rows": 3}}, "must not set 'Rows'"),
        ({"meta": {"TransferSyntaxUID": "1.2"}}, "must not set 'TransferSyntaxUID'"),
        ({"meta": {"PatientAge": "45"}}, r"'PatientAge' \(VR AS\)"),
        ({"meta": {"StudyDate": "31/01/2024"}}, r"'StudyDate' \(VR DA\)"),
        ({"meta": {"InstanceNumber": 2.5}}, "integer"),
        ({"meta": {"PatientID": None}}, "str, int, float"),
        ({"meta": {"PatientID": b"007"}}, "str, int, float"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_invalid_input(tmp_path, kwargs, match):
    kwargs = {"array": np.zeros((2, 2), np.uint16), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        write_dicom(tmp_path / "x.dcm", **kwargs)
    assert not (tmp_path / "x.dcm").exists()
