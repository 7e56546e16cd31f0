"""The study: a claim, its data, its partitions and what must be true at each rung."""

from __future__ import annotations

import copy
import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._core import StudySpecError
from ..cohort import ColumnRoles
from ._spec import CRITERIA_DEFAULTS, validate_spec

__all__ = ["Study", "load_study"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Study:
    """A validated ``study.toml``.

    Paths are resolved against the folder of the spec file. ``spec`` keeps the
    full validated mapping (defaults filled) for provenance; the attributes
    below are the parts the ladder reads.
    """

    path: Path | None
    spec: Mapping[str, Any]
    spec_sha256: str
    roles: ColumnRoles
    criteria: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    # -- claim -------------------------------------------------------------
    @property
    def title(self) -> str:
        """Study title (defaults to the claim statement)."""
        return self.spec["study"].get("title") or self.spec["claim"]["statement"]

    @property
    def claim(self) -> dict[str, Any]:
        """The claim block, as evidence.json records it."""
        claim = self.spec["claim"]
        return {
            "title": self.title,
            "statement": claim["statement"],
            "intended_use": claim.get("intended_use", ""),
            "not_intended_for": list(claim.get("not_intended_for", [])),
            "positive_label": claim.get("positive_label", 1),
        }

    @property
    def positive_label(self) -> Any:
        """Label value of the positive class."""
        return self.spec["claim"].get("positive_label", 1)

    # -- data --------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the spec are resolved against."""
        return self.path.parent if self.path is not None else Path.cwd()

    def resolve(self, value: str) -> Path:
        """Resolve a path from the spec against :attr:`base_dir`."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def cohort_path(self) -> Path:
        """The cohort table."""
        return self.resolve(self.spec["data"]["cohort"])

    @property
    def predictions_path(self) -> Path | None:
        """The predictions table, when declared."""
        value = self.spec["data"].get("predictions")
        return None if value is None else self.resolve(value)

    @property
    def images_root(self) -> Path:
        """Folder that the cohort's image paths are relative to."""
        return self.resolve(self.spec["data"].get("images_root", "."))

    @property
    def candidate_model(self) -> str | None:
        """Value of the predictions' model column that is the candidate."""
        return self.spec["data"].get("candidate_model")

    @property
    def prediction_columns(self) -> dict[str, Any]:
        """Column names in the predictions file."""
        cols = {"image_id": "image_id", "score": "score", "model": "model"}
        cols.update(self.spec["data"].get("prediction_columns", {}))
        return cols

    # -- cohort, partitions, metrics -------------------------------------
    @property
    def include(self) -> list[str]:
        """Inclusion rules, applied in order."""
        return list(self.spec["cohort"].get("include", []))

    @property
    def exclude(self) -> list[str]:
        """Exclusion rules, applied in order after the inclusion rules."""
        return list(self.spec["cohort"].get("exclude", []))

    @property
    def partitions(self) -> dict[str, Any]:
        """Partition rules: development, calibration, internal_test and external sets."""
        parts = self.spec["partitions"]
        return {
            "development": parts.get("development"),
            "calibration": parts.get("calibration"),
            "internal_test": parts.get("internal_test"),
            "external": dict(parts.get("external", {})),
        }

    @property
    def subgroups(self) -> dict[str, Any]:
        """Subgroup audit settings."""
        return dict(self.spec["subgroups"])

    @property
    def metrics(self) -> dict[str, Any]:
        """Metric settings: primary, threshold, confidence_level, n_resamples, seed."""
        return dict(self.spec["metrics"])

    @property
    def seed(self) -> int:
        """Seed of every random step in the run."""
        return int(self.spec["metrics"]["seed"])

    def criterion(self, rung: str, name: str) -> float | None:
        """An acceptance criterion (study value, else the default; None if neither)."""
        return self.criteria.get(rung, {}).get(name)


def load_study(path: str | os.PathLike[str]) -> Study:
    """Read and validate ``study.toml``.

    Parameters
    ----------
    path : path-like
        The study spec file.

    Returns
    -------
    Study

    Raises
    ------
    StudySpecError
        When the file is missing, is not valid TOML, or has unknown / mistyped keys.
    """
    path = Path(path)
    if not path.is_file():
        hint = " It is a folder; pass the study.toml inside it." if path.is_dir() else ""
        raise StudySpecError(
            f"{path}: study spec not found.{hint} Fix: pass the path of your study.toml, or "
            "create one with `claimladder init cohort.csv`."
        )
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudySpecError(
            f"{path}: not valid TOML ({exc}). Fix: check quotes, brackets and `key = value` "
            "lines near that position."
        ) from None
    return study_from_mapping(data, path=path, raw=raw)


def study_from_mapping(
    data: Mapping[str, Any], *, path: Path | None = None, raw: bytes | None = None
) -> Study:
    """Build a :class:`Study` from an already-parsed mapping (validated here)."""
    source = str(path) if path is not None else "study spec"
    spec = validate_spec(data, source=source)
    roles = ColumnRoles.from_mapping(spec["data"]["columns"])
    criteria = copy.deepcopy(CRITERIA_DEFAULTS)
    for rung, values in spec["criteria"].items():
        criteria.setdefault(rung, {}).update(values)
    digest = hashlib.sha256(raw if raw is not None else repr(sorted(spec.items())).encode())
    study = Study(path=path, spec=spec, spec_sha256=digest.hexdigest(), roles=roles,
                  criteria=criteria)
    _check_partitions_declared(study)
    return study


def _check_partitions_declared(study: Study) -> None:
    parts = study.partitions
    if parts["internal_test"] is None and not parts["external"]:
        raise StudySpecError(
            f"{study.path or 'study spec'}: no test partition is declared. Fix: add `internal_test = \"...\"` "
            "or a [partitions.external] set under [partitions]."
        )
