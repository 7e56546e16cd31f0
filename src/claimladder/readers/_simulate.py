"""Roe & Metz (1997) simulation of MRMC rating data, and simulated power of OR-Hillis."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._core import (
    ConfidenceInterval,
    Estimate,
    RngLike,
    check_option,
    check_positive_int,
    check_probability,
    check_rng,
    spawn,
)
from ._auc import auc_and_covariance
from ._common import ANALYSES, check_covariance
from ._or import or_core
from ._study import ReaderStudy

__all__ = ["RoeMetzParameters", "roe_metz_1997", "simulate_power", "simulate_roe_metz"]

_RM_MU = {0.702: 0.75, 0.855: 1.5, 0.962: 2.5}
_RM_HIGH_READER = {0.702: 0.011, 0.855: 0.03, 0.962: 0.056}
_RM_CASE = {"high": (0.3, 0.3, 0.2, 0.2), "low": (0.1, 0.1, 0.2, 0.6)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RoeMetzParameters:
    """Parameters of the Roe & Metz (1997) model for two modalities.

    The latent rating of case ``k`` (truth ``s`` = 0 or 1) by reader ``j`` in
    modality ``i`` is

    ``X = s (mu + delta [i = 2]) + R_js + TR_ijs + C_k + TC_ik + RC_jk + E_ijk``

    with independent zero-mean normal effects of variances ``var_reader``,
    ``var_modality_reader`` (reader effects drawn separately for negative and
    positive cases, so that readers differ in accuracy), ``var_case``,
    ``var_modality_case``, ``var_reader_case`` and ``var_error``. Roe & Metz
    chose the four case-level variances to sum to 1, so that each reader's
    ROC curve is binormal with unit slope and AUROC ``Phi(d / sqrt(2))``.

    Parameters
    ----------
    mu : float
        Separation of positive from negative cases in the first modality.
    delta : float, default 0.0
        Additional separation in the second modality (0: null hypothesis).
    var_reader, var_modality_reader, var_case, var_modality_case, var_reader_case, var_error : float
        Variance components, each >= 0.
    """

    mu: float
    delta: float = 0.0
    var_reader: float
    var_modality_reader: float
    var_case: float
    var_modality_case: float
    var_reader_case: float
    var_error: float

    def __post_init__(self) -> None:
        for name in ("mu", "delta"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"The {name!r} parameter of RoeMetzParameters must be finite. "
                                 f"Got {getattr(self, name)!r} instead.")
        for name in ("var_reader", "var_modality_reader", "var_case", "var_modality_case",
                     "var_reader_case", "var_error"):
            value = getattr(self, name)
            if isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"The {name!r} parameter of RoeMetzParameters must be a "
                                 f"finite variance >= 0. Got {value!r} instead.")

    @property
    def auc(self) -> tuple[float, float]:
        """Population AUROC of the typical reader in each modality, ``Phi(d / sqrt(2))``."""
        from scipy.stats import norm

        scale = math.sqrt(2 * (self.var_case + self.var_modality_case + self.var_reader_case
                               + self.var_error))
        return (float(norm.cdf(self.mu / scale)),
                float(norm.cdf((self.mu + self.delta) / scale)))


def roe_metz_1997(auc: float, *, reader_variability: Literal["low", "high"],
                  case_correlation: Literal["low", "high"], delta: float = 0.0
                  ) -> RoeMetzParameters:
    """One of the twelve variance structures of Roe & Metz (1997, Table 1).

    Parameters
    ----------
    auc : {0.702, 0.855, 0.962}
        Population AUROC; ``mu`` = 0.75, 1.5 and 2.5 respectively.
    reader_variability : {"low", "high"}
        ``var_reader = var_modality_reader`` = 0.0055 (low); 0.011, 0.03 or
        0.056 (high, for the three AUROCs).
    case_correlation : {"low", "high"}
        ``(var_case, var_modality_case, var_reader_case, var_error)`` =
        (0.1, 0.1, 0.2, 0.6) (low) or (0.3, 0.3, 0.2, 0.2) (high).
    delta : float, default 0.0
        Modality effect added to ``mu`` in the second modality.

    Returns
    -------
    RoeMetzParameters

    Notes
    -----
    Values as transcribed in RJafroc (``RoeMetzVarStr``) and, for the first
    line (AUROC 0.702: ``mu`` 0.75, variances 0.0055, 0.0055, 0.3, 0.3, 0.2,
    0.2), in the MRMCaov documentation of ``RMH_to_OR``.

    References
    ----------
    Roe CA, Metz CE. Dorfman-Berbaum-Metz method for statistical analysis of
    multireader, multimodality receiver operating characteristic data:
    validation with computer simulation. Acad Radiol 1997;4:298-303.

    Examples
    --------
    >>> from claimladder.readers import roe_metz_1997
    >>> p = roe_metz_1997(0.855, reader_variability="high", case_correlation="low")
    >>> p.mu, p.var_reader, p.var_error, round(p.auc[0], 3)
    (1.5, 0.03, 0.6, 0.856)
    """
    owner = "roe_metz_1997"
    if auc not in _RM_MU:
        raise ValueError(f"The 'auc' parameter of {owner} must be one of 0.702, 0.855, 0.962 "
                         f"(the AUROCs of Roe & Metz 1997). Got {auc!r} instead.")
    reader_variability = check_option(reader_variability, ("low", "high"),
                                      param="reader_variability", owner=owner)
    case_correlation = check_option(case_correlation, ("low", "high"),
                                    param="case_correlation", owner=owner)
    var_r = 0.0055 if reader_variability == "low" else _RM_HIGH_READER[auc]
    var_c, var_tc, var_rc, var_e = _RM_CASE[case_correlation]
    return RoeMetzParameters(mu=_RM_MU[auc], delta=float(delta), var_reader=var_r,
                             var_modality_reader=var_r, var_case=var_c, var_modality_case=var_tc,
                             var_reader_case=var_rc, var_error=var_e)


def _simulate_scores(p: RoeMetzParameters, n_studies: int, n_readers: int, truth: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Latent ratings, shape ``(n_studies, 2, n_readers, n_cases)``."""
    s, r, c = n_studies, n_readers, truth.size
    y = truth.astype(np.intp)
    g_reader, g_case, g_error = spawn(rng, 3)
    reader = g_reader.standard_normal((s, 2, r)) * math.sqrt(p.var_reader)  # per truth state
    modality_reader = g_reader.standard_normal((s, 2, r, 2)) * math.sqrt(p.var_modality_reader)
    case = g_case.standard_normal((s, c)) * math.sqrt(p.var_case)
    modality_case = g_case.standard_normal((s, 2, c)) * math.sqrt(p.var_modality_case)
    reader_case = g_case.standard_normal((s, r, c)) * math.sqrt(p.var_reader_case)
    error = g_error.standard_normal((s, 2, r, c)) * math.sqrt(p.var_error)
    shift = np.array([p.mu, p.mu + p.delta])[:, None, None] * truth[None, None, :]
    return (shift[None] + reader[:, y, :].transpose(0, 2, 1)[:, None]
            + modality_reader[..., y] + case[:, None, None, :] + modality_case[:, :, None, :]
            + reader_case[:, None] + error)


