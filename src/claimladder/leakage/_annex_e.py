"""A subset of the DICOM Basic Application Level Confidentiality Profile, as data.

Source: DICOM PS3.15 2024b, Annex E "Attribute Confidentiality Profiles",
Table E.1-1 "Application Level Confidentiality Profile Attributes", column
"Basic Prof.". The rows below were transcribed for claimladder (keyword, tag,
action code) and checked against pydicom's data dictionary for the keyword and
tag; the action codes follow the standard's notation:

``D``
    replace with a non-zero length dummy value;
``Z``
    replace with a zero length or dummy value;
``X``
    remove;
``U``
    replace with a consistent non-zero length UID;
``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``
    the stricter or looser action depending on the Information Object
    Definition (Type 1, 2 or 3 attribute, sequence content).

The ``category`` column is claimladder's own grouping, which decides how a
present attribute weighs in :func:`check_dicom_phi`:

``direct``
    identifies the patient directly (names, identifiers, birth date, address,
    telephone, insurance): the audit fails.
``other_id``, ``date_time``, ``institution``, ``staff``, ``device``, ``uid``,
``free_text``, ``personal``
    indirect identifiers or fields that may carry identifying text: the audit
    warns.
``descriptor``, ``characteristic``
    kept by the profile's Clean Descriptors and Retain Patient Characteristics
    options, needed by most studies (sex and age for the bias audit): reported
    for information only.

Two rows are not in Table E.1-1 but belong to the same audit: Burned In
Annotation (0028,0301), whose value ``YES`` calls for the Clean Pixel Data
Option (PS3.15 E.3.1), and Patient Identity Removed (0012,0062), which the
profile requires a de-identifier to set to ``YES`` (PS3.15 E.1.1).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BASIC_PROFILE", "CATEGORY_SEVERITY", "ProfileAttribute", "profile_by_tag"]


class ProfileAttribute(NamedTuple):
    """One row of the profile: keyword, tag ``(group, element)``, action code, category."""

    keyword: str
    group: int
    element: int
    action: str
    category: str

    @property
    def tag(self) -> int:
        """The tag as one integer, ``0xGGGGEEEE``."""
        return (self.group << 16) | self.element

    @property
    def tag_text(self) -> str:
        """The tag as DICOM writes it, ``"(0010,0010)"``."""
        return f"({self.group:04X},{self.element:04X})"


_P = ProfileAttribute

#: Rows of PS3.15 2024b Table E.1-1 (Basic Profile column) audited by
#: :func:`~claimladder.leakage.check_dicom_phi`, in tag order within each block.
BASIC_PROFILE: tuple[ProfileAttribute, ...] = (
    # File meta information and SOP common
    _P("MediaStorageSOPInstanceUID", 0x0002, 0x0003, "U", "uid"),
    _P("InstanceCreationDate", 0x0008, 0x0012, "X/D", "date_time"),
    _P("InstanceCreationTime", 0x0008, 0x0013, "X/D", "date_time"),
    _P("InstanceCreatorUID", 0x0008, 0x0014, "U", "uid"),
    _P("SOPInstanceUID", 0x0008, 0x0018, "U", "uid"),
    _P("StudyDate", 0x0008, 0x0020, "Z", "date_time"),
    _P("SeriesDate", 0x0008, 0x0021, "X/D", "date_time"),
    _P("AcquisitionDate", 0x0008, 0x0022, "X/D", "date_time"),
    _P("ContentDate", 0x0008, 0x0023, "Z/D", "date_time"),
    _P("AcquisitionDateTime", 0x0008, 0x002A, "X/D", "date_time"),
    _P("StudyTime", 0x0008, 0x0030, "Z", "date_time"),
    _P("SeriesTime", 0x0008, 0x0031, "X/D", "date_time"),
    _P("AcquisitionTime", 0x0008, 0x0032, "X/D", "date_time"),
    _P("ContentTime", 0x0008, 0x0033, "Z/D", "date_time"),
    _P("AccessionNumber", 0x0008, 0x0050, "Z", "other_id"),
    _P("InstitutionName", 0x0008, 0x0080, "X/Z/D", "institution"),
    _P("InstitutionAddress", 0x0008, 0x0081, "X", "institution"),
    _P("InstitutionCodeSequence", 0x0008, 0x0082, "X/Z/D", "institution"),
    _P("ReferringPhysicianName", 0x0008, 0x0090, "Z", "staff"),
    _P("ReferringPhysicianAddress", 0x0008, 0x0092, "X", "staff"),
    _P("ReferringPhysicianTelephoneNumbers", 0x0008, 0x0094, "X", "staff"),
    _P("ReferringPhysicianIdentificationSequence", 0x0008, 0x0096, "X", "staff"),
    _P("ConsultingPhysicianName", 0x0008, 0x009C, "X", "staff"),
    _P("TimezoneOffsetFromUTC", 0x0008, 0x0201, "X", "date_time"),
    _P("NetworkID", 0x0008, 0x1000, "X", "device"),
    _P("StationName", 0x0008, 0x1010, "X/Z/D", "device"),
    _P("StudyDescription", 0x0008, 0x1030, "X", "descriptor"),
    _P("SeriesDescription", 0x0008, 0x103E, "X", "descriptor"),
    _P("InstitutionalDepartmentName", 0x0008, 0x1040, "X", "institution"),
    _P("PhysiciansOfRecord", 0x0008, 0x1048, "X", "staff"),
    _P("PerformingPhysicianName", 0x0008, 0x1050, "X", "staff"),
    _P("NameOfPhysiciansReadingStudy", 0x0008, 0x1060, "X", "staff"),
    _P("OperatorsName", 0x0008, 0x1070, "X/Z/D", "staff"),
    _P("AdmittingDiagnosesDescription", 0x0008, 0x1080, "X", "free_text"),
    _P("ReferencedStudySequence", 0x0008, 0x1110, "X/Z", "other_id"),
    _P("ReferencedPerformedProcedureStepSequence", 0x0008, 0x1111, "X/Z/D", "other_id"),
    _P("ReferencedPatientSequence", 0x0008, 0x1120, "X", "other_id"),
    _P("ReferencedImageSequence", 0x0008, 0x1140, "X/Z/U*", "other_id"),
    _P("ReferencedSOPInstanceUID", 0x0008, 0x1155, "U", "uid"),
    _P("DerivationDescription", 0x0008, 0x2111, "X", "free_text"),
    _P("SourceImageSequence", 0x0008, 0x2112, "X/Z/U*", "other_id"),
    _P("IrradiationEventUID", 0x0008, 0x3010, "U", "uid"),
    # Patient
    _P("PatientName", 0x0010, 0x0010, "Z", "direct"),
    _P("PatientID", 0x0010, 0x0020, "Z", "direct"),
    _P("IssuerOfPatientID", 0x0010, 0x0021, "X", "other_id"),
    _P("PatientBirthDate", 0x0010, 0x0030, "Z", "direct"),
    _P("PatientBirthTime", 0x0010, 0x0032, "X", "direct"),
    _P("PatientBirthDateInAlternativeCalendar", 0x0010, 0x0033, "X", "direct"),
    _P("PatientSex", 0x0010, 0x0040, "Z", "characteristic"),
    _P("PatientInsurancePlanCodeSequence", 0x0010, 0x0050, "X", "direct"),
    _P("OtherPatientIDs", 0x0010, 0x1000, "X", "direct"),
    _P("OtherPatientNames", 0x0010, 0x1001, "X", "direct"),
    _P("OtherPatientIDsSequence", 0x0010, 0x1002, "X", "direct"),
    _P("PatientBirthName", 0x0010, 0x1005, "X", "direct"),
    _P("PatientAge", 0x0010, 0x1010, "X", "characteristic"),
    _P("PatientSize", 0x0010, 0x1020, "X", "characteristic"),
    _P("PatientWeight", 0x0010, 0x1030, "X", "characteristic"),
    _P("PatientAddress", 0x0010, 0x1040, "X", "direct"),
    _P("PatientMotherBirthName", 0x0010, 0x1060, "X", "direct"),
    _P("MilitaryRank", 0x0010, 0x1080, "X", "personal"),
    _P("BranchOfService", 0x0010, 0x1081, "X", "personal"),
    _P("MedicalRecordLocator", 0x0010, 0x1090, "X", "direct"),
    _P("MedicalAlerts", 0x0010, 0x2000, "X", "free_text"),
    _P("Allergies", 0x0010, 0x2110, "X", "free_text"),
    _P("CountryOfResidence", 0x0010, 0x2150, "X", "personal"),
    _P("RegionOfResidence", 0x0010, 0x2152, "X", "personal"),
    _P("PatientTelephoneNumbers", 0x0010, 0x2154, "X", "direct"),
    _P("PatientTelecomInformation", 0x0010, 0x2155, "X", "direct"),
    _P("EthnicGroup", 0x0010, 0x2160, "X", "characteristic"),
    _P("Occupation", 0x0010, 0x2180, "X", "personal"),
    _P("SmokingStatus", 0x0010, 0x21A0, "X", "characteristic"),
    _P("AdditionalPatientHistory", 0x0010, 0x21B0, "X", "free_text"),
    _P("PregnancyStatus", 0x0010, 0x21C0, "X", "characteristic"),
    _P("LastMenstrualDate", 0x0010, 0x21D0, "X", "date_time"),
    _P("PatientReligiousPreference", 0x0010, 0x21F0, "X", "personal"),
    _P("ResponsiblePerson", 0x0010, 0x2297, "X", "direct"),
    _P("ResponsibleOrganization", 0x0010, 0x2299, "X", "personal"),
    _P("PatientComments", 0x0010, 0x4000, "X", "free_text"),
    # Acquisition and equipment
    _P("ContrastBolusAgent", 0x0018, 0x0010, "Z/D", "descriptor"),
    _P("DeviceSerialNumber", 0x0018, 0x1000, "X/Z/D", "device"),
    _P("DeviceUID", 0x0018, 0x1002, "U", "uid"),
    _P("DateOfSecondaryCapture", 0x0018, 0x1012, "X", "date_time"),
    _P("TimeOfSecondaryCapture", 0x0018, 0x1014, "X", "date_time"),
    _P("ProtocolName", 0x0018, 0x1030, "X/D", "descriptor"),
    _P("DateOfLastCalibration", 0x0018, 0x1200, "X", "date_time"),
    _P("TimeOfLastCalibration", 0x0018, 0x1201, "X", "date_time"),
    _P("AcquisitionDeviceProcessingDescription", 0x0018, 0x1400, "X/D", "descriptor"),
    _P("AcquisitionComments", 0x0018, 0x4000, "X", "free_text"),
    _P("DetectorID", 0x0018, 0x700A, "X/D", "device"),
    # Study, series, frame of reference
    _P("StudyInstanceUID", 0x0020, 0x000D, "U", "uid"),
    _P("SeriesInstanceUID", 0x0020, 0x000E, "U", "uid"),
    _P("StudyID", 0x0020, 0x0010, "Z", "other_id"),
    _P("FrameOfReferenceUID", 0x0020, 0x0052, "U", "uid"),
    _P("SynchronizationFrameOfReferenceUID", 0x0020, 0x0200, "U", "uid"),
    _P("ImageComments", 0x0020, 0x4000, "X", "free_text"),
    _P("FrameComments", 0x0020, 0x9158, "X", "free_text"),
    # Requests, visits and procedure steps
    _P("ReasonForStudy", 0x0032, 0x1030, "X", "free_text"),
    _P("RequestingPhysician", 0x0032, 0x1032, "X", "staff"),
    _P("RequestingService", 0x0032, 0x1033, "X/Z/D", "institution"),
    _P("RequestedProcedureDescription", 0x0032, 0x1060, "X/Z", "descriptor"),
    _P("StudyComments", 0x0032, 0x4000, "X", "free_text"),
    _P("AdmissionID", 0x0038, 0x0010, "X", "other_id"),
    _P("AdmittingDate", 0x0038, 0x0020, "X", "date_time"),
    _P("AdmittingTime", 0x0038, 0x0021, "X", "date_time"),
    _P("CurrentPatientLocation", 0x0038, 0x0300, "X", "personal"),
    _P("PatientState", 0x0038, 0x0500, "X", "free_text"),
    _P("ScheduledPerformingPhysicianName", 0x0040, 0x0006, "X", "staff"),
    _P("ScheduledProcedureStepID", 0x0040, 0x0009, "X", "other_id"),
    _P("PerformedProcedureStepStartDate", 0x0040, 0x0244, "X", "date_time"),
    _P("PerformedProcedureStepStartTime", 0x0040, 0x0245, "X", "date_time"),
    _P("PerformedProcedureStepEndDate", 0x0040, 0x0250, "X", "date_time"),
    _P("PerformedProcedureStepEndTime", 0x0040, 0x0251, "X", "date_time"),
    _P("PerformedProcedureStepID", 0x0040, 0x0253, "X", "other_id"),
    _P("PerformedProcedureStepDescription", 0x0040, 0x0254, "X", "descriptor"),
    _P("RequestAttributesSequence", 0x0040, 0x0275, "X", "other_id"),
    _P("RequestedProcedureID", 0x0040, 0x1001, "X", "other_id"),
    _P("ReasonForTheRequestedProcedure", 0x0040, 0x1002, "X", "free_text"),
    _P("RequestedProcedureComments", 0x0040, 0x1400, "X", "free_text"),
    _P("VerifyingObserverName", 0x0040, 0xA075, "D", "staff"),
    _P("PersonName", 0x0040, 0xA123, "D", "staff"),
    _P("TextValue", 0x0040, 0xA160, "X", "free_text"),
    _P("ContentCreatorName", 0x0070, 0x0084, "Z", "staff"),
    _P("StorageMediaFileSetUID", 0x0088, 0x0140, "U", "uid"),
    _P("TextString", 0x2030, 0x0020, "X", "free_text"),
    # Repeating groups: the tag shown is the first group (6000 / 5000); the
    # audit matches every even group of the range (60xx, 50xx).
    _P("CurveData", 0x5000, 0x3000, "X", "pixel"),
    _P("OverlayData", 0x6000, 0x3000, "X", "pixel"),
    _P("OverlayComments", 0x6000, 0x4000, "X", "free_text"),
)

#: How a present attribute of each category weighs on the audit's status.
CATEGORY_SEVERITY: dict[str, str] = {
    "direct": "fail",
    "other_id": "warn",
    "date_time": "warn",
    "institution": "warn",
    "staff": "warn",
    "device": "warn",
    "uid": "warn",
    "free_text": "warn",
    "personal": "warn",
    "pixel": "warn",
    "private": "warn",
    "descriptor": "info",
    "characteristic": "info",
}

#: Repeating-group bases: a tag ``(gg xx, eeee)`` with an even ``xx`` maps to ``(gg00, eeee)``.
REPEATING_GROUP_BASES = (0x5000, 0x6000)


def profile_by_tag() -> dict[int, ProfileAttribute]:
    """The profile rows keyed by tag integer (repeating groups by their first group)."""
    return {row.tag: row for row in BASIC_PROFILE}


def canonical_tag(tag: int) -> int:
    """Map a repeating-group tag (``60xx,eeee``, ``50xx,eeee``) onto its first group."""
    group = tag >> 16
    base = group & 0xFF00
    if base in REPEATING_GROUP_BASES and group % 2 == 0:
        return (base << 16) | (tag & 0xFFFF)
    return tag
