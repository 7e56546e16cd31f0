"""Pixel-level leakage: duplicated images across partitions, markers and burned-in text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from .._core import Finding, Rung, Status
from ..cohort import Cohort
from ..features import (
    MarkerRegion,
    content_hash,
    exact_duplicate_pairs,
    near_duplicate_pairs,
    perceptual_hash,
    recognize_text_regions,
    text_marker_regions,
    verify_near_duplicates,
)
from ._common import FIT_KINDS, MAX_EXAMPLES, TEST_KINDS, check_partitions, holm

__all__ = [
    "check_burned_in_text",
    "check_near_duplicates",
    "check_pixel_markers",
    "marker_flags",
    "ocr_counts",
    "partition_labels",
    "pixel_regions",
]

_UNASSIGNED = "(unassigned)"


def partition_labels(n: int, masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (first) partition name of every row; ``"(unassigned)"`` for rows in none."""
    labels = np.full(n, _UNASSIGNED, dtype=object)
    for name, mask in reversed(list(masks.items())):
        labels[np.asarray(mask, dtype=bool)] = name
    return labels


def _readable(images: Sequence[np.ndarray | None]) -> np.ndarray:
    return np.array([im is not None and np.ndim(im) == 2 for im in images], dtype=bool)


class _Rows(Sequence):
    """The images at ``rows`` of a sequence, fetched on access (no copy, no decoding ahead)."""

    def __init__(self, images: Sequence[Any], rows: np.ndarray) -> None:
        self._images, self._rows = images, rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, k):  # type: ignore[override]
        return self._images[int(self._rows[k])]


