"""Bias audit: metrics per subgroup and intersection, disparities, multiplicity-aware flags."""

from ._audit import TABLE_COLUMNS, SubgroupAudit, gap_estimate, holm_adjust, metric_table
from ._groups import MISSING, age_band_labels, intersection_labels, subgroup_labels

__all__ = [
    "MISSING",
    "TABLE_COLUMNS",
    "SubgroupAudit",
    "age_band_labels",
    "gap_estimate",
    "holm_adjust",
    "intersection_labels",
    "metric_table",
    "subgroup_labels",
]
