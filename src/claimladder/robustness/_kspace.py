"""MR acquisition artefacts simulated in k-space: motion, ghosting, spikes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import fft

from ._base import Perturbation, RandomPerturbation, check_nonnegative, check_range

__all__ = [
    "Ghosting",
    "Motion",
    "RandomGhosting",
    "RandomMotion",
    "RandomSpike",
    "Spike",
]

# Complex work arrays are processed this many pixels at a time (64 MiB of complex64).
_CHUNK_PIXELS = 1 << 23


def _chunks(indices: np.ndarray, pixels_per_image: int):
    step = max(1, _CHUNK_PIXELS // max(1, pixels_per_image))
    for start in range(0, indices.size, step):
        yield indices[start:start + step]


def _check_fraction(value: Any, param: str, owner: str) -> float:
    return check_nonnegative(value, param=param, owner=owner, upper=1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Motion(Perturbation):
    """Rigid patient motion during acquisition, as corrupted k-space lines.

    Parameters
    ----------
    fraction : float, default 0.1
        Fraction of the phase-encoding lines acquired while the patient was
        displaced, in [0, 1].
    shift : float, default 0.02
        Largest displacement, as a fraction of the field of view along each
        axis; each corrupted line gets its own displacement, uniform in
        ``[-shift, shift]`` per axis.

    Notes
    -----
    The last axis is the readout (frequency-encoding) direction; every
    other spatial axis is phase-encoded, so a "line" is one phase-encoding
    position (one row in 2D, one ``(z, y)`` pair in 3D). A translation
    ``d`` multiplies the k-space of a line by ``exp(-2 pi i k.d)`` (the
    Fourier shift theorem), so the result is exact for translations (no
    resampling); the real part of the inverse transform is kept, as TorchIO
    does. Which lines are hit and their displacements come from the
    image's seed and are drawn before ``fraction`` and ``shift`` are
    applied, so with one seed a higher severity corrupts a superset of the
    lines by proportionally larger displacements. TorchIO's ``Motion``
    instead resamples the image after a few rotations and translations and
    pastes contiguous k-space segments (slower: one resampling per
    movement; with a single 2D slice stored as ``(1, H, W, 1)`` its
    segments run along the singleton axis).

    References
    ----------
    Shaw R, Sudre C, Ourselin S, Cardoso MJ. MRI k-space motion artefact
    augmentation: model robustness and task-specific uncertainty. MIDL 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Motion
    >>> x = np.zeros((2, 32, 32), dtype=np.float32)
    >>> x[:, 8:24, 8:24] = 1.0
    >>> result = Motion(fraction=0.3, shift=0.05).apply(x, rng=0)
    >>> result.parameters["lines"].tolist(), bool(np.abs(result.images - x).max() > 0.05)
    ([10, 10], True)
    """

    fraction: float = 0.1
    shift: float = 0.02

    name: ClassVar[str] = "motion"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"fraction": f, "shift": s} for f, s in zip((0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
                                                    (0.0, 0.01, 0.02, 0.03, 0.05, 0.08),
                                                    strict=True))
    uses_rng: ClassVar[bool] = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "fraction", _check_fraction(self.fraction, "fraction", owner))
        object.__setattr__(self, "shift", check_nonnegative(self.shift, param="shift",
                                                            owner=owner, upper=1.0))

    @property
    def is_identity(self) -> bool:
        return self.fraction == 0 or self.shift == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        shape = batch.spatial_shape
        pe_shape, readout = shape[:-1], shape[-1]
        n_lines = int(np.prod(pe_shape))
        freqs = [np.fft.fftfreq(n) for n in shape]
        fraction = params["fraction"].astype(np.float64)
        shift = params["shift"].astype(np.float64)
        counts = np.rint(fraction * n_lines).astype(int)
        out = batch.work.copy()
        active = np.flatnonzero((counts > 0) & (shift > 0))
        complex_dtype = np.complex64 if out.dtype == np.float32 else np.complex128
        extent = np.asarray(shape, dtype=np.float64)
        for idx in _chunks(active, int(np.prod(shape))):
            spectra = fft.fftn(batch.work[idx], axes=batch.axes)
            for j, i in enumerate(idx):
                gen = np.random.default_rng(int(seeds[i]))
                order = gen.permutation(n_lines)
                unit = gen.uniform(-1.0, 1.0, size=(n_lines, len(shape)))
                lines = order[:counts[i]]
                displacement = unit[lines] * (shift[i] * extent)
                position = np.unravel_index(lines, pe_shape)
                phase = sum(freqs[a][position[a]] * displacement[:, a]
                            for a in range(len(pe_shape)))
                phase = phase[:, None] + freqs[-1][None, :] * displacement[:, -1:]
                view = spectra[j].reshape(n_lines, readout)
                view[lines] *= np.exp(-2j * np.pi * phase).astype(complex_dtype)
            out[idx] = fft.ifftn(spectra, axes=batch.axes).real
        return out, {"lines": counts}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomMotion(RandomPerturbation):
    """Motion with ``fraction`` and ``shift`` drawn uniformly from ranges for each image.

    Parameters
    ----------
    fraction : (float, float) or float, default (0.0, 0.2)
        Range of :class:`Motion`'s ``fraction``.
    shift : (float, float) or float, default (0.0, 0.04)
        Range of :class:`Motion`'s ``shift``.
    """

    fraction: tuple[float, float] = (0.0, 0.2)
    shift: tuple[float, float] = (0.0, 0.04)
    deterministic: ClassVar[type[Perturbation]] = Motion

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "fraction", check_range(self.fraction, param="fraction",
                                                         owner=owner, upper=1.0))
        object.__setattr__(self, "shift", check_range(self.shift, param="shift", owner=owner,
                                                      upper=1.0))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"fraction": float(rng.uniform(*self.fraction)),
                "shift": float(rng.uniform(*self.shift))}


def _check_axis(axis: Any, owner: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -3 <= axis <= 2:
        raise ValueError(f"The 'axis' parameter of {owner} must be a spatial axis in [-3, 2] "
                         f"(e.g. -2: rows, the usual phase-encoding direction). Got {axis!r}.")
    return int(axis)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ghosting(Perturbation):
    """Periodic ghosts along the phase-encoding axis (pulsation, breathing).

    Parameters
    ----------
    intensity : float, default 0.3
        Fraction of the signal removed from every ``num_ghosts``-th k-space
        plane, in [0, 1]; the ghosts' strength.
    num_ghosts : int, default 4
        Spacing of the modulated planes, hence the number of ghosts.
    axis : int, default -2
        Spatial axis along which the ghosts repeat (counted from the end, or
        from the first spatial axis when non-negative).

    Notes
    -----
    TorchIO's ``Ghosting`` model: in the centred spectrum, the planes
    ``0, n, 2n, ...`` along ``axis`` are multiplied by ``1 - intensity``
    and the central plane is restored; the real part of the inverse
    transform is kept. Only a 1D transform along ``axis`` is needed (the
    other axes' transforms cancel), so the result equals TorchIO's to float
    precision at a fraction of the cost.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Ghosting
    >>> x = np.zeros((1, 32, 32), dtype=np.float32)
    >>> x[0, 13:19, 12:20] = 1.0
    >>> y = Ghosting(intensity=0.5, num_ghosts=4)(x)
    >>> change = np.abs(y - x)[0].max(axis=1)  # per row: ghosts repeat every 32 / 4 rows
    >>> [round(float(v), 3) for v in change[:12]]
    [0.031, 0.031, 0.031, 0.094, 0.094, 0.031, 0.031, 0.031, 0.031, 0.031, 0.031, 0.094]
    """

    intensity: float = 0.3
    num_ghosts: int = 4
    axis: int = -2

    name: ClassVar[str] = "ghosting"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"intensity": s, "num_ghosts": 4, "axis": -2}
        for s in (0.0, 0.1, 0.2, 0.35, 0.5, 0.75))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "intensity", _check_fraction(self.intensity, "intensity",
                                                              owner))
        if isinstance(self.num_ghosts, bool) or not isinstance(self.num_ghosts,
                                                               (int, np.integer)) \
                or self.num_ghosts < 1:
            raise ValueError(f"The 'num_ghosts' parameter of {owner} must be an int >= 1. Got "
                             f"{self.num_ghosts!r} instead.")
        object.__setattr__(self, "num_ghosts", int(self.num_ghosts))
        object.__setattr__(self, "axis", _check_axis(self.axis, owner))

    @property
    def is_identity(self) -> bool:
        return self.intensity == 0

    @classmethod
    def _kernel(cls, batch, params, seeds):
        out = batch.work.copy()
        d = batch.spatial_dims
        intensity = params["intensity"].astype(np.float64)
        ghosts = params["num_ghosts"].astype(int)
        axes = np.array([a if a >= 0 else d + a for a in params["axis"].astype(int)])
        if (axes < 0).any() or (axes >= d).any():
            raise ValueError(f"Ghosting axis out of range for {d}D images.")
        for axis in np.unique(axes):
            n = batch.spatial_shape[axis]
            active = np.flatnonzero((axes == axis) & (intensity > 0))
            for idx in _chunks(active, int(np.prod(batch.spatial_shape))):
                gain = np.ones((idx.size, n))
                for row, i in enumerate(idx):
                    planes = np.arange(0, n, ghosts[i])
                    planes = planes[planes != n // 2]  # the centre plane is restored
                    gain[row, (planes - n // 2) % n] = 1.0 - intensity[i]
                # Only the real part is kept, which equals filtering with the gain made
                # Hermitian, (g(k) + g(-k)) / 2: a real-input transform of half the size.
                gain = 0.5 * (gain + np.roll(gain[:, ::-1], 1, axis=1))[:, : n // 2 + 1]
                view = [idx.size] + [1] * d
                view[1 + axis] = n // 2 + 1
                spectra = fft.rfft(batch.work[idx], axis=1 + axis)
                spectra *= gain.reshape(view).astype(spectra.real.dtype)
                out[idx] = fft.irfft(spectra, n=n, axis=1 + axis)
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomGhosting(RandomPerturbation):
    """Ghosting with parameters drawn for each image.

    Parameters
    ----------
    intensity : (float, float) or float, default (0.0, 0.5)
        Range of :class:`Ghosting`'s ``intensity``.
    num_ghosts : (int, int), default (4, 10)
        Inclusive range of the number of ghosts.
    axes : tuple of int, default (-2,)
        Candidate phase-encoding axes; one is drawn per image.
    """

    intensity: tuple[float, float] = (0.0, 0.5)
    num_ghosts: tuple[int, int] = (4, 10)
    axes: tuple[int, ...] = (-2,)
    deterministic: ClassVar[type[Perturbation]] = Ghosting

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "intensity", check_range(self.intensity, param="intensity",
                                                          owner=owner, upper=1.0))
        low, high = check_range(self.num_ghosts, param="num_ghosts", owner=owner, lower=1.0)
        object.__setattr__(self, "num_ghosts", (int(low), int(high)))
        axes = tuple(_check_axis(a, owner) for a in self.axes)
        if not axes:
            raise ValueError(f"The 'axes' parameter of {owner} must name at least one axis.")
        object.__setattr__(self, "axes", axes)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"intensity": float(rng.uniform(*self.intensity)),
                "num_ghosts": int(rng.integers(self.num_ghosts[0], self.num_ghosts[1] + 1)),
                "axis": int(self.axes[rng.integers(len(self.axes))])}


@dataclass(frozen=True, slots=True, kw_only=True)
class Spike(Perturbation):
    """Herringbone stripes from spikes in k-space (RF interference, gradient arcing).

    Parameters
    ----------
    intensity : float, default 0.1
        Peak amplitude of each spike's stripe pattern, as a fraction of the
        image's robust intensity range.
    n_spikes : int, default 1
        Number of spikes.

    Notes
    -----
    A spike of amplitude ``A`` at frequency ``k`` adds
    ``(A / n_pixels) * cos(2 pi k.r / N)`` to the real part of the image, so
    the pattern is computed directly as an outer product of complex
    exponentials (no FFT). TorchIO's ``Spike`` sets ``A = f * max|K|``:
    the same artefact as ``intensity = f * max|K| / (n_pixels * span)``.
    Spike frequencies are drawn uniformly over k-space (the DC term
    excluded) from the image's seed, before ``intensity`` is applied, so
    severities differ only in amplitude.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import Spike
    >>> x = np.zeros((1, 16, 16))
    >>> x[0, 8:, :] = 1.0
    >>> result = Spike(intensity=0.2).apply(x, rng=0)
    >>> round(float(np.abs(result.images - x).max()), 6)
    0.2
    """

    intensity: float = 0.1
    n_spikes: int = 1

    name: ClassVar[str] = "spike"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"intensity": s, "n_spikes": 1} for s in (0.0, 0.02, 0.05, 0.1, 0.2, 0.35))
    uses_rng: ClassVar[bool] = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "intensity", check_nonnegative(
            self.intensity, param="intensity", owner=owner))
        if isinstance(self.n_spikes, bool) or not isinstance(self.n_spikes, (int, np.integer)) \
                or self.n_spikes < 1:
            raise ValueError(f"The 'n_spikes' parameter of {owner} must be an int >= 1. Got "
                             f"{self.n_spikes!r} instead.")
        object.__setattr__(self, "n_spikes", int(self.n_spikes))

    @property
    def is_identity(self) -> bool:
        return self.intensity == 0

    @staticmethod
    def pattern(shape: tuple[int, ...], frequency: tuple[int, ...]) -> np.ndarray:
        """``cos(2 pi k.r / N)`` on a grid of ``shape`` for integer frequency ``k``."""
        wave = np.ones((), dtype=np.complex128)
        for n, k in zip(shape, frequency, strict=True):
            wave = np.multiply.outer(wave, np.exp(2j * np.pi * k * np.arange(n) / n))
        return wave.real

    @classmethod
    def _kernel(cls, batch, params, seeds):
        shape = batch.spatial_shape
        span = batch.span()
        amplitude = params["intensity"].astype(np.float64) * span
        counts = params["n_spikes"].astype(int)
        out = batch.work.copy()
        positions = np.empty(batch.n, dtype=object)
        low = np.array([-(n // 2) for n in shape])
        high = np.array([(n + 1) // 2 for n in shape])
        for i in range(batch.n):
            gen = np.random.default_rng(int(seeds[i]))
            spikes = []
            while len(spikes) < counts[i]:
                k = gen.integers(low, high)
                if k.any() or all(n == 1 for n in shape):
                    spikes.append(tuple(int(v) for v in k))
            positions[i] = tuple(spikes)
        complex_dtype = np.complex64 if out.dtype == np.float32 else np.complex128
        coords = [np.arange(n) / n for n in shape]
        for j in range(int(counts.max(initial=0))):
            rows = np.flatnonzero((counts > j) & (amplitude > 0))
            for idx in _chunks(rows, int(np.prod(shape))):
                freq = np.array([positions[i][j] for i in idx], dtype=np.float64)
                # The pattern amplitude * cos(2 pi k.r / N) is the real part of a product
                # of one complex exponential per axis: outer products over the batch.
                wave = amplitude[idx].astype(complex_dtype)
                for axis, r in enumerate(coords):
                    factor = np.exp(2j * np.pi * np.outer(freq[:, axis], r)).astype(
                        complex_dtype)
                    wave = wave[..., None] * factor.reshape(
                        (idx.size,) + (1,) * axis + (r.size,))
                out[idx] += wave.real
        return out, {"frequencies": positions}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomSpike(RandomPerturbation):
    """Spikes with intensity and count drawn for each image.

    Parameters
    ----------
    intensity : (float, float) or float, default (0.0, 0.2)
        Range of :class:`Spike`'s ``intensity``.
    n_spikes : (int, int), default (1, 1)
        Inclusive range of the number of spikes.
    """

    intensity: tuple[float, float] = (0.0, 0.2)
    n_spikes: tuple[int, int] = (1, 1)
    deterministic: ClassVar[type[Perturbation]] = Spike

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "intensity", check_range(self.intensity, param="intensity",
                                                          owner=owner))
        low, high = check_range(self.n_spikes, param="n_spikes", owner=owner, lower=1.0)
        object.__setattr__(self, "n_spikes", (int(low), int(high)))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"intensity": float(rng.uniform(*self.intensity)),
                "n_spikes": int(rng.integers(self.n_spikes[0], self.n_spikes[1] + 1))}
