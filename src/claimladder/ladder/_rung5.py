"""Rung 5, robustness: graded perturbations with fresh inference, and shortcut probes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .._core import Finding, Plot, Rung, Status
from ..robustness import stress_test
from ..shortcuts import (
    check_border_only,
    check_masking,
    check_site_predictability,
    mask_regions,
)
from ._common import captured_warnings, metric_options
from ._data import StudyData
from ._failures import THUMBNAIL_SIZE, thumbnail_data_uri

__all__ = ["robustness_findings"]


def _readable(images: list, mask: np.ndarray) -> np.ndarray:
    """Rows of ``mask`` whose image decoded as one 2D array of the most common shape."""
    rows = np.flatnonzero(mask)
    shapes = [images[i].shape if images[i] is not None else None for i in rows]
    ok = [s for s in shapes if s is not None and len(s) == 2]
    if not ok:
        return rows[:0]
    common = max(set(ok), key=ok.count)
    return rows[[s == common for s in shapes]]


def robustness_findings(data: StudyData) -> list[Finding]:
    """Stress test and masking probe on the internal test images (they need the model), the
    border-only and site-predictability probes on every included image (they do not)."""
    if not data.has_images:
        return [Finding(check="robustness.stress_test", rung=Rung.ROBUSTNESS,
                        status=Status.NOT_EVALUABLE,
                        message="The cohort names no image files ([data.columns] path), so "
                                "no pixel-level robustness check could run.")]
    cohort, parts = data.cohort, data.partitions
    images, _ = data.images()
    # The included cohort has a label on every row (the flow removes the others).
    y, g, ids = cohort.y_true.astype(int), cohort.patient_ids, cohort.image_ids
    options = metric_options(data)
    seed = data.study.seed
    findings: list[Finding] = []
    everything = _readable(images, np.ones(cohort.n_images, dtype=bool))
    batch = np.stack([images[i] for i in everything]).astype(np.float32)
    with captured_warnings():
        findings.append(check_border_only(batch, y[everything], groups=g[everything],
                                          image_ids=ids[everything], rng=seed + 90,
                                          **options))
        if cohort.has_role("site"):
            findings.extend(check_site_predictability(
                batch, cohort.column("site").astype(str).to_numpy()[everything],
                groups=g[everything], y_true=y[everything],
                y_score=None if data.scores is None else data.scores[everything],
                image_ids=ids[everything], rng=seed + 91, **options))
    model = data.model_adapter()
    if model is None:
        findings.append(Finding(
            check="robustness.stress_test", rung=Rung.ROBUSTNESS, status=Status.NOT_EVALUABLE,
            message="No model is declared ([model] adapter), so perturbations and masking "
                    "could not be re-scored.",
            params={"not_validated_for": "degraded or perturbed images (no model to re-run)"}))
        return findings
    name = "internal_test" if "internal_test" in parts.masks else None
    if name is None:
        return findings
    rows = _readable(images, parts.masks[name])
    test_images = np.stack([images[i] for i in rows]).astype(np.float32)
    limit = float(data.study.criterion("robustness", "max_auroc_drop"))
    with captured_warnings():
        result = stress_test(model, test_images, y[rows], groups=g[rows], image_ids=ids[rows],
                             criterion_max_drop=limit, rng=seed + 92,
                             threshold=float(data.study.metrics["threshold"]), **options)
        findings.extend(result.to_findings())
        masking = check_masking(model, test_images, y[rows], groups=g[rows],
                                image_ids=ids[rows], criterion_max_drop=limit,
                                threshold=float(data.study.metrics["threshold"]),
                                rng=seed + 93, **options)
    findings.append(_with_masking_examples(masking, test_images, ids[rows]))
    return findings


_MASKING_EXAMPLES = 4


def _with_masking_examples(finding: Finding, images: np.ndarray, ids: np.ndarray) -> Finding:
    """Add before/after thumbnails of the cases whose score changed most under masking.

    Burned-in text is blacked out in both thumbnails (it can carry PHI); markers stay
    in the "before" one, since they are what the probe is about.
    """
    examples = finding.params.get("example_scores") or []
    if not examples or finding.status is Status.NOT_EVALUABLE:
        return finding
    params = finding.params
    position = {str(i): k for k, i in enumerate(ids)}
    rows = []
    for example in examples[:_MASKING_EXAMPLES]:
        image = images[position[example["image_id"]]]
        after, _ = mask_regions(image, params["primary"].split("+"),
                                corner_fraction=params["corner_fraction"],
                                border_fraction=params["border_fraction"])
        for when, pixels, score in (("before", image, example["before"]),
                                    ("after", after, example["after"])):
            uri, hidden = thumbnail_data_uri(pixels, hide=("text",))
            rows.append({"image_id": example["image_id"], "thumbnail": uri,
                         "caption": f"{when} masking, score {score:.3f}",
                         "text_regions_masked": hidden})
    gallery = Plot(kind="gallery", title="Before and after masking", data=pd.DataFrame(rows),
                   options={"thumbnail_size": THUMBNAIL_SIZE})
    return replace(finding, plots=(*finding.plots, gallery))
