"""File names and paths: tokens that predict the label, identifiers and dates embedded in names."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import fisher_exact

from .._core import (
    AlignmentError,
    Finding,
    Rung,
    Status,
    check_positive_int,
    check_probability,
    did_you_mean,
)
from ..cohort import Cohort
from ._common import MAX_EXAMPLES, check_headers, clean_values, holm, site_values

__all__ = ["check_filename_label", "tokenize_path"]

_CHECK = "leakage.filename_label"
_SEPARATORS = re.compile(r"[/\\_\-.\s]+")
_RUNS = re.compile(r"[^\W\d_]+|\d+")  # letter runs and digit runs
_MAX_DIGIT_TOKEN = 4  # longer digit runs may be fragments of identifiers: never reported
_SITE_ALIGNED = 0.02
_YYYYMMDD = re.compile(r"(?<!\d)((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")
_ISO_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d{2})[-_.](0[1-9]|1[0-2])[-_.](0[1-9]|[12]\d|3[01])(?!\d)"
)
_MIN_ID_LENGTH = 3
_COLUMNS = ["kind", "item", "stratum", "n_patients_with", "n_patients_without",
            "n_images_with", "positive_rate_with", "positive_rate_without", "odds_ratio",
            "p_value", "p_adjusted", "flagged", "note"]


def tokenize_path(path: str) -> list[str]:
    """Split a path into lowercase tokens.

    The path is split on ``/``, ``\\``, ``_``, ``-``, ``.`` and blanks, and
    each piece again where letters meet digits.

    Parameters
    ----------
    path : str
        A file path or name.

    Returns
    -------
    list of str
        Tokens in order, repeats kept.

    Examples
    --------
    >>> tokenize_path("images/SiteB/IMG0042_opacity.dcm")
    ['images', 'siteb', 'img', '0042', 'opacity', 'dcm']
    """
    return [run for piece in _SEPARATORS.split(str(path).lower()) for run in _RUNS.findall(piece)]


def _reportable(token: str) -> bool:
    return not (token.isdigit() and len(token) > _MAX_DIGIT_TOKEN)


def _has_date(path: str) -> tuple[bool, bool]:
    def valid(match: re.Match[str]) -> bool:
        try:
            dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            return False
        return True

    compact = any(valid(m) for m in _YYYYMMDD.finditer(path))
    iso = any(valid(m) for m in _ISO_DATE.finditer(path))
    return compact, iso


def _id_pattern(identifier: str) -> re.Pattern[str]:
    # The id must not continue into characters of its own class on either side
    # ("P001" is not in "P0012"), but may touch the other class ("img12345").
    left = r"(?<!\d)" if identifier[0].isdigit() else r"(?<![^\W\d_])"
    right = r"(?!\d)" if identifier[-1].isdigit() else r"(?![^\W\d_])"
    if not identifier[0].isalnum():
        left = ""
    if not identifier[-1].isalnum():
        right = ""
    return re.compile(left + re.escape(identifier) + right, re.IGNORECASE)


def _contains_id(paths: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows whose path contains the row's own identifier; ids too short to test are counted."""
    cache: dict[str, re.Pattern[str]] = {}
    hit = np.zeros(len(paths), dtype=bool)
    too_short = 0
    for i, (path, identifier) in enumerate(zip(paths.tolist(), ids.tolist(), strict=True)):
        if identifier is None:
            continue
        if len(identifier) < _MIN_ID_LENGTH:
            too_short += 1
            continue
        pattern = cache.get(identifier)
        if pattern is None:
            pattern = cache[identifier] = _id_pattern(identifier)
        hit[i] = pattern.search(path) is not None
    return hit, too_short


