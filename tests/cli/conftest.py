import shutil
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """`claimladder demo` run once as a user runs it (a subprocess), at a small size."""
    out = tmp_path_factory.mktemp("demo") / "demo-report"
    result = subprocess.run(
        [sys.executable, "-m", "claimladder", "demo", "--out", str(out), "--n-patients", "80"],
        capture_output=True, text=True, timeout=300,
    )
    return out, result


@pytest.fixture
def study_copy(demo_run, tmp_path):
    """A private copy of the demo study (with predictions) that a test may break."""
    out, result = demo_run
    assert result.returncode == 0, result.stderr
    target = tmp_path / "study"
    shutil.copytree(out / "study", target)
    return target
