"""The built-in perturbations by name."""

from __future__ import annotations

from ._base import GradedPerturbation
from ._intensity import (
    BiasField,
    Gamma,
    GaussianNoise,
    IntensityScale,
    RandomBiasField,
    RandomGamma,
    RandomGaussianNoise,
    RandomIntensityScale,
    RandomRicianNoise,
    RicianNoise,
)
from ._jpeg import JpegCompression, RandomJpegCompression
from ._kspace import Ghosting, Motion, RandomGhosting, RandomMotion, RandomSpike, Spike
from ._metadata import (
    MissingMetadata,
    RandomMissingMetadata,
    RandomShuffledMetadata,
    RandomWrongMetadata,
    ShuffledMetadata,
    WrongMetadata,
)
from ._spatial import (
    Crop,
    Downsample,
    GaussianBlur,
    RandomCrop,
    RandomDownsample,
    RandomGaussianBlur,
    RandomRotation,
    RandomTranslation,
    Rotation,
    Translation,
)

__all__ = ["DEFAULT_PERTURBATIONS", "PERTURBATIONS", "RANDOM_PERTURBATIONS"]

_PAIRS = (
    (GaussianNoise, RandomGaussianNoise),
    (RicianNoise, RandomRicianNoise),
    (GaussianBlur, RandomGaussianBlur),
    (Motion, RandomMotion),
    (Ghosting, RandomGhosting),
    (Spike, RandomSpike),
    (BiasField, RandomBiasField),
    (Gamma, RandomGamma),
    (Downsample, RandomDownsample),
    (JpegCompression, RandomJpegCompression),
    (Crop, RandomCrop),
    (Translation, RandomTranslation),
    (Rotation, RandomRotation),
    (IntensityScale, RandomIntensityScale),
    (MissingMetadata, RandomMissingMetadata),
    (WrongMetadata, RandomWrongMetadata),
    (ShuffledMetadata, RandomShuffledMetadata),
)

#: Deterministic perturbation classes by name (``GaussianNoise.name == "gaussian_noise"``).
PERTURBATIONS: dict[str, type[GradedPerturbation]] = {det.name: det for det, _ in _PAIRS}
#: Their random counterparts, by the deterministic name.
RANDOM_PERTURBATIONS: dict[str, type] = {det.name: rand for det, rand in _PAIRS}
#: What :func:`stress_test` runs by default: every image perturbation.
DEFAULT_PERTURBATIONS: tuple[str, ...] = tuple(
    name for name, cls in PERTURBATIONS.items() if cls.kind == "image")
