"""Out-of-distribution flags: score-based (max probability, entropy) and Mahalanobis on features.

A detector is fitted on development data; its threshold is the ``quantile``
(e.g. 95th percentile) of the development OOD scores, so by construction
about ``1 - quantile`` of development cases are flagged, and a site whose flag
rate is far above that differs from development. Higher scores mean more
out-of-distribution for every method.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.covariance import OAS, EmpiricalCovariance, LedoitWolf

from .._core import RngLike, check_option, check_probability, spawn
from ..metrics import METRICS, grouped_metric
from ..metrics._engine import Statistic
from ..metrics._inputs import as_1d, as_scores, check_lengths, clusters
from ..splits import FitRecord
from ._inputs import OVERALL, check_partition, n_patients, probability_matrix, subgroup_codes
from ._resample import (
    TABLE_COLUMNS,
    Part,
    bootstrap_options,
    long_table,
    make_parts,
    ratio,
    resample,
    sum_map,
)

__all__ = ["OOD_METHODS", "OODDetector", "fit_ood_detector", "ood_flags", "ood_scores",
           "ood_summary"]

OOD_METHODS = ("mahalanobis", "max_probability", "entropy")
SHRINKAGE = ("ledoit-wolf", "oas", "empirical")


def ood_scores(y_prob: Any, *, method: Literal["max_probability", "entropy"] = "max_probability"
               ) -> np.ndarray:
    """Score-based OOD scores of predicted probabilities (higher = more unusual).

    Parameters
    ----------
    y_prob : array-like of shape (n,) or (n, n_classes)
        Positive-class probabilities (binary) or class probability matrices.
    method : {"max_probability", "entropy"}, default "max_probability"
        ``1 - max_k p_k`` (Hendrycks & Gimpel 2017) or the Shannon entropy
        ``-sum_k p_k ln p_k`` in nats.

    Returns
    -------
    numpy.ndarray of shape (n,)

    References
    ----------
    Hendrycks D, Gimpel K. A baseline for detecting misclassified and out-of-distribution
    examples in neural networks. ICLR 2017.

    Examples
    --------
    >>> from claimladder.calibration import ood_scores
    >>> ood_scores([0.5, 0.9, 0.01]).round(2).tolist()
    [0.5, 0.1, 0.01]
    """
    owner = "ood_scores"
    method = check_option(method, OOD_METHODS[1:], param="method", owner=owner)
    arr = y_prob.to_numpy() if hasattr(y_prob, "to_numpy") else np.asarray(y_prob)
    if arr.ndim == 1:
        p = as_scores(arr, "y_prob", owner, probabilities=True)
        prob = np.column_stack([1 - p, p])
    else:
        prob = probability_matrix(arr, owner)
    if method == "max_probability":
        return 1.0 - prob.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(prob > 0, prob * np.log(prob), 0.0), axis=1)


def _feature_matrix(x: Any, columns: Sequence[str] | None, owner: str
                    ) -> tuple[np.ndarray, tuple[str, ...] | None]:
    if isinstance(x, pd.DataFrame):
        if columns is None:
            columns = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])
                       and not pd.api.types.is_bool_dtype(x[c])]
        missing = [c for c in columns if c not in x.columns]
        if missing:
            raise ValueError(f"The feature table passed to {owner} lacks the column(s) "
                             f"{missing[:10]} that the detector uses; pass the same feature "
                             "columns as at fit time (e.g. image_statistics output).")
        return x[list(columns)].to_numpy(dtype=np.float64), tuple(str(c) for c in columns)
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"The features passed to {owner} must be a 2-D matrix (n, n_features) "
                         f"or a DataFrame. Got shape {arr.shape}.")
    return arr, None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class OODDetector:
    """A fitted OOD detector: score new cases, flag those above the threshold.

    Parameters
    ----------
    method : {"mahalanobis", "max_probability", "entropy"}
    quantile : float
        Quantile of the development scores used as threshold.
    threshold : float
        Cases with a score above it are flagged.
    columns : tuple of str or None
        Feature columns (Mahalanobis on a DataFrame).
    shrinkage : str or None
        Covariance estimator (Mahalanobis).
    fit_record : FitRecord
        Kind ``"other"``, the partition it was fitted on.
    """

    method: str
    quantile: float
    threshold: float
    columns: tuple[str, ...] | None
    shrinkage: str | None
    fit_record: FitRecord
    _center: np.ndarray | None = field(default=None, repr=False)
    _scale: np.ndarray | None = field(default=None, repr=False)
    _precision: np.ndarray | None = field(default=None, repr=False)

    def score(self, x: Any) -> np.ndarray:
        """OOD score of each case (Mahalanobis distance, ``1 - max p`` or entropy).

        For Mahalanobis, rows with a non-finite feature score ``inf`` (flagged).
        """
        if self.method != "mahalanobis":
            return ood_scores(x, method=self.method)
        arr, _ = _feature_matrix(x, self.columns, "OODDetector.score")
        if arr.shape[1] != self._center.size:
            raise ValueError(f"The detector uses {self._center.size} features; got "
                             f"{arr.shape[1]}.")
        z = (arr - self._center) / self._scale
        bad = ~np.isfinite(z).all(axis=1)
        z = np.where(np.isfinite(z), z, 0.0)
        d2 = np.einsum("ij,jk,ik->i", z, self._precision, z)
        out = np.sqrt(np.maximum(d2, 0.0))
        out[bad] = np.inf
        return out

    def flags(self, x: Any) -> np.ndarray:
        """Boolean mask of the cases flagged as out-of-distribution."""
        return self.score(x) > self.threshold


def fit_ood_detector(
    x: Any,
    *,
    method: Literal["mahalanobis", "max_probability", "entropy"] = "mahalanobis",
    quantile: float = 0.95,
    partition: str,
    sealed_partitions: Collection[str] = (),
    force: bool = False,
    shrinkage: Literal["ledoit-wolf", "oas", "empirical"] = "ledoit-wolf",
    columns: Sequence[str] | None = None,
    groups: Any = None,
) -> OODDetector:
    """Fit an OOD detector on development data and set its threshold at a quantile.

    Parameters
    ----------
    x : array-like or pandas.DataFrame
        ``method="mahalanobis"``: features (n, n_features), e.g.
        :func:`claimladder.features.image_statistics` of the development images
        or model embeddings. Score methods: the development probabilities
        (n,) or (n, n_classes).
    method : {"mahalanobis", "max_probability", "entropy"}, default "mahalanobis"
        OOD score.
    quantile : float, default 0.95
        Threshold = this quantile of the development scores (linear interpolation).
    partition : str
        Name of the partition the data come from (e.g. ``"development"``).
    sealed_partitions : collection of str, optional
        Names of the sealed partitions.
    force : bool, default False
        Fit even on a test or sealed partition (with a warning; recorded).
    shrinkage : {"ledoit-wolf", "oas", "empirical"}, default "ledoit-wolf"
        Covariance estimator of the standardised features (scikit-learn's
        :class:`~sklearn.covariance.LedoitWolf`, :class:`~sklearn.covariance.OAS`
        or :class:`~sklearn.covariance.EmpiricalCovariance`); shrinkage keeps the
        precision matrix stable with many correlated features.
    columns : sequence of str, optional
        Feature columns of a DataFrame (default: every numeric column whose
        development values are all finite; the others are dropped with a warning).
    groups : array-like of shape (n,), optional
        Patient ids, only to count patients in the fit record.

    Returns
    -------
    OODDetector

    Notes
    -----
    Features are standardised with the development mean and standard
    deviation (constant features keep scale 1), then the distance is
    ``sqrt((z - mu)' S^-1 (z - mu))`` with the shrunk covariance ``S``. The
    development scores are in-sample, so the development flag rate is
    ``1 - quantile`` by construction; compare flag rates of other partitions
    or sites with it.

    References
    ----------
    Lee K, Lee K, Lee H, Shin J. A simple unified framework for detecting
    out-of-distribution samples and adversarial attacks. NeurIPS 2018.
    Ledoit O, Wolf M. A well-conditioned estimator for large-dimensional covariance
    matrices. J Multivar Anal 2004;88:365-411.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import fit_ood_detector
    >>> rng = np.random.default_rng(0)
    >>> dev = rng.normal(size=(500, 4))
    >>> det = fit_ood_detector(dev, partition="development")
    >>> new = np.vstack([rng.normal(size=(100, 4)), rng.normal(loc=4, size=(100, 4))])
    >>> flags = det.flags(new)
    >>> round(float(flags[:100].mean()), 2), round(float(flags[100:].mean()), 2)
    (0.03, 1.0)
    """
    owner = "fit_ood_detector"
    method = check_option(method, OOD_METHODS, param="method", owner=owner)
    quantile = check_probability(quantile, param="quantile", owner=owner)
    forced = check_partition(partition, sealed_partitions=sealed_partitions, force=force,
                             owner=owner)
    params: dict[str, Any] = {"method": method, "quantile": quantile}
    if method != "mahalanobis":
        scores = ood_scores(x, method=method)
        n = scores.size
        if n == 0:
            raise ValueError(f"{owner} needs at least one development row.")
        threshold = float(np.quantile(scores, quantile))
        params["threshold"] = threshold
        if forced:
            params["forced"] = True
        record = FitRecord(kind="other", partition=partition, n_images=n,
                           n_patients=n_patients(clusters(groups, n, owner)),
                           description=f"OOD detector ({method})", params=params)
        return OODDetector(method=method, quantile=quantile, threshold=threshold, columns=None,
                           shrinkage=None, fit_record=record)
    shrinkage = check_option(shrinkage, SHRINKAGE, param="shrinkage", owner=owner)
    if isinstance(x, pd.DataFrame) and columns is None:
        numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])
                   and not pd.api.types.is_bool_dtype(x[c])]
        finite = [c for c in numeric if np.isfinite(x[c].to_numpy(dtype=np.float64)).all()]
        dropped = [c for c in numeric if c not in finite]
        if dropped:
            warnings.warn(f"{owner}: feature column(s) {dropped[:10]} have NaN or infinite "
                          "development values and are not used.", UserWarning, stacklevel=2)
        columns = finite
    arr, used = _feature_matrix(x, columns, owner)
    n, k = arr.shape
    if n < 2 or k == 0:
        raise ValueError(f"{owner} needs at least two development rows and one feature; got "
                         f"{n} rows and {k} features.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"The features passed to {owner} have {int(bad.sum())} row(s) with "
                         f"NaN or infinite values (first rows {rows}). Impute them, or pass a "
                         "DataFrame and let the detector drop non-finite columns.")
    center = arr.mean(axis=0)
    scale = arr.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (arr - center) / scale
    estimator = {"ledoit-wolf": LedoitWolf, "oas": OAS,
                 "empirical": EmpiricalCovariance}[shrinkage]().fit(z)
    location = estimator.location_
    precision = estimator.precision_
    detector = OODDetector(method=method, quantile=quantile, threshold=math.nan, columns=used,
                           shrinkage=shrinkage, fit_record=_record(partition, n, groups, params,
                                                                   forced, owner, math.nan),
                           _center=center + location * scale, _scale=scale,
                           _precision=precision)
    threshold = float(np.quantile(detector.score(x), quantile))
    params.update({"shrinkage": shrinkage, "n_features": k})
    return OODDetector(method=method, quantile=quantile, threshold=threshold, columns=used,
                       shrinkage=shrinkage,
                       fit_record=_record(partition, n, groups, params, forced, owner,
                                          threshold),
                       _center=center + location * scale, _scale=scale, _precision=precision)


def _record(partition: str, n: int, groups: Any, params: dict, forced: bool, owner: str,
            threshold: float) -> FitRecord:
    params = dict(params)
    params["threshold"] = None if math.isnan(threshold) else threshold
    if forced:
        params["forced"] = True
    return FitRecord(kind="other", partition=partition, n_images=n,
                     n_patients=n_patients(clusters(groups, n, owner)),
                     description=f"OOD detector ({params['method']})", params=params)


def ood_flags(detector: OODDetector, x: Any) -> np.ndarray:
    """Boolean mask of the cases ``detector`` flags as out-of-distribution.

    Parameters
    ----------
    detector : OODDetector
        From :func:`fit_ood_detector`.
    x : array-like or pandas.DataFrame
        Features (Mahalanobis) or probabilities (score methods) of the new cases.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> from claimladder.calibration import fit_ood_detector, ood_flags
    >>> det = fit_ood_detector([0.9, 0.8, 0.95, 0.1, 0.05], method="max_probability",
    ...                        quantile=0.8, partition="development")
    >>> ood_flags(det, [0.5, 0.99]).tolist()
    [True, False]
    """
    return detector.flags(x)


def _flag_statistic(flags: np.ndarray, codes: np.ndarray, n_clusters: int) -> Statistic:
    n = flags.size
    mt = sum_map(np.repeat(np.arange(2, dtype=np.intp), n), np.tile(codes, 2),
                 np.concatenate([np.ones(n), flags.astype(np.float64)]), 2, n_clusters)

    def reduce(sums: np.ndarray) -> np.ndarray:
        s = np.asarray(sums, dtype=np.float64)
        return ratio(s[1], s[0])[:, None]

    return Statistic(mt=mt, reduce=reduce, n_outputs=1, integer=True)


def ood_summary(
    flags: Any,
    *,
    subgroup: Any = None,
    y_true: Any = None,
    y_score: Any = None,
    metric: str = "roc_auc",
    threshold: float = 0.5,
    groups: Any = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
    include_overall: bool = True,
) -> pd.DataFrame:
    """Flag rate per partition or site, and performance on flagged vs unflagged cases.

    Parameters
    ----------
    flags : array-like of bool, shape (n,)
        OOD flags (from :func:`ood_flags`).
    subgroup : array-like of shape (n,), optional
        Partition, site or scanner of each row.
    y_true, y_score : array-like of shape (n,), optional
        Labels and scores: when given, ``metric`` is estimated separately on
        flagged and unflagged cases of each group.
    metric : str, default "roc_auc"
        Any of :data:`claimladder.metrics.METRICS`.
    threshold : float, default 0.5
        Operating threshold of threshold metrics.
    groups : array-like of shape (n,), optional
        Patient ids (cluster bootstrap).
    n_resamples, confidence_level, rng
        Bootstrap options (SPEC 7); the flag rate and the metric use independent
        children of ``rng``.
    pos_label : default 1
        Positive class.
    include_overall : bool, default True
        With ``subgroup``, also all rows (group ``"overall"``).

    Returns
    -------
    pandas.DataFrame
        Long table (``group, metric, estimate, ci_low, ci_high, confidence_level,
        method, n, n_clusters, n_pos, n_undefined``): ``flag_rate`` per group,
        and with labels ``<metric>_unflagged`` and ``<metric>_flagged`` (NaN, with
        an :class:`~claimladder._core.UndefinedMetricWarning`, where a cell has a
        single class).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.calibration import ood_summary
    >>> flags = np.array([0, 0, 1, 0, 1, 1, 0, 0], dtype=bool)
    >>> site = ["A", "A", "A", "A", "B", "B", "B", "B"]
    >>> t = ood_summary(flags, subgroup=site, n_resamples=100, rng=0)
    >>> t[["group", "metric", "estimate"]].to_dict("list")
    {'group': ['A', 'B', 'overall'], 'metric': ['flag_rate', 'flag_rate', 'flag_rate'], \
'estimate': [0.25, 0.5, 0.375]}
    """
    owner = "ood_summary"
    opts = bootstrap_options("bootstrap", n_resamples, confidence_level, owner)
    f = as_1d(flags, "flags", owner)
    if f.dtype != bool:
        raise ValueError(f"flags passed to {owner} must be booleans (from ood_flags); got "
                         f"dtype {f.dtype}.")
    n = f.size
    c = clusters(groups, n, owner)
    sub, labels = (None, []) if subgroup is None else subgroup_codes(subgroup, n, owner)
    parts = make_parts(c, None, sub, labels, include_overall)
    rate_rng, metric_rng = spawn(rng, 2)

    def build(part: Part) -> Statistic:
        return _flag_statistic(f[part.rows], part.codes, c.n_clusters)

    result = resample(parts, build, outputs=("flag_rate",), opts=opts, rng=rate_rng,
                      title="OOD flag rate", stacklevel=3)
    table = long_table(parts, result, ("flag_rate",))
    if y_true is None and y_score is None:
        return table
    if y_true is None or y_score is None:
        raise ValueError(f"{owner} needs both y_true and y_score to compare performance on "
                         "flagged and unflagged cases.")
    check_option(metric, METRICS, param="metric", owner=owner)
    check_lengths(owner, flags=f, y_true=as_1d(y_true, "y_true", owner),
                  y_score=as_1d(y_score, "y_score", owner))
    names: dict[str, tuple[Any, str]] = {}
    for part in parts:
        for state in ("unflagged", "flagged"):
            names[f"{part.label} ({state})"] = (part.label, f"{metric}_{state}")
    state_of = np.where(f, "flagged", "unflagged")
    blocks = []
    # Subgroups partition the rows; the overall block reuses every row, so it is a second call.
    child_sub, child_all = spawn(metric_rng, 2)
    kw = {"metric": metric, "threshold": threshold, "groups": groups,
          "n_resamples": opts.n_resamples, "confidence_level": opts.confidence_level,
          "pos_label": pos_label, "include_overall": False}
    if sub is not None:
        group_names = np.array([str(label) for label in labels], dtype=object)[sub]
        cells = group_names + " (" + state_of.astype(object) + ")"
        blocks.append(grouped_metric(y_true, y_score, cells, rng=child_sub, **kw).table)
    if sub is None or include_overall:
        cells = np.array(f"{OVERALL} (", dtype=object) + state_of.astype(object) + ")"
        blocks.append(grouped_metric(y_true, y_score, cells, rng=child_all, **kw).table)
    perf = pd.concat(blocks, ignore_index=True)
    present = set(perf["group"])
    empty = [{"group": key, "metric": metric, "estimate": math.nan, "ci_low": math.nan,
              "ci_high": math.nan, "confidence_level": opts.confidence_level,
              "method": perf["method"].iloc[0] if len(perf) else "bootstrap-percentile",
              "n": 0, "n_clusters": 0 if c.given else None, "n_pos": 0, "n_undefined": 0}
             for key in names if key not in present]
    if empty:
        # A group without flagged (or unflagged) cases gets an explicit empty row, not a gap.
        perf = pd.concat([perf, pd.DataFrame(empty)], ignore_index=True)
    perf["metric"] = [names[g][1] for g in perf["group"]]
    perf["group"] = [names[g][0] for g in perf["group"]]
    perf = perf[list(TABLE_COLUMNS)]
    out = pd.concat([table, perf], ignore_index=True)
    order = {label: i for i, label in enumerate(p.label for p in parts)}
    out["_g"] = out["group"].map(order)
    out["_m"] = out["metric"].map(lambda m: 0 if m == "flag_rate" else (
        1 if m.endswith("_unflagged") else 2))
    out = out.sort_values(["_g", "_m"], kind="stable").drop(columns=["_g", "_m"])
    return out.reset_index(drop=True)

