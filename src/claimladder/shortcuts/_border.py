"""Can the label be predicted from the image borders alone?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    Finding,
    RngLike,
    Rung,
    Status,
    check_positive_int,
    check_probability,
    check_rng,
    spawn,
)
from ..features import thumbnails
from ._common import MAX_EXAMPLES, as_2d_images, as_ids, as_vector, probe_auroc, probe_rows
from ._probe import balanced_accuracy_ci, ridge_probe

__all__ = ["border_features", "check_border_only"]

_PERCENTILES = (5, 50, 95)
_RING_GRID = 16


def _region_stats(region: np.ndarray) -> list[float]:
    flat = region.ravel()
    return [float(flat.mean()), float(flat.std()), float(flat.min()), float(flat.max()),
            *np.percentile(flat, _PERCENTILES).tolist()]


def border_features(images: Any, *, border_fraction: float = 0.1) -> np.ndarray:
    """Features of the border strips alone (nothing from the central region).

    Parameters
    ----------
    images : sequence of 2D arrays or array of shape (N, H, W)
        Images of any shapes.
    border_fraction : float, default 0.1
        Width of the strips as a fraction of the height (top, bottom) and
        width (left, right); in (0, 0.5).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(N, 168)``: mean, standard deviation, minimum,
        maximum and 5th/50th/95th percentiles of the raw intensities of each
        of the 4 strips and 4 corner squares (56), and the cells of a 16 x 16
        robustly normalised thumbnail that lie in the border ring (112),
        computed after the central region is replaced by the border median.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.shortcuts import border_features
    >>> border_features(np.zeros((2, 40, 40))).shape
    (2, 168)
    """
    if isinstance(border_fraction, bool) or not isinstance(border_fraction, (int, float)) \
            or not 0 < border_fraction < 0.5:
        raise ValueError("The 'border_fraction' parameter of border_features must be a float in "
                         f"(0, 0.5). Got {border_fraction!r} instead.")
    items = as_2d_images(images, "border_features")
    ring_width = max(1, math.ceil(_RING_GRID * border_fraction))
    ring = np.ones((_RING_GRID, _RING_GRID), dtype=bool)
    ring[ring_width:-ring_width, ring_width:-ring_width] = False
    stats, border_only = [], []
    for image in items:
        x = np.asarray(image, dtype=np.float64)
        h, w = x.shape
        bh, bw = max(1, round(border_fraction * h)), max(1, round(border_fraction * w))
        regions = [x[:bh], x[h - bh:], x[:, :bw], x[:, w - bw:],
                   x[:bh, :bw], x[:bh, w - bw:], x[h - bh:, :bw], x[h - bh:, w - bw:]]
        stats.append([v for r in regions for v in _region_stats(r)])
        masked = x.copy()
        centre = masked[bh:h - bh, bw:w - bw]
        border_pixels = np.concatenate([r.ravel() for r in regions[:4]])
        centre[...] = np.median(border_pixels)
        border_only.append(masked)
    layout = thumbnails(border_only, size=_RING_GRID)[:, ring]
    return np.hstack([np.asarray(stats), layout.astype(np.float64)])


def check_border_only(
    images: Any,
    y_true: Any,
    *,
    features: Any = None,
    groups: Any = None,
    image_ids: Sequence[Any] | None = None,
    border_fraction: float = 0.1,
    n_splits: int = 5,
    n_permutations: int = 200,
    alpha: float = 0.05,
    min_auroc: float = 0.6,
    confidence_level: float = 0.95,
    n_resamples: int = 1000,
    rng: RngLike = None,
) -> Finding:
    """Does a classifier that sees only the border strips predict the label?

    Parameters
    ----------
    images : sequence of 2D arrays or array of shape (N, H, W), or None
        Images (any shapes), typically the development partition; None with
        ``features``.
    y_true : array-like of shape (N,)
        Binary labels.
    features : array-like of shape (N, 168), optional
        :func:`border_features` of the images computed beforehand (e.g. chunk
        by chunk for image sets larger than memory, with the same
        ``border_fraction``); replaces ``images``.
    groups : array-like of shape (N,), optional
        Patient ids: folds keep a patient together, labels are permuted
        between patients, intervals resample patients.
    image_ids : sequence, optional
        Ids for the examples.
    border_fraction : float, default 0.1
        Width of the strips (see :func:`border_features`).
    n_splits : int, default 5
        Cross-validation folds.
    n_permutations : int, default 200
        Permutations of the label for the chance threshold.
    alpha : float, default 0.05
        Significance level of the permutation test.
    min_auroc : float, default 0.6
        Smallest AUROC counted as a shortcut (effect size).
    confidence_level, n_resamples, rng
        Intervals and seeds.

    Returns
    -------
    Finding
        ``shortcuts.border_only`` on rung 5 (ROBUSTNESS): ``fail`` when the
        border-only probe's cross-validated AUROC exceeds the permutation
        threshold (``p < alpha``) and ``min_auroc`` -- the label is written
        in the margins (markers, annotations, padding, collimation that
        differ with the label); ``warn`` when significant but below
        ``min_auroc``; ``pass`` otherwise; ``not_evaluable`` with one class
        or fewer than two patients. Examples are the positive images whose
        borders look most positive.

    Notes
    -----
    The probe is the patient-grouped, cross-validated ridge classifier of
    :func:`check_site_predictability` on :func:`border_features`; its AUROC
    has a clustered DeLong interval. Anatomy can reach the border (large
    patients, lung apices), so a weak signal is expected and ``min_auroc``
    guards against flagging it.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.shortcuts import check_border_only
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30)
    >>> images = rng.normal(0.3, 0.05, (60, 40, 40))
    >>> images[y == 1, 1:3, 1:3] = 1.0
    >>> check_border_only(images, y, n_permutations=50, rng=0).status.value
    'fail'
    """
    owner = "check_border_only"
    alpha = check_probability(alpha, param="alpha", owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    n_splits = check_positive_int(n_splits, param="n_splits", owner=owner, minimum=2)
    n_permutations = check_positive_int(n_permutations, param="n_permutations", owner=owner)
    if features is None:
        items = as_2d_images(images, owner)
        n = len(items)
    else:
        matrix = np.asarray(features, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"The 'features' matrix of {owner} must be 2D (N, d), as returned "
                             f"by border_features. Got shape {matrix.shape}.")
        n = matrix.shape[0]
    y = as_vector(y_true, n, param="y_true", owner=owner)
    clusters = None if groups is None else as_vector(groups, n, param="groups", owner=owner)
    ids = as_ids(image_ids, n, owner)
    criterion = (f"label not predictable from borders: permutation p >= {alpha:g} or AUROC < "
                 f"{min_auroc:g}")
    params = {"border_fraction": border_fraction, "n_splits": n_splits,
              "n_permutations": n_permutations, "alpha": alpha, "min_auroc": min_auroc}
    keep = ~pd.isna(pd.Series(y)).to_numpy()
    labels = pd.Series(y[keep]).astype(str)
    n_patients = keep.sum() if clusters is None else pd.Series(clusters[keep]).nunique()
    if labels.nunique() != 2 or n_patients < 2:
        reason = ("the labels are not binary (two classes needed)" if labels.nunique() != 2
                  else "fewer than two patients")
        return Finding(check="shortcuts.border_only", rung=Rung.ROBUSTNESS,
                       status=Status.NOT_EVALUABLE,
                       message=f"Border-only probe not evaluable: {reason}.",
                       criterion=criterion, params=params)
    gen = check_rng(rng)
    r_probe, r_ci = spawn(gen, 2)
    if features is None:
        strips = border_features([items[i] for i in np.flatnonzero(keep)],
                                 border_fraction=border_fraction)
    else:
        strips = matrix[keep]
    cl = None if clusters is None else clusters[keep]
    probe = ridge_probe(strips, y[keep], cl, n_splits=n_splits,
                        n_permutations=n_permutations, alpha=alpha, rng=r_probe)
    auroc = probe_auroc(probe, cl, n_resamples=n_resamples, confidence_level=confidence_level,
                        rng=r_ci)
    balanced = balanced_accuracy_ci(probe.codes, probe.predicted, cl, n_resamples=n_resamples,
                                    confidence_level=confidence_level, rng=r_ci)
    table = pd.DataFrame(probe_rows("border strips", probe, auroc, balanced))
    significant = math.isfinite(probe.p_value) and probe.p_value < alpha
    stats = (f"AUROC {auroc.format()} (class {probe.classes[1]!s} vs {probe.classes[0]!s}), "
             f"permutation threshold {probe.threshold:.3f}, p = {probe.p_value:.3g}")
    if not math.isfinite(probe.auroc):
        status = Status.NOT_EVALUABLE
        message = "Border-only probe not evaluable: the cross-validated AUROC is undefined."
    elif significant and probe.auroc >= min_auroc:
        status = Status.FAIL
        message = (f"The label is predictable from the image borders alone: {stats}. Markers, "
                   "annotations or padding in the margins differ with the label.")
    elif significant:
        status = Status.WARN
        message = f"The borders carry a weak label signal: {stats} (below AUROC {min_auroc:g})."
    else:
        status = Status.PASS
        message = f"The label is not predictable from the image borders beyond chance: {stats}."
    examples: tuple[str, ...] = ()
    if status is Status.FAIL:
        positive = np.flatnonzero(probe.codes == 1)
        order = positive[np.argsort(-probe.scores[positive, 1], kind="stable")]
        examples = tuple(ids[keep][order][:MAX_EXAMPLES])
    return Finding(check="shortcuts.border_only", rung=Rung.ROBUSTNESS, status=status,
                   message=message, estimate=auroc, criterion=criterion, table=table,
                   examples=examples,
                   params={**params, "permuted_by": probe.permuted_by,
                           "positive_class": str(probe.classes[1])})
