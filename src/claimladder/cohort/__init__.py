"""Cohort: loading, column roles, inclusion/exclusion flow, partitions, Table 1, missingness."""

from ._cohort import Cohort, format_rows, load_cohort
from ._describe import described_columns, missingness, table_one
from ._images import ImageFiles, check_image_files, read_cohort_images
from ._flow import CohortFlow, PartitionAssignment, apply_flow, assign_partitions
from ._predictions import Predictions, align_scores, load_predictions
from ._roles import LIST_ROLES, REQUIRED_ROLES, SINGLE_ROLES, ColumnRoles
from ._rules import evaluate_rule

__all__ = [
    "Cohort",
    "ColumnRoles",
    "CohortFlow",
    "PartitionAssignment",
    "Predictions",
    "LIST_ROLES",
    "REQUIRED_ROLES",
    "SINGLE_ROLES",
    "align_scores",
    "apply_flow",
    "assign_partitions",
    "check_image_files",
    "described_columns",
    "evaluate_rule",
    "format_rows",
    "load_cohort",
    "load_predictions",
    "missingness",
    "ImageFiles",
    "read_cohort_images",
    "table_one",
]
