"""Findings of the reader-study checks, and the per-reader performance table."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from claimladder import Finding, Rung, Status, UndefinedMetricWarning
from claimladder.metrics import roc_auc, sensitivity
from claimladder.readers import (
    ReaderStudy,
    dbm,
    decision_changes,
    decision_impact_finding,
    model_vs_readers,
    model_vs_readers_finding,
    mrmc_finding,
    or_hillis,
    reader_performance,
    reading_time_finding,
)


def _roundtrip(finding: Finding) -> Finding:
    again = Finding.from_dict(json.loads(json.dumps(finding.to_dict(), allow_nan=False)))
    assert again.check == finding.check and again.status == finding.status
    return again


def test_mrmc_finding_on_vandyke(vandyke):
    result = or_hillis(vandyke, modalities=("trt0", "trt1"))
    rrrc = mrmc_finding(result)
    assert rrrc.check == "readers.mrmc_auroc" and rrrc.rung is Rung.UTILITY
    expected = Status.PASS if result.difference.ci.low > 0 else Status.WARN
    assert rrrc.status is expected
    assert "5 readers, 114 cases" in rrrc.message
    assert mrmc_finding(result, min_difference=0.5).status is Status.FAIL
    assert rrrc.plots and rrrc.plots[0].kind == "forest" and len(rrrc.plots[0].data) == 6
    assert mrmc_finding(dbm(vandyke, modalities=("trt0", "trt1"))).status is rrrc.status
    _roundtrip(rrrc)


def test_mrmc_finding_not_evaluable_with_one_reader(study_factory):
    with pytest.warns(UndefinedMetricWarning):
        result = or_hillis(study_factory(1, n_readers=1))
    finding = mrmc_finding(result)
    assert finding.status is Status.NOT_EVALUABLE
    assert "two readers" in finding.message
    _roundtrip(finding)


def test_model_vs_readers_finding(vandyke):
    strong = vandyke.scores[1].max(axis=0) + 0.01 * vandyke.truth  # better than any reader
    finding = model_vs_readers_finding(
        model_vs_readers(vandyke, model_scores=strong, modality="trt0"))
    assert finding.check == "readers.model_vs_readers" and finding.status is Status.PASS
    weak = -vandyke.scores[0, 0]  # the reverse of a good reader
    bad = model_vs_readers_finding(model_vs_readers(vandyke, model_scores=weak,
                                                    modality="trt0"))
    assert bad.status is Status.FAIL and "inferior" in bad.message
    _roundtrip(bad)


def test_decision_findings(study_factory):
    study = study_factory(40, n_readers=4, n_neg=15, n_pos=15, decisions=True, times=True)
    impact = decision_changes(study, model_scores=np.linspace(0, 1, study.n_cases),
                              n_resamples=200, rng=0)
    f = decision_impact_finding(impact)
    assert f.check == "readers.decision_changes" and f.estimate is impact.net_corrected
    assert f.examples == impact.misled_case_ids
    t = reading_time_finding(impact)
    assert t.check == "readers.reading_time" and t.status in (Status.PASS, Status.WARN)
    slow = reading_time_finding(impact, max_increase_s=-1e6)
    assert slow.status is Status.WARN
    _roundtrip(f), _roundtrip(t)
    no_times = ReaderStudy(case_ids=study.case_ids, reader_ids=study.reader_ids,
                           modalities=study.modalities, truth=study.truth, scores=study.scores,
                           decisions=study.decisions)
    none = reading_time_finding(decision_changes(no_times, n_resamples=20, rng=0))
    assert none.status is Status.NOT_EVALUABLE


def test_reader_performance_uses_metrics(study_factory):
    study = study_factory(41, decisions=True)
    table = reader_performance(study)
    row = table[(table.reader_id == "R2") & (table.modality == "aided")].set_index("metric")
    auc = roc_auc(study.truth, study.scores[1, 2], method="delong")
    sens = sensitivity(study.truth, y_pred=study.decisions[1, 2], method="wilson")
    assert row.loc["roc_auc", "estimate"] == auc.value
    assert row.loc["roc_auc", "ci_low"] == auc.ci.low
    assert row.loc["sensitivity", "ci_high"] == sens.ci.high
    mean = table[(table.reader_id == "mean") & (table.metric == "roc_auc")]
    assert len(mean) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(reader_performance(study_factory(42)).metric) == {"roc_auc"}
