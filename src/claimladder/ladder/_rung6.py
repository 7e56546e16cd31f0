"""Rung 6, clinical relevance: the metadata-only baseline, decision curves, triage and the
reader study (MRMC, model vs readers, decision impact)."""

from __future__ import annotations

import numpy as np

from .._core import Finding, Rung, Status
from ..utility import (
    check_metadata_baseline,
    check_net_benefit,
    check_triage,
    fit_metadata_baseline,
    triage,
)
from ._common import captured_warnings, metric_options, test_partitions
from ._data import StudyData
from ._readers import reader_findings

__all__ = ["metadata_columns", "utility_findings"]


def metadata_columns(data: StudyData) -> list[str]:
    """What a metadata-only model may use: acquisition context and declared attributes."""
    roles = data.cohort.roles
    names = [roles.site, roles.scanner, roles.manufacturer, roles.protocol, *roles.attributes]
    return list(dict.fromkeys(n for n in names if n is not None))


def utility_findings(data: StudyData) -> list[Finding]:
    """Is the image model better than metadata alone, useful across thresholds, and does a
    triage threshold chosen before testing keep its sensitivity on every test set? With a
    reader study declared (``[readers]``), the ``readers.*`` findings follow."""
    return _model_findings(data) + reader_findings(data)


def _model_findings(data: StudyData) -> list[Finding]:
    parts = data.partitions
    if data.scores is None or "development" not in parts.masks or not test_partitions(data):
        return [Finding(check="utility.metadata_baseline", rung=Rung.UTILITY,
                        status=Status.NOT_EVALUABLE,
                        message="Clinical relevance needs predictions, a development partition "
                                "(to fit baselines and thresholds) and a test partition.")]
    cohort = data.cohort
    y, s, g = cohort.y_true, data.scores, cohort.patient_ids
    options = metric_options(data)
    seed = data.study.seed
    findings = []
    columns = metadata_columns(data)
    primary = "internal_test" if "internal_test" in parts.masks else test_partitions(data)[0]
    test = parts.masks[primary]
    if columns:
        with captured_warnings():
            metadata_scores = fit_metadata_baseline(cohort.table, y, columns=columns,
                                                    train_mask=parts.masks["development"],
                                                    groups=g, rng=seed + 60)
            findings.append(check_metadata_baseline(
                y[test], s[test], metadata_scores[test],
                min_auroc_gain=float(data.study.criterion("utility",
                                                          "min_auroc_gain_over_metadata")),
                groups=g[test], columns=columns, partition=primary, rng=seed + 61, **options))
    else:
        findings.append(Finding(check="utility.metadata_baseline", rung=Rung.UTILITY,
                                status=Status.NOT_EVALUABLE,
                                message="No metadata column (site, scanner, attributes) is "
                                        "declared, so no metadata-only baseline was fit."))
    with captured_warnings():
        findings.append(check_net_benefit(y[test], s[test], groups=g[test], partition=primary,
                                          rng=seed + 62, **options))
    source = "calibration" if "calibration" in parts.masks else "development"
    fit = parts.masks[source]
    target = float(data.study.criterion("utility", "target_sensitivity"))
    for index, name in enumerate(test_partitions(data)):
        mask = parts.masks[name]
        if len(np.unique(y[mask])) < 2:
            continue
        with captured_warnings():
            result = triage(y[mask], s[mask], threshold_from=(y[fit], s[fit]),
                            target_sensitivity=target, partition_name=source,
                            test_partition=name, groups=g[mask], rng=seed + 70 + index,
                            **options)
            findings.append(check_triage(result, ids=cohort.image_ids[mask]))
    return findings
