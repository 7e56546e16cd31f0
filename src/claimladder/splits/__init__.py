"""Splits: patient-disjoint splitters, split manifests, sealed test sets and the tuning ledger.

Every splitter keeps all images of a patient on one side. A :class:`Split` records
which partition each image is in and how that was decided, with a content hash;
a :class:`Seal` locks a test partition's ids, labels and image files, and its
access log counts the evaluations made against it; the :class:`TuningLedger`
records what was fitted on which partition.
"""

from ._common import EXCLUDED_PREFIX, STRADDLER_POLICIES, IntegrityError, SplitError, SplitFileError
from ._ledger import (
    FIT_KINDS,
    FitRecord,
    TuningLedger,
    check_fit_partition,
    is_test_partition,
    read_ledger,
    write_ledger,
)
from ._manifest import SPLIT_BY, Split, read_split, split_cohort, split_sha256, write_split
from ._seal import (
    Seal,
    SealCheck,
    access_log_path,
    access_summary,
    check_sealed_access,
    count_evaluations,
    log_access,
    read_access_log,
    read_seal,
    seal_partition,
    seal_sha256,
    verify_seal,
    write_seal,
)
from ._splitters import (
    GroupHoldout,
    LeaveOneSiteOut,
    PatientHoldout,
    PatientKFold,
    ScannerHoldout,
    TemporalSplit,
    nested_partitions,
)

__all__ = [
    "EXCLUDED_PREFIX",
    "FIT_KINDS",
    "SPLIT_BY",
    "STRADDLER_POLICIES",
    "FitRecord",
    "GroupHoldout",
    "IntegrityError",
    "LeaveOneSiteOut",
    "PatientHoldout",
    "PatientKFold",
    "ScannerHoldout",
    "Seal",
    "SealCheck",
    "Split",
    "SplitError",
    "SplitFileError",
    "TemporalSplit",
    "TuningLedger",
    "access_log_path",
    "access_summary",
    "check_fit_partition",
    "check_sealed_access",
    "count_evaluations",
    "is_test_partition",
    "log_access",
    "nested_partitions",
    "read_access_log",
    "read_ledger",
    "read_seal",
    "read_split",
    "seal_partition",
    "seal_sha256",
    "split_cohort",
    "split_sha256",
    "verify_seal",
    "write_ledger",
    "write_seal",
    "write_split",
]
