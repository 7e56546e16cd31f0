"""Failure analysis: slice finding checked against explicit resampling, worst cases, thumbnails."""

import base64
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from statsmodels.stats.multitest import multipletests

from claimladder.ladder._failures import slice_error_table, thumbnail_data_uri, worst_cases

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:  # the oracles of tests/reference, importable as reference.*
    sys.path.insert(0, TESTS)
from reference.bootstrap import resampled_rows


def _data(n=240, seed=0, bad_rate=0.1):
    rng = np.random.default_rng(seed)
    labels = pd.DataFrame({"site": rng.choice(["A", "B", "C"], n),
                           "sex": rng.choice(["F", "M"], n),
                           "view": rng.choice(["AP", "PA", "LL"], n, p=[0.45, 0.45, 0.1])})
    groups = rng.integers(0, n // 2, n)  # about two images per patient
    errors = rng.random(n) < np.where(labels["site"] == "C", bad_rate, 0.1)
    y = rng.integers(0, 2, n)
    return errors, labels, groups, y


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed0", "seed1", "seed2"])
def test_point_estimates_match_pandas(seed):
    errors, labels, groups, y = _data(seed=seed)
    table = slice_error_table(errors, labels, y_true=y, groups=groups, min_size=20,
                              n_resamples=50, rng=seed).set_index("slice")
    frame = labels.assign(e=errors, y=y, g=groups)
    for column in labels.columns:
        for level, rows in frame.groupby(column):
            name = f"{column} = {level}"
            if len(rows) < 20 or len(frame) - len(rows) < 20:
                assert name not in table.index
                continue
            row = table.loc[name]
            rest = frame[frame[column] != level]
            assert row["n"] == len(rows) and row["errors"] == rows["e"].sum()
            assert row["n_pos"] == rows["y"].sum() and row["n_clusters"] == rows["g"].nunique()
            assert row["error_rate"] == pytest.approx(rows["e"].mean())
            assert row["rest_error_rate"] == pytest.approx(rest["e"].mean())
    pairs = table[table["n_attributes"] == 2]
    assert len(pairs) > 0
    for name, row in pairs.iterrows():
        (a, va), (b, vb) = [part.split(" = ") for part in name.split(" & ")]
        inside = frame[(frame[a] == va) & (frame[b] == vb)]
        assert row["n"] == len(inside) >= 20
        assert row["error_rate"] == pytest.approx(inside["e"].mean())


def test_bootstrap_matches_explicit_patient_resampling():
    # Independent check: the same patient draws, materialised as rows
    # (tests/reference/bootstrap.py), and the error rates computed on them directly.
    errors, labels, groups, y = _data(n=120, seed=3)
    labels = labels[["site"]]
    seed, n_resamples, level = 11, 300, 0.9
    table = slice_error_table(errors, labels, y_true=y, groups=groups, min_size=10,
                              n_resamples=n_resamples, confidence_level=level, rng=seed)
    codes, _ = pd.factorize(groups, sort=True)
    n_clusters = codes.max() + 1
    draws = np.random.default_rng(seed).integers(0, n_clusters, size=(n_resamples, n_clusters))
    for row in table.itertuples():
        inside = (labels["site"] == row.slice.split(" = ")[1]).to_numpy()
        rates, diffs = [], []
        for draw in draws:
            rows = resampled_rows(codes, draw)
            e, m = errors[rows], inside[rows]
            rates.append(e[m].mean() if m.any() else np.nan)
            diffs.append(rates[-1] - (e[~m].mean() if (~m).any() else np.nan))
        rates, diffs = np.array(rates), np.array(diffs)
        low, high = np.quantile(rates[np.isfinite(rates)], [0.05, 0.95])
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)
        d_low, d_high = np.quantile(diffs[np.isfinite(diffs)], [0.05, 0.95])
        assert (row.difference_ci_low, row.difference_ci_high) == pytest.approx((d_low, d_high))


