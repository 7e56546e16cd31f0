"""Unit functions for the executor tests (module level, so workers import them by name)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np


def draw(rng: np.random.Generator, n: int, delay: float = 0.0) -> np.ndarray:
    """Random numbers from a spawned generator (identical on every backend)."""
    if delay:
        time.sleep(delay)
    return rng.random(n)


def logged_square(log_dir: str, x: int, delay: float = 0.0) -> int:
    """x squared; leaves one file per execution in log_dir (counts across processes)."""
    Path(log_dir, f"{x}-{uuid.uuid4().hex}").touch()
    if delay:
        time.sleep(delay)
    return x * x


def executions(log_dir: str) -> int:
    return len(os.listdir(log_dir))


def flaky(log_dir: str, x: int, fail_times: int) -> int:
    """Raise on the first fail_times executions of unit x, then return x."""
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    done = sum(1 for name in os.listdir(log_dir) if name.startswith(f"{x}-"))
    Path(log_dir, f"{x}-{uuid.uuid4().hex}").touch()
    if done < fail_times:
        raise RuntimeError(f"transient failure {done + 1} of unit {x}")
    return x


def die_once(marker: str, x: int) -> int:
    """Kill the worker process the first time (a worker lost mid-task), then return x."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        os._exit(1)
    return x


class Interrupt(BaseException):
    """Stands for a run killed from outside (not an Exception: never retried)."""


def interrupt_at(log_dir: str, x: int, stop: int) -> int:
    if x == stop:
        raise Interrupt(f"interrupted at unit {x}")
    return logged_square(log_dir, x)


def user_error(log_dir: str, x: int) -> int:
    """A deterministic error about the user's input: must not be retried."""
    from claimladder._core import UsageError

    logged_square(log_dir, x)
    raise UsageError(f"unit {x}: the input is wrong. Fix: correct it.")


def mean_model(x: np.ndarray) -> np.ndarray:
    """A picklable model: the logistic of the mean intensity (with a BLAS product)."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    weights = np.linspace(0.5, 1.5, flat.shape[1]) / flat.shape[1]
    return 1 / (1 + np.exp(-4 * (flat @ weights - 0.5)))
