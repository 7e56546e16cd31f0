"""Intensity perturbations: noise, bias field, gamma, scanner calibration."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from ._base import (
    Batch,
    Perturbation,
    RandomPerturbation,
    broadcast,
    check_nonnegative,
    check_range,
)

__all__ = [
    "BiasField",
    "Gamma",
    "GaussianNoise",
    "IntensityScale",
    "RandomBiasField",
    "RandomGamma",
    "RandomGaussianNoise",
    "RandomIntensityScale",
    "RandomRicianNoise",
    "RicianNoise",
    "bias_field_basis",
]

_NOISE_LEVELS = (0.0, 0.01, 0.02, 0.04, 0.08, 0.15)


def standard_normal(gen: np.random.Generator, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (float32 or float64, any shape) with N(0, 1) draws, Box-Muller style.

    Pairs of uniforms ``(u, v)`` from ``gen.random`` in the dtype of ``out``
    become ``sqrt(-2 log(1 - u)) * (cos 2 pi v, sin 2 pi v)``: exact Gaussian
    pairs, and on float32 arrays about 1.6 times faster than NumPy's ziggurat
    (``standard_normal(dtype=float32)``), because the transcendental functions
    are vectorised. With float32 uniforms (24-bit resolution) the largest
    possible draw is 5.8 standard deviations (the normal tail beyond it has
    probability 7e-9).
    """
    flat = out.reshape(-1)
    m = (flat.size + 1) // 2
    uniforms = gen.random((2, m), dtype=flat.dtype)
    radius, angle = uniforms[0], uniforms[1]
    np.subtract(1.0, radius, out=radius)
    np.log(radius, out=radius)
    radius *= -2.0
    np.sqrt(radius, out=radius)
    angle *= flat.dtype.type(2 * np.pi)
    np.multiply(radius, np.cos(angle), out=flat[:m])
    rest = flat.size - m
    np.sin(angle[:rest], out=angle[:rest])
    np.multiply(radius[:rest], angle[:rest], out=flat[m:])
    return out


def _noise(batch: Batch, seeds: np.ndarray, scale: np.ndarray, count: int):
    """Yield ``(i, [z_1 .. z_count])``: standard normal fields from image ``i``'s seed."""
    buffers = [np.empty(batch.spatial_shape, dtype=batch.work.dtype) for _ in range(count)]
    for i in np.flatnonzero(scale > 0):
        gen = np.random.default_rng(int(seeds[i]))
        for buffer in buffers:
            standard_normal(gen, buffer)
        yield i, buffers


@dataclass(frozen=True, slots=True, kw_only=True)
class GaussianNoise(Perturbation):
    """Additive white Gaussian noise.

    Parameters
    ----------
    sigma : float, default 0.02
        Noise standard deviation as a fraction of each image's robust
        intensity range (its 1st-99th percentile span), so one severity
        means the same visual degradation for CT in HU, 12-bit radiographs
        and [0, 1] floats.

    Notes
    -----
    ``x + sigma * span * z`` with ``z`` standard normal (Box-Muller pairs
    of float uniforms, faster than NumPy's ziggurat on float32; the largest
    float32 draw is 5.8 standard deviations), drawn from the image's own seed.
    Equivalent to TorchIO's ``Noise(mean=0, std=sigma * span)``.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import GaussianNoise
    >>> x = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (4, 64, 1))
    >>> y = GaussianNoise(sigma=0.05)(x, rng=0)
    >>> y.shape, y.dtype, round(float((y - x).std()), 2)
    ((4, 64, 64), dtype('float32'), 0.05)
    """

    sigma: float = 0.02

    name: ClassVar[str] = "gaussian_noise"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"sigma": s} for s in _NOISE_LEVELS)
    uses_rng: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_nonnegative(self.sigma, param="sigma",
                                                            owner=type(self).__name__))

    @property
    def is_identity(self) -> bool:
        return self.sigma == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        scale = params["sigma"].astype(np.float64) * batch.span()
        work = batch.work
        out = np.empty_like(work)
        for i in range(batch.n):
            if scale[i] > 0:
                # The noise is drawn straight into the output: no copy of the batch.
                standard_normal(np.random.default_rng(int(seeds[i])), out[i])
                out[i] *= out.dtype.type(scale[i])
                out[i] += work[i]
            else:
                out[i] = work[i]
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomGaussianNoise(RandomPerturbation):
    """Gaussian noise with ``sigma`` drawn uniformly from a range for each image.

    Parameters
    ----------
    sigma : (float, float) or float, default (0.0, 0.04)
        Range of :class:`GaussianNoise`'s ``sigma``; a float ``b`` means ``(0, b)``.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import RandomGaussianNoise
    >>> result = RandomGaussianNoise(sigma=(0.01, 0.03)).apply(np.zeros((3, 8, 8)), rng=0)
    >>> list(result.parameters.columns)
    ['perturbation', 'sigma', 'seed']
    """

    sigma: tuple[float, float] = (0.0, 0.04)
    deterministic: ClassVar[type[Perturbation]] = GaussianNoise

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_range(self.sigma, param="sigma",
                                                      owner=type(self).__name__))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"sigma": float(rng.uniform(*self.sigma))}