def test_holm_matches_statsmodels():
    errors, labels, groups, y = _data(seed=4)
    table = slice_error_table(errors, labels, y_true=y, groups=groups, min_size=15,
                              n_resamples=200, rng=0)
    expected = multipletests(table["p_value"], method="holm")[1]
    np.testing.assert_allclose(table["p_holm"], expected)


def test_finds_a_planted_slice_and_stays_quiet_without_one():
    errors, labels, groups, y = _data(n=600, seed=5, bad_rate=0.45)
    table = slice_error_table(errors, labels, y_true=y, groups=groups, min_size=30,
                              n_resamples=1000, rng=0)
    assert table.iloc[0]["slice"] == "site = C"
    flagged = table[(table["p_holm"] < 0.05) & (table["difference"] > 0)]["slice"].tolist()
    assert "site = C" in flagged and all("site = C" in s for s in flagged)
    errors, labels, groups, y = _data(n=600, seed=6, bad_rate=0.1)
    table = slice_error_table(errors, labels, y_true=y, groups=groups, min_size=30,
                              n_resamples=1000, rng=0)
    assert (table["p_holm"] >= 0.05).all()


def test_redundant_and_small_slices_are_left_out():
    labels = pd.DataFrame({"site": ["A"] * 50 + ["B"] * 50, "unit": ["x"] * 50 + ["y"] * 50,
                           "tiny": ["t"] * 5 + ["u"] * 95})
    errors = np.arange(100) % 3 == 0
    table = slice_error_table(errors, labels, y_true=np.zeros(100), min_size=10,
                              n_resamples=20, rng=0)
    # unit = x is the same rows as site = A, and site = B & tiny = u the same as site = B:
    # reported once; tiny = t is below min_size, and tiny = u leaves fewer than min_size
    # outside it
    assert sorted(table["slice"]) == ["site = A", "site = A & tiny = u", "site = B"]
    assert slice_error_table(errors, labels, y_true=np.zeros(100), min_size=60,
                             n_resamples=20, rng=0).empty


def test_worst_cases_match_brute_force():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 2)  # rounded: ties in the loss
    got = worst_cases(y, s, threshold=0.5, k=4)
    for kind, wrong in (("false negative", (y == 1) & (s < 0.5)),
                        ("false positive", (y == 0) & (s >= 0.5))):
        idx = [i for i in range(200) if wrong[i]]
        loss = {i: -np.log(s[i]) if y[i] else -np.log(1 - s[i]) for i in idx}
        expected = sorted(idx, key=lambda i: (-loss[i], i))[:4]
        assert got[got["error"] == kind]["index"].tolist() == expected


def test_thumbnail_blacks_out_burned_in_text():
    from claimladder.datasets._glyphs import render_text_mask  # the demo's burned-in font

    rng = np.random.default_rng(0)
    image = rng.normal(0.4, 0.05, (256, 256)).clip(0, 1)
    yy, xx = np.mgrid[:256, :256]
    image += 0.3 * np.exp(-((yy - 128) ** 2 + (xx - 128) ** 2) / 4000)  # some "anatomy"
    mask = render_text_mask("PORTABLE AP", scale=2)
    text_rows = slice(8, 8 + mask.shape[0])
    image[text_rows, 120:120 + mask.shape[1]][mask] = 1.0
    uri, n_regions = thumbnail_data_uri(image)
    assert n_regions >= 1
    assert uri.startswith("data:image/png;base64,")
    thumb = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert max(thumb.shape) <= 96
    band = thumb[text_rows.start * 96 // 256:(text_rows.stop * 96 + 255) // 256]
    assert band.max() == 0  # the whole text line is black
    assert thumb[40:60, 40:60].mean() > 50  # anatomy is kept
    plain, n_plain = thumbnail_data_uri(np.clip(image[64:192, 64:192], 0, 1))
    assert n_plain == 0 and plain.startswith("data:image/png;base64,")