def check_near_duplicates(
    cohort: Cohort,
    images: Sequence[np.ndarray | None],
    masks: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    max_distance: int = 10,
    fdr: float = 0.05,
    min_correlation: float = 0.9,
    hashes: np.ndarray | None = None,
    digests: Sequence[str | None] | None = None,
) -> Finding:
    """Exact and near-duplicate images shared by a fitting and a test partition.

    Parameters
    ----------
    cohort : Cohort
        Rows aligned with ``images``.
    images : sequence of 2D arrays or None
        Decoded images (``None`` for unreadable ones, which are skipped). With
        ``hashes`` and ``digests`` only the images of candidate pairs compared on
        pixels are accessed, so a sequence that decodes on access
        (:class:`claimladder.cohort.ImageFiles`) keeps memory bounded.
    masks, kinds : mappings
        Partition name -> row mask, and -> kind (development, calibration,
        internal_test, external).
    max_distance : int, default 10
        Largest Hamming distance between 64-bit DCT perceptual hashes that makes
        a pair a candidate (re-encoding, small crops and intensity shifts stay within it).
    fdr, min_correlation : float, default 0.05 and 0.9
        How candidates are confirmed (:func:`claimladder.features.verify_near_duplicates`):
        by their hash where unrelated images of this cohort rarely come as close
        (estimated false-discovery rate at most ``fdr``), otherwise by the correlation
        of their fine-scale pixel noise over shifts of up to 2 pixels.
    hashes, digests : optional
        :func:`claimladder.features.perceptual_hash` and
        :func:`claimladder.features.content_hash` of every row computed
        beforehand (e.g. chunk by chunk), ``None`` digest where the image is
        unreadable or not 2D; given together.

    Returns
    -------
    Finding
        ``leakage.near_duplicates`` (rung 1): fail when any confirmed pair crosses a
        fitting and a test partition; the table lists those pairs by image id with the
        hash distance, the noise correlation and what confirmed them.

    Notes
    -----
    Exact duplicates compare a SHA-256 of the decoded pixels and need no
    confirmation. Near-duplicate candidates come from multi-index hashing (no
    all-pairs comparison); only candidates are compared on pixels. Pairs
    inside one partition are counted but do not fail the check.
    """
    masks, kinds = check_partitions(cohort, masks, kinds, owner="check_near_duplicates")
    if (hashes is None) != (digests is None):
        raise ValueError("check_near_duplicates: give 'hashes' and 'digests' together, or "
                         "neither (then the images are hashed here).")
    if digests is None:
        ok = _readable(images)
    else:
        ok = np.array([d is not None for d in digests], dtype=bool)
        if ok.size != cohort.n_images or np.shape(hashes) != (cohort.n_images,):
            raise ValueError(f"check_near_duplicates: 'hashes' and 'digests' need one entry "
                             f"per cohort row ({cohort.n_images}).")
    rows_ok = np.flatnonzero(ok)
    ids = cohort.image_ids
    partition = partition_labels(cohort.n_images, masks)
    kind_of = {**{n: k for n, k in kinds.items()}, _UNASSIGNED: "unassigned"}
    subset = _Rows(images, rows_ok)
    if digests is None:
        decoded = [images[i] for i in rows_ok]
        phash = perceptual_hash(decoded) if decoded else np.zeros(0, dtype=np.uint64)
        content = content_hash(decoded) if decoded else []
    else:
        phash = np.asarray(hashes, dtype=np.uint64)[rows_ok]
        content = [digests[i] for i in rows_ok]
    candidates = near_duplicate_pairs(phash, max_distance=max_distance)
    verified = verify_near_duplicates(subset, phash, candidates, fdr=fdr,
                                      min_correlation=min_correlation)
    near = verified[verified["confirmed"]]
    exact = exact_duplicate_pairs(content) if len(content) else candidates.iloc[:0]
    columns = ["image_a", "partition_a", "image_b", "partition_b", "match", "distance",
               "correlation", "confirmed_by"]
    records = []
    for pair in exact.itertuples(index=False):
        a, b = rows_ok[int(pair.i)], rows_ok[int(pair.j)]
        records.append({"image_a": ids[a], "partition_a": partition[a], "image_b": ids[b],
                        "partition_b": partition[b], "match": "exact", "distance": 0,
                        "correlation": 1.0, "confirmed_by": "content hash"})
    for pair in near.itertuples(index=False):
        a, b = rows_ok[int(pair.i)], rows_ok[int(pair.j)]
        by_pixels = not np.isnan(pair.correlation)
        records.append({"image_a": ids[a], "partition_a": partition[a], "image_b": ids[b],
                        "partition_b": partition[b], "match": "near",
                        "distance": int(pair.distance),
                        "correlation": round(float(pair.correlation), 4) if by_pixels else np.nan,
                        "confirmed_by": "pixel noise" if by_pixels else "perceptual hash"})
    table = pd.DataFrame(records, columns=columns)
    table = table.drop_duplicates(subset=["image_a", "image_b"], keep="first")

    def crosses(row: pd.Series) -> bool:
        ka, kb = kind_of[row.partition_a], kind_of[row.partition_b]
        return (ka in FIT_KINDS and kb in TEST_KINDS) or (kb in FIT_KINDS and ka in TEST_KINDS)

    cross = table[table.apply(crosses, axis=1)] if len(table) else table
    n_on_pixels = int(verified["correlation"].notna().sum()) if len(verified) else 0
    params = {"max_distance": max_distance, "fdr": fdr, "min_correlation": min_correlation,
              "n_hashed": int(ok.sum()), "n_candidates": len(candidates),
              "n_compared_on_pixels": n_on_pixels, "n_pairs_total": len(table),
              "hash": "dct-phash-64", "verification": "fine-scale noise correlation, +-2 px"}
    criterion = "no exact or near-duplicate image in both a fitting and a test partition"
    how = (f"{len(candidates)} perceptual-hash candidate pair(s) within {max_distance} bits, "
           f"{n_on_pixels} of them compared on pixel noise")
    if len(cross):
        test_side = [r.image_b if kind_of[r.partition_b] in TEST_KINDS else r.image_a
                     for r in cross.itertuples()]
        n_exact = int((cross["match"] == "exact").sum())
        return Finding(
            check="leakage.near_duplicates", rung=Rung.INTERNAL, status=Status.FAIL,
            message=(f"{len(cross)} image pair(s) appear in both a fitting and a test partition "
                     f"({n_exact} exact, {len(cross) - n_exact} near duplicates; {how}): the "
                     "test set contains images the model was fit on, under other ids."),
            criterion=criterion, table=cross.reset_index(drop=True),
            examples=tuple(dict.fromkeys(test_side))[:MAX_EXAMPLES], params=params)
    return Finding(
        check="leakage.near_duplicates", rung=Rung.INTERNAL, status=Status.PASS,
        message=(f"No duplicate or near-duplicate image crosses fitting and test partitions "
                 f"({int(ok.sum())} images hashed; {how}; {len(table)} confirmed pair(s) "
                 "within partitions)."),
        criterion=criterion, table=table.reset_index(drop=True) if len(table) else None,
        params=params)


