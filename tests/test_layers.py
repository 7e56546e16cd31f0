"""The import layers of STYLE.md: a module imports only from lower layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "claimladder"

# Lowest first; names on one level are siblings that must not import each other.
LAYERS: list[set[str]] = [
    {"_core"},
    {"parallel"},
    {"io", "models"},
    {"provenance"},
    {"cohort"},
    {"metrics", "features"},
    {"splits"},
    {"leakage", "shortcuts", "labels", "calibration", "subgroups", "robustness", "utility",
     "readers", "datasets"},
    {"ladder"},
    {"report"},
    {"cli"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
# Siblings within the first two levels may not import each other either.
TOP_LEVEL_ALLOWED = {"__init__", "__main__", "_schema"}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_units(source: str, rel_parts: tuple[str, ...]) -> set[str]:
    """Package units (``cohort``, ``_core`` ...) imported by a module at ``rel_parts``."""
    tree = ast.parse(source)
    depth = len(rel_parts) - 1  # package depth of the module's folder below claimladder
    units = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level <= depth:
                    continue  # inside the same subpackage
                base = (node.module or "").split(".")
                if base[0]:
                    units.add(base[0])
                else:
                    units.update(alias.name.split(".")[0] for alias in node.names)
            elif node.module and node.module.startswith("claimladder."):
                units.add(node.module.split(".")[1])
            elif node.module == "claimladder":
                units.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("claimladder."):
                    units.add(alias.name.split(".")[1])
    return units


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _unit(p) not in TOP_LEVEL_ALLOWED)


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in MODULES}
    assert units, "no modules found"
    assert units <= set(LEVEL), f"unknown package units: {sorted(units - set(LEVEL))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_respect_layers(path):
    unit = _unit(path)
    source = path.read_text(encoding="utf-8")
    for imported in _imported_units(source, path.relative_to(PACKAGE).parts):
        if imported == unit or imported in TOP_LEVEL_ALLOWED:
            continue
        assert imported in LEVEL, f"{path.name} imports unknown unit {imported!r}"
        assert LEVEL[imported] < LEVEL[unit], (
            f"{unit} (layer {LEVEL[unit]}) imports {imported} (layer {LEVEL[imported]}); "
            "a module may import only from lower layers"
        )


def test_checker_sees_relative_and_absolute_imports():
    source = ("from ..ladder import run_ladder\nfrom .._core import Finding\n"
              "from ._flow import apply_flow\nimport claimladder.report\n"
              "from claimladder.metrics import roc_auc\n")
    units = _imported_units(source, ("cohort", "_m.py"))
    assert units == {"ladder", "_core", "report", "metrics"}
    assert LEVEL["ladder"] > LEVEL["cohort"]  # so the layer test would flag the first import
