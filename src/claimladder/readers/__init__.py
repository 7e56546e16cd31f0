"""Reader studies: MRMC comparison of modalities (Obuchowski-Rockette-Hillis, DBM), model
versus readers, decision impact and reading time, Roe & Metz simulation.

A reader study is a fully crossed table -- every reader reads every case in every
modality -- loaded by :func:`load_readings` into a :class:`ReaderStudy`. The
AUROC of each reader and modality is the empirical (trapezoidal) area on the
rating scale; :func:`or_hillis` compares reader-averaged AUROCs with the
Obuchowski-Rockette model and Hillis's denominator degrees of freedom for
random readers and cases (RRRC), fixed readers (FRRC) and fixed cases (RRFC);
:func:`dbm` is the pseudovalue ANOVA that equals it with jackknife
covariances. ``*_finding`` helpers turn results into rung-6 findings
(``readers.*`` checks).
"""

from ._common import ANALYSES, COVARIANCES, MRMCTest
from ._dbm import DBMResult, dbm, pseudovalues
from ._decisions import DecisionImpact, decision_changes
from ._findings import (
    decision_impact_finding,
    model_vs_readers_finding,
    mrmc_finding,
    reading_time_finding,
)
from ._model import ModelVsReadersResult, model_vs_readers
from ._or import ORResult, VarianceComponents, or_from_estimates, or_hillis
from ._performance import reader_performance
from ._simulate import RoeMetzParameters, roe_metz_1997, simulate_power, simulate_roe_metz
from ._study import (
    OPTIONAL_COLUMNS,
    READING_COLUMNS,
    ReaderStudy,
    ReaderStudyError,
    load_readings,
)

__all__ = [
    "ANALYSES",
    "COVARIANCES",
    "OPTIONAL_COLUMNS",
    "READING_COLUMNS",
    "DBMResult",
    "DecisionImpact",
    "MRMCTest",
    "ModelVsReadersResult",
    "ORResult",
    "ReaderStudy",
    "ReaderStudyError",
    "RoeMetzParameters",
    "VarianceComponents",
    "dbm",
    "decision_changes",
    "decision_impact_finding",
    "load_readings",
    "model_vs_readers",
    "model_vs_readers_finding",
    "mrmc_finding",
    "or_from_estimates",
    "or_hillis",
    "pseudovalues",
    "reader_performance",
    "reading_time_finding",
    "roe_metz_1997",
    "simulate_power",
    "simulate_roe_metz",
]
