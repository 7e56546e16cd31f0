"""Rung 4, calibration and uncertainty: is the model's confidence trustworthy?

Calibration metrics with (patient-clustered) bootstrap intervals computed by
the engine of :mod:`claimladder.metrics` (binned and debiased ECE, smooth ECE,
MCE, Brier decomposition, calibration-in-the-large, O/E, calibration intercept
and slope, Spiegelhalter's test, reliability curves, multiclass top-label and
classwise ECE, and :func:`calibration_table` for every subgroup at once);
recalibration maps, conformal prediction sets and abstention rules that are
fitted on a named partition and refuse test or sealed ones; risk-coverage
curves and AURC; and out-of-distribution flags. Functions take arrays and
return an :class:`~claimladder._core.Estimate` or a long DataFrame, so a rung
calls them once per partition or site.
"""

from ._binned import (
    BrierDecomposition,
    brier_score_decomposition,
    calibration_in_the_large,
    debiased_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    observed_expected_ratio,
)
from ._conformal import (
    CONFORMAL_SCORES,
    ConformalClassifier,
    conformal_coverage_table,
    conformal_sets,
    fit_conformal,
)
from ._curves import RELIABILITY_COLUMNS, reliability_curve
from ._logistic import (
    LogisticCalibration,
    SpiegelhalterTest,
    calibration_intercept,
    calibration_slope,
    logistic_calibration,
    spiegelhalter_test,
)
from ._multiclass import classwise_calibration_error, top_label_calibration_error
from ._ood import OOD_METHODS, OODDetector, fit_ood_detector, ood_flags, ood_scores, ood_summary
from ._recalibration import RECALIBRATION_METHODS, Recalibrator, fit_recalibration
from ._selective import (
    AbstentionEvaluation,
    AbstentionRule,
    abstention_rule,
    aurc,
    evaluate_abstention,
    risk_coverage_curve,
)
from ._smooth import smooth_calibration_error
from ._table import CALIBRATION_METRICS, DEFAULT_CALIBRATION_METRICS, calibration_table

__all__ = [
    "CALIBRATION_METRICS",
    "CONFORMAL_SCORES",
    "DEFAULT_CALIBRATION_METRICS",
    "OOD_METHODS",
    "RECALIBRATION_METHODS",
    "RELIABILITY_COLUMNS",
    "AbstentionEvaluation",
    "AbstentionRule",
    "BrierDecomposition",
    "ConformalClassifier",
    "LogisticCalibration",
    "OODDetector",
    "Recalibrator",
    "SpiegelhalterTest",
    "abstention_rule",
    "aurc",
    "brier_score_decomposition",
    "calibration_in_the_large",
    "calibration_intercept",
    "calibration_slope",
    "calibration_table",
    "classwise_calibration_error",
    "conformal_coverage_table",
    "conformal_sets",
    "debiased_calibration_error",
    "evaluate_abstention",
    "expected_calibration_error",
    "fit_conformal",
    "fit_ood_detector",
    "fit_recalibration",
    "logistic_calibration",
    "maximum_calibration_error",
    "observed_expected_ratio",
    "ood_flags",
    "ood_scores",
    "ood_summary",
    "reliability_curve",
    "risk_coverage_curve",
    "smooth_calibration_error",
    "spiegelhalter_test",
    "top_label_calibration_error",
]
