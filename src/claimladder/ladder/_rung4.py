"""Rung 4, calibration and "I don't know": ECE per test partition, reliability, abstention."""

from __future__ import annotations

import math

import pandas as pd

from .._core import Estimate, ConfidenceInterval, Finding, Plot, Rung, Status
from ..calibration import abstention_rule, calibration_table, evaluate_abstention, reliability_curve
from ._common import captured_warnings, metric_options, test_partitions
from ._data import StudyData

__all__ = ["calibration_findings"]

_N_BINS = 10


def _row_estimate(row: pd.Series) -> Estimate:
    return Estimate(value=row["estimate"], ci=ConfidenceInterval(low=row["ci_low"],
                                                                high=row["ci_high"]),
                    confidence_level=float(row["confidence_level"]), method=str(row["method"]),
                    n=int(row["n"]),
                    n_clusters=None if pd.isna(row["n_clusters"]) else int(row["n_clusters"]),
                    n_pos=None if pd.isna(row["n_pos"]) else int(row["n_pos"]))


def calibration_findings(data: StudyData) -> list[Finding]:
    """ECE with a clustered CI per test partition against ``calibration.max_ece``, the
    reliability diagram, and an abstention rule chosen on the calibration partition.

    ECE is biased upwards in small samples, so a partition fails only when the whole
    interval lies above the criterion and warns when the point estimate does.
    """
    if data.scores is None:
        return [Finding(check="calibration.ece", rung=Rung.CALIBRATION,
                        status=Status.NOT_EVALUABLE,
                        message="No predictions were given, so calibration was not measured.")]
    cohort, parts = data.cohort, data.partitions
    y, s, g = cohort.y_true, data.scores, cohort.patient_ids
    limit = float(data.study.criterion("calibration", "max_ece"))
    options = metric_options(data)
    names = test_partitions(data)
    findings, curves = [], []
    for index, name in enumerate(names):
        mask = parts.masks[name]
        with captured_warnings():
            table = calibration_table(
                y[mask], s[mask], metrics=("expected_calibration_error",
                                           "calibration_in_the_large", "brier_score"),
                n_bins=_N_BINS, groups=g[mask], rng=data.study.seed + 40 + index, **options)
            curve = reliability_curve(y[mask], s[mask], n_bins=_N_BINS, groups=g[mask],
                                      confidence_level=options["confidence_level"])
        overall = table[table["group"] == "overall"].set_index("metric")
        ece = _row_estimate(overall.loc["expected_calibration_error"])
        citl = _row_estimate(overall.loc["calibration_in_the_large"])
        head = (f"{name}: ECE {ece.format()} ({_N_BINS} bins); mean predicted minus observed "
                f"{citl.format()}")
        params = {"partition": name, "n_bins": _N_BINS}
        if not ece.is_defined:
            status, message = Status.NOT_EVALUABLE, f"{name}: ECE is undefined (n={ece.n})."
        elif ece.ci.low > limit:
            status, message = Status.FAIL, f"{head}: miscalibrated beyond {limit:.2f}."
            params["not_validated_for"] = (f"{name}: probabilities are miscalibrated "
                                           f"(ECE {ece.format()})")
        elif ece.value > limit:
            status, message = Status.WARN, (f"{head}: above {limit:.2f}, but the interval "
                                            "does not exclude a value within it.")
        else:
            status, message = Status.PASS, f"{head}: within {limit:.2f}."
        findings.append(Finding(
            check="calibration.ece", rung=Rung.CALIBRATION, status=status, message=message,
            estimate=ece, criterion=f"ECE <= {limit:.2f}", table=table, params=params))
        curves.append(curve[curve["group"] == "overall"].assign(partition=name))
    curve_table = pd.concat(curves, ignore_index=True)
    findings.append(Finding(
        check="calibration.reliability", rung=Rung.CALIBRATION, status=Status.PASS,
        message="Observed positive rate against mean predicted probability, per test partition "
                "(Wilson bands, design-effect adjusted for patients).",
        table=curve_table[["partition", "bin", "mean_predicted", "observed", "ci_low",
                           "ci_high", "n"]],
        plots=(Plot(kind="reliability", title="Reliability diagram per test partition",
                    data=curve_table[["partition", "mean_predicted", "observed", "ci_low",
                                      "ci_high", "n"]]),)))
    findings.extend(_abstention(data, names))
    return findings


def _abstention(data: StudyData, names: list[str]) -> list[Finding]:
    """Choose on the calibration partition the confidence below which the model abstains so
    that its error among answered cases meets the target; measure abstention per set."""
    parts, cohort = data.partitions, data.cohort
    target = float(data.study.criterion("calibration", "target_error"))
    if "calibration" not in parts.masks:
        return [Finding(check="calibration.abstention", rung=Rung.CALIBRATION,
                        status=Status.NOT_EVALUABLE,
                        message="No calibration partition is declared, so no abstention rule "
                                "could be chosen without touching test data.")]
    y, s, g = cohort.y_true, data.scores, cohort.patient_ids
    cal = parts.masks["calibration"]
    threshold = float(data.study.metrics["threshold"])
    with captured_warnings():
        rule = abstention_rule(y[cal], s[cal], target_error=target, partition="calibration",
                               threshold=threshold, groups=g[cal])
    rows, findings = [], []
    for index, name in enumerate(names):
        mask = parts.masks[name]
        with captured_warnings():
            result = evaluate_abstention(rule, y[mask], s[mask], groups=g[mask],
                                         rng=data.study.seed + 50 + index,
                                         **metric_options(data))
        err, abstain = result.error, result.abstention_rate
        rows.append({"partition": name, "abstention_rate": abstain.value,
                     "abstention_ci_low": abstain.ci.low, "abstention_ci_high": abstain.ci.high,
                     "error_answered": err.value, "error_ci_low": err.ci.low,
                     "error_ci_high": err.ci.high, "n": abstain.n})
        head = (f"{name}: the model says \"I don't know\" on {abstain.format()} of cases; error "
                f"among answered cases {err.format()} (target {target:.2f}, rule chosen on the "
                "calibration partition)")
        if not err.is_defined:
            status, message = Status.NOT_EVALUABLE, f"{head}."
        elif err.ci.low > target:
            status, message = Status.FAIL, f"{head}: the rule does not transfer."
        elif err.value > target:
            status, message = Status.WARN, f"{head}: above target, inconclusive."
        else:
            status, message = Status.PASS, f"{head}."
        findings.append(Finding(check="calibration.abstention", rung=Rung.CALIBRATION,
                                status=status, message=message, estimate=abstain,
                                criterion=f"error among answered cases <= {target:.2f}",
                                params={"partition": name,
                                        "confidence_threshold": _finite(
                                            rule.confidence_threshold),
                                        "fit_partition": "calibration"}))
    findings.append(Finding(
        check="calibration.abstention_by_partition", rung=Rung.CALIBRATION, status=Status.PASS,
        message=f"Abstention rule (confidence >= {_finite(rule.confidence_threshold)}) chosen on "
                f"the calibration partition for error <= {target:.2f}; how often it abstains "
                "per test partition.",
        table=pd.DataFrame(rows),
        plots=(Plot(kind="forest", title="Abstention rate per test partition",
                    data=pd.DataFrame({"label": [r["partition"] for r in rows],
                                       "estimate": [r["abstention_rate"] for r in rows],
                                       "ci_low": [r["abstention_ci_low"] for r in rows],
                                       "ci_high": [r["abstention_ci_high"] for r in rows]}),
                    options={"xlabel": "fraction of cases without an answer"}),)))
    return findings


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)
