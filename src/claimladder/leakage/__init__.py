"""Leakage audit: patient overlap, duplicates, metadata, file names, pixels and DICOM PHI.

Every check returns a :class:`~claimladder.Finding` on rung 1 (internal
validation) whose table, message and examples never quote identifier values:
examples are image ids, tables hold counts, column names and DICOM keywords.
"""

from ._annex_e import BASIC_PROFILE, CATEGORY_SEVERITY, ProfileAttribute
from ._dicom_phi import check_dicom_phi
from ._filenames import check_filename_label, tokenize_path
from ._metadata import WORKFLOW_FIELDS, check_metadata_label, is_workflow_field
from ._overlap import FUZZY_IDENTITY, IDENTITY_KEYS, check_patient_overlap, check_split_column
from ._pixels import (
    check_burned_in_text,
    check_near_duplicates,
    check_pixel_markers,
    marker_flags,
    ocr_counts,
    partition_labels,
    pixel_regions,
)
from ._preprocessing import FittedTransform, check_preprocessing_fit

__all__ = [
    "BASIC_PROFILE",
    "CATEGORY_SEVERITY",
    "FUZZY_IDENTITY",
    "IDENTITY_KEYS",
    "WORKFLOW_FIELDS",
    "FittedTransform",
    "ProfileAttribute",
    "check_burned_in_text",
    "check_dicom_phi",
    "check_filename_label",
    "check_metadata_label",
    "check_near_duplicates",
    "check_patient_overlap",
    "check_pixel_markers",
    "check_preprocessing_fit",
    "check_split_column",
    "is_workflow_field",
    "marker_flags",
    "ocr_counts",
    "partition_labels",
    "pixel_regions",
    "tokenize_path",
]
