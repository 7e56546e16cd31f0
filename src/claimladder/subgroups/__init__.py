"""Bias audit: metrics per subgroup and intersection, disparities, multiplicity-aware flags."""

from ._audit import GAP_COLUMNS, TABLE_COLUMNS, SubgroupAudit, gap_estimate, metric_table
from ._groups import MISSING, age_band_labels, intersection_labels, subgroup_labels

__all__ = [
    "GAP_COLUMNS",
    "MISSING",
    "TABLE_COLUMNS",
    "SubgroupAudit",
    "age_band_labels",
    "gap_estimate",
    "intersection_labels",
    "metric_table",
    "subgroup_labels",
]
