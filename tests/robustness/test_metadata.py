"""Metadata corruption: missing, wrong, shuffled fields, graded and reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from claimladder.robustness import (
    PERTURBATIONS,
    SEVERITY_LEVELS,
    MissingMetadata,
    RandomMissingMetadata,
    RandomShuffledMetadata,
    RandomWrongMetadata,
    ShuffledMetadata,
    WrongMetadata,
)

KINDS = [MissingMetadata, WrongMetadata, ShuffledMetadata]


@pytest.fixture()
def meta() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "age": rng.integers(18, 90, n).astype(float),
        "sex": rng.choice(["F", "M"], n),
        "scanner": rng.choice(["LumaDR 500", "OrisDX Pro", "Kestrel Mobile 2"], n),
    }, index=pd.RangeIndex(100, 100 + n))


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.name)
def test_identity_and_registry(cls, meta):
    assert PERTURBATIONS[cls.name] is cls and cls.kind == "metadata"
    out = cls.at_severity(0)(meta, rng=0)
    pd.testing.assert_frame_equal(out, meta)


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.name)
def test_graded_nested_and_deterministic(cls, meta):
    cells = []
    for level in SEVERITY_LEVELS:
        result = cls.at_severity(level).apply(meta, rng=3)
        cells.append(set(zip(result.changes["row"], result.changes["column"], strict=True)))
        again = cls.at_severity(level).apply(meta, rng=3)
        pd.testing.assert_frame_equal(result.metadata, again.metadata)
    sizes = [len(c) for c in cells]
    assert sizes[0] == 0 and all(np.diff(sizes) > 0)
    if cls is not ShuffledMetadata:  # a shuffle may hand a cell back an equal value
        for smaller, larger in itertools.pairwise(cells):
            assert smaller <= larger
    expected = 0.5 * meta.size
    assert sizes[-1] == pytest.approx(expected, rel=0.15)


def test_missing_blanks_exactly_the_recorded_cells(meta):
    result = MissingMetadata(fraction=0.2).apply(meta, rng=1)
    out = result.metadata
    assert list(out.index) == list(meta.index) and out["age"].dtype == meta["age"].dtype
    blank = {(r, c) for c in out.columns for r in np.flatnonzero(out[c].isna().to_numpy())}
    assert blank == set(zip(result.changes["row"], result.changes["column"], strict=True))


def test_wrong_values_come_from_the_column_and_differ(meta):
    result = WrongMetadata(fraction=0.3, columns=("sex", "scanner")).apply(meta, rng=2)
    changes = result.changes
    assert set(changes["column"]) == {"sex", "scanner"}
    assert (changes["before"] != changes["after"]).all()
    for column in ("sex", "scanner"):
        assert set(result.metadata[column]) <= set(meta[column])
    pd.testing.assert_series_equal(result.metadata["age"], meta["age"])


def test_shuffle_permutes_within_a_column(meta):
    out = ShuffledMetadata(fraction=1.0, columns=("age",))(meta, rng=4)
    assert sorted(out["age"]) == sorted(meta["age"])
    assert (out["age"].to_numpy() != meta["age"].to_numpy()).mean() > 0.9


def test_per_row_seeds_make_rows_independent_of_each_other(meta):
    seeds = np.arange(len(meta), dtype=np.uint64) * 7 + 1
    full = MissingMetadata(fraction=0.3).apply(meta, rng=seeds).metadata
    half = MissingMetadata(fraction=0.3).apply(meta.iloc[:200], rng=seeds[:200]).metadata
    pd.testing.assert_frame_equal(full.iloc[:200], half)


@pytest.mark.parametrize("cls", [RandomMissingMetadata, RandomWrongMetadata,
                                 RandomShuffledMetadata], ids=lambda c: c.__name__)
def test_random_versions_record_the_fraction(cls, meta):
    result = cls(fraction=(0.1, 0.3)).apply(meta, rng=0)
    fraction = result.changes["fraction"].iloc[0]
    assert 0.1 <= fraction <= 0.3
    assert len(result.changes) == pytest.approx(fraction * meta.size, rel=0.25)
    # Replay: the fraction is the generator's first draw, the per-row seeds come next.
    gen = np.random.default_rng(0)
    assert gen.uniform(0.1, 0.3) == fraction
    replay = cls.deterministic(fraction=fraction).apply(meta, rng=gen)
    pd.testing.assert_frame_equal(replay.metadata, result.metadata)


def test_errors(meta):
    with pytest.raises(KeyError, match="does not have"):
        MissingMetadata(columns=("weight",))(meta)
    with pytest.raises(ValueError, match="fraction"):
        MissingMetadata(fraction=1.5)
    with pytest.raises(TypeError, match="DataFrame"):
        MissingMetadata()(np.zeros((3, 2)))
