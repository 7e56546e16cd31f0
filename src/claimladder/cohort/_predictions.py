"""Model predictions keyed by image id, and their alignment with the cohort."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._core import AlignmentError, CohortSchemaError, did_you_mean
from ..io import read_table
from ._cohort import Cohort, _listing, format_rows

__all__ = ["Predictions", "load_predictions", "align_scores"]

DEFAULT_MODEL = "model"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Predictions:
    """Scores of one or several models, keyed by image id.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``image_id``, ``model`` and the score column(s), under canonical names.
    score_columns : tuple of str
        ``("score",)`` for a binary model, or one probability column per class.
    source : str, optional
        File the predictions came from, quoted in messages.
    """

    table: pd.DataFrame
    score_columns: tuple[str, ...] = ("score",)
    source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "score_columns", tuple(self.score_columns))
        _predictions_iv(self)

    @property
    def models(self) -> tuple[str, ...]:
        """Model names in order of first appearance."""
        return tuple(dict.fromkeys(self.table["model"].astype(str)))

    def for_model(self, model: str | None = None) -> pd.DataFrame:
        """Rows of one model (the only one when ``model`` is None), indexed by image id."""
        models = self.models
        if model is None:
            if len(models) > 1:
                raise AlignmentError(
                    f"{self.source or 'predictions'}: several models are present "
                    f"({_listing(models)}). Fix: name the candidate with `candidate_model` "
                    "under [data] in study.toml."
                )
            model = models[0]
        if model not in models:
            raise AlignmentError(
                f"{self.source or 'predictions'}: no rows for model {model!r}."
                f"{did_you_mean(model, models)} Models present: {_listing(models)}."
            )
        rows = self.table[self.table["model"].astype(str) == model]
        return rows.set_index("image_id")[list(self.score_columns)]


def _predictions_iv(pred: Predictions) -> None:
    where = pred.source or "predictions"
    table = pred.table
    for col in ("image_id", "model", *pred.score_columns):
        if col not in table.columns:
            raise CohortSchemaError(f"{where}: column {col!r} is missing.")
    for col in pred.score_columns:
        scores = pd.to_numeric(table[col], errors="coerce")
        bad_type = scores.isna() & table[col].notna()
        if bad_type.any():
            raise CohortSchemaError(
                f"{where}: column {col!r} has non-numeric values "
                f"({format_rows(np.flatnonzero(bad_type))}, e.g. "
                f"{table[col][bad_type].iloc[0]!r}). Fix: write probabilities as numbers."
            )
        missing = scores.isna()
        if missing.any():
            raise CohortSchemaError(
                f"{where}: column {col!r} has {int(missing.sum())} missing (NaN) score(s) "
                f"({format_rows(np.flatnonzero(missing))}). Fix: every image needs a score; "
                "rerun inference on those images or exclude them in the cohort rules."
            )
        outside = (scores < 0) | (scores > 1)
        if outside.any():
            raise CohortSchemaError(
                f"{where}: column {col!r} must hold probabilities in [0, 1], but "
                f"{int(outside.sum())} value(s) lie outside ({format_rows(np.flatnonzero(outside))}"
                f", e.g. {float(scores[outside].iloc[0])!r}). Fix: apply the model's sigmoid or "
                "softmax before export (logits are not probabilities)."
            )
    key = table["image_id"].astype(str) + "\x00" + table["model"].astype(str)
    duplicated = key.duplicated(keep=False)
    if duplicated.any():
        raise CohortSchemaError(
            f"{where}: image_id repeats for the same model "
            f"({_listing(table['image_id'][duplicated].astype(str).unique())}; "
            f"{format_rows(np.flatnonzero(duplicated))}). Fix: one score row per image and model."
        )


def load_predictions(
    path: str | os.PathLike[str],
    *,
    image_id: str = "image_id",
    score: str | list[str] = "score",
    model: str = "model",
) -> Predictions:
    """Read predictions (CSV or Parquet) into canonical columns.

    Parameters
    ----------
    path : path-like
        Table with an image id column, score column(s) and optionally a model column.
    image_id, model : str
        Names of the id and model columns in the file; a missing model column
        means one model, named ``"model"``.
    score : str or list of str
        The binary score column, or one probability column per class.

    Returns
    -------
    Predictions
    """
    table = read_table(path, dtype={image_id: str})
    table.columns = [str(c) for c in table.columns]
    score_columns = [score] if isinstance(score, str) else list(score)
    for col in (image_id, *score_columns):
        if col not in table.columns:
            raise CohortSchemaError(
                f"{path}: column {col!r} is missing.{did_you_mean(col, table.columns)} "
                f"Columns present: {_listing(list(table.columns))}. Fix: rename it in the file, "
                "or set its name under [data.prediction_columns] in study.toml."
            )
    canonical = pd.DataFrame({"image_id": table[image_id].astype(str)})
    canonical["model"] = table[model].astype(str) if model in table.columns else DEFAULT_MODEL
    for col in score_columns:
        canonical[col] = table[col]
    return Predictions(table=canonical, score_columns=tuple(score_columns), source=str(path))


def align_scores(
    cohort: Cohort,
    predictions: Predictions,
    *,
    model: str | None = None,
    source: Cohort | None = None,
) -> np.ndarray:
    """Scores of ``model`` in the cohort's row order (binary: shape (n,); else (n, k)).

    Parameters
    ----------
    cohort : Cohort
        Rows that need a score (typically the included cohort).
    predictions : Predictions
    model : str, optional
        Candidate model name; required when several models are present.
    source : Cohort, optional
        The full cohort before exclusions: predictions of excluded images are
        allowed and ignored, ids outside ``source`` are an error. Defaults to ``cohort``.

    Raises
    ------
    AlignmentError
        When predicted ids are absent from the cohort, or cohort rows lack a prediction.
    """
    rows = predictions.for_model(model)
    cohort_ids = pd.Index(cohort.image_ids)
    known = cohort_ids if source is None else pd.Index(source.image_ids)
    unknown = rows.index.difference(known)
    if len(unknown):
        raise AlignmentError(
            f"{predictions.source or 'predictions'}: {len(unknown)} image id(s) are not in "
            f"{(source or cohort).describe_source()} ({_listing(sorted(unknown))}). Fix: make sure both "
            "files use the same image ids (check prefixes, zero padding and file extensions)."
        )
    missing = cohort_ids.difference(rows.index)
    if len(missing):
        raise AlignmentError(
            f"{cohort.describe_source()}: {len(missing)} included image(s) have no prediction in "
            f"{predictions.source or 'predictions'} ({_listing(sorted(missing))}). Fix: run the "
            "model on those images, or exclude them with a rule under [cohort] in study.toml."
        )
    values = rows.loc[cohort_ids].to_numpy(dtype=float)
    return values[:, 0] if values.shape[1] == 1 else values
