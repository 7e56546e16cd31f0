"""stress_test gives the same table on every executor; a model that cannot travel is refused."""

from __future__ import annotations

import numpy as np
import parallel_units as pu
import pytest

from claimladder.parallel import DaskExecutor, ProcessExecutor, SerialExecutor, use_executor
from claimladder.robustness import stress_test

KWARGS = {"perturbations": ["gaussian_noise", "gaussian_blur", "crop"], "severities": (0, 1, 3),
          "rng": 4, "chunk_size": 16}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    images = (rng.normal(0, 1, (60, 24, 24)) + 0.1 * y[:, None, None]).astype(np.float32)
    return images, y, np.arange(60) // 2


def test_processes_give_the_in_process_table(data):
    images, y, groups = data
    serial = stress_test(pu.mean_model, images, y, groups=groups, executor=SerialExecutor(),
                         **KWARGS)
    with ProcessExecutor(2) as executor:
        parallel = stress_test(pu.mean_model, images, y, groups=groups, executor=executor,
                               **KWARGS)
        assert executor.n_executed["stress_test"] == 4 * (1 + 3 * 2)  # 60 images in 4 chunks
    assert serial.table.equals(parallel.table)
    assert serial.flips.equals(parallel.flips)
    assert (serial.table.loc[serial.table["severity"] > 0, "mean_abs_change"] > 0).all()


def test_use_executor_routes_the_units(data):
    images, y, groups = data
    executor = SerialExecutor()
    with use_executor(executor):
        stress_test(pu.mean_model, images, y, groups=groups, **KWARGS)
    assert executor.n_executed["stress_test"] == 28


def test_an_unpicklable_model_is_refused_out_of_process(data):
    images, y, _ = data
    with ProcessExecutor(2) as executor, pytest.raises(ValueError, match="cannot be pickled"):
        stress_test(lambda x: pu.mean_model(x), images, y, executor=executor, **KWARGS)
    # In-process it runs.
    stress_test(lambda x: pu.mean_model(x), images, y, executor=SerialExecutor(), **KWARGS)


@pytest.mark.slow
def test_dask_gives_the_in_process_table(data):
    pytest.importorskip("distributed")
    images, y, groups = data
    serial = stress_test(pu.mean_model, images, y, groups=groups, **KWARGS)
    with DaskExecutor(workers=2) as executor:
        remote = stress_test(pu.mean_model, images, y, groups=groups, executor=executor,
                             **KWARGS)
    assert serial.table.equals(remote.table)
