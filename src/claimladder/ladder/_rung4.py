"""Rung 4, calibration and "I don't know": ECE per test partition, reliability, recalibration,
conformal sets, risk-coverage, out-of-distribution flags and abstention."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._core import ConfidenceInterval, Estimate, Finding, Plot, Rung, Status, spawn
from ..calibration import (
    RECALIBRATION_METHODS,
    abstention_rule,
    aurc,
    calibration_table,
    conformal_coverage_table,
    evaluate_abstention,
    fit_conformal,
    fit_ood_detector,
    fit_recalibration,
    ood_flags,
    ood_summary,
    reliability_curve,
    risk_coverage_curve,
    smooth_calibration_error,
)
from ._common import captured_warnings, metric_options, test_partitions
from ._data import StudyData
from ._pixels import pixel_summaries
from ._seals import sealed_partitions

__all__ = ["calibration_findings"]

_N_BINS = 10
#: Metrics of the per-partition calibration table; the smooth ECE is the one judged.
_TABLE_METRICS = ("smooth_calibration_error", "expected_calibration_error",
                  "calibration_in_the_large", "calibration_intercept", "calibration_slope",
                  "brier_score")
#: The partition every recalibration, conformal and abstention rule is fitted on.
_FIT_PARTITION = "calibration"
#: Bootstrap replicates of the descriptive before/after recalibration table (judges nothing;
#: 5 variants x every test partition at the study's count would dominate the rung's time).
_DESCRIPTIVE_RESAMPLES = 400


def _row_estimate(row: pd.Series) -> Estimate:
    return Estimate(value=row["estimate"], ci=ConfidenceInterval(low=row["ci_low"],
                                                                high=row["ci_high"]),
                    confidence_level=float(row["confidence_level"]), method=str(row["method"]),
                    n=int(row["n"]),
                    n_clusters=None if pd.isna(row["n_clusters"]) else int(row["n_clusters"]),
                    n_pos=None if pd.isna(row["n_pos"]) else int(row["n_pos"]))


def calibration_findings(data: StudyData) -> list[Finding]:
    """Smooth ECE with a clustered CI per test partition against ``calibration.max_ece``,
    the reliability diagram, recalibration maps, conformal sets, risk-coverage curves,
    out-of-distribution flags and an abstention rule, all fitted on the calibration partition
    (or, for the OOD detector, the development partition).

    The binned ECE is biased upwards in small samples (about 0.08 for a perfectly calibrated
    model on 200 cases in 10 bins), so the smooth ECE (Blasiok & Nakkiran 2023) is judged and
    the binned one is shown next to it. A partition fails only when the whole interval lies
    above the criterion and warns when the point estimate does.
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
                y[mask], s[mask], metrics=_TABLE_METRICS, n_bins=_N_BINS, groups=g[mask],
                rng=data.study.seed + 40 + index, **options)
            curve = reliability_curve(y[mask], s[mask], n_bins=_N_BINS, groups=g[mask],
                                      confidence_level=options["confidence_level"])
        overall = table[table["group"] == "overall"].set_index("metric")
        ece = _row_estimate(overall.loc["smooth_calibration_error"])
        binned = _row_estimate(overall.loc["expected_calibration_error"])
        citl = _row_estimate(overall.loc["calibration_in_the_large"])
        slope = _row_estimate(overall.loc["calibration_slope"])
        head = (f"{name}: smooth ECE {ece.format()} (binned, {_N_BINS} bins: "
                f"{binned.format()}); mean predicted minus observed {citl.format()}; "
                f"calibration slope {slope.format()}")
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
            estimate=ece, criterion=f"smooth ECE <= {limit:.2f}", table=table, params=params))
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
    findings.extend(_recalibration(data, names, limit))
    findings.extend(_conformal(data, names))
    findings.append(_risk_coverage(data, names))
    findings.extend(_ood(data, names))
    findings.extend(_abstention(data, names))
    return findings


def _no_calibration_partition(check: str, what: str) -> Finding:
    return Finding(check=check, rung=Rung.CALIBRATION, status=Status.NOT_EVALUABLE,
                   message=f"No {_FIT_PARTITION} partition is declared, so no {what} could be "
                           "fitted without touching test data.")


