"""Access to the JSON Schema of evidence.json shipped with the package."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["evidence_schema"]


def evidence_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every ``evidence.json`` validates against."""
    text = resources.files("claimladder").joinpath("schema", "evidence.schema.json").read_text(
        encoding="utf-8")
    return json.loads(text)
