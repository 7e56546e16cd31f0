import json
import math

import jsonschema
import numpy as np
import pandas as pd
import pytest

from claimladder import (
    ConfidenceInterval,
    Estimate,
    Evidence,
    Finding,
    Plot,
    Rung,
    Status,
    evidence_schema,
)
from claimladder._core import rung_verdict


def _estimate(value=0.9, low=0.85, high=0.95):
    return Estimate(value=value, ci=ConfidenceInterval(low=low, high=high), confidence_level=0.95,
                    method="bootstrap-percentile", n=100, n_clusters=40, n_pos=30)


def _finding(status="pass", rung=Rung.INTERNAL, check="internal.roc_auc", **kw):
    return Finding(check=check, rung=rung, status=status, message=f"{check} {status}", **kw)


def test_confidence_interval_rejects_inverted_bounds():
    with pytest.raises(ValueError, match="exceeds"):
        ConfidenceInterval(low=0.9, high=0.1)


def test_estimate_rejects_bad_confidence_level():
    with pytest.raises(ValueError, match="'confidence_level' parameter of Estimate"):
        Estimate(value=0.5, ci=ConfidenceInterval(low=0, high=1), confidence_level=1.5,
                 method="x", n=3)


def test_estimate_round_trip_and_nan():
    est = _estimate(value=math.nan, low=math.nan, high=math.nan)
    data = est.to_dict()
    assert data["value"] is None and data["ci_low"] is None
    back = Estimate.from_dict(json.loads(json.dumps(data)))
    assert math.isnan(back.value) and not back.is_defined
    assert back.format() == "n/a"
    assert _estimate().format() == "0.900 [0.850, 0.950]"


def test_finding_rejects_unknown_status_with_suggestion():
    with pytest.raises(ValueError, match="Did you mean 'fail'"):
        _finding(status="fial")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "not_evaluated"),
        (["pass", "pass"], "pass"),
        (["pass", "warn"], "warn"),
        (["pass", "warn", "fail"], "fail"),
        (["not_evaluable"], "not_evaluable"),
        (["not_evaluable", "pass"], "pass"),
    ],
    ids=["none", "all-pass", "warn", "fail-wins", "only-ne", "pass-with-ne"],
)
def test_rung_verdict(statuses, expected):
    findings = [_finding(status=s) for s in statuses]
    assert rung_verdict(Rung.INTERNAL, findings).status == expected


def test_highest_rung_stops_at_first_rung_not_passed():
    findings = [_finding(rung=Rung.COHORT, check="cohort.flow"),
                _finding(rung=Rung.INTERNAL, status="warn"),
                _finding(rung=Rung.EXTERNAL, status="fail", check="external.roc_auc"),
                _finding(rung=Rung.BIAS, check="bias.gap")]
    evidence = Evidence.from_findings(findings, claim={"statement": "x"})
    assert evidence.highest_rung == 1
    none = Evidence.from_findings([_finding(rung=Rung.COHORT, status="fail",
                                            check="cohort.flow")], claim={"statement": "x"})
    assert none.highest_rung == -1


def test_evidence_json_round_trip_validates_against_schema():
    table = pd.DataFrame({"group": ["a", "b"], "estimate": [0.8, np.nan], "n": [10, 2]})
    plot = Plot(kind="roc", title="ROC", data=pd.DataFrame({"partition": ["x", "x"],
                                                            "fpr": [0.0, 1.0],
                                                            "tpr": [0.0, 1.0]}))
    findings = [_finding(estimate=_estimate(), table=table, plots=(plot,), examples=("IMG1",),
                         params={"threshold": np.float64(0.5), "n": np.int64(3)}),
                _finding(rung=Rung.COHORT, check="cohort.flow")]
    evidence = Evidence.from_findings(findings, claim={"statement": "claim", "title": "t"},
                                      provenance={"inputs": {}, "environment": {}, "seed": 0,
                                                  "created_at": "2026-01-01T00:00:00+00:00"})
    text = evidence.to_json()
    jsonschema.validate(json.loads(text), evidence_schema())
    back = Evidence.from_json(text)
    assert back.to_json() == text
    assert math.isnan(back.findings[0].table["estimate"].iloc[1])


def test_schema_rejects_an_invalid_status():
    evidence = Evidence.from_findings([_finding()], claim={"statement": "c"},
                                      provenance={"inputs": {}, "environment": {}, "seed": 0,
                                                  "created_at": "now"})
    data = json.loads(evidence.to_json())
    data["findings"][0]["status"] = "great"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, evidence_schema())