def _design(n_readers: int, n_normal: int, n_abnormal: int, owner: str) -> np.ndarray:
    check_positive_int(n_readers, param="n_readers", owner=owner)
    check_positive_int(n_normal, param="n_normal", owner=owner, minimum=2)
    check_positive_int(n_abnormal, param="n_abnormal", owner=owner, minimum=2)
    return np.repeat(np.array([0, 1], dtype=np.int8), [n_normal, n_abnormal])


def simulate_roe_metz(
    parameters: RoeMetzParameters,
    *,
    n_readers: int,
    n_normal: int,
    n_abnormal: int,
    modalities: Sequence[str] = ("unaided", "aided"),
    rng: RngLike = None,
) -> ReaderStudy:
    """Simulate one fully crossed two-modality reader study from the Roe & Metz model.

    Parameters
    ----------
    parameters : RoeMetzParameters
        Model parameters (see :func:`roe_metz_1997` for the published sets).
    n_readers : int
        Number of readers.
    n_normal, n_abnormal : int
        Numbers of negative and positive cases (each >= 2).
    modalities : sequence of two str, default ("unaided", "aided")
        Names of the two modalities; the second gets ``parameters.delta``.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7); reader, case and error effects come from
        separate child generators.

    Returns
    -------
    ReaderStudy
        Continuous latent ratings; cases ``"case0000"``..., negatives first;
        readers ``"reader01"``...

    Examples
    --------
    >>> from claimladder.readers import roe_metz_1997, simulate_roe_metz
    >>> p = roe_metz_1997(0.855, reader_variability="low", case_correlation="high", delta=0.5)
    >>> study = simulate_roe_metz(p, n_readers=4, n_normal=30, n_abnormal=20, rng=0)
    >>> study.scores.shape, study.n_pos
    ((2, 4, 50), 20)
    """
    owner = "simulate_roe_metz"
    truth = _design(n_readers, n_normal, n_abnormal, owner)
    modalities = tuple(str(m) for m in modalities)
    if len(modalities) != 2:
        raise ValueError(f"The 'modalities' parameter of {owner} must name two modalities. "
                         f"Got {list(modalities)} instead.")
    x = _simulate_scores(parameters, 1, n_readers, truth, check_rng(rng))[0]
    width = max(4, len(str(truth.size)))
    return ReaderStudy(case_ids=tuple(f"case{k:0{width}d}" for k in range(truth.size)),
                       reader_ids=tuple(f"reader{j + 1:02d}" for j in range(n_readers)),
                       modalities=modalities, truth=truth, scores=x)


