"""``run_units``: checkpoint lookup, execution on an executor, progress, in unit order."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._checkpoint import Checkpoint
from ._executor import DEFAULT_RETRIES, Executor, current_executor

__all__ = ["Unit", "chunk_ranges", "file_digests", "run_units"]

Progress = Callable[[str, int, int], None]
# 1 MiB reads: large enough to amortize the call, small enough to stay bounded.
_READ_BYTES = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """One independent call of a unit function.

    Parameters
    ----------
    key : str
        Readable name used in progress and errors, e.g. ``"images[0:64]"``.
    args : tuple
        Arguments of the unit function.
    content : object, optional
        Everything the result depends on besides the function's code (input
        file digests, parameters, seeds), JSON-like; None: never checkpointed.
    """

    key: str
    args: tuple = field(default=())
    content: Any = None


def chunk_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in chunks of ``size``.

    Examples
    --------
    >>> from claimladder.parallel import chunk_ranges
    >>> chunk_ranges(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    size = max(int(size), 1)
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def run_units(
    fn: Callable[..., Any],
    units: Sequence[Unit],
    *,
    namespace: str,
    executor: Executor | None = None,
    checkpoint: Checkpoint | None = None,
    retries: int = DEFAULT_RETRIES,
    progress: Progress | None = None,
    description: str | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``fn(*unit.args)`` for every unit; return the results in unit order.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name).
    units : sequence of Unit
    namespace : str
        Names the kind of unit (``"images"``, ``"headers"``): the checkpoint
        folder and the counters of the executor and the checkpoint.
    executor : Executor, optional
        Default: :func:`current_executor` (in-process unless a block of
        :func:`use_executor` says otherwise).
    checkpoint : Checkpoint, optional
        Reuse and store the results of units that have ``content``.
    retries : int, default 2
        Extra attempts of a failing unit before :class:`UnitFailedError`.
    progress : callable, optional
        Called with ``(description, done, total)`` after each unit (reused
        units count as done at once).
    description : str, optional
        Progress text; default the namespace.
    on_result : callable, optional
        Called with ``(index, result)`` as each unit completes or is reused;
        with it the results are not kept (the return value is a list of None),
        so a caller that reduces them as they come keeps memory bounded.

    Returns
    -------
    list
        One result per unit, in the order of ``units``.

    Raises
    ------
    UnitFailedError
        A unit failed every attempt; completed units are already checkpointed.

    Examples
    --------
    >>> from claimladder.parallel import Unit, run_units
    >>> run_units(divmod, [Unit(key="a", args=(7, 2)), Unit(key="b", args=(9, 4))],
    ...           namespace="demo")
    [(3, 1), (2, 1)]
    """
    executor = current_executor() if executor is None else executor
    total = len(units)
    label = description or namespace
    results: list[Any] = [None] * total
    keys: dict[int, str] = {}
    done = 0

    def deliver(i: int, value: Any) -> None:
        nonlocal done
        if on_result is None:
            results[i] = value
        else:
            on_result(i, value)
        done += 1
        if progress is not None:
            progress(label, done, total)

    todo = []
    for i, unit in enumerate(units):
        if checkpoint is not None and unit.content is not None:
            keys[i] = checkpoint.key(fn, namespace, unit.content)
            found, value = checkpoint.load(namespace, keys[i])
            if found:
                deliver(i, value)
                continue
        todo.append(i)
    if progress is not None and not total:
        progress(label, 0, 0)

    def finished(j: int, value: Any) -> None:
        i = todo[j]
        if i in keys:
            checkpoint.save(namespace, keys[i], value)
        deliver(i, value)

    if todo:
        executor.run(fn, [units[i].args for i in todo], keys=[units[i].key for i in todo],
                     on_done=finished, retries=retries, namespace=namespace)
    return results


def _digest_files(paths: Sequence[str]) -> list[str | None]:
    """SHA-256 of each file's bytes (None where it cannot be read); a unit function."""
    out: list[str | None] = []
    for path in paths:
        if not path:
            out.append(None)
            continue
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                while block := handle.read(_READ_BYTES):
                    digest.update(block)
        except OSError:
            out.append(None)
            continue
        out.append(digest.hexdigest())
    return out


def _stat(path: str) -> list[Any]:
    if not path:
        return [path, None, None]
    try:
        info = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, info.st_size, info.st_mtime_ns]


def file_digests(
    paths: Sequence[str | os.PathLike[str]],
    *,
    executor: Executor | None = None,
    checkpoint: Checkpoint | None = None,
    chunk_size: int = 256,
    progress: Progress | None = None,
) -> list[str | None]:
    """SHA-256 of every file's content (None for a missing or unreadable file, or '').

    Files are read in units of ``chunk_size`` on the executor. With a
    checkpoint, a chunk whose files keep their path, size and modification
    time is not read again: a rerun identifies unchanged inputs from one
    ``stat`` per file, and a changed file is hashed anew.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from claimladder.parallel import file_digests
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_bytes(b"abc")
    >>> file_digests([path, path.with_name("missing")])[0][:12], file_digests([])
    ('ba7816bf8f01', [])
    """
    names = [os.fspath(p) for p in paths]
    units = [Unit(key=f"file-sha256[{a}:{b}]", args=(names[a:b],),
                  content=[_stat(p) for p in names[a:b]])
             for a, b in chunk_ranges(len(names), chunk_size)]
    out: list[str | None] = []
    for chunk in run_units(_digest_files, units, namespace="file-sha256", executor=executor,
                           checkpoint=checkpoint, progress=progress,
                           description="Hashing input files"):
        out.extend(chunk)
    return out