def _select_rows(cohort: Cohort, masks: Mapping[str, Any] | None) -> np.ndarray:
    if masks is None:
        return np.ones(cohort.n_images, dtype=bool)
    if not isinstance(masks, Mapping):
        raise TypeError(
            "The 'masks' parameter of check_filename_label must be a mapping from partition "
            f"name to a boolean mask over the cohort rows. Got {type(masks).__name__} instead."
        )
    rows = np.zeros(cohort.n_images, dtype=bool)
    for name, mask in masks.items():
        array = np.asarray(mask)
        if array.dtype != bool or array.shape != (cohort.n_images,):
            raise AlignmentError(
                f"The mask of partition {name!r} passed to check_filename_label must be a "
                f"boolean array with one entry per cohort row ({cohort.n_images}). Got dtype "
                f"{array.dtype} and shape {array.shape} instead."
            )
        rows |= array
    return rows


def _unit_counts(presence: sparse.csr_matrix, units: np.ndarray, unit_label: np.ndarray
                 ) -> tuple[np.ndarray, ...]:
    """Per token: positive / negative units (patient, label) with and without the token.

    A patient counts once per cell, so repeated images of one patient do not
    add evidence; a patient whose images differ in the token counts in both.
    """
    n_units = len(unit_label)
    onehot = sparse.csr_matrix(
        (np.ones(len(units)), (units, np.arange(len(units)))), shape=(n_units, len(units))
    )
    with_token = np.asarray((onehot @ presence).todense())
    rows_per_unit = np.bincount(units, minlength=n_units)[:, None]
    has = with_token > 0
    lacks = with_token < rows_per_unit
    pos = unit_label == 1
    return (has[pos].sum(0), lacks[pos].sum(0), has[~pos].sum(0), lacks[~pos].sum(0))


def _presence(tokens: list[list[str]], vocabulary: list[str]) -> sparse.csr_matrix:
    """Rows x tokens indicator matrix."""
    index = {t: j for j, t in enumerate(vocabulary)}
    pairs = {(i, index[t]) for i, row in enumerate(tokens) for t in row if t in index}
    r = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    c = np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs))
    return sparse.csr_matrix((np.ones(len(pairs)), (r, c)), shape=(len(tokens), len(vocabulary)))


def _token_tests(presence: sparse.csr_matrix, vocabulary: list[str], patients: np.ndarray,
                 y: np.ndarray, stratum_rows: dict[str, np.ndarray], min_support: int
                 ) -> list[dict[str, Any]]:
    tests = []
    for stratum, rows in stratum_rows.items():
        sel = np.flatnonzero(rows)
        if not len(sel):
            continue
        unit_frame = pd.DataFrame({"patient": patients[sel], "label": y[sel]})
        units = unit_frame.groupby(["patient", "label"], sort=False).ngroup().to_numpy()
        unit_label = np.zeros(units.max() + 1, dtype=int)
        unit_label[units] = y[sel]
        if unit_label.min() == unit_label.max():
            continue
        a, b, cc, d = _unit_counts(presence[sel], units, unit_label)
        n_images = np.asarray(presence[sel].sum(0)).ravel()
        for j, token in enumerate(vocabulary):
            with_t, without_t = a[j] + cc[j], b[j] + d[j]
            if with_t < min_support or without_t < min_support:
                continue
            _, p = fisher_exact([[a[j], b[j]], [cc[j], d[j]]])
            # Haldane-Anscombe: finite when a cell is empty (perfect separation).
            odds = (a[j] + 0.5) * (d[j] + 0.5) / ((b[j] + 0.5) * (cc[j] + 0.5))
            tests.append({
                "kind": "token", "item": token, "stratum": stratum,
                "n_patients_with": int(with_t), "n_patients_without": int(without_t),
                "n_images_with": int(n_images[j]),
                "positive_rate_with": a[j] / with_t, "positive_rate_without": b[j] / without_t,
                "odds_ratio": float(odds), "p_value": float(p),
            })
    return tests