@dataclass(frozen=True, slots=True, kw_only=True)
class RicianNoise(Perturbation):
    """Rician noise, the noise of magnitude MR images.

    Parameters
    ----------
    sigma : float, default 0.02
        Standard deviation of each of the two Gaussian channels, as a fraction
        of the image's robust intensity range.

    Notes
    -----
    With ``m = x - min(x)`` (magnitude images start at 0; the shift makes
    the model apply to any intensity origin), the result is
    ``min(x) + sqrt((m + s z1)^2 + (s z2)^2)``, ``s = sigma * span``: the
    magnitude of a complex signal whose real and imaginary channels carry
    independent Gaussian noise (Gudbjartsson & Patz 1995). Dark regions
    gain a positive bias of about ``1.25 s``, as in real magnitude images.

    References
    ----------
    Gudbjartsson H, Patz S. The Rician distribution of noisy MRI data. Magn
    Reson Med 1995;34:910-914.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import RicianNoise
    >>> x = np.zeros((2, 64, 64), dtype=np.float32)
    >>> x[:, :, 32:] = 1.0
    >>> y = RicianNoise(sigma=0.1)(x, rng=0)
    >>> bool(y.min() >= 0), round(float(y[:, :, :32].mean()), 3)  # 0.1 * sqrt(pi / 2) = 0.125
    (True, 0.124)
    """

    sigma: float = 0.02

    name: ClassVar[str] = "rician_noise"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"sigma": s} for s in _NOISE_LEVELS)
    uses_rng: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_nonnegative(self.sigma, param="sigma",
                                                            owner=type(self).__name__))

    @property
    def is_identity(self) -> bool:
        return self.sigma == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        lo, span = batch.bounds()[0], batch.span()
        scale = params["sigma"].astype(np.float64) * span
        out = batch.work.copy()
        for i, (z1, z2) in _noise(batch, seeds, scale, 2):
            s = out.dtype.type(scale[i])
            z1 *= s
            z1 += out[i]
            z1 -= out.dtype.type(lo[i])
            z2 *= s
            np.hypot(z1, z2, out=z1)
            z1 += out.dtype.type(lo[i])
            out[i] = z1
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomRicianNoise(RandomPerturbation):
    """Rician noise with ``sigma`` drawn uniformly from a range for each image.

    Parameters
    ----------
    sigma : (float, float) or float, default (0.0, 0.04)
        Range of :class:`RicianNoise`'s ``sigma``.
    """

    sigma: tuple[float, float] = (0.0, 0.04)
    deterministic: ClassVar[type[Perturbation]] = RicianNoise

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_range(self.sigma, param="sigma",
                                                      owner=type(self).__name__))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"sigma": float(rng.uniform(*self.sigma))}


@lru_cache(maxsize=16)
def _exponents(spatial_dims: int, order: int) -> tuple[tuple[int, ...], ...]:
    powers = [p for p in itertools.product(range(order + 1), repeat=spatial_dims)
              if 1 <= sum(p) <= order]
    return tuple(sorted(powers, key=lambda p: (sum(p), tuple(-v for v in p))))


