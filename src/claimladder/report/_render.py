"""Render evidence to a self-contained HTML report, a Markdown summary and JSON files."""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .._core import Evidence, Finding, Rung, atomic_write_text
from ._figures import render_plot, wide_table_one

__all__ = ["render_html", "render_markdown", "write_report"]

_MAX_ROWS = 60


def _version() -> str:
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


def _table_view(table: pd.DataFrame) -> dict[str, Any]:
    shown = table.head(_MAX_ROWS)
    rows = [[_cell(v.item() if hasattr(v, "item") else v) for v in row]
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


def _finding_view(finding: Finding, index: int) -> dict[str, Any]:
    table = finding.table
    if table is not None and finding.check == "cohort.table1":
        table = wide_table_one(table)
    return {
        "anchor": f"f{index}-{finding.check}",
        "check": finding.check,
        "status": finding.status.value,
        "message": finding.message,
        "estimate": None if finding.estimate is None else finding.estimate.format(),
        "criterion": finding.criterion,
        "table": None if table is None or table.empty else _table_view(table),
        "figures": [svg for p in finding.plots if (svg := render_plot(p)) is not None],
        "flow": _flow_view(finding),
        "examples": list(finding.examples),
    }


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
    counter = iter(range(10**9))
    rungs = [{"verdict": v.to_dict(),
              "findings": [_finding_view(f, next(counter)) for f in evidence.findings_for(v.rung)]}
             for v in evidence.verdicts]
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