def _site_aligned(presence: sparse.csr_matrix, vocabulary: list[str], sites: np.ndarray
                  ) -> dict[str, bool]:
    """Whether each token is (nearly) constant within every site: a site marker."""
    codes, _ = pd.factorize(pd.Series(sites, dtype=object), use_na_sentinel=False)
    onehot = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                               shape=(codes.max() + 1, len(codes)))
    share = np.asarray((onehot @ presence).todense()) / np.bincount(codes)[:, None]
    aligned = ((share <= _SITE_ALIGNED) | (share >= 1 - _SITE_ALIGNED)).all(axis=0)
    return dict(zip(vocabulary, aligned.tolist(), strict=True))


def check_filename_label(
    cohort: Cohort,
    *,
    path_column: str | None = None,
    masks: Mapping[str, Any] | None = None,
    headers: pd.DataFrame | None = None,
    site: str | Any | None = None,
    min_support: int = 5,
    alpha: float = 0.05,
) -> Finding:
    """Find path tokens that predict the label, and identifiers or dates in file names.

    Paths are split into tokens (:func:`tokenize_path`). For each token, the
    positive rate of patients whose path holds it is compared with that of
    patients whose path does not, by Fisher's exact test, over all rows and
    within each site; Holm's method adjusts for every test made. A token that
    separates labels within a site, or overall while not marking a site, is a
    label leak (e.g. ``..._opacity.dcm``). A token that only marks a site
    whose prevalence differs (e.g. a site folder) is listed in the table but
    does not count: it tells nothing beyond the site column. The check also counts
    paths that embed the row's own patient id (and, with ``headers``, its DICOM
    PatientID or AccessionNumber) or a date (``YYYYMMDD``, ``YYYY-MM-DD``).

    Parameters
    ----------
    cohort : Cohort
        The cohort; rows with a missing label or path are ignored.
    path_column : str, optional
        Column holding the paths; default the cohort's ``path`` role.
    masks : mapping of str to array of bool, optional
        Partitions; when given, only rows in at least one of them are audited.
    headers : pandas.DataFrame, optional
        DICOM header table aligned with the cohort rows; its ``PatientID`` and
        ``AccessionNumber`` are searched for in the paths.
    site : str or sequence, optional
        Site column name or one site per row; default the cohort's site role.
    min_support : int, default=5
        Fewest patients with, and without, a token for it to be tested (per
        stratum). It also keeps tokens peculiar to one patient (a name) out of
        the report.
    alpha : float, default=0.05
        Family-wise error rate of the Holm-adjusted token tests.

    Returns
    -------
    Finding
        ``leakage.filename_label`` (rung 1). Table rows of kind ``token``
        (significant tokens only, per stratum, with patient counts, positive
        rates, Haldane-Anscombe odds ratio, raw and adjusted p-values) and of kind
        ``identifier`` (how many paths embed each kind of identifier or date;
        never the values). Status ``fail`` for a label token, ``warn`` for
        embedded identifiers and dates, ``pass`` otherwise,
        ``not_evaluable`` without paths or without both labels.

    Raises
    ------
    TypeError
        ``masks`` is not a mapping or ``headers`` is not a DataFrame.
    ValueError
        ``path_column`` or ``site`` names a missing column, or an option is invalid.
    AlignmentError
        A mask, ``site`` or ``headers`` is not aligned with the cohort rows.

    Notes
    -----
    Counting patients rather than images, one per (patient, label, token
    presence) cell, keeps a patient with many images from producing a
    significant token on their own. Digit runs longer than four characters
    are never tested nor reported (they may be fragments of identifiers);
    identifiers shorter than three characters are not searched for (they match
    by chance) and are counted in the table's note.

    Examples
    --------
    >>> import pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> label = [1, 0] * 20
    >>> table = pd.DataFrame({
    ...     "image_id": [f"i{k}" for k in range(40)],
    ...     "patient_id": [f"p{k}" for k in range(40)], "label": label,
    ...     "path": [f"img/{k}_{'pos' if y else 'neg'}.png" for k, y in enumerate(label)]})
    >>> cohort = Cohort(table=table, roles=ColumnRoles(path="path"))
    >>> finding = check_filename_label(cohort)
    >>> finding.status.value
    'fail'
    >>> sorted(finding.table.loc[finding.table["flagged"], "item"])
    ['neg', 'pos']
    """
    owner = "check_filename_label"
    min_support = check_positive_int(min_support, param="min_support", owner=owner)
    alpha = check_probability(alpha, param="alpha", owner=owner)
    headers = check_headers(headers, cohort, owner=owner)
    column = path_column if path_column is not None else cohort.roles.path
    params: dict[str, Any] = {"path_column": column, "min_support": min_support,
                              "alpha": alpha, "test": "Fisher exact on patients, Holm-adjusted"}
    if column is None:
        return Finding(check=_CHECK, rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
                       message="The cohort has no path column (role 'path'), so file names "
                               "could not be audited.", params=params)
    columns = [str(c) for c in cohort.table.columns]
    if column not in columns:
        raise ValueError(
            f"The 'path_column' parameter of {owner} must name a cohort column. Got "
            f"{column!r} instead.{did_you_mean(column, columns)}"
        )
    all_sites = site_values(cohort, site, owner=owner)
    all_paths = clean_values(cohort.table[column])
    y_all = cohort.y_true
    rows = (_select_rows(cohort, masks) & ~np.isnan(y_all)
            & np.array([p is not None for p in all_paths]))
    paths = all_paths[rows]
    y = y_all[rows].astype(int)
    patients = cohort.patient_ids[rows].astype(object)
    image_ids = cohort.image_ids[rows]
    sites = None if all_sites is None else all_sites[rows]
    params["n_images"] = int(rows.sum())

    id_rows, id_hits = _identifier_rows(cohort, headers, rows, paths, patients)
    if not len(paths) or y.min() == y.max():
        table = pd.DataFrame(id_rows, columns=_COLUMNS)
        return Finding(check=_CHECK, rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
                       message="File names could not be tested against the label: the audited "
                               f"rows ({len(paths)}) do not hold both classes.",
                       table=table, params=params)

    tokens = [[t for t in tokenize_path(p) if _reportable(t)] for p in paths.tolist()]
    vocabulary = _vocabulary(tokens, patients, min_support)
    strata = {"all": np.ones(len(paths), dtype=bool)}
    if sites is not None:
        for s in sorted({v for v in sites.tolist() if v is not None}):
            strata[f"site={s}"] = sites == s
    presence = _presence(tokens, vocabulary)
    tests = _token_tests(presence, vocabulary, patients, y, strata, min_support)
    adjusted = holm(np.array([t["p_value"] for t in tests]))
    aligned = (_site_aligned(presence, vocabulary, sites)
               if sites is not None and vocabulary else {})
    significant = [dict(t, p_adjusted=float(p)) for t, p in zip(tests, adjusted, strict=True)
                   if p < alpha]
    within_site = {t["item"] for t in significant if t["stratum"] != "all"}
    label_tokens, site_tokens = set(), set()
    for test in significant:
        token = test["item"]
        if token in within_site or not aligned.get(token, False):
            test["flagged"], test["note"] = True, "separates labels: label leak"
            label_tokens.add(token)
        else:
            # A site folder carries no information beyond the site column itself.
            test["flagged"] = False
            test["note"] = "marks a site whose prevalence differs: no leak beyond the site"
            site_tokens.add(token)
    params.update(n_tokens_tested=len(vocabulary), n_tests=len(tests),
                  strata=list(strata))
    table = pd.DataFrame(significant + id_rows, columns=_COLUMNS)
    return _finding(table, params, label_tokens, site_tokens, tokens, y, image_ids, id_hits)


