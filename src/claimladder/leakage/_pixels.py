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
    content_hash,
    exact_duplicate_pairs,
    near_duplicate_pairs,
    perceptual_hash,
    text_marker_regions,
)
from ._common import FIT_KINDS, MAX_EXAMPLES, TEST_KINDS, check_partitions, holm

__all__ = ["check_near_duplicates", "check_pixel_markers", "marker_flags", "partition_labels"]

_UNASSIGNED = "(unassigned)"


def partition_labels(n: int, masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (first) partition name of every row; ``"(unassigned)"`` for rows in none."""
    labels = np.full(n, _UNASSIGNED, dtype=object)
    for name, mask in reversed(list(masks.items())):
        labels[np.asarray(mask, dtype=bool)] = name
    return labels


def _readable(images: Sequence[np.ndarray | None]) -> np.ndarray:
    return np.array([im is not None and np.ndim(im) == 2 for im in images], dtype=bool)


def check_near_duplicates(
    cohort: Cohort,
    images: Sequence[np.ndarray | None],
    masks: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    max_distance: int = 8,
) -> Finding:
    """Exact and near-duplicate images shared by a fitting and a test partition.

    Parameters
    ----------
    cohort : Cohort
        Rows aligned with ``images``.
    images : sequence of 2D arrays or None
        Decoded images (``None`` for unreadable ones, which are skipped).
    masks, kinds : mappings
        Partition name -> row mask, and -> kind (development, calibration,
        internal_test, external).
    max_distance : int, default 8
        Largest Hamming distance between 64-bit DCT perceptual hashes that counts as a
        near duplicate (re-encoding, small crops and intensity shifts stay within it).

    Returns
    -------
    Finding
        ``leakage.near_duplicates`` (rung 1): fail when any pair crosses a fitting and a
        test partition; the table lists those pairs by image id.

    Notes
    -----
    Exact duplicates compare a hash of the decoded pixels; near duplicates use
    multi-index hashing (no all-pairs comparison). Pairs inside one partition
    are counted but do not fail the check.
    """
    masks, kinds = check_partitions(cohort, masks, kinds, owner="check_near_duplicates")
    ok = _readable(images)
    rows_ok = np.flatnonzero(ok)
    ids = cohort.image_ids
    partition = partition_labels(cohort.n_images, masks)
    kind_of = {**{n: k for n, k in kinds.items()}, _UNASSIGNED: "unassigned"}
    subset = [images[i] for i in rows_ok]
    hashes = perceptual_hash(subset) if subset else np.zeros(0, dtype=np.uint64)
    near = near_duplicate_pairs(hashes, max_distance=max_distance)
    exact = exact_duplicate_pairs(content_hash(subset)) if subset else near.iloc[:0]
    records = []
    for kind_name, pairs in (("exact", exact), ("near", near)):
        for pair in pairs.itertuples(index=False):
            a, b = rows_ok[int(pair.i)], rows_ok[int(pair.j)]
            records.append({"image_a": ids[a], "partition_a": partition[a],
                            "image_b": ids[b], "partition_b": partition[b], "match": kind_name,
                            "distance": 0 if kind_name == "exact" else int(pair.distance)})
    table = pd.DataFrame(records, columns=["image_a", "partition_a", "image_b", "partition_b",
                                           "match", "distance"])
    table = table.drop_duplicates(subset=["image_a", "image_b"], keep="first")

    def crosses(row: pd.Series) -> bool:
        ka, kb = kind_of[row.partition_a], kind_of[row.partition_b]
        return (ka in FIT_KINDS and kb in TEST_KINDS) or (kb in FIT_KINDS and ka in TEST_KINDS)

    cross = table[table.apply(crosses, axis=1)] if len(table) else table
    params = {"max_distance": max_distance, "n_hashed": int(ok.sum()),
              "n_pairs_total": int(len(table)), "hash": "dct-phash-64"}
    criterion = "no exact or near-duplicate image in both a fitting and a test partition"
    if len(cross):
        test_side = [r.image_b if kind_of[r.partition_b] in TEST_KINDS else r.image_a
                     for r in cross.itertuples()]
        n_exact = int((cross["match"] == "exact").sum())
        return Finding(
            check="leakage.near_duplicates", rung=Rung.INTERNAL, status=Status.FAIL,
            message=(f"{len(cross)} image pair(s) appear in both a fitting and a test partition "
                     f"({n_exact} exact, {len(cross) - n_exact} near duplicates within "
                     f"{max_distance} bits): the test set contains images the model was fit "
                     "on, under other ids."),
            criterion=criterion, table=cross.reset_index(drop=True),
            examples=tuple(dict.fromkeys(test_side))[:MAX_EXAMPLES], params=params)
    return Finding(
        check="leakage.near_duplicates", rung=Rung.INTERNAL, status=Status.PASS,
        message=(f"No duplicate or near-duplicate image crosses fitting and test partitions "
                 f"({int(ok.sum())} images hashed; {len(table)} pair(s) within partitions)."),
        criterion=criterion, table=table.reset_index(drop=True) if len(table) else None,
        params=params)


def marker_flags(images: Sequence[np.ndarray | None]) -> pd.DataFrame:
    """Per image: whether a corner/border marker and whether text-like regions were detected."""
    rows = []
    for im in images:
        if im is None or np.ndim(im) != 2:
            rows.append({"marker": np.nan, "text": np.nan})
            continue
        regions = text_marker_regions(im)
        rows.append({"marker": float(any(r.kind == "marker" for r in regions)),
                     "text": float(any(r.kind == "text" for r in regions))})
    return pd.DataFrame(rows, columns=["marker", "text"])


def check_pixel_markers(
    cohort: Cohort,
    flags: pd.DataFrame,
    masks: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    site: Sequence[Any] | None = None,
    alpha: float = 0.05,
) -> list[Finding]:
    """Do detected markers or burned-in text predict the label where the model is fit?

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
    list of Finding
        ``leakage.pixel_markers`` (fail when marker presence is associated with the
        label in fitting data after Holm) and ``leakage.burned_in_text`` (text-like
        regions: fail when associated with the label, warn when present at all, as
        burned-in text may carry identifiers).
    """
    masks, kinds = check_partitions(cohort, masks, kinds, owner="check_pixel_markers")
    fit = np.zeros(cohort.n_images, dtype=bool)
    for name, kind in kinds.items():
        if kind in FIT_KINDS:
            fit |= masks[name]
    y = cohort.y_true
    sites = np.asarray(site, dtype=object) if site is not None else np.full(cohort.n_images, "all")
    findings = []
    for kind_name, check in (("marker", "leakage.pixel_markers"),
                             ("text", "leakage.burned_in_text")):
        present = flags[kind_name].to_numpy()
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
        n_all = int(np.nansum(present))
        associated = table[table["p_holm"] < alpha]
        examples = tuple(cohort.image_ids[(present == 1) & fit & (y == 1)][:MAX_EXAMPLES])
        what = "corner/border markers" if kind_name == "marker" else "burned-in text regions"
        if len(associated):
            worst = associated.sort_values("p_holm").iloc[0]
            status = Status.FAIL
            message = (f"{what.capitalize()} are associated with the label in the fitting data "
                       f"(site {worst.site}: positive rate {worst.positive_rate_present:.0%} with "
                       f"vs {worst.positive_rate_absent:.0%} without, Holm p = "
                       f"{worst.p_holm:.2g}): a model can learn them instead of anatomy.")
        elif kind_name == "text" and n_all:
            status = Status.WARN
            message = (f"Burned-in text-like regions in {n_all} image(s); not associated with "
                       "the label, but they may carry identifiers (check before sharing).")
        else:
            status = Status.PASS
            message = (f"{what.capitalize()} detected in {n_all} image(s); no association "
                       "with the label in the fitting data.")
        findings.append(Finding(check=check, rung=Rung.INTERNAL, status=status, message=message,
                                criterion=f"no association with the label (Holm, alpha {alpha})",
                                table=table, examples=examples if status is Status.FAIL else (),
                                params={"detector": "features.text_marker_regions"}))
    return findings
