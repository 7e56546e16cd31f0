"""``stress_test``: a model's metric under graded perturbations, with paired CIs of the drop."""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import threading
import time
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
    UsageError,
    check_option,
    check_positive_int,
    check_probability,
    check_rng,
)
from ..cohort import ImageFiles
from ..metrics import compare_paired
from ..models import ModelAdapter, image_digests, load_model
from ..parallel import Executor, Unit, current_executor, run_units
from ._base import GradedPerturbation
from ._registry import DEFAULT_PERTURBATIONS, PERTURBATIONS

__all__ = ["BOUNDARY_RULES", "STRESS_METRICS", "StressTestResult", "stress_test"]

#: Metrics a stress test can track (those needing no target rate).
STRESS_METRICS = ("roc_auc", "average_precision", "sensitivity", "specificity", "ppv", "npv",
                  "accuracy", "f1", "balanced_accuracy", "brier_score", "log_loss")
_LOWER_IS_BETTER = ("brier_score", "log_loss")
_THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "f1",
                      "balanced_accuracy")
#: How the failure boundary compares the drop with the criterion.
BOUNDARY_RULES = ("estimate", "ci_low", "ci_high")
_MAX_EXAMPLES = 10
_SEED_BITS = 63


def _metric_function(metric: str):
    from .. import metrics

    return getattr(metrics, metric)