def simulate_power(
    parameters: RoeMetzParameters,
    *,
    n_readers: int,
    n_normal: int,
    n_abnormal: int,
    n_studies: int = 1000,
    alpha: float = 0.05,
    analysis: Literal["RRRC", "FRRC", "RRFC"] = "RRRC",
    covariance: Literal["jackknife", "delong"] = "jackknife",
    batch_size: int = 250,
    rng: RngLike = None,
) -> Estimate:
    """Rejection rate of the OR-Hillis test on simulated Roe & Metz studies.

    With ``parameters.delta == 0`` this is the type I error rate, otherwise the
    power of the design.

    Parameters
    ----------
    parameters : RoeMetzParameters
        Simulation model.
    n_readers, n_normal, n_abnormal : int
        Design of each simulated study.
    n_studies : int, default 1000
        Number of simulated studies.
    alpha : float, default 0.05
        Significance level of the test.
    analysis : {"RRRC", "FRRC", "RRFC"}, default "RRRC"
        Which OR-Hillis test is applied.
    covariance : {"jackknife", "delong"}, default "jackknife"
        Covariance estimator of the test.
    batch_size : int, default 250
        Studies simulated and analysed per vectorized batch (memory knob).
    rng : int, numpy.random.Generator or None
        Seed or generator; one child generator per batch (SPEC 7).

    Returns
    -------
    Estimate
        Rejection rate with a Wilson interval at 95 %; ``n`` is ``n_studies``.

    Notes
    -----
    Every batch is simulated as one array ``(batch, 2, r, c)``; AUROCs,
    jackknife (or DeLong) covariances and the OR-Hillis statistics are then
    computed for the whole batch by the same code as :func:`or_hillis`.
    Studies with an undefined statistic (e.g. ``MS(T*R) = 0`` and no case
    covariance) count as not rejected.

    Examples
    --------
    >>> from claimladder.readers import roe_metz_1997, simulate_power
    >>> p = roe_metz_1997(0.702, reader_variability="low", case_correlation="low", delta=0.75)
    >>> est = simulate_power(p, n_readers=5, n_normal=50, n_abnormal=50, n_studies=200, rng=0)
    >>> est.value > 0.5, est.method
    (True, 'simulation-wilson')
    """
    owner = "simulate_power"
    truth = _design(n_readers, n_normal, n_abnormal, owner)
    n_studies = check_positive_int(n_studies, param="n_studies", owner=owner)
    batch_size = check_positive_int(batch_size, param="batch_size", owner=owner)
    alpha = check_probability(alpha, param="alpha", owner=owner)
    analysis = check_option(analysis, ANALYSES, param="analysis", owner=owner)
    covariance = check_covariance(covariance, owner)
    n_batches = -(-n_studies // batch_size)
    rejected = 0
    for b, child in enumerate(spawn(rng, n_batches)):
        size = min(batch_size, n_studies - b * batch_size)
        x = _simulate_scores(parameters, size, n_readers, truth, child)
        aucs, cov, _ = auc_and_covariance(x.reshape(size, 2 * n_readers, truth.size), truth,
                                          covariance)
        core = or_core(aucs.reshape(size, 2, n_readers), cov)
        _, _, p, _ = core.f_tests()[analysis]
        rejected += int(np.sum(np.nan_to_num(p, nan=1.0) < alpha))
    rate = rejected / n_studies
    low, high = _wilson(rejected, n_studies, 0.95)
    return Estimate(value=rate, ci=ConfidenceInterval(low=low, high=high), confidence_level=0.95,
                    method="simulation-wilson", n=n_studies)


def _wilson(k: int, n: int, level: float) -> tuple[float, float]:
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)
