"""Fixtures of the reader-study tests; make ``tests/reference`` importable as ``reference.*``."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

@pytest.fixture(scope="session")
def vandyke():
    """A Van Dyke-sized study (5 readers, 69 normal + 45 abnormal cases, two modalities)
    simulated from a Roe & Metz (1997) structure with a real modality effect."""
    from claimladder.readers import roe_metz_1997, simulate_roe_metz

    params = roe_metz_1997(0.855, reader_variability="low", case_correlation="high", delta=0.8)
    return simulate_roe_metz(params, n_readers=5, n_normal=69, n_abnormal=45,
                             modalities=("trt0", "trt1"), rng=1993)


@pytest.fixture(scope="session")
def vandyke_frame(vandyke) -> pd.DataFrame:
    return vandyke.to_frame()


def make_study(rng, *, n_readers=4, n_neg=12, n_pos=10, effect=0.5, modalities=("unaided",
               "aided"), ratings=None, decisions=False, times=False):
    """A small correlated two-modality study (shared case effect, reader noise)."""
    from claimladder.readers import ReaderStudy

    rng = np.random.default_rng(rng)
    truth = np.r_[np.zeros(n_neg, int), np.ones(n_pos, int)]
    c = truth.size
    t = len(modalities)
    case = rng.normal(size=c) + truth * 1.0
    shift = np.linspace(0, effect, t)[:, None, None] * truth
    x = case + shift + rng.normal(scale=0.8, size=(t, n_readers, c))
    if ratings is not None:
        x = np.digitize(x, np.quantile(x, np.linspace(0, 1, ratings + 1)[1:-1])) + 1.0
    kwargs = {}
    if decisions:
        kwargs["decisions"] = (x > np.median(x)).astype(int)
    if times:
        kwargs["times"] = rng.gamma(4.0, 10.0, size=(t, n_readers, c))
    return ReaderStudy(case_ids=tuple(f"case{k:03d}" for k in range(c)),
                       reader_ids=tuple(f"R{j}" for j in range(n_readers)),
                       modalities=tuple(modalities), truth=truth, scores=x, **kwargs)


@pytest.fixture(scope="session")
def study_factory():
    """``study_factory(seed, **options)`` -> a small simulated ReaderStudy."""
    return make_study
