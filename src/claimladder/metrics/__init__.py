"""Metrics with confidence intervals for patient-clustered data.

Every metric returns an :class:`~claimladder._core.Estimate` (value, interval,
method, n, n_clusters, n_pos). ``groups`` are cluster (patient) ids: when
given, bootstraps resample patients rather than images and DeLong uses
Obuchowski's clustered variance. Bootstrap replicates are integer weights over
data sorted once (no per-replicate sort), so thousands of replicates over a
million rows take seconds; :func:`grouped_metric` evaluates every subgroup on
the same replicates in one pass.
"""

from ._binary import (
    METRICS,
    BootstrapDistribution,
    accuracy,
    average_precision,
    balanced_accuracy,
    bootstrap_distribution,
    brier_score,
    f1,
    log_loss,
    npv,
    ppv,
    roc_auc,
    sensitivity,
    specificity,
)
from ._compare import Comparison, bootstrap_p_value, compare_paired, compare_unpaired
from ._grouped import GroupedEstimate, grouped_metric, grouped_roc_auc
from ._multiclass import roc_auc_ovr
from ._multiplicity import holm_adjust
from ._thresholds import (
    Threshold,
    choose_threshold,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
)

__all__ = [
    "METRICS",
    "BootstrapDistribution",
    "Comparison",
    "GroupedEstimate",
    "Threshold",
    "accuracy",
    "average_precision",
    "balanced_accuracy",
    "bootstrap_distribution",
    "bootstrap_p_value",
    "brier_score",
    "choose_threshold",
    "compare_paired",
    "compare_unpaired",
    "f1",
    "grouped_metric",
    "grouped_roc_auc",
    "holm_adjust",
    "log_loss",
    "npv",
    "ppv",
    "roc_auc",
    "roc_auc_ovr",
    "sensitivity",
    "sensitivity_at_specificity",
    "specificity",
    "specificity_at_sensitivity",
]
