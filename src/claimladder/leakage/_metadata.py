"""Metadata columns that predict the label: one-feature AUROC against a permutation null."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import norm, rankdata
from sklearn.model_selection import GroupKFold

from .._core import (
    AlignmentError,
    Finding,
    RngLike,
    Rung,
    Status,
    check_positive_int,
    check_probability,
    check_rng,
    did_you_mean,
)
from ..cohort import Cohort
from ._common import (
    check_headers,
    check_partitions,
    clean_values,
    hanley_mcneil_se,
    holm,
    site_values,
    union,
)

__all__ = ["WORKFLOW_FIELDS", "check_metadata_label", "is_workflow_field"]

_CHECK = "leakage.metadata_label"

#: Fields recorded by the ordering / reporting workflow rather than by the
#: acquisition: they are not available to a model at inference time (or only
#: after a human has looked at the case), so their association with the label
#: is a leak. Matched against column names and DICOM keywords after
#: lowercasing and removing everything but letters and digits; see
#: :func:`is_workflow_field` for the substring stems also matched.
WORKFLOW_FIELDS: tuple[str, ...] = (
    "AccessionNumber",
    "AdmissionID",
    "AdmittingDiagnosesDescription",
    "CurrentPatientLocation",
    "ImageComments",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "PatientState",
    "PerformedProcedureStepDescription",
    "PerformingPhysicianName",
    "PhysiciansOfRecord",
    "ReasonForStudy",
    "ReasonForTheRequestedProcedure",
    "ReferringPhysicianName",
    "RequestedProcedureComments",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "RequestedProcedurePriority",
    "RequestingPhysician",
    "RequestingService",
    "ScheduledProcedureStepDescription",
    "StudyComments",
    "StudyDescription",
    "StudyPriorityID",
    "priority",
    "urgency",
    "stat",
    "referring_physician",
    "ordering_physician",
    "requesting_physician",
    "accession",
    "study_description",
    "indication",
    "reason_for_exam",
    "clinical_history",
    "report",
    "findings",
    "impression",
    "diagnosis",
    "ward",
    "location",
    "admission",
)
# Substrings that mark a workflow field whatever the exact column name ("exam_priority").
_WORKFLOW_STEMS = (
    "priority", "urgen", "referring", "requesting", "ordering", "accession", "indication",
    "reasonfor", "report", "finding", "impression", "diagnos", "requestedprocedure",
    "studydescription", "comment", "admission", "admitting", "physician",
)  # fmt: skip
_DICOM_PREFIX = "dicom:"
_MAX_CATEGORY_LEVELS_AS_NUMERIC = 5
_SMOOTHING = 10.0
_PERMUTATION_CHUNK = 50
_Z_CRITICAL = 1.959963984540054  # two-sided 5 %


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_WORKFLOW_NORMALISED = frozenset(_normalise(f) for f in WORKFLOW_FIELDS)


def is_workflow_field(name: str) -> bool:
    """Whether a column name or DICOM keyword denotes a workflow / administrative field.

    A name matches when, lowercased and stripped of everything but letters and
    digits, it equals an entry of :data:`WORKFLOW_FIELDS` or contains one of
    the stems ``priority``, ``urgen``, ``referring``, ``requesting``,
    ``ordering``, ``accession``, ``indication``, ``reasonfor``, ``report``,
    ``finding``, ``impression``, ``diagnos``, ``requestedprocedure``,
    ``studydescription``, ``comment``, ``admission``, ``admitting``,
    ``physician``. A ``"dicom:"`` prefix is ignored.

    Examples
    --------
    >>> is_workflow_field("exam_priority"), is_workflow_field("dicom:StudyDescription")
    (True, True)
    >>> is_workflow_field("age"), is_workflow_field("StationName")
    (False, False)
    """
    name = name.removeprefix(_DICOM_PREFIX)
    key = _normalise(name)
    return key in _WORKFLOW_NORMALISED or any(stem in key for stem in _WORKFLOW_STEMS)


@dataclass(frozen=True, slots=True)
class _Candidate:
    name: str
    source: str  # "cohort" or "dicom"
    values: pd.Series


@dataclass(frozen=True, slots=True)
class _Feature:
    kind: str  # "numeric" or "categorical"
    numeric: np.ndarray | None  # float, NaN where missing
    codes: np.ndarray | None  # int codes, missing as its own level
    n_levels: int


# -- candidate columns and their encoding ---------------------------------------------------


def _default_columns(cohort: Cohort) -> list[str]:
    roles = cohort.roles
    excluded = {roles.image_id, roles.patient_id, roles.label, roles.path, roles.site,
                roles.label_certainty, *roles.annotators}
    return [str(c) for c in cohort.table.columns if str(c) not in excluded]


def _candidates(cohort: Cohort, columns: Sequence[str] | None,
                headers: pd.DataFrame | None) -> list[_Candidate]:
    names = _default_columns(cohort) if columns is None else list(columns)
    present = [str(c) for c in cohort.table.columns]
    out = []
    for name in names:
        if name not in present:
            raise ValueError(
                f"The 'columns' parameter of check_metadata_label names {name!r}, which the "
                f"cohort lacks.{did_you_mean(name, present)} Fix: pass cohort column names, or "
                "None to test every column without an id, label, path or site role."
            )
        out.append(_Candidate(name, "cohort", cohort.table[name].reset_index(drop=True)))
    if headers is not None:
        for name in headers.columns:
            if str(name) in ("path", "error"):
                continue
            out.append(_Candidate(f"{_DICOM_PREFIX}{name}", "dicom", headers[name]))
    return out


def _as_dates(values: pd.Series, name: str) -> np.ndarray | None:
    """Days since 1970 when at least 90 % of the present values parse as dates."""
    present = values.notna()
    if not present.any():
        return None
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.astype("string")
        dicom_date = name.startswith(_DICOM_PREFIX) and name.endswith("Date")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, errors="coerce",
                                    format="%Y%m%d" if dicom_date else "ISO8601")
    if parsed.notna().sum() < 0.9 * present.sum():
        return None
    days = (parsed - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return days.to_numpy(dtype=float, na_value=np.nan)


def _looks_like_date(candidate: _Candidate, cohort: Cohort) -> bool:
    name = candidate.name
    if pd.api.types.is_datetime64_any_dtype(candidate.values):
        return True
    if cohort.has_role("acquired_at") and name == cohort.roles.acquired_at:
        return True
    return name.startswith(_DICOM_PREFIX) and name.endswith(("Date", "DateTime"))


def _encode(candidate: _Candidate, cohort: Cohort) -> _Feature:
    values = candidate.values
    numeric: np.ndarray | None = None
    if _looks_like_date(candidate, cohort):
        numeric = _as_dates(values, candidate.name)
    if numeric is None and (pd.api.types.is_numeric_dtype(values)
                            or pd.api.types.is_bool_dtype(values)):
        numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    elif numeric is None:
        parsed = pd.to_numeric(values.astype("string"), errors="coerce")
        if parsed.notna().sum() == values.notna().sum() and values.notna().any():
            numeric = parsed.to_numpy(dtype=float, na_value=np.nan)
    if numeric is not None:
        levels = np.unique(numeric[~np.isnan(numeric)])
        if len(levels) > _MAX_CATEGORY_LEVELS_AS_NUMERIC:
            return _Feature("numeric", numeric, None, len(levels))
        text = np.array([None if math.isnan(v) else repr(float(v)) for v in numeric],
                        dtype=object)
    else:
        text = clean_values(values)
    codes, uniques = pd.factorize(pd.Series(text, dtype=object), use_na_sentinel=True)
    n_levels = len(uniques)
    codes = np.where(codes < 0, n_levels, codes)  # missing is a level of its own
    return _Feature("categorical", None, codes.astype(np.int64), n_levels + 1)


# -- permutation null -------------------------------------------------------------------------


def _block_permutations(y: np.ndarray, groups: np.ndarray, n_permutations: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Labels permuted between patients, each patient keeping its images together.

    Patient ``g`` receives the label sequence of a donor patient (recycled to
    its own number of images), so the within-patient correlation of the
    labels survives and repeated images do not shrink the null distribution.
    """
    codes, _ = pd.factorize(pd.Series(groups, dtype=object))
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    within = np.arange(len(y)) - starts[sorted_codes]
    y_sorted = y[order].astype(np.int8)
    donors = rng.permuted(np.tile(np.arange(len(counts)), (n_permutations, 1)), axis=1)
    out = np.empty((n_permutations, len(y)), dtype=np.int8)
    for p in range(n_permutations):
        donor = donors[p, sorted_codes]
        out[p, order] = y_sorted[starts[donor] + within % counts[donor]]
    return out


