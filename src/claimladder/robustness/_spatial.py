"""Spatial perturbations: blur, resolution, crop, field-of-view shift, rotation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from ._base import Perturbation, RandomPerturbation, check_nonnegative, check_range

__all__ = [
    "Crop",
    "Downsample",
    "GaussianBlur",
    "RandomCrop",
    "RandomDownsample",
    "RandomGaussianBlur",
    "RandomRotation",
    "RandomTranslation",
    "Rotation",
    "Translation",
]


def _groups(values: np.ndarray, active: np.ndarray):
    """Yield ``(value, indices)`` for each distinct value among the active images."""
    for value in np.unique(values[active]):
        yield value, np.flatnonzero(active & (values == value))


def apply_along(x: np.ndarray, matrix: np.ndarray, axis: int) -> np.ndarray:
    """``matrix @ x`` along ``axis`` (``matrix`` maps length ``n_in`` to ``n_out``).

    The array is viewed as ``(before, n_in, after)`` and multiplied in one
    large BLAS call (``tensordot``): a stacked ``matmul`` of many small
    matrices ran ten times slower (per-call threading overhead), and a
    moved-axis view sends NumPy to its strided loop.
    """
    x = np.ascontiguousarray(x)
    matrix = matrix.astype(x.dtype, copy=False)
    n_in = x.shape[axis]
    before = int(np.prod(x.shape[:axis]))
    after = int(np.prod(x.shape[axis + 1:]))
    shape = x.shape[:axis] + (matrix.shape[0],) + x.shape[axis + 1:]
    if after == 1:
        return (x.reshape(before, n_in) @ matrix.T).reshape(shape)
    product = np.tensordot(matrix, x.reshape(before, n_in, after), axes=([1], [1]))
    return np.ascontiguousarray(product.transpose(1, 0, 2)).reshape(shape)


@dataclass(frozen=True, slots=True, kw_only=True)
class GaussianBlur(Perturbation):
    """Isotropic Gaussian blur (defocus, motion-free resolution loss, over-smoothing filters).

    Parameters
    ----------
    sigma : float, default 1.0
        Standard deviation of the kernel in pixels, on every spatial axis.

    Notes
    -----
    ``scipy.ndimage.gaussian_filter`` over the spatial axes of the whole batch
    at once (``mode="reflect"``, kernel truncated at 4 sigma), the filter
    TorchIO's ``Blur`` applies one image at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import GaussianBlur
    >>> x = np.zeros((1, 9, 9), dtype=np.float32)
    >>> x[0, 4, 4] = 1.0
    >>> y = GaussianBlur(sigma=1.0)(x)
    >>> round(float(y.sum()), 4), round(float(y[0, 4, 4]), 3)
    (1.0, 0.159)
    """

    sigma: float = 1.0

    name: ClassVar[str] = "gaussian_blur"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"sigma": s} for s in (0.0, 0.5, 1.0, 1.5, 2.5, 4.0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_nonnegative(self.sigma, param="sigma",
                                                            owner=type(self).__name__))

    @property
    def is_identity(self) -> bool:
        return self.sigma == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        sigma = params["sigma"].astype(np.float64)
        out = batch.work.copy()
        for s, idx in _groups(sigma, sigma > 0):
            sub = batch.work if idx.size == batch.n else batch.work[idx]
            out[idx] = ndimage.gaussian_filter(sub, (0.0,) + (float(s),) * batch.spatial_dims,
                                               mode="reflect", truncate=4.0)
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomGaussianBlur(RandomPerturbation):
    """Gaussian blur with ``sigma`` drawn uniformly from a range for each image.

    Parameters
    ----------
    sigma : (float, float) or float, default (0.0, 2.0)
        Range of :class:`GaussianBlur`'s ``sigma`` in pixels.
    """

    sigma: tuple[float, float] = (0.0, 2.0)
    deterministic: ClassVar[type[Perturbation]] = GaussianBlur

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_range(self.sigma, param="sigma",
                                                      owner=type(self).__name__))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"sigma": float(rng.uniform(*self.sigma))}


@lru_cache(maxsize=64)
def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)``: each output pixel averages the input interval it covers."""
    edges_out = np.arange(n_out + 1) * (n_in / n_out)
    lo = np.maximum(edges_out[:-1, None], np.arange(n_in)[None, :])
    hi = np.minimum(edges_out[1:, None], np.arange(1, n_in + 1)[None, :])
    weights = np.clip(hi - lo, 0.0, None) / (n_in / n_out)
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=64)
def linear_matrix(n_in: int, positions: tuple[float, ...]) -> np.ndarray:
    """``(len(positions), n_in)``: linear interpolation at ``positions`` (input pixel
    coordinates, clamped to ``[0, n_in - 1]``)."""
    q = np.clip(np.asarray(positions, dtype=np.float64), 0.0, n_in - 1.0)
    left = np.floor(q).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    frac = q - left
    weights = np.zeros((q.size, n_in))
    rows = np.arange(q.size)
    np.add.at(weights, (rows, left), 1.0 - frac)
    np.add.at(weights, (rows, right), frac)
    weights.setflags(write=False)
    return weights


