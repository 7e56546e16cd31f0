"""Column roles: how the user's column names map to what claimladder needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ColumnRoles", "SINGLE_ROLES", "LIST_ROLES", "REQUIRED_ROLES"]

#: Roles that name one column.
SINGLE_ROLES = (
    "image_id",
    "patient_id",
    "label",
    "path",
    "site",
    "scanner",
    "manufacturer",
    "protocol",
    "acquired_at",
    "label_certainty",
    "adjudicated",
)
#: Roles that name several columns.
LIST_ROLES = ("attributes", "annotators")
#: Roles without which no rung can run.
REQUIRED_ROLES = ("image_id", "patient_id", "label")


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnRoles:
    """Names of the cohort columns that play each role (``None`` when absent).

    Parameters
    ----------
    image_id, patient_id, label : str
        Required: one row per image, the patient it belongs to, the reference label.
    path : str, optional
        Image file path, relative to the study's ``images_root``.
    site, scanner, manufacturer, protocol : str, optional
        Acquisition context, used for external validation and the bias audit.
    acquired_at : str, optional
        Acquisition date (ISO 8601), used for temporal splits.
    label_certainty : str, optional
        Reader-reported certainty of the reference label.
    adjudicated : str, optional
        Boolean column marking the subset whose reference label was adjudicated
        (consensus); annotators are compared with the reference there only.
    attributes : tuple of str
        Demographic and other attributes to describe and audit (age, sex, view ...).
    annotators : tuple of str
        One column per annotator with that annotator's label.
    """

    image_id: str = "image_id"
    patient_id: str = "patient_id"
    label: str = "label"
    path: str | None = None
    site: str | None = None
    scanner: str | None = None
    manufacturer: str | None = None
    protocol: str | None = None
    acquired_at: str | None = None
    label_certainty: str | None = None
    adjudicated: str | None = None
    attributes: tuple[str, ...] = ()
    annotators: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in LIST_ROLES:
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> ColumnRoles:
        """Build from a ``[data.columns]`` table (keys are validated by the caller)."""
        return cls(**dict(mapping))

    def assigned(self) -> dict[str, str]:
        """Single roles that name a column, ``{role: column}``."""
        return {r: getattr(self, r) for r in SINGLE_ROLES if getattr(self, r) is not None}

    def all_columns(self) -> list[str]:
        """Every column named by any role, without repeats, in role order."""
        names = list(self.assigned().values()) + list(self.attributes) + list(self.annotators)
        return list(dict.fromkeys(names))

    def describe(self) -> dict[str, Any]:
        """JSON-safe mapping of every role to its column(s)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
