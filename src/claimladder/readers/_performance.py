"""Per-reader, per-modality AUROC, sensitivity and specificity with intervals."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..metrics import roc_auc, sensitivity, specificity
from ._common import check_level
from ._study import ReaderStudy, resolve_study

__all__ = ["reader_performance"]

_COLUMNS = ["reader_id", "modality", "metric", "estimate", "ci_low", "ci_high", "method", "n",
            "n_pos"]


def reader_performance(
    readings: ReaderStudy | pd.DataFrame | str | os.PathLike[str],
    truth: Any = None,
    *,
    confidence_level: float = 0.95,
) -> pd.DataFrame:
    """AUROC of every reader in every modality, and sensitivity/specificity of their calls.

    Parameters
    ----------
    readings : ReaderStudy, pandas.DataFrame or path
        A fully crossed reader study, or its long table.
    truth : optional
        Case truth when ``readings`` is a table.
    confidence_level : float, default 0.95
        Level of every interval.

    Returns
    -------
    pandas.DataFrame
        Long table ``reader_id, modality, metric, estimate, ci_low, ci_high,
        method, n, n_pos``; ``metric`` is ``roc_auc`` (empirical AUROC on the
        rating scale, DeLong interval) and, when decisions were recorded,
        ``sensitivity`` and ``specificity`` of the calls (Wilson intervals).
        Rows with ``reader_id == "mean"`` hold the reader averages (point
        estimates only; use :func:`or_hillis` for their intervals).

    Notes
    -----
    Computed with :func:`claimladder.metrics.roc_auc`,
    :func:`~claimladder.metrics.sensitivity` and
    :func:`~claimladder.metrics.specificity`; each case is read once per reader
    and modality, so no clustering is needed within a reader.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, reader_performance
    >>> truth = np.array([0, 0, 0, 1, 1, 1])
    >>> scores = np.array([[[1, 2, 4, 3, 5, 5], [1, 1, 2, 4, 5, 3]]], dtype=float)
    >>> study = ReaderStudy(case_ids=tuple("abcdef"), reader_ids=("R1", "R2"),
    ...                     modalities=("unaided",), truth=truth, scores=scores,
    ...                     decisions=(scores >= 3).astype(int))
    >>> table = reader_performance(study)
    >>> table[table.metric == "roc_auc"][["reader_id", "estimate"]].round(3).values.tolist()
    [['R1', 0.889], ['R2', 1.0], ['mean', 0.944]]
    """
    confidence_level = check_level(confidence_level, "reader_performance")
    study = resolve_study(readings, truth, owner="reader_performance")
    y = study.truth
    rows = []
    for i, modality in enumerate(study.modalities):
        per_metric: dict[str, list[float]] = {}
        for j, reader in enumerate(study.reader_ids):
            estimates = {"roc_auc": roc_auc(y, study.scores[i, j], method="delong",
                                            confidence_level=confidence_level)}
            if study.decisions is not None:
                for name, fn in (("sensitivity", sensitivity), ("specificity", specificity)):
                    estimates[name] = fn(y, y_pred=study.decisions[i, j], method="wilson",
                                         confidence_level=confidence_level)
            for name, e in estimates.items():
                rows.append([reader, modality, name, e.value, e.ci.low, e.ci.high, e.method, e.n,
                             e.n_pos])
                per_metric.setdefault(name, []).append(e.value)
        for name, values in per_metric.items():
            rows.append(["mean", modality, name, float(np.mean(values)), np.nan, np.nan,
                         "reader-average", study.n_cases, study.n_pos])
    return pd.DataFrame(rows, columns=_COLUMNS)
