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
                xerr=[(data["estimate"] - data["ci_low"]).clip(lower=0).fillna(0),
                      (data["ci_high"] - data["estimate"]).clip(lower=0).fillna(0)],
                fmt="o", color="#1f4e79", ecolor="#7f9fbf", capsize=2, markersize=4)
    reference = plot.options.get("reference")
    if reference is not None:
        ax.axvline(float(reference), color="#999999", linestyle=":", linewidth=1)
    ax.set_yticks(ys)
    ax.set_yticklabels([str(v) for v in data["label"]], fontsize=8)
    ax.set_xlabel(str(plot.options.get("xlabel", "estimate")))
    ax.set_title(plot.title, fontsize=10)
    return _svg(fig)


def _reliability(plot: Plot) -> str:
    """Observed vs predicted per ``partition`` with CI bars, and the diagonal."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    for name, rows in plot.data.groupby("partition", sort=False):
        rows = rows.dropna(subset=["mean_predicted", "observed"])
        ax.errorbar(rows["mean_predicted"], rows["observed"],
                    yerr=[(rows["observed"] - rows["ci_low"]).clip(lower=0).fillna(0),
                          (rows["ci_high"] - rows["observed"]).clip(lower=0).fillna(0)],
                    fmt="o-", markersize=3, linewidth=1.2, capsize=2, label=str(name))
    ax.set_xlabel("Mean predicted probability")
    ax.set_ylabel("Observed positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_title(plot.title, fontsize=10)
    return _svg(fig)


def _line(plot: Plot) -> str:
    """Generic lines: options name ``x``, ``y``, ``series`` and optional ``band`` columns."""
    opts = plot.options
    x, y = opts.get("x", "x"), opts.get("y", "y")
    series = opts.get("series")
    band = opts.get("band")
    fig, ax = _figure(6.0, 4.0)
    groups = plot.data.groupby(series, sort=False) if series else [("", plot.data)]
    for name, rows in groups:
        ax.plot(rows[x], rows[y], label=str(name), linewidth=1.4)
        if band and {band[0], band[1]} <= set(rows.columns):
            ax.fill_between(rows[x], rows[band[0]], rows[band[1]], alpha=0.2)
    if opts.get("reference") is not None:
        ax.axhline(float(opts["reference"]), color="#999999", linestyle=":", linewidth=1)
    if opts.get("highlight_x"):
        low, high = opts["highlight_x"]
        ax.axvspan(float(low), float(high), color="#1f4e79", alpha=0.05)
    if opts.get("ylim"):
        ax.set_ylim(*map(float, opts["ylim"]))
    ax.set_xlabel(str(opts.get("xlabel", x)))
    ax.set_ylabel(str(opts.get("ylabel", y)))
    if series:
        ax.legend(fontsize=8, frameon=False)
    ax.set_title(plot.title, fontsize=10)
    return _svg(fig)


RENDERERS: dict[str, Callable[[Plot], str]] = {"roc": _roc, "forest": _forest,
                                               "reliability": _reliability, "line": _line}


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
