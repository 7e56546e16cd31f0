import json

import jsonschema
import pandas as pd

from claimladder import Estimate, ConfidenceInterval, Evidence, Finding, Plot, Rung, evidence_schema
from claimladder.report import render_html, render_markdown, write_report

EVIL = "<script>alert('x')</script><b onmouseover=1>"


def _evidence():
    table = pd.DataFrame({"site": [EVIL, "B"], "estimate": [0.81234, float("nan")]})
    roc = Plot(kind="roc", title=f"ROC {EVIL}",
               data=pd.DataFrame({"partition": [EVIL, EVIL], "fpr": [0.0, 1.0],
                                  "tpr": [0.0, 1.0]}))
    finding = Finding(check="internal.roc_auc", rung=Rung.INTERNAL, status="fail",
                      message=f"Site {EVIL} failed", table=table, plots=(roc,),
                      examples=(EVIL,),
                      estimate=Estimate(value=0.8, ci=ConfidenceInterval(low=0.7, high=0.9),
                                        confidence_level=0.95, method="bootstrap", n=10))
    return Evidence.from_findings(
        [finding], claim={"title": f"Study {EVIL}", "statement": EVIL, "intended_use": EVIL,
                          "not_intended_for": [EVIL]},
        not_validated_for=[EVIL],
        provenance={"inputs": {"cohort": {"file": f"{EVIL}.csv", "bytes": 1,
                                          "sha256": "0" * 64}},
                    "environment": {"python": "3", "platform": EVIL, "packages": {}},
                    "seed": 0, "created_at": "now"})


def test_every_data_string_is_escaped():
    html = render_html(_evidence())
    assert "<script>" not in html and "onmouseover=1>" not in html
    assert "&lt;script&gt;" in html
    assert html.count("<svg") == 1  # the ROC figure is inline
    assert "&lt;script&gt;" in html.split("<svg", 1)[1]  # labels escaped inside the SVG too


def test_markdown_escapes_html():
    text = render_markdown(_evidence())
    assert "<script>" not in text and "&lt;script>" in text


def test_write_report_files(tmp_path):
    paths = write_report(_evidence(), tmp_path)
    assert sorted(paths) == ["evidence.json", "report.html", "summary.md"]
    jsonschema.validate(json.loads(paths["evidence.json"].read_text()), evidence_schema())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence.json", "report.html",
                                                          "summary.md"]


def test_rendering_is_deterministic():
    assert render_html(_evidence()) == render_html(_evidence())
