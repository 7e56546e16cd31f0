"""Figures for the report, drawn from evidence data as inline SVG (no network, no files)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd

from .._core import Plot

__all__ = ["render_plot", "RENDERERS"]


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE for inline use


def _figure(width: float = 5.0, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "claimladder"  # deterministic element ids
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, small
    return plt.subplots(figsize=(width, height))


def _roc(plot: Plot) -> str:
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    for name, rows in plot.data.groupby("partition", sort=False):
        ax.plot(rows["fpr"], rows["tpr"], label=str(name), linewidth=1.6, drawstyle="steps-post")
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("Sensitivity (true-positive rate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(plot.title, fontsize=10)
    return _svg(fig)


def _forest(plot: Plot) -> str:
    """Point estimates with CIs, one row per ``label`` (``estimate, ci_low, ci_high``)."""
    data = plot.data.reset_index(drop=True)
    fig, ax = _figure(6.0, max(2.0, 0.28 * len(data) + 1.0))
    ys = list(range(len(data)))[::-1]
    ax.errorbar(data["estimate"], ys,
                xerr=[data["estimate"] - data["ci_low"], data["ci_high"] - data["estimate"]],
                fmt="o", color="#1f4e79", ecolor="#7f9fbf", capsize=2, markersize=4)
    reference = plot.options.get("reference")
    if reference is not None:
        ax.axvline(float(reference), color="#999999", linestyle=":", linewidth=1)
    ax.set_yticks(ys)
    ax.set_yticklabels([str(v) for v in data["label"]], fontsize=8)
    ax.set_xlabel(str(plot.options.get("xlabel", "estimate")))
    ax.set_title(plot.title, fontsize=10)
    return _svg(fig)


RENDERERS: dict[str, Callable[[Plot], str]] = {"roc": _roc, "forest": _forest}


def render_plot(plot: Plot) -> str | None:
    """Inline SVG for ``plot``, or ``None`` when the kind is drawn in HTML (e.g. ``flow``)."""
    renderer = RENDERERS.get(plot.kind)
    if renderer is None or plot.data.empty:
        return None
    return renderer(plot)


def wide_table_one(table: pd.DataFrame) -> pd.DataFrame:
    """Pivot the long Table 1 to one row per variable/level and one column per partition."""
    order = list(dict.fromkeys(table["partition"]))
    wide = table.pivot_table(index=["variable", "level"], columns="partition", values="summary",
                             aggfunc="first", sort=False)
    return wide.reindex(columns=order).reset_index().fillna("")
