"""Render evidence to a self-contained HTML report, a Markdown summary and JSON files."""

from __future__ import annotations

import functools
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .._core import Evidence, Finding, Rung, atomic_write_text
from ._figures import render_plot, wide_table_one
from ._sections import (
    CHECKLISTS,
    checklist_rows,
    limitations,
    load_checklist,
    safe_data_uri,
    seal_log,
)

__all__ = ["render_html", "render_markdown", "write_report"]

_MAX_ROWS = 60


@functools.cache
def _version() -> str:
    # read once per process: a concurrent `pip install` briefly removes the metadata,
    # and two renders of the same evidence must not differ by it
    from importlib import metadata

    try:
        return metadata.version("claimladder")
    except metadata.PackageNotFoundError:
        return "unknown"


def _cell(value: Any) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {"text": "", "num": False}
    if isinstance(value, bool):
        return {"text": str(value), "num": False}
    if isinstance(value, int):
        return {"text": f"{value:,}", "num": True}
    if isinstance(value, float):
        text = f"{value:,.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:.3f}"
        return {"text": text, "num": True}
    return {"text": str(value), "num": False}


def _is_count(column: Any) -> bool:
    """Count columns (``n``, ``n_*``): shown as integers whatever their dtype, since a count
    column with a missing value comes back from JSON as floats."""
    return str(column) == "n" or str(column).startswith("n_")


def _value(value: Any, count: bool) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if count and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _table_view(table: pd.DataFrame) -> dict[str, Any]:
    shown = table.head(_MAX_ROWS)
    counts = [_is_count(c) for c in table.columns]
    rows = [[_cell(_value(v, count)) for v, count in zip(row, counts)]
            for row in shown.itertuples(index=False)]
    return {"columns": [str(c) for c in table.columns], "rows": rows,
            "truncated": len(table) > _MAX_ROWS, "total": len(table)}


def _flow_view(finding: Finding) -> list[dict[str, Any]]:
    flow = next((p.data for p in finding.plots if p.kind == "flow"), None)
    if flow is None:
        return []
    boxes = []
    for row in flow.itertuples(index=False):
        if row.kind == "source":
            boxes.append({"text": f"Source cohort: {row.n_images} images, {row.n_patients} "
                                  "patients", "out": False})
        else:
            boxes.append({"text": f"Removed {row.n_images_removed}: {row.step}", "out": True})
            patients = "" if pd.isna(row.n_patients) else f", {int(row.n_patients)} patients"
            boxes.append({"text": f"Remaining: {row.n_images} images{patients}", "out": False})
    return boxes


def _gallery_view(finding: Finding) -> list[dict[str, Any]]:
    """Thumbnails of ``gallery`` plots; a thumbnail that is not a PNG data URI is dropped.

    Each card's caption is the row's ``caption`` when given, else its error kind,
    partition and score (the failure gallery)."""
    cards = []
    for plot in finding.plots:
        if plot.kind != "gallery":
            continue
        for row in plot.data.to_dict("records"):
            score = row.get("score")
            caption = row.get("caption")
            if not isinstance(caption, str) or not caption:
                caption = (f"{row.get('error', '')}, {row.get('partition', '')}, score "
                           + (f"{score:.3f}" if isinstance(score, (int, float)) else "?"))
            cards.append({
                "src": safe_data_uri(row.get("thumbnail")),
                "image_id": str(row.get("image_id", "")),
                "caption": caption,
                "masked": int(row.get("text_regions_masked") or 0),
            })
    return cards


def _finding_view(finding: Finding, index: int) -> dict[str, Any]:
    table = finding.table
    if table is not None and finding.check == "cohort.table1":
        table = wide_table_one(table)
    return {
        "anchor": _anchor(finding, index),
        "check": finding.check,
        "status": finding.status.value,
        "message": finding.message,
        "estimate": None if finding.estimate is None else finding.estimate.format(),
        "criterion": finding.criterion,
        "table": None if table is None or table.empty else _table_view(table),
        "figures": [svg for p in finding.plots if (svg := render_plot(p)) is not None],
        "flow": _flow_view(finding),
        "gallery": _gallery_view(finding),
        "examples": [] if finding.check == "failure.worst_cases" else list(finding.examples),
    }


def _anchor(finding: Finding, index: int) -> str:
    return f"f{index}-{finding.check}"


def _checklist_view(evidence: Evidence, anchors: dict[str, str]) -> list[dict[str, Any]]:
    views = []
    for key in CHECKLISTS:
        meta = load_checklist(key)["checklist"]
        rows = checklist_rows(evidence, key, anchors)
        counts = {s: sum(r["status"] == s for r in rows)
                  for s in ("covered", "not evaluable", "missing", "author")}
        views.append({"key": key, "name": meta["name"], "citation": meta["citation"],
                      "original": meta.get("original"), "rows": rows, "counts": counts})
    return views


