"""Result objects: estimates with confidence intervals, findings and the evidence.

Every object here is a frozen dataclass with a JSON-safe ``to_dict`` and a
``from_dict`` that inverts it, so that ``evidence.json`` can be re-rendered
into a report without recomputing anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_option

__all__ = [
    "SCHEMA_VERSION",
    "ConfidenceInterval",
    "Estimate",
    "Status",
    "Rung",
    "Plot",
    "Finding",
    "RungVerdict",
    "Evidence",
    "rung_verdict",
]

#: Version of the evidence JSON schema (``schema/evidence.schema.json``).
SCHEMA_VERSION = "1.0"


class Status(StrEnum):
    """Outcome of one check."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    NOT_EVALUABLE = "not_evaluable"


class Rung(IntEnum):
    """The verification ladder, lowest first."""

    COHORT = 0
    INTERNAL = 1
    EXTERNAL = 2
    BIAS = 3
    CALIBRATION = 4
    ROBUSTNESS = 5
    UTILITY = 6

    @property
    def title(self) -> str:
        """Human-readable rung name used in summaries and the report."""
        return _RUNG_TITLES[self]


_RUNG_TITLES = {
    Rung.COHORT: "Cohort definition",
    Rung.INTERNAL: "Internal validation",
    Rung.EXTERNAL: "External validation",
    Rung.BIAS: "Bias audit",
    Rung.CALIBRATION: "Calibration and uncertainty",
    Rung.ROBUSTNESS: "Robustness",
    Rung.UTILITY: "Clinical relevance",
}


