"""dicom_header_index and read_dicom_header."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence

from claimladder._core import ImageReadError
from claimladder.io import DEFAULT_ATTRIBUTES, dicom_header_index, read_dicom_header

REQUIRED = [
    "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber", "PatientID",
    "PatientName", "PatientBirthDate", "PatientSex", "PatientAge", "StudyDate", "SeriesDate",
    "AcquisitionDate", "StudyTime", "Modality", "Manufacturer", "ManufacturerModelName",
    "InstitutionName", "StationName", "BodyPartExamined", "ViewPosition", "Rows", "Columns",
    "PhotometricInterpretation", "BitsStored", "PixelSpacing", "TransferSyntaxUID",
    "BurnedInAnnotation", "SliceThickness",
]  # fmt: skip


@pytest.fixture(scope="module")
def deid_root() -> Path:
    deid_data = pytest.importorskip("deid_data")
    return Path(deid_data.__file__).parent / "data"


def _expected_text(ds: Dataset, keyword: str) -> str | None:
    """The header value as text, read straight from pydicom for comparison."""
    holder = ds.file_meta if keyword == "TransferSyntaxUID" else ds
    if keyword not in holder:
        return None
    value = holder[keyword].value
    if value is None or str(value) == "" or (isinstance(value, MultiValue) and not value):
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def _private_count(ds: Dataset) -> int:
    """Count private elements by explicit recursion (the index uses Dataset.iterall)."""
    count = 0
    for elem in ds:
        count += elem.tag.is_private
        if elem.VR == "SQ":
            count += sum(_private_count(item) for item in elem.value)
    return count


def test_default_attributes_cover_the_required_set():
    assert set(REQUIRED) <= set(DEFAULT_ATTRIBUTES)
    assert len(set(DEFAULT_ATTRIBUTES)) == len(DEFAULT_ATTRIBUTES)


def test_index_of_deid_data_matches_pydicom(deid_root):
    index = dicom_header_index(deid_root)
    expected_paths = sorted(str(p) for p in deid_root.rglob("*.dcm"))
    assert sorted(index["path"]) == expected_paths
    assert list(index.columns) == ["path", *DEFAULT_ATTRIBUTES, "n_private_tags", "error"]
    assert index["error"].isna().all()
    assert index["PatientID"].notna().all()

    for row in index.itertuples(index=False):
        ds = pydicom.dcmread(row.path, stop_before_pixels=True)
        for keyword in REQUIRED:
            got = getattr(row, keyword)
            want = _expected_text(ds, keyword)
            if want is None:
                assert pd.isna(got), (row.path, keyword, got)
            elif isinstance(got, (int, np.integer)):
                assert got == int(want), (row.path, keyword)
            elif isinstance(got, float):
                assert got == pytest.approx(float(want)), (row.path, keyword)
            else:
                assert got == want, (row.path, keyword, got, want)
        assert row.n_private_tags == _private_count(ds)


def test_index_reads_headers_only(deid_root, monkeypatch):
    calls = []
    real_dcmread = pydicom.dcmread

    def spy(*args, **kwargs):
        ds = real_dcmread(*args, **kwargs)
        calls.append((kwargs.get("stop_before_pixels"), "PixelData" in ds))
        return ds

    monkeypatch.setattr(pydicom, "dcmread", spy)
    index = dicom_header_index(deid_root)
    assert len(calls) == len(index) > 0
    assert calls == [(True, False)] * len(index)


def test_index_tolerates_bad_pixel_data():
    # Headers of a file with truncated pixel data and of one whose JPEG no
    # installed plugin decodes are still indexed.
    paths = [get_testdata_file("MR_truncated.dcm"), get_testdata_file("JPEG-lossy.dcm")]
    index = dicom_header_index(paths)
    assert index["error"].isna().all()
    assert index["Modality"].tolist() == ["MR", "NM"]
    assert index["TransferSyntaxUID"].tolist() == ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.51"]


def test_values_are_plain(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.add_new(0x00091001, "LO", "private value")
    ds.ReferencedImageSequence = DicomSequence([Dataset(), Dataset()])
    ds.save_as(tmp_path / "ct.dcm")
    index = dicom_header_index(
        tmp_path,
        attributes=["PatientName", "PixelSpacing", "ImageType", "Rows", "SliceThickness",
                    "ReferencedImageSequence", "PatientBirthDate"],
    )  # fmt: skip
    row = index.iloc[0]
    assert row["PatientName"] == str(ds.PatientName) and isinstance(row["PatientName"], str)
    assert row["PixelSpacing"] == "\\".join(str(v) for v in ds.PixelSpacing)
    assert row["ImageType"] == "\\".join(ds.ImageType)
    assert row["Rows"] == 128 and index["Rows"].dtype == "Int64"
    assert row["SliceThickness"] == pytest.approx(float(ds.SliceThickness))
    assert row["ReferencedImageSequence"] == 2
    assert row["n_private_tags"] == _private_count(ds)


def test_mixed_single_and_multi_values_become_strings(tmp_path):
    a = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    a.WindowCenter = "600"
    a.save_as(tmp_path / "a.dcm")
    a.WindowCenter = ["40", "400"]
    a.WindowWidth = ["80", "2000"]
    a.save_as(tmp_path / "b.dcm")
    index = dicom_header_index(tmp_path, attributes=["WindowCenter"])
    assert index["WindowCenter"].tolist() == ["600", "40\\400"]


def test_directory_walk_finds_magic_files_and_records_errors(tmp_path):
    nested = tmp_path / "site_a" / "study1"
    nested.mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), nested / "IM0001")  # no extension
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "site_a" / "b.DCM")
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 50)
    (tmp_path / "site_a" / "DICOMDIR").write_bytes(
        (nested / "IM0001").read_bytes()
    )  # DICOMDIR files are skipped

    index = dicom_header_index(tmp_path)
    names = [Path(p).name for p in index["path"]]
    assert names == ["broken.dcm", "b.DCM", "IM0001"]
    broken = index.iloc[0]
    assert "broken.dcm" in broken["error"] and "not a DICOM file" in broken["error"]
    assert pd.isna(broken["PatientID"]) and pd.isna(broken["n_private_tags"])
    assert index["error"].iloc[1:].isna().all()
    assert index["Modality"].iloc[1:].tolist() == ["MR", "CT"]

    with pytest.raises(ImageReadError, match=r"broken\.dcm"):
        dicom_header_index(tmp_path, on_error="raise")


def test_malformed_attribute_loses_only_its_cell(tmp_path):
    raw = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    rows_us = b"\x28\x00\x10\x00US\x02\x00"  # (0028,0010) Rows, explicit VR US, 2 bytes
    assert raw.count(rows_us) == 1
    path = tmp_path / "bad_vr.dcm"
    path.write_bytes(raw.replace(rows_us, b"\x28\x00\x10\x00FD\x02\x00"))  # 2 bytes as FD
    index = dicom_header_index([path], attributes=["Rows", "Columns", "Modality"])
    row = index.iloc[0]
    assert pd.isna(row["Rows"])
    assert (row["Columns"], row["Modality"]) == (128, "CT")
    assert "bad_vr.dcm" in row["error"] and "Rows is unreadable" in row["error"]
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    assert row["n_private_tags"] == _private_count(ds)
    with pytest.raises(ImageReadError, match=r"bad_vr\.dcm.*Rows is unreadable"):
        dicom_header_index([path], attributes=["Rows"], on_error="raise")


def test_list_of_paths_keeps_order_and_records_missing(tmp_path):
    paths = [
        get_testdata_file("MR_small.dcm"),
        tmp_path / "gone.dcm",
        get_testdata_file("CT_small.dcm"),
    ]
    index = dicom_header_index(paths, attributes=["Modality"])
    assert index["Modality"].tolist()[::2] == ["MR", "CT"]
    assert "does not exist" in index["error"].iloc[1]


def test_single_file_and_missing_root(tmp_path):
    index = dicom_header_index(get_testdata_file("CT_small.dcm"), attributes=["Modality"])
    assert index["Modality"].tolist() == ["CT"]
    with pytest.raises(ImageReadError, match=r"does not exist"):
        dicom_header_index(tmp_path / "missing")


def test_empty_directory_gives_empty_frame_with_columns(tmp_path):
    index = dicom_header_index(tmp_path, attributes=["PatientID"])
    assert len(index) == 0
    assert list(index.columns) == ["path", "PatientID", "n_private_tags", "error"]


def test_bad_attribute_and_option():
    with pytest.raises(ValueError, match="Did you mean 'PatientID'"):
        dicom_header_index([], attributes=["PatientId"])
    with pytest.raises(ValueError, match="once"):
        dicom_header_index([], attributes=["Modality", "Modality"])
    with pytest.raises(ValueError, match="Did you mean 'raise'"):
        dicom_header_index([], on_error="rase")


def test_progress_bar_gives_the_same_index(deid_root, capsys):
    quiet = dicom_header_index(deid_root / "humans")
    loud = dicom_header_index(deid_root / "humans", progress=True)
    pd.testing.assert_frame_equal(quiet, loud)
    assert capsys.readouterr().out == ""  # the bar writes to stderr only


def test_read_dicom_header():
    ds = read_dicom_header(get_testdata_file("MR_small.dcm"))
    assert ds.Modality == "MR" and "PixelData" not in ds
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_read_dicom_header_errors(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        read_dicom_header(tmp_path / "x.dcm")
    (tmp_path / "x.txt").write_text("plain text")
    with pytest.raises(ImageReadError, match=r"x\.txt.*not a DICOM file"):
        read_dicom_header(tmp_path / "x.txt")
