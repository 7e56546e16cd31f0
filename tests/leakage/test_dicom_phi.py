"""check_dicom_phi and the embedded Annex E profile, on real DICOM files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from claimladder._core import AlignmentError, Status
from claimladder.io import dicom_header_index
from claimladder.leakage import BASIC_PROFILE, CATEGORY_SEVERITY, check_dicom_phi

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom VR length warnings

PYDICOM_FILES = sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*.dcm"))


def _optional_files(module: str, pattern: str) -> list[Path]:
    try:
        package = __import__(module)
    except ImportError:
        return []
    return sorted((Path(package.__file__).parent / "data").glob(pattern))


PYDICOM_DATA_FILES = _optional_files("data_store", "*.dcm")
DEID_FILES = _optional_files("deid_data", "**/*.dcm")
ALL_FILES = PYDICOM_FILES + PYDICOM_DATA_FILES + DEID_FILES
PROFILE_TAGS = {row.tag: row for row in BASIC_PROFILE}


def _canonical(tag: int) -> int:
    group = tag >> 16
    if group & 0xFF00 in (0x5000, 0x6000) and group % 2 == 0:
        return ((group & 0xFF00) << 16) | (tag & 0xFFFF)
    return tag


def _reference(path: Path) -> tuple[set[str], list[str]]:
    """Profile keywords holding a value, and the text of every profile / private value.

    Independent of the implementation: pydicom's recursive ``iterall`` over the
    data set and its file meta information.
    """
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    present: set[str] = set()
    values: list[str] = []
    datasets = [ds.file_meta, ds] if ds.file_meta is not None else [ds]
    for dataset in datasets:
        for elem in dataset.iterall():
            tag = _canonical(int(elem.tag))
            if tag not in PROFILE_TAGS and not elem.tag.is_private:
                continue
            if elem.VR == "SQ":
                if tag in PROFILE_TAGS and len(elem.value):
                    present.add(PROFILE_TAGS[tag].keyword)
                continue
            items = list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]
            texts = [str(v).strip() for v in items if v is not None
                     and not isinstance(v, (bytes, bytearray))]
            raw = [v for v in items if isinstance(v, (bytes, bytearray)) and len(v)]
            if tag in PROFILE_TAGS and (any(texts) or raw):
                present.add(PROFILE_TAGS[tag].keyword)
            values.extend(t for t in texts if t)
    return present, values


def _is_distinctive(value: str) -> bool:
    # Short values ("M", "CT") and small numbers occur in any text by chance.
    return len(value) >= 6 or (len(value) >= 4 and not value.isdigit())


def _assert_no_values(finding_json: str, values: list[str]) -> None:
    leaked = sorted({v for v in values if _is_distinctive(v) and v in finding_json})
    assert not leaked, f"header values leaked into the finding: {leaked[:5]}"


# -- the embedded profile ------------------------------------------------------------------------


def test_profile_matches_the_pydicom_dictionary():
    assert len(BASIC_PROFILE) >= 60
    keywords = [row.keyword for row in BASIC_PROFILE]
    assert len(set(keywords)) == len(keywords)
    assert len({row.tag for row in BASIC_PROFILE}) == len(BASIC_PROFILE)
    for row in BASIC_PROFILE:
        tag = tag_for_keyword(row.keyword)
        if tag is None:  # repeating groups (60xx, 50xx) have no single tag
            assert keyword_for_tag(row.tag) == row.keyword
        else:
            assert tag == row.tag, row.keyword
        assert set(row.action.replace("*", "").split("/")) <= {"X", "Z", "D", "U"}
        assert row.category in CATEGORY_SEVERITY


@pytest.mark.parametrize("keyword", [
    "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDsSequence",
    "PatientAddress", "PatientTelephoneNumbers", "AccessionNumber", "StudyInstanceUID",
    "SeriesInstanceUID", "SOPInstanceUID", "StudyDate", "SeriesDate", "AcquisitionDate",
    "ContentDate", "StudyTime", "InstitutionName", "InstitutionAddress",
    "ReferringPhysicianName", "DeviceSerialNumber", "StationName", "StudyID",
])  # fmt: skip
def test_profile_covers_identifying_attributes(keyword):
    assert keyword in {row.keyword for row in BASIC_PROFILE}


# -- real files --------------------------------------------------------------------------------


def test_ct_small_names_its_identifiers():
    path = get_testdata_file("CT_small.dcm")
    finding = check_dicom_phi([path], image_ids=["ct-1"])
    assert finding.check == "leakage.dicom_phi"
    assert finding.status is Status.FAIL
    assert finding.examples == ("ct-1",)
    table = finding.table.set_index("keyword")
    for keyword in ("PatientName", "PatientID", "OtherPatientIDsSequence"):
        assert table.loc[keyword, "severity"] == "fail"
        assert table.loc[keyword, "n_files_present"] == 1
    # CT_small's Patient's Birth Date is present but empty: not a finding.
    assert "PatientBirthDate" not in table.index
    assert table.loc["InstitutionName", "severity"] == "warn"
    assert table.loc["(private attributes)", "n_files_present"] == 1
    assert table.loc["PatientSex", "severity"] == "info"
    assert "PatientName" in finding.message


@pytest.mark.skipif(not DEID_FILES, reason="deid-data is not installed")
def test_deid_ct_brain_birth_date_and_other_ids():
    path = next(p for p in DEID_FILES if p.name == "ctbrain1.dcm")
    finding = check_dicom_phi([path])
    table = finding.table.set_index("keyword")
    for keyword in ("PatientBirthDate", "OtherPatientIDs", "OtherPatientNames"):
        assert table.loc[keyword, "severity"] == "fail"
    for keyword in ("InstitutionAddress", "RequestingPhysician", "ReasonForStudy",
                    "CurrentPatientLocation", "DeviceSerialNumber", "AccessionNumber"):
        assert table.loc[keyword, "severity"] == "warn"
    assert finding.examples == ()  # no image ids given: no examples


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_presence_matches_pydicom_and_no_value_leaks(path):
    try:
        expected, values = _reference(path)
    except Exception:  # noqa: BLE001 - deliberately broken test files
        finding = check_dicom_phi([path], image_ids=["x"])
        assert finding.params["n_files_unreadable"] in (0, 1)
        return
    finding = check_dicom_phi([path], image_ids=["img-1"])
    text = json.dumps(finding.to_dict(), allow_nan=False)
    found = set(finding.table["keyword"]) & {row.keyword for row in BASIC_PROFILE}
    assert found == expected
    _assert_no_values(text, values)
    direct = {row.keyword for row in BASIC_PROFILE if row.category == "direct"}
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    deidentified = str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"
    failing = expected & direct
    if deidentified:
        failing -= {"PatientName", "PatientID"}
    assert (finding.status is Status.FAIL) == bool(failing)


def test_all_files_at_once_counts_each_file():
    finding = check_dicom_phi(ALL_FILES)
    assert finding.params["n_files"] == len(ALL_FILES)
    table = finding.table.set_index("keyword")
    n_audited = len(ALL_FILES) - finding.params["n_files_unreadable"]
    assert (table["n_files_audited"] == n_audited).all()
    assert table.loc["PatientName", "n_files_present"] <= n_audited
    assert finding.status is Status.FAIL


def test_header_table_input_audits_only_its_columns():
    paths = [get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")]
    index = dicom_header_index(paths)
    finding = check_dicom_phi(index, image_ids=["ct", "mr"])
    table = finding.table.set_index("keyword")
    assert table.loc["PatientName", "n_files_present"] == 2
    assert "OtherPatientIDsSequence" in finding.params["attributes_not_audited"]
    assert "Only the profile attributes present as columns" in finding.message
    text = json.dumps(finding.to_dict(), allow_nan=False)
    for column in ("PatientName", "PatientID", "StudyInstanceUID", "InstitutionName"):
        _assert_no_values(text, [str(v) for v in index[column].dropna()])


def test_header_table_rows_with_errors_are_not_audited(tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not dicom at all")
    index = dicom_header_index([get_testdata_file("CT_small.dcm"), broken])
    finding = check_dicom_phi(index)
    assert finding.params["n_files_unreadable"] == 1
    assert (finding.table["n_files_audited"] == 1).all()


# -- synthetic files: pseudonyms, flags, a clean file ----------------------------------------


def _write(tmp_path: Path, name: str, **attributes) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def test_pseudonyms_in_flagged_files_warn(tmp_path):
    flagged = _write(tmp_path, "a.dcm", PatientName="SUBJ^0017", PatientID="SUBJ0017",
                     PatientIdentityRemoved="YES", DeidentificationMethod="claimladder test")
    finding = check_dicom_phi([flagged])
    table = finding.table.set_index("keyword")
    assert finding.status is Status.WARN
    assert table.loc["PatientName", "severity"] == "warn"
    assert "pseudonym" in table.loc["PatientID", "note"]
    assert table.loc["SOPInstanceUID", "severity"] == "info"  # assumed remapped

    unflagged = _write(tmp_path, "b.dcm", PatientName="SUBJ^0018", PatientID="SUBJ0018")
    finding = check_dicom_phi([flagged, unflagged], image_ids=["a", "b"])
    assert finding.status is Status.FAIL
    assert finding.examples == ("b",)
    assert finding.table.set_index("keyword").loc["SOPInstanceUID", "severity"] == "warn"


def test_birth_date_fails_even_in_flagged_files(tmp_path):
    path = _write(tmp_path, "c.dcm", PatientBirthDate="19500101", PatientIdentityRemoved="YES")
    finding = check_dicom_phi([path])
    assert finding.status is Status.FAIL
    assert "19500101" not in json.dumps(finding.to_dict())


def test_clean_deidentified_file_passes(tmp_path):
    path = _write(tmp_path, "d.dcm", PatientIdentityRemoved="YES", PatientSex="F",
                  PatientAge="045Y", BurnedInAnnotation="NO")
    finding = check_dicom_phi([path], image_ids=["d"])
    assert finding.status is Status.PASS
    assert set(finding.table["severity"]) == {"info"}
    assert finding.examples == ()


def test_burned_in_annotation_and_overlays_warn(tmp_path):
    path = _write(tmp_path, "e.dcm", PatientIdentityRemoved="YES", BurnedInAnnotation="YES")
    ds = pydicom.dcmread(path)
    ds.add_new(0x60023000, "OW", b"\x01\x00" * 8)  # overlay data in an odd-numbered overlay
    ds.save_as(path)
    finding = check_dicom_phi([path])
    table = finding.table.set_index("keyword")
    assert finding.status is Status.WARN
    assert table.loc["BurnedInAnnotation", "n_files_present"] == 1
    assert table.loc["OverlayData", "n_files_present"] == 1


def test_private_tags_warn(tmp_path):
    path = _write(tmp_path, "f.dcm", PatientIdentityRemoved="YES")
    ds = pydicom.dcmread(path)
    block = ds.private_block(0x0011, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "site-42 secret")
    ds.save_as(path)
    finding = check_dicom_phi([path])
    assert finding.status is Status.WARN
    assert finding.table.set_index("keyword").loc["(private attributes)", "severity"] == "warn"
    assert "site-42 secret" not in json.dumps(finding.to_dict())


# -- misuse and degenerate input --------------------------------------------------------------


def test_unreadable_files_only_is_not_evaluable(tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not dicom at all")
    finding = check_dicom_phi([broken])
    assert finding.status is Status.NOT_EVALUABLE
    assert finding.params["n_files_unreadable"] == 1


def test_image_ids_must_align():
    with pytest.raises(AlignmentError, match="one image id per file"):
        check_dicom_phi([get_testdata_file("CT_small.dcm")], image_ids=["a", "b"])


def test_folder_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="dicom_header_index"):
        check_dicom_phi([tmp_path])


def test_other_input_types_are_refused():
    with pytest.raises(TypeError, match="header table"):
        check_dicom_phi(42)


def test_single_path_string_is_accepted():
    finding = check_dicom_phi(get_testdata_file("MR_small.dcm"))
    assert finding.params["n_files"] == 1
    assert isinstance(finding.table, pd.DataFrame)
    assert np.all(finding.table["n_files_present"] >= 1)
