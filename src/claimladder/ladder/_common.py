"""Helpers shared by the rung modules of the ladder."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from .._core import SmallSampleWarning, UndefinedMetricWarning
from ._data import StudyData

__all__ = ["captured_warnings", "test_partitions", "test_mask", "metric_options", "roc_curves"]


@contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect metric warnings as text (they belong in the evidence, not on the console)."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield notes
    for w in caught:
        if issubclass(w.category, (UndefinedMetricWarning, SmallSampleWarning)):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def test_partitions(data: StudyData) -> list[str]:
    """Names of the internal test and external partitions, in declaration order."""
    return [n for n in data.partitions.names()
            if data.partitions.kinds[n] in ("internal_test", "external")]


def test_mask(data: StudyData) -> np.ndarray:
    """Rows in any test partition."""
    mask = np.zeros(data.cohort.n_images, dtype=bool)
    for name in test_partitions(data):
        mask |= data.partitions.masks[name]
    return mask


def metric_options(data: StudyData) -> dict:
    """n_resamples and confidence_level from the study."""
    m = data.study.metrics
    return {"n_resamples": int(m["n_resamples"]),
            "confidence_level": float(m["confidence_level"])}


def roc_curves(data: StudyData, names: list[str]) -> pd.DataFrame:
    """ROC curve points ``partition, fpr, tpr`` of the candidate in each named partition
    (partitions with a single class are left out)."""
    frames = []
    for name in names:
        mask = data.partitions.masks[name]
        y = data.cohort.y_true[mask]
        if len(np.unique(y)) == 2:
            fpr, tpr, _ = roc_curve(y, data.scores[mask])
            frames.append(pd.DataFrame({"partition": name, "fpr": fpr, "tpr": tpr}))
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=["partition", "fpr", "tpr"]))
