"""The perturbation protocol: graded deterministic transforms paired with sampling ones.

A deterministic perturbation (``GaussianNoise(sigma=0.02)``) has fixed
parameters; the random draws it still needs (the noise itself, which k-space
lines move) come from one seed *per image*. Its random counterpart
(``RandomGaussianNoise(sigma=(0.0, 0.04))``) samples the parameters of each
image from that image's generator, then delegates to the deterministic
kernel. Both record, per image, every parameter and the seed, so
``Perturbation(**row).apply(image, rng=[row.seed])`` replays any image
exactly, and a batch result equals the per-image results.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from .._core import RngLike, check_option, check_rng

__all__ = [
    "SEVERITY_LEVELS",
    "GradedPerturbation",
    "Perturbation",
    "PerturbationResult",
    "RandomPerturbation",
    "image_seeds",
]

#: Severity levels of every built-in perturbation; 0 is the identity.
SEVERITY_LEVELS = (0, 1, 2, 3, 4, 5)
_SEED_HIGH = 2**63
# Percentiles of the robust intensity range that scales noise, spikes and offsets.
_RANGE_PERCENTILES = (1.0, 99.0)
# At most this many pixels per image enter the robust range (evenly strided).
_RANGE_SAMPLES = 2048
_SEVERITY_HEADING = "Severity levels"


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def image_seeds(rng: RngLike | Sequence[int] | np.ndarray, n: int, *, owner: str) -> np.ndarray:
    """One integer seed per image.

    A sequence of ``n`` non-negative integers is used as is (the stress test
    derives them from image content, so an image's perturbation does not
    depend on the batch it is in); otherwise ``n`` seeds are drawn from
    ``check_rng(rng)``.

    Examples
    --------
    >>> from claimladder.robustness import image_seeds
    >>> image_seeds([7, 8], 2, owner="example").tolist()
    [7, 8]
    >>> bool((image_seeds(0, 3, owner="example") == image_seeds(0, 3, owner="example")).all())
    True
    """
    if isinstance(rng, (list, tuple, np.ndarray)):
        seeds = np.asarray(rng)
        if seeds.shape != (n,) or seeds.dtype.kind not in "iu" or (seeds < 0).any():
            raise ValueError(
                f"The per-image seeds passed as 'rng' to {owner} must be {n} non-negative "
                f"integers (one per image). Got an array of shape {seeds.shape} and dtype "
                f"{seeds.dtype} instead."
            )
        return seeds.astype(np.uint64)
    return check_rng(rng).integers(0, _SEED_HIGH, size=n, dtype=np.int64).astype(np.uint64)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PerturbationResult:
    """Perturbed images and the parameters each image got.

    Parameters
    ----------
    images : numpy.ndarray or torch.Tensor
        Same type, shape and dtype as the input.
    parameters : pandas.DataFrame
        One row per image: ``perturbation`` (name), the deterministic
        parameters it was perturbed with, and ``seed`` (its random draws;
        missing for perturbations that draw nothing).
    """

    images: Any
    parameters: pd.DataFrame


class Batch:
    """A validated batch: float work array, spatial rank, and how to restore the input form."""

    __slots__ = ("_bounds", "_dtype", "_span", "_squeeze", "_torch", "spatial_dims", "work")

    def __init__(self, images: Any, spatial_dims: int | None, *, owner: str) -> None:
        self._torch = None
        if _is_torch_tensor(images):
            self._torch = (images.dtype, images.device)
            images = images.detach().cpu().numpy()
        array = np.asarray(images)
        if array.dtype.kind not in "iuf":
            raise ValueError(f"The images passed to {owner} must be real numbers. Got dtype "
                             f"{array.dtype} instead.")
        if spatial_dims is None:
            spatial_dims = {2: 2, 3: 2, 4: 3}.get(array.ndim)
            if spatial_dims is None:
                raise ValueError(
                    f"The images passed to {owner} must have shape (H, W), (N, H, W) or "
                    f"(N, D, H, W). Got shape {array.shape} instead. Fix: drop the channel "
                    "axis, or pass spatial_dims."
                )
        else:
            spatial_dims = int(check_option(spatial_dims, (2, 3), param="spatial_dims",
                                            owner=owner))
        if array.ndim not in (spatial_dims, spatial_dims + 1):
            raise ValueError(f"{owner} got shape {array.shape} with spatial_dims="
                             f"{spatial_dims}; expected {spatial_dims} or {spatial_dims + 1} "
                             "dimensions.")
        self._squeeze = array.ndim == spatial_dims
        self._dtype = array.dtype
        work_dtype = np.float64 if array.dtype == np.float64 else np.float32
        work = array[None] if self._squeeze else array
        if work.dtype.kind == "f" and not np.isfinite(work).all():
            raise ValueError(f"The images passed to {owner} contain NaN or infinite values. "
                             "Fix: impute or drop them before perturbing.")
        self.work = np.ascontiguousarray(work, dtype=work_dtype)
        self.spatial_dims = spatial_dims
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._span: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.work.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.work.shape[1:]

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(range(1, self.work.ndim))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-image ``(minimum, maximum)``, each shape (N,), float64."""
        if self._bounds is None:
            flat = self.work.reshape(self.n, -1)
            self._bounds = (flat.min(axis=1).astype(np.float64),
                            flat.max(axis=1).astype(np.float64))
        return self._bounds

    def span(self) -> np.ndarray:
        """Per-image robust intensity span, shape (N,), float64.

        The 1st-99th percentile range of up to 2048 evenly strided pixels
        (order statistics, no interpolation); where it is 0 the full range is
        used, and 1 for constant images.
        """
        if self._span is None:
            flat = self.work.reshape(self.n, -1)
            step = max(1, -(-flat.shape[1] // _RANGE_SAMPLES))
            sample = flat[:, ::step]
            m = sample.shape[1]
            k_lo = round(_RANGE_PERCENTILES[0] / 100 * (m - 1))
            k_hi = round(_RANGE_PERCENTILES[1] / 100 * (m - 1))
            part = np.partition(sample, (k_lo, k_hi), axis=1)
            span = part[:, k_hi].astype(np.float64) - part[:, k_lo]
            lo, hi = self.bounds()
            span = np.where(span > 0, span, hi - lo)
            self._span = np.where(span > 0, span, 1.0)
        return self._span

    def restore(self, out: np.ndarray) -> Any:
        """Cast ``out`` back to the input's dtype (rounded and clipped for integers) and form."""
        if self._dtype.kind in "iu":
            info = np.iinfo(self._dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = np.ascontiguousarray(out, dtype=self._dtype)
        if self._squeeze:
            out = out[0]
        if self._torch is not None:
            import torch

            dtype, device = self._torch
            return torch.from_numpy(out).to(device=device, dtype=dtype)
        return out


class GradedPerturbation(abc.ABC):
    """What image and metadata perturbations share: parameters, severities, description."""

    __slots__ = ()

    #: Identifier used in check ids (``robustness.<name>``) and tables.
    name: ClassVar[str]
    #: Parameters of severity levels 0..5 (level 0 is the identity).
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]]
    #: Whether the kernel draws random numbers (noise, line selection, ...).
    uses_rng: ClassVar[bool] = False
    #: ``"image"`` or ``"metadata"``.
    kind: ClassVar[str] = "image"

    @classmethod
    def at_severity(cls, level: int) -> Self:
        """The perturbation at severity ``level`` (0 = identity .. 5 = most severe).

        Examples
        --------
        >>> from claimladder.robustness import GaussianNoise
        >>> GaussianNoise.at_severity(2)
        GaussianNoise(sigma=0.02)
        """
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not (
                0 <= int(level) < len(cls.severity_parameters)):
            raise ValueError(
                f"The 'level' parameter of {cls.__name__}.at_severity must be an int in "
                f"[0, {len(cls.severity_parameters) - 1}]. Got {level!r} instead."
            )
        return cls(**cls.severity_parameters[int(level)])

    def parameters(self) -> dict[str, Any]:
        """The dataclass fields as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> str:
        """Canonical text, e.g. ``"gaussian_noise(sigma=0.02)"`` (a cache key part)."""
        args = ", ".join(f"{k}={_format(v)}" for k, v in self.parameters().items())
        return f"{self.name}({args})"

    @property
    @abc.abstractmethod
    def is_identity(self) -> bool:
        """Whether the perturbation leaves its input unchanged."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        doc = cls.__doc__ or ""
        if "severity_parameters" in cls.__dict__ and _SEVERITY_HEADING not in doc:
            cls.__doc__ = doc.rstrip() + "\n" + _severity_doc(cls)


class Perturbation(GradedPerturbation):
    """A deterministic image perturbation with graded severities.

    Subclasses are frozen dataclasses whose fields are the parameters.
    ``severity_parameters[level]`` gives the parameters of each level;
    level 0 is the identity. Call an instance on a batch, or use
    :meth:`apply` to also get the per-image parameters.
    """

    __slots__ = ()

    #: Whether 3D volumes ``(N, D, H, W)`` are supported.
    supports_3d: ClassVar[bool] = True

    def per_image(self, n: int) -> dict[str, np.ndarray]:
        """The parameters broadcast to ``n`` images (the kernel's input)."""
        out = {}
        for key, value in self.parameters().items():
            if value is None or isinstance(value, (tuple, list)):
                out[key] = np.empty(n, dtype=object)
                out[key][:] = [value] * n
            else:
                out[key] = np.full(n, value)
        return out

    @classmethod
    @abc.abstractmethod
    def _kernel(cls, batch: Batch, params: Mapping[str, np.ndarray],
                seeds: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any]]:
        """Perturb ``batch.work`` with per-image ``params``; return the output and any
        per-image parameters drawn from the seeds (e.g. bias-field coefficients)."""

    def __call__(self, images: Any, *, rng: RngLike | Sequence[int] = None,
                 spatial_dims: int | None = None) -> Any:
        """Perturb ``images`` (see :meth:`apply`); returns only the images."""
        return self.apply(images, rng=rng, spatial_dims=spatial_dims).images

    def apply(self, images: Any, *, rng: RngLike | Sequence[int] = None,
              spatial_dims: int | None = None) -> PerturbationResult:
        """Perturb a batch and record each image's parameters.

        Parameters
        ----------
        images : numpy.ndarray or torch.Tensor
            ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, any real dtype.
        rng : int, Generator, SeedSequence, None, or sequence of int
            Source of the per-image seeds, or the ``N`` seeds themselves.
        spatial_dims : {2, 3}, optional
            Overrides the rank inferred from ``images.ndim`` (e.g. a single
            volume ``(D, H, W)`` with ``spatial_dims=3``).

        Returns
        -------
        PerturbationResult
        """
        owner = type(self).__name__
        batch = Batch(images, spatial_dims, owner=owner)
        if batch.spatial_dims == 3 and not self.supports_3d:
            raise ValueError(f"{owner} supports 2D images only.")
        seeds = image_seeds(rng, batch.n, owner=owner) if self.uses_rng else None
        params = self.per_image(batch.n)
        if self.is_identity:
            out, drawn = batch.work.copy(), {}
        else:
            out, drawn = self._kernel(batch, params, seeds)
        return PerturbationResult(images=batch.restore(out),
                                  parameters=_parameter_table(self.name, params, drawn, seeds))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_format(v) for v in value) + ")"
    return repr(value)


