"""Executors: identical results on every backend, bounded retries, failures never dropped."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import parallel_units as pu
import pytest

from claimladder._core import ClaimladderError, UsageError, spawn
from claimladder.parallel import (
    Checkpoint,
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    Unit,
    UnitFailedError,
    file_digests,
    make_executor,
    run_units,
    use_executor,
)


def _draw_units(n_units: int = 6, seed: int = 7, delay: float = 0.0) -> list[Unit]:
    return [Unit(key=f"draw-{i}", args=(rng, 5, delay))
            for i, rng in enumerate(spawn(seed, n_units))]


@pytest.fixture(scope="module")
def processes():
    with ProcessExecutor(2) as executor:
        yield executor


def test_serial_and_processes_give_identical_results(processes):
    serial = run_units(pu.draw, _draw_units(), namespace="draw")
    parallel = run_units(pu.draw, _draw_units(), namespace="draw", executor=processes)
    assert len(serial) == 6
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
    # Spawned children differ from each other: the test would catch a shared generator.
    assert not np.array_equal(serial[0], serial[1])


def test_results_come_back_in_unit_order_and_progress_counts(tmp_path, processes):
    calls = []
    units = [Unit(key=f"sq-{x}", args=(str(tmp_path), x, 0.05 * (5 - x))) for x in range(5)]
    out = run_units(pu.logged_square, units, namespace="sq", executor=processes,
                    progress=lambda *a: calls.append(a), description="Squaring")
    assert out == [0, 1, 4, 9, 16]
    assert calls == [("Squaring", k, 5) for k in range(1, 6)]
    assert processes.n_executed["sq"] == 5


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_a_transient_failure_is_retried(tmp_path, backend, processes):
    executor = SerialExecutor() if backend == "serial" else processes
    units = [Unit(key=f"flaky-{x}", args=(str(tmp_path / "log"), x, 2 if x == 3 else 0))
             for x in range(5)]
    assert run_units(pu.flaky, units, namespace="flaky", executor=executor,
                     retries=2) == list(range(5))
    assert len(os.listdir(tmp_path / "log")) == 5 + 2


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_a_unit_that_keeps_failing_is_an_error_naming_it(tmp_path, backend, processes):
    executor = SerialExecutor() if backend == "serial" else processes
    units = [Unit(key=f"flaky-{x}", args=(str(tmp_path / "log"), x, 9 if x == 3 else 0))
             for x in range(5)]
    with pytest.raises(UnitFailedError, match=r"'flaky-3' failed 3 time\(s\).*transient") as info:
        run_units(pu.flaky, units, namespace="flaky", executor=executor, retries=2)
    assert isinstance(info.value, ClaimladderError)
    attempts = [n for n in os.listdir(tmp_path / "log") if n.startswith("3-")]
    assert len(attempts) == 3


def test_user_errors_are_raised_at_once_not_retried(tmp_path):
    with pytest.raises(UsageError, match="unit 1: the input is wrong"):
        run_units(pu.user_error, [Unit(key="u", args=(str(tmp_path), 1))], namespace="u",
                  retries=3)
    assert pu.executions(str(tmp_path)) == 1


def test_a_dead_worker_process_is_replaced_and_its_unit_rerun(tmp_path):
    marker = str(tmp_path / "died")
    units = [Unit(key=f"die-{x}", args=(marker, x)) for x in range(4)]
    with ProcessExecutor(2) as executor:
        assert run_units(pu.die_once, units, namespace="die", executor=executor) == [0, 1, 2, 3]
    assert os.path.exists(marker)


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    cache = Checkpoint(tmp_path / "cache")
    units = [Unit(key=f"sq-{x}", args=(str(log), x, 6), content=["sq", x]) for x in range(10)]
    with pytest.raises(pu.Interrupt):
        run_units(pu.interrupt_at, units, namespace="sq", checkpoint=cache)
    assert pu.executions(str(log)) == 6 and cache.n_written["sq"] == 6
    # The rerun (nothing interrupts it now) computes only the four missing units.
    resumed = [Unit(key=u.key, args=(str(log), i, -1), content=u.content)
               for i, u in enumerate(units)]
    again = Checkpoint(tmp_path / "cache")
    assert run_units(pu.interrupt_at, resumed, namespace="sq",
                     checkpoint=again) == [x * x for x in range(10)]
    assert pu.executions(str(log)) == 10
    assert again.n_reused["sq"] == 6 and again.n_written["sq"] == 4


def test_a_damaged_checkpoint_file_is_recomputed(tmp_path):
    cache = Checkpoint(tmp_path)
    unit = Unit(key="sq-3", args=(str(tmp_path), 3), content=["sq", 3])
    assert run_units(pu.logged_square, [unit], namespace="sq", checkpoint=cache) == [9]
    (path,) = (tmp_path / "sq").rglob("*.pkl")
    path.write_bytes(b"\x80\x05 truncated")
    assert run_units(pu.logged_square, [unit], namespace="sq", checkpoint=cache) == [9]
    assert cache.n_written["sq"] == 2 and "sq" not in cache.n_reused


def test_changed_content_is_not_served_from_the_checkpoint(tmp_path):
    cache = Checkpoint(tmp_path / "c")
    log = tmp_path / "log"
    log.mkdir()
    for content in (["v1"], ["v1"], ["v2"]):
        run_units(pu.logged_square, [Unit(key="a", args=(str(log), 2), content=content)],
                  namespace="sq", checkpoint=cache)
    assert pu.executions(str(log)) == 2


def test_file_digests_are_content_hashes_reused_from_stat(tmp_path):
    import hashlib

    paths = []
    for i in range(5):
        paths.append(tmp_path / f"f{i}.bin")
        paths[-1].write_bytes(bytes([i]) * (1000 + i))
    cache = Checkpoint(tmp_path / "cache")
    digests = file_digests(paths, checkpoint=cache, chunk_size=2)
    assert digests == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert file_digests([tmp_path / "missing"]) == [None]
    executor = SerialExecutor()
    assert file_digests(paths, checkpoint=cache, chunk_size=2, executor=executor) == digests
    assert executor.n_executed == {}
    paths[4].write_bytes(b"changed")
    again = file_digests(paths, checkpoint=cache, chunk_size=2, executor=executor)
    assert again[:4] == digests[:4] and again[4] == hashlib.sha256(b"changed").hexdigest()
    assert executor.n_executed == {"file-sha256": 1}


def test_make_executor_chooses_the_backend(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert isinstance(make_executor(), SerialExecutor)
    assert isinstance(make_executor(workers=1), SerialExecutor)
    with make_executor(workers=3) as executor:
        assert isinstance(executor, ProcessExecutor) and executor.workers == 3
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "nonsense")
    with pytest.raises(UsageError, match="tcp://"):
        make_executor()
    with pytest.raises(ValueError, match="'workers' parameter of make_executor"):
        make_executor(workers=0)


def test_missing_dask_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UsageError, match=r"pip install 'claimladder\[dask\]'"):
        make_executor(scheduler="tcp://127.0.0.1:8786")


def test_use_executor_sets_the_default_of_run_units(tmp_path):
    executor = SerialExecutor()
    with use_executor(executor):
        run_units(pu.logged_square, [Unit(key="a", args=(str(tmp_path), 2))], namespace="ctx")
    assert executor.n_executed == {"ctx": 1}


@pytest.fixture(scope="module")
def dask_executor():
    pytest.importorskip("distributed", reason="the dask extra is part of the dev extra")
    with DaskExecutor(workers=2) as executor:
        yield executor


@pytest.mark.slow
def test_dask_gives_the_serial_results(dask_executor):
    serial = run_units(pu.draw, _draw_units(), namespace="draw")
    remote = run_units(pu.draw, _draw_units(), namespace="draw", executor=dask_executor)
    for a, b in zip(serial, remote, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_dask_retries_then_names_a_failing_unit(tmp_path, dask_executor):
    units = [Unit(key=f"flaky-{x}", args=(str(tmp_path / "ok"), x, 1 if x == 2 else 0))
             for x in range(4)]
    assert run_units(pu.flaky, units, namespace="flaky", executor=dask_executor) == [0, 1, 2, 3]
    units = [Unit(key=f"flaky-{x}", args=(str(tmp_path / "bad"), x, 9 if x == 2 else 0))
             for x in range(4)]
    with pytest.raises(UnitFailedError, match="'flaky-2' failed 3 time"):
        run_units(pu.flaky, units, namespace="flaky", executor=dask_executor, retries=2)


@pytest.mark.slow
def test_killing_a_dask_worker_mid_run_changes_nothing(tmp_path):
    """A LocalCluster worker is SIGKILLed after a few units; the results equal a clean run."""
    pytest.importorskip("distributed")
    started = time.perf_counter()
    expected = run_units(pu.draw, _draw_units(16, seed=3), namespace="draw")
    cache = Checkpoint(tmp_path)
    with DaskExecutor(workers=2) as executor:
        pids = executor.client.run(os.getpid)
        killed = []

        def progress(_label: str, done: int, _total: int) -> None:
            if done == 3 and not killed:
                victim = min(pids.values())
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        units = [Unit(key=u.key, args=u.args, content=["draw", i])
                 for i, u in enumerate(_draw_units(16, seed=3, delay=0.3))]
        got = run_units(pu.draw, units, namespace="draw", executor=executor, checkpoint=cache,
                        progress=progress)
    assert killed, "the test did not kill a worker"
    assert len(got) == 16
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert cache.n_written["draw"] == 16
    assert time.perf_counter() - started < 60
