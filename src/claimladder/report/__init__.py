"""The evidence report: self-contained HTML, Markdown summary and JSON."""

from ._render import render_html, render_markdown, write_report

__all__ = ["render_html", "render_markdown", "write_report"]
