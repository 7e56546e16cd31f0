"""The stress test: table, paired drops, failure boundary, findings, caching, replay."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from claimladder import Rung, Status
from claimladder.metrics import compare_paired, roc_auc
from claimladder.models import load_model
from claimladder.robustness import (
    GaussianNoise,
    StressTestResult,
    stress_test,
)

N_PATIENTS = 60


_YY, _XX = np.mgrid[:32, :32]
BODY = 0.1 + 0.8 * np.exp(-((_YY - 16.0) ** 2 + (_XX - 16.0) ** 2) / 150.0)
BLOB = np.exp(-((_YY - 16.0) ** 2 + (_XX - 16.0) ** 2) / 18.0)


@pytest.fixture(scope="module")
def study():
    """Two images per patient: a body-like disc (range ~0.8); positives add a faint blob."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.repeat([0, 1], N_PATIENTS // 2), 2)
    groups = np.repeat([f"P{i:03d}" for i in range(N_PATIENTS)], 2)
    images = (BODY + 0.01 * rng.standard_normal((y.size, 32, 32))
              + 0.03 * y[:, None, None] * BLOB).astype(np.float32)
    ids = np.array([f"IMG{i:04d}" for i in range(y.size)])
    return images, y, groups, ids


def robust_model(x):
    """Mean excess over the body in the central 6 x 6 pixels: noise averages out."""
    excess = (x - BODY)[:, 13:19, 13:19].mean(axis=(1, 2))
    return 1 / (1 + np.exp(-400 * (excess - 0.011)))


def fragile_model(x):
    """The single centre pixel: noise of a few percent of the range swamps the blob."""
    return 1 / (1 + np.exp(-100 * (x[:, 16, 16] - 0.915)))


def test_table_columns_and_clean_row(study):
    images, y, groups, ids = study
    result = stress_test(robust_model, images, y, groups=groups, image_ids=ids,
                         perturbations=["gaussian_noise", "gaussian_blur"],
                         severities=(0, 1, 3), rng=0)
    assert isinstance(result, StressTestResult)
    table = result.table
    assert list(table.columns) == [
        "perturbation", "severity", "parameters", "metric", "estimate", "ci_low", "ci_high",
        "drop", "drop_ci_low", "drop_ci_high", "p_value", "flip_rate", "n_flipped",
        "mean_abs_change", "n", "n_clusters"]
    assert table["perturbation"].tolist() == ["gaussian_noise"] * 3 + ["gaussian_blur"] * 3
    clean = table[table["severity"] == 0]
    assert (clean["drop"] == 0).all() and (clean["flip_rate"] == 0).all()
    assert (clean["estimate"] == result.clean.value).all()
    assert (table["n_clusters"] == N_PATIENTS).all()
    assert table.loc[1, "parameters"] == "gaussian_noise(sigma=0.01)"


def test_drop_is_the_paired_comparison(study):
    """The drop and its CI equal compare_paired on the same scores (clustered DeLong)."""
    images, y, groups, _ = study
    result = stress_test(fragile_model, images, y, groups=groups,
                         perturbations=["gaussian_noise"], severities=(0, 3), rng=1)
    row = result.table.iloc[1]
    # Recompute the perturbed scores independently with the recorded per-image seeds.
    from claimladder.models import image_digests
    from claimladder.robustness._stress import _image_seeds

    per_image = _image_seeds(result.seed, "gaussian_noise", image_digests(images))
    noisy = GaussianNoise.at_severity(3)(images, rng=per_image)
    clean_scores, noisy_scores = fragile_model(images), fragile_model(noisy)
    comparison = compare_paired(y, noisy_scores, clean_scores, groups=groups)
    assert row["drop"] == pytest.approx(-comparison.difference.value)
    assert row["drop_ci_low"] == pytest.approx(-comparison.difference.ci.high)
    assert row["drop_ci_high"] == pytest.approx(-comparison.difference.ci.low)
    assert row["estimate"] == pytest.approx(roc_auc(y, noisy_scores).value)
    flips = (noisy_scores >= 0.5) != (clean_scores >= 0.5)
    assert row["n_flipped"] == flips.sum()


def test_boundary_and_findings(study):
    images, y, groups, ids = study
    fragile = stress_test(fragile_model, images, y, groups=groups, image_ids=ids,
                          perturbations=["gaussian_noise"], rng=0)
    robust = stress_test(robust_model, images, y, groups=groups, image_ids=ids,
                         perturbations=["gaussian_noise"], rng=0)
    rows = fragile.table[fragile.table["severity"] > 0]
    expected = rows.loc[rows["drop"] > 0.05, "severity"].min()
    assert fragile.boundaries["gaussian_noise"] == expected
    assert fragile.boundaries["gaussian_noise"] <= 2
    (finding,) = fragile.to_findings()
    assert finding.check == "robustness.gaussian_noise" and finding.rung == Rung.ROBUSTNESS
    assert finding.status is Status.FAIL
    flipped = set(fragile.flips.loc[fragile.flips["severity"] == expected, "image_id"])
    assert finding.examples and set(finding.examples) <= flipped
    (plot,) = finding.plots
    assert plot.kind == "line"
    assert list(plot.data.columns) == ["perturbation", "severity", "estimate", "ci_low",
                                       "ci_high"]
    json.dumps(finding.to_dict(), allow_nan=False)
    (calm,) = robust.to_findings()
    # The robust model fails only beyond the required severity (2): the claim passes, and
    # the finding still reports where it breaks.
    assert calm.status is Status.PASS and robust.boundaries["gaussian_noise"] > 2
    assert "failure boundary: severity" in calm.message


