"""Climb the ladder: run each rung's checks and assemble the evidence."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .._core import Evidence, Finding, Rung, Status
from ..parallel import Checkpoint, Executor, use_executor
from ..provenance import build_manifest
from ._data import StudyData, load_study_data
from ._failures import bias_and_failure_findings
from ._rung0 import cohort_findings
from ._rung1 import internal_findings
from ._rung2 import external_findings
from ._rung4 import calibration_findings
from ._rung5 import robustness_findings
from ._rung6 import utility_findings
from ._seals import seal_findings
from ._study import Study

__all__ = ["RUNG_RUNNERS", "evaluate", "not_validated_for", "run_ladder"]

#: The rungs this version can evaluate, and the function producing each rung's findings.
RUNG_RUNNERS: dict[Rung, Callable[[StudyData], list[Finding]]] = {
    Rung.COHORT: cohort_findings,
    Rung.INTERNAL: internal_findings,
    Rung.EXTERNAL: external_findings,
    Rung.BIAS: bias_and_failure_findings,  # failure analysis belongs to rung 3 (DESIGN.md)
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
    executor: Executor | None = None,
    checkpoint: Checkpoint | None = None,
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
    executor : claimladder.parallel.Executor, optional
        Runs the image-level work units (image decoding, header reads,
        perturbation + inference): in-process by default, local processes or
        a Dask cluster (:func:`claimladder.parallel.make_executor`). The
        evidence is the same on every executor.
    checkpoint : claimladder.parallel.Checkpoint, optional
        Keeps completed work units on disk, keyed by their input files'
        content and parameters: a rerun after editing criteria or claim
        text, or after an interruption, reuses them. With it, a model's
        predictions are also cached there.

    Returns
    -------
    Evidence
    """
    data = load_study_data(study, progress=progress, model=model, executor=executor,
                           checkpoint=checkpoint)
    with use_executor(executor):
        findings = evaluate(data, rungs=rungs, on_rung=on_rung)
    findings.extend(seal_findings(data, checks=[f.check for f in findings]))
    optional = {"readers": study.spec.get("readers", {}).get("table"),
                "deployment_reference": study.spec.get("deployment", {}).get("reference_cohort")}
    manifest = build_manifest(
        {"study": study.path, "cohort": study.cohort_path,
         "predictions": study.predictions_path,
         # a declared file that is missing is the rung's error to report, not the manifest's
         **{role: study.resolve(value) for role, value in optional.items()
            if value and study.resolve(value).is_file()}},
        seed=study.seed,
        extra={"study_sha256": study.spec_sha256, "model": data.model,
               "rungs_available": [int(r) for r in RUNG_RUNNERS],
               "spec": dict(study.spec)},
        images=([study.images_root / str(p) for p in data.source.column("path").dropna()]
                if data.has_images else None),
        images_root=study.images_root,
    )
    return Evidence.from_findings(findings, claim=study.claim,
                                  not_validated_for=not_validated_for(study, findings),
                                  provenance=manifest)
