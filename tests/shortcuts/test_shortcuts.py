"""The shortcut probes fire on a planted corner marker and a site effect, and stay quiet
on a clean set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from claimladder import Rung, Status
from claimladder.features import text_marker_regions
from claimladder.shortcuts import (
    border_features,
    check_border_only,
    check_masking,
    check_site_predictability,
    image_features,
    mask_regions,
)


def _json(finding) -> None:
    json.dumps(finding.to_dict(), allow_nan=False)


def test_masking_reveals_the_marker(planted, models):
    finding = check_masking(models["shortcut"], planted.images, planted.y,
                            groups=planted.groups, image_ids=planted.ids, rng=0)
    _json(finding)
    assert finding.check == "shortcuts.masking" and finding.rung == Rung.ROBUSTNESS
    assert finding.status is Status.FAIL
    assert finding.estimate.value > 0.05 and finding.estimate.ci.low > 0
    table = finding.table.set_index("variant")
    assert list(table.index) == ["none", "corners", "borders", "text", "corners+borders+text"]
    assert table.loc["corners", "drop"] > 0.05 and table.loc["text", "drop"] > 0.05
    # The detector finds the marker where it was drawn (and hardly anywhere else).
    assert table.loc["text", "n_images_masked"] >= planted.marker.sum() * 0.9
    marked = set(planted.ids[planted.marker])
    assert finding.examples and set(finding.examples) <= marked
    before_after = finding.params["example_scores"]
    assert all(e["after"] < e["before"] for e in before_after)


def test_masking_quiet_for_an_anatomy_model(planted, clean, models):
    on_planted = check_masking(models["anatomy"], planted.images, planted.y,
                               groups=planted.groups, rng=0)
    assert on_planted.status is Status.PASS
    on_clean = check_masking(models["shortcut"], clean.images, clean.y, groups=clean.groups,
                             rng=0)
    assert on_clean.status is Status.PASS
    assert on_clean.table.loc[on_clean.table["variant"] == "text", "n_images_masked"].item() \
        <= 0.05 * len(clean.y)


def test_border_only_probe(planted, clean):
    fired = check_border_only(planted.images, planted.y, groups=planted.groups,
                              image_ids=planted.ids, n_permutations=99, rng=0)
    _json(fired)
    assert fired.check == "shortcuts.border_only" and fired.status is Status.FAIL
    assert fired.estimate.value > 0.6 and fired.params["permuted_by"] == "cluster"
    assert set(fired.examples) <= set(planted.ids[planted.y == 1])
    quiet = check_border_only(clean.images, clean.y, groups=clean.groups, n_permutations=99,
                              rng=0)
    assert quiet.status is Status.PASS


def test_site_predictability_from_pixels(planted, clean, models):
    findings = check_site_predictability(planted.images, planted.site, groups=planted.groups,
                                         y_true=planted.y, image_ids=planted.ids,
                                         n_permutations=99, rng=0)
    (pixels,) = findings
    _json(pixels)
    assert pixels.check == "shortcuts.site_predictability" and pixels.status is Status.WARN
    assert pixels.estimate.value > 0.9 and "prevalence" in pixels.message
    assert pixels.params["permuted_by"] == "cluster"
    table = pixels.table.set_index("metric")
    assert table.loc["balanced_accuracy", "estimate"] > 0.8
    assert table.loc["auroc", "estimate"] > table.loc["auroc", "permutation_threshold"]
    quiet = check_site_predictability(clean.images, clean.site, groups=clean.groups,
                                      y_true=clean.y, n_permutations=99, rng=0)
    assert quiet[0].status is Status.PASS


def test_site_from_scores(clean, models):
    fair = models["anatomy"](clean.images)
    biased = np.clip(fair + 0.15 * (clean.site == "B"), 0, 1)
    for score, expected in ((fair, Status.PASS), (biased, Status.FAIL)):
        findings = check_site_predictability(clean.images, clean.site, groups=clean.groups,
                                             y_true=clean.y, y_score=score,
                                             n_permutations=99, rng=0)
        assert [f.check for f in findings] == ["shortcuts.site_predictability",
                                               "shortcuts.site_from_scores"]
        assert findings[1].status is expected, findings[1].message


def test_thumbnail_features_and_three_sites(planted):
    patient = np.arange(len(planted.y)) // 2  # odd patients are at site B: split them
    site = np.where(planted.site == "A", "A", np.where(patient % 4 == 1, "B", "C"))
    (finding,) = check_site_predictability(planted.images, site, groups=None,
                                           features="thumbnails", n_permutations=49, rng=0)
    assert finding.params["permuted_by"] == "row"
    metrics = set(finding.table["metric"])
    assert {"macro_auroc", "balanced_accuracy", "auroc[A]", "auroc[B]", "auroc[C]"} <= metrics
    assert image_features(planted.images[:2], "both").shape == (2, 25 + 256)


def test_not_evaluable_and_errors(planted, models):
    (single,) = check_site_predictability(planted.images, np.full(len(planted.y), "A"))
    assert single.status is Status.NOT_EVALUABLE
    one_class = check_border_only(planted.images[planted.y == 1],
                                  planted.y[planted.y == 1])
    assert one_class.status is Status.NOT_EVALUABLE
    with pytest.raises(ValueError, match="y_true"):
        check_site_predictability(planted.images, planted.site, y_score=planted.y)
    with pytest.raises(ValueError, match="Did you mean 'corners'"):
        check_masking(models["anatomy"], planted.images, planted.y, regions=["corner"])
    with pytest.raises(ValueError, match="2D"):
        check_border_only(np.zeros((4, 3, 8, 8)), [0, 1, 0, 1])


def test_mask_regions_fill_with_local_background(planted):
    i = int(np.flatnonzero(planted.marker)[0])
    image = planted.images[i]
    regions = text_marker_regions(image)
    assert regions and regions[0].kind == "marker"
    masked, mask = mask_regions(image, ["text"])
    box = regions[0].slices
    assert masked[box].max() < 0.5 and mask[box].all() and mask.sum() == mask[box].size
    masked, mask = mask_regions(image, ["corners", "borders"], corner_fraction=0.1,
                                border_fraction=0.05)
    assert masked[:12, :12].max() < 0.5
    np.testing.assert_array_equal(masked[~mask], image[~mask])


def test_border_features_ignore_the_centre(planted):
    a = planted.images[:3].copy()
    b = a.copy()
    b[:, 30:98, 30:98] += 5.0  # changes only the centre
    np.testing.assert_allclose(border_features(a), border_features(b))


def _edit_sensitive_model(x: np.ndarray) -> np.ndarray:
    """Anatomy plus a strong reaction to any edit of the upper-left corner (no shortcut):
    the corner's roughness against its smooth original, which background fill removes."""
    from tests.shortcuts.conftest import lesion_excess

    corner = x[:, :20, :20]
    roughness = np.abs(np.diff(corner, axis=2)).mean(axis=(1, 2))
    return 1 / (1 + np.exp(-(40 * (lesion_excess(x) - 0.04) + 400 * (roughness - 0.02))))


