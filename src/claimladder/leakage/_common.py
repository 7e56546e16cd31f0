"""Shared pieces of the leakage checks: partitions, rank statistics, multiplicity, values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._core import AlignmentError, check_option, did_you_mean
from ..cohort import Cohort
from ..metrics import holm_adjust

__all__ = [
    "FIT_KINDS",
    "MAX_EXAMPLES",
    "PARTITION_KINDS",
    "TEST_KINDS",
    "auc_from_ranks",
    "check_headers",
    "check_partitions",
    "clean_values",
    "hanley_mcneil_se",
    "holm",
    "site_values",
    "union",
]

#: Partition kinds whose rows a model (or a preprocessing step) is fitted on.
FIT_KINDS = ("development", "calibration")
#: Partition kinds whose rows a claim is tested on.
TEST_KINDS = ("internal_test", "external")
PARTITION_KINDS = FIT_KINDS + TEST_KINDS
#: Most example ids a finding lists.
MAX_EXAMPLES = 10


def check_partitions(
    cohort: Cohort, masks: Mapping[str, Any], kinds: Mapping[str, str], *, owner: str
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Validate ``masks`` (name -> boolean mask over cohort rows) and ``kinds`` (name -> kind)."""
    if not isinstance(masks, Mapping) or not isinstance(kinds, Mapping):
        raise TypeError(
            f"The 'masks' and 'kinds' parameters of {owner} must be mappings from partition "
            "name to a boolean mask over the cohort rows and to its kind. Got "
            f"{type(masks).__name__} and {type(kinds).__name__} instead. Fix: pass "
            "assignment.masks and assignment.kinds of a PartitionAssignment."
        )
    out_masks: dict[str, np.ndarray] = {}
    out_kinds: dict[str, str] = {}
    for name, mask in masks.items():
        if name not in kinds:
            raise ValueError(
                f"The 'kinds' parameter of {owner} has no kind for partition {name!r}. "
                f"Fix: add {name!r}: one of {', '.join(map(repr, PARTITION_KINDS))}."
            )
        kind = check_option(kinds[name], PARTITION_KINDS, param=f"kinds[{name!r}]", owner=owner)
        array = np.asarray(mask)
        if array.dtype != bool or array.shape != (cohort.n_images,):
            raise AlignmentError(
                f"The mask of partition {name!r} passed to {owner} must be a boolean array with "
                f"one entry per cohort row ({cohort.n_images}). Got dtype {array.dtype} and "
                f"shape {array.shape} instead. Fix: build masks over the same cohort rows, "
                "e.g. with claimladder.cohort.assign_partitions."
            )
        out_masks[str(name)] = array
        out_kinds[str(name)] = kind
    return out_masks, out_kinds


def union(masks: Mapping[str, np.ndarray], kinds: Mapping[str, str], wanted: Sequence[str],
          n: int) -> np.ndarray:
    """Rows that belong to any partition of a kind in ``wanted``."""
    out = np.zeros(n, dtype=bool)
    for name, mask in masks.items():
        if kinds[name] in wanted:
            out |= mask
    return out


def auc_from_ranks(labels: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """AUROC (Mann-Whitney) from 0/1 labels and mid-ranks of the scores.

    ``labels`` has shape ``(..., n)`` (one row per permutation); ``ranks`` has
    shape ``(n,)`` (shared scores) or the same shape as ``labels``. Rows with
    a single class give NaN.
    """
    labels = np.asarray(labels, dtype=float)
    n_pos = labels.sum(axis=-1)
    n_neg = labels.shape[-1] - n_pos
    if ranks.ndim == 1:
        rank_sum = labels @ ranks
    else:
        rank_sum = np.einsum("...i,...i->...", labels, ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC (Hanley & McNeil 1982, Radiology 143:29, eq. 2)."""
    if not (n_pos and n_neg) or math.isnan(auc):
        return math.nan
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return math.sqrt(max(var, 0.0))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm (1979) adjusted p-values (see :func:`claimladder.metrics.holm_adjust`)."""
    return holm_adjust(p_values)


def clean_values(series: pd.Series) -> np.ndarray:
    """Strings with surrounding blanks removed; missing and empty values become None."""
    out = np.empty(len(series), dtype=object)
    for i, value in enumerate(series.tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            out[i] = None
            continue
        text = str(value).strip()
        out[i] = text or None
    return out


def check_headers(headers: Any, cohort: Cohort, *, owner: str) -> pd.DataFrame | None:
    """Validate a DICOM header table aligned row by row with the cohort."""
    if headers is None:
        return None
    if not isinstance(headers, pd.DataFrame):
        raise TypeError(
            f"The 'headers' parameter of {owner} must be a pandas DataFrame with one row per "
            f"cohort row, as returned by claimladder.io.dicom_header_index. Got "
            f"{type(headers).__name__} instead."
        )
    if len(headers) != cohort.n_images:
        raise AlignmentError(
            f"The DICOM header table passed to {owner} has {len(headers)} rows but the cohort "
            f"has {cohort.n_images}. Fix: index the files in cohort order, e.g. "
            "dicom_header_index([root / p for p in cohort.table[path_column]])."
        )
    return headers.reset_index(drop=True)


def site_values(cohort: Cohort, site: Any, *, owner: str) -> np.ndarray | None:
    """Site of every cohort row: a column name, an aligned array, or the cohort's site role."""
    if site is None:
        if not cohort.has_role("site"):
            return None
        return clean_values(cohort.column("site"))
    if isinstance(site, str):
        if site not in cohort.table.columns:
            raise ValueError(
                f"The 'site' parameter of {owner} names column {site!r}, which the cohort lacks."
                f"{did_you_mean(site, map(str, cohort.table.columns))}"
            )
        return clean_values(cohort.table[site])
    values = pd.Series(list(site))
    if len(values) != cohort.n_images:
        raise AlignmentError(
            f"The 'site' parameter of {owner} has {len(values)} entries but the cohort has "
            f"{cohort.n_images} rows. Fix: pass a column name or one site per cohort row."
        )
    return clean_values(values)
