"""Does the model still work when the non-anatomical regions are masked?"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    Finding,
    Plot,
    RngLike,
    Rung,
    SmallSampleWarning,
    Status,
    UndefinedMetricWarning,
    check_option,
    check_positive_int,
    check_probability,
    check_rng,
    spawn,
)
from ..cohort import ImageFiles
from ..features import text_marker_regions
from ..metrics import compare_paired
from ..models import as_image_batch, image_digests, load_model
from ._common import MAX_EXAMPLES, as_ids, as_vector

__all__ = ["MASK_FILLS", "MASK_REGIONS", "check_masking", "mask_regions"]

#: Regions :func:`check_masking` can mask.
MASK_REGIONS = ("corners", "borders", "text")
#: How masked regions are filled: another image's pixels, or the local background.
MASK_FILLS = ("label_swap", "background")
_MASK_METRICS = ("roc_auc", "average_precision", "balanced_accuracy", "accuracy",
                 "sensitivity", "specificity")
# Width of the ring whose median fills a masked region: half its shorter side, >= 2 px.
_MARGIN = 0.5
_MIN_MARGIN = 2


def _fraction(value: Any, param: str) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < 0.5
    if not ok:
        raise ValueError(f"The {param!r} parameter of check_masking must be a float in "
                         f"(0, 0.5). Got {value!r} instead.")
    return float(value)


def mask_regions(image: np.ndarray, regions: Sequence[str] = MASK_REGIONS, *,
                 corner_fraction: float = 0.15, border_fraction: float = 0.05,
                 donor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mask corners, borders and detected text/markers of one 2D image.

    Parameters
    ----------
    image : numpy.ndarray of shape (H, W)
        The image.
    regions : sequence of {"corners", "borders", "text"}
        What to mask.
    corner_fraction : float, default 0.15
        Side of the four corner squares, as a fraction of height and width.
    border_fraction : float, default 0.05
        Width of the four border strips, as a fraction of height and width.
    donor : numpy.ndarray of shape (H, W), optional
        Another image whose pixels fill the regions (a counterfactual swap);
        by default each region is filled with its local background.

    Returns
    -------
    masked : numpy.ndarray
        float64 copy with every region filled (see Notes).
    mask : numpy.ndarray of bool
        Which pixels were replaced.

    Notes
    -----
    Every region (corner square, border strip, or text/marker box of
    :func:`claimladder.features.text_marker_regions`) is filled with the
    median of a ring around it, inside the image (half the region's shorter
    side wide, at least 2 pixels): the local background, so no new edge is
    drawn, and -- unlike the region's own median -- a value that does not
    depend on what was inside (a marker covering a third of a corner would
    shift the corner's own median, and the model could still read it).
    Fill values are computed on the original image. With a ``donor``, the
    regions (located on ``image``) take the donor's pixels instead.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.shortcuts import mask_regions
    >>> image = np.zeros((40, 40))
    >>> image[2:6, 2:4] = 1.0  # a marker in the top-left corner
    >>> masked, mask = mask_regions(image, ["corners"])
    >>> float(masked.max()), int(mask.sum())
    (0.0, 144)
    """
    for region in regions:
        check_option(region, MASK_REGIONS, param="regions", owner="mask_regions")
    original = np.asarray(image, dtype=np.float64)
    if original.ndim != 2:
        raise ValueError(f"mask_regions needs a 2D image. Got shape {original.shape}.")
    h, w = original.shape
    if donor is not None:
        donor = np.asarray(donor, dtype=np.float64)
        if donor.shape != original.shape:
            raise ValueError(f"mask_regions needs a donor of the image's shape {original.shape}. "
                             f"Got {donor.shape}.")
    out = original.copy()
    mask = np.zeros((h, w), dtype=bool)
    boxes: list[tuple[int, int, int, int]] = []  # top, bottom, left, right
    if "corners" in regions:
        kh, kw = max(1, round(corner_fraction * h)), max(1, round(corner_fraction * w))
        boxes += [(0, kh, 0, kw), (0, kh, w - kw, w), (h - kh, h, 0, kw), (h - kh, h, w - kw, w)]
    if "borders" in regions:
        bh, bw = max(1, round(border_fraction * h)), max(1, round(border_fraction * w))
        boxes += [(0, bh, 0, w), (h - bh, h, 0, w), (0, h, 0, bw), (0, h, w - bw, w)]
    if "text" in regions:
        boxes += [(r.top, r.bottom, r.left, r.right) for r in text_marker_regions(original)]
    if donor is None:
        fills = [_ring_median(original, box) for box in boxes]
        for (top, bottom, left, right), fill in zip(boxes, fills, strict=True):
            out[top:bottom, left:right] = fill
            mask[top:bottom, left:right] = True
    else:
        for top, bottom, left, right in boxes:
            mask[top:bottom, left:right] = True
        out[mask] = donor[mask]
    return out, mask


