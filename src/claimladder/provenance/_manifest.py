"""Run manifest: what went in (hashes), what ran it (versions, platform), with which seed."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "TIMESTAMP_KEYS",
    "build_manifest",
    "combined_digest",
    "environment",
    "file_sha256",
    "hash_files",
]

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


def hash_files(
    paths: Iterable[str | os.PathLike[str]], *, n_threads: int | None = None
) -> list[dict[str, Any]]:
    """SHA-256 and size of many files, streamed, several files at a time.

    Parameters
    ----------
    paths : iterable of path
        The files, in the order wanted back (duplicates are hashed once).
    n_threads : int, optional
        Files read at a time (default: 2 per CPU, at most 16). hashlib releases
        the GIL on large blocks, so threads overlap reading and hashing.

    Returns
    -------
    list of dict
        One per path, in order: ``path`` (as given), ``bytes`` and ``sha256``, or
        ``bytes`` None, ``sha256`` None and ``error`` (the reason) for a file that
        cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.png").write_bytes(b"abc")
    >>> [(r["bytes"], (r["sha256"] or "")[:8], r.get("error")) for r in
    ...  hash_files([d / "a.png", d / "missing.png"])]
    [(3, 'ba7816bf', None), (None, '', 'FileNotFoundError')]
    """
    paths = [os.fspath(p) for p in paths]
    unique = list(dict.fromkeys(paths))

    def one(path: str) -> dict[str, Any]:
        try:
            return {"path": path, "bytes": os.stat(path).st_size, "sha256": file_sha256(path)}
        except OSError as exc:
            return {"path": path, "bytes": None, "sha256": None, "error": type(exc).__name__}

    workers = n_threads or min(16, 2 * (os.cpu_count() or 1))
    if len(unique) < 2 or workers == 1:
        results = [one(p) for p in unique]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, unique))
    by_path = dict(zip(unique, results))
    return [dict(by_path[p]) for p in paths]


def combined_digest(records: Iterable[Mapping[str, Any]], *, root: str | os.PathLike[str] | None
                    = None) -> str:
    """One SHA-256 over many files: of the sorted lines ``"<sha256>  <path>\\n"``.

    Paths are taken relative to ``root`` when given (POSIX separators), so moving
    the folder keeps the digest; a file that could not be read contributes
    ``"-"`` in place of its hash. This is the format of ``sha256sum`` output.
    """
    lines = []
    for record in records:
        path = Path(record["path"])
        if root is not None:
            try:
                path = path.relative_to(root)
            except ValueError:
                pass
        lines.append(f"{record.get('sha256') or '-'}  {path.as_posix()}\n")
    digest = hashlib.sha256()
    for line in sorted(set(lines)):
        digest.update(line.encode())
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
    images: Iterable[str | os.PathLike[str]] | None = None,
    images_root: str | os.PathLike[str] | None = None,
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
    images : iterable of path, optional
        Every image file of the cohort: hashed with :func:`hash_files` and entered
        as one input, ``images``, whose ``sha256`` is their :func:`combined_digest`
        (relative to ``images_root``), ``bytes`` their total size, ``count`` the
        number of files and ``unreadable`` how many could not be read. File names
        are not listed (they can hold identifiers); :func:`hash_files` gives the
        per-file table.
    images_root : path, optional
        The folder image paths are relative to, for the combined digest.

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
    if images is not None:
        records = hash_files(images)
        files["images"] = {
            # No folder name: the same images give the same evidence wherever they live.
            "file": f"{len(records)} image files",
            "bytes": int(sum(r["bytes"] or 0 for r in records)),
            "sha256": combined_digest(records, root=images_root),
            "count": len(records),
            "unreadable": sum(1 for r in records if r["sha256"] is None),
        }
    manifest = {
        "inputs": files,
        "environment": environment(),
        "seed": int(seed),
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    manifest.update(extra or {})
    return manifest