@lru_cache(maxsize=16)
def _basis(shape: tuple[int, ...], order: int, dtype: str) -> np.ndarray:
    coords = [np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1) for n in shape]
    rows = []
    for powers in _exponents(len(shape), order):
        term = np.ones(shape)
        for axis, p in enumerate(powers):
            if p:
                view = [1] * len(shape)
                view[axis] = shape[axis]
                term = term * coords[axis].reshape(view) ** p
        rows.append(term.ravel())
    basis = np.asarray(rows, dtype=dtype).reshape(len(rows), -1)
    basis.setflags(write=False)
    return basis


def bias_field_basis(shape: tuple[int, ...], order: int = 3) -> np.ndarray:
    """The polynomial basis of :class:`BiasField`: one row per monomial.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape ``(H, W)`` or ``(D, H, W)``.
    order : int, default 3
        Highest total degree.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_monomials, prod(shape))``: monomials
        ``prod_a x_a ** p_a`` of total degree 1..``order`` (no constant term)
        over coordinates spanning [-1, 1] on every axis, ordered by degree.

    Examples
    --------
    >>> from claimladder.robustness import bias_field_basis
    >>> bias_field_basis((8, 8), order=3).shape, bias_field_basis((4, 4, 4), order=2).shape
    ((9, 64), (9, 64))
    """
    return _basis(tuple(int(n) for n in shape), int(order), "float64").copy()


@dataclass(frozen=True, slots=True, kw_only=True)
class BiasField(Perturbation):
    """Smooth multiplicative intensity inhomogeneity (MR bias field).

    Parameters
    ----------
    strength : float, default 0.3
        Each polynomial coefficient is drawn uniformly from
        ``[-strength, strength]`` with the image's seed (ignored when
        ``coefficients`` is given).
    order : int, default 3
        Highest total degree of the polynomial.
    coefficients : tuple of float, optional
        Explicit coefficients, one per monomial of :func:`bias_field_basis`
        (9 for order 3 in 2D, 19 in 3D); the recorded coefficients replay a
        field exactly.

    Notes
    -----
    The field is ``exp(sum_k c_k m_k)`` over the monomials ``m_k`` of degree
    1..``order`` in coordinates spanning [-1, 1] (TorchIO's
    ``RandomBiasField`` model, without its constant term, which is a
    global gain: see :class:`IntensityScale`). It multiplies the intensity
    above the image minimum: ``min + (x - min) * field``, so air or
    background stays put whatever the intensity origin.

    References
    ----------
    Van Leemput K, Maes F, Vandermeulen D, Suetens P. Automated model-based
    bias field correction of MR images of the brain. IEEE Trans Med Imaging
    1999;18:885-896.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import BiasField
    >>> x = np.ones((2, 32, 32), dtype=np.float32)
    >>> x[:, 0, 0] = 0.0
    >>> result = BiasField(strength=0.3).apply(x, rng=0)
    >>> len(result.parameters.loc[0, "coefficients"]), bool(result.images[0, 0, 0] == 0)
    (9, True)
    """

    strength: float = 0.3
    order: int = 3
    coefficients: tuple[float, ...] | None = None

    name: ClassVar[str] = "bias_field"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"strength": s, "order": 3} for s in (0.0, 0.1, 0.2, 0.3, 0.45, 0.6))
    uses_rng: ClassVar[bool] = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "strength", check_nonnegative(self.strength, param="strength",
                                                               owner=owner))
        if isinstance(self.order, bool) or not isinstance(self.order, (int, np.integer)) \
                or not 1 <= self.order <= 6:
            raise ValueError(f"The 'order' parameter of {owner} must be an int in [1, 6]. "
                             f"Got {self.order!r} instead.")
        object.__setattr__(self, "order", int(self.order))
        if self.coefficients is not None:
            coefficients = tuple(float(c) for c in self.coefficients)
            if not np.all(np.isfinite(coefficients)):
                raise ValueError(f"The 'coefficients' of {owner} must be finite.")
            object.__setattr__(self, "coefficients", coefficients)

    @property
    def is_identity(self) -> bool:
        if self.coefficients is not None:
            return not any(self.coefficients)
        return self.strength == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        lo = batch.bounds()[0]
        out = batch.work.copy()
        n_pix = int(np.prod(batch.spatial_shape))
        drawn = np.empty(batch.n, dtype=object)
        orders = params["order"].astype(int)
        for order in np.unique(orders):
            basis = _basis(batch.spatial_shape, int(order), batch.work.dtype.str)
            idx = np.flatnonzero(orders == order)
            coeffs = np.zeros((idx.size, basis.shape[0]), dtype=np.float64)
            for row, i in enumerate(idx):
                given = params["coefficients"][i]
                if given is not None:
                    if len(given) != basis.shape[0]:
                        raise ValueError(
                            f"BiasField of order {order} on {batch.spatial_dims}D images needs "
                            f"{basis.shape[0]} coefficients. Got {len(given)}.")
                    coeffs[row] = given
                else:
                    gen = np.random.default_rng(int(seeds[i]))
                    coeffs[row] = params["strength"][i] * gen.uniform(-1.0, 1.0, basis.shape[0])
                drawn[i] = tuple(coeffs[row].tolist())
            field = np.exp(coeffs.astype(basis.dtype) @ basis)
            sub = out[idx].reshape(idx.size, n_pix)
            base = lo[idx, None].astype(sub.dtype)
            out[idx] = (base + (sub - base) * field).reshape((idx.size,) + batch.spatial_shape)
        return out, {"coefficients": drawn}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomBiasField(RandomPerturbation):
    """A bias field with ``strength`` drawn uniformly from a range for each image.

    Parameters
    ----------
    strength : (float, float) or float, default (0.0, 0.5)
        Range of :class:`BiasField`'s ``strength``.
    order : int, default 3
        Polynomial order.
    """

    strength: tuple[float, float] = (0.0, 0.5)
    order: int = 3
    deterministic: ClassVar[type[Perturbation]] = BiasField

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", check_range(self.strength, param="strength",
                                                         owner=type(self).__name__))
        BiasField(order=self.order)  # validates the order

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"strength": float(rng.uniform(*self.strength)), "order": self.order}


