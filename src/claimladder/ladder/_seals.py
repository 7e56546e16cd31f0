"""Sealed test sets in a ladder run: verify each seal, log the access, report the count."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._core import Finding
from ..splits import check_sealed_access, log_access, read_seal, verify_seal
from ._data import StudyData

__all__ = ["SEALS_FOLDER", "seal_findings", "seal_path", "sealed_partitions"]

#: Folder next to study.toml where `claimladder seal` writes one seal per partition.
SEALS_FOLDER = "seals"


def seal_path(study_base: Path, partition: str) -> Path:
    """Where the seal of ``partition`` lives for a study whose spec is in ``study_base``."""
    return study_base / SEALS_FOLDER / f"{partition}.seal.json"


def sealed_partitions(data: StudyData) -> list[str]:
    """Names of the study's partitions that have a seal (nothing may be fitted on them)."""
    return [name for name in data.partitions.masks
            if seal_path(data.study.base_dir, name).is_file()]


def seal_findings(data: StudyData, *, checks: Sequence[str]) -> list[Finding]:
    """For every sealed partition: does it still match its seal, and how often was it used?

    Each run appends one entry (spec hash, checks) to the seal's access log before
    the access count is read, so the report counts this evaluation too.
    """
    findings = []
    images_root = data.study.images_root if data.has_images else None
    for name, mask in data.partitions.masks.items():
        path = seal_path(data.study.base_dir, name)
        if not path.is_file():
            continue
        seal = read_seal(path)
        check = verify_seal(seal, data.cohort, mask,
                            images_root=images_root if seal.with_files else None)
        findings.append(check.to_finding())
        log_access(path, spec_sha256=data.study.spec_sha256, checks=list(dict.fromkeys(checks)))
        findings.append(check_sealed_access(path))
    return findings