def pixel_regions(images: Sequence[np.ndarray | None]) -> list[list[MarkerRegion] | None]:
    """The text and marker boxes of every image (``None`` for unreadable ones).

    Computed once and shared by :func:`marker_flags` and :func:`check_burned_in_text`.
    """
    return [None if im is None or np.ndim(im) != 2 else text_marker_regions(im)
            for im in images]


def marker_flags(
    images: Sequence[np.ndarray | None],
    regions: Sequence[Sequence[MarkerRegion] | None] | None = None,
) -> pd.DataFrame:
    """Per image: whether a corner/border marker and whether text-like regions were detected.

    ``regions`` (from :func:`pixel_regions`) saves detecting them again.
    """
    if regions is None:
        regions = pixel_regions(images)
    rows = []
    for found in regions:
        if found is None:
            rows.append({"marker": np.nan, "text": np.nan})
            continue
        rows.append({"marker": float(any(r.kind == "marker" for r in found)),
                     "text": float(any(r.kind == "text" for r in found))})
    return pd.DataFrame(rows, columns=["marker", "text"])


def _fit_rows(cohort: Cohort, masks: Mapping[str, np.ndarray], kinds: Mapping[str, str]
              ) -> np.ndarray:
    fit = np.zeros(cohort.n_images, dtype=bool)
    for name, kind in kinds.items():
        if kind in FIT_KINDS:
            fit |= masks[name]
    return fit


def _association(present: np.ndarray, y: np.ndarray, fit: np.ndarray,
                 sites: np.ndarray) -> pd.DataFrame:
    """Fisher's exact test of presence vs label in the fitting rows, pooled and per site."""
    rows = []
    for s in ["all", *sorted(set(sites[fit].tolist()) - {"all"})]:
        rows_mask = fit & ~np.isnan(present) & ~np.isnan(y)
        if s != "all":
            rows_mask &= sites == s
        p_on, yy = present[rows_mask] == 1, y[rows_mask] == 1
        table2 = [[int((p_on & yy).sum()), int((p_on & ~yy).sum())],
                  [int((~p_on & yy).sum()), int((~p_on & ~yy).sum())]]
        p = fisher_exact(table2)[1] if p_on.any() and (~p_on).any() and yy.any() and (
            ~yy).any() else np.nan
        n_on = int(p_on.sum())
        rows.append({"site": s, "n": int(rows_mask.sum()), "n_present": n_on,
                     "positive_rate_present": table2[0][0] / n_on if n_on else np.nan,
                     "positive_rate_absent": (table2[1][0] / (rows_mask.sum() - n_on)
                                              if rows_mask.sum() - n_on else np.nan),
                     "p_value": p})
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_value"].to_numpy())
    return table


def _sites(cohort: Cohort, site: Sequence[Any] | None) -> np.ndarray:
    return np.asarray(site, dtype=object) if site is not None else np.full(cohort.n_images, "all")


