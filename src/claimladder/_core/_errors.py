"""Exceptions and warnings shared by every claimladder module.

Exceptions signal misuse of the API or unusable input; problems *in the data*
(leakage, a degenerate subgroup, a corrupt image) are reported as findings.
"""

from __future__ import annotations

__all__ = [
    "ClaimladderError",
    "CohortSchemaError",
    "AlignmentError",
    "StudySpecError",
    "ImageReadError",
    "TableReadError",
    "UsageError",
    "UndefinedMetricWarning",
    "SmallSampleWarning",
]


class ClaimladderError(Exception):
    """Base class of every error claimladder raises on purpose.

    The command-line tool turns these into a one-paragraph message and exit
    code 2; their text therefore names the file, row or column and the fix.
    """


class CohortSchemaError(ClaimladderError, ValueError):
    """The cohort table lacks a required column, has duplicated ids, or bad values."""


class AlignmentError(ClaimladderError, ValueError):
    """Predictions and cohort do not describe the same cases."""


class StudySpecError(ClaimladderError, ValueError):
    """The study specification (``study.toml``) is missing, malformed or inconsistent."""


class ImageReadError(ClaimladderError, OSError):
    """An image file is missing, corrupt, or in an encoding that cannot be decoded."""


class TableReadError(ClaimladderError, OSError):
    """A table file (CSV, Parquet) is missing or cannot be parsed."""


class UsageError(ClaimladderError, ValueError):
    """A command-line option or API argument chosen by the user has an invalid value."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on the given data (e.g. one class only); NaN is returned."""


class SmallSampleWarning(UserWarning):
    """Too few observations or clusters for the requested statistic to be reliable."""
