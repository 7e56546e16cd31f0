"""Failure analysis (rung 3): the worst test cases, and the metadata slices where the model fails.

The bias audit (``_rung3``) asks whether declared subgroups lose AUROC; failure
analysis asks the complementary, exploratory question a reviewer asks of the
errors themselves (CLAIM 2024 item 39, "failure analysis of incorrectly classified
cases"): which cases does the model get most confidently wrong, and do errors
concentrate in some slice of the metadata? Both belong to rung 3 (DESIGN.md
lists failure analysis under the bias audit), and both pool every test
partition (internal and external) with the partition itself as a slicing
attribute, so a failing site shows up as a slice.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .._core import Finding, Plot, RngLike, Rung, Status, check_positive_int, check_rng
from ..metrics import holm_adjust
from ..subgroups import subgroup_labels
from ._common import metric_options, test_partitions
from ._data import StudyData
from ._rung3 import audit_attributes, bias_findings

__all__ = ["SLICE_COLUMNS", "THUMBNAIL_SIZE", "bias_and_failure_findings", "failure_findings",
           "slice_error_table", "thumbnail_data_uri", "worst_cases"]

#: Columns of :func:`slice_error_table`.
SLICE_COLUMNS = ("slice", "n_attributes", "n", "n_clusters", "n_pos", "errors", "error_rate",
                 "ci_low", "ci_high", "rest_error_rate", "difference", "difference_ci_low",
                 "difference_ci_high", "p_value", "p_holm")

_ALPHA = 0.05
_GALLERY_PER_KIND = 6
#: Largest side of a report thumbnail, in pixels.
THUMBNAIL_SIZE = 96
_MAX_LEVELS = 12  # a categorical column with more levels is an identifier, not a slice
_EPS = 1e-6
_SKIP_ROLES = ("image_id", "patient_id", "label", "path", "acquired_at", "label_certainty",
               "adjudicated")


def slice_error_table(
    errors: Any,
    labels: pd.DataFrame,
    *,
    y_true: Any,
    groups: Any = None,
    min_size: int = 30,
    max_attributes: int = 2,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
) -> pd.DataFrame:
    """Error rate in every 1- and 2-attribute metadata slice against the rest of the cases.

    Parameters
    ----------
    errors : array-like of bool, shape (n,)
        Whether each case is misclassified at the operating threshold.
    labels : pandas.DataFrame
        One string column of slice labels per attribute, rows aligned with ``errors``.
    y_true : array-like, shape (n,)
        Binary labels (only counted: ``n_pos`` per slice).
    groups : array-like, shape (n,), optional
        Patient ids; the bootstrap resamples patients (default: each case its own cluster).
    min_size : int, default 30
        Slices, and the rest of the cases, must have at least this many cases.
    max_attributes : {1, 2}, default 2
        Largest number of attributes combined in a slice.
    n_resamples, confidence_level, rng
        Cluster bootstrap: one draw of patients shared by every slice, so the
        slice and its complement are paired.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SLICE_COLUMNS`, worst slice first (largest lower bound of
        the ``difference`` interval, then largest ``difference``).
        A 2-attribute slice that contains exactly the cases of a 1-attribute
        slice is left out. ``p_value`` is a one-sided Wald test (bootstrap
        standard error) against the slice having no more errors than the rest:
        the question is where the model fails more, and a slice with no error at
        all has a degenerate bootstrap spread that a two-sided test would flag.
        ``p_holm`` is Holm-adjusted over every slice in the table.

    Examples
    --------
    >>> labels = pd.DataFrame({"site": ["A"] * 40 + ["B"] * 40})
    >>> errors = np.r_[np.zeros(40, bool), np.arange(40) % 2 == 0]
    >>> t = slice_error_table(errors, labels, y_true=np.arange(80) % 2, n_resamples=200, rng=0)
    >>> t[["slice", "n", "error_rate", "rest_error_rate"]].to_dict("records")[0]
    {'slice': 'site = B', 'n': 40, 'error_rate': 0.5, 'rest_error_rate': 0.0}
    """
    min_size = check_positive_int(min_size, param="min_size", owner="slice_error_table")
    e = np.asarray(errors, dtype=bool)
    y = np.asarray(y_true)
    n = e.size
    codes = (np.arange(n) if groups is None
             else pd.factorize(np.asarray(groups), sort=True)[0])
    n_clusters = int(codes.max()) + 1 if n else 0
    masks, names, widths = _slice_masks(labels.reset_index(drop=True), min_size, n,
                                        max_attributes)
    if not masks:
        return pd.DataFrame(columns=list(SLICE_COLUMNS))
    member = np.column_stack(masks).astype(float)  # (n, S)
    # Per patient: cases and errors inside each slice, then per replicate the
    # weighted sums (weights = how often each patient was drawn).
    counts = np.zeros((n_clusters, member.shape[1]))
    errs = np.zeros_like(counts)
    np.add.at(counts, codes, member)
    np.add.at(errs, codes, member * e[:, None])
    total_counts = np.bincount(codes, minlength=n_clusters).astype(float)
    total_errs = np.bincount(codes, weights=e.astype(float), minlength=n_clusters)
    generator = check_rng(rng)
    draws = generator.integers(0, n_clusters, size=(n_resamples, n_clusters))
    flat = (np.arange(n_resamples)[:, None] * n_clusters + draws).ravel()
    weights = np.bincount(flat, minlength=n_resamples * n_clusters).reshape(
        n_resamples, n_clusters).astype(float)
    w_counts, w_errs = weights @ counts, weights @ errs
    w_total, w_total_errs = weights @ total_counts, weights @ total_errs
    with np.errstate(invalid="ignore", divide="ignore"):
        rep_rate = w_errs / w_counts
        rep_rest = (w_total_errs[:, None] - w_errs) / (w_total[:, None] - w_counts)
    rep_diff = rep_rate - rep_rest
    alpha = (1 - confidence_level) / 2
    rows = []
    for j, name in enumerate(names):
        inside = masks[j]
        rate = float(e[inside].mean())
        rest = float(e[~inside].mean())
        diff = rate - rest
        rows.append({
            "slice": name, "n_attributes": widths[j], "n": int(inside.sum()),
            "n_clusters": int(np.unique(codes[inside]).size), "n_pos": int(y[inside].sum()),
            "errors": int(e[inside].sum()), "error_rate": rate,
            **dict(zip(("ci_low", "ci_high"), _percentile(rep_rate[:, j], alpha))),
            "rest_error_rate": rest, "difference": diff,
            **dict(zip(("difference_ci_low", "difference_ci_high"),
                       _percentile(rep_diff[:, j], alpha))),
            "p_value": _wald_p(rep_diff[:, j], diff)})
    table = pd.DataFrame(rows, columns=[c for c in SLICE_COLUMNS if c != "p_holm"])
    table["p_holm"] = holm_adjust(table["p_value"].to_numpy())
    # worst first by the lower bound of the difference: large and certain excesses lead,
    # not the noisy extremes of small slices
    low = table["difference_ci_low"].fillna(-np.inf).to_numpy()
    order = np.lexsort((table["slice"].to_numpy(), -table["difference"].to_numpy(), -low))
    return table.iloc[order].reset_index(drop=True)


def _slice_masks(labels: pd.DataFrame, min_size: int, n: int,
                 max_attributes: int) -> tuple[list[np.ndarray], list[str], list[int]]:
    masks, names, widths, seen = [], [], [], set()

    def add(mask: np.ndarray, name: str, width: int) -> None:
        size = int(mask.sum())
        key = mask.tobytes()
        if size < min_size or n - size < min_size or key in seen:
            return
        seen.add(key)
        masks.append(mask)
        names.append(name)
        widths.append(width)

    values = {c: labels[c].astype(str).to_numpy() for c in labels.columns}
    for column in labels.columns:
        for level in sorted(set(values[column])):
            add(values[column] == level, f"{column} = {level}", 1)
    if max_attributes >= 2:
        for a, b in combinations(labels.columns, 2):
            for la in sorted(set(values[a])):
                for lb in sorted(set(values[b])):
                    add((values[a] == la) & (values[b] == lb), f"{a} = {la} & {b} = {lb}", 2)
    return masks, names, widths


def _percentile(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return math.nan, math.nan
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def _wald_p(replicates: np.ndarray, value: float) -> float:
    """One-sided p-value of "no more errors than the rest", bootstrap standard error."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2:
        return math.nan
    se = float(np.std(finite, ddof=1))
    if se == 0:
        return 0.0 if value > 0 else 1.0
    return float(ndtr(-value / se))


def worst_cases(y_true: Any, y_score: Any, *, threshold: float = 0.5,
                k: int = _GALLERY_PER_KIND) -> pd.DataFrame:
    """The ``k`` most confident false negatives and false positives (highest log loss).

    Returns row positions ``index`` with ``error`` ("false negative" / "false
    positive"), ``score`` and ``loss`` (binary cross-entropy, scores clipped to
    [1e-6, 1 - 1e-6]); ties are broken by position, so the choice is deterministic.

    Examples
    --------
    >>> worst_cases([1, 1, 0, 0], [0.1, 0.9, 0.8, 0.3], k=1)[["index", "error"]].values.tolist()
    [[0, 'false negative'], [2, 'false positive']]
    """
    y = np.asarray(y_true).astype(int)
    s = np.clip(np.asarray(y_score, dtype=float), _EPS, 1 - _EPS)
    loss = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    predicted = s >= threshold
    frames = []
    for kind, wrong in (("false negative", (y == 1) & ~predicted),
                        ("false positive", (y == 0) & predicted)):
        idx = np.flatnonzero(wrong)
        idx = idx[np.lexsort((idx, -loss[idx]))][:k]
        frames.append(pd.DataFrame({"index": idx, "error": kind, "score": s[idx],
                                    "loss": loss[idx]}))
    return pd.concat(frames, ignore_index=True)


def thumbnail_data_uri(image: np.ndarray, *, size: int = THUMBNAIL_SIZE,
                       hide: tuple[str, ...] = ("text", "marker")) -> tuple[str, int]:
    """A PHI-safe PNG thumbnail as a ``data:`` URI, and how many regions were blacked out.

    Burned-in text and markers anywhere in the image (``text_marker_regions``
    with the search band widened to the whole image) are set to black at full
    resolution before the image is downsampled to at most ``size`` pixels per side:
    a text line across the full width (the detector may miss its first or last
    glyphs), a marker as its box grown by 2 pixels. The detector is a heuristic;
    text it does not find stays, blurred only by the downsampling. ``hide`` names
    the region kinds blacked out (text always should be: it can carry PHI; a
    before/after masking example keeps the markers it is about).
    """
    from PIL import Image

    from ..features import text_marker_regions

    pixels = np.asarray(image, dtype=float)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    low, high = np.percentile(pixels, (1, 99)) if pixels.size else (0.0, 1.0)
    scaled = np.clip((pixels - low) / (high - low), 0, 1) if high > low else np.zeros_like(pixels)
    regions = [r for r in text_marker_regions(pixels, band=0.5) if r.kind in hide]
    for region in regions:
        rows, cols = region.slices
        top, bottom = max(rows.start - 2, 0), rows.stop + 2
        if region.kind == "text":
            # The detector can miss the first or last glyphs of a line (thin or touching
            # strokes), so a text line is blacked out across the whole width.
            scaled[top:bottom, :] = 0.0
        else:
            scaled[top:bottom, max(cols.start - 2, 0):cols.stop + 2] = 0.0
    picture = Image.fromarray(np.round(scaled * 255).astype(np.uint8), mode="L")
    picture.thumbnail((size, size), Image.Resampling.BOX)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return ("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            len(regions))


def _display_ids(image_ids: np.ndarray, patient_ids: np.ndarray) -> list[str]:
    """Image ids, replaced by a hash where the id embeds the patient id."""
    out = []
    for image_id, patient in zip(map(str, image_ids), map(str, patient_ids)):
        if len(patient) >= 4 and patient in image_id:
            image_id = "case-" + hashlib.sha256(image_id.encode()).hexdigest()[:10]
        out.append(image_id)
    return out


def _pooled_tests(data: StudyData) -> tuple[np.ndarray, np.ndarray]:
    """Rows in any test partition, and each row's (first declared) test partition."""
    names = test_partitions(data)
    partition = np.full(data.cohort.n_images, "", dtype=object)
    for name in reversed(names):
        partition[data.partitions.masks[name]] = name
    return partition != "", partition


def _slice_attributes(data: StudyData) -> tuple[list[str], str | None]:
    """Categorical cohort columns with at most 12 levels (identifiers and labels excluded)."""
    declared, age = audit_attributes(data)
    roles = data.cohort.roles
    skip = {getattr(roles, r) for r in _SKIP_ROLES} | set(roles.annotators)
    table = data.cohort.table
    extra = [c for c in table.columns if c not in skip and c not in declared
             and not pd.api.types.is_numeric_dtype(table[c]) and table[c].nunique() <= _MAX_LEVELS]
    return [c for c in declared if c not in skip] + extra, age


def bias_and_failure_findings(data: StudyData) -> list[Finding]:
    """Rung 3: the bias audit (:func:`bias_findings`), then the failure analysis."""
    return [*bias_findings(data), *failure_findings(data)]


def failure_findings(data: StudyData) -> list[Finding]:
    """``failure.worst_cases`` (gallery) and ``failure.slices`` (slice finding), rung 3."""
    if data.scores is None:
        return [Finding(check="failure.slices", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
                        message="No predictions were given, so no failure analysis was run.")]
    tested, partition = _pooled_tests(data)
    if not tested.any():
        return [Finding(check="failure.slices", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
                        message="No test partition is declared, so no failure analysis was run.")]
    threshold = float(data.study.metrics["threshold"])
    return [_gallery(data, tested, partition, threshold),
            _slices(data, tested, partition, threshold)]


def _gallery(data: StudyData, tested: np.ndarray, partition: np.ndarray,
             threshold: float) -> Finding:
    rows = np.flatnonzero(tested)
    cohort = data.cohort
    worst = worst_cases(cohort.y_true[rows], data.scores[rows], threshold=threshold)
    if worst.empty:
        return Finding(check="failure.worst_cases", rung=Rung.BIAS, status=Status.PASS,
                       message=f"No test case is misclassified at threshold {threshold:g}.")
    picked = rows[worst["index"].to_numpy()]
    ids = _display_ids(cohort.image_ids[picked], cohort.patient_ids[picked])
    thumbs, masked = [""] * len(picked), [0] * len(picked)
    if data.has_images:
        for i, image in enumerate(data.image_files(picked)):
            if image is not None:
                thumbs[i], masked[i] = thumbnail_data_uri(image)
    gallery = pd.DataFrame({"image_id": ids, "partition": partition[picked].astype(str),
                            "label": cohort.y_true[picked].astype(int),
                            "error": worst["error"], "score": worst["score"].round(4),
                            "loss": worst["loss"].round(4), "text_regions_masked": masked,
                            "thumbnail": thumbs})
    n_fn = int((worst["error"] == "false negative").sum())
    n_fp = len(worst) - n_fn
    where = (f"Thumbnails are downsampled to at most {THUMBNAIL_SIZE} px after every line of "
             "detected burned-in text (full width) and every detected marker is blacked out "
             f"({sum(masked)} region(s) in total); the detector is a heuristic, so review "
             "thumbnails before sharing the report." if data.has_images
             else "The cohort names no image files, so no thumbnail is shown.")
    return Finding(
        check="failure.worst_cases", rung=Rung.BIAS, status=Status.PASS,
        message=(f"The {n_fn} most confident false negative(s) and {n_fp} false positive(s) "
                 f"over all test partitions (highest log loss at threshold {threshold:g}), "
                 f"for qualitative review. {where} Cases are listed by image id only."),
        plots=(Plot(kind="gallery", title="Most confident errors", data=gallery,
                    options={"thumbnail_size": THUMBNAIL_SIZE}),),
        examples=tuple(ids),
        params={"threshold": threshold, "per_kind": _GALLERY_PER_KIND,
                "thumbnail_size": THUMBNAIL_SIZE, "text_regions_masked": int(sum(masked))})


def _slices(data: StudyData, tested: np.ndarray, partition: np.ndarray,
            threshold: float) -> Finding:
    attributes, age = _slice_attributes(data)
    cohort = data.cohort
    table = cohort.table.loc[tested].reset_index(drop=True)
    labels = subgroup_labels(table, attributes, age_column=age,
                             age_bands=data.study.subgroups.get("age_bands"))
    labels.insert(0, "partition", partition[tested].astype(str))
    # a column constant within every partition (e.g. the split column the partitions are
    # defined by) only regroups partitions: it adds slices, not information
    within = labels.groupby("partition")[list(labels.columns[1:])].nunique().max()
    varying = ["partition"] * (labels["partition"].nunique() > 1) + [
        c for c in labels.columns[1:] if labels[c].nunique() > 1 and within[c] > 1]
    min_n = int(data.study.criterion("bias", "min_group_size"))
    options = metric_options(data)
    y = cohort.y_true[tested]
    errors = (data.scores[tested] >= threshold) != (y == 1)
    result = slice_error_table(errors, labels[varying], y_true=y,
                               groups=cohort.patient_ids[tested], min_size=min_n,
                               rng=data.study.seed + 37, **options)
    criterion = (f"no metadata slice has more errors (threshold {threshold:g}) than the rest "
                 f"of the test cases, Holm-adjusted p < {_ALPHA}")
    params = {"attributes": varying, "min_size": min_n, "threshold": threshold,
              "alpha": _ALPHA, "n_slices": len(result)}
    if result.empty:
        return Finding(check="failure.slices", rung=Rung.BIAS, status=Status.NOT_EVALUABLE,
                       message=(f"No metadata slice of the pooled test cases has at least "
                                f"{min_n} cases (with at least {min_n} outside it)."),
                       criterion=criterion, params=params)
    flagged = result[(result["p_holm"] < _ALPHA) & (result["difference"] > 0)]
    overall = float(errors.mean())
    top = result.head(15)
    plot = Plot(kind="forest", title="Error rate in the worst metadata slices",
                data=pd.DataFrame({"label": top["slice"], "estimate": top["error_rate"],
                                   "ci_low": top["ci_low"], "ci_high": top["ci_high"]}),
                options={"xlabel": f"error rate at threshold {threshold:g}",
                         "reference": overall})
    head = (f"{len(result)} metadata slice(s) of the pooled test cases ({int(tested.sum())} "
            f"cases, overall error rate {overall:.3f}) were compared with the rest")
    if len(flagged):
        listed = "; ".join(
            f"{r.slice}: {r.error_rate:.3f} vs {r.rest_error_rate:.3f} (n={r.n})"
            for r in flagged.head(5).itertuples())
        status = Status.WARN
        message = (f"{head}; {len(flagged)} have significantly more errors after Holm "
                   f"correction: {listed}" + (" ..." if len(flagged) > 5 else "") + ".")
    else:
        status = Status.PASS
        message = f"{head}; none has significantly more errors after Holm correction."
    return Finding(check="failure.slices", rung=Rung.BIAS, status=status, message=message,
                   criterion=criterion, table=result, plots=(plot,),
                   params={**params, "n_flagged": len(flagged)})