def _resolution_matrices(n: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    m = max(1, round(n / factor))
    centres = tuple(((np.arange(n) + 0.5) * (m / n) - 0.5).tolist())
    return area_matrix(n, m), linear_matrix(m, centres)


@dataclass(frozen=True, slots=True, kw_only=True)
class Downsample(Perturbation):
    """Lower acquisition resolution: area-downsample, then linearly upsample back.

    Parameters
    ----------
    factor : float, default 2.0
        Resolution reduction (>= 1) on every spatial axis: ``n`` pixels become
        ``round(n / factor)`` and back.

    Notes
    -----
    Area averaging models a detector (or a thicker slice) integrating over a
    larger pixel; linear interpolation back to the original grid is what a
    viewer or a resampling pipeline does. Both are matrices applied along
    each axis of the whole batch (two small matrix products per axis).
    TorchIO's ``RandomAnisotropy`` does the same along one axis with
    nearest-neighbour downsampling.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Downsample
    >>> x = np.tile([0.0, 1.0], (1, 4, 2))
    >>> Downsample(factor=2.0)(x)[0, 0].tolist()
    [0.5, 0.5, 0.5, 0.5]
    """

    factor: float = 2.0

    name: ClassVar[str] = "downsample"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"factor": f} for f in (1.0, 1.5, 2.0, 3.0, 4.0, 6.0))

    def __post_init__(self) -> None:
        factor = check_nonnegative(self.factor, param="factor", owner=type(self).__name__)
        if factor < 1:
            raise ValueError(f"The 'factor' parameter of {type(self).__name__} must be >= 1. "
                             f"Got {self.factor!r} instead.")
        object.__setattr__(self, "factor", factor)

    @property
    def is_identity(self) -> bool:
        return self.factor == 1

    @classmethod
    def _kernel(cls, batch, params, seeds):
        factor = params["factor"].astype(np.float64)
        out = batch.work.copy()
        for f, idx in _groups(factor, factor > 1):
            sub = batch.work[idx]
            for axis, n in zip(batch.axes, batch.spatial_shape, strict=True):
                down, up = _resolution_matrices(n, float(f))
                sub = apply_along(apply_along(sub, down, axis), up, axis)
            out[idx] = sub
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomDownsample(RandomPerturbation):
    """Downsampling with ``factor`` drawn uniformly from a range for each image.

    Parameters
    ----------
    factor : (float, float), default (1.0, 3.0)
        Range of :class:`Downsample`'s ``factor``.
    """

    factor: tuple[float, float] = (1.0, 3.0)
    deterministic: ClassVar[type[Perturbation]] = Downsample

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor", check_range(self.factor, param="factor",
                                                       owner=type(self).__name__, lower=1.0))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"factor": float(rng.uniform(*self.factor))}


