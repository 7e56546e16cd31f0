"""Demo studies shared by the dataset tests (generated once per session).

The measurements live in ``measure_demo.py`` (also a script: it produced the
strengths quoted in the generator's documentation); it is loaded here by
path because the tests are imported in importlib mode.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from claimladder.datasets import make_demo_study

#: Patients in the studies the fast tests measure: about 520 images, enough
#: for every planted effect to stand well clear of its threshold.
TEST_N_PATIENTS = 300


def _load_measure_module():
    name = "claimladder_tests_measure_demo"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("measure_demo.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def md():
    """The measurement helpers (``measure_demo.py``)."""
    return _load_measure_module()


@pytest.fixture(scope="session")
def planted_study(tmp_path_factory):
    return make_demo_study(tmp_path_factory.mktemp("planted"), n_patients=TEST_N_PATIENTS)


@pytest.fixture(scope="session")
def clean_study(tmp_path_factory):
    return make_demo_study(tmp_path_factory.mktemp("clean"), n_patients=TEST_N_PATIENTS, clean=True)


@pytest.fixture(scope="session")
def planted(md, planted_study):
    return md.load(planted_study)


@pytest.fixture(scope="session")
def clean(md, clean_study):
    return md.load(clean_study)


@pytest.fixture(scope="session")
def planted_measures(md, planted):
    return md.measure(planted)


@pytest.fixture(scope="session")
def clean_measures(md, clean):
    return md.measure(clean)