def _provenance_view(provenance: dict[str, Any]) -> dict[str, Any]:
    env = provenance.get("environment", {})
    packages = ", ".join(f"{k} {v}" for k, v in sorted(env.get("packages", {}).items()))
    return {"inputs": sorted(provenance.get("inputs", {}).items()),
            "seed": provenance.get("seed"), "python": env.get("python", "?"),
            "platform": env.get("platform", "?"), "created_at": provenance.get("created_at", "?"),
            "packages": packages}


def render_html(evidence: Evidence) -> str:
    """The self-contained HTML report (inline CSS and SVG; no scripts, no network requests).

    Every string that comes from data is HTML-escaped by the template engine.
    """
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("claimladder.report").joinpath("templates", name)
            .read_text(encoding="utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    views = {id(f): _finding_view(f, i) for i, f in enumerate(evidence.findings)}
    anchors: dict[str, str] = {}
    for i, f in enumerate(evidence.findings):
        anchors.setdefault(f.check, _anchor(f, i))
    # failure analysis is part of rung 3's verdict but has a section of its own
    rungs = [{"verdict": v.to_dict(),
              "findings": [views[id(f)] for f in evidence.findings_for(v.rung)
                           if not f.check.startswith("failure.")],
              "n_failure": sum(f.check.startswith("failure.")
                               for f in evidence.findings_for(v.rung))}
             for v in evidence.verdicts]
    failure = [views[id(f)] for f in evidence.findings if f.check.startswith("failure.")]
    return env.get_template("report.html.j2").render(
        claim=dict(evidence.claim),
        schema_version=evidence.schema_version,
        highest_rung=evidence.highest_rung,
        rung_titles={int(r): r.title for r in Rung},
        verdicts=[v.to_dict() for v in evidence.verdicts],
        not_validated_for=list(evidence.not_validated_for),
        rungs=rungs,
        provenance=_provenance_view(dict(evidence.provenance)),
        version=_version(),
        failure=failure,
        limitations=limitations(evidence),
        checklists=_checklist_view(evidence, anchors),
        seals=_table_view(seal_log(evidence.findings)),
    )


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def render_markdown(evidence: Evidence) -> str:
    """A short Markdown summary: the claim, the ladder and what it is not validated for."""
    claim = evidence.claim
    highest = evidence.highest_rung
    lines = [f"# {_md_escape(claim.get('title', 'claimladder evidence'))}", "",
             f"**Claim.** {_md_escape(claim.get('statement', ''))}", ""]
    if claim.get("intended_use"):
        lines += [f"**Intended use.** {_md_escape(claim['intended_use'])}", ""]
    reached = f"{highest} ({Rung(highest).title})" if highest >= 0 else "none"
    lines += [f"**Highest rung reached:** {reached}", "",
              "| Rung | Question | Verdict | Why |", "|---|---|---|---|"]
    for v in evidence.verdicts:
        lines.append(f"| {int(v.rung)} | {v.rung.title} | {v.status.replace('_', ' ')} | "
                     f"{_md_escape(v.summary)} |")
    lines += ["", "## Not validated for", ""]
    lines += [f"- {_md_escape(x)}" for x in evidence.not_validated_for] or ["- (none declared)"]
    limits = limitations(evidence)
    lines += ["", "## Limitations", ""]
    lines += [f"- {_md_escape(x['text'])}" for x in limits if x["kind"] in ("not run", "not sealed")]
    n_ne = sum(x["kind"] == "not evaluable" for x in limits)
    n_inc = sum(x["kind"] in ("warning", "exploratory") for x in limits)
    lines += [f"- {n_ne} check(s) could not be evaluated and {n_inc} raised a warning "
              "(listed in report.html)."]
    lines += ["", "## Reporting checklists", ""]
    for key in CHECKLISTS:
        rows = checklist_rows(evidence, key)
        counts = {s: sum(r["status"] == s for r in rows)
                  for s in ("covered", "not evaluable", "missing", "author")}
        lines.append(f"- {load_checklist(key)['checklist']['name']}: {counts['covered']} of "
                     f"{len(rows)} items covered by this evidence, {counts['not evaluable']} not "
                     f"evaluable, {counts['missing']} missing, {counts['author']} for the "
                     "authors.")
    lines += ["", f"_claimladder {_version()}, evidence schema {evidence.schema_version}._", ""]
    return "\n".join(lines)


def write_report(evidence: Evidence, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``evidence.json``, ``report.html`` and ``summary.md`` atomically into ``out_dir``.

    Everything is rendered in memory first, so a failure leaves earlier files intact.
    """
    out = Path(out_dir)
    texts = {"evidence.json": evidence.to_json(), "report.html": render_html(evidence),
             "summary.md": render_markdown(evidence)}
    return {name: atomic_write_text(out / name, text) for name, text in texts.items()}
