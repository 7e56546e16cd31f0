"""Input checks and small helpers shared by the shortcut checks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    Estimate,
    RngLike,
    SmallSampleWarning,
    UndefinedMetricWarning,
)
from ..metrics import roc_auc, roc_auc_ovr
from ._probe import ProbeResult, auc_columns

__all__ = [
    "MAX_EXAMPLES",
    "as_2d_images",
    "as_ids",
    "as_vector",
    "probe_auroc",
    "probe_rows",
]

#: Most example ids a finding lists.
MAX_EXAMPLES = 10


def as_vector(values: Any, n: int, *, param: str, owner: str) -> np.ndarray:
    """A 1D array of length ``n`` (object dtype kept for labels)."""
    array = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    if array.shape != (n,):
        raise ValueError(f"The {param!r} parameter of {owner} must have one entry per image "
                         f"({n}). Got shape {array.shape} instead.")
    return array


def as_ids(image_ids: Sequence[Any] | None, n: int, owner: str) -> np.ndarray:
    """Image ids as strings; ``"0" .. "n-1"`` by default."""
    if image_ids is None:
        return np.asarray([str(i) for i in range(n)], dtype=object)
    return as_vector(np.asarray([str(i) for i in image_ids], dtype=object), n,
                     param="image_ids", owner=owner)


def as_2d_images(images: Any, owner: str) -> list[np.ndarray]:
    """A list of 2D arrays from an ``(N, H, W)`` array or a sequence (torch tensors allowed)."""
    if type(images).__module__.split(".")[0] == "torch":
        images = images.detach().cpu().numpy()
    items = list(images)
    out = []
    for i, image in enumerate(items):
        if type(image).__module__.split(".")[0] == "torch":
            image = image.detach().cpu().numpy()
        array = np.asarray(image)
        if array.ndim != 2:
            raise ValueError(
                f"{owner} works on 2D images; image {i} has shape {array.shape}. Fix: pass one "
                "representative 2D slice per volume (e.g. the middle axial slice)."
            )
        out.append(array)
    if not out:
        raise ValueError(f"{owner} got no images.")
    return out


def probe_auroc(probe: ProbeResult, clusters: np.ndarray | None, *, n_resamples: int,
                confidence_level: float, rng: RngLike) -> Estimate:
    """The probe's AUROC with an interval: clustered DeLong (binary) or cluster bootstrap."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", SmallSampleWarning)
        if probe.classes.size == 2:
            return roc_auc((probe.codes == 1).astype(int), probe.scores[:, 1], groups=clusters,
                           method="delong", confidence_level=confidence_level)
        return roc_auc_ovr(probe.codes, probe.scores, labels=np.arange(probe.classes.size),
                           groups=clusters, n_resamples=n_resamples,
                           confidence_level=confidence_level, rng=rng)


def probe_rows(source: str, probe: ProbeResult, auroc: Estimate, balanced: Estimate,
               ) -> list[dict[str, Any]]:
    """Long-table rows of one probe: AUROC, balanced accuracy, per-class AUROC."""
    k = probe.classes.size
    common = {"source": source, "n": auroc.n, "n_clusters": auroc.n_clusters,
              "n_classes": k, "permuted_by": probe.permuted_by}
    rows = [
        {**common, "metric": "auroc" if k == 2 else "macro_auroc", "estimate": auroc.value,
         "ci_low": auroc.ci.low, "ci_high": auroc.ci.high, "chance": 0.5,
         "permutation_threshold": probe.threshold, "p_value": probe.p_value},
        {**common, "metric": "balanced_accuracy", "estimate": balanced.value,
         "ci_low": balanced.ci.low, "ci_high": balanced.ci.high, "chance": 1.0 / k,
         "permutation_threshold": math.nan, "p_value": math.nan},
    ]
    if k > 2:
        labels = (probe.codes[:, None] == np.arange(k)).astype(float)
        per_class = auc_columns(labels, probe.scores)
        for name, value in zip(probe.classes, per_class, strict=True):
            rows.append({**common, "metric": f"auroc[{name}]", "estimate": float(value),
                         "ci_low": math.nan, "ci_high": math.nan, "chance": 0.5,
                         "permutation_threshold": math.nan, "p_value": math.nan})
    return rows