@dataclass(frozen=True, slots=True, kw_only=True)
class Gamma(Perturbation):
    """Gamma (contrast) change of the intensity curve.

    Parameters
    ----------
    gamma : float, default 1.3
        Exponent > 0; above 1 darkens mid-tones and stretches bright contrast,
        below 1 the reverse.

    Notes
    -----
    Each image is mapped to [0, 1] by its minimum and maximum, raised to
    ``gamma`` and mapped back, so its range is kept: ``min + (max - min) *
    ((x - min) / (max - min)) ** gamma``. For an image spanning exactly
    [0, 1] this equals TorchIO's ``Gamma`` (``x ** gamma``).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Gamma
    >>> x = np.array([[[0.0, 0.25, 1.0]]], dtype=np.float32)
    >>> Gamma(gamma=2.0)(x).tolist()
    [[[0.0, 0.0625, 1.0]]]
    """

    gamma: float = 1.3

    name: ClassVar[str] = "gamma"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"gamma": g} for g in (1.0, 1.15, 1.3, 1.5, 1.8, 2.2))

    def __post_init__(self) -> None:
        gamma = check_nonnegative(self.gamma, param="gamma", owner=type(self).__name__)
        if gamma == 0:
            raise ValueError(f"The 'gamma' parameter of {type(self).__name__} must be > 0.")
        object.__setattr__(self, "gamma", gamma)

    @property
    def is_identity(self) -> bool:
        return self.gamma == 1

    @classmethod
    def _kernel(cls, batch, params, seeds):
        lo, hi = batch.bounds()
        gamma = params["gamma"].astype(np.float64)
        idx = np.flatnonzero((gamma != 1) & (hi > lo))
        out = batch.work.copy()
        if idx.size:
            d, dtype = batch.spatial_dims, out.dtype
            # In place on one array: the power is the only expensive step.
            sub = out if idx.size == batch.n else out[idx]
            base = broadcast(lo[idx], d, dtype)
            width = broadcast(hi[idx] - lo[idx], d, dtype)
            sub -= base
            sub *= 1 / width
            np.clip(sub, 0.0, 1.0, out=sub)
            np.power(sub, broadcast(gamma[idx], d, dtype), out=sub)
            sub *= width
            sub += base
            if sub is not out:
                out[idx] = sub
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomGamma(RandomPerturbation):
    """Gamma with ``log(gamma)`` drawn uniformly from a range for each image.

    Parameters
    ----------
    log_gamma : (float, float) or float, default (-0.3, 0.3)
        Range of ``log(gamma)``; a float ``b`` means ``(-b, b)`` (TorchIO's
        ``RandomGamma`` convention).
    """

    log_gamma: tuple[float, float] = (-0.3, 0.3)
    deterministic: ClassVar[type[Perturbation]] = Gamma

    def __post_init__(self) -> None:
        object.__setattr__(self, "log_gamma", check_range(
            self.log_gamma, param="log_gamma", owner=type(self).__name__, lower=-np.inf))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"gamma": float(np.exp(rng.uniform(*self.log_gamma)))}