def check_pixel_markers(
    cohort: Cohort,
    flags: pd.DataFrame,
    masks: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    site: Sequence[Any] | None = None,
    alpha: float = 0.05,
) -> Finding:
    """Does the presence of corner/border markers predict the label where the model is fit?

    Parameters
    ----------
    cohort : Cohort
    flags : pandas.DataFrame
        :func:`marker_flags` of the cohort's images (rows aligned).
    masks, kinds : mappings
        Partitions, as for :func:`check_near_duplicates`.
    site : sequence, optional
        Site of every row: the association is tested within each site of the
        fitting partitions (and pooled), Fisher's exact test, Holm across tests.
    alpha : float, default 0.05
        Family-wise error rate.

    Returns
    -------
    Finding
        ``leakage.pixel_markers``: fail when marker presence is associated with the
        label in fitting data after Holm. Burned-in text is
        :func:`check_burned_in_text`'s.
    """
    masks, kinds = check_partitions(cohort, masks, kinds, owner="check_pixel_markers")
    fit = _fit_rows(cohort, masks, kinds)
    y = cohort.y_true
    present = flags["marker"].to_numpy(dtype=float)
    table = _association(present, y, fit, _sites(cohort, site))
    n_all = int(np.nansum(present))
    associated = table[table["p_holm"] < alpha]
    if len(associated):
        worst = associated.sort_values("p_holm").iloc[0]
        status = Status.FAIL
        message = (f"Corner/border markers are associated with the label in the fitting data "
                   f"(site {worst.site}: positive rate {worst.positive_rate_present:.0%} with "
                   f"vs {worst.positive_rate_absent:.0%} without, Holm p = "
                   f"{worst.p_holm:.2g}): a model can learn them instead of anatomy.")
    else:
        status = Status.PASS
        message = (f"Corner/border markers detected in {n_all} image(s); no association "
                   "with the label in the fitting data.")
    examples = tuple(cohort.image_ids[(present == 1) & fit & (y == 1)][:MAX_EXAMPLES])
    return Finding(check="leakage.pixel_markers", rung=Rung.INTERNAL, status=status,
                   message=message,
                   criterion=f"no association with the label (Holm, alpha {alpha})",
                   table=table, examples=examples if status is Status.FAIL else (),
                   params={"detector": "features.text_marker_regions"})


_OCR_COLUMNS = ["text_regions", "regions_with_words", "words", "date_like_words",
                "number_like_words"]


def ocr_counts(
    images: Sequence[np.ndarray | None],
    regions: Sequence[Sequence[MarkerRegion] | None] | None = None,
) -> pd.DataFrame:
    """Per image, what OCR read in its text-like regions, as counts (never the text).

    Columns ``text_regions``, ``regions_with_words``, ``words``, ``date_like_words``,
    ``number_like_words`` (NaN for unreadable images). Raises
    :class:`~claimladder.features.OcrUnavailableError` without pytesseract/Tesseract.
    """
    if regions is None:
        regions = pixel_regions(images)
    found = recognize_text_regions(
        [None if r is None else im for im, r in zip(images, regions)],
        [() if r is None else r for r in regions])
    rows = [dict.fromkeys(_OCR_COLUMNS, np.nan) if f is None else {
        "text_regions": f.n_regions, "regions_with_words": f.n_regions_with_words,
        "words": f.n_words, "date_like_words": f.n_date_like,
        "number_like_words": f.n_number_like} for f in found]
    return pd.DataFrame(rows, columns=_OCR_COLUMNS)


