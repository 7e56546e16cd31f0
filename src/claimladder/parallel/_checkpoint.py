"""A disk checkpoint of completed work units, keyed by what each unit's result depends on."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .._core import atomic_write_bytes

__all__ = ["CACHE_DIRNAME", "Checkpoint", "code_version", "content_token"]

#: Folder of the checkpoint inside a run's output folder.
CACHE_DIRNAME = ".claimladder-cache"
_FORMAT_VERSION = 1


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("claimladder")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


@lru_cache(maxsize=256)
def _module_digest(module_name: str) -> str:
    import sys

    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module) if module is not None else module_name
    except (OSError, TypeError):
        source = module_name
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def code_version(fn: Callable[..., Any]) -> str:
    """What identifies the code of a unit function: package version, name and module source.

    Editing the module that defines ``fn`` (or upgrading claimladder)
    invalidates the checkpoints it wrote; editing anything else does not.

    Examples
    --------
    >>> from claimladder.parallel import code_version
    >>> code_version(len).startswith("builtins.len|")
    True
    """
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{module}.{name}|{_package_version()}|{_module_digest(module)}"


def _canonical(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        digest = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
        digest.update(memoryview(array).cast("B"))
        return {"ndarray": digest.hexdigest()}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def content_token(*parts: Any) -> str:
    """A 64-hex-digit digest of JSON-like ``parts`` (arrays by their bytes).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.parallel import content_token
    >>> content_token("a", np.arange(3)) == content_token("a", np.arange(3))
    True
    >>> content_token("a", 1) == content_token("a", 2)
    False
    """
    text = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Checkpoint:
    """Results of completed work units in a folder, one file per unit.

    Parameters
    ----------
    directory : str or path-like
        Usually ``OUT/.claimladder-cache``; created when missing.

    Attributes
    ----------
    n_reused, n_written : dict
        Namespace -> units read back / written during this object's life.

    Notes
    -----
    A unit's file name is the digest of the unit function's
    :func:`code_version`, its namespace and its *content* (the digests of the
    input files it reads and every parameter it uses), so changing any input
    or parameter computes the unit anew while editing a criterion or the
    claim text, which no unit reads, reuses every file. Each file is written
    through a temporary file and an atomic rename as the unit completes: a
    killed run leaves only whole files, and a rerun resumes from them. A file
    that cannot be read back (a full disk) counts as missing.

    Files are Python pickles: only point ``directory`` at folders you wrote.

    Examples
    --------
    >>> import tempfile
    >>> from claimladder.parallel import Checkpoint
    >>> cache = Checkpoint(tempfile.mkdtemp())
    >>> key = cache.key(len, "demo", ["abc"])
    >>> cache.load("demo", key)
    (False, None)
    >>> cache.save("demo", key, 3)
    >>> cache.load("demo", key)
    (True, 3)
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.n_reused: dict[str, int] = {}
        self.n_written: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.directory)!r})"

    def key(self, fn: Callable[..., Any], namespace: str, content: Any) -> str:
        """The file key of a unit of ``fn`` whose result depends on ``content``."""
        return content_token(_FORMAT_VERSION, code_version(fn), namespace, content)

    def _path(self, namespace: str, key: str) -> Path:
        return self.directory / namespace / key[:2] / f"{key}.pkl"

    def load(self, namespace: str, key: str) -> tuple[bool, Any]:
        """``(True, result)`` for a completed unit, else ``(False, None)``."""
        path = self._path(namespace, key)
        try:
            with open(path, "rb") as handle:
                value = pickle.load(handle)
        except FileNotFoundError:
            return False, None
        except Exception:  # noqa: BLE001 - a damaged file is recomputed and overwritten
            return False, None
        self.n_reused[namespace] = self.n_reused.get(namespace, 0) + 1
        return True, value

    def save(self, namespace: str, key: str, value: Any) -> None:
        """Store a unit's result atomically."""
        atomic_write_bytes(self._path(namespace, key),
                           pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        self.n_written[namespace] = self.n_written.get(namespace, 0) + 1
