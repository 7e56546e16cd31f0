"""Climb the ladder: run each rung's checks and assemble the evidence."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .._core import Evidence, Finding, Rung, Status
from ..provenance import build_manifest
from ._data import StudyData, load_study_data
from ._rung0 import cohort_findings
from ._rung1 import internal_findings
from ._rung2 import external_findings
from ._rung3 import bias_findings
from ._rung4 import calibration_findings
from ._rung5 import robustness_findings
from ._rung6 import utility_findings
from ._seals import seal_findings
from ._study import Study

__all__ = ["RUNG_RUNNERS", "run_ladder", "evaluate", "not_validated_for"]

#: The rungs this version can evaluate, and the function producing each rung's findings.
RUNG_RUNNERS: dict[Rung, Callable[[StudyData], list[Finding]]] = {
    Rung.COHORT: cohort_findings,
    Rung.INTERNAL: internal_findings,
    Rung.EXTERNAL: external_findings,
    Rung.BIAS: bias_findings,
    Rung.CALIBRATION: calibration_findings,
    Rung.ROBUSTNESS: robustness_findings,
    Rung.UTILITY: utility_findings,
}


def evaluate(
    data: StudyData,
    *,
    rungs: Iterable[Rung | int] | None = None,
    on_rung: Callable[[Rung], None] | None = None,
) -> list[Finding]:
    """Run the checks of the selected rungs (all available by default), lowest first."""
    selected = sorted(RUNG_RUNNERS if rungs is None else {Rung(r) for r in rungs})
    findings: list[Finding] = []
    for rung in selected:
        if rung not in RUNG_RUNNERS:
            continue
        if on_rung is not None:
            on_rung(rung)
        findings.extend(RUNG_RUNNERS[rung](data))
    return findings


def not_validated_for(study: Study, findings: Sequence[Finding]) -> list[str]:
    """Declared exclusions, entries that checks name, then one per unevaluable check."""
    entries = list(study.claim["not_intended_for"])
    for finding in findings:
        explicit = finding.params.get("not_validated_for")
        if explicit:
            entries.extend([explicit] if isinstance(explicit, str) else map(str, explicit))
        elif finding.status is Status.NOT_EVALUABLE:
            entries.append(f"{finding.check}: {finding.message}")
    return entries


def run_ladder(
    study: Study,
    *,
    rungs: Iterable[Rung | int] | None = None,
    on_rung: Callable[[Rung], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    model: object | None = None,
) -> Evidence:
    """Load the study's data, run the rungs and return the evidence.

    Parameters
    ----------
    study : Study
        A loaded ``study.toml``.
    rungs : iterable of int, optional
        Rungs to run (default: every rung this version implements).
    on_rung : callable, optional
        Called with each rung before it runs (progress display).
    progress : callable, optional
        Called with ``(description, done, total)`` during image-level steps.
    model : object, optional
        A model for fresh inference (anything :func:`claimladder.models.load_model`
        accepts); overrides ``[model] adapter`` of the study.

    Returns
    -------
    Evidence
    """
    data = load_study_data(study, progress=progress, model=model)
    findings = evaluate(data, rungs=rungs, on_rung=on_rung)
    findings.extend(seal_findings(data, checks=[f.check for f in findings]))
    manifest = build_manifest(
        {"study": study.path, "cohort": study.cohort_path,
         "predictions": study.predictions_path},
        seed=study.seed,
        extra={"study_sha256": study.spec_sha256, "model": data.model,
               "rungs_available": [int(r) for r in RUNG_RUNNERS],
               "spec": dict(study.spec)},
    )
    return Evidence.from_findings(findings, claim=study.claim,
                                  not_validated_for=not_validated_for(study, findings),
                                  provenance=manifest)
