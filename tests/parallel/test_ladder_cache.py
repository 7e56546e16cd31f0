"""The ladder on executors and with its checkpoint: reruns skip image work, backends agree."""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pytest
from typer.testing import CliRunner

from claimladder.cli import app
from claimladder.datasets import fit_demo_model, make_demo_study
from claimladder.ladder import load_study, load_study_data, partition_image_ids, run_ladder
from claimladder.ladder._pixels import pixel_summaries
from claimladder.parallel import (
    CACHE_DIRNAME,
    Checkpoint,
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    study = make_demo_study(folder / "study", n_patients=60, rng=0)
    spec = study.study_path.read_text()  # fewer bootstrap replicates: caching is the point
    assert "n_resamples = 1000" in spec
    study.study_path.write_text(spec.replace("n_resamples = 1000", "n_resamples = 200"))
    loaded = load_study(study.study_path)
    model, _ = fit_demo_model(folder / "study",
                              train_image_ids=partition_image_ids(loaded, "development"), rng=0)
    return folder / "study", model


def _copy(demo, tmp_path):
    target = tmp_path / "study"
    shutil.copytree(demo[0], target)
    return target / "study.toml"


def _findings(evidence) -> dict:
    data = json.loads(evidence.to_json())
    return {f["check"]: f for f in data["findings"]}


def _edit_criteria_and_text(path) -> None:
    text = path.read_text()
    edited = text.replace("internal.min_auroc = 0.75", "internal.min_auroc = 0.9").replace(
        'statement = "The model detects', 'statement = "Our model detects')
    assert edited != text
    path.write_text(edited)


def test_rerun_after_editing_criteria_and_text_does_no_image_work(demo, tmp_path):
    study_path = _copy(demo, tmp_path)
    model = demo[1].predict_proba
    cache_dir = tmp_path / "out" / CACHE_DIRNAME
    first_executor, first_cache = SerialExecutor(), Checkpoint(cache_dir)
    # rungs 1 and 5 do the image work (pixel summaries, headers, perturbation + inference)
    first = run_ladder(load_study(study_path), rungs=[1, 5], model=model,
                       executor=first_executor, checkpoint=first_cache)
    assert first_executor.n_executed["pixel_summaries"] > 0
    assert first_executor.n_executed["headers"] > 0
    assert first_executor.n_executed["stress_test"] > 0

    _edit_criteria_and_text(study_path)
    executor, cache = SerialExecutor(), Checkpoint(cache_dir)
    second = run_ladder(load_study(study_path), rungs=[1, 5], model=model, executor=executor,
                        checkpoint=cache)
    # No unit ran: pixel summaries, headers and file digests came from the checkpoint, and the
    # stress test's perturbed predictions from the prediction cache in the same folder.
    assert executor.n_executed == {}
    assert cache.n_reused["pixel_summaries"] == first_cache.n_written["pixel_summaries"]
    assert cache.n_reused["headers"] == first_cache.n_written["headers"]
    assert cache.n_written == {}
    a, b = _findings(first), _findings(second)
    assert a.keys() == b.keys()
    assert a["internal.roc_auc"]["estimate"] == b["internal.roc_auc"]["estimate"]
    assert a["internal.roc_auc"]["criterion"] != b["internal.roc_auc"]["criterion"]
    robustness = [c for c in a if c.startswith("robustness.")]
    assert robustness and all(a[c] == b[c] for c in robustness)
    assert second.claim["statement"].startswith("Our model")


def test_pixel_summaries_and_headers_are_identical_on_every_backend(demo, tmp_path):
    study = load_study(_copy(demo, tmp_path))
    serial = load_study_data(study)
    with ProcessExecutor(2) as executor:
        parallel = load_study_data(study, executor=executor,
                                   checkpoint=Checkpoint(tmp_path / "cache"))
        summary_p = pixel_summaries(parallel)
        headers_p = parallel.headers()
    summary_s = pixel_summaries(serial)
    assert len(summary_s.shapes) == serial.cohort.n_images
    assert summary_s.shapes == summary_p.shapes
    assert summary_s.digests == summary_p.digests
    np.testing.assert_array_equal(summary_s.phash, summary_p.phash)
    np.testing.assert_array_equal(summary_s.border, summary_p.border)
    assert summary_s.statistics.equals(summary_p.statistics)
    assert summary_s.markers.equals(summary_p.markers)
    assert summary_s.problems.equals(summary_p.problems)
    assert serial.headers().equals(headers_p)


def test_a_killed_dask_worker_leaves_the_evidence_unchanged(demo, tmp_path):
    """SIGKILL a LocalCluster worker while the ladder reads images; compare with in-process."""
    pytest.importorskip("distributed")
    study = load_study(_copy(demo, tmp_path))
    model = demo[1].predict_proba
    expected = _findings(run_ladder(study, rungs=[0, 1, 5], model=model))
    killed = []
    with DaskExecutor(workers=2) as executor:
        pids = sorted(executor.client.run(os.getpid).values())

        def progress(description, done, total):
            if description == "Summarising images" and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        got = _findings(run_ladder(study, rungs=[0, 1, 5], model=model, executor=executor,
                                   checkpoint=Checkpoint(tmp_path / "cache"),
                                   progress=progress))
    assert killed
    assert got == expected


def test_cli_verify_reuses_its_cache_and_no_cache_writes_none(demo, tmp_path):
    study_path = _copy(demo, tmp_path)
    out = tmp_path / "report"
    runner = CliRunner()
    first = runner.invoke(app, ["verify", str(study_path), "--out", str(out), "--rungs", "0,1"])
    assert first.exit_code in (0, 1), first.output
    cache = out / CACHE_DIRNAME
    files = {p: p.stat().st_mtime_ns for p in cache.rglob("*.pkl")}
    assert {p.parent.parent.name for p in files} >= {"pixel_summaries", "headers",
                                                     "file-sha256"}
    _edit_criteria_and_text(study_path)
    second = runner.invoke(app, ["verify", str(study_path), "--out", str(out), "--rungs", "0,1"])
    assert second.exit_code in (0, 1), second.output
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.pkl")} == files
    fresh = tmp_path / "fresh"
    third = runner.invoke(app, ["verify", str(study_path), "--out", str(fresh), "--rungs", "0",
                                "--no-cache"])
    assert third.exit_code in (0, 1), third.output
    assert not (fresh / CACHE_DIRNAME).exists()
    bad = runner.invoke(app, ["verify", str(study_path), "--out", str(fresh), "--scheduler",
                              "nonsense"])
    assert bad.exit_code == 2 and "tcp://" in bad.output
