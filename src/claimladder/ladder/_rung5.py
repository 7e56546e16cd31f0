"""Rung 5, robustness: graded perturbations with fresh inference, and shortcut probes."""

from __future__ import annotations

from collections.abc import Sequence
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
from ._pixels import BORDER_FRACTION, pixel_summaries

__all__ = ["robustness_findings"]


def robustness_findings(data: StudyData) -> list[Finding]:
    """Stress test and masking probe on the internal test images (they need the model), the
    border-only and site-predictability probes on every included image (they do not)."""
    if not data.has_images:
        return [Finding(check="robustness.stress_test", rung=Rung.ROBUSTNESS,
                        status=Status.NOT_EVALUABLE,
                        message="The cohort names no image files ([data.columns] path), so "
                                "no pixel-level robustness check could run.")]
    cohort, parts = data.cohort, data.partitions
    summary = pixel_summaries(data)
    # The included cohort has a label on every row (the flow removes the others).
    y, g, ids = cohort.y_true.astype(int), cohort.patient_ids, cohort.image_ids
    options = metric_options(data)
    seed = data.study.seed
    findings: list[Finding] = []
    everything = summary.common_shape_rows(np.ones(cohort.n_images, dtype=bool))
    with captured_warnings():
        findings.append(check_border_only(None, y[everything],
                                          features=summary.border[everything],
                                          border_fraction=BORDER_FRACTION,
                                          groups=g[everything], image_ids=ids[everything],
                                          rng=seed + 90, **options))
        if cohort.has_role("site"):
            findings.extend(check_site_predictability(
                None, cohort.column("site").astype(str).to_numpy()[everything],
                features=summary.statistics.iloc[everything], feature_set="statistics",
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
    rows = summary.common_shape_rows(parts.masks[name])
    test_images = data.image_files(rows)  # each work unit decodes its own chunk
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


def _with_masking_examples(finding: Finding, images: Sequence[np.ndarray], ids: np.ndarray
                           ) -> Finding:
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