def _vocabulary(tokens: list[list[str]], patients: np.ndarray, min_support: int) -> list[str]:
    """Tokens carried by at least ``min_support`` patients and missing for as many."""
    holders: dict[str, set] = {}
    for row, patient in zip(tokens, patients.tolist(), strict=True):
        for t in set(row):
            holders.setdefault(t, set()).add(patient)
    n_patients = len(set(patients.tolist()))
    return sorted(t for t, h in holders.items()
                  if len(h) >= min_support and n_patients - len(h) >= min_support)


def _identifier_rows(cohort: Cohort, headers: pd.DataFrame | None, rows: np.ndarray,
                     paths: np.ndarray, patients: np.ndarray
                     ) -> tuple[list[dict[str, Any]], np.ndarray]:
    checks: list[tuple[str, np.ndarray, str]] = []
    hit, short = _contains_id(paths, patients)
    checks.append(("patient_id (cohort)", hit,
                   f"{short} id(s) shorter than {_MIN_ID_LENGTH} characters not searched"
                   if short else ""))
    if headers is not None:
        for keyword in ("PatientID", "AccessionNumber"):
            if keyword in headers.columns:
                values = clean_values(headers[keyword])[rows]
                hit, short = _contains_id(paths, values)
                checks.append((f"{keyword} (DICOM)", hit,
                               f"{short} value(s) shorter than {_MIN_ID_LENGTH} characters "
                               "not searched" if short else ""))
    dates = [_has_date(p) for p in paths.tolist()]
    checks.append(("date YYYYMMDD", np.array([d[0] for d in dates], dtype=bool), ""))
    checks.append(("date YYYY-MM-DD", np.array([d[1] for d in dates], dtype=bool), ""))
    out, any_hit = [], np.zeros(len(paths), dtype=bool)
    for item, hit, note in checks:
        hit = np.asarray(hit, dtype=bool)
        any_hit |= hit
        n_with = len(set(patients[hit].tolist()))
        out.append({"kind": "identifier", "item": item, "stratum": "all",
                    "n_patients_with": n_with,
                    "n_patients_without": len(set(patients[~hit].tolist())),
                    "n_images_with": int(hit.sum()), "positive_rate_with": math.nan,
                    "positive_rate_without": math.nan, "odds_ratio": math.nan,
                    "p_value": math.nan, "p_adjusted": math.nan,
                    "flagged": bool(hit.any()), "note": note})
    return out, any_hit


