"""Dorfman-Berbaum-Metz analysis of jackknife pseudovalues, with Hillis's improvements."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import Estimate, table_to_dict
from ._auc import jackknife_auc, placements
from ._common import (
    MRMCTest,
    check_level,
    difference_table,
    estimate_from_row,
    f_sf,
    modality_table,
    nan_safe_sqrt,
    warn_undefined,
)
from ._or import select_modalities
from ._study import ReaderStudy, resolve_study

__all__ = ["DBMResult", "dbm", "pseudovalues"]

_SOURCES = ("T", "R", "C", "TR", "TC", "RC", "TRC")


def pseudovalues(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Jackknife pseudovalues ``c A - (c - 1) A_(-k)`` of the empirical AUROC.

    ``scores`` has shape ``(..., n_cases)``. For the Wilcoxon AUROC the mean of
    the pseudovalues over cases equals the AUROC exactly, so no normalization
    is needed (Hillis et al. 2008).
    """
    p = placements(scores, truth)
    c = scores.shape[-1]
    return c * p.auc[..., None] - (c - 1) * jackknife_auc(scores, truth, p)


def _mean_squares(y: np.ndarray) -> dict[str, tuple[float, float]]:
    """Three-way (T x R x C) ANOVA mean squares and df of one observation per cell."""
    t, r, c = y.shape
    g = y.mean()
    mi, mj, mk = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    mij, mik, mjk = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    ss = {
        "T": r * c * ((mi - g) ** 2).sum(),
        "R": t * c * ((mj - g) ** 2).sum(),
        "C": t * r * ((mk - g) ** 2).sum(),
        "TR": c * ((mij - mi[:, None] - mj[None, :] + g) ** 2).sum(),
        "TC": r * ((mik - mi[:, None] - mk[None, :] + g) ** 2).sum(),
        "RC": t * ((mjk - mj[:, None] - mk[None, :] + g) ** 2).sum(),
        "TRC": ((y - mij[:, :, None] - mik[:, None, :] - mjk[None, :, :] + mi[:, None, None]
                 + mj[None, :, None] + mk[None, None, :] - g) ** 2).sum(),
    }
    df = {"T": t - 1, "R": r - 1, "C": c - 1, "TR": (t - 1) * (r - 1), "TC": (t - 1) * (c - 1),
          "RC": (r - 1) * (c - 1), "TRC": (t - 1) * (r - 1) * (c - 1)}
    out = {}
    for key in _SOURCES:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[key] = (float(ss[key]), float(df[key]),
                        float(ss[key] / df[key]) if df[key] > 0 else np.nan)
    return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DBMResult:
    """Dorfman-Berbaum-Metz-Hillis comparison of modalities (see :func:`dbm`).

    Parameters
    ----------
    modalities : tuple of str
        The compared modalities; differences are later minus earlier.
    confidence_level : float
        Level of every interval.
    difference : Estimate
        Reader-averaged AUROC of ``modalities[1]`` minus ``modalities[0]``,
        RRRC interval.
    f_statistic, ddf, p_value : float
        The RRRC global test.
    rrrc, frrc, rrfc : MRMCTest
        The three analyses.
    anova : pandas.DataFrame
        ``source, ss, df, ms`` of the modality x reader x case ANOVA of the
        pseudovalues (sources T, R, C, TR, TC, RC, TRC).
    variance_components : pandas.DataFrame
        ``component, estimate``: DBM variances ``var_reader``, ``var_case``,
        ``var_modality_reader``, ``var_modality_case``, ``var_reader_case``,
        ``var_error`` (the last is ``Var(T*R*C) + Var(error)``).
    pseudovalues : numpy.ndarray of shape (t, r, c)
        The jackknife pseudovalues.
    n_readers, n_cases, n_pos : int
        Design size.
    """

    modalities: tuple[str, ...]
    confidence_level: float
    difference: Estimate
    f_statistic: float
    ddf: float
    p_value: float
    rrrc: MRMCTest
    frrc: MRMCTest
    rrfc: MRMCTest
    anova: pd.DataFrame
    variance_components: pd.DataFrame
    pseudovalues: np.ndarray
    n_readers: int
    n_cases: int
    n_pos: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (without the pseudovalues)."""
        return {
            "modalities": list(self.modalities),
            "confidence_level": self.confidence_level,
            "difference": self.difference.to_dict(),
            "tests": [t.to_dict() for t in (self.rrrc, self.frrc, self.rrfc)],
            "anova": table_to_dict(self.anova),
            "variance_components": table_to_dict(self.variance_components),
            "n_readers": self.n_readers,
            "n_cases": self.n_cases,
            "n_pos": self.n_pos,
        }


def _single_modality(y: np.ndarray, analysis: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-modality standard error and df from the reader x case ANOVA of its pseudovalues."""
    t, r, c = y.shape
    se, df = np.empty(t), np.empty(t)
    for i in range(t):
        yi = y[i]
        g = yi.mean()
        mj, mk = yi.mean(axis=1), yi.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ms_r = c * ((mj - g) ** 2).sum() / (r - 1) if r > 1 else np.nan
            ms_c = r * ((mk - g) ** 2).sum() / (c - 1)
            ms_rc = (((yi - mj[:, None] - mk[None, :] + g) ** 2).sum() / ((r - 1) * (c - 1))
                     if r > 1 else np.nan)
            if analysis == "RRRC":
                den = ms_r + max(ms_c - ms_rc, 0.0)
                se[i] = float(nan_safe_sqrt(den / (r * c)))
                df[i] = den ** 2 * (r - 1) / ms_r ** 2 if ms_r > 0 else (
                    np.inf if den > 0 else np.nan)
            elif analysis == "FRRC":
                se[i] = float(nan_safe_sqrt(ms_c / (r * c)))
                df[i] = c - 1
            else:
                se[i] = float(nan_safe_sqrt(ms_r / (r * c)))
                df[i] = r - 1 if r > 1 else np.nan
    return se, df