def _label_donors(y: np.ndarray, pos_label: Any,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Donor indices: another image of the same class, and an image of the other class.

    The same-class donors are a derangement within each class (an image alone
    in its class is its own donor); the other-class donors are drawn with
    replacement (the classes differ in size). With one class only, both are
    the same-class donors.
    """
    positive = y == pos_label
    same = np.arange(y.size)
    other = np.arange(y.size)
    same_rng, other_rng = spawn(rng, 2)
    for members, others in ((np.flatnonzero(positive), np.flatnonzero(~positive)),
                            (np.flatnonzero(~positive), np.flatnonzero(positive))):
        same[members] = members[_derangement(members.size, same_rng)]
        if others.size:
            other[members] = other_rng.choice(others, size=members.size)
        else:
            other[members] = same[members]
    return same, other


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with no fixed point (for n >= 2): every image gets another's pixels."""
    perm = rng.permutation(n)
    if n < 2:
        return perm
    fixed = np.flatnonzero(perm == np.arange(n))
    for i in fixed:  # swap each fixed point with a random other position
        if perm[i] != i:  # an earlier swap already moved it
            continue
        j = int(rng.integers(n - 1))
        j += j >= i
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _ring_median(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Median of a ring around ``box`` (inside the image): the local background."""
    h, w = image.shape
    top, bottom, left, right = box
    margin = max(_MIN_MARGIN, math.ceil(_MARGIN * min(bottom - top, right - left)))
    t, b = max(0, top - margin), min(h, bottom + margin)
    lft, rgt = max(0, left - margin), min(w, right + margin)
    ring = np.ones((b - t, rgt - lft), dtype=bool)
    ring[top - t:bottom - t, left - lft:right - lft] = False
    around = image[t:b, lft:rgt][ring]
    return float(np.median(around)) if around.size else float(np.median(image))


def _metric(name: str, y: np.ndarray, score: np.ndarray, groups, threshold, confidence_level,
            n_resamples, rng, pos_label) -> Estimate:
    from .. import metrics

    kwargs = {"groups": groups, "confidence_level": confidence_level, "pos_label": pos_label}
    if name == "roc_auc":
        kwargs["method"] = "delong"
    else:
        kwargs.update(n_resamples=n_resamples, rng=rng)
    if name not in ("roc_auc", "average_precision"):
        kwargs["threshold"] = threshold
    return getattr(metrics, name)(y, score, **kwargs)


def check_masking(
    model: Any,
    images: Any,
    y_true: Any,
    *,
    groups: Any = None,
    image_ids: Sequence[Any] | None = None,
    regions: Sequence[str] = MASK_REGIONS,
    corner_fraction: float = 0.15,
    border_fraction: float = 0.05,
    fill: str = "background",
    primary: str | None = None,
    metric: str = "roc_auc",
    threshold: float = 0.5,
    criterion_max_drop: float = 0.05,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
    chunk_size: int = 256,
) -> Finding:
    """Mask corners, borders and burned-in text/markers, re-run the model, compare.

    Parameters
    ----------
    model : ModelAdapter or anything :func:`claimladder.models.load_model` accepts
        Binary model (one probability column, or two).
    images : array-like of shape (N, H, W), or ImageFiles
        Equally shaped 2D images, or a :class:`claimladder.cohort.ImageFiles`
        of them, decoded a chunk at a time (for image sets larger than
        memory). Files give bit-identical results to the stacked float32
        array of their images.
    y_true : array-like of shape (N,)
        Binary labels.
    groups : array-like of shape (N,), optional
        Patient ids (clustered intervals).
    image_ids : sequence, optional
        Ids for the examples.
    regions : sequence of {"corners", "borders", "text"}, default all
        Regions masked, each on its own and (with several) all together.
    corner_fraction, border_fraction : float, default 0.15 and 0.05
        Sizes of the corner squares and border strips (see :func:`mask_regions`);
        the defaults cover the usual marker and annotation positions while
        hiding little of the field of view (a wider border strip removes
        peripheral anatomy, which a weak model then misses).
    fill : {"background", "label_swap"}, default "background"
        ``"label_swap"`` fills each image's regions with the same regions of
        another image, scored twice: with a donor of the same class (the
        reference) and with a donor of the other class (the probe). Both
        swaps leave the same seams, so their difference isolates what the
        regions say about the label, whereas a model merely sensitive to
        edited images drops under both alike. ``"background"`` fills the
        regions with the local background (:func:`mask_regions`) and compares
        with the clean images: simpler, but a model that reacts to images
        unlike its training images drops even when it uses no shortcut.
    primary : str, optional
        The variant that decides the status: ``"corners"``, ``"borders"``,
        ``"text"`` or every requested region joined by ``"+"``. Default:
        ``"text"`` when requested -- the detected markers and text, a small
        targeted edit -- else every region at once. Masking whole corners
        and borders also edits anatomy and hands the model images unlike its
        training images, so for a model sensitive to edits those variants
        measure fragility as much as reliance (the table shows them, with
        the mean score change, for the reviewer to weigh).
    metric : str, default "roc_auc"
        Metric compared before and after masking.
    threshold : float, default 0.5
        Operating threshold for flip rates (and threshold metrics).
    criterion_max_drop : float, default 0.05
        Largest acceptable drop of the metric when non-anatomical regions
        are hidden.
    n_resamples, confidence_level, rng, pos_label
        As for the metrics (the paired drop uses clustered DeLong for AUROC).
    chunk_size : int, default 256
        Images masked and scored (and, from files, decoded) at a time:
        bounds memory.

    Returns
    -------
    Finding
        ``shortcuts.masking`` on rung 5 (ROBUSTNESS), judged on the
        ``primary`` variant (the other variants, in the table, show which
        region matters; judging one avoids picking the worst of several
        noisy drops):

        - ``fail``: the paired drop exceeds ``criterion_max_drop`` and its
          interval excludes 0 -- the model relies on non-anatomical regions;
        - ``warn``: the drop is established (interval above 0) but within
          the criterion;
        - ``pass``: no established drop (an uncertain drop is reported in
          the message with its interval);
        - ``not_evaluable``: the metric is undefined.

        The drop is ``metric(reference) - metric(probe)``, paired over
        images. The table has one row per variant (``none`` is the clean
        images) with the reference and probe metrics and the mean absolute
        score change of each against the clean images;
        examples are the images whose score changed most under the primary
        variant (before/after scores in ``params["example_scores"]``); the
        plot is a forest of the drops.

    Raises
    ------
    ValueError
        Bad options or lengths. From files (a ``UsageError``): one does not
        decode, is not 2D, or differs in shape from the first; the message
        names its position and path.

    Notes
    -----
    Masking also hides a little anatomy at the corners and edges, which
    costs a model that is not using shortcuts almost nothing: a large drop
    means the masked regions carried much of the signal. Combine with
    :func:`check_border_only` (can the label be read off the borders at all?).

    Memory: the images are masked and scored ``chunk_size`` at a time; from
    :class:`~claimladder.cohort.ImageFiles` at most ``chunk_size`` decoded
    images are held (twice that with ``fill="label_swap"``: the chunk and its
    donors), plus the chunk's masked copy, and one float per image and
    variant for the scores. Results do not depend on ``chunk_size`` for a
    model that scores each image independently of its batch.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.shortcuts import check_masking
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30)
    >>> images = rng.normal(0.3, 0.05, (60, 32, 32)).astype(np.float32)
    >>> images[y == 1, 1:4, 1:4] = 1.0  # a marker on every positive image
    >>> model = lambda x: x[:, :5, :5].mean(axis=(1, 2))  # reads the corner
    >>> finding = check_masking(model, images, y, regions=["corners"], rng=0)
    >>> finding.status.value, round(finding.estimate.value, 2)
    ('fail', 0.37)
    """
    owner = "check_masking"
    adapter = load_model(model)
    for region in regions:
        check_option(region, MASK_REGIONS, param="regions", owner=owner)
    regions = tuple(dict.fromkeys(regions))
    if not regions:
        raise ValueError(f"The 'regions' parameter of {owner} must name at least one region.")
    metric = check_option(metric, _MASK_METRICS, param="metric", owner=owner)
    fill = check_option(fill, MASK_FILLS, param="fill", owner=owner)
    corner_fraction = _fraction(corner_fraction, "corner_fraction")
    border_fraction = _fraction(border_fraction, "border_fraction")
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    chunk_size = check_positive_int(chunk_size, param="chunk_size", owner=owner)
    if isinstance(images, ImageFiles):
        # Decoded a chunk at a time (and, for label_swap, the chunk's donors): never all at once.
        files, batch = images, None
        n = len(files)
        if not n:
            raise ValueError(f"{owner} got no images; pass at least one.")
    else:
        files, batch = None, as_image_batch(images, owner=owner)
        if batch.ndim != 3:
            raise ValueError(f"{owner} works on 2D images (N, H, W). Got shape {batch.shape}. "
                             "Fix: pass one representative slice per volume.")
        n = batch.shape[0]
    y = as_vector(y_true, n, param="y_true", owner=owner)
    clusters = None if groups is None else as_vector(groups, n, param="groups", owner=owner)
    ids = as_ids(image_ids, n, owner)
    gen = check_rng(rng)
    variants = [(r,) for r in regions] + ([regions] if len(regions) > 1 else [])
    names = ["+".join(v) for v in variants]
    if primary is None:
        primary = "text" if "text" in regions else names[-1]
    primary = check_option(primary, names, param="primary", owner=owner)
    rngs = spawn(gen, len(variants) + 2)
    pairing_rng = rngs.pop()
    donors = _label_donors(y, pos_label, pairing_rng) if fill == "label_swap" else None
    # The swap's pairing is part of what was scored: key the cache by it.
    pairing = ("" if donors is None else
               hashlib.sha256(np.concatenate(donors).tobytes()).hexdigest()[:16])
    settings = f"corner={corner_fraction:g},border={border_fraction:g},fill={fill}{pairing}"
    shape: tuple[int, ...] | None = None

    def load(rows: np.ndarray) -> np.ndarray:
        """The float32 images at ``rows``: an index into the array, or decoded from files."""
        nonlocal shape
        if files is None:
            return batch[rows]
        stack = files.take(rows).stack(owner=owner, positions=rows, shape=shape)
        shape = stack.shape[1:]
        return stack

    def positive(proba: np.ndarray) -> np.ndarray:
        if proba.ndim == 1:
            return proba
        if adapter.classes is not None and pos_label in adapter.classes:
            return proba[:, adapter.classes.index(pos_label)]
        if proba.shape[1] == 2:
            return proba[:, 1]
        raise ValueError(f"{owner} needs a binary model; it returns {proba.shape[1]} columns.")

    def score_masked(chunk: np.ndarray, digests: list[str], variant: tuple[str, ...],
                     donor_images: np.ndarray | None, donor_of: np.ndarray | None,
                     tag: str) -> tuple[np.ndarray, np.ndarray]:
        """Scores and masked fractions of one chunk; ``donor_images[donor_of[i]]`` fills image i."""
        masked = np.empty_like(chunk)
        fractions = np.empty(chunk.shape[0])
        for i in range(chunk.shape[0]):
            image, mask = mask_regions(
                chunk[i], variant, corner_fraction=corner_fraction,
                border_fraction=border_fraction,
                donor=None if donor_images is None else donor_images[donor_of[i]])
            masked[i] = image
            fractions[i] = mask.mean()
        keys = adapter.keys_from_digests(
            digests, perturbation=f"mask:{'+'.join(variant)}({settings},{tag})", severity=1,
            seed=None)
        return positive(adapter.predict_proba(masked, keys=keys)), fractions

    # One float per image and variant; the images themselves one chunk at a time.
    clean = np.empty(n)
    masked_scores = {name: np.empty(n) for name in names}
    references = {name: np.empty(n) for name in names} if donors is not None else None
    masked_fractions = {name: np.empty(n) for name in names}
    for start in range(0, n, chunk_size):
        rows = np.arange(start, min(start + chunk_size, n))
        chunk = load(rows)
        digests = image_digests(chunk)
        clean[rows] = positive(adapter.predict_proba(chunk))
        if donors is None:  # background fill, compared with the clean images
            for variant, name in zip(variants, names, strict=True):
                masked_scores[name][rows], masked_fractions[name][rows] = score_masked(
                    chunk, digests, variant, None, None, "background")
        else:  # regions from same-class images (the reference) vs other-class ones (the probe)
            for donor, tag in zip(donors, ("same", "other"), strict=True):
                needed, donor_of = np.unique(donor[rows], return_inverse=True)
                donor_images = load(needed)
                for variant, name in zip(variants, names, strict=True):
                    scores, fractions = score_masked(chunk, digests, variant, donor_images,
                                                     donor_of, tag)
                    if tag == "same":
                        references[name][rows], masked_fractions[name][rows] = scores, fractions
                    else:
                        masked_scores[name][rows] = scores
                del donor_images
        del chunk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        clean_est = _metric(metric, y, clean, clusters, threshold, confidence_level,
                            n_resamples, rngs[0], pos_label)
    rows = [{"variant": "none", "masked_fraction": 0.0, "n_images_masked": 0,
             "reference": clean_est.value, "estimate": clean_est.value,
             "ci_low": clean_est.ci.low, "ci_high": clean_est.ci.high, "drop": 0.0,
             "drop_ci_low": 0.0, "drop_ci_high": 0.0, "p_value": 1.0, "flip_rate": 0.0,
             "mean_abs_change": 0.0, "mean_abs_change_reference": 0.0}]
    for name, child in zip(names, rngs[1:], strict=True):
        scores, fractions = masked_scores[name], masked_fractions[name]
        reference = clean if references is None else references[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            warnings.simplefilter("ignore", SmallSampleWarning)
            ref_est, est = (_metric(metric, y, v, clusters, threshold, confidence_level,
                                    n_resamples, child, pos_label) for v in (reference, scores))
            comparison = compare_paired(y, reference, scores, metric=metric, groups=clusters,
                                        threshold=threshold, n_resamples=n_resamples,
                                        confidence_level=confidence_level, rng=child,
                                        pos_label=pos_label)
        diff = comparison.difference  # reference - probe: the drop
        flipped = (scores >= threshold) != (clean >= threshold)
        rows.append({"variant": name, "masked_fraction": float(fractions.mean()),
                     "n_images_masked": int((fractions > 0).sum()),
                     "reference": ref_est.value, "estimate": est.value,
                     "ci_low": est.ci.low, "ci_high": est.ci.high, "drop": diff.value,
                     "drop_ci_low": diff.ci.low, "drop_ci_high": diff.ci.high,
                     "p_value": comparison.p_value, "flip_rate": float(flipped.mean()),
                     "mean_abs_change": float(np.abs(scores - clean).mean()),
                     "mean_abs_change_reference": float(np.abs(reference - clean).mean())})
    table = pd.DataFrame(rows)
    how = ("come from images of the other class (vs the same class)" if donors is not None
           else "are masked")
    criterion = (f"no established {metric} drop above {criterion_max_drop:g} when the "
                 f"{primary.replace('+', ', ')} {how}")
    params = {"regions": list(regions), "corner_fraction": corner_fraction,
              "border_fraction": border_fraction, "fill": fill, "primary": primary,
              "metric": metric, "threshold": threshold}
    xlabel = (f"{metric} drop (same-class - other-class regions)" if donors is not None
              else f"{metric} drop (clean - masked)")
    plot = Plot(kind="forest", title=f"{metric} drop when regions are masked",
                data=table.loc[1:, ["variant", "drop", "drop_ci_low", "drop_ci_high"]]
                .rename(columns={"variant": "label", "drop": "estimate",
                                 "drop_ci_low": "ci_low", "drop_ci_high": "ci_high"})
                .reset_index(drop=True),
                options={"reference": 0.0, "xlabel": xlabel})
    judged = table.iloc[1:]
    if not clean_est.is_defined or judged["drop"].isna().all():
        return Finding(check="shortcuts.masking", rung=Rung.ROBUSTNESS,
                       status=Status.NOT_EVALUABLE,
                       message=f"Masking probe not evaluable: {metric} is undefined on these "
                               "images (one class only?).",
                       criterion=criterion, table=table, plots=(plot,), params=params)
    worst = judged.loc[judged["variant"] == primary].iloc[0]
    estimate = Estimate(value=worst["drop"], ci=ConfidenceInterval(
        low=_nan(worst["drop_ci_low"]), high=_nan(worst["drop_ci_high"])),
        confidence_level=confidence_level, method=f"paired {clean_est.method}", n=n,
        n_clusters=clean_est.n_clusters, n_pos=clean_est.n_pos)
    change = np.abs(masked_scores[worst["variant"]] - clean)
    order = np.argsort(-change, kind="stable")[:MAX_EXAMPLES]
    order = order[change[order] > 0]
    examples = tuple(ids[order])
    params["example_scores"] = [
        {"image_id": str(ids[i]), "variant": str(worst["variant"]), "before": float(clean[i]),
         "after": float(masked_scores[worst["variant"]][i])} for i in order]
    masked_what = {"text": "detected markers and text"}.get(primary, primary.replace("+", ", "))
    drop_text = (f"{metric} drops by {worst['drop']:.3f} [{worst['drop_ci_low']:.3f}, "
                 f"{worst['drop_ci_high']:.3f}] (from {worst['reference']:.3f} to "
                 f"{worst['estimate']:.3f}) when the {masked_what} {how}; "
                 f"{worst['flip_rate']:.0%} of predictions flip")
    established = _nan(worst["drop_ci_low"]) > 0
    if worst["n_images_masked"] == 0:
        status = Status.PASS
        message = (f"No {masked_what} were found on any of the {n} images, so nothing was "
                   f"masked (the table shows the other regions).")
    elif established and worst["drop"] > criterion_max_drop:
        status = Status.FAIL
        message = (f"{drop_text}: the model relies on non-anatomical regions (markers, text, "
                   "borders).")
    elif established:
        status = Status.WARN
        message = f"{drop_text}: a small but established reliance on these regions."
    else:
        status = Status.PASS
        message = f"{drop_text}: no established drop."
    return Finding(check="shortcuts.masking", rung=Rung.ROBUSTNESS, status=status,
                   message=message, estimate=estimate, criterion=criterion, table=table,
                   plots=(plot,), examples=examples, params=params)


def _nan(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)