def _root_seed(rng: RngLike) -> int:
    """One integer from which every per-image and per-cell seed is derived."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return int(rng)
    return int(check_rng(rng).integers(0, 2**_SEED_BITS))


def _image_seeds(root: int, name: str, digests: Sequence[str]) -> np.ndarray:
    """Seeds from (root, perturbation, image content): independent of batch and order.

    The severity is deliberately left out: every severity of one perturbation
    reuses the same random draws (common random numbers), so degradation
    curves are monotone in the perturbation strength rather than in noise.
    """
    out = np.empty(len(digests), dtype=np.uint64)
    for i, digest in enumerate(digests):
        h = hashlib.sha256(f"{root}|{name}|{digest}".encode()).digest()
        out[i] = int.from_bytes(h[:8], "little") >> 1
    return out


def _cell_rng(root: int, name: str, severity: int) -> np.random.Generator:
    return np.random.default_rng([root, zlib.crc32(name.encode()), int(severity)])


@dataclass(frozen=True, slots=True)
class _Ladder:
    name: str
    kind: str
    levels: Mapping[int, Any]  # severity -> perturbation (0 is the identity)


def _ladders(perturbations: Any, severities: tuple[int, ...]) -> list[_Ladder]:
    owner = "stress_test"
    if isinstance(perturbations, (str, type, GradedPerturbation)):
        perturbations = [perturbations]
    ladders: list[_Ladder] = []
    if isinstance(perturbations, Mapping):
        for name, steps in perturbations.items():
            steps = list(steps) if not isinstance(steps, Mapping) else steps
            if isinstance(steps, Mapping):
                levels = {int(k): v for k, v in steps.items()}
            else:
                levels = {k + 1: v for k, v in enumerate(steps)}
            kinds = {getattr(v, "kind", "image") for v in levels.values()}
            if len(kinds) != 1 or not levels:
                raise ValueError(f"The ladder {name!r} passed to {owner} must hold perturbations "
                                 "of one kind (image or metadata).")
            for level, step in levels.items():
                if level < 1 or not hasattr(step, "apply"):
                    raise ValueError(
                        f"The ladder {name!r} passed to {owner} must map severities >= 1 to "
                        f"perturbations (objects with .apply). Got {level!r}: {step!r}.")
            ladders.append(_Ladder(str(name), kinds.pop(), {0: None, **levels}))
        return ladders
    for item in perturbations:
        cls = item
        if isinstance(item, str):
            check_option(item, PERTURBATIONS, param="perturbations", owner=owner)
            cls = PERTURBATIONS[item]
        elif isinstance(item, GradedPerturbation):
            cls = type(item)
        if not (isinstance(cls, type) and issubclass(cls, GradedPerturbation)):
            raise TypeError(
                f"The 'perturbations' parameter of {owner} takes names "
                f"({', '.join(PERTURBATIONS)}), perturbation classes, or a mapping name -> "
                "list of perturbations for severities 1, 2, ... (e.g. TorchIOPerturbation "
                f"objects). Got {item!r}."
            )
        levels = {s: (None if s == 0 else cls.at_severity(s)) for s in severities}
        ladders.append(_Ladder(cls.name, cls.kind, levels))
    names = [ladder.name for ladder in ladders]
    if len(set(names)) != len(names):
        raise ValueError(f"{owner} got the perturbation names {names} with repeats.")
    return ladders


def _describe(step: Any) -> str:
    return "none" if step is None else step.describe()


def _positive_scores(proba: np.ndarray, adapter: ModelAdapter, pos_label: Any) -> np.ndarray:
    if proba.ndim == 1:
        return proba
    if adapter.classes is not None and pos_label in adapter.classes:
        return proba[:, adapter.classes.index(pos_label)]
    if proba.shape[1] == 2:
        return proba[:, 1]
    raise ValueError(
        f"stress_test needs one probability of the positive class per image; the model returns "
        f"{proba.shape[1]} columns. Fix: wrap it to return the column of the class of interest."
    )


def _as_images(images: Any) -> np.ndarray:
    if type(images).__module__.split(".")[0] == "torch":
        images = images.detach().cpu().numpy()
    if isinstance(images, np.ndarray):
        array = images
    else:
        array = np.stack([np.asarray(im) for im in images])
    if array.ndim not in (3, 4):
        raise ValueError("The 'images' parameter of stress_test must have shape (N, H, W) or "
                         f"(N, D, H, W). Got shape {array.shape} instead.")
    return array


def _absolute(files: ImageFiles) -> ImageFiles:
    """The same files by absolute path: a worker process may run in another folder."""
    return ImageFiles([os.path.abspath(p) if p else "" for p in files.paths])


def _load_files(files: ImageFiles, *, owner: str, rows: Sequence[int] | None = None,
                shape: tuple[int, ...] | None = None,
                digests: Sequence[str] | None = None) -> np.ndarray:
    """Decode one chunk of files into a float32 stack ``(k, H, W)``, or say which file fails.

    ``rows`` are the files' positions in the whole set (for the messages),
    ``shape`` the shape every image must have (default the first one's), and
    ``digests`` the content the first pass saw (a file changed since is refused:
    its predictions would be cached under another image's key).
    """
    stack = files.stack(owner=owner, positions=rows, shape=shape)
    if digests is not None:
        for j, (seen, now) in enumerate(zip(digests, image_digests(stack), strict=True)):
            if seen != now:
                raise UsageError(
                    f"The image file {files.paths[j]!r} changed while {owner} ran (its pixels "
                    "differ from the first pass). Fix: leave the image files unchanged during "
                    "the run, then run it again.")
    return stack


def _scan_files(files: ImageFiles, chunk_size: int, owner: str) -> list[str]:
    """Check that every file decodes to one 2D shape; the content digest of each.

    One chunk of decoded images is held at a time.
    """
    digests: list[str] = []
    shape = None
    for start in range(0, len(files), chunk_size):
        rows = range(start, min(start + chunk_size, len(files)))
        stack = _load_files(files.take(rows), owner=owner, rows=rows, shape=shape)
        shape = stack.shape[1:]
        digests += image_digests(stack)
        del stack
    return digests


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StressTestResult:
    """What :func:`stress_test` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (perturbation, severity): ``perturbation``, ``severity``,
        ``parameters`` (the perturbation's description), ``metric``,
        ``estimate``, ``ci_low``, ``ci_high`` (the metric under the
        perturbation), ``drop``, ``drop_ci_low``, ``drop_ci_high`` (the
        degradation from the clean images, positive = worse, with the paired
        cluster CI), ``p_value`` (of zero drop), ``flip_rate``,
        ``n_flipped`` (predictions crossing ``threshold``),
        ``mean_abs_change`` (of the score), ``n``, ``n_clusters``.
    clean : Estimate
        The metric on the unperturbed images.
    boundaries : dict
        Perturbation name -> failure boundary (the lowest severity whose
        drop exceeds the criterion under ``boundary_rule``), or None.
    flips : pandas.DataFrame
        ``perturbation, severity, image_id, score_clean, score_perturbed`` of
        every image whose prediction crossed the threshold.
    metric, threshold, criterion_max_drop, boundary_rule, seed, confidence_level
        The settings (``seed`` is the root seed every draw derives from).
    kinds : dict
        Perturbation name -> ``"image"`` or ``"metadata"``.
    timings : dict
        Seconds spent perturbing, predicting and computing metrics.
    """

    table: pd.DataFrame
    clean: Estimate
    boundaries: Mapping[str, int | None]
    flips: pd.DataFrame
    metric: str
    threshold: float
    criterion_max_drop: float
    boundary_rule: str
    seed: int
    confidence_level: float
    kinds: Mapping[str, str] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def perturbations(self) -> list[str]:
        """Perturbation names, in the order they were run."""
        return list(dict.fromkeys(self.table["perturbation"]))

    def degradation_plot(self, perturbation: str | None = None) -> Plot:
        """The degradation curve(s): metric against severity with CIs.

        Parameters
        ----------
        perturbation : str, optional
            One perturbation; default all (one line each).

        Returns
        -------
        Plot
            ``kind="line"``, data columns ``perturbation, severity, estimate,
            ci_low, ci_high``; options give the axis labels and the
            ``reference`` line (clean value minus the criterion for
            higher-is-better metrics, plus it otherwise).
        """
        data = self.table
        if perturbation is not None:
            check_option(perturbation, self.perturbations, param="perturbation",
                         owner="StressTestResult.degradation_plot")
            data = data[data["perturbation"] == perturbation]
        data = data[["perturbation", "severity", "estimate", "ci_low", "ci_high"]]
        sign = 1.0 if self.metric in _LOWER_IS_BETTER else -1.0
        title = (f"{self.metric} under {perturbation.replace('_', ' ')}" if perturbation
                 else f"{self.metric} under perturbations")
        return Plot(kind="line", title=title, data=data.reset_index(drop=True), options={
            "x": "severity", "y": "estimate", "group": "perturbation",
            "xlabel": "severity (0 = clean)", "ylabel": self.metric,
            "reference": self.clean.value + sign * self.criterion_max_drop,
            "reference_label": f"clean {self.metric} {'+' if sign > 0 else '-'} "
                               f"{self.criterion_max_drop:g}"})

    def to_findings(self, *, required_severity: int = 2,
                    max_examples: int = _MAX_EXAMPLES) -> list[Finding]:
        """One ``robustness.<perturbation>`` finding per perturbation.

        Parameters
        ----------
        required_severity : int, default 2
            The claim must hold up to this severity. Levels 1-2 of the
            built-in perturbations are within routine clinical variation,
            3 is a degraded but diagnostic acquisition, 4-5 are stress
            levels that locate the failure boundary rather than judge the claim.
        max_examples : int, default 10
            Most image ids listed as examples.

        Returns
        -------
        list of Finding
            Rung 5 (ROBUSTNESS). Status, over severities ``1..required_severity``:

            - ``fail``: the failure boundary (by ``boundary_rule``) is at or
              below ``required_severity``;
            - ``warn``: no boundary there, but the upper confidence bound of
              some drop exceeds the criterion (an unacceptable drop cannot be
              ruled out);
            - ``pass``: every upper confidence bound is within the criterion;
            - ``not_evaluable``: the clean metric or the drops are undefined,
              or no severity up to ``required_severity`` was run.

            The estimate is the drop at the highest evaluated severity up to
            ``required_severity``; the examples are images whose prediction
            flipped there (or at the boundary), largest score change first.
        """
        findings = []
        for name in self.perturbations:
            findings.append(self._finding(name, int(required_severity), int(max_examples)))
        return findings

    def _finding(self, name: str, required: int, max_examples: int) -> Finding:
        rows = self.table[self.table["perturbation"] == name]
        judged = rows[(rows["severity"] > 0) & (rows["severity"] <= required)]
        boundary = self.boundaries.get(name)
        plot = self.degradation_plot(name)
        criterion = (f"{self.metric} drop <= {self.criterion_max_drop:g} up to severity "
                     f"{required} (boundary by {self.boundary_rule})")
        params = {"perturbation": name, "kind": self.kinds.get(name, "image"),
                  "required_severity": required, "boundary": boundary,
                  "boundary_rule": self.boundary_rule, "metric": self.metric,
                  "threshold": self.threshold, "seed": self.seed,
                  "levels": {int(s): p for s, p in zip(rows["severity"], rows["parameters"],
                                                       strict=True)}}
        check = f"robustness.{name}"
        what = name.replace("_", " ")
        if not self.clean.is_defined:
            return Finding(check=check, rung=Rung.ROBUSTNESS, status=Status.NOT_EVALUABLE,
                           message=f"{self.metric} is undefined on the clean images (one class "
                                   f"only?), so its drop under {what} cannot be measured.",
                           criterion=criterion, table=rows.reset_index(drop=True),
                           plots=(plot,), params=params)
        if judged.empty or judged["drop"].isna().all():
            reason = ("no severity up to the required one was run" if judged.empty else
                      f"the {self.metric} drop is undefined")
            return Finding(check=check, rung=Rung.ROBUSTNESS, status=Status.NOT_EVALUABLE,
                           message=f"Robustness to {what} not evaluable: {reason}.",
                           criterion=criterion, table=rows.reset_index(drop=True),
                           plots=(plot,), params=params)
        head = judged.iloc[-1]
        estimate = Estimate(value=head["drop"],
                            ci=ConfidenceInterval(low=_nan(head["drop_ci_low"]),
                                                  high=_nan(head["drop_ci_high"])),
                            confidence_level=self.confidence_level,
                            method=f"paired {self.clean.method}", n=int(head["n"]),
                            n_clusters=None if pd.isna(head["n_clusters"])
                            else int(head["n_clusters"]), n_pos=self.clean.n_pos)
        drop_text = (f"{self.metric} changes by {-head['drop']:+.3f} "
                     f"[{-head['drop_ci_high']:+.3f}, {-head['drop_ci_low']:+.3f}]"
                     if self.metric not in _LOWER_IS_BETTER else
                     f"{self.metric} worsens by {head['drop']:+.3f} "
                     f"[{head['drop_ci_low']:+.3f}, {head['drop_ci_high']:+.3f}]")
        where = f"under {what} at severity {int(head['severity'])} ({head['parameters']})"
        boundary_text = (f"failure boundary: severity {boundary}" if boundary is not None else
                         f"no failure up to severity {int(rows['severity'].max())}")
        if boundary is not None and boundary <= required:
            status = Status.FAIL
            verdict = "exceeding the allowed drop"
        elif (judged["drop_ci_high"] > self.criterion_max_drop).any():
            status = Status.WARN
            verdict = "an unacceptable drop cannot be ruled out"
        else:
            status = Status.PASS
            verdict = "within the allowed drop"
        example_severity = boundary if boundary is not None else int(head["severity"])
        flips = self.flips[(self.flips["perturbation"] == name)
                           & (self.flips["severity"] == example_severity)]
        order = np.argsort(-np.abs(flips["score_perturbed"].to_numpy(dtype=float)
                                   - flips["score_clean"].to_numpy(dtype=float)), kind="stable")
        examples = tuple(flips["image_id"].to_numpy()[order][:max_examples])
        message = f"{drop_text} {where}: {verdict}; {boundary_text}."
        return Finding(check=check, rung=Rung.ROBUSTNESS, status=status, message=message,
                       estimate=estimate, criterion=criterion, table=rows.reset_index(drop=True),
                       plots=(plot,), examples=examples, params=params)


def _nan(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def stress_test(
    model: Any,
    images: Any,
    y_true: Any,
    *,
    groups: Any = None,
    image_ids: Sequence[Any] | None = None,
    metadata: pd.DataFrame | None = None,
    perturbations: Any = DEFAULT_PERTURBATIONS,
    severities: Sequence[int] = (0, 1, 2, 3, 4, 5),
    metric: str = "roc_auc",
    method: Literal["delong", "bootstrap", "bca"] | None = None,
    threshold: float = 0.5,
    criterion_max_drop: float = 0.05,
    boundary_rule: Literal["estimate", "ci_low", "ci_high"] = "estimate",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: RngLike = None,
    pos_label: Any = 1,
    chunk_size: int = 256,
    progress: bool = False,
    executor: Executor | None = None,
) -> StressTestResult:
    """Measure a model's metric under graded perturbations.

    Parameters
    ----------
    model : ModelAdapter or anything :func:`claimladder.models.load_model` accepts
        Maps images to probabilities (binary: one column, or two).
    images : array-like of shape (N, H, W) or (N, D, H, W), or ImageFiles
        The test images (a sequence of equally shaped arrays is stacked), or
        a :class:`claimladder.cohort.ImageFiles` of equally shaped 2D images,
        decoded a chunk at a time (for image sets larger than memory). Files
        give bit-identical results to the stacked float32 array of their images.
    y_true : array-like of shape (N,)
        Binary labels.
    groups : array-like of shape (N,), optional
        Patient ids: intervals resample patients (clustered DeLong or
        cluster bootstrap).
    image_ids : sequence, optional
        Ids used as examples; default ``"0" .. "N-1"``.
    metadata : pandas.DataFrame, optional
        One row per image, passed to models that take metadata, and the
        table the metadata perturbations corrupt.
    perturbations : sequence or mapping, default all built-in image perturbations
        Names (see :data:`PERTURBATIONS`), perturbation classes, or a
        mapping ``name -> [p1, p2, ...]`` of perturbation objects for
        severities 1, 2, ... (e.g. :class:`TorchIOPerturbation` at
        increasing strength; random ones are fine, their draws are seeded).
    severities : sequence of int, default (0, 1, 2, 3, 4, 5)
        Levels to evaluate (0, the clean images, is always included).
    metric : str, default "roc_auc"
        One of :data:`STRESS_METRICS`.
    method : {"delong", "bootstrap", "bca"}, optional
        Interval method of the metric and of the paired drop; default
        ``"delong"`` for ``roc_auc`` (clustered with ``groups``), else the
        cluster bootstrap.
    threshold : float, default 0.5
        Operating threshold: flip rates, and threshold metrics.
    criterion_max_drop : float, default 0.05
        Largest acceptable degradation of the metric.
    boundary_rule : {"estimate", "ci_low", "ci_high"}, default "estimate"
        What is compared with the criterion to place the failure boundary:
        the drop's point estimate (default: the best guess of where the
        model fails), its lower confidence bound (only drops established
        beyond chance), or its upper bound (the conservative reviewer's
        rule: any severity where an unacceptable drop cannot be excluded).
    n_resamples : int, default 2000
        Bootstrap replicates (bootstrap methods only).
    confidence_level : float, default 0.95
        Nominal coverage of every interval.
    rng : int, numpy.random.Generator or None
        Root seed. Every image's random draws derive from it, the
        perturbation name and the image's content (not its position), and
        are shared by all severities of one perturbation.
    pos_label : default 1
        Positive class in ``y_true``.
    chunk_size : int, default 256
        Images perturbed (and, from files, decoded) at a time: bounds memory.
    progress : bool, default False
        Show a rich progress bar.
    executor : claimladder.parallel.Executor, optional
        Where the perturbation + inference units (one per perturbation,
        severity and chunk of ``chunk_size`` images) run; default the
        executor of the enclosing :func:`claimladder.parallel.use_executor`
        block, else in-process. Results are identical on every executor (each
        image's draws come from its own seed). Out of process, the model is
        sent to the workers, so it must be picklable.

    Returns
    -------
    StressTestResult
        Use :meth:`StressTestResult.to_findings` for the ladder.

    Raises
    ------
    ValueError
        Mismatched lengths, an unknown perturbation or metric (with a
        suggestion), or a metadata perturbation without ``metadata``. From
        files (a ``UsageError``): one does not decode, is not 2D, differs in
        shape from the first (the message names its position and path), or
        changed during the run.

    Notes
    -----
    The drop at each severity is ``metric(clean) - metric(perturbed)``
    (reversed for losses) with the interval of
    :func:`claimladder.metrics.compare_paired` on the same images, so the
    pairing removes the between-image variance. Predictions are cached by
    (image content, perturbation, severity, seed): a rerun with the same
    seed, or a model adapter shared between checks, perturbs and scores
    nothing twice.

    Memory: with :class:`~claimladder.cohort.ImageFiles`, a first pass checks
    and digests the files one chunk at a time; then each work unit carries
    only the paths of its chunk and decodes them itself (on its own worker),
    so at most ``chunk_size`` decoded images (and their perturbed copy) are
    held per unit, and the caller keeps one float per image and
    perturbation severity for the scores (plus one digest per image).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import stress_test
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20)
    >>> images = rng.normal(0, 1, (40, 16, 16)).astype(np.float32) + y[:, None, None]
    >>> model = lambda x: 1 / (1 + np.exp(-4 * (x.mean(axis=(1, 2)) - 0.5)))
    >>> result = stress_test(model, images, y, perturbations=["gaussian_noise"],
    ...                      severities=(0, 1, 2, 5), rng=0)
    >>> result.table[["severity", "estimate"]].round(3).values.tolist()
    [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [5.0, 1.0]]
    >>> [f.status.value for f in result.to_findings()]
    ['pass']
    """
    owner = "stress_test"
    started = time.perf_counter()
    adapter = load_model(model, progress=False)
    metric = check_option(metric, STRESS_METRICS, param="metric", owner=owner)
    boundary_rule = check_option(boundary_rule, BOUNDARY_RULES, param="boundary_rule",
                                 owner=owner)
    confidence_level = check_probability(confidence_level, param="confidence_level",
                                         owner=owner)
    if not isinstance(criterion_max_drop, (int, float)) or isinstance(criterion_max_drop, bool) \
            or not criterion_max_drop >= 0:
        raise ValueError(f"The 'criterion_max_drop' parameter of {owner} must be a float >= 0. "
                         f"Got {criterion_max_drop!r} instead.")
    severities = tuple(sorted({0, *(int(s) for s in severities)}))
    if severities[0] < 0:
        raise ValueError(f"The 'severities' of {owner} must be >= 0. Got {severities}.")
    chunk_size = check_positive_int(chunk_size, param="chunk_size", owner=owner)
    if isinstance(images, ImageFiles):
        # Decoded a chunk at a time, here and in each work unit: never all at once.
        files, array = _absolute(images), None
        n = len(files)
        if not n:
            raise ValueError(f"{owner} got no images; pass at least one.")
    else:
        files, array = None, _as_images(images)
        n = array.shape[0]
    y = np.asarray(y_true)
    if y.shape != (n,):
        raise ValueError(f"{owner} got {n} images but y_true has shape {y.shape}; pass one "
                         "label per image.")
    group_array = None if groups is None else np.asarray(groups)
    if group_array is not None and group_array.shape != (n,):
        raise ValueError(f"{owner} got {n} images but groups has shape {group_array.shape}.")
    ids = (np.asarray([str(i) for i in range(n)]) if image_ids is None
           else np.asarray([str(i) for i in image_ids]))
    if ids.shape != (n,):
        raise ValueError(f"{owner} got {n} images but {ids.size} image_ids.")
    if metadata is not None:
        if not isinstance(metadata, pd.DataFrame) or len(metadata) != n:
            raise ValueError(f"The 'metadata' parameter of {owner} must be a DataFrame with one "
                             f"row per image ({n}).")
        metadata = metadata.reset_index(drop=True)
    ladders = _ladders(perturbations, severities)
    for ladder in ladders:
        if ladder.kind == "metadata" and (metadata is None or not adapter.takes_metadata):
            raise ValueError(
                f"The metadata perturbation {ladder.name!r} needs 'metadata' and a model that "
                "takes it (load_model(..., takes_metadata=True)). Fix: pass both, or drop "
                "the metadata perturbations."
            )
    root = _root_seed(rng)
    digests = _scan_files(files, chunk_size, owner) if files is not None else image_digests(array)
    metadata_digest = "" if metadata is None else hashlib.sha256(
        pd.util.hash_pandas_object(metadata, index=False).to_numpy().tobytes()).hexdigest()[:16]
    timings = {"perturb": 0.0, "predict": 0.0, "metrics": 0.0}
    metric_fn = _metric_function(metric)
    metric_kwargs = {"groups": group_array, "confidence_level": confidence_level,
                     "n_resamples": n_resamples, "pos_label": pos_label}
    if method is not None:
        metric_kwargs["method"] = method
    elif metric == "roc_auc":
        metric_kwargs["method"] = "delong"
    if metric in _THRESHOLD_METRICS:
        metric_kwargs["threshold"] = threshold

    def predict(batch: np.ndarray, rows: np.ndarray, keys: list, meta: pd.DataFrame | None):
        t0 = time.perf_counter()
        proba = adapter.predict_proba(batch, metadata=None if meta is None
                                      else meta.iloc[rows].reset_index(drop=True), keys=keys)
        timings["predict"] += time.perf_counter() - t0
        return _positive_scores(np.asarray(proba), adapter, pos_label)

    def lookup(ladder: _Ladder, severity: int) -> tuple[list, np.ndarray, np.ndarray]:
        """Cache keys of one cell, its scores (NaN where not cached) and the missing rows."""
        step = ladder.levels[severity]
        desc = _describe(step)
        if ladder.kind == "metadata":
            desc = f"{desc}|{metadata_digest}"
        keys = adapter.keys_from_digests(digests, metadata=metadata, perturbation=desc,
                                         severity=severity if step is not None else 0,
                                         seed=None if step is None else root)
        cached, hit = adapter.cached(keys)
        out = np.full(n, np.nan)
        if cached is not None:
            out[hit] = _positive_scores(cached[hit] if cached.shape[1] > 1 else cached[hit, 0],
                                        adapter, pos_label)
        return keys, out, np.flatnonzero(~hit)

    prefetched: dict[tuple[str, int], np.ndarray] = {}

    def prefetch(cells: list[tuple[_Ladder, int]]) -> None:
        """Perturb and score every image cell as independent work units on the executor."""
        pool = current_executor() if executor is None else executor
        blob = _model_blob(adapter)
        if blob is None and pool.backend != "serial":
            raise ValueError(
                f"{owner}: the model cannot be pickled, so it cannot run on the {pool.backend} "
                "executor. Fix: define the model function at module level (not a lambda or "
                "closure), or run in-process.")
        # Every backend scores with a copy unpickled from the same bytes: the model's arrays
        # then sit at the same memory alignment everywhere, and SIMD reductions agree to the
        # last bit (the original object can differ from its copies in the last bits).
        if blob is None:
            model = adapter
        elif pool.backend == "serial":
            model = pickle.loads(blob)
        else:
            model = pool.broadcast(blob)
        units, targets = [], []
        for ladder, severity in cells:
            if ladder.kind != "image":
                continue
            step = ladder.levels[severity]
            keys, out, missing = lookup(ladder, severity)
            prefetched[ladder.name, severity] = out
            seeds = _image_seeds(root, ladder.name, digests)
            for start in range(0, missing.size, chunk_size):
                rows = missing[start:start + chunk_size]
                meta = (None if metadata is None or not adapter.takes_metadata
                        else metadata.iloc[rows].reset_index(drop=True))
                if files is not None:  # paths only: the unit decodes its own chunk
                    args = (model, step, files.take(rows), seeds[rows], meta,
                            [digests[r] for r in rows])
                else:
                    contiguous = rows[-1] - rows[0] + 1 == rows.size
                    batch = array[rows[0]:rows[-1] + 1] if contiguous else array[rows]
                    args = (model, step, batch, seeds[rows], meta)
                units.append(Unit(key=f"stress_test[{ladder.name}, severity {severity}, "
                                      f"images {rows[0]}..{rows[-1]}]", args=args))
                targets.append((out, rows, keys))

        def collect(i: int, result: tuple) -> None:
            proba, seconds_perturb, seconds_predict = result
            out, rows, keys = targets[i]
            if model is not adapter:  # the copies' counters stay with them
                adapter.n_model_calls += -(-rows.size // adapter.batch_size)
                adapter.n_images_predicted += rows.size
            if adapter.cache is not None:
                adapter.cache.put([keys[r] for r in rows], proba)
            out[rows] = _positive_scores(proba if proba.shape[1] > 1 else proba[:, 0],
                                         adapter, pos_label)
            timings["perturb"] += seconds_perturb
            timings["predict"] += seconds_predict

        bar = _Tracker(len(units), progress, description="Perturbing and scoring")
        try:
            run_units(_perturb_and_predict, units, namespace="stress_test", executor=pool,
                      on_result=collect, progress=lambda *_: bar.advance())
        finally:
            bar.close()

    def scores_for(ladder: _Ladder, severity: int) -> np.ndarray:
        if (ladder.name, severity) in prefetched:
            return prefetched[ladder.name, severity]
        step = ladder.levels[severity]
        keys, out, missing = lookup(ladder, severity)
        if not missing.size:
            return out
        seeds = _image_seeds(root, ladder.name, digests)
        meta = metadata
        if step is not None and ladder.kind == "metadata":
            t0 = time.perf_counter()
            meta = step.apply(metadata, rng=seeds).metadata
            timings["perturb"] += time.perf_counter() - t0
        for start in range(0, missing.size, chunk_size):
            rows = missing[start:start + chunk_size]
            batch = (array[rows] if files is None else
                     _load_files(files.take(rows), owner=owner, digests=[digests[r] for r in rows]))
            if step is not None and ladder.kind == "image":
                t0 = time.perf_counter()
                batch = step.apply(batch, rng=seeds[rows]).images
                timings["perturb"] += time.perf_counter() - t0
            out[rows] = predict(batch, rows, [keys[i] for i in rows], meta)
        return out

    clean_ladder = _Ladder("clean", "image", {0: None})
    cells = [(ladder, s) for ladder in ladders for s in severities if s in ladder.levels]
    prefetch([(clean_ladder, 0), *((ladder, s) for ladder, s in cells
                                   if ladder.levels[s] is not None)])
    clean_scores = scores_for(clean_ladder, 0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        clean = metric_fn(y, clean_scores, rng=_cell_rng(root, "clean", 0), **metric_kwargs)
    timings["metrics"] += time.perf_counter() - t0
    clean_pred = clean_scores >= threshold
    sign = 1.0 if metric in _LOWER_IS_BETTER else -1.0

    rows_out, flips = [], []
    boundaries: dict[str, int | None] = {}
    tracker = _Tracker(len(cells), progress)
    try:
        for ladder, severity in cells:
            step = ladder.levels[severity]
            if step is None:
                scores, est = clean_scores, clean
                drop, low, high, p = 0.0, 0.0, 0.0, 1.0
            else:
                scores = scores_for(ladder, severity)
                t0 = time.perf_counter()
                gen = _cell_rng(root, ladder.name, severity)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UndefinedMetricWarning)
                    warnings.simplefilter("ignore", SmallSampleWarning)
                    est = metric_fn(y, scores, rng=gen, **metric_kwargs)
                    comparison = compare_paired(
                        y, scores, clean_scores, metric=metric, groups=group_array,
                        method=method, threshold=threshold, n_resamples=n_resamples,
                        confidence_level=confidence_level, rng=gen, pos_label=pos_label)
                timings["metrics"] += time.perf_counter() - t0
                diff = comparison.difference
                # "+ 0.0" turns the -0.0 of an unchanged metric into 0.0.
                drop = sign * diff.value + 0.0
                low, high = sorted((sign * diff.ci.low + 0.0, sign * diff.ci.high + 0.0))
                if math.isnan(diff.ci.low):
                    low = high = math.nan
                p = comparison.p_value
            pred = scores >= threshold
            flipped = pred != clean_pred
            change = np.abs(scores - clean_scores)
            rows_out.append({
                "perturbation": ladder.name, "severity": severity,
                "parameters": _describe(step), "metric": metric, "estimate": est.value,
                "ci_low": est.ci.low, "ci_high": est.ci.high, "drop": drop,
                "drop_ci_low": low, "drop_ci_high": high, "p_value": p,
                "flip_rate": float(flipped.mean()) if n else math.nan,
                "n_flipped": int(flipped.sum()), "mean_abs_change": float(change.mean()),
                "n": n, "n_clusters": est.n_clusters})
            for i in np.flatnonzero(flipped):
                flips.append((ladder.name, severity, ids[i], float(clean_scores[i]),
                              float(scores[i])))
            tracker.advance()
    finally:
        tracker.close()
    table = pd.DataFrame(rows_out)
    statistic = {"estimate": "drop", "ci_low": "drop_ci_low", "ci_high": "drop_ci_high"}[
        boundary_rule]
    for ladder in ladders:
        rows = table[(table["perturbation"] == ladder.name) & (table["severity"] > 0)]
        exceeded = rows[rows[statistic] > criterion_max_drop]
        boundaries[ladder.name] = None if exceeded.empty else int(exceeded["severity"].min())
    timings["total"] = time.perf_counter() - started
    return StressTestResult(
        table=table, clean=clean, boundaries=boundaries,
        flips=pd.DataFrame(flips, columns=["perturbation", "severity", "image_id",
                                           "score_clean", "score_perturbed"]),
        metric=metric, threshold=float(threshold), criterion_max_drop=float(criterion_max_drop),
        boundary_rule=boundary_rule, seed=root, confidence_level=confidence_level,
        kinds={ladder.name: ladder.kind for ladder in ladders}, timings=timings)


def _model_blob(adapter: ModelAdapter) -> bytes | None:
    try:
        return pickle.dumps(adapter.without_cache(), protocol=5)
    except Exception:  # noqa: BLE001 - lambdas, closures, open sessions: in-process only
        return None


# Models unpickled in this (worker) process, by digest of their bytes: a worker loads a
# model once, not once per unit. One entry: a worker serves one stress test at a time.
_WORKER_MODELS: dict[str, ModelAdapter] = {}
_WORKER_MODELS_LOCK = threading.Lock()


def _worker_model(model: ModelAdapter | bytes) -> ModelAdapter:
    if not isinstance(model, bytes):
        return model
    digest = hashlib.sha256(model).hexdigest()
    with _WORKER_MODELS_LOCK:  # a worker may run several threads
        if digest not in _WORKER_MODELS:
            _WORKER_MODELS.clear()
            _WORKER_MODELS[digest] = pickle.loads(model)
        return _WORKER_MODELS[digest]


def _perturb_and_predict(model: ModelAdapter | bytes, step: Any, images: np.ndarray | ImageFiles,
                         seeds: np.ndarray, metadata: pd.DataFrame | None,
                         digests: Sequence[str] | None = None
                         ) -> tuple[np.ndarray, float, float]:
    """One work unit: perturb a chunk of images with their seeds, then score it.

    ``images`` is the chunk's pixels, or its :class:`ImageFiles` (decoded here,
    checked against the ``digests`` the caller's first pass computed).
    """
    t0 = time.perf_counter()
    model = _worker_model(model)
    if isinstance(images, ImageFiles):
        images = _load_files(images, owner="stress_test", digests=digests)
    # A fresh copy: an array unpickled on a worker sits at another memory alignment,
    # which changes the last bits of SIMD reductions; copying makes every backend agree.
    images = np.array(images, copy=True)
    if step is not None:
        images = step.apply(images, rng=seeds).images
    t1 = time.perf_counter()
    proba = model.predict_uncached(images, metadata=metadata)
    return proba, t1 - t0, time.perf_counter() - t1


class _Tracker:
    """A rich progress bar over (perturbation, severity) cells, or nothing."""

    def __init__(self, total: int, enabled: bool, *, description: str = "Stress test") -> None:
        self._progress = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(stderr=True), transient=False)
            self._progress.start()
            self._task = self._progress.add_task(description, total=total)

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()