@dataclass(frozen=True, slots=True, kw_only=True)
class IntensityScale(Perturbation):
    """A scanner calibration error: intensity gain and offset.

    Parameters
    ----------
    scale : float, default 1.1
        Multiplicative gain (> 0).
    offset : float, default 0.05
        Additive offset as a fraction of the image's robust intensity range
        (may be negative).

    Notes
    -----
    ``scale * x + offset * span``: a linear miscalibration of the raw values
    (wrong rescale slope/intercept, detector gain drift). Models that
    normalise each image internally are invariant to it; models fed raw
    intensities are not.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import IntensityScale
    >>> x = np.array([[[0.0, 1.0, 2.0, 3.0]]])
    >>> IntensityScale(scale=2.0, offset=0.0)(x).tolist()
    [[[0.0, 2.0, 4.0, 6.0]]]
    """

    scale: float = 1.1
    offset: float = 0.05

    name: ClassVar[str] = "intensity_scale"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"scale": s, "offset": o} for s, o in zip((1.0, 1.05, 1.1, 1.2, 1.35, 1.5),
                                                   (0.0, 0.02, 0.05, 0.1, 0.15, 0.2),
                                                   strict=True))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        scale = check_nonnegative(self.scale, param="scale", owner=owner)
        if scale == 0:
            raise ValueError(f"The 'scale' parameter of {owner} must be > 0.")
        offset = self.offset
        if isinstance(offset, bool) or not isinstance(offset, (int, float, np.integer,
                                                               np.floating)) \
                or not np.isfinite(offset):
            raise ValueError(f"The 'offset' parameter of {owner} must be a finite float. "
                             f"Got {offset!r} instead.")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "offset", float(offset))

    @property
    def is_identity(self) -> bool:
        return self.scale == 1 and self.offset == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        span = batch.span()
        d, dtype = batch.spatial_dims, batch.work.dtype
        scale = broadcast(params["scale"], d, dtype)
        shift = broadcast(params["offset"].astype(np.float64) * span, d, dtype)
        return batch.work * scale + shift, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomIntensityScale(RandomPerturbation):
    """Gain and offset drawn uniformly from ranges for each image.

    Parameters
    ----------
    scale : (float, float), default (0.9, 1.1)
        Range of the gain.
    offset : (float, float) or float, default (-0.05, 0.05)
        Range of the offset (fraction of the robust intensity range); a float
        ``b`` means ``(-b, b)``.
    """

    scale: tuple[float, float] = (0.9, 1.1)
    offset: tuple[float, float] = (-0.05, 0.05)
    deterministic: ClassVar[type[Perturbation]] = IntensityScale

    def __post_init__(self) -> None:
        owner = type(self).__name__
        scale = check_range(self.scale, param="scale", owner=owner, lower=0.0)
        if scale[0] <= 0:
            raise ValueError(f"The 'scale' range of {owner} must be positive. Got {scale!r}.")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "offset", check_range(self.offset, param="offset",
                                                       owner=owner, lower=-np.inf))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"scale": float(rng.uniform(*self.scale)),
                "offset": float(rng.uniform(*self.offset))}
