"""Fixtures of the reader-study tests; make ``tests/reference`` importable as ``reference.*``."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

DATA = Path(__file__).resolve().parent / "data"

# Van Dyke et al. (1993) cine vs spin-echo MRI for aortic dissection: 5 readers x 114 cases
# (45 abnormal, 69 normal) x 2 modalities, 5-point ratings. Converted from RJafroc's
# inst/extdata/datasets/VD.lrc (dpc10ster/RJafroc, commit d6953431; the MRMC .lrc format of the
# OR-DBM MRMC software): modality "trt0"/"trt1" are that file's treatments "0"/"1", case_id is
# its case index (0-68 normal, 69-113 abnormal). Used as `dataset02` in RJafroc and `VanDyke`
# in MRMCaov; the published analyses quoted in test_vandyke.py were run on the same ratings.
VANDYKE_CSV = DATA / "vandyke_1993.csv"


@pytest.fixture(scope="session")
def vandyke_frame() -> pd.DataFrame:
    return pd.read_csv(VANDYKE_CSV)


@pytest.fixture(scope="session")
def vandyke(vandyke_frame):
    from claimladder.readers import load_readings

    return load_readings(vandyke_frame)


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