def _recalibration(data: StudyData, names: list[str], limit: float) -> list[Finding]:
    """Every recalibration map fitted on the calibration partition; smooth ECE before and
    after on each test partition (what recalibration could buy, not a verdict on the model)."""
    parts, cohort = data.partitions, data.cohort
    if _FIT_PARTITION not in parts.masks:
        return [_no_calibration_partition("calibration.recalibration", "recalibration map")]
    y, s, g = cohort.y_true, data.scores, cohort.patient_ids
    cal = parts.masks[_FIT_PARTITION]
    options = metric_options(data)
    options["n_resamples"] = min(options["n_resamples"], _DESCRIPTIVE_RESAMPLES)
    sealed = sealed_partitions(data)
    rows, maps = [], {}
    for method in RECALIBRATION_METHODS:
        try:
            maps[method] = fit_recalibration(y[cal], s[cal], method=method,
                                             partition=_FIT_PARTITION, groups=g[cal],
                                             sealed_partitions=sealed)
        except ValueError as error:  # e.g. perfect separation on a small calibration set
            rows.append({"method": method, "partition": "", "note": str(error)})
    rngs = spawn(data.study.seed + 44, len(names))
    for name, rng in zip(names, rngs):
        mask = parts.masks[name]
        variants = {"none": s[mask], **{m: r.transform(s[mask]) for m, r in maps.items()}}
        for method, child in zip(variants, spawn(rng, len(variants))):
            with captured_warnings():
                est = smooth_calibration_error(y[mask], variants[method], groups=g[mask],
                                               rng=child, **options)
            rows.append({"method": method, "partition": name, "smooth_ece": est.value,
                         "ci_low": est.ci.low, "ci_high": est.ci.high, "n": est.n, "note": ""})
    table = pd.DataFrame(rows)
    judged = table[table["partition"] != ""]
    best = (judged[judged["method"] != "none"].groupby("method")["smooth_ece"].mean()
            .sort_values())
    summary = ""
    if not best.empty:
        method = str(best.index[0])
        after = judged[judged["method"] == method].set_index("partition")["smooth_ece"]
        before = judged[judged["method"] == "none"].set_index("partition")["smooth_ece"]
        summary = (f" {method} (lowest mean smooth ECE): "
                   + "; ".join(f"{p} {before[p]:.3f} -> {after[p]:.3f}" for p in before.index)
                   + ".")
    return [Finding(
        check="calibration.recalibration", rung=Rung.CALIBRATION, status=Status.PASS,
        message=(f"Recalibration maps fitted on the {_FIT_PARTITION} partition only, smooth "
                 f"ECE before and after on each test partition (criterion {limit:.2f}).{summary}"
                 " The evidence above judges the model as submitted; a recalibrated model is "
                 f"a new model to validate. Intervals from {options['n_resamples']} cluster "
                 "bootstrap replicates."),
        table=table,
        plots=(Plot(kind="forest", title="Smooth ECE per recalibration map and test partition",
                    data=judged.assign(label=judged["partition"] + " / " + judged["method"])
                    [["label", "smooth_ece", "ci_low", "ci_high"]]
                    .rename(columns={"smooth_ece": "estimate"}).reset_index(drop=True),
                    options={"reference": limit, "xlabel": "smooth ECE"}),),
        params={"fit_partition": _FIT_PARTITION,
                "maps": {m: r.to_dict() for m, r in maps.items()}})]


def _conformal(data: StudyData, names: list[str]) -> list[Finding]:
    """Class-conditional split-conformal sets fitted on the calibration partition; their
    coverage (overall and per class) and size on each test partition."""
    parts, cohort = data.partitions, data.cohort
    if _FIT_PARTITION not in parts.masks:
        return [_no_calibration_partition("calibration.conformal", "conformal predictor")]
    target = float(data.study.criterion("calibration", "target_coverage"))
    y, s, g = cohort.y_true.astype(int), data.scores, cohort.patient_ids
    cal = parts.masks[_FIT_PARTITION]
    with captured_warnings() as notes:
        predictor = fit_conformal(y[cal], s[cal], alpha=1 - target, mondrian="class",
                                  partition=_FIT_PARTITION, groups=g[cal],
                                  sealed_partitions=sealed_partitions(data),
                                  rng=data.study.seed + 45)
    findings, tables = [], []
    for index, name in enumerate(names):
        mask = parts.masks[name]
        with captured_warnings():
            sets = predictor.predict_sets(s[mask], rng=data.study.seed + 46 + index)
            table = conformal_coverage_table(
                sets, y[mask], subgroup=np.where(y[mask] == 1, "positives", "negatives"),
                groups=g[mask], rng=data.study.seed + 47 + index, **metric_options(data))
        table.insert(0, "partition", name)
        tables.append(table)
        rows = table.set_index(["group", "metric"])
        coverage = _row_estimate(rows.loc[("overall", "coverage")])
        size = rows.loc[("overall", "mean_set_size"), "estimate"]
        per_class = ", ".join(
            f"{c} {_row_estimate(rows.loc[(c, 'coverage')]).format()}"
            for c in ("positives", "negatives") if (c, "coverage") in rows.index)
        head = (f"{name}: prediction sets cover the true label on {coverage.format()} of cases "
                f"({per_class}); mean set size {size:.2f} (target {target:.2f}, fitted on the "
                f"{_FIT_PARTITION} partition)")
        if not coverage.is_defined:
            status, message = Status.NOT_EVALUABLE, f"{head}."
        elif coverage.ci.high < target:
            status, message = Status.FAIL, f"{head}: coverage does not transfer."
        elif coverage.value < target:
            status, message = Status.WARN, f"{head}: below target, inconclusive."
        else:
            status, message = Status.PASS, f"{head}."
        findings.append(Finding(
            check="calibration.conformal", rung=Rung.CALIBRATION, status=status,
            message=message, estimate=coverage, criterion=f"coverage >= {target:.2f}",
            table=table, params={"partition": name, "fit_partition": _FIT_PARTITION,
                                 "alpha": round(1 - target, 6), "mondrian": "class",
                                 "notes": notes}))
    return findings


