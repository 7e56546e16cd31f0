"""Run manifest: what went in (hashes), what ran it (versions, platform), with which seed."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["file_sha256", "environment", "build_manifest", "TIMESTAMP_KEYS"]

_CHUNK = 1 << 20
#: Manifest keys that hold wall-clock times (excluded from determinism checks).
TIMESTAMP_KEYS = ("created_at",)
_PACKAGES = ("claimladder", "numpy", "scipy", "pandas", "scikit-learn", "pydicom", "nibabel",
             "pillow", "matplotlib", "jinja2", "typer", "rich", "torch", "onnxruntime", "dask")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (bounded memory).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def environment() -> dict[str, Any]:
    """Python, platform and the versions of the packages that shape results."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "packages": versions,
    }


def build_manifest(
    inputs: Mapping[str, str | os.PathLike[str] | None],
    *,
    seed: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance manifest embedded in evidence.json.

    Parameters
    ----------
    inputs : mapping of str to path
        Role -> file (``cohort``, ``predictions``, ``study``); ``None`` entries are skipped.
    seed : int
        The study seed.
    extra : mapping, optional
        Further JSON-safe entries (e.g. the study spec hash).

    Returns
    -------
    dict
        ``inputs`` (file name, size, sha256 per role), ``environment``, ``seed``,
        ``created_at`` (UTC, ISO 8601).
    """
    files = {}
    for role, path in inputs.items():
        if path is None:
            continue
        p = Path(path)
        files[role] = {"file": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
    manifest = {
        "inputs": files,
        "environment": environment(),
        "seed": int(seed),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.update(extra or {})
    return manifest