def _float_or_none(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _none_to_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfidenceInterval:
    """A two-sided confidence interval ``[low, high]`` (NaN when undefined)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if self.low > self.high:
            raise ValueError(f"Confidence interval low={self.low} exceeds high={self.high}.")

    def __iter__(self):
        yield self.low
        yield self.high


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """A point estimate with its confidence interval and what it was computed on.

    Parameters
    ----------
    value : float
        Point estimate on the full sample (NaN when undefined).
    ci : ConfidenceInterval
        Interval at ``confidence_level``.
    confidence_level : float
        Nominal coverage of ``ci``, in (0, 1).
    method : str
        How ``ci`` was computed, e.g. ``"bootstrap-percentile"``, ``"wilson"``.
    n : int
        Number of observations (images).
    n_clusters : int or None
        Number of independent clusters (patients) when the data were clustered.
    n_pos : int or None
        Number of positive cases, for metrics that depend on the label.
    """

    value: float
    ci: ConfidenceInterval
    confidence_level: float
    method: str
    n: int
    n_clusters: int | None = None
    n_pos: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        if not 0 < self.confidence_level < 1:
            raise ValueError(
                "The 'confidence_level' parameter of Estimate must be a float in (0, 1). "
                f"Got {self.confidence_level!r} instead."
            )

    @property
    def is_defined(self) -> bool:
        """Whether the point estimate is a number (not NaN)."""
        return not math.isnan(self.value)

    def format(self, digits: int = 3) -> str:
        """Format as ``"0.912 [0.880, 0.941]"`` (``"n/a"`` when undefined)."""
        if not self.is_defined:
            return "n/a"
        low, high = self.ci
        if math.isnan(low) or math.isnan(high):
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (NaN becomes ``None``)."""
        return {
            "value": _float_or_none(self.value),
            "ci_low": _float_or_none(self.ci.low),
            "ci_high": _float_or_none(self.ci.high),
            "confidence_level": self.confidence_level,
            "method": self.method,
            "n": int(self.n),
            "n_clusters": None if self.n_clusters is None else int(self.n_clusters),
            "n_pos": None if self.n_pos is None else int(self.n_pos),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        """Inverse of :meth:`to_dict`."""
        return cls(
            value=_none_to_nan(data["value"]),
            ci=ConfidenceInterval(
                low=_none_to_nan(data["ci_low"]), high=_none_to_nan(data["ci_high"])
            ),
            confidence_level=data["confidence_level"],
            method=data["method"],
            n=data["n"],
            n_clusters=data.get("n_clusters"),
            n_pos=data.get("n_pos"),
        )


def _jsonable(value: Any) -> Any:
    """Convert numpy / pandas scalars and NaN into JSON-safe Python values."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _float_or_none(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def table_to_dict(table: pd.DataFrame) -> dict[str, Any]:
    """Serialize a DataFrame as ``{"columns": [...], "rows": [[...], ...]}``."""
    return {
        "columns": [str(c) for c in table.columns],
        "rows": [[_jsonable(v) for v in row] for row in table.itertuples(index=False)],
    }


def table_from_dict(data: Mapping[str, Any]) -> pd.DataFrame:
    """Inverse of :func:`table_to_dict` (``None`` cells become NaN in numeric columns)."""
    frame = pd.DataFrame(data["rows"], columns=data["columns"])
    for column in frame.columns:
        values = frame[column].dropna()
        if frame[column].dtype == object and len(values) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            frame[column] = pd.to_numeric(frame[column])  # None -> NaN
    return frame


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Plot:
    """Data for one figure; the report draws it, so evidence.json alone suffices.

    Parameters
    ----------
    kind : str
        Renderer name: ``"roc"``, ``"forest"``, ``"flow"``, ``"bar"``, ``"line"``.
    title : str
        Figure title.
    data : pandas.DataFrame
        Long table the renderer reads (columns depend on ``kind``).
    options : dict
        Renderer options (axis labels, reference lines).
    """

    kind: str
    title: str
    data: pd.DataFrame
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {
            "kind": self.kind,
            "title": self.title,
            "data": table_to_dict(self.data),
            "options": _jsonable(dict(self.options)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plot:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=data["kind"],
            title=data["title"],
            data=table_from_dict(data["data"]),
            options=dict(data.get("options") or {}),
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Finding:
    """One piece of evidence produced by a check.

    Parameters
    ----------
    check : str
        Dotted check id, e.g. ``"leakage.patient_overlap"`` or ``"internal.roc_auc"``.
    rung : Rung
        The rung this finding bears on.
    status : Status
        ``pass``, ``warn``, ``fail`` or ``not_evaluable``.
    message : str
        One sentence a reviewer can read on its own; for ``not_evaluable`` the reason.
    estimate : Estimate, optional
        The headline number with its CI.
    criterion : str, optional
        What the estimate was held to, e.g. ``"AUROC drop <= 0.05"``.
    table : pandas.DataFrame, optional
        Supporting long table.
    plots : tuple of Plot
        Figures the report draws.
    examples : tuple of str
        Example case ids (pseudonymized image ids, never patient identifiers).
    params : dict
        Parameters of the check (partition, threshold, seed, ...), JSON-safe.
    """

    check: str
    rung: Rung
    status: Status
    message: str
    estimate: Estimate | None = None
    criterion: str | None = None
    table: pd.DataFrame | None = None
    plots: tuple[Plot, ...] = ()
    examples: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rung", Rung(self.rung))
        status = check_option(
            str(self.status), [s.value for s in Status], param="status", owner="Finding"
        )
        object.__setattr__(self, "status", Status(status))
        object.__setattr__(self, "plots", tuple(self.plots))
        object.__setattr__(self, "examples", tuple(str(e) for e in self.examples))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {
            "check": self.check,
            "rung": int(self.rung),
            "status": self.status.value,
            "message": self.message,
            "estimate": None if self.estimate is None else self.estimate.to_dict(),
            "criterion": self.criterion,
            "table": None if self.table is None else table_to_dict(self.table),
            "plots": [p.to_dict() for p in self.plots],
            "examples": list(self.examples),
            "params": _jsonable(dict(self.params)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`."""
        return cls(
            check=data["check"],
            rung=Rung(data["rung"]),
            status=Status(data["status"]),
            message=data["message"],
            estimate=None if data.get("estimate") is None else Estimate.from_dict(data["estimate"]),
            criterion=data.get("criterion"),
            table=None if data.get("table") is None else table_from_dict(data["table"]),
            plots=tuple(Plot.from_dict(p) for p in data.get("plots", ())),
            examples=tuple(data.get("examples", ())),
            params=dict(data.get("params") or {}),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RungVerdict:
    """The verdict of one rung: its status and the sentence that explains it."""

    rung: Rung
    status: str  # a Status value, or "not_evaluated" when no check ran
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {"rung": int(self.rung), "title": self.rung.title, "status": self.status,
                "summary": self.summary}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RungVerdict:
        """Inverse of :meth:`to_dict`."""
        return cls(rung=Rung(data["rung"]), status=data["status"], summary=data["summary"])


_SEVERITY = {Status.FAIL: 3, Status.WARN: 2, Status.PASS: 1, Status.NOT_EVALUABLE: 0}


def rung_verdict(rung: Rung, findings: Iterable[Finding]) -> RungVerdict:
    """Combine the findings of one rung into its verdict.

    Any ``fail`` fails the rung, else any ``warn`` warns; a rung passes when at
    least one check passed and none failed or warned. ``not_evaluable``
    findings alone leave the rung ``not_evaluable``; a rung without findings is
    ``not_evaluated``. The summary quotes the worst findings.
    """
    own = [f for f in findings if f.rung == rung]
    if not own:
        return RungVerdict(rung=rung, status="not_evaluated", summary="No check was run.")
    worst = max(_SEVERITY[f.status] for f in own)
    status = next(s for s, v in _SEVERITY.items() if v == worst)
    cited = [f for f in own if f.status == status]
    if status is Status.PASS:
        summary = f"{len(cited)} check(s) passed."
    else:
        checks = list(dict.fromkeys(f.check for f in cited))
        listed = ", ".join(checks[:4]) + (f" (+{len(checks) - 4} more)" if len(checks) > 4 else "")
        first = cited[0].message
        if len(first) > 220:
            first = first[:217].rsplit(" ", 1)[0] + "..."
        summary = f"{status.value.replace('_', ' ')}: {listed}. {first}"
    n_ne = sum(f.status is Status.NOT_EVALUABLE for f in own)
    if n_ne and status is not Status.NOT_EVALUABLE:
        summary += f" {n_ne} check(s) not evaluable."
    return RungVerdict(rung=rung, status=status.value, summary=summary)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Evidence:
    """Everything a run established: findings, rung verdicts and provenance.

    Parameters
    ----------
    claim : dict
        The claim block of the study (statement, intended use, not intended for).
    findings : tuple of Finding
        All findings, in the order the checks ran.
    verdicts : tuple of RungVerdict
        One per rung, lowest first.
    highest_rung : int
        Highest rung reached with every rung below it passing or warning; -1 if none.
    not_validated_for : tuple of str
        Declared exclusions plus those derived from failed or unevaluable checks.
    provenance : dict
        Run manifest: input hashes, package versions, seeds, timestamps.
    schema_version : str
        Version of the evidence JSON schema.
    """

    claim: Mapping[str, Any]
    findings: tuple[Finding, ...]
    verdicts: tuple[RungVerdict, ...]
    highest_rung: int
    not_validated_for: tuple[str, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION

    @classmethod
    def from_findings(
        cls,
        findings: Sequence[Finding],
        *,
        claim: Mapping[str, Any],
        not_validated_for: Sequence[str] = (),
        provenance: Mapping[str, Any] | None = None,
    ) -> Evidence:
        """Build the evidence and its verdicts from a list of findings."""
        verdicts = tuple(rung_verdict(r, findings) for r in Rung)
        highest = -1
        for verdict in verdicts:
            if verdict.status not in (Status.PASS.value, Status.WARN.value):
                break
            highest = int(verdict.rung)
        return cls(
            claim=dict(claim),
            findings=tuple(findings),
            verdicts=verdicts,
            highest_rung=highest,
            not_validated_for=tuple(dict.fromkeys(not_validated_for)),
            provenance=dict(provenance or {}),
        )

    def findings_for(self, rung: Rung | int) -> list[Finding]:
        """Findings bearing on one rung."""
        return [f for f in self.findings if f.rung == rung]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary, the content of ``evidence.json``."""
        return {
            "schema_version": self.schema_version,
            "claim": _jsonable(dict(self.claim)),
            "highest_rung": self.highest_rung,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "not_validated_for": list(self.not_validated_for),
            "findings": [f.to_dict() for f in self.findings],
            "provenance": _jsonable(dict(self.provenance)),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Serialize to JSON with sorted keys, so equal evidence gives equal bytes."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """Inverse of :meth:`to_dict`."""
        return cls(
            schema_version=data["schema_version"],
            claim=dict(data["claim"]),
            highest_rung=int(data["highest_rung"]),
            verdicts=tuple(RungVerdict.from_dict(v) for v in data["verdicts"]),
            not_validated_for=tuple(data.get("not_validated_for", ())),
            findings=tuple(Finding.from_dict(f) for f in data["findings"]),
            provenance=dict(data.get("provenance") or {}),
        )

    @classmethod
    def from_json(cls, text: str) -> Evidence:
        """Parse ``evidence.json`` text."""
        return cls.from_dict(json.loads(text))