def check_burned_in_text(
    cohort: Cohort,
    images: Sequence[np.ndarray | None],
    masks: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    regions: Sequence[Sequence[MarkerRegion] | None] | None = None,
    site: Sequence[Any] | None = None,
    alpha: float = 0.05,
    counts: pd.DataFrame | None = None,
) -> Finding:
    """Burned-in text read by OCR: how much, where, and whether it predicts the label.

    Parameters
    ----------
    cohort : Cohort
        Rows aligned with ``images``.
    images : sequence of 2D arrays or None
        Decoded images (``None`` for unreadable ones); not read (may be None)
        when ``counts`` and ``regions`` are given.
    masks, kinds : mappings
        Partitions, as for :func:`check_near_duplicates`.
    regions : sequence, optional
        :func:`pixel_regions` of the images, when already computed.
    site : sequence, optional
        Site of every row, for the per-site association tests.
    alpha : float, default 0.05
        Family-wise error rate (Holm across the pooled and per-site tests).
    counts : pandas.DataFrame, optional
        :func:`ocr_counts` of the images and ``regions`` computed beforehand
        (e.g. chunk by chunk); give ``regions`` with it.

    Returns
    -------
    Finding
        ``leakage.burned_in_text`` (rung 1). Only the text-like regions of the
        dependency-free detector are read (Tesseract, via pytesseract); an image has
        burned-in text when at least one word is recognised. Fail when its presence is
        associated with the label in the fitting partitions (Fisher's exact test, Holm);
        warn when any image has text (it may carry identifiers); pass otherwise. The
        table gives counts per site (images with text, words, date- and number-like
        words) and the association tests; recognised text is never reported.
        ``not_evaluable`` when pytesseract or Tesseract is missing (the message says how
        to install them and how many images the detector flagged).
    """
    from ..features import OcrUnavailableError, ocr_available

    masks, kinds = check_partitions(cohort, masks, kinds, owner="check_burned_in_text")
    if counts is not None and regions is None:
        raise ValueError("check_burned_in_text: give 'regions' with 'counts' (both from the "
                         "same images).")
    if regions is None:
        regions = pixel_regions(images)
    n_regions = int(sum(1 for r in regions if r and any(b.kind == "text" for b in r)))
    criterion = f"no burned-in text associated with the label (Holm, alpha {alpha})"
    available, why = ocr_available()
    if counts is not None:
        available = True
    elif available:
        try:
            counts = ocr_counts(images, regions)
        except OcrUnavailableError as exc:  # removed between the check and the run
            available, why = False, str(exc)
    if not available:
        return Finding(
            check="leakage.burned_in_text", rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
            message=(f"Burned-in text was not read: OCR is unavailable ({why}) The "
                     f"dependency-free detector found text-like regions in {n_regions} "
                     "image(s); whether they hold text, and whether it predicts the label, "
                     "needs OCR."),
            criterion=criterion, params={"ocr": "unavailable",
                                         "images_with_text_like_regions": n_regions})
    fit = _fit_rows(cohort, masks, kinds)
    y = cohort.y_true
    words = counts["words"].to_numpy(dtype=float)
    present = np.where(np.isnan(words), np.nan, (words > 0).astype(float))
    sites = _sites(cohort, site)
    table = _association(present, y, fit, sites)
    per_site = []
    for s in ["all", *sorted(set(sites.tolist()) - {"all"}, key=str)]:
        rows = np.ones(cohort.n_images, bool) if s == "all" else sites == s
        per_site.append({"site": s, "images": int((rows & ~np.isnan(present)).sum()),
                         "images_with_text": int((rows & (present == 1)).sum()),
                         "words": int(np.nansum(words[rows])),
                         "date_like_words": int(np.nansum(counts["date_like_words"][rows])),
                         "number_like_words": int(np.nansum(
                             counts["number_like_words"][rows]))})
    # Counts for every site; the association tests (fitting rows only) where they ran.
    table = pd.DataFrame(per_site).merge(
        table.rename(columns={"n": "n_fitting", "n_present": "n_fitting_with_text"}),
        on="site", how="left")
    n_text = int(np.nansum(present))
    n_dates = int(np.nansum(counts["date_like_words"]))
    n_numbers = int(np.nansum(counts["number_like_words"]))
    associated = table[table["p_holm"] < alpha]
    content = (f"OCR read {int(np.nansum(words))} word(s) in {n_text} image(s) "
               f"({n_dates} date-like, {n_numbers} number-like; text not shown)")
    if len(associated):
        worst = associated.sort_values("p_holm").iloc[0]
        status = Status.FAIL
        message = (f"Burned-in text is associated with the label in the fitting data (site "
                   f"{worst.site}: positive rate {worst.positive_rate_present:.0%} with vs "
                   f"{worst.positive_rate_absent:.0%} without, Holm p = {worst.p_holm:.2g}): "
                   f"a model can read it instead of the anatomy. {content}.")
    elif n_text:
        status = Status.WARN
        tested = bool(np.isfinite(y[fit]).any())
        message = (f"{content}; " + ("not associated with the label, but " if tested else
                                     "no labels to test an association with; ")
                   + "burned-in text may carry identifiers: check before sharing the images.")
    else:
        status = Status.PASS
        message = (f"No burned-in text: OCR read no word in the text-like regions of "
                   f"{n_regions} image(s).")
    examples = tuple(cohort.image_ids[(present == 1) & fit & (y == 1)][:MAX_EXAMPLES])
    if status is Status.WARN:
        examples = tuple(cohort.image_ids[present == 1][:MAX_EXAMPLES])
    return Finding(check="leakage.burned_in_text", rung=Rung.INTERNAL, status=status,
                   message=message, criterion=criterion, table=table,
                   examples=examples if status is not Status.PASS else (),
                   params={"ocr": "tesseract", "min_confidence": 50.0,
                           "images_with_text_like_regions": n_regions,
                           "detector": "features.text_marker_regions"})
