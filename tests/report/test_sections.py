"""Report sections derived from evidence: checklists, limitations, seal log, thumbnails."""

import fnmatch
import re
from pathlib import Path

import pandas as pd
import pytest

from claimladder import Evidence, Finding, Plot, Rung
from claimladder.report import render_html
from claimladder.report._sections import (
    CHECKLISTS,
    checklist_rows,
    limitations,
    load_checklist,
    safe_data_uri,
    seal_log,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "claimladder"
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB4iG8MwAAAABJRU5ErkJggg=="


def _known_checks() -> set[str]:
    """Every check id written as a literal in the package."""
    pattern = re.compile(r'"((?:[a-z]+)\.[a-z_0-9]+)"')
    found = set()
    for path in SRC.rglob("*.py"):
        found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize("key", CHECKLISTS)
def test_checklist_files_are_well_formed(key):
    data = load_checklist(key)
    meta, items = data["checklist"], data["item"]
    assert meta["key"] == key and "doi:" in meta["citation"]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    known = _known_checks()
    for item in items:
        assert set(item) <= {"id", "section", "title", "evidence", "spec", "report", "note"}
        assert item["title"] and len(item["title"]) <= 100  # paraphrases, not quotations
        for pattern in item.get("evidence", []):
            # a pattern no check can produce would mark the item missing forever
            assert fnmatch.filter(known, pattern), (key, item["id"], pattern)
        assert set(item.get("report", [])) <= {"limitations", "provenance"}


def test_tripod_and_claim_item_counts():
    assert len(load_checklist("tripod_ai")["item"]) == 52  # 27 items, with sub-items
    assert len(load_checklist("claim_2024")["item"]) == 44  # CLAIM 2024, not the 42 of 2020


def _evidence(findings, spec=None):
    return Evidence.from_findings(findings, claim={"title": "t", "statement": "s",
                                                   "intended_use": "triage"},
                                  provenance={"spec": spec or {}})


def test_checklist_statuses():
    findings = [
        Finding(check="cohort.flow", rung=Rung.COHORT, status="pass", message="ok"),
        Finding(check="external.auroc_drop", rung=Rung.EXTERNAL, status="not_evaluable",
                message="no external set"),
        Finding(check="failure.slices", rung=Rung.BIAS, status="warn", message="slice"),
    ]
    rows = {r["id"]: r for r in checklist_rows(
        _evidence(findings, spec={"cohort": {"include": ["age >= 18"], "exclude": []}}),
        "claim_2024", {"cohort.flow": "f0-cohort.flow"})}
    assert rows["35"]["status"] == "covered"  # included/excluded, flow diagram
    assert rows["35"]["checks"] == [{"check": "cohort.flow", "anchor": "f0-cohort.flow"}]
    assert rows["8"]["status"] == "covered" and rows["8"]["spec"] == ["cohort.include"]
    assert rows["33"]["status"] == "not evaluable"  # external testing could not run
    assert rows["39"]["status"] == "covered"  # failure analysis: a warning is evidence too
    assert rows["30"]["status"] == "missing" and rows["30"]["expected"]  # robustness not run
    assert rows["44"]["status"] == "author"  # funding
    assert rows["40"]["status"] == "covered" and rows["40"]["report"] == ["limitations"]
    assert rows["3"]["status"] == "covered"  # intended use from the claim


def test_limitations_list_what_was_not_tested():
    findings = [
        Finding(check="cohort.flow", rung=Rung.COHORT, status="pass", message="ok"),
        Finding(check="bias.small_groups", rung=Rung.BIAS, status="not_evaluable",
                message="age = 90+: n=3 < 30"),
        Finding(check="external.auroc_drop", rung=Rung.EXTERNAL, status="warn",
                message="drop 0.06 [0.01, 0.11]"),
    ]
    items = limitations(_evidence(findings))
    kinds = [i["kind"] for i in items]
    texts = " ".join(i["text"] for i in items)
    assert kinds.count("not run") == 4  # rungs 1, 4, 5, 6
    assert "Rung 5 (Robustness) was not run" in texts
    assert "bias.small_groups: age = 90+: n=3 < 30" in texts
    assert "warning" in kinds and "external.auroc_drop" in texts
    assert kinds[-1] == "not sealed"


def test_seal_log_counts_evaluations():
    access = pd.DataFrame({"seal": ["internal_test"], "n_evaluations": [3], "n_specs": [2],
                           "first_access": ["2026-01-01T00:00:00+00:00"],
                           "last_access": ["2026-01-03T00:00:00+00:00"]})
    findings = [
        Finding(check="provenance.sealed_test_set", rung=Rung.INTERNAL, status="pass",
                message="matches", params={"partition": "internal_test"}),
        Finding(check="provenance.sealed_access", rung=Rung.INTERNAL, status="warn",
                message="3 times", table=access),
    ]
    log = seal_log(findings)
    assert log.to_dict("records") == [{**access.iloc[0].to_dict(), "matches_seal": "yes"}]
    evidence = _evidence(findings)
    assert all(i["kind"] != "not sealed" for i in limitations(evidence))
    html = render_html(evidence)
    section = html[html.index('id="sealed-access"'):]
    assert "internal_test" in section and ">3<" in section
    assert seal_log([]).empty
    assert "No test partition is sealed" in render_html(_evidence([]))


@pytest.mark.parametrize("value, ok", [
    (PNG, True),
    ("data:image/svg+xml;base64,PHN2Zz4=", False),
    ('data:image/png;base64,AAAA" onerror="alert(1)', False),
    ("javascript:alert(1)", False),
    (None, False),
    (float("nan"), False),
], ids=["png", "svg", "attribute-break", "javascript", "none", "nan"])
def test_only_png_data_uris_reach_the_page(value, ok):
    assert (safe_data_uri(value) == value) if ok else safe_data_uri(value) is None
    gallery = Plot(kind="gallery", title="g", data=pd.DataFrame({
        "image_id": ["IMG1"], "partition": ["p"], "label": [1], "error": ["false negative"],
        "score": [0.1], "loss": [2.3], "text_regions_masked": [0], "thumbnail": [value]}))
    finding = Finding(check="failure.worst_cases", rung=Rung.BIAS, status="pass",
                      message="m", plots=(gallery,))
    html = render_html(_evidence([finding]))
    section = html[html.index('id="failure-analysis"'):html.index('id="limitations"')]
    assert ("<img src=" in section) is ok
    assert "onerror" not in section and "javascript:" not in section
    assert "IMG1" in section


def test_summary_lists_limitations_and_checklist_coverage():
    from claimladder.report import render_markdown

    findings = [Finding(check="cohort.flow", rung=Rung.COHORT, status="pass", message="ok")]
    text = render_markdown(_evidence(findings))
    assert "## Limitations" in text and "Rung 6 (Clinical relevance) was not run" in text
    rows = checklist_rows(_evidence(findings), "claim_2024")
    covered = sum(r["status"] == "covered" for r in rows)
    assert f"- CLAIM 2024 update: {covered} of 44 items covered" in text
    assert "- TRIPOD+AI: " in text
