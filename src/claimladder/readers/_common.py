"""Pieces shared by the OR, DBM and model-versus-readers analyses."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._core import (
    ConfidenceInterval,
    Estimate,
    UndefinedMetricWarning,
    check_option,
    check_probability,
    table_to_dict,
)

__all__ = [
    "ANALYSES",
    "COVARIANCES",
    "DIFFERENCE_COLUMNS",
    "MODALITY_COLUMNS",
    "MRMCTest",
    "check_covariance",
    "f_sf",
    "interval",
    "t_quantile",
    "two_sided_p",
]

#: The three generalizations of an MRMC analysis (Hillis 2007, 2008).
ANALYSES: tuple[str, ...] = ("RRRC", "FRRC", "RRFC")
#: Estimators of the covariance matrix of the reader-modality AUROCs.
COVARIANCES: tuple[str, ...] = ("jackknife", "delong")

DIFFERENCE_COLUMNS = ["comparison", "first", "second", "estimate", "std_error", "df",
                      "statistic", "p_value", "ci_low", "ci_high"]
MODALITY_COLUMNS = ["modality", "auc", "std_error", "df", "ci_low", "ci_high"]


def check_covariance(covariance: Any, owner: str) -> str:
    return check_option(covariance, COVARIANCES, param="covariance", owner=owner)


def check_level(confidence_level: Any, owner: str) -> float:
    return check_probability(confidence_level, param="confidence_level", owner=owner)


def f_sf(f: Any, ndf: Any, ddf: Any) -> np.ndarray:
    """Upper tail of F(ndf, ddf); ``ddf = inf`` is the chi-square limit ``chi2(ndf) / ndf``."""
    f, ndf, ddf = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (f, ndf, ddf)))
    out = np.full(f.shape, np.nan)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(ddf) & (ddf > 0)
        inf = np.isposinf(ddf)
        out[finite] = stats.f.sf(f[finite], ndf[finite], ddf[finite])
        out[inf] = stats.chi2.sf(f[inf] * ndf[inf], ndf[inf])
    return out


def t_quantile(confidence_level: float, df: Any) -> np.ndarray:
    """Two-sided critical value of Student's t (the normal one when ``df`` is infinite)."""
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, stats.t.ppf(0.5 + confidence_level / 2, np.where(df > 0, df, 1)),
                        np.nan)


def two_sided_p(statistic: Any, df: Any) -> np.ndarray:
    df = np.asarray(df, dtype=np.float64)
    statistic = np.asarray(statistic, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, 2 * stats.t.sf(np.abs(statistic), np.where(df > 0, df, 1)),
                        np.nan)


def interval(estimate: Any, std_error: Any, df: Any, confidence_level: float,
             clip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    half = t_quantile(confidence_level, df) * np.asarray(std_error, dtype=np.float64)
    low, high = np.asarray(estimate) - half, np.asarray(estimate) + half
    if clip:
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    return low, high


def nan_safe_sqrt(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(x >= 0, np.sqrt(np.where(x >= 0, x, 0.0)), np.nan)


def estimate_from_row(row: pd.Series, *, confidence_level: float, method: str, n: int,
                      n_pos: int) -> Estimate:
    low, high = float(row["ci_low"]), float(row["ci_high"])
    if math.isnan(low) or math.isnan(high):
        low = high = math.nan
    return Estimate(value=float(row["estimate"]), ci=ConfidenceInterval(low=low, high=high),
                    confidence_level=confidence_level, method=method, n=n, n_pos=n_pos)


def warn_undefined(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MRMCTest:
    """One significance test of equal modality AUROCs and its intervals.

    Parameters
    ----------
    analysis : {"RRRC", "FRRC", "RRFC"}
        Random readers and random cases; fixed readers, random cases; random
        readers, fixed cases.
    method : str
        ``"or-hillis-<covariance>"``, ``"dbm-hillis"`` or ``"single-modality-contrast"``
        (model versus readers).
    f_statistic : float
        The F statistic (for FRRC in the OR method, ``chi2 / ndf`` with
        ``ddf = inf``).
    ndf, ddf : float
        Numerator and denominator degrees of freedom (``ddf`` may be
        fractional, Hillis 2007, or infinite).
    p_value : float
        ``P(F(ndf, ddf) >= f_statistic)``.
    error_term : float
        The denominator of the F statistic.
    differences : pandas.DataFrame
        One row per pair of modalities: ``comparison`` (``"second - first"``),
        ``first``, ``second``, ``estimate``, ``std_error``, ``df``,
        ``statistic`` (t or z), ``p_value``, ``ci_low``, ``ci_high``.
    modality_auc : pandas.DataFrame
        Reader-averaged AUROC of each modality with the single-modality
        interval of the same analysis: ``modality``, ``auc``, ``std_error``,
        ``df``, ``ci_low``, ``ci_high``.
    """

    analysis: str
    method: str
    f_statistic: float
    ndf: float
    ddf: float
    p_value: float
    error_term: float
    differences: pd.DataFrame
    modality_auc: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        def num(x: float) -> float | str | None:
            x = float(x)
            return None if math.isnan(x) else ("inf" if math.isinf(x) else x)

        return {
            "analysis": self.analysis,
            "method": self.method,
            "f_statistic": num(self.f_statistic),
            "ndf": num(self.ndf),
            "ddf": num(self.ddf),
            "p_value": num(self.p_value),
            "error_term": num(self.error_term),
            "differences": table_to_dict(self.differences.replace([np.inf], np.nan)),
            "modality_auc": table_to_dict(self.modality_auc.replace([np.inf], np.nan)),
        }


def difference_table(modalities: tuple[str, ...], means: np.ndarray, std_error: float,
                     df: float, confidence_level: float) -> pd.DataFrame:
    """Every pair ``second - first`` with a common standard error and df."""
    rows = []
    for a in range(len(modalities)):
        for b in range(a + 1, len(modalities)):
            est = float(means[b] - means[a])
            with np.errstate(divide="ignore", invalid="ignore"):
                stat = est / std_error if std_error > 0 else np.nan
            low, high = interval(est, std_error, df, confidence_level)
            rows.append([f"{modalities[b]} - {modalities[a]}", modalities[a], modalities[b], est,
                         std_error, df, stat, float(two_sided_p(stat, df)), float(low),
                         float(high)])
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def modality_table(modalities: tuple[str, ...], means: np.ndarray, std_errors: np.ndarray,
                   dfs: np.ndarray, confidence_level: float) -> pd.DataFrame:
    low, high = interval(means, std_errors, dfs, confidence_level, clip=True)
    return pd.DataFrame({"modality": list(modalities), "auc": np.asarray(means, dtype=float),
                         "std_error": np.asarray(std_errors, dtype=float),
                         "df": np.asarray(dfs, dtype=float), "ci_low": low, "ci_high": high},
                        columns=MODALITY_COLUMNS)
