"""The embedded demo study: synthetic chest radiographs with planted failure modes.

:func:`make_demo_study` writes a complete study (DICOM images, ``cohort.csv``,
``study.toml`` and, for tests, ``planted_truth.csv``) in which every check of
the ladder has something real to find -- or, with ``clean=True``, nothing.
:func:`make_demo_predictions` trains a small shortcut-prone scikit-learn model
on the development images and writes ``predictions.csv``.
"""

from ._demo import DEFAULT_N_PATIENTS, PROTOCOL_CHANGE_DATE, DemoStudy, make_demo_study
from ._model import DEMO_MODEL_NAME, DemoModel, fit_demo_model, make_demo_predictions

__all__ = [
    "DEFAULT_N_PATIENTS",
    "DEMO_MODEL_NAME",
    "PROTOCOL_CHANGE_DATE",
    "DemoModel",
    "DemoStudy",
    "fit_demo_model",
    "make_demo_predictions",
    "make_demo_study",
]