def dbm(
    readings: ReaderStudy | pd.DataFrame | str | os.PathLike[str],
    truth: Any = None,
    *,
    modalities: Sequence[str] | None = ("unaided", "aided"),
    confidence_level: float = 0.95,
) -> DBMResult:
    """Compare modalities with the Dorfman-Berbaum-Metz pseudovalue ANOVA (Hillis's version).

    Parameters
    ----------
    readings : ReaderStudy, pandas.DataFrame or path
        A fully crossed reader study, or its long table.
    truth : optional
        Case truth when ``readings`` is a table.
    modalities : sequence of str or None, default ("unaided", "aided")
        Modalities to compare (None: all of them).
    confidence_level : float, default 0.95
        Level of every interval.

    Returns
    -------
    DBMResult
        ``difference``, ``f_statistic``, ``ddf``, ``p_value`` (RRRC), the three
        analyses, the pseudovalue ANOVA and the DBM variance components.

    Notes
    -----
    Pseudovalues ``Y_ijk = c A_ij - (c - 1) A_ij(-k)`` (``c`` cases, ``A_ij(-k)``
    the AUROC without case ``k``) are analysed as a modality x reader x case
    ANOVA with one observation per cell (Dorfman, Berbaum & Metz 1992). With
    Hillis's (2008) modifications:

    * RRRC: ``F = MS(T) / [MS(TR) + max(MS(TC) - MS(TRC), 0)]`` on
      ``ddf_H = [MS(TR) + max(MS(TC) - MS(TRC), 0)]^2 / [MS(TR)^2 / ((t-1)(r-1))]``;
    * FRRC: ``F = MS(T) / MS(TC)`` on ``(t-1)(c-1)`` df;
    * RRFC: ``F = MS(T) / MS(TR)`` on ``(t-1)(r-1)`` df;

    a difference of reader-averaged AUROCs has standard error
    ``sqrt(2 E / (r c))`` with ``E`` the error term. Hillis et al. (2005)
    showed that these equal the OR analysis with jackknife covariances:
    ``MS_DBM = c MS_OR`` for T and TR and ``MS(TC) - MS(TRC) = c r (Cov2 -
    Cov3)``, so the RRRC and RRFC F statistics, ddf and p-values coincide
    (the FRRC F statistics coincide when ``Cov2 >= Cov3``; only the ddf differ).

    References
    ----------
    Dorfman DD, Berbaum KS, Metz CE. Receiver operating characteristic rating
    analysis: generalization to the population of readers and patients with the
    jackknife method. Invest Radiol 1992;27:723-731.
    Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS. Stat Med 2005;24:1579-1607.
    Hillis SL, Berbaum KS, Metz CE. Acad Radiol 2008;15:647-661.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, dbm, or_hillis
    >>> rng = np.random.default_rng(0)
    >>> truth = np.repeat([0, 1], 20)
    >>> scores = truth * 1.2 + rng.normal(size=(2, 4, 40))
    >>> study = ReaderStudy(case_ids=tuple(f"c{k}" for k in range(40)),
    ...                     reader_ids=("R1", "R2", "R3", "R4"), modalities=("unaided", "aided"),
    ...                     truth=truth, scores=scores)
    >>> round(dbm(study).f_statistic, 6) == round(or_hillis(study).f_statistic, 6)
    True
    """
    owner = "dbm"
    confidence_level = check_level(confidence_level, owner)
    study = select_modalities(resolve_study(readings, truth, owner=owner), modalities, owner)
    t, r, c = study.scores.shape
    y = pseudovalues(study.scores, study.truth)
    if not np.isfinite(y).all():
        warn_undefined("dbm: pseudovalues are undefined (a class has a single case); every "
                       "result is NaN.")
    if r < 2:
        warn_undefined("dbm: the random-reader analyses need at least two readers; their "
                       "results are NaN.")
    ms = _mean_squares(y)
    m = {k: v[2] for k, v in ms.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        den_rrrc = m["TR"] + max(m["TC"] - m["TRC"], 0.0)
        ddf_rrrc = (den_rrrc ** 2 * (t - 1) * (r - 1) / m["TR"] ** 2 if m["TR"] > 0
                    else (np.inf if den_rrrc > 0 else np.nan))
    specs = {
        "RRRC": (den_rrrc, ddf_rrrc),
        "FRRC": (m["TC"], float((t - 1) * (c - 1))),
        "RRFC": (m["TR"], float((t - 1) * (r - 1)) if r > 1 else np.nan),
    }
    means = y.mean(axis=(1, 2))
    tests = {}
    for name, (den, ddf) in specs.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            f = m["T"] / den if den > 0 else np.nan
        se = float(nan_safe_sqrt(2 * den / (r * c)))
        se_i, df_i = _single_modality(y, name)
        tests[name] = MRMCTest(
            analysis=name, method="dbm-hillis", f_statistic=float(f), ndf=float(t - 1),
            ddf=float(ddf), p_value=float(f_sf(f, t - 1, ddf)), error_term=float(den),
            differences=difference_table(study.modalities, means, se, float(ddf),
                                         confidence_level),
            modality_auc=modality_table(study.modalities, means, se_i, df_i, confidence_level),
        )
    anova = pd.DataFrame([(k, *ms[k]) for k in _SOURCES], columns=["source", "ss", "df", "ms"])
    with np.errstate(divide="ignore", invalid="ignore"):
        comps = {
            "var_reader": (m["R"] - m["TR"] - m["RC"] + m["TRC"]) / (t * c),
            "var_case": (m["C"] - m["TC"] - m["RC"] + m["TRC"]) / (t * r),
            "var_modality_reader": (m["TR"] - m["TRC"]) / c,
            "var_modality_case": (m["TC"] - m["TRC"]) / r,
            "var_reader_case": (m["RC"] - m["TRC"]) / t,
            "var_error": m["TRC"],
        }
    components = pd.DataFrame({"component": list(comps), "estimate": list(comps.values())})
    rrrc = tests["RRRC"]
    difference = estimate_from_row(rrrc.differences.iloc[0], confidence_level=confidence_level,
                                   method="dbm-hillis-rrrc", n=c, n_pos=study.n_pos)
    y.flags.writeable = False
    return DBMResult(
        modalities=study.modalities, confidence_level=confidence_level, difference=difference,
        f_statistic=rrrc.f_statistic, ddf=rrrc.ddf, p_value=rrrc.p_value, rrrc=rrrc,
        frrc=tests["FRRC"], rrfc=tests["RRFC"], anova=anova, variance_components=components,
        pseudovalues=y, n_readers=r, n_cases=c, n_pos=study.n_pos,
    )
