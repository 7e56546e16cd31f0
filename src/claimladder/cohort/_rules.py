"""Row filters written as pandas expressions (``"age >= 18 and view in ['PA', 'AP']"``)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._core import StudySpecError, did_you_mean

__all__ = ["evaluate_rule"]

_UNDEFINED_NAME = re.compile(r"name '([^']+)' is not defined")


def evaluate_rule(table: pd.DataFrame, rule: str, *, context: str) -> np.ndarray:
    """Evaluate ``rule`` on every row; a missing value makes the rule false.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows to evaluate, columns under the user's names.
    rule : str
        A pandas expression (``DataFrame.eval`` syntax; backquote names with spaces).
    context : str
        Where the rule was declared (e.g. ``"[cohort] include"``), quoted in errors.

    Returns
    -------
    numpy.ndarray of bool, shape (n_rows,)

    Raises
    ------
    StudySpecError
        The rule names an unknown column, has a syntax error, or is not a boolean test.

    Examples
    --------
    >>> import pandas as pd
    >>> evaluate_rule(pd.DataFrame({"age": [10, 40, None]}), "age >= 18", context="demo")
    array([False,  True, False])
    """
    if not isinstance(rule, str) or not rule.strip():
        raise StudySpecError(f"{context}: a rule must be a non-empty string. Got {rule!r}.")
    try:
        result = table.eval(rule, engine="python")
    except Exception as exc:  # pandas raises many types; each is a user error here
        message = str(exc)
        match = _UNDEFINED_NAME.search(message)
        if match:
            name = match.group(1)
            raise StudySpecError(
                f"{context}: the rule {rule!r} uses {name!r}, which is not a column of the "
                f"cohort.{did_you_mean(name, [str(c) for c in table.columns])} Fix: use a column "
                "name from the cohort file (quote strings: site == 'A')."
            ) from None
        raise StudySpecError(
            f"{context}: the rule {rule!r} cannot be evaluated ({type(exc).__name__}: {message}). "
            "Fix: write a pandas expression such as \"age >= 18 and view in ['PA', 'AP']\"."
        ) from None
    if np.ndim(result) == 0 or len(result) != len(table):
        raise StudySpecError(
            f"{context}: the rule {rule!r} does not give one true/false value per row. "
            "Fix: write a comparison, e.g. \"site == 'A'\"."
        )
    series = pd.Series(result, index=table.index)
    if not (pd.api.types.is_bool_dtype(series) or series.dropna().isin([True, False]).all()):
        raise StudySpecError(
            f"{context}: the rule {rule!r} gives values that are not true/false. "
            "Fix: write a comparison, e.g. \"age >= 18\"."
        )
    return series.fillna(False).astype(bool).to_numpy()
