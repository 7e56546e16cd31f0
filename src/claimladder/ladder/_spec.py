"""The schema of ``study.toml``: allowed keys, their types and defaults.

One mechanism validates every key, so a typo anywhere gets the same message
shape: the file, the key path, "did you mean", and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._core import StudySpecError, did_you_mean

__all__ = ["CRITERIA_DEFAULTS", "PRIMARY_METRICS", "STUDY_SCHEMA", "Key", "Table", "validate_spec"]


@dataclass(frozen=True, slots=True)
class Key:
    """One leaf key: a type check, a description of what is expected, a default."""

    check: Callable[[Any], bool]
    expected: str
    default: Any = None
    required: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """A TOML table: known keys, or free keys whose values all follow ``values``."""

    keys: Mapping[str, Key | Table] = field(default_factory=dict)
    values: Key | None = None
    required: bool = False


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_str(x) for x in v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _in_unit(v: Any) -> bool:
    return _is_number(v) and 0 <= v <= 1


def _in_open_unit(v: Any) -> bool:
    return _is_number(v) and 0 < v < 1


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _is_seed(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_label(v: Any) -> bool:
    return isinstance(v, (int, str, bool))


def _is_number_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) >= 1 and all(_is_number(x) for x in v) and v == sorted(v)


def _str_or_list(v: Any) -> bool:
    return _is_str(v) or (_is_str_list(v) and len(v) >= 1)


def _is_signed_fraction(v: Any) -> bool:
    return _is_number(v) and -1 <= v <= 1


def _is_positive(v: Any) -> bool:
    return _is_number(v) and v > 0


def _is_mean_sd(v: Any) -> bool:
    return (isinstance(v, Mapping) and set(v) == {"mean", "sd"} and _is_number(v["mean"])
            and _is_number(v["sd"]) and v["sd"] > 0)


def _is_fraction_map(v: Any) -> bool:
    return (isinstance(v, Mapping) and len(v) >= 1 and all(_in_unit(x) for x in v.values())
            and abs(sum(v.values()) - 1.0) <= 0.01)


def _is_preprocessing_list(v: Any) -> bool:
    allowed = {"name", "partition", "statistics", "n_images", "description"}
    return isinstance(v, list) and all(
        isinstance(t, Mapping) and set(t) <= allowed and _is_str(t.get("name"))
        and _is_str(t.get("partition")) and _is_count(t.get("n_images", 1))
        and isinstance(t.get("description", ""), str)
        and isinstance(t.get("statistics", {}), Mapping)
        and all(_is_number(x) or (isinstance(x, list) and all(_is_number(y) for y in x))
                for x in t.get("statistics", {}).values())
        for t in v)


#: Metrics the ladder can use as the primary metric.
PRIMARY_METRICS = ("roc_auc",)

_STR = Key(_is_str, "a non-empty string")
_STR_LIST = Key(_is_str_list, "a list of strings", default=[])
_FRACTION = Key(_in_unit, "a number in [0, 1]")

#: Default acceptance criteria per rung; study.toml overrides them key by key.
CRITERIA_DEFAULTS: dict[str, dict[str, float]] = {
    "cohort": {"max_missing_fraction": 0.10},
    "internal": {"min_auroc": 0.70},
    "external": {"max_auroc_drop": 0.05},
    "bias": {"max_subgroup_auroc_gap": 0.05, "min_group_size": 30},
    # max_ece judges the smooth ECE (Blasiok & Nakkiran 2023); coverage of the conformal sets.
    "calibration": {"max_ece": 0.05, "target_error": 0.10, "target_coverage": 0.90},
    "robustness": {"max_auroc_drop": 0.05},
    "utility": {"min_auroc_gain_over_metadata": 0.05, "target_sensitivity": 0.90},
    # Reader study (rung 6): aided must not be worse than unaided; the model within 0.05
    # AUROC of the readers; reading may not become credibly slower.
    "readers": {"min_auroc_gain": 0.0, "model_margin": 0.05, "max_time_increase_s": 0.0},
    # Deployment setting (rung 0): |SMD| above 0.1 is the usual imbalance mark (Austin 2009).
    "deployment": {"max_smd": 0.10, "max_prevalence_ratio": 2.0},
}

_CRITERIA_KEYS = {
    "cohort": {"max_missing_fraction": _FRACTION},
    "internal": {"min_auroc": _FRACTION, "min_sensitivity": _FRACTION,
                 "min_specificity": _FRACTION},
    "external": {"max_auroc_drop": _FRACTION},
    "bias": {"max_subgroup_auroc_gap": _FRACTION,
             "min_group_size": Key(_is_count, "an integer >= 1")},
    "calibration": {"max_ece": _FRACTION, "target_error": _FRACTION,
                    "target_coverage": _FRACTION},
    "robustness": {"max_auroc_drop": _FRACTION},
    "utility": {"min_auroc_gain_over_metadata": _FRACTION,
                "target_sensitivity": _FRACTION},
    "readers": {"min_auroc_gain": Key(_is_signed_fraction, "a number in [-1, 1]"),
                "model_margin": _FRACTION,
                "max_time_increase_s": Key(_is_number, "a number of seconds")},
    "deployment": {"max_smd": Key(_is_positive, "a number > 0"),
                   "max_prevalence_ratio": Key(lambda v: _is_number(v) and v >= 1,
                                               "a number >= 1"),
                   "min_ppv": _FRACTION, "min_npv": _FRACTION},
}

STUDY_SCHEMA = Table(keys={
    "study": Table(keys={"title": _STR}),
    "claim": Table(required=True, keys={
        "statement": Key(_is_str, "a non-empty string", required=True),
        "intended_use": _STR,
        "not_intended_for": _STR_LIST,
        "positive_label": Key(_is_label, "an integer, string or boolean label value", default=1),
    }),
    "data": Table(required=True, keys={
        "cohort": Key(_is_str, "a file path (CSV or Parquet)", required=True),
        "predictions": Key(_is_str, "a file path (CSV or Parquet)"),
        "images_root": Key(_is_str, "a folder path", default="."),
        "candidate_model": _STR,
        "columns": Table(keys={
            **{role: _STR for role in ("image_id", "patient_id", "label", "path", "site",
                                       "scanner", "manufacturer", "protocol", "acquired_at",
                                       "label_certainty", "adjudicated")},
            "attributes": _STR_LIST,
            "annotators": _STR_LIST,
        }),
        "prediction_columns": Table(keys={
            "image_id": _STR,
            "score": Key(_str_or_list, "a column name, or a list of one column per class"),
            "model": _STR,
        }),
    }),
    "cohort": Table(keys={"include": _STR_LIST, "exclude": _STR_LIST}),
    "partitions": Table(keys={
        "development": Key(_is_str, "a row filter such as \"split == 'train'\""),
        "calibration": Key(_is_str, "a row filter such as \"split == 'calib'\""),
        "internal_test": Key(_is_str, "a row filter such as \"split == 'test'\""),
        "external": Table(values=Key(_is_str, "a row filter such as \"site == 'C'\"")),
    }),
    "subgroups": Table(keys={
        "attributes": _STR_LIST,
        "age_bands": Key(_is_number_list, "an increasing list of ages, e.g. [18, 40, 65, 80]"),
        "age_column": _STR,
    }),
    "metrics": Table(keys={
        "primary": Key(lambda v: v in PRIMARY_METRICS, f"one of {list(PRIMARY_METRICS)}",
                       default="roc_auc"),
        "threshold": Key(_in_unit, "a probability in [0, 1]", default=0.5),
        "confidence_level": Key(_in_open_unit, "a number in (0, 1), e.g. 0.95", default=0.95),
        "n_resamples": Key(_is_count, "an integer >= 1", default=2000),
        "seed": Key(_is_seed, "an integer >= 0", default=0),
    }),
    "criteria": Table(keys={name: Table(keys=keys) for name, keys in _CRITERIA_KEYS.items()}),
    "leakage": Table(keys={
        "split_columns": Key(_is_str_list, "a list of cohort columns holding alternative "
                                           "train/test splits to audit", default=[]),
        "workflow_fields": Key(_is_str_list, "a list of columns not available at inference"),
    }),
    "model": Table(keys={"adapter": Key(_is_str, "'package.module:function' or a file path")}),
    # Fitted preprocessing of the model under test ([[preprocessing]] tables), checked by
    # leakage.preprocessing_fit: each was fitted on the partition it names.
    "preprocessing": Key(_is_preprocessing_list,
                         "[[preprocessing]] tables with name and partition (strings), and "
                         "optionally statistics (a table of numbers or lists of numbers), "
                         "n_images (an integer >= 1) and description", default=[]),
    # A reader study of the claim (rung 6); absent `table` means no reader study.
    "readers": Table(keys={
        "table": Key(_is_str, "a file path (CSV or Parquet): case_id, reader_id, modality, "
                              "score[, decision, time_s]"),
        "modalities": Key(lambda v: _is_str_list(v) and len(v) == 2 and v[0] != v[1],
                          "two different modality names, without then with the aid",
                          default=["unaided", "aided"]),
        "model_modality": Key(_is_str, "a modality name (the readers the model is compared "
                                       "with)"),
        "covariance": Key(lambda v: v in ("jackknife", "delong"), "'jackknife' or 'delong'",
                          default="jackknife"),
        "analysis": Key(lambda v: v in ("RRRC", "FRRC", "RRFC"), "'RRRC', 'FRRC' or 'RRFC'",
                        default="RRRC"),
        "confident_low": Key(_in_open_unit, "a probability in (0, 1)", default=0.1),
        "confident_high": Key(_in_open_unit, "a probability in (0, 1)", default=0.9),
        "columns": Table(keys={role: _STR for role in ("case_id", "reader_id", "modality",
                                                       "score", "decision", "time_s")}),
    }),
    # The intended deployment population (rung 0); every key is optional.
    "deployment": Table(keys={
        "description": _STR,
        "prevalence": Key(_in_open_unit, "a prevalence in (0, 1)"),
        "reference_cohort": Key(_is_str, "a file path (CSV or Parquet) of a deployment sample "
                                         "with the cohort's column names"),
        "numeric": Table(values=Key(_is_mean_sd, "a table {mean = number, sd = number > 0}")),
        "categories": Table(values=Key(_is_fraction_map,
                                       "a table of category = fraction (fractions summing "
                                       "to 1)")),
        "scanner_vendors": _STR_LIST,
        "site_types": _STR_LIST,
        "site_type_column": _STR,
    }),
})


def validate_spec(data: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Check ``data`` against :data:`STUDY_SCHEMA`, filling defaults.

    Raises
    ------
    StudySpecError
        Naming the file, the key path, what was expected and the closest known key.
    """
    return _validate_table(STUDY_SCHEMA, data, path=(), source=source)


