"""The ladder: the study spec, the rung runner, verdicts and the evidence."""

from ._data import StudyData, load_study_data
from ._init import guess_roles, write_study_template
from ._partitions import partition_image_ids, study_partitions
from ._run import RUNG_RUNNERS, evaluate, not_validated_for, run_ladder
from ._spec import CRITERIA_DEFAULTS, STUDY_SCHEMA, validate_spec
from ._stream import StreamedCohortAudit, stream_cohort_audit
from ._study import Study, load_study, study_from_mapping

__all__ = [
    "CRITERIA_DEFAULTS",
    "RUNG_RUNNERS",
    "STUDY_SCHEMA",
    "StreamedCohortAudit",
    "Study",
    "StudyData",
    "evaluate",
    "guess_roles",
    "load_study",
    "load_study_data",
    "not_validated_for",
    "partition_image_ids",
    "run_ladder",
    "stream_cohort_audit",
    "study_from_mapping",
    "study_partitions",
    "validate_spec",
    "write_study_template",
]
