"""Executors: where independent work units run (in-process, local processes, Dask).

A *work unit* is one call ``fn(*args)`` whose result depends only on its
arguments (an image chunk's paths, a perturbation cell's images and seeds).
Every backend runs the same function on the same arguments, so results are
identical across backends; randomness enters a unit only through a seed or a
spawned generator in its arguments (STYLE.md, SPEC 7), never through the
order in which units finish.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._core import ClaimladderError, UsageError, check_positive_int

__all__ = [
    "BACKENDS",
    "DASK_EXTRA_FIX",
    "SCHEDULER_ENV",
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "UnitFailedError",
    "current_executor",
    "make_executor",
    "use_executor",
]

#: The executor backends, see :func:`make_executor`.
BACKENDS = ("serial", "processes", "dask")
#: Environment variable naming a Dask scheduler (``tcp://host:8786``).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
DASK_EXTRA_FIX = "pip install 'claimladder[dask]'"
#: Extra attempts of a unit that raised or whose worker died, by default.
DEFAULT_RETRIES = 2
# Units submitted ahead per worker: keeps workers busy while bounding the
# arguments and results held in memory at once.
_IN_FLIGHT_PER_WORKER = 4

OnDone = Callable[[int, Any], None]


class UnitFailedError(ClaimladderError, RuntimeError):
    """A work unit kept failing after its retries; the message names the unit."""


def _failure(key: str, attempts: int, error: BaseException | str) -> UnitFailedError:
    what = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return UnitFailedError(
        f"Work unit {key!r} failed {attempts} time(s); last error: {what}. The run stopped "
        "instead of dropping it. Units that completed are checkpointed, so after fixing the "
        "cause (a corrupt file, a worker running out of memory: give it more, or use smaller "
        "chunks) rerunning the same command resumes where it stopped."
    )


def _is_user_error(error: BaseException) -> bool:
    # Errors about the user's data or arguments are deterministic: retrying cannot help.
    return isinstance(error, ClaimladderError)


def _single_threaded(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` with BLAS and OpenMP on one thread: how every backend runs a unit.

    Dask's nannies start workers with ``OMP_NUM_THREADS=1`` (and the BLAS
    equivalents); a multi-threaded BLAS sums some products in another order,
    which changes the last bits. One thread everywhere makes the backends
    agree bit for bit; parallelism comes from running units side by side.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn requires threadpoolctl
        return fn(*args)
    with threadpool_limits(limits=1):
        return fn(*args)


class Executor(abc.ABC):
    """Runs independent work units and reports each result as it completes.

    Subclasses implement :meth:`run`; use an executor as a context manager (or
    call :meth:`close`) to release its workers.

    Attributes
    ----------
    backend : str
        One of :data:`BACKENDS`.
    workers : int
        Units that can run at the same time.
    n_executed : dict
        Namespace -> number of unit executions (attempts included), for
        instrumentation: a rerun that reuses checkpoints executes none.
    """

    backend: str = ""

    def __init__(self, *, workers: int = 1) -> None:
        self.workers = check_positive_int(workers, param="workers", owner=type(self).__name__)
        self.n_executed: dict[str, int] = {}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"

    def close(self) -> None:
        """Release the workers (a no-op for the in-process executor)."""

    def broadcast(self, value: Any) -> Any:
        """A handle to ``value`` to pass to many units (Dask sends it to each worker once)."""
        return value

    def _count(self, namespace: str, n: int = 1) -> None:
        self.n_executed[namespace] = self.n_executed.get(namespace, 0) + n

    @abc.abstractmethod
    def run(self, fn: Callable[..., Any], args: Sequence[tuple], *, keys: Sequence[str],
            on_done: OnDone, retries: int = DEFAULT_RETRIES, namespace: str = "") -> None:
        """Run ``fn(*args[i])`` for every ``i``; call ``on_done(i, result)`` as each finishes.

        Parameters
        ----------
        fn : callable
            A module-level function (pickled by reference for process and Dask workers).
        args : sequence of tuple
            The arguments of each unit.
        keys : sequence of str
            A readable name of each unit (used in errors).
        on_done : callable
            Called in the calling thread with the unit's index and result,
            in completion order.
        retries : int, default 2
            Extra attempts of a unit that raised or whose worker died.
        namespace : str, default ""
            Counted in :attr:`n_executed`.

        Raises
        ------
        UnitFailedError
            A unit failed ``retries + 1`` times (its key is in the message).
        ClaimladderError
            Raised by a unit (user errors are not retried).
        """


class SerialExecutor(Executor):
    """Runs units one after the other in this process (the default).

    Examples
    --------
    >>> from claimladder.parallel import SerialExecutor
    >>> out = {}
    >>> SerialExecutor().run(pow, [(2, 3), (3, 2)], keys=["a", "b"],
    ...                      on_done=out.__setitem__)
    >>> out
    {0: 8, 1: 9}
    """

    backend = "serial"

    def __init__(self) -> None:
        super().__init__(workers=1)

    def __repr__(self) -> str:
        return "SerialExecutor()"

    def run(self, fn, args, *, keys, on_done, retries=DEFAULT_RETRIES, namespace=""):
        for i, unit_args in enumerate(args):
            for attempt in range(1, retries + 2):
                self._count(namespace)
                try:
                    result = _single_threaded(fn, *unit_args)
                except Exception as exc:
                    if _is_user_error(exc):
                        raise
                    if attempt > retries:
                        raise _failure(keys[i], attempt, exc) from exc
                    continue
                on_done(i, result)
                break


def _mp_context():
    import multiprocessing

    # "forkserver" avoids forking a parent that runs threads (rich's progress
    # refresh, BLAS pools); spawn where it does not exist.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessExecutor(Executor):
    """Runs units in a pool of local worker processes (:mod:`concurrent.futures`).

    Parameters
    ----------
    workers : int, default os.cpu_count()
        Worker processes.

    Notes
    -----
    A worker that dies (killed, out of memory) breaks the whole pool: the pool
    is restarted and every unfinished unit is submitted again, each failure
    counting against the units that were in flight. As on every backend, a
    unit runs with one BLAS / OpenMP thread.
    """

    backend = "processes"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers=workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_mp_context())
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, fn, args, *, keys, on_done, retries=DEFAULT_RETRIES, namespace=""):
        queue = deque(range(len(args)))
        attempts = [0] * len(args)
        in_flight: dict[Future, int] = {}
        limit = _IN_FLIGHT_PER_WORKER * self.workers

        def handle(future: Future) -> bool:
            """Deliver one finished future; True when its worker died with the pool."""
            i = in_flight.pop(future)
            error = future.exception()
            if error is None:
                on_done(i, future.result())
                return False
            if _is_user_error(error):
                raise error
            if attempts[i] > retries:
                reason = (f"a worker process died ({error})"
                          if isinstance(error, BrokenProcessPool) else error)
                raise _failure(keys[i], attempts[i], reason) from error
            queue.append(i)
            return isinstance(error, BrokenProcessPool)

        try:
            while queue or in_flight:
                pool = self._ensure_pool()
                while queue and len(in_flight) < limit:
                    i = queue.popleft()
                    attempts[i] += 1
                    self._count(namespace)
                    in_flight[pool.submit(_single_threaded, fn, *args[i])] = i
                done, _ = wait(set(in_flight), return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    broken |= handle(future)
                if broken:
                    # A dead worker breaks the whole pool: every unit in flight fails with it.
                    rest, _ = wait(set(in_flight))
                    for future in rest:
                        handle(future)
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
        finally:
            for future in in_flight:
                future.cancel()


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(
            "The Dask backend (--scheduler, DASK_SCHEDULER_ADDRESS) needs the dask extra, "
            f"which is not installed ({exc}). Fix: {DASK_EXTRA_FIX}, or run without "
            "--scheduler (in-process, or --workers N for local processes)."
        ) from None
    return distributed


class DaskExecutor(Executor):
    """Runs units on a Dask distributed cluster.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``); default: start a
        ``LocalCluster`` of ``workers`` single-threaded worker processes.
    workers : int, default 2
        Workers of the local cluster (ignored with ``address``).
    client : distributed.Client, optional
        An existing client (its cluster is left running on :meth:`close`).

    Raises
    ------
    UsageError
        The ``dask`` extra is not installed, or the scheduler cannot be reached.

    Notes
    -----
    A task whose worker dies is rescheduled by Dask itself; a task that
    raised is retried ``retries`` times (``Client.submit(retries=...)``); a
    task Dask gives up on (``KilledWorker``) is submitted again within the
    same budget. Unit functions and their arguments must be picklable;
    workers need claimladder installed at the same version.
    """

    backend = "dask"

    def __init__(self, address: str | None = None, *, workers: int = 2,
                 client: Any = None) -> None:
        distributed = _import_distributed()
        self._own_cluster = None
        self._own_client = client is None
        if client is None:
            if address:
                try:
                    client = distributed.Client(address, timeout="30s")
                except (OSError, TimeoutError) as exc:
                    raise UsageError(
                        f"Cannot reach the Dask scheduler at {address!r} ({exc}). Fix: start "
                        "it (`dask scheduler`, then `dask worker ADDRESS` on each machine) or "
                        "correct --scheduler / DASK_SCHEDULER_ADDRESS."
                    ) from None
            else:
                self._own_cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=":0")
                client = distributed.Client(self._own_cluster)
        self.client = client
        n = len(client.scheduler_info(n_workers=-1).get("workers", {})) \
            if _takes_n_workers(client) else len(client.scheduler_info().get("workers", {}))
        super().__init__(workers=max(n, 1))
        self.address = client.scheduler.address

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r}, workers={self.workers})"

    def close(self) -> None:
        if self._own_client and self.client is not None:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()
            self._own_cluster = None
        self.client = None

    def broadcast(self, value: Any) -> Any:
        return self.client.scatter(value, broadcast=True, hash=False)

    def run(self, fn, args, *, keys, on_done, retries=DEFAULT_RETRIES, namespace=""):
        distributed = _import_distributed()
        queue = deque(range(len(args)))
        attempts = [0] * len(args)
        futures: dict[Any, int] = {}
        limit = _IN_FLIGHT_PER_WORKER * self.workers
        completed = distributed.as_completed()

        def submit() -> None:
            while queue and len(futures) < limit:
                i = queue.popleft()
                attempts[i] += 1
                self._count(namespace)
                future = self.client.submit(_single_threaded, fn, *args[i], pure=False,
                                            retries=retries)
                futures[future] = i
                completed.add(future)

        submit()
        try:
            for future in completed:
                i = futures.pop(future)
                if future.status == "finished":
                    on_done(i, future.result())
                    future.release()
                else:
                    error = future.exception()
                    if _is_user_error(error):
                        raise error
                    killed = type(error).__name__ == "KilledWorker"
                    if not killed or attempts[i] > retries:
                        reason = error if not killed else f"its workers died ({error})"
                        raise _failure(keys[i], attempts[i] + (0 if killed else retries),
                                       reason)
                    queue.appendleft(i)
                submit()
        finally:
            for future in futures:
                future.cancel()


def _takes_n_workers(client: Any) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


def make_executor(*, workers: int | None = None, scheduler: str | None = None,
                  env: bool = True) -> Executor:
    """The executor the command line asks for.

    Parameters
    ----------
    workers : int, optional
        Local worker processes; 1 or None runs in-process.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:8786``), or ``"local"`` for a
        ``LocalCluster`` of ``workers`` processes (default 2). Default: the
        ``DASK_SCHEDULER_ADDRESS`` environment variable when ``env``.
    env : bool, default True
        Read ``DASK_SCHEDULER_ADDRESS``.

    Returns
    -------
    Executor
        :class:`DaskExecutor` with a scheduler, else :class:`ProcessExecutor`
        with ``workers > 1``, else :class:`SerialExecutor`.

    Examples
    --------
    >>> from claimladder.parallel import make_executor
    >>> make_executor(env=False)
    SerialExecutor()
    """
    if workers is not None:
        workers = check_positive_int(workers, param="workers", owner="make_executor")
    if scheduler is None and env:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    if scheduler:
        if scheduler == "local":
            return DaskExecutor(workers=workers or 2)
        if "://" not in scheduler and ":" not in scheduler:
            raise UsageError(f"--scheduler must be a Dask scheduler address such as "
                             f"tcp://10.0.0.5:8786, or 'local'. Got {scheduler!r}.")
        return DaskExecutor(scheduler)
    if workers is not None and workers > 1:
        return ProcessExecutor(workers)
    return SerialExecutor()


_ACTIVE: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "claimladder_executor", default=None)


def current_executor() -> Executor:
    """The executor set by :func:`use_executor`, or a :class:`SerialExecutor`."""
    active = _ACTIVE.get()
    return SerialExecutor() if active is None else active


@contextlib.contextmanager
def use_executor(executor: Executor | None) -> Iterator[Executor]:
    """Make ``executor`` the default of the functions called inside the block.

    Functions with an ``executor=None`` argument (``stress_test``,
    ``hash_image_files``, ``StudyData.map_images``) use it, so a whole ladder run
    is moved to a cluster without passing it through every rung.
    """
    token = _ACTIVE.set(executor)
    try:
        yield current_executor()
    finally:
        _ACTIVE.reset(token)