def _auc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row of ``labels`` (P, n) against ``scores`` ((n,) or (P, n))."""
    labels = labels.astype(float)
    ranks = rankdata(scores, axis=-1)
    n_pos = labels.sum(axis=1)
    n_neg = labels.shape[1] - n_pos
    rank_sum = labels @ ranks if ranks.ndim == 1 else np.einsum("ij,ij->i", labels, ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _encode_targets(codes: np.ndarray, n_levels: int, labels: np.ndarray, train: np.ndarray,
                    apply: np.ndarray) -> np.ndarray:
    """Smoothed mean label per level, fitted on ``train`` rows, for the ``apply`` rows.

    ``labels`` is ``(P, n)``; unseen levels get the training prevalence.
    """
    train_codes = codes[train]
    onehot = sparse.csr_matrix(
        (np.ones(len(train_codes)), (np.arange(len(train_codes)), train_codes)),
        shape=(len(train_codes), n_levels),
    )
    y_train = labels[:, train].astype(float)
    sums = np.asarray(onehot.T @ y_train.T).T  # (P, levels)
    counts = np.bincount(train_codes, minlength=n_levels)
    prior = y_train.mean(axis=1, keepdims=True)
    target = codes[apply]
    return (sums[:, target] + _SMOOTHING * prior) / (counts[target] + _SMOOTHING)


def _oof_scores(feature: _Feature, labels: np.ndarray, folds: np.ndarray,
                fill: float) -> np.ndarray:
    """Out-of-fold scores ``(P, n)`` (categorical) or the raw values ``(n,)`` (numeric)."""
    if feature.kind == "numeric":
        values = feature.numeric
        return np.where(np.isnan(values), fill, values)
    out = np.empty(labels.shape, dtype=float)
    for fold in np.unique(folds):
        held = folds == fold
        out[:, held] = _encode_targets(feature.codes, feature.n_levels, labels, ~held, held)
    return out


def _null_aucs(feature: _Feature, permuted: np.ndarray, folds: np.ndarray,
               fill: float) -> np.ndarray:
    """AUROC of every permutation (signed: numeric columns are not folded at 0.5)."""
    aucs = []
    for start in range(0, len(permuted), _PERMUTATION_CHUNK):
        block = permuted[start:start + _PERMUTATION_CHUNK]
        aucs.append(_auc_rows(block, _oof_scores(feature, block, folds, fill)))
    return np.concatenate(aucs)


def _subset(feature: _Feature, rows: np.ndarray) -> _Feature:
    return _Feature(feature.kind,
                    None if feature.numeric is None else feature.numeric[rows],
                    None if feature.codes is None else feature.codes[rows],
                    feature.n_levels)


def _auc_with_se(y: np.ndarray, score: np.ndarray, min_per_class: int) -> tuple[float, float]:
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos < min_per_class or n_neg < min_per_class:
        return math.nan, math.nan
    auc = float(_auc_rows(y[None, :], score)[0])
    return auc, hanley_mcneil_se(auc, n_pos, n_neg)


# -- the check ----------------------------------------------------------------------------------


def _groups_array(cohort: Cohort, groups: Any) -> np.ndarray:
    if groups is None:
        return cohort.patient_ids.astype(object)
    values = np.asarray(list(groups), dtype=object)
    if len(values) != cohort.n_images:
        raise AlignmentError(
            f"The 'groups' parameter of check_metadata_label has {len(values)} entries but the "
            f"cohort has {cohort.n_images} rows. Fix: pass one patient id per cohort row, or "
            "None to use the cohort's patient ids."
        )
    return values


def _not_evaluable(message: str, params: Mapping[str, Any]) -> Finding:
    return Finding(check=_CHECK, rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
                   message=message, params=dict(params))


def check_metadata_label(
    cohort: Cohort,
    columns: Sequence[str] | None,
    masks: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    headers: pd.DataFrame | None = None,
    groups: Sequence[Any] | None = None,
    site: str | Sequence[Any] | None = None,
    workflow_fields: Sequence[str] | None = None,
    n_permutations: int = 200,
    n_splits: int = 5,
    alpha: float = 0.05,
    min_auroc: float = 0.6,
    max_site_gap: float = 0.15,
    min_per_class: int = 5,
    rng: RngLike = None,
) -> Finding:
    """Find metadata columns that predict the label, and flag those that leak.

    Each candidate column becomes a one-feature model of the label on the
    development partition: categorical columns are target-encoded out of fold
    (folds by patient, :class:`~sklearn.model_selection.GroupKFold`), numeric
    columns are used as they are in whichever direction predicts (the larger of
    AUROC and 1 - AUROC). Labels permuted between patients give each column
    its null distribution; a Gaussian fitted to that null gives a p-value
    (beyond the resolution of ``n_permutations``), and Holm's method adjusts
    the p-values over all evaluated columns. A column is *strongly predictive*
    when its adjusted p-value is below ``alpha`` and its AUROC is at least
    ``min_auroc``; it is *flagged* when, in addition, it is a workflow field
    that is not available at inference (:func:`is_workflow_field`, or
    ``workflow_fields``) or its AUROC differs between development and external
    sites (a spurious, site-specific association).

    Parameters
    ----------
    cohort : Cohort
        The cohort; rows with a missing label are ignored.
    columns : sequence of str or None
        Cohort columns to test; None tests every column without the role
        ``image_id``, ``patient_id``, ``label``, ``path``, ``site``,
        ``label_certainty`` or ``annotators``.
    masks, kinds : mapping
        Partitions: name -> boolean mask over the cohort rows, name -> kind.
        Rows of ``"development"`` partitions are the fitting data; rows of
        ``"external"`` partitions give the external AUROC.
    headers : pandas.DataFrame, optional
        DICOM header table aligned with the cohort rows; every column except
        ``path`` and ``error`` is tested too, named ``"dicom:<Keyword>"``.
    groups : sequence, optional
        Patient id per cohort row for the folds and the permutations; default
        the cohort's patient ids.
    site : str or sequence, optional
        Site column name or one site per row; default the cohort's site role.
    workflow_fields : sequence of str, optional
        Columns (names as in the table, header keywords with or without the
        ``"dicom:"`` prefix) that are not available at inference. None detects
        them by name with :func:`is_workflow_field`; an explicit list replaces
        the detection (pass ``[]`` to declare every column available).
    n_permutations : int, default=200
        Label permutations (between patients) for the null distribution.
    n_splits : int, default=5
        Folds of the out-of-fold target encoding (fewer when there are fewer patients).
    alpha : float, default=0.05
        Family-wise error rate over the columns (Holm); the table's
        ``null_threshold`` is the ``1 - alpha`` quantile of each column's
        permutation null, for reading only.
    min_auroc : float, default=0.6
        Smallest AUROC called strongly predictive, whatever the null says.
    max_site_gap : float, default=0.15
        Largest tolerated difference between the development AUROC and the
        external AUROC (or, without external rows, between development sites).
        A larger difference whose z statistic (Hanley-McNeil standard errors)
        exceeds 1.96 counts as a site difference.
    min_per_class : int, default=5
        Fewest positives and negatives for an AUROC to be computed.
    rng : int, numpy.random.Generator or None
        Seed of the permutations (shared by all columns).

    Returns
    -------
    Finding
        ``leakage.metadata_label`` (rung 1). Table columns: ``column``,
        ``source`` (``cohort``/``dicom``), ``kind``, ``n``, ``n_pos``,
        ``auroc_dev``, ``null_threshold``, ``p_value``, ``p_adjusted``, ``auroc_external``,
        ``site_gap``, ``auroc_site_<site>`` per site, ``workflow``,
        ``strongly_predictive``, ``flagged``, ``reason``. Status ``fail`` when a
        flagged column is a workflow field, ``warn`` when only site-dependent
        columns are flagged, ``pass`` otherwise; ``not_evaluable`` without a
        development partition holding both classes.

    Raises
    ------
    TypeError
        ``masks`` or ``kinds`` is not a mapping, or ``headers`` is not a DataFrame.
    ValueError
        Unknown column, bad option value, a partition without a known kind.
    AlignmentError
        ``groups``, ``site``, a mask or ``headers`` not aligned with the cohort rows.

    Notes
    -----
    The null of a numeric column is centred at 0.5 and the test is two-sided
    (either direction may predict); the null of a target-encoded column is
    shifted below 0.5 by the out-of-fold encoding, so its own mean is used and
    the test is one-sided. The permutation null moves labels between whole patients (each patient
    takes a donor patient's label sequence), so patient-level columns such as age or sex are not over-flagged when patients
    have several images. Numeric missing values are replaced by the development
    median; numeric columns with at most five distinct values are treated as
    categories; dates (the ``acquired_at`` role, DICOM ``*Date`` attributes)
    become days. Columns whose values are nearly all distinct (identifiers) and
    constant columns are skipped, with the reason in the table. Per-site
    AUROCs use out-of-fold scores at development rows and the encoding fitted
    on all development rows elsewhere; numeric columns keep the development
    direction, so a reversed association shows as an AUROC below 0.5.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from claimladder.cohort import Cohort, ColumnRoles
    >>> gen = np.random.default_rng(0)
    >>> label = gen.integers(0, 2, 200)
    >>> table = pd.DataFrame({
    ...     "image_id": [f"i{k}" for k in range(200)],
    ...     "patient_id": [f"p{k}" for k in range(200)], "label": label,
    ...     "priority": np.where(gen.random(200) < 0.2 + 0.6 * label, "urgent", "routine"),
    ...     "noise": gen.normal(size=200)})
    >>> cohort = Cohort(table=table, roles=ColumnRoles())
    >>> dev = {"development": np.ones(200, dtype=bool)}
    >>> finding = check_metadata_label(cohort, None, dev, {"development": "development"}, rng=0)
    >>> finding.status.value
    'fail'
    >>> finding.table.set_index("column")["flagged"].to_dict()
    {'priority': True, 'noise': False}
    """
    owner = "check_metadata_label"
    masks, kinds = check_partitions(cohort, masks, kinds, owner=owner)
    headers = check_headers(headers, cohort, owner=owner)
    n_permutations = check_positive_int(n_permutations, param="n_permutations", owner=owner,
                                        minimum=20)
    n_splits = check_positive_int(n_splits, param="n_splits", owner=owner, minimum=2)
    min_per_class = check_positive_int(min_per_class, param="min_per_class", owner=owner)
    alpha = check_probability(alpha, param="alpha", owner=owner)
    min_auroc = float(min_auroc)
    max_site_gap = float(max_site_gap)
    generator = check_rng(rng)
    group_ids = _groups_array(cohort, groups)
    sites = site_values(cohort, site, owner=owner)
    candidates = _candidates(cohort, columns, headers)
    workflow = _workflow_set(workflow_fields)
    params: dict[str, Any] = {
        "n_permutations": n_permutations, "n_splits": n_splits, "alpha": alpha,
        "min_auroc": min_auroc, "max_site_gap": max_site_gap, "min_per_class": min_per_class,
        "workflow_fields": "detected by name" if workflow is None else sorted(workflow),
        "permutation": "labels moved between patients (patient blocks)",
    }

    y_all = cohort.y_true
    labelled = ~np.isnan(y_all)
    dev = union(masks, kinds, ("development",), cohort.n_images) & labelled
    ext = union(masks, kinds, ("external",), cohort.n_images) & labelled & ~dev
    y_dev = y_all[dev].astype(int)
    n_pos = int(y_dev.sum())
    if n_pos < min_per_class or len(y_dev) - n_pos < min_per_class:
        return _not_evaluable(
            f"The development partition holds {n_pos} positive and {len(y_dev) - n_pos} "
            f"negative labelled images; at least {min_per_class} of each are needed to "
            "measure how metadata predicts the label.", params)
    dev_groups = group_ids[dev]
    n_groups = len(set(dev_groups.tolist()))
    if n_groups < 2:
        return _not_evaluable("The development partition holds a single patient, so "
                              "patient-grouped folds cannot be formed.", params)
    if not candidates:
        return _not_evaluable("No candidate metadata column was given or found.", params)

    folds = np.empty(len(y_dev), dtype=int)
    splitter = GroupKFold(n_splits=min(n_splits, n_groups))
    for k, (_, held) in enumerate(splitter.split(y_dev, y_dev, dev_groups)):
        folds[held] = k
    permuted = _block_permutations(y_dev, dev_groups, n_permutations, generator)
    site_names = _site_names(sites, dev | ext)
    rows = [
        _evaluate(c, cohort, dev, ext, y_all, folds, permuted, sites, site_names, workflow,
                  alpha=alpha, max_site_gap=max_site_gap, min_per_class=min_per_class)
        for c in candidates
    ]
    table = _decide(pd.DataFrame(rows), alpha=alpha, min_auroc=min_auroc)
    return _finding(table, params)


def _workflow_set(fields: Sequence[str] | None) -> set[str] | None:
    if fields is None:
        return None
    if isinstance(fields, str):
        fields = [fields]
    return {str(f).removeprefix(_DICOM_PREFIX)
            for f in fields}


def _is_workflow(name: str, workflow: set[str] | None) -> bool:
    if workflow is None:
        return is_workflow_field(name)
    bare = name.removeprefix(_DICOM_PREFIX)
    return bare in workflow or name in workflow


def _site_names(sites: np.ndarray | None, rows: np.ndarray) -> list[str]:
    if sites is None:
        return []
    return sorted({s for s in sites[rows].tolist() if s is not None})


def _evaluate(candidate: _Candidate, cohort: Cohort, dev: np.ndarray, ext: np.ndarray,
              y_all: np.ndarray, folds: np.ndarray, permuted: np.ndarray,
              sites: np.ndarray | None, site_names: list[str], workflow: set[str] | None,
              *, alpha: float, max_site_gap: float, min_per_class: int) -> dict[str, Any]:
    y_dev = y_all[dev].astype(int)
    row: dict[str, Any] = {
        "column": candidate.name, "source": candidate.source, "kind": None,
        "n": int(dev.sum()), "n_pos": int(y_dev.sum()), "auroc_dev": math.nan,
        "null_threshold": math.nan, "p_value": math.nan, "auroc_external": math.nan,
        "site_gap": math.nan,
        **{f"auroc_site_{s}": math.nan for s in site_names},
        "workflow": _is_workflow(candidate.name, workflow),
        "strongly_predictive": False, "flagged": False, "reason": "", "_differs": "",
    }
    feature = _encode(candidate, cohort)
    row["kind"] = feature.kind
    dev_feature = _subset(feature, dev)
    skip = _skip_reason(dev_feature)
    if skip:
        row["reason"] = f"skipped: {skip}"
        return row

    fill = 0.0
    if feature.kind == "numeric":
        fill = float(np.nanmedian(dev_feature.numeric))
    observed = _oof_scores(dev_feature, y_dev[None, :], folds, fill)
    auc = float(_auc_rows(y_dev[None, :], observed)[0])
    direction = 1.0
    if feature.kind == "numeric" and auc < 0.5:
        direction, auc = -1.0, 1.0 - auc
    null = _null_aucs(dev_feature, permuted, folds, fill)
    null = null[~np.isnan(null)]
    if feature.kind == "numeric":
        folded = np.maximum(null, 1 - null)
        spread = float(np.sqrt(np.mean((null - 0.5) ** 2)))
        z_null = (auc - 0.5) / spread if spread > 0 else math.inf
        p_value = 2 * norm.sf(z_null)
    else:
        folded = null
        spread = float(np.std(null, ddof=1)) if len(null) > 1 else math.nan
        z_null = (auc - float(np.mean(null))) / spread if spread > 0 else math.inf
        p_value = norm.sf(z_null)
    row.update(auroc_dev=auc,
               null_threshold=float(np.quantile(folded, 1 - alpha)) if len(folded) else math.nan,
               p_value=float(min(p_value, 1.0)))

    # Scores over every row: out of fold at development rows, fitted on all of them elsewhere.
    score_all = np.full(cohort.n_images, np.nan)
    dev_scores = np.ravel(observed)
    score_all[dev] = direction * dev_scores if feature.kind == "numeric" else dev_scores
    if ext.any():
        if feature.kind == "numeric":
            values = feature.numeric[ext]
            score_all[ext] = direction * np.where(np.isnan(values), fill, values)
        else:
            codes = np.concatenate([feature.codes[dev], feature.codes[ext]])
            labels = np.concatenate([y_dev, np.zeros(int(ext.sum()), dtype=int)])[None, :]
            train = np.r_[np.ones(int(dev.sum()), bool), np.zeros(int(ext.sum()), bool)]
            score_all[ext] = _encode_targets(codes, feature.n_levels, labels, train, ~train)[0]
    # The permutation spread carries the patient clustering that Hanley-McNeil ignores.
    se_dev = max(hanley_mcneil_se(auc, int(y_dev.sum()), int(len(y_dev) - y_dev.sum())),
                 spread if math.isfinite(spread) else 0.0)
    auc_ext, se_ext = _auc_with_se(y_all[ext].astype(int), score_all[ext], min_per_class)
    row["auroc_external"] = auc_ext
    site_stats = {}
    for s in site_names:
        rows_s = (dev | ext) & (sites == s)
        site_stats[s] = _auc_with_se(y_all[rows_s].astype(int), score_all[rows_s], min_per_class)
        row[f"auroc_site_{s}"] = site_stats[s][0]

    gap, z, basis = _site_gap(auc, se_dev, auc_ext, se_ext, site_names, site_stats, sites, dev)
    row["site_gap"] = gap
    differs = bool(not math.isnan(gap) and abs(gap) > max_site_gap and abs(z) > _Z_CRITICAL)
    row["_differs"] = f"association differs {basis} (gap {gap:+.2f})" if differs else ""
    return row


def _decide(table: pd.DataFrame, *, alpha: float, min_auroc: float) -> pd.DataFrame:
    """Holm-adjust the p-values over the evaluated columns, then flag."""
    evaluated = table["p_value"].notna().to_numpy()
    adjusted = np.full(len(table), np.nan)
    adjusted[evaluated] = holm(table.loc[evaluated, "p_value"].to_numpy(dtype=float))
    table.insert(table.columns.get_loc("p_value") + 1, "p_adjusted", adjusted)
    strong = evaluated & (adjusted < alpha) & (table["auroc_dev"].to_numpy() >= min_auroc)
    table["strongly_predictive"] = strong
    reasons = []
    for is_strong, workflow, differs, reason in zip(strong, table["workflow"], table["_differs"],
                                                    table["reason"], strict=True):
        found = []
        if is_strong and workflow:
            found.append("workflow field, not available at inference")
        if is_strong and differs:
            found.append(differs)
        if found:
            reasons.append("; ".join(found))
        elif is_strong:
            reasons.append("predictive, available at inference and consistent across sites")
        else:
            reasons.append(reason)
    table["flagged"] = strong & (table["workflow"].to_numpy() | (table["_differs"] != "").to_numpy())
    table["reason"] = reasons
    return table.drop(columns="_differs")


def _skip_reason(feature: _Feature) -> str | None:
    if feature.kind == "numeric":
        values = feature.numeric[~np.isnan(feature.numeric)]
        if not len(values):
            return "missing in every development row"
        if np.all(values == values[0]):
            return "constant in the development partition"
        return None
    codes = feature.codes
    present = codes[codes != feature.n_levels - 1]  # the last level codes missing values
    if not len(present):
        return "missing in every development row"
    if len(np.unique(codes)) < 2:
        return "constant in the development partition"
    if len(present) > 20 and len(np.unique(present)) >= 0.9 * len(present):
        return "identifier-like (nearly every value distinct)"
    return None


def _site_gap(auc_dev: float, se_dev: float, auc_ext: float, se_ext: float,
              site_names: list[str], site_stats: dict[str, tuple[float, float]],
              sites: np.ndarray | None, dev: np.ndarray) -> tuple[float, float, str]:
    """Development minus external AUROC, or the spread between development sites."""
    if not math.isnan(auc_ext):
        z = (auc_dev - auc_ext) / math.hypot(se_dev, se_ext) if se_ext > 0 else math.nan
        return auc_dev - auc_ext, z, "between development and external sites"
    if sites is None:
        return math.nan, math.nan, ""
    dev_sites = {s for s in sites[dev].tolist() if s is not None}
    evaluable = [(s, *site_stats[s]) for s in site_names
                 if s in dev_sites and not math.isnan(site_stats[s][0])]
    if len(evaluable) < 2:
        return math.nan, math.nan, ""
    high = max(evaluable, key=lambda t: t[1])
    low = min(evaluable, key=lambda t: t[1])
    spread = math.hypot(high[2], low[2])
    z = (high[1] - low[1]) / spread if spread > 0 else math.nan
    return high[1] - low[1], z, "between development sites"


def _finding(table: pd.DataFrame, params: Mapping[str, Any]) -> Finding:
    flagged = table[table["flagged"]]
    strong = table[table["strongly_predictive"] & ~table["flagged"]]
    evaluated = table[~table["reason"].str.startswith("skipped")]
    criterion = ("no workflow field and no site-dependent column predicts the label "
                 "beyond its permutation null")
    if evaluated.empty:
        return Finding(check=_CHECK, rung=Rung.INTERNAL, status=Status.NOT_EVALUABLE,
                       message="Every candidate metadata column was skipped (constant, missing "
                               "or identifier-like); no association could be measured.",
                       criterion=criterion, table=table, params=dict(params))
    if len(flagged):
        status = Status.FAIL if flagged["workflow"].any() else Status.WARN
        described = "; ".join(f"{r.column} (AUROC {r.auroc_dev:.2f}: {r.reason})"
                              for r in flagged.itertuples())
        message = (f"{len(flagged)} metadata column(s) predict the label and should not: "
                   f"{described}. A model can learn these associations through correlated "
                   "image content; remove the fields from the inputs and check the model for "
                   "the shortcut.")
    else:
        status = Status.PASS
        message = f"None of {len(evaluated)} metadata column(s) leaks the label"
        if len(strong):
            listed = ", ".join(f"{r.column} (AUROC {r.auroc_dev:.2f})"
                               for r in strong.itertuples())
            message += (f"; {listed} predict(s) it but are available at inference and "
                        "consistent across sites")
        message += "."
    return Finding(check=_CHECK, rung=Rung.INTERNAL, status=status, message=message,
                   criterion=criterion, table=table, params=dict(params))