@dataclass(frozen=True, slots=True, kw_only=True)
class Crop(Perturbation):
    """A tighter field of view: crop every side, resize back to the original shape.

    Parameters
    ----------
    fraction : float, default 0.1
        Fraction of each spatial extent removed from *each* side, in [0, 0.5).

    Notes
    -----
    The central ``1 - 2 * fraction`` of every axis is linearly interpolated
    onto the original grid (a zoom-in), the way a narrower collimation or a
    tighter reconstruction field of view presents to a model with a fixed
    input size. Structures near the edges (markers, text, lung apices)
    leave the image.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Crop
    >>> x = np.arange(16.0).reshape(1, 4, 4)  # x[r, c] = 4 r + c
    >>> Crop(fraction=0.25)(x)[0, :, 0].tolist()  # rows 0.75 .. 2.25 of column 0.75
    [3.75, 5.75, 7.75, 9.75]
    """

    fraction: float = 0.1

    name: ClassVar[str] = "crop"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"fraction": f} for f in (0.0, 0.03, 0.06, 0.1, 0.15, 0.2))

    def __post_init__(self) -> None:
        object.__setattr__(self, "fraction", check_nonnegative(
            self.fraction, param="fraction", owner=type(self).__name__, upper=0.5,
            upper_open=True))

    @property
    def is_identity(self) -> bool:
        return self.fraction == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        fraction = params["fraction"].astype(np.float64)
        out = batch.work.copy()
        for c, idx in _groups(fraction, fraction > 0):
            sub = batch.work[idx]
            for axis, n in zip(batch.axes, batch.spatial_shape, strict=True):
                positions = c * n + (np.arange(n) + 0.5) * (1.0 - 2.0 * c) - 0.5
                sub = apply_along(sub, linear_matrix(n, tuple(positions.tolist())), axis)
            out[idx] = sub
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomCrop(RandomPerturbation):
    """Crop with ``fraction`` drawn uniformly from a range for each image.

    Parameters
    ----------
    fraction : (float, float) or float, default (0.0, 0.1)
        Range of :class:`Crop`'s ``fraction``.
    """

    fraction: tuple[float, float] = (0.0, 0.1)
    deterministic: ClassVar[type[Perturbation]] = Crop

    def __post_init__(self) -> None:
        a, b = check_range(self.fraction, param="fraction", owner=type(self).__name__,
                           upper=0.5)
        if b >= 0.5:
            raise ValueError(f"The 'fraction' range of {type(self).__name__} must stay below "
                             f"0.5. Got {self.fraction!r}.")
        object.__setattr__(self, "fraction", (a, b))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"fraction": float(rng.uniform(*self.fraction))}