def _finding(table: pd.DataFrame, params: Mapping[str, Any], label_tokens: set[str],
             site_tokens: set[str], tokens: list[list[str]], y: np.ndarray,
             image_ids: np.ndarray, id_hits: np.ndarray) -> Finding:
    criterion = "no path token separates the labels; no identifier or date in file names"
    ids = table[(table["kind"] == "identifier") & table["flagged"]]
    id_text = "; ".join(f"{r.item} in {r.n_images_with} path(s)" for r in ids.itertuples())
    if label_tokens:
        status = Status.FAIL
        listed = ", ".join(repr(t) for t in sorted(label_tokens))
        message = (f"File paths leak the label: the token(s) {listed} separate positive from "
                   "negative cases (Fisher exact, Holm-adjusted). A model that sees the "
                   "names, or images exported alongside them, can read the label. Fix: rename "
                   "the files with label-free ids.")
        carriers = np.array([bool(label_tokens & set(t)) for t in tokens])
        examples = [*image_ids[carriers & (y == 1)], *image_ids[carriers & (y == 0)]]
    else:
        status = Status.WARN if len(ids) else Status.PASS
        message = (f"No path token predicts the label beyond the site "
                   f"({params.get('n_tokens_tested', 0)} tokens tested)")
        if site_tokens:
            listed = ", ".join(repr(t) for t in sorted(site_tokens))
            message += (f"; {listed} mark(s) sites whose prevalence differs, which the site "
                        "audit covers")
        message += "." if len(ids) else ", and no file name embeds an identifier or a date."
        examples = image_ids[id_hits].tolist()
    if len(ids):
        message += (f" File names embed identifiers or dates ({id_text}); rename the files "
                    "with pseudonymous ids before sharing.")
    return Finding(check=_CHECK, rung=Rung.INTERNAL, status=status, message=message,
                   criterion=criterion, table=table, examples=tuple(examples[:MAX_EXAMPLES]),
                   params=dict(params))
