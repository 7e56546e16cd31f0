"""Report sections derived from the evidence: limitations, reporting checklists, seal access log.

Everything here reads only an :class:`~claimladder.Evidence`, so a report
re-rendered from ``evidence.json`` has the same sections.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

from .._core import Evidence, Finding, Rung, Status

__all__ = [
    "CHECKLISTS",
    "checklist_rows",
    "limitations",
    "load_checklist",
    "safe_data_uri",
    "seal_log",
]

#: Reporting checklists shipped with the report (file stems under ``report/checklists``).
CHECKLISTS = ("tripod_ai", "claim_2024")

_DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+={0,2}")


@cache
def load_checklist(key: str) -> dict[str, Any]:
    """The checklist ``key`` (see :data:`CHECKLISTS`): ``{"checklist": {...}, "item": [...]}``.

    Examples
    --------
    >>> load_checklist("tripod_ai")["checklist"]["name"]
    'TRIPOD+AI'
    """
    text = resources.files("claimladder.report").joinpath("checklists", f"{key}.toml") \
        .read_text(encoding="utf-8")
    return tomllib.loads(text)


def _spec_value(spec: Mapping[str, Any], dotted: str) -> Any:
    node: Any = spec
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def checklist_rows(evidence: Evidence, key: str,
                   anchors: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per checklist item: the evidence that covers it, or why it is not covered.

    ``status`` is ``"covered"`` (a finding with a verdict bears on the item, or
    the spec or a generated report section documents it), ``"not evaluable"``
    (the only matching findings could not be evaluated), ``"missing"`` (the
    item names checks of which none ran) or ``"author"`` (outside what an
    evaluation run shows; the authors report it).

    Parameters
    ----------
    evidence : Evidence
    key : str
        A name of :data:`CHECKLISTS`.
    anchors : mapping, optional
        Check id -> HTML anchor of its first finding, for links.
    """
    anchors = anchors or {}
    spec = evidence.provenance.get("spec") or {}
    claim = evidence.claim
    sections = {"limitations", "provenance"}
    rows = []
    for item in load_checklist(key)["item"]:
        patterns = item.get("evidence", [])
        matched = [f for f in evidence.findings
                   if any(fnmatch.fnmatchcase(f.check, p) for p in patterns)]
        graded = [f for f in matched if f.status is not Status.NOT_EVALUABLE]
        checks = list(dict.fromkeys(f.check for f in graded or matched))
        spec_keys = [k for k in item.get("spec", [])
                     if _present(_spec_value(spec, k)) or (
                         k.startswith("claim.") and _present(claim.get(k.split(".", 1)[1])))]
        report = [s for s in item.get("report", []) if s in sections]
        if graded or spec_keys or report:
            status = "covered"
        elif matched:
            status = "not evaluable"
        elif patterns:
            status = "missing"
        else:
            status = "author"
        rows.append({"id": item["id"], "section": item["section"], "title": item["title"],
                     "status": status, "note": item.get("note", ""),
                     "checks": [{"check": c, "anchor": anchors.get(c)} for c in checks],
                     "spec": spec_keys, "report": report,
                     "expected": patterns if status == "missing" else []})
    return rows


def limitations(evidence: Evidence) -> list[dict[str, str]]:
    """What this evidence does not show: rungs not run, checks not evaluable, warnings.

    Each entry has ``kind`` ("not run", "not evaluable", "warning",
    "exploratory", "not sealed") and ``text``.
    """
    out = []
    for verdict in evidence.verdicts:
        if verdict.status == "not_evaluated":
            out.append({"kind": "not run", "text": (
                f"Rung {int(verdict.rung)} ({verdict.rung.title}) was not run: the claim "
                f"carries no evidence on {_RUNG_QUESTIONS[verdict.rung]}.")})
    for finding in evidence.findings:
        if finding.status is Status.NOT_EVALUABLE:
            out.append({"kind": "not evaluable", "text": f"{finding.check}: {finding.message}"})
    for finding in evidence.findings:
        if finding.status is Status.WARN:
            kind = "exploratory" if finding.check.startswith("failure.") else "warning"
            out.append({"kind": kind, "text": f"{finding.check}: {finding.message}"})
    if not any(f.check == "provenance.sealed_access" for f in evidence.findings):
        out.append({"kind": "not sealed", "text": (
            "No test partition was sealed (claimladder seal), so this report cannot show how "
            "often the test data were evaluated before this run, nor rule out tuning on them.")})
    return out


_RUNG_QUESTIONS = {
    Rung.COHORT: "whether the cohort definition is explicit and every exclusion accounted for",
    Rung.INTERNAL: "held-out performance, leakage or patient-disjoint splits",
    Rung.EXTERNAL: "generalisation to other sites, scanners or periods",
    Rung.BIAS: "performance differences between subgroups",
    Rung.CALIBRATION: "whether the model's confidence matches its correctness",
    Rung.ROBUSTNESS: "robustness to image degradation or shortcuts",
    Rung.UTILITY: "clinical usefulness against baselines or readers",
}


def seal_log(findings: Sequence[Finding]) -> pd.DataFrame:
    """Sealed test sets: whether each still matches its seal, and how often it was evaluated.

    Columns ``seal, matches_seal, n_evaluations, n_specs, first_access, last_access``,
    one row per sealed partition, from the ``provenance.sealed_test_set`` and
    ``provenance.sealed_access`` findings.
    """
    columns = ["seal", "matches_seal", "n_evaluations", "n_specs", "first_access",
               "last_access"]
    frames = [f.table for f in findings
              if f.check == "provenance.sealed_access" and f.table is not None]
    if not frames:
        return pd.DataFrame(columns=columns)
    log = pd.concat(frames, ignore_index=True)
    verified = {str(f.params.get("partition", f.params.get("seal", ""))): f.status.value
                for f in findings if f.check == "provenance.sealed_test_set"}
    log["matches_seal"] = [
        {"pass": "yes", "fail": "NO"}.get(verified.get(str(s), ""), "unknown")
        for s in log["seal"]]
    return log.reindex(columns=columns)


def safe_data_uri(value: Any) -> str | None:
    """``value`` if it is a base64 PNG data URI, else None (never trust evidence.json).

    Examples
    --------
    >>> safe_data_uri("data:image/png;base64,iVBORw0KGgo=")
    'data:image/png;base64,iVBORw0KGgo='
    >>> safe_data_uri("javascript:alert(1)") is None
    True
    """
    return value if isinstance(value, str) and _DATA_URI.fullmatch(value) else None