def test_boundary_rules_are_ordered(study):
    images, y, groups, _ = study
    kwargs = {"groups": groups, "perturbations": ["gaussian_noise"], "rng": 0}
    low = stress_test(fragile_model, images, y, boundary_rule="ci_low", **kwargs)
    mid = stress_test(fragile_model, images, y, **kwargs)
    high = stress_test(fragile_model, images, y, boundary_rule="ci_high", **kwargs)
    b = [r.boundaries["gaussian_noise"] for r in (high, mid, low)]
    assert b[0] <= b[1] <= b[2]


def test_rerun_reads_the_cache_and_order_does_not_matter(study):
    images, y, groups, _ = study
    calls = []

    def model(x):
        calls.append(len(x))
        return robust_model(x)

    adapter = load_model(model)
    kwargs = {"groups": groups, "perturbations": ["motion", "spike"],
              "severities": (0, 2, 4), "rng": 5}
    first = stress_test(adapter, images, y, **kwargs)
    n_scored = adapter.n_images_predicted
    assert n_scored == len(y) * 5  # clean + 2 perturbations x 2 severities
    second = stress_test(adapter, images, y, **kwargs)
    assert adapter.n_images_predicted == n_scored
    pd.testing.assert_frame_equal(first.table, second.table)
    order = np.random.default_rng(1).permutation(len(y))
    shuffled = stress_test(robust_model, images[order], y[order], groups=groups[order],
                           perturbations=["motion", "spike"], severities=(0, 2, 4), rng=5)
    np.testing.assert_allclose(shuffled.table["estimate"], first.table["estimate"])
    np.testing.assert_allclose(shuffled.table["flip_rate"], first.table["flip_rate"])


def test_all_default_perturbations_run(study):
    images, y, groups, _ = study
    result = stress_test(robust_model, images[::4], y[::4], groups=groups[::4],
                         severities=(0, 5), rng=0)
    assert len(result.perturbations) == 14
    assert result.table["estimate"].notna().all()
    assert set(result.timings) == {"perturb", "predict", "metrics", "total"}


def test_metadata_perturbations(study):
    images, y, groups, _ = study
    meta = pd.DataFrame({"age": np.where(y == 1, 70.0, 40.0)
                         + np.random.default_rng(0).normal(0, 5, y.size)})

    def model(x, metadata):
        age = metadata["age"].fillna(55.0).to_numpy()
        return 1 / (1 + np.exp(-(age - 55.0) / 5))

    adapter = load_model(model, takes_metadata=True)
    result = stress_test(adapter, images, y, groups=groups, metadata=meta,
                         perturbations=["metadata_missing", "metadata_shuffled"],
                         severities=(0, 1, 5), rng=0)
    assert result.kinds == {"metadata_missing": "metadata", "metadata_shuffled": "metadata"}
    drops = result.table.set_index(["perturbation", "severity"])["drop"]
    assert drops[("metadata_missing", 5)] > drops[("metadata_missing", 1)] > 0
    with pytest.raises(ValueError, match="takes_metadata=True"):
        stress_test(robust_model, images, y, perturbations=["metadata_missing"])


def test_custom_ladder_with_torchio(study):
    tio = pytest.importorskip("torchio")
    from claimladder.robustness import TorchIOPerturbation

    images, y, groups, _ = study
    ladder = {"torchio_noise": [TorchIOPerturbation(tio.RandomNoise(std=(s, s)))
                                for s in (0.01, 0.05, 0.2)]}
    result = stress_test(fragile_model, images[::2], y[::2], groups=groups[::2],
                         perturbations=ladder, severities=(0, 1, 2, 3), rng=0)
    table = result.table
    assert table["severity"].tolist() == [0, 1, 2, 3]
    assert table["drop"].iloc[3] > table["drop"].iloc[1]
    assert "RandomNoise" in table["parameters"].iloc[1]


def test_errors(study):
    images, y, _, _ = study
    with pytest.raises(ValueError, match="Did you mean 'gaussian_noise'"):
        stress_test(robust_model, images, y, perturbations=["gaussian_nois"])
    with pytest.raises(ValueError, match="one label per image"):
        stress_test(robust_model, images, y[:-1], perturbations=["gamma"])
    with pytest.raises(ValueError, match="metric"):
        stress_test(robust_model, images, y, perturbations=["gamma"], metric="auc")


def test_undefined_metric_is_not_evaluable(study):
    images, y, _, _ = study
    result = stress_test(robust_model, images[y == 1], y[y == 1], perturbations=["gamma"],
                         severities=(0, 1, 2), rng=0)
    (finding,) = result.to_findings()
    assert finding.status is Status.NOT_EVALUABLE