def _severity_doc(cls: type) -> str:
    """The severity table appended to each class docstring (one source of truth)."""
    lines = ["", f"    {_SEVERITY_HEADING}", "    " + "-" * len(_SEVERITY_HEADING)]
    for level, params in enumerate(cls.severity_parameters):
        text = ", ".join(f"{k}={_format(v)}" for k, v in params.items())
        lines.append(f"    - {level}: ``{text}``" + (" (identity)" if level == 0 else ""))
    return "\n".join(lines) + "\n"


def _parameter_table(name: str, params: Mapping[str, np.ndarray], drawn: Mapping[str, Any],
                     seeds: np.ndarray | None) -> pd.DataFrame:
    n = len(next(iter(params.values()))) if params else (0 if seeds is None else len(seeds))
    columns: dict[str, Any] = {"perturbation": [name] * n}
    for key, values in params.items():
        columns[key] = [_python(v) for v in values]
    for key, values in drawn.items():
        columns[key] = [_python(v) for v in values]
    if seeds is not None:
        columns["seed"] = [int(s) for s in seeds]
    return pd.DataFrame(columns, dtype=object) if n else pd.DataFrame(columns)


def _python(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return tuple(_python(v) for v in value.tolist())
    if isinstance(value, (tuple, list)):
        return tuple(_python(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


class RandomPerturbation(abc.ABC):
    """Samples a deterministic perturbation's parameters per image, then delegates.

    Subclasses are frozen dataclasses whose fields are ranges; they implement
    :meth:`sample`. Each image's parameters come from its own generator
    (seeded by its per-image seed), then the deterministic kernel runs with
    a seed drawn from the same generator; both are recorded.
    """

    __slots__ = ()

    #: The deterministic class this one samples.
    deterministic: ClassVar[type[Perturbation]]
    kind: ClassVar[str] = "image"

    @property
    def name(self) -> str:
        """``"random_"`` + the deterministic name."""
        return f"random_{self.deterministic.name}"

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Parameters of the deterministic perturbation for one image."""

    def parameters(self) -> dict[str, Any]:
        """The dataclass fields (ranges) as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> str:
        """Canonical text, e.g. ``"random_gaussian_noise(sigma=(0.0, 0.04))"``."""
        args = ", ".join(f"{k}={_format(v)}" for k, v in self.parameters().items())
        return f"{self.name}({args})"

    @property
    def is_identity(self) -> bool:
        return False

    def __call__(self, images: Any, *, rng: RngLike | Sequence[int] = None,
                 spatial_dims: int | None = None) -> Any:
        """Perturb ``images`` (see :meth:`apply`); returns only the images."""
        return self.apply(images, rng=rng, spatial_dims=spatial_dims).images

    def apply(self, images: Any, *, rng: RngLike | Sequence[int] = None,
              spatial_dims: int | None = None) -> PerturbationResult:
        """Sample parameters per image, perturb, and record them (see :meth:`Perturbation.apply`).

        The ``parameters`` table holds the sampled deterministic parameters
        and the ``seed`` the deterministic kernel used: replay image ``i``
        with ``Det(**params).apply(image, rng=[seed])``.
        """
        owner = type(self).__name__
        det = self.deterministic
        batch = Batch(images, spatial_dims, owner=owner)
        if batch.spatial_dims == 3 and not det.supports_3d:
            raise ValueError(f"{owner} supports 2D images only.")
        seeds = image_seeds(rng, batch.n, owner=owner)
        rows, kernel_seeds = [], np.empty(batch.n, dtype=np.uint64)
        for i, seed in enumerate(seeds):
            gen = np.random.default_rng(int(seed))
            rows.append(det(**self.sample(gen)))
            kernel_seeds[i] = gen.integers(0, _SEED_HIGH)
        params = {f.name: _stack([getattr(r, f.name) for r in rows])
                  for f in dataclasses.fields(det)}
        identity = np.array([r.is_identity for r in rows], dtype=bool)
        if identity.all():
            out, drawn = batch.work.copy(), {}
        else:
            out, drawn = det._kernel(batch, params, kernel_seeds)
        return PerturbationResult(images=batch.restore(out), parameters=_parameter_table(
            det.name, params, drawn, kernel_seeds if det.uses_rng else None))


def _stack(values: list[Any]) -> np.ndarray:
    if any(v is None or isinstance(v, (tuple, list)) for v in values):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return np.asarray(values)


def check_nonnegative(value: Any, *, param: str, owner: str, upper: float = math.inf,
                      upper_open: bool = False) -> float:
    """A finite float in ``[0, upper]`` (``[0, upper)`` with ``upper_open``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if ok:
        value = float(value)
        ok = math.isfinite(value) and value >= 0 and (value < upper if upper_open
                                                      else value <= upper)
    if not ok:
        bound = "" if upper == math.inf else (f", below {upper}" if upper_open
                                              else f", at most {upper}")
        raise ValueError(f"The {param!r} parameter of {owner} must be a float >= 0{bound}. "
                         f"Got {value!r} instead.")
    return value


def check_range(value: Any, *, param: str, owner: str, lower: float = 0.0,
                upper: float = math.inf) -> tuple[float, float]:
    """A pair ``(a, b)`` with ``lower <= a <= b <= upper``; a scalar ``b`` means ``(lower, b)``
    when ``lower`` is 0, else ``(-b, b)``."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = (lower, float(value)) if lower == 0 else (-float(value), float(value))
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"The {param!r} parameter of {owner} must be a pair (low, high). "
                         f"Got {value!r} instead.") from None
    if not (lower <= a <= b <= upper) or not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"The {param!r} parameter of {owner} must satisfy {lower} <= low <= "
                         f"high <= {upper}. Got {value!r} instead.")
    return a, b


def broadcast(values: np.ndarray, spatial_dims: int, dtype: Any = np.float64) -> np.ndarray:
    """Per-image values ``(n,)`` as ``(n, 1, ..., 1)`` to broadcast against images."""
    values = np.asarray(values, dtype=np.float64).astype(dtype)
    return values.reshape((values.shape[0],) + (1,) * spatial_dims)
