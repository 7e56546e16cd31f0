"""Helpers shared by the rung modules of the ladder."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .._core import SmallSampleWarning, UndefinedMetricWarning
from ._data import StudyData

__all__ = ["captured_warnings", "test_partitions", "metric_options"]


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
