"""Rung 0, deployment setting: is the evaluated cohort the population the claim is for?

A study declares its intended deployment population in ``study.toml``::

    [deployment]
    description = "Emergency departments, adults"
    prevalence = 0.08                        # expected share of positives
    scanner_vendors = ["Lumetra Medical", "Veridian Radiography"]
    site_types = ["emergency"]               # with site_type_column = "<cohort column>"
    reference_cohort = "deployment.csv"      # optional sample of the deployment population
    [deployment.numeric]
    age = {mean = 67, sd = 17}
    [deployment.categories]
    sex = {F = 0.5, M = 0.5}

The *evaluated cohort* is the union of the test partitions (internal test and
external sets) after the inclusion and exclusion rules. Findings
(``deployment.*``), each mismatch also entering the report's "not validated
for" list through ``params["not_validated_for"]``:

* ``deployment.characteristics`` -- standardized mean differences (SMD) of the
  declared numeric and categorical characteristics (and of the reference
  cohort's shared columns); ``warn`` when an ``|SMD|`` exceeds
  ``criteria.deployment.max_smd`` (default 0.1);
* ``deployment.coverage`` -- scanner vendors, site types and declared
  categories of the deployment that no evaluated case represents (``warn``);
* ``deployment.prevalence`` -- the evaluated cohort's prevalence over the
  deployment's (ratio with a patient-cluster bootstrap CI); ``warn`` outside
  ``[1/r, r]``, ``r = criteria.deployment.max_prevalence_ratio`` (default 2);
* ``deployment.predictive_values`` -- per test partition, PPV and NPV at the
  operating threshold of ``[metrics]`` recomputed for the deployment
  prevalence by Bayes' theorem (as :func:`claimladder.utility.triage` does),
  with the same cluster bootstrap; held to ``criteria.deployment.min_ppv`` /
  ``min_npv`` when declared (fail when the whole CI is below, warn when the
  point or the lower bound is), informational otherwise.

References
----------
Austin PC (2009). Balance diagnostics for comparing the distribution of baseline
covariates between treatment groups in propensity-score matched samples. Stat
Med 28:3083-3107 (SMD of means and of proportions, the 0.1 mark).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._core import (
    ConfidenceInterval,
    Estimate,
    Finding,
    Plot,
    Rung,
    Status,
    StudySpecError,
    check_rng,
    did_you_mean,
)
from ..io import read_table
from ._common import metric_options, test_mask, test_partitions
from ._data import StudyData

__all__ = ["deployment_findings", "predictive_values", "standardized_difference"]

_DECLARING_KEYS = ("prevalence", "reference_cohort", "numeric", "categories",
                   "scanner_vendors", "site_types")


def standardized_difference(mean_1: float, sd_1: float, mean_2: float, sd_2: float) -> float:
    """SMD of two means, ``(m1 - m2) / sqrt((s1^2 + s2^2) / 2)`` (Austin 2009, eq. 1).

    0 when both means and spreads agree; +-inf when the spreads are 0 and the means differ.
    """
    pooled = math.sqrt((sd_1 ** 2 + sd_2 ** 2) / 2.0)
    if pooled == 0:
        return 0.0 if mean_1 == mean_2 else math.copysign(math.inf, mean_1 - mean_2)
    return (mean_1 - mean_2) / pooled


def _proportion_smd(p_1: float, p_2: float) -> float:
    """SMD of two proportions (Austin 2009, eq. 2)."""
    return standardized_difference(p_1, math.sqrt(p_1 * (1 - p_1)), p_2,
                                   math.sqrt(p_2 * (1 - p_2)))


def predictive_values(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    prevalence: float,
    n_resamples: int,
    confidence_level: float,
    rng: Any,
) -> dict[str, Estimate]:
    """Sensitivity, specificity, observed prevalence, and PPV/NPV at ``prevalence``.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray of shape (n,)
        0/1 labels and calls.
    groups : numpy.ndarray of shape (n,)
        Patient ids; the percentile bootstrap resamples patients.
    prevalence : float
        Deployment prevalence in (0, 1), a declared assumption (no sampling error).
    n_resamples, confidence_level, rng
        Bootstrap replicates, interval level, seed or generator.

    Returns
    -------
    dict of str to Estimate
        ``prevalence_observed``, ``sensitivity``, ``specificity``, ``ppv``, ``npv``
        (the last two at ``prevalence``:
        ``PPV = se p / (se p + (1 - sp)(1 - p))``, ``NPV = sp (1 - p) / (sp (1 - p) + (1 - se) p)``).
        NaN where undefined (a class absent).
    """
    y = np.asarray(y_true, dtype=bool)
    call = np.asarray(y_pred, dtype=bool)
    codes, uniques = pd.factorize(pd.Series(groups).astype(str))
    k = len(uniques)
    cells = np.zeros((k, 4))
    for j, mask in enumerate((call & y, call & ~y, ~call & y, ~call & ~y)):  # tp fp fn tn
        cells[:, j] = np.bincount(codes[mask], minlength=k)

    def reduce(sums: np.ndarray) -> np.ndarray:
        tp, fp, fn, tn = sums.T
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            sp = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
            pi = (tp + fn) / (tp + fp + fn + tn)
            p = prevalence
            ppv = se * p / (se * p + (1 - sp) * (1 - p))
            npv = sp * (1 - p) / (sp * (1 - p) + (1 - se) * p)
        return np.column_stack([pi, se, sp, ppv, npv])

    point = reduce(cells.sum(axis=0)[None, :])[0]
    gen = check_rng(rng)
    reps = np.empty((n_resamples, 5))
    block = 256
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        counts = gen.multinomial(k, np.full(k, 1.0 / k), size=b)
        reps[start:start + b] = reduce(counts @ cells)
    alpha = (1 - confidence_level) / 2
    out = {}
    for j, name in enumerate(("prevalence_observed", "sensitivity", "specificity", "ppv",
                              "npv")):
        col = reps[:, j][np.isfinite(reps[:, j])]
        if math.isfinite(point[j]) and col.size:
            low, high = np.quantile(col, [alpha, 1 - alpha])
        else:
            low = high = math.nan
        out[name] = Estimate(value=float(point[j]),
                             ci=ConfidenceInterval(low=float(low), high=float(high)),
                             confidence_level=confidence_level, method="cluster bootstrap",
                             n=int(y.size), n_clusters=k, n_pos=int(y.sum()))
    return out


def deployment_findings(data: StudyData) -> list[Finding]:
    """The ``deployment.*`` findings of a study that declares ``[deployment]``; [] otherwise."""
    spec = data.study.spec.get("deployment", {})
    if not any(spec.get(key) for key in _DECLARING_KEYS):
        return []
    mask = test_mask(data)
    if not mask.any():
        mask = np.ones(data.cohort.n_images, dtype=bool)
    table = data.cohort.table.loc[mask].reset_index(drop=True)
    reference = _reference(data, spec)
    findings = [_characteristics(data, spec, table, reference),
                _coverage(data, spec, table, reference)]
    prevalence, source = _deployment_prevalence(data, spec, reference)
    if prevalence is not None:
        findings.extend(_prevalence(data, mask, prevalence, source))
    return findings


# -- inputs ---------------------------------------------------------------------------------


def _where(data: StudyData) -> str:
    return str(data.study.path or "study spec")


def _reference(data: StudyData, spec: Mapping[str, Any]) -> pd.DataFrame | None:
    value = spec.get("reference_cohort")
    if not value:
        return None
    path = data.study.resolve(value)
    if not path.is_file():
        raise StudySpecError(
            f"{_where(data)}: [deployment] reference_cohort = {value!r} does not exist "
            f"({path}). Fix: point it at a table sampled from the deployment population."
        )
    return read_table(path)


def _column(data: StudyData, name: str, key: str) -> str:
    columns = list(data.cohort.table.columns)
    if name not in columns:
        raise StudySpecError(
            f"{_where(data)}: [deployment] {key} names the column {name!r}, which the cohort "
            f"does not have.{did_you_mean(name, columns)} Fix: use a cohort column name."
        )
    return name


def _deployment_prevalence(data: StudyData, spec: Mapping[str, Any],
                           reference: pd.DataFrame | None) -> tuple[float | None, str]:
    if spec.get("prevalence") is not None:
        return float(spec["prevalence"]), "declared"
    label = data.cohort.roles.label
    if reference is not None and label in reference.columns:
        values = reference[label].dropna()
        if len(values):
            pi = float((values == data.cohort.positive_label).mean())
            if 0 < pi < 1:
                return pi, "reference cohort"
    return None, ""


# -- characteristics ------------------------------------------------------------------------


def _numeric_row(variable: str, cohort_values: pd.Series, mean: float, sd: float,
                 source: str) -> dict[str, Any]:
    x = pd.to_numeric(cohort_values, errors="coerce").dropna().to_numpy(dtype=float)
    m, s = (float(x.mean()), float(x.std(ddof=1))) if x.size > 1 else (math.nan, math.nan)
    return {"variable": variable, "level": "mean (sd)", "cohort": m, "cohort_sd": s,
            "deployment": mean, "deployment_sd": sd,
            "smd": standardized_difference(m, s, mean, sd) if x.size > 1 else math.nan,
            "n_cohort": int(x.size), "source": source}


def _category_rows(variable: str, cohort_values: pd.Series, fractions: Mapping[str, float],
                   source: str) -> list[dict[str, Any]]:
    observed = cohort_values.dropna().astype(str)
    shares = observed.value_counts(normalize=True)
    levels = list(dict.fromkeys([*map(str, fractions), *shares.index]))
    rows = []
    for level in levels:
        p_c = float(shares.get(level, 0.0))
        p_d = float(fractions.get(level, 0.0))
        rows.append({"variable": variable, "level": level, "cohort": p_c, "cohort_sd": math.nan,
                     "deployment": p_d, "deployment_sd": math.nan,
                     "smd": _proportion_smd(p_c, p_d), "n_cohort": int(observed.size),
                     "source": source})
    return rows


def _comparison_table(data: StudyData, spec: Mapping[str, Any], table: pd.DataFrame,
                      reference: pd.DataFrame | None) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    declared = set()
    for name, value in spec.get("numeric", {}).items():
        col = _column(data, name, f"numeric.{name}")
        rows.append(_numeric_row(col, table[col], float(value["mean"]), float(value["sd"]),
                                 "declared"))
        declared.add(col)
    for name, fractions in spec.get("categories", {}).items():
        col = _column(data, name, f"categories.{name}")
        rows.extend(_category_rows(col, table[col], fractions, "declared"))
        declared.add(col)
    if reference is not None:
        roles = data.cohort.roles
        shared = [c for c in dict.fromkeys([*roles.attributes, roles.site, roles.scanner,
                                            roles.manufacturer, roles.protocol])
                  if c is not None and c not in declared and c in reference.columns
                  and c in table.columns]
        for col in shared:
            ref = reference[col]
            numeric = pd.to_numeric(ref, errors="coerce")
            if numeric.notna().sum() == ref.notna().sum() and pd.api.types.is_numeric_dtype(
                    table[col]):
                x = numeric.dropna().to_numpy(dtype=float)
                if x.size > 1:
                    rows.append(_numeric_row(col, table[col], float(x.mean()),
                                             float(x.std(ddof=1)), "reference cohort"))
            else:
                fractions = ref.dropna().astype(str).value_counts(normalize=True).to_dict()
                rows.extend(_category_rows(col, table[col], fractions, "reference cohort"))
    return pd.DataFrame(rows, columns=["variable", "level", "cohort", "cohort_sd", "deployment",
                                       "deployment_sd", "smd", "n_cohort", "source"])


def _describe(row: pd.Series) -> str:
    if row["level"] == "mean (sd)":
        return (f"{row['variable']}: deployment mean {row['deployment']:.3g} (sd "
                f"{row['deployment_sd']:.3g}) vs {row['cohort']:.3g} (sd {row['cohort_sd']:.3g}) "
                f"in the evaluated cohort, SMD {row['smd']:+.2f}")
    return (f"{row['variable']} = {row['level']}: {row['deployment']:.1%} of the deployment vs "
            f"{row['cohort']:.1%} of the evaluated cohort, SMD {row['smd']:+.2f}")


def _characteristics(data: StudyData, spec: Mapping[str, Any], table: pd.DataFrame,
                     reference: pd.DataFrame | None) -> Finding:
    comparison = _comparison_table(data, spec, table, reference)
    limit = float(data.study.criterion("deployment", "max_smd"))
    criterion = f"|SMD| <= {limit:g} for every declared characteristic"
    if comparison.empty:
        return Finding(check="deployment.characteristics", rung=Rung.COHORT,
                       status=Status.NOT_EVALUABLE, criterion=criterion,
                       message="No deployment characteristic (numeric, categories or a "
                               "reference cohort sharing cohort columns) is declared, so the "
                               "evaluated cohort's case mix cannot be compared with it.")
    over = comparison[comparison["smd"].abs() > limit]
    entries = ["deployment: " + "; ".join(_describe(row) for _, row in rows.iterrows())
               for _, rows in over.groupby("variable", sort=False)]
    if len(over):
        status = Status.WARN
        worst = over.reindex(over["smd"].abs().sort_values(ascending=False).index).iloc[0]
        message = (f"The evaluated cohort differs from the intended deployment population in "
                   f"{len(entries)} characteristic(s) ({len(over)} of {len(comparison)} compared "
                   f"rows with |SMD| > {limit:g}); "
                   f"largest: {_describe(worst)}. Performance was not shown for that case mix.")
    else:
        status = Status.PASS
        message = (f"The evaluated cohort matches the intended deployment population in all "
                   f"{len(comparison)} compared characteristic(s) (|SMD| <= {limit:g}).")
    labels = [r["variable"] if r["level"] == "mean (sd)" else f"{r['variable']} = {r['level']}"
              for _, r in comparison.iterrows()]
    plot_data = pd.DataFrame({"label": labels, "estimate": comparison["smd"],
                              "ci_low": comparison["smd"], "ci_high": comparison["smd"]})
    plots = ()
    if np.isfinite(plot_data["estimate"].to_numpy(dtype=float)).all():
        plots = (Plot(kind="forest", title="Evaluated cohort vs intended deployment (SMD)",
                      data=plot_data,
                      options={"xlabel": "standardized difference (cohort - deployment)",
                               "reference": 0.0}),)
    params: dict[str, Any] = {"max_smd": limit, "n_evaluated": int(table.shape[0]),
                              "partitions": test_partitions(data) or ["all included"]}
    if spec.get("description"):
        params["description"] = spec["description"]
    if entries:
        params["not_validated_for"] = entries
    return Finding(check="deployment.characteristics", rung=Rung.COHORT, status=status,
                   message=message, criterion=criterion, table=comparison, plots=plots,
                   params=params)


# -- coverage -------------------------------------------------------------------------------


def _coverage(data: StudyData, spec: Mapping[str, Any], table: pd.DataFrame,
              reference: pd.DataFrame | None) -> Finding:
    rows: list[dict[str, Any]] = []

    def compare(kind: str, column: str, expected: list[str]) -> None:
        present = set(table[column].dropna().astype(str))
        for value in expected:
            rows.append({"kind": kind, "column": column, "value": value,
                         "n_evaluated": int((table[column].astype(str) == value).sum()),
                         "covered": value in present})

    if spec.get("scanner_vendors"):
        if not data.cohort.has_role("manufacturer"):
            raise StudySpecError(
                f"{_where(data)}: [deployment] scanner_vendors needs the cohort's vendor "
                "column. Fix: declare it as manufacturer = \"...\" under [data.columns]."
            )
        compare("scanner vendor", data.cohort.roles.manufacturer,
                list(spec["scanner_vendors"]))
    if spec.get("site_types"):
        column = spec.get("site_type_column")
        if not column:
            raise StudySpecError(
                f"{_where(data)}: [deployment] site_types needs site_type_column = \"...\", "
                "the cohort column holding each image's site type. Fix: add it."
            )
        compare("site type", _column(data, column, "site_type_column"),
                list(spec["site_types"]))
    for name, fractions in spec.get("categories", {}).items():
        expected = [str(level) for level, share in fractions.items() if share > 0]
        compare("category", _column(data, name, f"categories.{name}"), expected)
    if reference is not None:
        roles = data.cohort.roles
        for column in dict.fromkeys([roles.site, roles.scanner, roles.manufacturer]):
            if column is not None and column in reference.columns and column in table.columns:
                compare("reference cohort", column,
                        sorted(reference[column].dropna().astype(str).unique()))
    coverage = pd.DataFrame(rows, columns=["kind", "column", "value", "n_evaluated", "covered"])
    coverage = coverage.drop_duplicates(["column", "value"]).reset_index(drop=True)
    criterion = "every vendor, site type and category of the deployment is in the evaluated cohort"
    if coverage.empty:
        return Finding(check="deployment.coverage", rung=Rung.COHORT,
                       status=Status.NOT_EVALUABLE, criterion=criterion,
                       message="No deployment vendors, site types or categories are declared, "
                               "so coverage of the deployment setting cannot be checked.")
    missing = coverage[~coverage["covered"]]
    if len(missing):
        names = [f"{r.kind} {r.value!r}" if r.kind != "category" else f"{r.column} = {r.value}"
                 for r in missing.itertuples()]
        message = (f"{len(missing)} of {len(coverage)} part(s) of the intended deployment have "
                   f"no evaluated case: {', '.join(names)}. The claim is not validated there.")
        params = {"not_validated_for": [f"deployment: {n} (no evaluated case)" for n in names]}
        status = Status.WARN
    else:
        message = (f"Every one of the {len(coverage)} declared vendors, site types and "
                   "categories of the deployment is represented in the evaluated cohort.")
        params, status = {}, Status.PASS
    return Finding(check="deployment.coverage", rung=Rung.COHORT, status=status,
                   message=message, criterion=criterion, table=coverage, params=params)


# -- prevalence and predictive values -------------------------------------------------------


def _prevalence(data: StudyData, mask: np.ndarray, prevalence: float,
                source: str) -> list[Finding]:
    cohort = data.cohort
    options = metric_options(data)
    y_all, g_all = cohort.y_true, cohort.patient_ids
    labelled = mask & ~np.isnan(y_all)
    ratio_limit = float(data.study.criterion("deployment", "max_prevalence_ratio"))
    seed = data.study.seed
    calls = np.zeros(cohort.n_images, dtype=bool)
    pooled = predictive_values(y_all[labelled], calls[labelled], g_all[labelled],
                               prevalence=prevalence, rng=seed + 95, **options)
    observed = pooled["prevalence_observed"]
    ratio = Estimate(value=observed.value / prevalence,
                     ci=ConfidenceInterval(low=observed.ci.low / prevalence,
                                           high=observed.ci.high / prevalence),
                     confidence_level=observed.confidence_level, method=observed.method,
                     n=observed.n, n_clusters=observed.n_clusters, n_pos=observed.n_pos)
    outside = not (1 / ratio_limit <= ratio.value <= ratio_limit)
    message = (f"Prevalence in the evaluated cohort is {observed.value:.1%} "
               f"({observed.ci.low:.1%} to {observed.ci.high:.1%}) against {prevalence:.1%} in "
               f"the deployment ({source}): ratio {ratio.format(2)}.")
    params: dict[str, Any] = {"deployment_prevalence": prevalence, "source": source,
                              "max_prevalence_ratio": ratio_limit}
    if outside:
        message += (" Predictive values measured on the test sets do not transfer; they are "
                    "recomputed at the deployment prevalence (deployment.predictive_values).")
        params["not_validated_for"] = (
            f"deployment: prevalence {prevalence:.1%} (evaluated cohort {observed.value:.1%}); "
            "PPV/NPV hold only as recomputed at that prevalence")
    findings = [Finding(
        check="deployment.prevalence", rung=Rung.COHORT,
        status=Status.WARN if outside else Status.PASS, message=message, estimate=ratio,
        criterion=f"{1 / ratio_limit:.3g} <= prevalence ratio (cohort / deployment) <= "
                  f"{ratio_limit:g}", params=params)]
    if data.scores is None:
        return findings
    threshold = float(data.study.metrics["threshold"])
    min_ppv = data.study.criterion("deployment", "min_ppv")
    min_npv = data.study.criterion("deployment", "min_npv")
    for index, name in enumerate(test_partitions(data)):
        part = data.partitions.masks[name] & ~np.isnan(y_all)
        y = y_all[part]
        if not part.any() or len(np.unique(y)) < 2:
            findings.append(Finding(
                check="deployment.predictive_values", rung=Rung.COHORT,
                status=Status.NOT_EVALUABLE, params={"partition": name},
                message=f"PPV and NPV at the deployment prevalence cannot be estimated on "
                        f"{name!r}: it does not hold both classes."))
            continue
        pv = predictive_values(y, data.scores[part] >= threshold, g_all[part],
                               prevalence=prevalence, rng=seed + 96 + index, **options)
        findings.append(_pv_finding(name, pv, prevalence, threshold, min_ppv, min_npv))
    return findings


def _judge(e: Estimate, minimum: float | None) -> Status:
    if minimum is None:
        return Status.PASS
    if not e.is_defined or math.isnan(e.ci.high):
        return Status.NOT_EVALUABLE
    if e.ci.high < minimum:
        return Status.FAIL
    if e.value < minimum or e.ci.low < minimum:
        return Status.WARN
    return Status.PASS


def _pv_finding(name: str, pv: dict[str, Estimate], prevalence: float, threshold: float,
                min_ppv: float | None, min_npv: float | None) -> Finding:
    order = [Status.PASS, Status.WARN, Status.FAIL, Status.NOT_EVALUABLE]
    statuses = [_judge(pv["ppv"], min_ppv), _judge(pv["npv"], min_npv)]
    status = max(statuses, key=order.index)
    rows = [{"partition": name, "metric": metric, "estimate": e.value, "ci_low": e.ci.low,
             "ci_high": e.ci.high, "n": e.n, "n_clusters": e.n_clusters, "n_pos": e.n_pos}
            for metric, e in pv.items()]
    criteria = [f"PPV >= {min_ppv:g}" if min_ppv is not None else None,
                f"NPV >= {min_npv:g}" if min_npv is not None else None]
    criterion = " and ".join(c for c in criteria if c) or None
    message = (f"At the deployment prevalence {prevalence:.1%}, the operating threshold "
               f"{threshold:g} on {name!r} (sensitivity {pv['sensitivity'].format()}, "
               f"specificity {pv['specificity'].format()}) gives PPV {pv['ppv'].format()} and "
               f"NPV {pv['npv'].format()} (test-set prevalence "
               f"{pv['prevalence_observed'].value:.1%}).")
    if criterion is None:
        message += " No PPV/NPV criterion is declared ([criteria] deployment.min_ppv/min_npv)."
    return Finding(check="deployment.predictive_values", rung=Rung.COHORT, status=status,
                   message=message, estimate=pv["ppv"], criterion=criterion,
                   table=pd.DataFrame(rows),
                   params={"partition": name, "deployment_prevalence": prevalence,
                           "threshold": threshold})
