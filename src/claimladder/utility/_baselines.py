"""Baselines a claimed model must beat: prevalence, metadata only, simple image heuristics."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .._core import (
    Finding,
    RngLike,
    Rung,
    Status,
    check_option,
    check_positive_int,
    check_probability,
    did_you_mean,
    spawn,
)
from ..metrics import Comparison, compare_paired
from ..metrics._inputs import as_scores, binary_labels

__all__ = [
    "BASELINE_COLUMNS",
    "check_metadata_baseline",
    "compare_to_baselines",
    "fit_metadata_baseline",
    "heuristic_baseline",
    "prevalence_baseline",
]

#: Columns of :func:`compare_to_baselines`.
BASELINE_COLUMNS = ("baseline", "metric", "candidate_estimate", "candidate_ci_low",
                    "candidate_ci_high", "baseline_estimate", "baseline_ci_low",
                    "baseline_ci_high", "difference", "ci_low", "ci_high", "p_value", "method",
                    "confidence_level", "n", "n_clusters", "n_pos")
#: Categories seen fewer times than this in the training rows are pooled as "infrequent".
MIN_CATEGORY_COUNT = 5
_MODELS = ("logistic", "gradient_boosting")


def _mask(train_mask: Any, n: int, owner: str) -> np.ndarray:
    arr = train_mask.to_numpy() if isinstance(train_mask, (pd.Series, pd.Index)) else \
        np.asarray(train_mask)
    if arr.dtype != bool or arr.shape != (n,):
        raise ValueError(f"The 'train_mask' parameter of {owner} must be a boolean array with "
                         f"one entry per row ({n}). Got dtype {arr.dtype} and shape "
                         f"{arr.shape} instead.")
    if not arr.any():
        raise ValueError(f"The 'train_mask' parameter of {owner} selects no row; it must mark "
                         "the development rows the baseline is fitted on.")
    return arr


def _train_labels(y: Any, train: np.ndarray, pos_label: Any, owner: str) -> np.ndarray:
    """Binary labels of the training rows (other rows may be missing)."""
    arr = y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else np.asarray(y, dtype=object)
    if arr.shape != train.shape:
        raise ValueError(f"y passed to {owner} must hold one label per row ({train.size}). "
                         f"Got shape {arr.shape} instead.")
    out = binary_labels(arr[train], pos_label, owner)
    n_pos = int(out.sum())
    if n_pos == 0 or n_pos == out.size:
        raise ValueError(f"The training rows of {owner} hold a single class ({n_pos} positive "
                         f"of {out.size}); a baseline needs both. Check train_mask.")
    return out


def prevalence_baseline(y_true: Any, *, train_mask: Any, pos_label: Any = 1) -> np.ndarray:
    """The constant baseline: the development prevalence as every row's score.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels; rows outside ``train_mask`` may be missing.
    train_mask : array-like of bool, shape (n,)
        Development rows.
    pos_label : default 1
        Positive class.

    Returns
    -------
    numpy.ndarray of shape (n,)
        The development prevalence, for every row. Its AUROC is 0.5; its net
        benefit is that of treat-all below the prevalence and treat-none above.

    Examples
    --------
    >>> from claimladder.utility import prevalence_baseline
    >>> prevalence_baseline([0, 1, 1, 0, None], train_mask=[True] * 4 + [False]).tolist()
    [0.5, 0.5, 0.5, 0.5, 0.5]
    """
    owner = "prevalence_baseline"
    n = len(y_true)
    train = _mask(train_mask, n, owner)
    y = _train_labels(y_true, train, pos_label, owner)
    return np.full(n, float(y.mean()))


def heuristic_baseline(values: Any, y_true: Any, *, train_mask: Any,
                       pos_label: Any = 1) -> np.ndarray:
    """A one-feature heuristic (e.g. mean image intensity) oriented on development data.

    Parameters
    ----------
    values : array-like of shape (n,)
        The heuristic feature of every row (no missing values).
    y_true : array-like of shape (n,)
        Labels; rows outside ``train_mask`` may be missing.
    train_mask : array-like of bool, shape (n,)
        Development rows, the only ones used to choose the direction.
    pos_label : default 1
        Positive class.

    Returns
    -------
    numpy.ndarray of shape (n,)
        ``values``, negated when their AUROC on the development rows is below
        0.5, so that higher means more likely positive without looking at test labels.

    Examples
    --------
    >>> from claimladder.utility import heuristic_baseline
    >>> heuristic_baseline([5.0, 1.0, 4.0, 2.0], [0, 1, 0, 1], train_mask=[True] * 4).tolist()
    [-5.0, -1.0, -4.0, -2.0]
    """
    owner = "heuristic_baseline"
    x = as_scores(values, "values", owner)
    train = _mask(train_mask, x.size, owner)
    y = _train_labels(y_true, train, pos_label, owner)
    ranks = rankdata(x[train])
    n_pos = int(y.sum())
    auc = (ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (y.size - n_pos))
    return -x if auc < 0.5 else x.copy()


# -- metadata-only model ------------------------------------------------------------------


def _split_columns(table: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str],
                                                                         list[str]]:
    """Model frame: numbers as float (dates as days), everything else as text categories."""
    numeric, categorical, data = [], [], {}
    for name in columns:
        values = table[name]
        if pd.api.types.is_bool_dtype(values):
            data[name] = values.astype(object).where(values.notna(), "missing").astype(str)
            categorical.append(name)
        elif pd.api.types.is_numeric_dtype(values):
            data[name] = pd.to_numeric(values, errors="coerce").astype(np.float64)
            numeric.append(name)
        elif pd.api.types.is_datetime64_any_dtype(values):
            days = (values - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
            data[name] = days.astype(np.float64)
            numeric.append(name)
        else:
            text = values.astype(object)
            data[name] = text.where(text.notna(), "missing").map(str)
            categorical.append(name)
    frame = pd.DataFrame(data, index=table.index)
    for name in categorical:
        frame[name] = frame[name].to_numpy(dtype=object)
    return frame, numeric, categorical


def _pipeline(numeric: list[str], categorical: list[str], model: str, seed: int) -> Pipeline:
    transformers = []
    if numeric:
        transformers.append(("numeric", make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler()), numeric))
    if categorical:
        transformers.append(("categorical", OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=MIN_CATEGORY_COUNT,
            sparse_output=False), categorical))
    encoder = ColumnTransformer(transformers)
    if model == "logistic":
        estimator = LogisticRegression(C=1.0, max_iter=5000)
    else:
        estimator = HistGradientBoostingClassifier(early_stopping=False, random_state=seed)
    return Pipeline([("encode", encoder), ("model", estimator)])


def fit_metadata_baseline(
    table: pd.DataFrame,
    y: Any,
    *,
    columns: Sequence[str],
    train_mask: Any,
    groups: Any = None,
    model: Literal["logistic", "gradient_boosting"] = "logistic",
    n_splits: int = 5,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> np.ndarray:
    """Scores of a metadata-only model, fitted on the development rows only.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per image (the cohort table).
    y : array-like of shape (n,)
        Labels; rows outside ``train_mask`` may be missing (they are never used).
    columns : sequence of str
        Metadata columns the baseline may use (site, scanner, view, age, sex,
        priority, ...). Numeric columns (and dates, as days) are used as
        numbers; anything else is categorical.
    train_mask : array-like of bool, shape (n,)
        Development rows: the model is fitted on them alone.
    groups : array-like of shape (n,), optional
        Patient ids: the cross-fitting folds on the development rows keep a
        patient's images together.
    model : {"logistic", "gradient_boosting"}, default "logistic"
        L2-penalised logistic regression (C = 1) on the encoded columns, or
        scikit-learn's histogram gradient boosting (its defaults: 100 trees,
        learning rate 0.1; no early stopping, so no random validation split)
        when interactions between fields matter.
    n_splits : int, default 5
        Cross-fitting folds on the development rows.
    rng : int, numpy.random.Generator or None
        Seed of the fold shuffle and of gradient boosting (SPEC 7).
    pos_label : default 1
        Positive class.

    Returns
    -------
    numpy.ndarray of shape (n,)
        Predicted probability of the positive class for every row. Rows outside
        ``train_mask`` are scored by the model fitted on all development rows;
        development rows get out-of-fold scores (each from a model that did not
        see it), so that they too are honest.

    Raises
    ------
    ValueError
        Unknown columns (with "did you mean"), a ``train_mask`` that is not
        boolean or selects one class only, or unknown options.

    Notes
    -----
    Encoding, learnt on the training rows of each fit: numeric columns are
    median-imputed with a missing-value indicator, then standardised;
    categorical columns are one-hot encoded with missing values as their own
    category, categories seen fewer than :data:`MIN_CATEGORY_COUNT` times
    pooled, and categories unseen in training mapped to the pooled column (or
    to none). A baseline this strong is what a reviewer asks an image model to
    beat: if metadata alone predict the label as well, the image model may
    only have learnt them.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from claimladder.utility import fit_metadata_baseline
    >>> rng = np.random.default_rng(0)
    >>> table = pd.DataFrame({"site": rng.choice(["A", "B"], 200),
    ...                       "age": rng.normal(60, 10, 200)})
    >>> y = ((table["site"] == "B") & (rng.random(200) < 0.8)).astype(int)
    >>> scores = fit_metadata_baseline(table, y, columns=["site", "age"],
    ...                                train_mask=np.arange(200) < 150, rng=0)
    >>> scores.shape, bool(scores[table["site"] == "B"].mean() > 0.5)
    ((200,), True)
    """
    owner = "fit_metadata_baseline"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table passed to {owner} must be a pandas DataFrame. Got "
                        f"{type(table).__name__} instead.")
    model = check_option(model, _MODELS, param="model", owner=owner)
    n_splits = check_positive_int(n_splits, param="n_splits", owner=owner, minimum=2)
    columns = [str(c) for c in columns]
    if not columns:
        raise ValueError(f"The 'columns' parameter of {owner} must name at least one column.")
    present = [str(c) for c in table.columns]
    for name in columns:
        if name not in present:
            raise ValueError(f"The 'columns' parameter of {owner} names {name!r}, which the "
                             f"table lacks.{did_you_mean(name, present)} Fix: pass column names "
                             "of the cohort table.")
    n = len(table)
    train = _mask(train_mask, n, owner)
    y_train = _train_labels(y, train, pos_label, owner).astype(int)
    frame, numeric, categorical = _split_columns(table.reset_index(drop=True), columns)
    seed_folds, seed_full, *seed_fold_models = (
        int(g.integers(2**31 - 1)) for g in spawn(rng, 2 + n_splits))
    scores = np.empty(n, dtype=np.float64)
    x_train = frame.loc[train]
    with warnings.catch_warnings():
        # Constant or all-missing columns and unseen categories are expected in metadata.
        warnings.filterwarnings("ignore", category=UserWarning)
        full = _pipeline(numeric, categorical, model, seed_full).fit(x_train, y_train)
        if (~train).any():
            scores[~train] = full.predict_proba(frame.loc[~train])[:, 1]
        idx = np.flatnonzero(train)
        k = min(n_splits, int(y_train.sum()), int((1 - y_train).sum()))
        if groups is not None:
            g = (groups.to_numpy() if isinstance(groups, (pd.Series, pd.Index))
                 else np.asarray(groups, dtype=object))
            if g.shape != (n,):
                raise ValueError(f"groups passed to {owner} must hold one patient id per row "
                                 f"({n}). Got shape {g.shape} instead.")
            g_train = g[train]
            k = min(k, int(pd.unique(pd.Series(g_train, dtype=object)).size))
        if k < 2:
            scores[train] = full.predict_proba(x_train)[:, 1]
            warnings.warn(f"{owner}: too few development rows per class for cross-fitting; "
                          "development rows are scored in-sample.", UserWarning, stacklevel=2)
            return scores
        if groups is None:
            folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed_folds).split(
                x_train, y_train)
        else:
            folds = StratifiedGroupKFold(n_splits=k, shuffle=True,
                                         random_state=seed_folds).split(x_train, y_train,
                                                                        g_train)
        for (fit_rows, score_rows), seed in zip(folds, seed_fold_models):
            if np.unique(y_train[fit_rows]).size < 2:
                scores[idx[score_rows]] = float(y_train[fit_rows][0])
                continue
            fold = _pipeline(numeric, categorical, model, seed).fit(
                x_train.iloc[fit_rows], y_train[fit_rows])
            scores[idx[score_rows]] = fold.predict_proba(x_train.iloc[score_rows])[:, 1]
    return scores


# -- comparisons ------------------------------------------------------------------------


def _comparison_row(name: str, c: Comparison) -> dict[str, Any]:
    d, a, b = c.difference, c.estimate_a, c.estimate_b
    return {"baseline": name, "metric": c.metric, "candidate_estimate": a.value,
            "candidate_ci_low": a.ci.low, "candidate_ci_high": a.ci.high,
            "baseline_estimate": b.value, "baseline_ci_low": b.ci.low,
            "baseline_ci_high": b.ci.high, "difference": d.value, "ci_low": d.ci.low,
            "ci_high": d.ci.high, "p_value": c.p_value, "method": c.method,
            "confidence_level": d.confidence_level, "n": d.n, "n_clusters": d.n_clusters,
            "n_pos": d.n_pos}


def compare_to_baselines(
    y_true: Any,
    candidate: Any,
    baselines: Mapping[str, Any],
    *,
    groups: Any = None,
    metric: str = "roc_auc",
    method: Literal["delong", "bootstrap", "bca"] | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> pd.DataFrame:
    """The candidate model against each baseline on the same cases, with paired CIs.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels of the evaluation cases (a test partition).
    candidate : array-like of shape (n,)
        The candidate model's scores.
    baselines : mapping of str to array-like of shape (n,)
        Baseline name -> scores on the same cases (prevalence, metadata-only,
        image heuristics, a published model, a radiologist's confidence ...).
    groups : array-like of shape (n,), optional
        Patient ids: Obuchowski's clustered DeLong, or the bootstrap resamples patients.
    metric : str, default "roc_auc"
        Any name of :data:`claimladder.metrics.METRICS`.
    method : {"delong", "bootstrap", "bca"}, optional
        As for :func:`claimladder.metrics.compare_paired` (default paired
        DeLong for AUROC, paired bootstrap otherwise).
    n_resamples, confidence_level, pos_label
        As for :func:`claimladder.metrics.compare_paired`.
    rng : int, numpy.random.Generator or None
        One child generator per baseline (SPEC 7).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BASELINE_COLUMNS`, one row per baseline in the given
        order; ``difference`` is candidate minus baseline.

    Examples
    --------
    >>> from claimladder.utility import compare_to_baselines
    >>> y = [0, 0, 0, 1, 1, 1] * 5
    >>> model = [0.1, 0.3, 0.2, 0.8, 0.7, 0.9] * 5
    >>> t = compare_to_baselines(y, model, {"prevalence": [0.5] * 30,
    ...                                     "site": [0, 1, 0, 1, 1, 0] * 5})
    >>> t[["baseline", "difference"]].round(3).values.tolist()
    [['prevalence', 0.5], ['site', 0.333]]
    """
    owner = "compare_to_baselines"
    if not isinstance(baselines, Mapping) or not baselines:
        raise ValueError(f"The 'baselines' parameter of {owner} must be a non-empty mapping "
                         "from baseline name to scores.")
    rows = []
    for (name, scores), child in zip(baselines.items(), spawn(rng, len(baselines))):
        c = compare_paired(y_true, candidate, scores, metric=metric, groups=groups,
                           method=method, n_resamples=n_resamples,
                           confidence_level=confidence_level, rng=child, pos_label=pos_label)
        rows.append(_comparison_row(str(name), c))
    return pd.DataFrame(rows, columns=list(BASELINE_COLUMNS))


def check_metadata_baseline(
    y_true: Any,
    candidate: Any,
    metadata_scores: Any,
    *,
    min_auroc_gain: float = 0.05,
    groups: Any = None,
    columns: Sequence[str] = (),
    partition: str | None = None,
    method: Literal["delong", "bootstrap", "bca"] | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
) -> Finding:
    """Finding ``utility.metadata_baseline`` (rung 6): is the image model clearly better?

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels of the evaluation cases (a test partition).
    candidate : array-like of shape (n,)
        The image model's scores.
    metadata_scores : array-like of shape (n,)
        The metadata-only model's scores on the same cases
        (:func:`fit_metadata_baseline`, fitted on development data).
    min_auroc_gain : float, default 0.05
        The study's ``utility.min_auroc_gain_over_metadata``.
    groups : array-like of shape (n,), optional
        Patient ids.
    columns : sequence of str
        The metadata columns the baseline used (for the message and params).
    partition : str, optional
        Name of the evaluation partition (params).
    method, n_resamples, confidence_level, rng, pos_label
        As for :func:`claimladder.metrics.compare_paired` (default paired DeLong).

    Returns
    -------
    Finding
        The estimate is the AUROC gain (candidate minus metadata-only) with
        its paired interval. ``pass`` when the gain reaches ``min_auroc_gain``
        *and* its lower confidence bound is above 0 (material and not a
        chance finding); ``warn`` when the gain reaches the criterion but its
        interval includes 0 (too few cases to tell); ``fail`` when the gain is
        below the criterion -- the image model may be a shortcut that has
        learnt what the metadata say (site, scanner, view, priority) rather
        than the finding; ``not_evaluable`` when the AUROC is undefined.

    Examples
    --------
    >>> from claimladder.utility import check_metadata_baseline
    >>> y = [0, 0, 0, 1, 1, 1] * 10
    >>> model = [0.1, 0.3, 0.2, 0.8, 0.7, 0.9] * 10
    >>> f = check_metadata_baseline(y, model, [0.2, 0.6, 0.2, 0.6, 0.6, 0.2] * 10,
    ...                             columns=["site"])
    >>> f.check, f.status.value, round(f.estimate.value, 3)
    ('utility.metadata_baseline', 'pass', 0.333)
    """
    owner = "check_metadata_baseline"
    min_auroc_gain = float(min_auroc_gain)
    if not 0 <= min_auroc_gain < 1:
        raise ValueError(f"The 'min_auroc_gain' parameter of {owner} must be a number in "
                         f"[0, 1). Got {min_auroc_gain!r} instead.")
    check_probability(confidence_level, param="confidence_level", owner=owner)
    criterion = (f"AUROC gain over the metadata-only model >= {min_auroc_gain:g}, with a lower "
                 "confidence bound > 0")
    columns = [str(c) for c in columns]
    params = {"min_auroc_gain": min_auroc_gain, "columns": columns, "partition": partition,
              "n_resamples": n_resamples, "confidence_level": confidence_level}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = compare_paired(y_true, candidate, metadata_scores, metric="roc_auc", groups=groups,
                           method=method, n_resamples=n_resamples,
                           confidence_level=confidence_level, rng=rng, pos_label=pos_label)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    table = pd.DataFrame([_comparison_row("metadata", c)], columns=list(BASELINE_COLUMNS))
    gain = c.difference
    params["method"] = c.method
    params["p_value"] = c.p_value
    using = f" ({', '.join(columns)})" if columns else ""
    if not gain.is_defined:
        reason = next((str(w.message) for w in caught), "the AUROC is undefined")
        return Finding(check="utility.metadata_baseline", rung=Rung.UTILITY,
                       status=Status.NOT_EVALUABLE,
                       message=f"The comparison with the metadata-only model is not evaluable: "
                               f"{reason}", estimate=gain, criterion=criterion, table=table,
                       params=params)
    head = (f"AUROC {c.estimate_a.format()} for the image model vs {c.estimate_b.format()} for "
            f"a model of metadata alone{using}: gain {gain.format()}")
    if gain.value < min_auroc_gain:
        status = Status.FAIL
        message = (f"{head}, below {min_auroc_gain:g}. The image model is not clearly better "
                   "than metadata alone: the image model may be a shortcut.")
    elif math.isnan(gain.ci.low) or gain.ci.low <= 0:
        status = Status.WARN
        message = (f"{head}; the gain reaches {min_auroc_gain:g} but its interval includes 0, "
                   "so the image model may be a shortcut. More test cases would tell.")
    else:
        status = Status.PASS
        message = f"{head}: the image model adds information beyond the metadata."
    return Finding(check="utility.metadata_baseline", rung=Rung.UTILITY, status=status,
                   message=message, estimate=gain, criterion=criterion, table=table,
                   params=params)