def _where(path: tuple[str, ...]) -> str:
    return "[" + ".".join(path) + "]" if path else "the top level"


def _validate_table(schema: Table, data: Any, *, path: tuple[str, ...], source: str) -> dict:
    if not isinstance(data, Mapping):
        raise StudySpecError(
            f"{source}: {_where(path)} must be a table of keys. Got {data!r}. "
            f"Fix: write it as a [{'.'.join(path)}] section."
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        if schema.values is not None:
            out[key] = _validate_leaf(schema.values, value, path=(*path, key), source=source)
            continue
        if key not in schema.keys:
            known = list(schema.keys)
            raise StudySpecError(
                f"{source}: unknown key {key!r} in {_where(path)}.{did_you_mean(key, known)} "
                f"Known keys there: {', '.join(repr(k) for k in known)}."
            )
        sub = schema.keys[key]
        if isinstance(sub, Table):
            out[key] = _validate_table(sub, value, path=(*path, key), source=source)
        else:
            out[key] = _validate_leaf(sub, value, path=(*path, key), source=source)
    for key, sub in schema.keys.items():
        if key in out:
            continue
        if sub.required:
            what = (f"a [{'.'.join((*path, key))}] section" if isinstance(sub, Table)
                    else f"`{key} = ...` under {_where(path)}")
            raise StudySpecError(f"{source}: required {what} is missing. Fix: add it.")
        if isinstance(sub, Table):
            out[key] = _validate_table(sub, {}, path=(*path, key), source=source)
        elif sub.default is not None:
            out[key] = sub.default
    return out


def _validate_leaf(key: Key, value: Any, *, path: tuple[str, ...], source: str) -> Any:
    if not key.check(value):
        raise StudySpecError(
            f"{source}: {_where(path[:-1])} {path[-1]} must be {key.expected}. Got {value!r}."
        )
    return value
