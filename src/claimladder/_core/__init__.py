"""The lowest layer: errors, validation, randomness, atomic writes and result objects."""

from ._atomic import atomic_write_bytes, atomic_write_text
from ._errors import (
    AlignmentError,
    ClaimladderError,
    CohortSchemaError,
    ImageReadError,
    SmallSampleWarning,
    StudySpecError,
    TableReadError,
    UndefinedMetricWarning,
    UsageError,
)
from ._random import RngLike, check_rng, spawn
from ._results import (
    SCHEMA_VERSION,
    ConfidenceInterval,
    Estimate,
    Evidence,
    Finding,
    Plot,
    Rung,
    RungVerdict,
    Status,
    rung_verdict,
    table_from_dict,
    table_to_dict,
)
from ._validation import check_option, check_positive_int, check_probability, did_you_mean

__all__ = [
    "AlignmentError",
    "ClaimladderError",
    "CohortSchemaError",
    "ImageReadError",
    "SmallSampleWarning",
    "StudySpecError",
    "TableReadError",
    "UndefinedMetricWarning",
    "UsageError",
    "RngLike",
    "check_rng",
    "spawn",
    "SCHEMA_VERSION",
    "ConfidenceInterval",
    "Estimate",
    "Evidence",
    "Finding",
    "Plot",
    "Rung",
    "RungVerdict",
    "Status",
    "rung_verdict",
    "table_from_dict",
    "table_to_dict",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_option",
    "check_positive_int",
    "check_probability",
    "did_you_mean",
]
