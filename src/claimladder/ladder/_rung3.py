"""Rung 3, bias audit: disaggregated performance over subgroups and their intersections."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._core import Finding, Plot, Rung, Status
from ..calibration import calibration_table
from ..subgroups import gap_estimate, metric_table, subgroup_labels
from ._common import captured_warnings, metric_options, test_partitions
from ._data import StudyData

__all__ = ["audit_attributes", "bias_findings"]

_ALPHA = 0.05


def audit_attributes(data: StudyData) -> tuple[list[str], str | None]:
    """Cohort columns to audit, and the age column (banded) if any.

    ``[subgroups] attributes`` may name columns or roles (``site``, ``scanner``);
    without it: site, scanner, manufacturer and the declared attributes.
    """
    roles, columns = data.cohort.roles, set(data.cohort.table.columns)
    declared = data.study.subgroups.get("attributes") or [
        r for r in ("site", "scanner", "manufacturer") if getattr(roles, r)] + list(
        roles.attributes)
    resolved = []
    for name in declared:
        role_column = getattr(roles, name, None) if name in ("site", "scanner", "manufacturer",
                                                             "protocol") else None
        column = role_column or name
        if column not in columns:
            from .._core import StudySpecError, did_you_mean

            raise StudySpecError(
                f"{data.study.path}: [subgroups] attributes names {name!r}, which is neither a "
                f"cohort column nor an assigned role.{did_you_mean(name, sorted(columns))}")
        resolved.append(column)
    age = data.study.subgroups.get("age_column") or next(
        (c for c in resolved if c.lower() == "age"), None)
    return list(dict.fromkeys(resolved)), age


def bias_findings(data: StudyData) -> list[Finding]:
    """Per test partition: the gap per attribute (fail when its simultaneous CI exceeds the
    criterion), intersections, groups too small to evaluate, and the full table with a forest
    plot.

    Each test partition (internal test, each external set) is audited on its own: pooling
    them would mix the site shift of rung 2 into every subgroup comparison (a group that is
    common at a weaker site would look worse everywhere).
    """
    if data.scores is None:
        return [Finding(check="bias.auroc_gap", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
                        message="No predictions were given, so no subgroup was audited.")]
    attributes, age = audit_attributes(data)
    if not attributes:
        return [Finding(check="bias.auroc_gap", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
                        message="No subgroup attribute is declared ([subgroups] attributes, or "
                                "site / scanner / attributes under [data.columns]).",
                        params={"not_validated_for": "any demographic or acquisition subgroup "
                                                     "(none audited)"})]
    cohort = data.cohort
    min_n = int(data.study.criterion("bias", "min_group_size"))
    limit = float(data.study.criterion("bias", "max_subgroup_auroc_gap"))
    threshold = float(data.study.metrics["threshold"])
    options = metric_options(data)
    partitions = test_partitions(data)
    # Gap intervals hold simultaneously over attributes (metric_table) and partitions (here).
    options["confidence_level"] = 1 - (1 - options["confidence_level"]) / max(1, len(partitions))
    findings, tables, forest = [], [], []
    for index, name in enumerate(partitions):
        mask = data.partitions.masks[name]
        labels = subgroup_labels(cohort.table.loc[mask].reset_index(drop=True), attributes,
                                 age_column=age, age_bands=data.study.subgroups.get("age_bands"))
        varying = [a for a in attributes if labels[a].nunique() > 1]
        if not varying:
            continue
        with captured_warnings():
            audit = metric_table(cohort.y_true[mask], data.scores[mask], labels[varying],
                                 threshold=threshold, groups=cohort.patient_ids[mask],
                                 min_group_size=min_n, rng=data.study.seed + 30 + index,
                                 **options)
        findings.extend(_gap_finding(name, attr, audit, limit, int(mask.sum()))
                        for attr in varying)
        findings.append(_intersections(name, audit, varying, limit))
        findings.append(_subgroup_calibration(data, name, mask, labels[varying], min_n,
                                              options, rng=data.study.seed + 35 + index))
        tables.append(audit.table.assign(partition=name))
        auroc = audit.table[(audit.table["metric"] == "roc_auc")
                            & audit.table["attribute"].isin(varying) & audit.table["evaluable"]]
        forest.append(pd.DataFrame({
            "label": name + " | " + auroc["attribute"] + ": " + auroc["group"],
            "estimate": auroc["estimate"], "ci_low": auroc["ci_low"],
            "ci_high": auroc["ci_high"]}))
    if not tables:
        return [Finding(check="bias.auroc_gap", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
                        message="No audited attribute varies within any test partition.")]
    table = pd.concat(tables, ignore_index=True)
    table = table[["partition", *[c for c in table.columns if c != "partition"]]]
    findings.append(_small_groups(table, min_n))
    findings.append(Finding(
        check="bias.subgroup_table", rung=Rung.BIAS, status=Status.PASS,
        message=(f"AUROC, sensitivity and specificity (threshold {threshold:g}) in every "
                 "subgroup of each test partition, audited separately. p-values are "
                 "Holm-adjusted within each partition's audit; gap intervals are simultaneous."),
        table=table,
        plots=(Plot(kind="forest", title="AUROC per subgroup and test partition",
                    data=pd.concat(forest, ignore_index=True), options={"xlabel": "AUROC"}),),
        params={"partitions": partitions, "min_group_size": min_n, "alpha": _ALPHA}))
    return findings


#: Calibration metrics per subgroup: observed vs expected, the binned ECE and the slope.
_SUBGROUP_CALIBRATION = ("observed_expected_ratio", "calibration_in_the_large",
                         "expected_calibration_error", "calibration_slope")


def _subgroup_calibration(data: StudyData, partition: str, mask: np.ndarray,
                          labels: pd.DataFrame, min_n: int, options: dict,
                          rng: int) -> Finding:
    """Calibration per subgroup of one test partition: warn when a group's mean predicted
    probability is off its observed rate by more than ``calibration.max_ece`` with the whole
    (simultaneous) interval beyond it."""
    cohort = data.cohort
    limit = float(data.study.criterion("calibration", "max_ece"))
    y, s, g = cohort.y_true[mask], data.scores[mask], cohort.patient_ids[mask]
    tables = []
    for column, child in zip(labels.columns, np.random.SeedSequence(rng).spawn(
            len(labels.columns))):
        group = labels[column].astype(str).to_numpy()
        with captured_warnings():
            table = calibration_table(y, s, group, metrics=_SUBGROUP_CALIBRATION, n_bins=10,
                                      groups=g, include_overall=False,
                                      rng=np.random.default_rng(child), **options)
        tables.append(table.assign(attribute=column))
    table = pd.concat(tables, ignore_index=True)
    table = table[["attribute", *[c for c in table.columns if c != "attribute"]]]
    citl = table[(table["metric"] == "calibration_in_the_large") & (table["n"] >= min_n)]
    off = citl[(citl["ci_low"] > limit) | (citl["ci_high"] < -limit)]
    criterion = f"|mean predicted - observed| <= {limit:.2f} in every group of >= {min_n}"
    if off.empty:
        return Finding(check="bias.calibration", rung=Rung.BIAS, status=Status.PASS,
                       message=f"{partition}: in every subgroup of at least {min_n} images the "
                               "mean predicted probability matches the observed rate within "
                               f"{limit:.2f} (or the interval includes such a match).",
                       criterion=criterion, table=table, params={"partition": partition})
    listed = "; ".join(f"{r.attribute} = {r.group}: {r.estimate:+.3f} [{r.ci_low:+.3f}, "
                       f"{r.ci_high:+.3f}] (n={r.n})" for r in off.head(6).itertuples())
    return Finding(check="bias.calibration", rung=Rung.BIAS, status=Status.WARN,
                   message=f"{partition}: the mean predicted probability is off the observed "
                           f"rate by more than {limit:.2f} in {len(off)} subgroup(s) "
                           f"(predicted minus observed): {listed}.",
                   criterion=criterion, table=table,
                   params={"partition": partition, "not_validated_for": [
                       f"{r.attribute} = {r.group} ({partition}): probabilities off by "
                       f"{r.estimate:+.3f}" for r in off.itertuples()]})


def _significant(table: pd.DataFrame, attribute: str, group: str) -> bool:
    row = table[(table["attribute"] == attribute) & (table["group"] == group)
                & (table["metric"] == "roc_auc")]
    return bool(len(row)) and float(row["p_holm"].iloc[0]) < _ALPHA


def _gap_finding(partition: str, attr: str, audit, limit: float, n: int) -> Finding:
    gaps = audit.gaps
    row = gaps[(gaps["attribute"] == attr) & (gaps["metric"] == "roc_auc")].iloc[0]
    if row["n_groups"] < 2:
        return Finding(check="bias.auroc_gap", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
                       message=f"{partition}, {attr}: fewer than two groups are large enough "
                               "to compare.",
                       params={"attribute": attr, "partition": partition})
    est = gap_estimate(row, n=n)
    worst, best = row["worst_group"], row["best_group"]
    head = (f"{partition}, {attr}: AUROC gap {est.format()} between {best} (best) and "
            f"{worst} (worst)")
    params = {"attribute": attr, "partition": partition, "worst_group": worst,
              "best_group": best,
              "worst_differs_from_overall_holm": _significant(audit.table, attr, worst)}
    if est.ci.low > limit:
        status = Status.FAIL
        message = f"{head} exceeds {limit:.2f} (simultaneous interval)."
        params["not_validated_for"] = (f"{attr} = {worst} ({partition}): AUROC "
                                       f"{_group_auroc(audit, attr, worst)}, {est.value:.3f} "
                                       f"below {best}")
    elif est.value > limit:
        status = Status.WARN
        message = (f"{head} exceeds {limit:.2f}, but the simultaneous interval does not "
                   "exclude a gap within it (inconclusive).")
    else:
        status = Status.PASS
        message = f"{head}: within {limit:.2f}."
    return Finding(check="bias.auroc_gap", rung=Rung.BIAS, status=status, message=message,
                   estimate=est, criterion=f"largest subgroup AUROC gap <= {limit:.2f}",
                   params=params)


def _group_auroc(audit, attr: str, group: str) -> str:
    row = audit.table[(audit.table["attribute"] == attr) & (audit.table["group"] == group)
                      & (audit.table["metric"] == "roc_auc")].iloc[0]
    return f"{row['estimate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}] (n={row['n']})"


def _intersections(partition: str, audit, attributes: list[str], limit: float) -> Finding:
    table = audit.table
    inter = table[(table["metric"] == "roc_auc") & ~table["attribute"].isin(attributes)]
    flagged = inter[(inter["p_holm"] < _ALPHA) & (inter["difference_to_overall"] < -limit)]
    evaluable = int(inter["evaluable"].sum())
    if not len(inter):
        return Finding(check="bias.intersections", rung=Rung.BIAS,
                       status=Status.NOT_EVALUABLE,
                       message=f"{partition}: intersections need at least two attributes.",
                       params={"partition": partition})
    if len(flagged):
        listed = "; ".join(f"{r.attribute} = {r.group} (AUROC {r.estimate:.3f}, "
                           f"{r.difference_to_overall:+.3f} vs overall)"
                           for r in flagged.sort_values("estimate").head(5).itertuples())
        return Finding(check="bias.intersections", rung=Rung.BIAS, status=Status.WARN,
                       params={"partition": partition},
                       message=f"{partition}: {len(flagged)} intersection(s) fall below overall "
                               "by more "
                               f"than {limit:.2f} after Holm correction: {listed}.",
                       table=flagged.reset_index(drop=True))
    return Finding(check="bias.intersections", rung=Rung.BIAS, status=Status.PASS,
                   message=f"{partition}: no 2-way intersection ({evaluable} evaluable) falls "
                           f"below overall by more than {limit:.2f} after Holm correction.",
                   params={"partition": partition})


def _small_groups(table: pd.DataFrame, min_n: int) -> Finding:
    small = table[(table["metric"] == "roc_auc") & ~table["evaluable"]
                  & ~table["attribute"].str.contains(" x ")]
    if small.empty:
        return Finding(check="bias.small_groups", rung=Rung.BIAS, status=Status.PASS,
                       message=f"Every single-attribute group has at least {min_n} images and "
                               "both classes.")
    entries = [f"{r.attribute} = {r.group} ({r.partition}): {r.reason}"
               for r in small.itertuples()]
    return Finding(
        check="bias.small_groups", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
        message=f"{len(small)} group(s) could not be evaluated: " + "; ".join(entries[:8])
                + ("" if len(entries) <= 8 else f" (+{len(entries) - 8} more)") + ".",
        table=small[["partition", "attribute", "group", "n", "n_pos", "reason"]].reset_index(
            drop=True),
        params={"not_validated_for": entries})