def _check_shift(value: Any, owner: str) -> float | tuple[float, ...]:
    if isinstance(value, (tuple, list, np.ndarray)):
        out = tuple(float(v) for v in value)
        if not out or not all(math.isfinite(v) and abs(v) < 1 for v in out):
            raise ValueError(f"The 'shift' parameter of {owner} must hold fractions in (-1, 1). "
                             f"Got {value!r} instead.")
        return out
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or abs(value) >= 1:
        raise ValueError(f"The 'shift' parameter of {owner} must be a fraction in (-1, 1) or a "
                         f"tuple of them (one per spatial axis). Got {value!r} instead.")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Translation(Perturbation):
    """Field-of-view shift: the anatomy moves within the frame, the edge fills with background.

    Parameters
    ----------
    shift : float or tuple of float, default 0.05
        Displacement as a fraction of the image extent along each spatial
        axis (a float applies to every axis: a diagonal shift). Positive
        moves content towards higher indices.

    Notes
    -----
    Whole-pixel shift (``round(shift * n)`` pixels per axis), no
    interpolation; the vacated band takes the image minimum (the
    background of most modalities). Content shifted out is lost.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Translation
    >>> x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    >>> Translation(shift=(0.0, 0.25))(x).tolist()
    [[[1.0, 1.0, 2.0, 3.0]]]
    """

    shift: float | tuple[float, ...] = 0.05

    name: ClassVar[str] = "translation"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"shift": s} for s in (0.0, 0.02, 0.04, 0.07, 0.1, 0.15))

    def __post_init__(self) -> None:
        object.__setattr__(self, "shift", _check_shift(self.shift, type(self).__name__))

    @property
    def is_identity(self) -> bool:
        values = self.shift if isinstance(self.shift, tuple) else (self.shift,)
        return not any(values)

    @classmethod
    def _kernel(cls, batch, params, seeds):
        lo = batch.bounds()[0]
        out = batch.work.copy()
        shape = batch.spatial_shape
        for i, shift in enumerate(params["shift"]):
            per_axis = shift if isinstance(shift, tuple) else (shift,) * len(shape)
            if len(per_axis) != len(shape):
                raise ValueError(f"Translation got {len(per_axis)} shifts for "
                                 f"{len(shape)}D images; pass one per spatial axis.")
            pixels = [round(s * n) for s, n in zip(per_axis, shape, strict=True)]
            if not any(pixels):
                continue
            src, dst = [slice(None)], [slice(None)]
            for p, n in zip(pixels, shape, strict=True):
                src.append(slice(max(0, -p), n - max(0, p)))
                dst.append(slice(max(0, p), n - max(0, -p)))
            image = np.full(shape, lo[i], dtype=out.dtype)
            image[tuple(dst[1:])] = batch.work[i][tuple(src[1:])]
            out[i] = image
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomTranslation(RandomPerturbation):
    """Shifts drawn uniformly from ``[-shift, shift]`` on each axis for each image.

    Parameters
    ----------
    shift : float, default 0.05
        Largest displacement per axis (fraction of the extent).
    spatial_dims : {2, 3}, default 2
        Number of spatial axes to draw shifts for.
    """

    shift: float = 0.05
    spatial_dims: int = 2
    deterministic: ClassVar[type[Perturbation]] = Translation

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "shift", check_nonnegative(self.shift, param="shift",
                                                            owner=owner, upper=1.0,
                                                            upper_open=True))
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"The 'spatial_dims' parameter of {owner} must be 2 or 3. Got "
                             f"{self.spatial_dims!r} instead.")

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"shift": tuple(rng.uniform(-self.shift, self.shift, self.spatial_dims).tolist())}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation(Perturbation):
    """Small in-plane rotation (patient positioning).

    Parameters
    ----------
    degrees : float, default 5.0
        Counter-clockwise angle in the plane of the last two axes, about the
        image centre.

    Notes
    -----
    Bilinear interpolation (``scipy.ndimage.affine_transform``, order 1);
    corners rotated in from outside the field of view take the image
    minimum. For volumes the rotation is about the first (slice) axis.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Rotation
    >>> x = np.zeros((1, 5, 5))
    >>> x[0, 2, 4] = 1.0
    >>> y = Rotation(degrees=90.0)(x)
    >>> [int(v) for v in np.unravel_index(int(np.argmax(y[0])), (5, 5))]
    [0, 2]
    """

    degrees: float = 5.0

    name: ClassVar[str] = "rotation"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"degrees": d} for d in (0.0, 2.0, 4.0, 7.0, 10.0, 15.0))

    def __post_init__(self) -> None:
        value = self.degrees
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)) \
                or not math.isfinite(value):
            raise ValueError(f"The 'degrees' parameter of {type(self).__name__} must be a "
                             f"finite float. Got {value!r} instead.")
        object.__setattr__(self, "degrees", float(value))

    @property
    def is_identity(self) -> bool:
        return self.degrees % 360 == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        lo = batch.bounds()[0]
        out = batch.work.copy()
        shape = np.asarray(batch.spatial_shape, dtype=np.float64)
        centre = (shape - 1) / 2
        for i, degrees in enumerate(params["degrees"].astype(np.float64)):
            if degrees % 360 == 0:
                continue
            theta = math.radians(degrees)
            # affine_transform maps output coordinates to input ones: the inverse rotation.
            c, s = math.cos(theta), math.sin(theta)
            matrix = np.eye(batch.spatial_dims)
            matrix[-2:, -2:] = [[c, s], [-s, c]]
            offset = centre - matrix @ centre
            out[i] = ndimage.affine_transform(batch.work[i] - out.dtype.type(lo[i]), matrix,
                                              offset=offset, order=1, mode="constant",
                                              cval=0.0) + out.dtype.type(lo[i])
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomRotation(RandomPerturbation):
    """Rotation by an angle drawn uniformly from ``[-degrees, degrees]`` for each image.

    Parameters
    ----------
    degrees : (float, float) or float, default (-10.0, 10.0)
        Range of the angle; a float ``b`` means ``(-b, b)``.
    """

    degrees: tuple[float, float] = (-10.0, 10.0)
    deterministic: ClassVar[type[Perturbation]] = Rotation

    def __post_init__(self) -> None:
        object.__setattr__(self, "degrees", check_range(
            self.degrees, param="degrees", owner=type(self).__name__, lower=-360.0,
            upper=360.0))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"degrees": float(rng.uniform(*self.degrees))}

