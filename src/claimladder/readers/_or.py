"""Obuchowski-Rockette analysis with Hillis's denominator degrees of freedom."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import Estimate, check_option, table_to_dict
from ._auc import auc_and_covariance
from ._common import (
    MRMCTest,
    check_covariance,
    check_level,
    difference_table,
    estimate_from_row,
    f_sf,
    interval,
    modality_table,
    nan_safe_sqrt,
    two_sided_p,
    warn_undefined,
)
from ._study import ReaderStudy, ReaderStudyError, resolve_study

__all__ = ["ORResult", "VarianceComponents", "or_from_estimates", "or_hillis"]


@dataclass(frozen=True, slots=True)
class _ORCore:
    """OR quantities of one or a batch of studies (leading batch axes)."""

    auc: np.ndarray  # (..., t, r)
    cov: np.ndarray  # (..., t, r, t, r)
    var: np.ndarray
    cov1: np.ndarray
    cov2: np.ndarray
    cov3: np.ndarray
    ms_t: np.ndarray
    ms_r: np.ndarray
    ms_tr: np.ndarray

    @property
    def t(self) -> int:
        return self.auc.shape[-2]

    @property
    def r(self) -> int:
        return self.auc.shape[-1]

    def rrrc(self) -> tuple[np.ndarray, np.ndarray]:
        """Hillis (2007) error term ``MS(T*R) + r max(Cov2 - Cov3, 0)`` and ``ddf_H``."""
        t, r = self.t, self.r
        with np.errstate(divide="ignore", invalid="ignore"):
            den = self.ms_tr + r * np.maximum(self.cov2 - self.cov3, 0.0)
            ddf = np.where(self.ms_tr > 0,
                           den ** 2 * (t - 1) * (r - 1) / np.where(self.ms_tr > 0,
                                                                   self.ms_tr ** 2, 1.0),
                           np.where(den > 0, np.inf, np.nan))
        return den, ddf

    def frrc(self) -> np.ndarray:
        """``Var - Cov1 + (r - 1) max(Cov2 - Cov3, 0)`` (the second term is 0 for one reader)."""
        extra = (self.r - 1) * np.maximum(self.cov2 - self.cov3, 0.0) if self.r > 1 else 0.0
        return self.var - self.cov1 + extra

    def rrfc(self) -> tuple[np.ndarray, float]:
        return self.ms_tr, float((self.t - 1) * (self.r - 1))

    def f_tests(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """``analysis -> (F, ddf, p, error term)`` for the three analyses."""
        out = {}
        ndf = self.t - 1
        den, ddf = self.rrrc()
        out["RRRC"] = (den, ddf)
        out["FRRC"] = (self.frrc(), np.full(np.shape(den), np.inf))
        den_rrfc, ddf_rrfc = self.rrfc()
        out["RRFC"] = (den_rrfc, np.full(np.shape(den), ddf_rrfc if ddf_rrfc > 0 else np.nan))
        result = {}
        for name, (den, ddf) in out.items():
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(den > 0, self.ms_t / np.where(den > 0, den, 1.0), np.nan)
            result[name] = (f, ddf, f_sf(f, ndf, ddf), den)
        return result


def _mean_masked(cov: np.ndarray, mask: np.ndarray) -> np.ndarray:
    k = int(mask.sum())
    if k == 0:
        return np.full(cov.shape[:-4], np.nan)
    return (cov * mask).sum(axis=(-4, -3, -2, -1)) / k


def or_core(auc: np.ndarray, cov: np.ndarray) -> _ORCore:
    """Variance components and mean squares (Obuchowski & Rockette 1995; Hillis 2007).

    ``auc`` has shape ``(..., t, r)`` and ``cov`` ``(..., t * r, t * r)`` with
    the reader index varying fastest. ``Var`` averages the variances, ``Cov1``
    the covariances of the same reader in different modalities, ``Cov2`` of
    different readers in the same modality and ``Cov3`` of different readers
    in different modalities.
    """
    t, r = auc.shape[-2:]
    cov4 = cov.reshape(cov.shape[:-2] + (t, r, t, r))
    same_t = np.eye(t, dtype=bool)[:, None, :, None]
    same_r = np.eye(r, dtype=bool)[None, :, None, :]
    var = _mean_masked(cov4, same_t & same_r)
    cov1 = _mean_masked(cov4, ~same_t & same_r)
    cov2 = _mean_masked(cov4, same_t & ~same_r)
    cov3 = _mean_masked(cov4, ~same_t & ~same_r)
    mi = auc.mean(axis=-1)
    mj = auc.mean(axis=-2)
    grand = auc.mean(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ms_t = r * ((mi - grand[..., None]) ** 2).sum(axis=-1) / (t - 1) if t > 1 else (
            np.full(grand.shape, np.nan))
        ms_r = t * ((mj - grand[..., None]) ** 2).sum(axis=-1) / (r - 1) if r > 1 else (
            np.full(grand.shape, np.nan))
        resid = auc - mi[..., :, None] - mj[..., None, :] + grand[..., None, None]
        ms_tr = (resid ** 2).sum(axis=(-2, -1)) / ((t - 1) * (r - 1)) if t > 1 and r > 1 else (
            np.full(grand.shape, np.nan))
    return _ORCore(auc=auc, cov=cov4, var=var, cov1=cov1, cov2=cov2, cov3=cov3, ms_t=ms_t,
                   ms_r=ms_r, ms_tr=ms_tr)


@dataclass(frozen=True, slots=True, kw_only=True)
class VarianceComponents:
    """Obuchowski-Rockette error covariances and reader variance components.

    Parameters
    ----------
    var_error, cov1, cov2, cov3 : float
        Error variance and covariances: same reader in different modalities
        (Cov1), different readers in the same modality (Cov2), different
        readers and modalities (Cov3).
    var_reader, var_modality_reader : float
        ANOVA estimates of the reader and modality-by-reader variances
        (can be negative).
    ms_t, ms_r, ms_tr : float
        Modality, reader and modality-by-reader mean squares of the AUROCs.
    """

    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_reader: float
    var_modality_reader: float
    ms_t: float
    ms_r: float
    ms_tr: float

    def to_frame(self) -> pd.DataFrame:
        """Long table ``component, estimate, correlation`` (correlations Cov / Var)."""
        names = ["var_reader", "var_modality_reader", "cov1", "cov2", "cov3", "var_error",
                 "ms_t", "ms_r", "ms_tr"]
        values = [getattr(self, n) for n in names]
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = [getattr(self, n) / self.var_error if n in ("cov1", "cov2", "cov3")
                    else math.nan for n in names]
        return pd.DataFrame({"component": names, "estimate": values, "correlation": corr})


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ORResult:
    """Obuchowski-Rockette-Hillis comparison of modalities (see :func:`or_hillis`).

    Parameters
    ----------
    modalities : tuple of str
        The compared modalities; differences are later minus earlier.
    covariance : str
        ``"jackknife"`` or ``"delong"``.
    confidence_level : float
        Level of every interval.
    difference : Estimate
        Reader-averaged AUROC of ``modalities[1]`` minus ``modalities[0]``
        with the RRRC interval (Hillis ddf).
    f_statistic, ddf, p_value : float
        The RRRC global test (numerator df ``len(modalities) - 1``).
    rrrc, frrc, rrfc : MRMCTest
        The three analyses.
    variance_components : VarianceComponents
        OR error covariances, reader variance components and mean squares.
    auc : pandas.DataFrame
        ``reader_id, modality, auc``: every reader-modality AUROC.
    per_reader : pandas.DataFrame
        Fixed-reader comparison within each reader: ``reader_id, comparison,
        auc_first, auc_second, estimate, std_error, statistic (z), p_value,
        ci_low, ci_high, var_error, cov1``.
    covariance_matrix : numpy.ndarray of shape (t * r, t * r)
        Covariance of the reader-modality AUROCs (reader index fastest).
    n_readers, n_cases, n_pos : int
        Design size.
    """

    modalities: tuple[str, ...]
    covariance: str
    confidence_level: float
    difference: Estimate
    f_statistic: float
    ddf: float
    p_value: float
    rrrc: MRMCTest
    frrc: MRMCTest
    rrfc: MRMCTest
    variance_components: VarianceComponents
    auc: pd.DataFrame
    per_reader: pd.DataFrame
    covariance_matrix: np.ndarray
    n_readers: int
    n_cases: int
    n_pos: int

    def test(self, analysis: str) -> MRMCTest:
        """The test of one analysis, ``"RRRC"``, ``"FRRC"`` or ``"RRFC"``."""
        analysis = check_option(analysis, ("RRRC", "FRRC", "RRFC"), param="analysis",
                                owner="ORResult.test")
        return {"RRRC": self.rrrc, "FRRC": self.frrc, "RRFC": self.rrfc}[analysis]

    def to_frame(self) -> pd.DataFrame:
        """Every analysis and comparison in one long table (``analysis`` first)."""
        parts = []
        for test in (self.rrrc, self.frrc, self.rrfc):
            part = test.differences.copy()
            part.insert(0, "analysis", test.analysis)
            part["f_statistic"] = test.f_statistic
            part["ddf"] = test.ddf
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {
            "modalities": list(self.modalities),
            "covariance": self.covariance,
            "confidence_level": self.confidence_level,
            "difference": self.difference.to_dict(),
            "tests": [t.to_dict() for t in (self.rrrc, self.frrc, self.rrfc)],
            "variance_components": table_to_dict(self.variance_components.to_frame()),
            "auc": table_to_dict(self.auc),
            "per_reader": table_to_dict(self.per_reader),
            "n_readers": self.n_readers,
            "n_cases": self.n_cases,
            "n_pos": self.n_pos,
        }


def _single_modality(core: _ORCore, analysis: str) -> tuple[np.ndarray, np.ndarray]:
    """Standard error and df of each modality's reader-averaged AUROC (Hillis 2007, sec. 4)."""
    t, r = core.t, core.r
    diag = np.einsum("ijij->ij", core.cov)  # (t, r)
    var_i = diag.mean(axis=1)
    if r > 1:
        within = np.einsum("ijik->ijk", core.cov)  # (t, r, r)
        off = ~np.eye(r, dtype=bool)
        cov2_i = (within * off).sum(axis=(1, 2)) / off.sum()
        ms_r_i = ((core.auc - core.auc.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / (r - 1)
    else:
        cov2_i = np.zeros(t)
        ms_r_i = np.full(t, np.nan)
    c2 = np.maximum(cov2_i, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if analysis == "RRRC":
            den = ms_r_i + r * c2
            se = nan_safe_sqrt(den / r)
            df = np.where(ms_r_i > 0, den ** 2 * (r - 1) / np.where(ms_r_i > 0, ms_r_i ** 2, 1),
                          np.where(den > 0, np.inf, np.nan))
        elif analysis == "FRRC":
            se = nan_safe_sqrt((var_i + (r - 1) * c2) / r)
            df = np.full(t, np.inf)
        else:
            se = nan_safe_sqrt(ms_r_i / r)
            df = np.full(t, float(r - 1) if r > 1 else np.nan)
    return se, df


def _per_reader(core: _ORCore, modalities: tuple[str, ...], reader_ids: tuple[str, ...],
                confidence_level: float) -> pd.DataFrame:
    """Fixed-reader z tests within each reader: ``SE = sqrt(2 (Var_j - Cov1_j))``."""
    t, r = core.t, core.r
    diag = np.einsum("ijij->ij", core.cov)  # (t, r)
    var_j = diag.mean(axis=0)
    if t > 1:
        same_reader = np.einsum("ijkj->jik", core.cov)  # (r, t, t)
        off = ~np.eye(t, dtype=bool)
        cov1_j = (same_reader * off).sum(axis=(1, 2)) / off.sum()
    else:
        cov1_j = np.full(r, np.nan)
    se = nan_safe_sqrt(2 * (var_j - cov1_j))
    rows = []
    for a in range(t):
        for b in range(a + 1, t):
            est = core.auc[b] - core.auc[a]
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(se > 0, est / np.where(se > 0, se, 1), np.nan)
            p = two_sided_p(z, np.inf)
            low, high = interval(est, se, np.inf, confidence_level)
            for j in range(r):
                rows.append([reader_ids[j], f"{modalities[b]} - {modalities[a]}",
                             core.auc[a, j], core.auc[b, j], est[j], se[j], z[j], p[j], low[j],
                             high[j], var_j[j], cov1_j[j]])
    return pd.DataFrame(rows, columns=["reader_id", "comparison", "auc_first", "auc_second",
                                       "estimate", "std_error", "statistic", "p_value",
                                       "ci_low", "ci_high", "var_error", "cov1"])


def _tests(core: _ORCore, modalities: tuple[str, ...], confidence_level: float,
           method: str) -> dict[str, MRMCTest]:
    means = core.auc.mean(axis=-1)
    out = {}
    for name, (f, ddf, p, den) in core.f_tests().items():
        se = float(nan_safe_sqrt(2 * den / core.r))
        ddf = float(ddf)
        se_i, df_i = _single_modality(core, name)
        out[name] = MRMCTest(
            analysis=name, method=method, f_statistic=float(f), ndf=float(core.t - 1), ddf=ddf,
            p_value=float(p), error_term=float(den),
            differences=difference_table(modalities, means, se, ddf, confidence_level),
            modality_auc=modality_table(modalities, means, se_i, df_i, confidence_level),
        )
    return out


def _components(core: _ORCore) -> VarianceComponents:
    t = core.t
    var_tr = core.ms_tr - core.var + core.cov1 + core.cov2 - core.cov3
    var_r = (core.ms_r - core.var - (t - 1) * core.cov1 + core.cov2 + (t - 1) * core.cov3
             - var_tr) / t
    return VarianceComponents(
        var_error=float(core.var), cov1=float(core.cov1), cov2=float(core.cov2),
        cov3=float(core.cov3), var_reader=float(var_r), var_modality_reader=float(var_tr),
        ms_t=float(core.ms_t), ms_r=float(core.ms_r), ms_tr=float(core.ms_tr),
    )


def select_modalities(study: ReaderStudy, modalities: Sequence[str] | None, owner: str,
                      minimum: int = 2) -> ReaderStudy:
    if modalities is None:
        modalities = study.modalities
    if isinstance(modalities, str):
        raise ReaderStudyError(
            f"{owner}: 'modalities' must be a sequence of modality names such as "
            f"('unaided', 'aided'), not the string {modalities!r}."
        )
    available = list(study.modalities)
    study = study.select(modalities, owner=owner)
    if study.n_modalities < minimum:
        raise ReaderStudyError(
            f"{owner}: comparing modalities needs at least {minimum}; got "
            f"{list(study.modalities)}. The study has {available}."
        )
    return study


def or_hillis(
    readings: ReaderStudy | pd.DataFrame | str | os.PathLike[str],
    truth: Any = None,
    *,
    modalities: Sequence[str] | None = ("unaided", "aided"),
    covariance: Literal["jackknife", "delong"] = "jackknife",
    confidence_level: float = 0.95,
) -> ORResult:
    """Compare reader-averaged AUROCs of modalities with the Obuchowski-Rockette-Hillis method.

    Parameters
    ----------
    readings : ReaderStudy, pandas.DataFrame or path
        A fully crossed reader study, or its long table (see
        :func:`load_readings`).
    truth : optional
        Case truth when ``readings`` is a table.
    modalities : sequence of str or None, default ("unaided", "aided")
        Modalities to compare, in order; differences are later minus
        earlier. None compares all modalities of the study.
    covariance : {"jackknife", "delong"}, default "jackknife"
        Estimator of the covariance matrix of the reader-modality AUROCs:
        the case jackknife (``(c - 1)/c`` times the sum of cross-products of
        the leave-one-case-out AUROCs, i.e. ``(c - 1)^2 / c`` times their sample
        covariance; Hillis et al. 2005) or DeLong's structural components.
    confidence_level : float, default 0.95
        Level of every interval.

    Returns
    -------
    ORResult
        ``difference`` (RRRC), ``f_statistic``, ``ddf``, ``p_value`` and the
        three analyses (RRRC, FRRC, RRFC), variance components, AUROCs and
        per-reader comparisons.

    Raises
    ------
    ReaderStudyError
        Unknown or fewer than two modalities, or an invalid study table.
    ValueError
        Unknown ``covariance`` or a ``confidence_level`` outside (0, 1).

    Warns
    -----
    UndefinedMetricWarning
        With one reader the random-reader analyses are undefined (NaN).

    Notes
    -----
    With ``theta_ij`` the empirical (trapezoidal) AUROC of reader ``j`` in
    modality ``i`` (``t`` modalities, ``r`` readers), the OR error covariances
    ``Var, Cov1, Cov2, Cov3`` are averages of the covariance matrix entries
    (see :class:`VarianceComponents`), and the mean squares are those of the
    two-way modality x reader ANOVA of the AUROCs. Then (Hillis 2007, 2008):

    * RRRC: ``F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)]`` on ``t - 1`` and
      ``ddf_H = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(t-1)(r-1)]}``
      degrees of freedom; a difference of reader-averaged AUROCs has standard
      error ``sqrt(2/r [MS(T*R) + r max(Cov2 - Cov3, 0)])`` and a t interval
      on ``ddf_H``.
    * FRRC: ``chi2 = (t - 1) MS(T) / [Var - Cov1 + (r-1) max(Cov2 - Cov3, 0)]``
      reported as ``F = chi2 / (t - 1)`` with infinite ``ddf``; z intervals.
      ``per_reader`` holds the single-reader z tests with standard error
      ``sqrt(2 (Var_j - Cov1_j))``.
    * RRFC: ``F = MS(T) / MS(T*R)`` on ``(t-1)(r-1)`` df (for two modalities the
      paired t test of the reader AUROCs).

    Single-modality intervals (``modality_auc`` of each test) use
    ``sqrt([MS(R)_i + r max(Cov2_i, 0)] / r)`` with Hillis's df (RRRC),
    ``sqrt([Var_i + (r - 1) max(Cov2_i, 0)] / r)`` (FRRC) and
    ``sqrt(MS(R)_i / r)`` on ``r - 1`` df (RRFC), clipped to [0, 1]. These are
    the formulas of the OR-DBM MRMC software (version 2.51) and of RJafroc and
    MRMCaov. Starting from the per-reader AUROCs and covariance estimates those
    packages publish for the Van Dyke et al. (1993) data, the tests reproduce
    every statistic of their three analyses (:func:`or_from_estimates`); the
    covariance estimators are checked against independent implementations.
    With the jackknife covariance the RRRC and RRFC results equal the
    DBM analysis of :func:`dbm` (Hillis et al. 2005).

    References
    ----------
    Obuchowski NA, Rockette HE. Hypothesis testing of diagnostic accuracy for
    multiple readers and multiple tests: an ANOVA approach with dependent
    observations. Commun Stat Simul Comput 1995;24:285-308.
    Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS. A comparison of the
    Dorfman-Berbaum-Metz and Obuchowski-Rockette methods for receiver operating
    characteristic (ROC) data. Stat Med 2005;24:1579-1607.
    Hillis SL. A comparison of denominator degrees of freedom methods for
    multiple observer ROC analysis. Stat Med 2007;26:596-619.
    Hillis SL, Berbaum KS, Metz CE. Recent developments in the
    Dorfman-Berbaum-Metz procedure for multireader ROC study analysis. Acad
    Radiol 2008;15:647-661.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, or_hillis
    >>> rng = np.random.default_rng(0)
    >>> truth = np.repeat([0, 1], 20)
    >>> latent = truth * 1.2 + rng.normal(size=40)
    >>> noise = rng.normal(scale=0.7, size=(2, 4, 40))
    >>> scores = latent + noise + np.array([0.0, 0.4])[:, None, None] * truth
    >>> study = ReaderStudy(case_ids=tuple(f"c{k}" for k in range(40)),
    ...                     reader_ids=("R1", "R2", "R3", "R4"), modalities=("unaided", "aided"),
    ...                     truth=truth, scores=scores)
    >>> result = or_hillis(study)
    >>> round(result.difference.value, 3), round(result.f_statistic, 2), round(result.ddf, 1)
    (0.048, 3.58, 3.2)
    """
    owner = "or_hillis"
    covariance = check_covariance(covariance, owner)
    confidence_level = check_level(confidence_level, owner)
    study = select_modalities(resolve_study(readings, truth, owner=owner), modalities, owner)
    t, r, c = study.scores.shape
    aucs, cov, _ = auc_and_covariance(study.scores.reshape(t * r, c), study.truth, covariance)
    return or_from_estimates(aucs.reshape(t, r), cov, modalities=study.modalities,
                             reader_ids=study.reader_ids, covariance=covariance,
                             confidence_level=confidence_level, n_cases=c, n_pos=study.n_pos)


def or_from_estimates(
    auc: np.ndarray,
    covariance_matrix: np.ndarray,
    *,
    modalities: Sequence[str],
    reader_ids: Sequence[str],
    covariance: str,
    confidence_level: float,
    n_cases: int,
    n_pos: int,
) -> ORResult:
    """The OR-Hillis analyses from reader-modality AUROCs and their covariance matrix.

    The second half of :func:`or_hillis`, separated so that an analysis can
    start from published estimates: ``auc`` has shape ``(t, r)`` and
    ``covariance_matrix`` ``(t * r, t * r)`` with the reader index fastest.
    """
    auc = np.asarray(auc, dtype=float)
    t, r = auc.shape
    modalities, reader_ids = tuple(modalities), tuple(reader_ids)
    core = or_core(auc, np.asarray(covariance_matrix, dtype=float))
    if r < 2:
        warn_undefined("or_hillis: the random-reader analyses (RRRC, RRFC) need at least two "
                       "readers; their results are NaN.")
    if not np.isfinite(core.var):
        warn_undefined("or_hillis: the AUROC covariance is undefined (a class has a single "
                       "case); every interval is NaN.")
    elif r > 1 and not core.rrrc()[0] > 0:
        warn_undefined("or_hillis: the RRRC error term is zero (the AUROCs vary neither between "
                       "readers nor between case samples); the RRRC test is undefined (NaN).")
    method = f"or-hillis-{covariance}"
    tests = _tests(core, modalities, confidence_level, method)
    rrrc = tests["RRRC"]
    first_row = rrrc.differences.iloc[0]
    difference = estimate_from_row(first_row, confidence_level=confidence_level,
                                   method=f"{method}-rrrc", n=n_cases, n_pos=n_pos)
    auc_table = pd.DataFrame({
        "reader_id": np.tile(np.asarray(reader_ids, dtype=object), t),
        "modality": np.repeat(np.asarray(modalities, dtype=object), r),
        "auc": core.auc.reshape(-1),
    })
    return ORResult(
        modalities=modalities, covariance=covariance, confidence_level=confidence_level,
        difference=difference, f_statistic=rrrc.f_statistic, ddf=rrrc.ddf,
        p_value=rrrc.p_value, rrrc=rrrc, frrc=tests["FRRC"], rrfc=tests["RRFC"],
        variance_components=_components(core), auc=auc_table,
        per_reader=_per_reader(core, modalities, reader_ids, confidence_level),
        covariance_matrix=np.asarray(covariance_matrix, dtype=float), n_readers=r,
        n_cases=n_cases, n_pos=n_pos,
    )
