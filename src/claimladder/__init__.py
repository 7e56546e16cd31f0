"""claimladder: verify a medical-imaging AI claim by climbing a verification ladder.

The public data model lives here; each rung's checks live in their subpackages
(``claimladder.cohort``, ``claimladder.metrics``, ...), the runner in
``claimladder.ladder`` and the report in ``claimladder.report``.
"""

from ._core import (
    SCHEMA_VERSION,
    AlignmentError,
    ClaimladderError,
    CohortSchemaError,
    ConfidenceInterval,
    Estimate,
    Evidence,
    Finding,
    ImageReadError,
    Plot,
    Rung,
    RungVerdict,
    SmallSampleWarning,
    Status,
    StudySpecError,
    TableReadError,
    UndefinedMetricWarning,
)
from ._schema import evidence_schema

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "AlignmentError",
    "ClaimladderError",
    "CohortSchemaError",
    "ConfidenceInterval",
    "Estimate",
    "Evidence",
    "Finding",
    "ImageReadError",
    "Plot",
    "Rung",
    "RungVerdict",
    "SmallSampleWarning",
    "Status",
    "StudySpecError",
    "TableReadError",
    "UndefinedMetricWarning",
    "evidence_schema",
    "__version__",
]