def test_label_swap_separates_reliance_from_edit_sensitivity(planted, clean, models):
    # The marker model fails under both fills: the marker carries the label.
    swap = check_masking(models["shortcut"], planted.images, planted.y, groups=planted.groups,
                         regions=["corners"], fill="label_swap", rng=0)
    assert swap.status is Status.FAIL and swap.params["fill"] == "label_swap"
    row = swap.table.set_index("variant").loc["corners"]
    assert row["reference"] > row["estimate"] + 0.05  # same-class corners keep the marker
    # An edit-sensitive model without a shortcut: background fill cannot tell it from
    # reliance; the same-class vs other-class swap can (equal edits, equal damage).
    edited = {fill: check_masking(_edit_sensitive_model, clean.images, clean.y,
                                  groups=clean.groups, regions=["corners"], fill=fill, rng=0)
              for fill in ("background", "label_swap")}
    changed = edited["background"].table.set_index("variant").loc["corners"]
    assert changed["mean_abs_change"] > 0.05
    assert edited["label_swap"].status is Status.PASS
    assert edited["label_swap"].estimate.ci.low <= 0 <= edited["label_swap"].estimate.ci.high


def test_masking_judges_the_primary_variant(planted, models):
    default = check_masking(models["shortcut"], planted.images, planted.y,
                            groups=planted.groups, rng=0)
    assert default.params["primary"] == "text"
    text_drop = default.table.set_index("variant").loc["text", "drop"]
    assert default.estimate.value == pytest.approx(text_drop)
    joined = check_masking(models["shortcut"], planted.images, planted.y, groups=planted.groups,
                           primary="corners+borders+text", rng=0)
    assert joined.estimate.value == pytest.approx(
        joined.table.set_index("variant").loc["corners+borders+text", "drop"])
    with pytest.raises(ValueError, match="primary"):
        check_masking(models["shortcut"], planted.images, planted.y, regions=["corners"],
                      primary="text")


def test_label_donors_are_derangements_within_class():
    from claimladder.shortcuts._masking import _derangement, _label_donors

    for n in (2, 3, 10, 101):
        perm = _derangement(n, np.random.default_rng(n))
        assert sorted(perm) == list(range(n)) and not np.any(perm == np.arange(n))
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0])
    same, other = _label_donors(y, 1, np.random.default_rng(0))
    assert np.all(y[same] == y) and np.all(same != np.arange(y.size))
    assert np.all(y[other] != y)
    again = _label_donors(y, 1, np.random.default_rng(0))
    assert np.array_equal(again[0], same) and np.array_equal(again[1], other)
    lonely, _ = _label_donors(np.array([1, 0, 0]), 1, np.random.default_rng(0))
    assert lonely[0] == 0  # alone in its class: its own donor
