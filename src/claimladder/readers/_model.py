"""A standalone model against the average reader: single-modality OR analysis of differences."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import AlignmentError, ConfidenceInterval, Estimate, table_to_dict
from ._auc import auc_and_covariance
from ._common import (
    DIFFERENCE_COLUMNS,
    MODALITY_COLUMNS,
    MRMCTest,
    check_covariance,
    check_level,
    estimate_from_row,
    f_sf,
    interval,
    nan_safe_sqrt,
    two_sided_p,
    warn_undefined,
)
from ._study import ReaderStudy, ReaderStudyError, resolve_study

__all__ = ["ModelVsReadersResult", "align_case_scores", "model_vs_readers"]


def align_case_scores(values: Any, study: ReaderStudy, *, param: str, owner: str) -> np.ndarray:
    """One finite number per case of ``study`` (mapping/Series keyed by case id, or an array)."""
    if isinstance(values, pd.Series):
        values = {str(k): v for k, v in values.items()}
    if isinstance(values, Mapping):
        keyed = {str(k): v for k, v in values.items()}
        absent = [c for c in study.case_ids if c not in keyed]
        if absent:
            shown = ", ".join(repr(c) for c in absent[:5])
            raise AlignmentError(
                f"{owner}: '{param}' has no value for {len(absent)} case(s) of the reader study, "
                f"e.g. {shown}. Give one value per case id."
            )
        out = np.array([keyed[c] for c in study.case_ids], dtype=np.float64)
    else:
        out = np.asarray(values, dtype=np.float64)
        if out.shape != (study.n_cases,):
            raise AlignmentError(
                f"{owner}: '{param}' has shape {out.shape}; an array must hold one value per "
                f"case in the order of study.case_ids ({study.n_cases},). Pass a mapping "
                "case_id -> value to align by id instead."
            )
    if not np.isfinite(out).all():
        raise ReaderStudyError(
            f"{owner}: {int((~np.isfinite(out)).sum())} value(s) of '{param}' are NaN or "
            "infinite; every case needs a finite value."
        )
    return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ModelVsReadersResult:
    """A standalone model compared with the readers of one modality (see :func:`model_vs_readers`).

    Parameters
    ----------
    modality : str
        The readers' modality (usually ``"unaided"``).
    covariance : str
        ``"jackknife"`` or ``"delong"``.
    confidence_level : float
        Level of every interval.
    difference : Estimate
        Model AUROC minus the reader-averaged AUROC, RRRC interval.
    t_statistic, ddf, p_value : float
        RRRC test of no difference (two-sided; ``F = t**2`` on 1 and ``ddf``).
    model_auc : Estimate
        The model's AUROC with a Wald interval from the same covariance
        estimator.
    reader_auc : Estimate
        Reader-averaged AUROC with its single-modality RRRC interval.
    rrrc, frrc, rrfc : MRMCTest
        The three analyses of the difference (one comparison, ``model -
        readers``); ``modality_auc`` holds the readers' average.
    per_reader : pandas.DataFrame
        ``reader_id, reader_auc, model_auc, estimate (model - reader),
        std_error, statistic (z), p_value, ci_low, ci_high``.
    n_readers, n_cases, n_pos : int
        Design size.
    """

    modality: str
    covariance: str
    confidence_level: float
    difference: Estimate
    t_statistic: float
    ddf: float
    p_value: float
    model_auc: Estimate
    reader_auc: Estimate
    rrrc: MRMCTest
    frrc: MRMCTest
    rrfc: MRMCTest
    per_reader: pd.DataFrame
    n_readers: int
    n_cases: int
    n_pos: int

    def to_frame(self) -> pd.DataFrame:
        """The three analyses of the difference in one long table."""
        parts = []
        for test in (self.rrrc, self.frrc, self.rrfc):
            part = test.differences.copy()
            part.insert(0, "analysis", test.analysis)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {
            "modality": self.modality,
            "covariance": self.covariance,
            "confidence_level": self.confidence_level,
            "difference": self.difference.to_dict(),
            "model_auc": self.model_auc.to_dict(),
            "reader_auc": self.reader_auc.to_dict(),
            "tests": [t.to_dict() for t in (self.rrrc, self.frrc, self.rrfc)],
            "per_reader": table_to_dict(self.per_reader),
            "n_readers": self.n_readers,
            "n_cases": self.n_cases,
            "n_pos": self.n_pos,
        }


def model_vs_readers(
    readings: ReaderStudy | pd.DataFrame | str | os.PathLike[str],
    truth: Any = None,
    *,
    model_scores: Any,
    modality: str = "unaided",
    covariance: Literal["jackknife", "delong"] = "jackknife",
    confidence_level: float = 0.95,
    model_name: str = "model",
) -> ModelVsReadersResult:
    """Compare a standalone model's AUROC with the readers' average AUROC on the same cases.

    Parameters
    ----------
    readings : ReaderStudy, pandas.DataFrame or path
        A fully crossed reader study, or its long table.
    truth : optional
        Case truth when ``readings`` is a table.
    model_scores : mapping, pandas.Series or array-like
        The model's score per case: keyed by case id, or an array in the
        order of ``study.case_ids``.
    modality : str, default "unaided"
        The readers' modality to compare against (usually without the aid).
    covariance : {"jackknife", "delong"}, default "jackknife"
        Estimator of the covariance of the AUROCs (readers and model jointly).
    confidence_level : float, default 0.95
        Level of every interval.
    model_name : str, default "model"
        Label of the model in tables.

    Returns
    -------
    ModelVsReadersResult
        ``difference`` (model minus reader average), its RRRC test and the
        FRRC and RRFC variants, both AUROCs and per-reader contrasts.

    Raises
    ------
    AlignmentError
        ``model_scores`` misses cases of the study or has the wrong length.
    ReaderStudyError
        Unknown ``modality`` or non-finite model scores.

    Notes
    -----
    The model is one more "reader" whose AUROC ``A_0`` has no reader
    variability: the readers are a random sample, the model is fixed. The
    analysis is the single-modality OR analysis (Hillis 2007) of the reader
    contrasts ``D_j = A_0 - A_j`` -- Chakraborty's "1T-RRRC" comparison of
    stand-alone CAD with radiologists. With ``MS(R)`` the reader mean square of
    the ``D_j`` (equal to that of the ``A_j``) and ``Cov2`` the average
    covariance of ``D_j, D_j'`` (``j != j'``) obtained from the joint covariance
    matrix of ``(A_1, ..., A_r, A_0)`` by the contrast, the mean ``D`` has

    * RRRC: standard error ``sqrt([MS(R) + r max(Cov2, 0)] / r)`` on
      ``ddf = [MS(R) + r max(Cov2, 0)]^2 / [MS(R)^2 / (r - 1)]`` (t test);
    * FRRC: ``sqrt([Var + (r - 1) max(Cov2, 0)] / r)`` (z test), ``Var`` the
      mean variance of the ``D_j``;
    * RRFC: ``sqrt(MS(R) / r)`` on ``r - 1`` df (one-sample t test of the
      ``D_j``).

    This is algebraically the two-modality OR-Hillis analysis in which the
    second modality's rating of every reader is the model's score (the tests
    check the identity), and it keeps the correlation between the model's and
    the readers' AUROCs that comes from reading the same cases.

    References
    ----------
    Hillis SL. A comparison of denominator degrees of freedom methods for
    multiple observer ROC analysis. Stat Med 2007;26:596-619.
    Chakraborty DP. Observer Performance Methods for Diagnostic Imaging, ch. 22
    (Comparing standalone CAD to radiologists). CRC Press 2017.
    Kooi T, Gubern-Merida A, Mordang JJ, et al. A comparison between a deep
    convolutional neural network and radiologists for classifying regions of
    interest in mammography. IWDM 2016 (the random-reader fixed-case variant).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.readers import ReaderStudy, model_vs_readers
    >>> rng = np.random.default_rng(1)
    >>> truth = np.repeat([0, 1], 25)
    >>> latent = 1.3 * truth + rng.normal(size=50)
    >>> study = ReaderStudy(case_ids=tuple(f"c{k}" for k in range(50)),
    ...                     reader_ids=("A", "B", "C", "D", "E"), modalities=("unaided",),
    ...                     truth=truth, scores=latent + rng.normal(scale=0.8, size=(1, 5, 50)))
    >>> res = model_vs_readers(study, model_scores=latent + rng.normal(scale=0.3, size=50))
    >>> round(res.model_auc.value, 3), round(res.reader_auc.value, 3)
    (0.838, 0.76)
    >>> round(res.difference.value, 3), round(res.p_value, 4)
    (0.078, 0.0117)
    """
    owner = "model_vs_readers"
    covariance = check_covariance(covariance, owner)
    confidence_level = check_level(confidence_level, owner)
    study = resolve_study(readings, truth, owner=owner)
    i = study.modality_index(str(modality), owner=owner)
    model = align_case_scores(model_scores, study, param="model_scores", owner=owner)
    r, c = study.n_readers, study.n_cases
    rows = np.vstack([study.scores[i], model[None, :]])  # (r + 1, c)
    aucs, cov, _ = auc_and_covariance(rows, study.truth, covariance)
    reader_aucs, model_auc = aucs[:r], float(aucs[r])
    contrast = np.hstack([-np.eye(r), np.ones((r, 1))])  # D_j = A_0 - A_j
    d = contrast @ aucs
    cov_d = contrast @ cov @ contrast.T
    var_d = float(np.mean(np.diag(cov_d)))
    off = ~np.eye(r, dtype=bool)
    cov2_d = float(cov_d[off].mean()) if r > 1 else 0.0
    ms_r = float(((d - d.mean()) ** 2).sum() / (r - 1)) if r > 1 else np.nan
    d_mean = float(d.mean())
    if r < 2:
        warn_undefined("model_vs_readers: the random-reader analyses need at least two readers; "
                       "their results are NaN.")
    if not np.isfinite(var_d):
        warn_undefined("model_vs_readers: the AUROC covariance is undefined (a class has a "
                       "single case); every interval is NaN.")
    c2 = max(cov2_d, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        den_rrrc = ms_r + r * c2
        ddf_rrrc = den_rrrc ** 2 * (r - 1) / ms_r ** 2 if ms_r > 0 else (
            np.inf if den_rrrc > 0 else np.nan)
    specs = {
        "RRRC": (float(nan_safe_sqrt(den_rrrc / r)), float(ddf_rrrc)),
        "FRRC": (float(nan_safe_sqrt((var_d + (r - 1) * c2) / r)), np.inf),
        "RRFC": (float(nan_safe_sqrt(ms_r / r)), float(r - 1) if r > 1 else np.nan),
    }
    # Reader-average AUROC, single-modality intervals of the same three analyses.
    cov_r = cov[:r, :r]
    var_r = float(np.mean(np.diag(cov_r)))
    cov2_r = max(float(cov_r[off].mean()), 0.0) if r > 1 else 0.0
    ms_r_readers = float(((reader_aucs - reader_aucs.mean()) ** 2).sum() / (r - 1)) if r > 1 \
        else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        den_readers = ms_r_readers + r * cov2_r
        df_readers = den_readers ** 2 * (r - 1) / ms_r_readers ** 2 if ms_r_readers > 0 else (
            np.inf if den_readers > 0 else np.nan)
    reader_specs = {
        "RRRC": (float(nan_safe_sqrt(den_readers / r)), float(df_readers)),
        "FRRC": (float(nan_safe_sqrt((var_r + (r - 1) * cov2_r) / r)), np.inf),
        "RRFC": (float(nan_safe_sqrt(ms_r_readers / r)), float(r - 1) if r > 1 else np.nan),
    }
    label = f"{model_name} - readers ({study.modalities[i]})"
    tests = {}
    for name, (se, df) in specs.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = d_mean / se if se > 0 else np.nan
        low, high = interval(d_mean, se, df, confidence_level)
        diff = pd.DataFrame([[label, f"readers ({study.modalities[i]})", model_name, d_mean, se,
                              df, stat, float(two_sided_p(stat, df)), float(low), float(high)]],
                            columns=DIFFERENCE_COLUMNS)
        se_r, df_r = reader_specs[name]
        r_low, r_high = interval(reader_aucs.mean(), se_r, df_r, confidence_level, clip=True)
        readers_row = pd.DataFrame([[study.modalities[i], float(reader_aucs.mean()), se_r, df_r,
                                     float(r_low), float(r_high)]], columns=MODALITY_COLUMNS)
        f = stat ** 2
        tests[name] = MRMCTest(analysis=name, method="single-modality-contrast", f_statistic=f,
                               ndf=1.0, ddf=df, p_value=float(f_sf(f, 1, df)),
                               error_term=se ** 2, differences=diff, modality_auc=readers_row)
    rrrc = tests["RRRC"]
    difference = estimate_from_row(rrrc.differences.iloc[0], confidence_level=confidence_level,
                                   method=f"or-hillis-{covariance}-model-vs-readers-rrrc", n=c,
                                   n_pos=study.n_pos)
    reader_row = rrrc.modality_auc.iloc[0].rename({"auc": "estimate"})
    reader_auc = estimate_from_row(reader_row, confidence_level=confidence_level,
                                   method=f"or-hillis-{covariance}-single-modality-rrrc", n=c,
                                   n_pos=study.n_pos)
    se_model = float(nan_safe_sqrt(cov[r, r]))
    m_low, m_high = interval(model_auc, se_model, np.inf, confidence_level, clip=True)
    model_est = Estimate(value=model_auc,
                         ci=ConfidenceInterval(low=float(m_low), high=float(m_high))
                         if np.isfinite(m_low) else ConfidenceInterval(low=np.nan, high=np.nan),
                         confidence_level=confidence_level, method=f"wald-{covariance}", n=c,
                         n_pos=study.n_pos)
    se_j = nan_safe_sqrt(np.diag(cov_d))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se_j > 0, d / np.where(se_j > 0, se_j, 1), np.nan)
    low, high = interval(d, se_j, np.inf, confidence_level)
    per_reader = pd.DataFrame({
        "reader_id": list(study.reader_ids), "reader_auc": reader_aucs,
        "model_auc": np.full(r, model_auc), "estimate": d, "std_error": se_j, "statistic": z,
        "p_value": two_sided_p(z, np.inf), "ci_low": low, "ci_high": high,
    })
    return ModelVsReadersResult(
        modality=study.modalities[i], covariance=covariance, confidence_level=confidence_level,
        difference=difference, t_statistic=float(rrrc.differences["statistic"].iloc[0]),
        ddf=rrrc.ddf, p_value=rrrc.p_value, model_auc=model_est, reader_auc=reader_auc,
        rrrc=rrrc, frrc=tests["FRRC"], rrfc=tests["RRFC"], per_reader=per_reader,
        n_readers=r, n_cases=c, n_pos=study.n_pos,
    )
