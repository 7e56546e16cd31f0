"""Rung 2, external validation: the gap between internal and each external set, with its CI."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._core import Finding, Plot, Rung, Status, spawn
from ..metrics import compare_unpaired
from ._common import captured_warnings, metric_options, roc_curves
from ._data import StudyData

__all__ = ["external_findings"]


def external_findings(data: StudyData) -> list[Finding]:
    """One finding per external set (AUROC drop from internal test), and a summary figure.

    A set fails when the whole interval of the drop lies above the criterion (the
    evidence shows the criterion is violated), warns when the point estimate or the
    upper bound exceeds it (the evidence cannot show the criterion is met), and
    passes when the upper bound is within it.
    """
    parts = data.partitions
    externals = parts.names("external")
    if not externals:
        return [Finding(check="external.auroc_drop", rung=Rung.EXTERNAL,
                        status=Status.NOT_EVALUABLE,
                        message="No external set is declared ([partitions.external]): the claim "
                                "has no evidence of generalization to other sites, scanners or "
                                "periods.",
                        params={"not_validated_for": "any site, scanner or period other than "
                                                     "the development sources"})]
    if data.scores is None or "internal_test" not in parts.masks:
        reason = ("no predictions were given" if data.scores is None
                  else "no internal test partition is declared to compare with")
        return [Finding(check="external.auroc_drop", rung=Rung.EXTERNAL,
                        status=Status.NOT_EVALUABLE,
                        message=f"External validation was not evaluated: {reason}.")]
    cohort = data.cohort
    y, s, g = cohort.y_true, data.scores, cohort.patient_ids
    internal = parts.masks["internal_test"]
    limit = data.study.criterion("external", "max_auroc_drop")
    findings, rows = [], []
    for name, rng in zip(externals, spawn(data.study.seed + 2, len(externals))):
        mask = parts.masks[name]
        with captured_warnings() as notes:
            comparison = compare_unpaired(y[internal], s[internal], y[mask], s[mask],
                                          metric="roc_auc", groups_1=g[internal],
                                          groups_2=g[mask], rng=rng, **metric_options(data))
        drop = comparison.difference  # internal - external: positive is a drop
        ext = comparison.estimate_b
        status, message = _verdict(name, drop, ext, limit)
        rows.append({"partition": name, "auroc": ext.value, "auroc_ci_low": ext.ci.low,
                     "auroc_ci_high": ext.ci.high, "internal_auroc": comparison.estimate_a.value,
                     "internal_ci_low": comparison.estimate_a.ci.low,
                     "internal_ci_high": comparison.estimate_a.ci.high,
                     "drop": drop.value, "drop_ci_low": drop.ci.low,
                     "drop_ci_high": drop.ci.high, "p_value": comparison.p_value,
                     "n": ext.n, "n_patients": ext.n_clusters, "n_pos": ext.n_pos,
                     "status": status.value, "note": " ".join(notes)})
        params = {"partition": name, "method": comparison.method, "criterion": limit}
        if status in (Status.FAIL, Status.NOT_EVALUABLE):
            params["not_validated_for"] = f"{name}: {message}"
        findings.append(Finding(
            check="external.auroc_drop", rung=Rung.EXTERNAL, status=status, message=message,
            estimate=drop, criterion=f"AUROC drop <= {limit:.2f}", params=params,
            examples=_worst_cases(cohort.image_ids[mask], y[mask], s[mask])))
    table = pd.DataFrame(rows)
    curves = roc_curves(data, ["internal_test", *externals])
    findings.append(Finding(
        check="external.performance", rung=Rung.EXTERNAL, status=Status.PASS,
        message="AUROC of every external set next to the internal test set.", table=table,
        plots=(Plot(kind="roc", title="ROC: internal test vs external sets", data=curves),
               Plot(kind="forest", title="AUROC per set (95% CI)",
                    data=pd.DataFrame({"label": ["internal_test", *table["partition"]],
                                       "estimate": [table["internal_auroc"].iloc[0],
                                                    *table["auroc"]],
                                       "ci_low": [table["internal_ci_low"].iloc[0],
                                                  *table["auroc_ci_low"]],
                                       "ci_high": [table["internal_ci_high"].iloc[0],
                                                   *table["auroc_ci_high"]]}),
                    options={"xlabel": "AUROC", "reference": table["internal_auroc"].iloc[0]})),
    ))
    return findings


def _verdict(name: str, drop, ext, limit: float) -> tuple[Status, str]:
    if not drop.is_defined:
        return Status.NOT_EVALUABLE, (f"AUROC at {name} is undefined (n={ext.n}, "
                                      f"positives={ext.n_pos}).")
    head = f"AUROC at {name} {ext.format()}; drop from internal {drop.format()}"
    if drop.ci.low > limit:
        return Status.FAIL, f"{head} exceeds the criterion {limit:.2f}."
    if drop.value > limit:
        return Status.WARN, (f"{head}: above the criterion {limit:.2f}, but the interval does "
                             "not exclude a drop within it (inconclusive).")
    if drop.ci.high > limit:
        return Status.WARN, (f"{head}: within the criterion {limit:.2f}, but the interval does "
                             "not exclude a larger drop (more external cases are needed).")
    return Status.PASS, f"{head}: within the criterion {limit:.2f}."


def _worst_cases(ids: np.ndarray, y: np.ndarray, s: np.ndarray, k: int = 5) -> tuple[str, ...]:
    """Most confident errors: positives with the lowest scores, negatives with the highest."""
    error = np.where(y == 1, 1 - s, s)
    return tuple(ids[np.argsort(-error, kind="stable")[:k]].tolist())
