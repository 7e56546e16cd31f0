"""Clinical relevance (rung 6): baselines, decision curves and triage simulation.

A claimed model must beat what a reviewer could build without it: the
prevalence, a model of the metadata alone (site, scanner, view, priority ...)
and simple image heuristics. Decision curves say whether acting on its
predictions beats treating everyone or no one (Vickers & Elkin 2006); the
triage simulation says how much work a threshold chosen on development data
saves on each test set, and at what cost in missed positives. Intervals come
from the metrics engine: paired DeLong or paired cluster bootstrap for the
comparisons, cluster bootstrap over patients for net benefit and triage.
"""

from ._baselines import (
    BASELINE_COLUMNS,
    MIN_CATEGORY_COUNT,
    check_metadata_baseline,
    compare_to_baselines,
    fit_metadata_baseline,
    heuristic_baseline,
    prevalence_baseline,
)
from ._decision import (
    DECISION_CURVE_COLUMNS,
    DEFAULT_THRESHOLDS,
    STRATEGIES,
    check_net_benefit,
    decision_curve_plot,
    net_benefit,
)
from ._triage import TRIAGE_COLUMNS, TRIAGE_METRICS, TriageResult, check_triage, triage

__all__ = [
    "BASELINE_COLUMNS",
    "DECISION_CURVE_COLUMNS",
    "DEFAULT_THRESHOLDS",
    "MIN_CATEGORY_COUNT",
    "STRATEGIES",
    "TRIAGE_COLUMNS",
    "TRIAGE_METRICS",
    "TriageResult",
    "check_metadata_baseline",
    "check_net_benefit",
    "check_triage",
    "compare_to_baselines",
    "decision_curve_plot",
    "fit_metadata_baseline",
    "heuristic_baseline",
    "net_benefit",
    "prevalence_baseline",
    "triage",
]
