"""Model adapters: map a batch of images to probabilities, batched and cached.

:func:`load_model` wraps a Python callable (``"package.module:function"``),
an ONNX file, a TorchScript file or ``nn.Module``, or a scikit-learn
estimator as a :class:`ModelAdapter` whose :meth:`~ModelAdapter.predict_proba`
takes float32 images ``(N, H, W)`` or ``(N, D, H, W)``. Predictions are
cached by :class:`CacheKey` (source image content, perturbation, severity,
seed) in memory or in a folder shared safely between runs, so the
robustness and masking checks never score the same input twice.
"""

from ._adapters import (
    ACTIVATIONS,
    CallableAdapter,
    ModelAdapter,
    ModelOutputError,
    OnnxAdapter,
    SklearnAdapter,
    TorchAdapter,
    as_image_batch,
)
from ._cache import CacheKey, PredictionCache, image_digests
from ._load import TORCHSCRIPT_SUFFIXES, ModelSpecError, load_model

__all__ = [
    "ACTIVATIONS",
    "TORCHSCRIPT_SUFFIXES",
    "CacheKey",
    "CallableAdapter",
    "ModelAdapter",
    "ModelOutputError",
    "ModelSpecError",
    "OnnxAdapter",
    "PredictionCache",
    "SklearnAdapter",
    "TorchAdapter",
    "as_image_batch",
    "image_digests",
    "load_model",
]
