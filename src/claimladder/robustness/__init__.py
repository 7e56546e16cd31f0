"""Robustness: graded perturbations, metadata corruption and the stress test (rung 5).

Every perturbation comes as a pair (TorchIO's convention): a deterministic
class with fixed parameters (``GaussianNoise(sigma=0.02)``) and a random one
that samples them per image and delegates (``RandomGaussianNoise(sigma=(0,
0.04))``). ``Perturbation.at_severity(level)`` gives levels 0 (identity) to 5;
each class documents its table. Perturbations work on NumPy arrays or torch
tensors of shape ``(N, H, W)`` or ``(N, D, H, W)``, vectorized over the batch,
with one seed per image, and record what each image got for replay.
:func:`stress_test` scores a model under them and reports the drop of a
metric with paired, patient-clustered intervals, flip rates and the failure
boundary; :meth:`StressTestResult.to_findings` turns it into evidence.
"""

from ._base import (
    SEVERITY_LEVELS,
    GradedPerturbation,
    Perturbation,
    PerturbationResult,
    RandomPerturbation,
    image_seeds,
)
from ._external import MonaiPerturbation, TorchIOPerturbation
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
    bias_field_basis,
)
from ._jpeg import JpegCompression, RandomJpegCompression
from ._kspace import Ghosting, Motion, RandomGhosting, RandomMotion, RandomSpike, Spike
from ._metadata import (
    MetadataPerturbation,
    MetadataResult,
    MissingMetadata,
    RandomMetadataPerturbation,
    RandomMissingMetadata,
    RandomShuffledMetadata,
    RandomWrongMetadata,
    ShuffledMetadata,
    WrongMetadata,
)
from ._registry import DEFAULT_PERTURBATIONS, PERTURBATIONS, RANDOM_PERTURBATIONS
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
from ._stress import BOUNDARY_RULES, STRESS_METRICS, StressTestResult, stress_test

__all__ = [
    "BOUNDARY_RULES",
    "DEFAULT_PERTURBATIONS",
    "PERTURBATIONS",
    "RANDOM_PERTURBATIONS",
    "SEVERITY_LEVELS",
    "STRESS_METRICS",
    "BiasField",
    "Crop",
    "Downsample",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "Ghosting",
    "GradedPerturbation",
    "IntensityScale",
    "JpegCompression",
    "MetadataPerturbation",
    "MetadataResult",
    "MissingMetadata",
    "MonaiPerturbation",
    "Motion",
    "Perturbation",
    "PerturbationResult",
    "RandomBiasField",
    "RandomCrop",
    "RandomDownsample",
    "RandomGamma",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomGhosting",
    "RandomIntensityScale",
    "RandomJpegCompression",
    "RandomMetadataPerturbation",
    "RandomMissingMetadata",
    "RandomMotion",
    "RandomPerturbation",
    "RandomRicianNoise",
    "RandomRotation",
    "RandomShuffledMetadata",
    "RandomSpike",
    "RandomTranslation",
    "RandomWrongMetadata",
    "RicianNoise",
    "Rotation",
    "ShuffledMetadata",
    "Spike",
    "StressTestResult",
    "TorchIOPerturbation",
    "Translation",
    "WrongMetadata",
    "bias_field_basis",
    "image_seeds",
    "stress_test",
]
