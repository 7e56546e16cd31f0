"""Independent work units on an executor, checkpointed so that runs resume.

Image decoding, header reads, hashing and perturbation + inference are
expressed as *work units*: calls whose result depends only on their
arguments. :func:`run_units` runs them on an :class:`Executor` (in-process by
default, local processes, or a Dask distributed cluster) and, with a
:class:`Checkpoint`, stores each result on disk as it completes, keyed by the
content it was computed from. A rerun reuses every unit whose inputs did not
change, and an interrupted run resumes.
"""

from ._checkpoint import CACHE_DIRNAME, Checkpoint, code_version, content_token
from ._executor import (
    BACKENDS,
    SCHEDULER_ENV,
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    UnitFailedError,
    current_executor,
    make_executor,
    use_executor,
)
from ._units import Unit, chunk_ranges, file_digests, run_units

__all__ = [
    "BACKENDS",
    "CACHE_DIRNAME",
    "SCHEDULER_ENV",
    "Checkpoint",
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "Unit",
    "UnitFailedError",
    "chunk_ranges",
    "code_version",
    "content_token",
    "current_executor",
    "file_digests",
    "make_executor",
    "run_units",
    "use_executor",
]
