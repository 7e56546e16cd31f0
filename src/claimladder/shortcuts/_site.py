"""Can the site (or scanner) be predicted from the pixels, or from the model's scores?"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from .._core import (
    Finding,
    RngLike,
    Rung,
    Status,
    check_option,
    check_positive_int,
    check_probability,
    check_rng,
    spawn,
)
from ..features import image_statistics, thumbnails
from ._common import MAX_EXAMPLES, as_2d_images, as_ids, as_vector, probe_auroc, probe_rows
from ._probe import ProbeResult, balanced_accuracy_ci, ridge_probe

__all__ = ["FEATURE_SETS", "check_site_predictability", "image_features"]

#: Named feature sets of :func:`check_site_predictability`.
FEATURE_SETS = ("statistics", "thumbnails", "both")
_THUMBNAIL_SIZE = 16
_SCORE_EPS = 1e-6


def _finite_columns(matrix: np.ndarray) -> np.ndarray:
    """Non-finite entries replaced by their column's median (0 for all-NaN columns)."""
    matrix = np.array(matrix, dtype=np.float64)
    bad = ~np.isfinite(matrix)
    if bad.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are filled by 0
            fill = np.nanmedian(np.where(bad, np.nan, matrix), axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
        matrix[bad] = np.take(fill, np.nonzero(bad)[1])
    return matrix


def image_features(images: Any, features: str = "statistics", *,
                   thumbnail_size: int = _THUMBNAIL_SIZE) -> np.ndarray:
    """The feature matrix of a site probe.

    Parameters
    ----------
    images : sequence of 2D arrays or array of shape (N, H, W)
        Images of any shapes.
    features : {"statistics", "thumbnails", "both"}, default "statistics"
        :func:`claimladder.features.image_statistics` (intensity percentiles,
        noise, entropy, edge density, corner and border means, size),
        flattened :func:`claimladder.features.thumbnails` (robustly
        normalised layout), or both side by side.
    thumbnail_size : int, default 16
        Side of the thumbnails.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(N, d)``; non-finite statistics (e.g. the SNR of a
        noise-free image) replaced by their column's median.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.shortcuts import image_features
    >>> image_features(np.zeros((3, 32, 32)), "both").shape
    (3, 281)
    """
    features = check_option(features, FEATURE_SETS, param="features", owner="image_features")
    items = as_2d_images(images, "image_features")
    parts = []
    if features in ("statistics", "both"):
        parts.append(image_statistics(items).to_numpy(dtype=np.float64))
    if features in ("thumbnails", "both"):
        size = check_positive_int(thumbnail_size, param="thumbnail_size",
                                  owner="image_features")
        parts.append(thumbnails(items, size=size).reshape(len(items), -1).astype(np.float64))
    return _finite_columns(np.hstack(parts))


def _label_association(site: np.ndarray, y: np.ndarray) -> float:
    """Chi-square p-value of independence of site and label (NaN when untestable)."""
    table = pd.crosstab(pd.Series(site.astype(str)), pd.Series(y.astype(str)))
    if table.shape[0] < 2 or table.shape[1] < 2:
        return math.nan
    return float(chi2_contingency(table.to_numpy())[1])


def _site_typical(probe: ProbeResult, ids: np.ndarray, k: int) -> tuple[str, ...]:
    own = probe.scores[np.arange(len(ids)), probe.codes]
    order = np.argsort(-own, kind="stable")
    correct = probe.predicted[order] == probe.codes[order]
    return tuple(ids[order][correct][:k])


def _status(probe: ProbeResult, alpha: float, min_auroc: float) -> tuple[bool, bool]:
    """(significant, predictable): p < alpha, and also AUROC >= min_auroc."""
    significant = math.isfinite(probe.p_value) and probe.p_value < alpha
    return significant, significant and probe.auroc >= min_auroc


def check_site_predictability(
    images: Any = None,
    site: Any = None,
    *,
    groups: Any = None,
    y_true: Any = None,
    y_score: Any = None,
    features: str | np.ndarray | pd.DataFrame = "statistics",
    feature_set: str | None = None,
    image_ids: Sequence[Any] | None = None,
    attribute: str = "site",
    n_splits: int = 5,
    n_permutations: int = 200,
    alpha: float = 0.05,
    min_auroc: float = 0.6,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> list[Finding]:
    """Is the site (scanner, protocol) predictable from the pixels or the model's scores?

    Parameters
    ----------
    images : sequence of 2D arrays or array of shape (N, H, W), optional
        The images; not needed when ``features`` is a matrix.
    site : array-like of shape (N,)
        Site (or scanner, protocol, manufacturer) of each image.
    groups : array-like of shape (N,), optional
        Patient ids: folds and permutations keep a patient's images together
        and intervals resample patients.
    y_true : array-like of shape (N,), optional
        Labels: tests whether prevalence differs across sites, and is
        required with ``y_score``.
    y_score : array-like of shape (N,), optional
        The model's scores: adds the ``shortcuts.site_from_scores`` finding.
    features : {"statistics", "thumbnails", "both"} or array-like of shape (N, d)
        What the pixel probe sees (see :func:`image_features`), or a
        precomputed feature matrix.
    feature_set : str, optional
        What a precomputed ``features`` matrix holds (e.g. ``"statistics"`` when
        it is :func:`image_features` computed chunk by chunk), for the finding's
        parameters; default ``"precomputed"``.
    image_ids : sequence, optional
        Ids for the examples; default positions.
    attribute : str, default "site"
        Name of what ``site`` holds, used in messages.
    n_splits : int, default 5
        Cross-validation folds (by patient).
    n_permutations : int, default 200
        Permutations of ``site`` for the chance threshold.
    alpha : float, default 0.05
        Significance level of the permutation test.
    min_auroc : float, default 0.6
        Smallest AUROC that counts as predictable (an effect size, so that a
        large cohort does not flag a trivial difference).
    n_resamples : int, default 1000
        Bootstrap replicates of the intervals.
    confidence_level : float, default 0.95
        Coverage of the intervals.
    rng : int, Generator or None
        Seed of folds, permutations and bootstraps.

    Returns
    -------
    list of Finding
        ``shortcuts.site_predictability`` and, with ``y_score``,
        ``shortcuts.site_from_scores``, both on rung 5 (ROBUSTNESS): a
        shortcut is a failure of robustness to a change of site, and the
        masking and border probes that confirm it need fresh inference, which
        is what rung 5 does.

        - ``site_predictability``: ``warn`` when the probe's AUROC (binary:
          site 2 vs 1; else macro one-vs-rest) exceeds the permutation
          threshold (``p < alpha``) and ``min_auroc`` -- a site that is
          visible in the pixels is a shortcut risk, all the more when the
          label's prevalence differs across sites (tested by chi-square,
          reported); ``pass`` otherwise.
        - ``site_from_scores``: the probe sees only the model's logit score
          centred on its mean within each label (one feature per label, zero
          for the other labels), so prevalence differences between sites do
          not count while a site whose negatives score high and positives
          low does: ``fail`` when significant (``p < alpha``) and the
          whole AUROC interval is at or above ``min_auroc`` (the model's
          output carries the site beyond the label), ``warn`` when
          significant and the estimate or the interval's upper bound
          reaches ``min_auroc``, ``pass`` otherwise (a significant but
          certainly small difference is named in the message).
        - ``not_evaluable`` with fewer than two sites or two patients.

    Notes
    -----
    The probe is a ridge (linear discriminant) classifier on features
    standardised within each training fold, cross-validated with folds of
    whole patients; its out-of-fold scores give the AUROC (clustered DeLong
    interval for two sites, cluster bootstrap for more) and the balanced
    accuracy (cluster bootstrap). The chance threshold is the ``1 - alpha``
    quantile of the same cross-validated statistic over ``n_permutations``
    permutations of the site between patients (rows when a patient has
    several sites); the p-value is ``(1 + #null >= observed) / (1 + B)``.

    References
    ----------
    Zech JR, et al. Variable generalization performance of a deep learning
    model to detect pneumonia in chest radiographs: a cross-sectional study.
    PLoS Med 2018;15:e1002683 (hospital system predicted from radiographs).
    Ojala M, Garriga GC. Permutation tests for studying classifier
    performance. J Mach Learn Res 2010;11:1833-1863.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.shortcuts import check_site_predictability
    >>> rng = np.random.default_rng(0)
    >>> site = np.repeat(["A", "B"], 30)
    >>> images = rng.normal(0, 1, (60, 32, 32)) + 0.5 * (site == "B")[:, None, None]
    >>> [f.status.value for f in check_site_predictability(images, site, n_permutations=50,
    ...                                                     rng=0)]
    ['warn']
    """
    owner = "check_site_predictability"
    alpha = check_probability(alpha, param="alpha", owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    n_splits = check_positive_int(n_splits, param="n_splits", owner=owner, minimum=2)
    n_permutations = check_positive_int(n_permutations, param="n_permutations", owner=owner)
    if site is None:
        raise ValueError(f"{owner} needs 'site': the site or scanner of each image.")
    if isinstance(features, str):
        if images is None:
            raise ValueError(f"{owner} needs 'images' unless 'features' is a feature matrix.")
        matrix = image_features(images, features)
        feature_name = features
    else:
        matrix = _finite_columns(np.asarray(
            features.to_numpy() if isinstance(features, pd.DataFrame) else features,
            dtype=np.float64))
        if matrix.ndim != 2:
            raise ValueError(f"The 'features' matrix of {owner} must be 2D (N, d). Got shape "
                             f"{matrix.shape}.")
        feature_name = feature_set or "precomputed"
    n = matrix.shape[0]
    sites = as_vector(site, n, param="site", owner=owner).astype(object)
    clusters = None if groups is None else as_vector(groups, n, param="groups", owner=owner)
    ids = as_ids(image_ids, n, owner)
    y = None if y_true is None else as_vector(y_true, n, param="y_true", owner=owner)
    if y_score is not None and y is None:
        raise ValueError(f"{owner} needs 'y_true' with 'y_score': the score probe removes the "
                         "label's effect on the score before predicting the site.")
    gen = check_rng(rng)
    r_pix, r_pix_ci, r_score, r_score_ci = spawn(gen, 4)
    missing_site = pd.isna(pd.Series(sites)).to_numpy()
    keep = ~missing_site
    n_sites = pd.Series(sites[keep]).astype(str).nunique()
    n_patients = n if clusters is None else pd.Series(clusters[keep]).astype(str).nunique()
    params = {"attribute": attribute, "features": feature_name, "n_splits": n_splits,
              "n_permutations": n_permutations, "alpha": alpha, "min_auroc": min_auroc,
              "n_missing_site": int(missing_site.sum())}
    criterion = (f"{attribute} not predictable: permutation p >= {alpha:g} or AUROC < "
                 f"{min_auroc:g}")
    if n_sites < 2 or n_patients < 2:
        reason = (f"fewer than two {attribute}s" if n_sites < 2 else "fewer than two patients")
        findings = [Finding(check="shortcuts.site_predictability", rung=Rung.ROBUSTNESS,
                            status=Status.NOT_EVALUABLE, message=f"{attribute.capitalize()} "
                            f"predictability not evaluable: {reason}.", criterion=criterion,
                            params=params)]
        if y_score is not None:
            findings.append(Finding(check="shortcuts.site_from_scores", rung=Rung.ROBUSTNESS,
                                    status=Status.NOT_EVALUABLE, message=f"{attribute.capitalize()}"
                                    f" from scores not evaluable: {reason}.", criterion=criterion,
                                    params=params))
        return findings
    cl = None if clusters is None else clusters[keep]
    probe = ridge_probe(matrix[keep], sites[keep], cl, n_splits=n_splits,
                        n_permutations=n_permutations, alpha=alpha, rng=r_pix)
    auroc = probe_auroc(probe, cl, n_resamples=n_resamples, confidence_level=confidence_level,
                        rng=r_pix_ci)
    balanced = balanced_accuracy_ci(probe.codes, probe.predicted, cl, n_resamples=n_resamples,
                                    confidence_level=confidence_level, rng=r_pix_ci)
    table = pd.DataFrame(probe_rows(f"pixels ({feature_name})", probe, auroc, balanced))
    association = math.nan if y is None else _label_association(sites[keep], y[keep])
    significant, predictable = _status(probe, alpha, min_auroc)
    what = f"{attribute.capitalize()} ({n_sites} values)"
    stats = (f"AUROC {auroc.format()}, permutation threshold {probe.threshold:.3f}, "
             f"p = {probe.p_value:.3g}; balanced accuracy {balanced.format()} vs chance "
             f"{1 / n_sites:.2f}")
    if not math.isfinite(probe.auroc):
        status, message = Status.NOT_EVALUABLE, (f"{what} predictability not evaluable: the "
                                                 "cross-validated AUROC is undefined.")
    elif predictable:
        status = Status.WARN
        risk = ""
        if math.isfinite(association) and association < alpha:
            risk = (f" The label's prevalence also differs across {attribute}s (chi-square "
                    f"p = {association:.2g}), so a model can use the {attribute} as a proxy "
                    "for the label.")
        message = f"{what} is predictable from image {feature_name}: {stats}.{risk}"
    else:
        status = Status.PASS
        message = (f"{what} is not predictable from image {feature_name} beyond chance "
                   f"(or below AUROC {min_auroc:g}): {stats}.")
    params_pix = {**params, "label_association_p": association,
                  "permuted_by": probe.permuted_by, "significant": significant}
    findings = [Finding(check="shortcuts.site_predictability", rung=Rung.ROBUSTNESS,
                        status=status, message=message, estimate=auroc, criterion=criterion,
                        table=table,
                        examples=_site_typical(probe, ids[keep], MAX_EXAMPLES)
                        if status is Status.WARN else (),
                        params=params_pix)]
    if y_score is not None:
        findings.append(_scores_finding(y_score, y, sites, clusters, ids, keep, attribute,
                                        n_splits=n_splits, n_permutations=n_permutations,
                                        alpha=alpha, min_auroc=min_auroc,
                                        n_resamples=n_resamples,
                                        confidence_level=confidence_level, rng=r_score,
                                        rng_ci=r_score_ci, params=params,
                                        criterion=criterion))
    return findings


def _scores_finding(y_score, y, sites, clusters, ids, keep, attribute, *, n_splits,
                    n_permutations, alpha, min_auroc, n_resamples, confidence_level, rng,
                    rng_ci, params, criterion) -> Finding:
    owner = "check_site_predictability"
    n = sites.size
    score = as_vector(y_score, n, param="y_score", owner=owner).astype(np.float64)
    ok = keep & np.isfinite(score) & ~pd.isna(pd.Series(y)).to_numpy()
    logit = np.log(np.clip(score, _SCORE_EPS, 1 - _SCORE_EPS)) - np.log(
        np.clip(1 - score, _SCORE_EPS, 1 - _SCORE_EPS))
    labels = y.astype(str)
    strata = np.unique(labels[ok])
    # One feature per label: the logit centred within that label, zero elsewhere. Every
    # feature has mean zero within each label, so the probe cannot read the site off the
    # label (prevalence), yet it can learn that, say, negatives score higher and positives
    # lower at one site.
    residual = np.zeros((n, strata.size))
    for j, label in enumerate(strata):
        rows = ok & (labels == label)
        residual[rows, j] = logit[rows] - logit[rows].mean()
    cl = None if clusters is None else clusters[ok]
    probe = ridge_probe(residual[ok], sites[ok], cl, n_splits=n_splits,
                        n_permutations=n_permutations, alpha=alpha, rng=rng)
    auroc = probe_auroc(probe, cl, n_resamples=n_resamples, confidence_level=confidence_level,
                        rng=rng_ci)
    balanced = balanced_accuracy_ci(probe.codes, probe.predicted, cl, n_resamples=n_resamples,
                                    confidence_level=confidence_level, rng=rng_ci)
    table = pd.DataFrame(probe_rows("model score (logit centred within label)", probe, auroc,
                                    balanced))
    significant, predictable = _status(probe, alpha, min_auroc)
    stats = (f"AUROC {auroc.format()}, permutation threshold {probe.threshold:.3f}, "
             f"p = {probe.p_value:.3g}")
    if not math.isfinite(probe.auroc):
        status = Status.NOT_EVALUABLE
        message = (f"{attribute.capitalize()} from scores not evaluable: the cross-validated "
                   "AUROC is undefined (one site per label?).")
    elif predictable and auroc.ci.low >= min_auroc:
        status = Status.FAIL
        message = (f"The model's scores carry the {attribute} beyond the label: {stats}. "
                   f"Scores differ systematically between {attribute}s for the same label.")
    elif significant and max(probe.auroc, auroc.ci.high) >= min_auroc:
        status = Status.WARN
        message = (f"The model's scores may carry the {attribute} beyond the label: {stats}; "
                   f"an AUROC of {min_auroc:g} or more cannot be ruled out.")
    elif significant:
        status = Status.PASS
        message = (f"The model's scores differ detectably but slightly between {attribute}s "
                   f"for the same label: {stats}, the whole interval below AUROC "
                   f"{min_auroc:g}.")
    else:
        status = Status.PASS
        message = f"The model's scores do not reveal the {attribute} beyond the label: {stats}."
    return Finding(check="shortcuts.site_from_scores", rung=Rung.ROBUSTNESS, status=status,
                   message=message, estimate=auroc, criterion=criterion, table=table,
                   examples=_site_typical(probe, ids[ok], MAX_EXAMPLES)
                   if status is Status.FAIL else (),
                   params={**params, "features": "logit score centred within each label",
                           "permuted_by": probe.permuted_by, "significant": significant,
                           "n_excluded": int((~ok).sum())})