def _risk_coverage(data: StudyData, names: list[str]) -> Finding:
    """Risk-coverage curve and AURC per test partition (selective prediction)."""
    parts, cohort = data.partitions, data.cohort
    y, s, g = cohort.y_true, data.scores, cohort.patient_ids
    threshold = float(data.study.metrics["threshold"])
    curves, rows = [], []
    for name, rng in zip(names, spawn(data.study.seed + 48, len(names))):
        mask = parts.masks[name]
        with captured_warnings():
            curve = risk_coverage_curve(y[mask], s[mask], threshold=threshold)
            area = aurc(y[mask], s[mask], threshold=threshold, groups=g[mask], rng=rng,
                        **metric_options(data))
        curves.append(curve.assign(partition=name))
        rows.append({"partition": name, "aurc": area.value, "ci_low": area.ci.low,
                     "ci_high": area.ci.high, "error_rate": float(curve["risk"].iloc[-1]),
                     "n": area.n})
    curve_table = pd.concat(curves, ignore_index=True)
    return Finding(
        check="calibration.risk_coverage", rung=Rung.CALIBRATION, status=Status.PASS,
        message="Error among answered cases as the model answers only its most confident "
                "cases (risk-coverage), per test partition; AURC with clustered CI (lower is "
                "better; equal to the error rate when confidence is uninformative).",
        table=pd.DataFrame(rows),
        plots=(Plot(kind="line", title="Risk-coverage curve per test partition",
                    data=curve_table[["partition", "coverage", "risk"]],
                    options={"x": "coverage", "y": "risk", "series": "partition",
                             "xlabel": "coverage (fraction answered)",
                             "ylabel": "error among answered"}),))


def _ood(data: StudyData, names: list[str]) -> list[Finding]:
    """A Mahalanobis detector on image statistics fitted on the development partition: the
    flag rate per test partition and performance on flagged vs unflagged cases."""
    parts, cohort = data.partitions, data.cohort
    if not data.has_images or "development" not in parts.masks:
        return [Finding(check="calibration.ood", rung=Rung.CALIBRATION,
                        status=Status.NOT_EVALUABLE,
                        message="Out-of-distribution flags need images and a development "
                                "partition to fit on.")]
    summary = pixel_summaries(data)
    readable = summary.is_2d
    stats = summary.statistics
    stats = stats.drop(columns=[c for c in ("height", "width") if c in stats.columns])
    dev = parts.masks["development"] & readable
    quantile = 0.95
    with captured_warnings():
        detector = fit_ood_detector(stats[dev].to_numpy(), quantile=quantile,
                                    partition="development",
                                    sealed_partitions=sealed_partitions(data),
                                    groups=cohort.patient_ids[dev])
    y, s, g = cohort.y_true, data.scores, cohort.patient_ids
    test = np.zeros(cohort.n_images, dtype=bool)
    for name in names:
        test |= parts.masks[name]
    test &= readable
    label = np.full(cohort.n_images, "", dtype=object)
    for name in names:
        label[parts.masks[name]] = name
    flags = ood_flags(detector, stats[test].to_numpy())
    with captured_warnings():
        table = ood_summary(flags, subgroup=label[test], y_true=y[test], y_score=s[test],
                            threshold=float(data.study.metrics["threshold"]), groups=g[test],
                            rng=data.study.seed + 49, include_overall=False,
                            **metric_options(data))
    expected = 1 - quantile
    findings = []
    for name in names:
        rows = table[table["group"] == name].set_index("metric")
        if "flag_rate" not in rows.index:
            continue
        rate = _row_estimate(rows.loc["flag_rate"])
        auc = {k: rows.loc[f"roc_auc_{k}", "estimate"] if f"roc_auc_{k}" in rows.index
               else math.nan for k in ("flagged", "unflagged")}
        shown = {k: "undefined" if not math.isfinite(v) else f"{v:.3f}" for k, v in auc.items()}
        head = (f"{name}: {rate.format()} of images flagged as unlike the development images "
                f"(by construction {expected:.2f} there); AUROC {shown['unflagged']} "
                f"unflagged vs {shown['flagged']} flagged")
        if rate.is_defined and rate.ci.low > 2 * expected:
            status, message = Status.WARN, (f"{head}: much of this set lies outside the "
                                            "development distribution.")
            params = {"partition": name,
                      "not_validated_for": f"{name}: images unlike the development images "
                                           f"({rate.value:.0%} flagged)"}
        else:
            status, message = Status.PASS, f"{head}."
            params = {"partition": name}
        findings.append(Finding(check="calibration.ood", rung=Rung.CALIBRATION, status=status,
                                message=message, estimate=rate,
                                criterion=f"flag rate not above {2 * expected:.2f}",
                                table=table[table["group"] == name].reset_index(drop=True),
                                params={**params, "fit_partition": "development",
                                        "features": "image statistics (Mahalanobis, "
                                                    "Ledoit-Wolf)", "quantile": quantile}))
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
