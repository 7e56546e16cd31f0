"""``load_model``: one entry point from a spec (string, path or object) to an adapter."""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core import ClaimladderError, did_you_mean
from ._adapters import (
    TORCH_EXTRA_FIX,
    Activation,
    CacheOption,
    CallableAdapter,
    ModelAdapter,
    OnnxAdapter,
    SklearnAdapter,
    TorchAdapter,
    _file_digest,
    _is_torch_module,
)

__all__ = ["TORCHSCRIPT_SUFFIXES", "load_model"]

#: File suffixes loaded with ``torch.jit.load``.
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
_IMPORT_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_SPEC_FORMS = ("'package.module:function' (a Python callable or a fitted estimator), a "
               "'.onnx' file, a TorchScript file ('.pt', '.pth'), a torch.nn.Module, a "
               "scikit-learn estimator or a callable")


class ModelSpecError(ClaimladderError, ValueError):
    """A model spec names nothing that can be loaded."""


def _import_object(spec: str) -> Any:
    module_name, _, attr_path = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(
            f"Cannot import module {module_name!r} named by the model spec {spec!r} ({exc}). "
            "Fix: install the package that defines it (e.g. pip install -e .) or check the "
            "spelling."
        ) from exc
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise ModelSpecError(
                f"{obj.__name__ if hasattr(obj, '__name__') else module_name!r} has no "
                f"attribute {part!r} (model spec {spec!r}).{did_you_mean(part, names)}"
            )
        obj = getattr(obj, part)
    return obj


def _load_torchscript(path: Path, device: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"Loading the TorchScript model {str(path)!r} needs torch. Fix: "
                          f"{TORCH_EXTRA_FIX}") from exc
    try:
        with warnings.catch_warnings():
            # torch >= 2.9 deprecates TorchScript, but saved archives remain a common
            # deployment format; the warning would only alarm users of this adapter.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device)
    except RuntimeError as exc:
        raise ModelSpecError(
            f"{str(path)!r} is not a TorchScript archive ({str(exc).splitlines()[0]}). A "
            "checkpoint of weights cannot be run alone. Fix: export the model with "
            "torch.jit.script(model).save(path), or build the nn.Module in Python and pass "
            "the object to load_model."
        ) from exc


def load_model(
    spec: str | os.PathLike[str] | Any,
    *,
    preprocess: Callable[..., Any] | None = None,
    batch_size: int = 32,
    cache: CacheOption = None,
    progress: bool = False,
    activation: Activation = "none",
    add_channel: bool | None = None,
    takes_metadata: bool = False,
    device: str = "cpu",
    name: str | None = None,
) -> ModelAdapter:
    """Wrap a model as a :class:`ModelAdapter` (``images -> probabilities``).

    Parameters
    ----------
    spec : str, path-like or object
        One of

        - ``"package.module:function"``: a callable taking float32 images
          ``(N, H, W)`` or ``(N, D, H, W)`` and returning ``(N,)`` or
          ``(N, K)`` probabilities; a fitted estimator found there is used
          as with an estimator object;
        - a ``.onnx`` file (onnxruntime, the ``onnx`` extra);
        - a TorchScript file (``.pt``, ``.pth``, ``.ts``, ``.torchscript``;
          ``torch.jit.load``, the ``torch`` extra);
        - a ``torch.nn.Module``, an object with ``predict_proba`` (a fitted
          scikit-learn estimator or pipeline), a callable, or a
          :class:`ModelAdapter` (returned unchanged).
    preprocess : callable, optional
        Applied to every batch before the model. For estimators it maps the
        images (and metadata) to the feature matrix; default: flatten.
    batch_size : int, default 32
        Images per model call.
    cache : PredictionCache, str, path-like, bool or None, default None
        In-memory cache (None/True), a persistent cache folder, or no cache (False).
    progress : bool, default False
        rich progress bar over batches.
    activation : {"none", "sigmoid", "softmax"}, default "none"
        Turns logits into probabilities (ONNX and torch models usually need it).
    add_channel : bool, optional
        Insert a channel axis before the image axes: default True for torch,
        decided from the input rank for ONNX, False otherwise.
    takes_metadata : bool, default False
        Call the function (or the estimator's ``preprocess``) with the
        metadata table as a second argument.
    device : str, default "cpu"
        torch device.
    name : str, optional
        Display name; default from the spec.

    Returns
    -------
    ModelAdapter

    Raises
    ------
    ModelSpecError
        The module or attribute does not exist, or a file is not a model.
    ImportError
        The optional dependency is missing (the message names the extra).
    FileNotFoundError
        A model file does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.models import load_model
    >>> def brightness(images):  # a stand-in for "my_package.inference:predict_proba"
    ...     return images.mean(axis=(1, 2))
    >>> model = load_model(brightness, batch_size=8)
    >>> type(model).__name__, model.predict_proba(np.full((3, 2, 2), 0.5, np.float32)).tolist()
    ('CallableAdapter', [0.5, 0.5, 0.5])
    >>> model.predict_proba(np.full((3, 2, 2), 0.5, np.float32)).shape  # from the cache
    (3,)
    >>> model.n_model_calls, model.cache.hits
    (1, 3)
    """
    if isinstance(spec, ModelAdapter):
        return spec
    common = {"batch_size": batch_size, "cache": cache, "progress": progress,
              "activation": activation, "takes_metadata": takes_metadata}
    if isinstance(spec, str) and _IMPORT_SPEC.match(spec) and not os.path.exists(spec):
        obj = _import_object(spec)
        return _from_object(obj, preprocess=preprocess, add_channel=add_channel, device=device,
                            name=name or spec, common=common)
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            if preprocess is not None:
                raise ValueError("preprocess is not applied to ONNX models; bake it into the "
                                 "graph or wrap the session in a function.")
            return OnnxAdapter(path, add_channel=add_channel, name=name, **common)
        if suffix in TORCHSCRIPT_SUFFIXES:
            if not path.is_file():
                raise FileNotFoundError(f"TorchScript model {str(path)!r} does not exist. Fix: "
                                        "check the path in the study's [model] section.")
            module = _load_torchscript(path, device)
            return TorchAdapter(module, add_channel=add_channel, device=device,
                                name=name or path.stem,
                                fingerprint=f"torchscript|{_file_digest(path)}", **common)
        raise ModelSpecError(
            f"Cannot load a model from {str(spec)!r}: expected {_SPEC_FORMS}."
            + did_you_mean(suffix, (".onnx", *TORCHSCRIPT_SUFFIXES))
        )
    return _from_object(spec, preprocess=preprocess, add_channel=add_channel, device=device,
                        name=name, common=common)


def _from_object(obj: Any, *, preprocess, add_channel, device, name, common) -> ModelAdapter:
    if isinstance(obj, ModelAdapter):
        return obj
    if _is_torch_module(obj):
        if preprocess is not None:
            raise ValueError("preprocess is not applied to torch modules; wrap the module in "
                             "a function and pass the function instead.")
        return TorchAdapter(obj, add_channel=add_channel, device=device, name=name, **common)
    if hasattr(obj, "predict_proba") and not isinstance(obj, type):
        return SklearnAdapter(obj, preprocess=preprocess, name=name, **common)
    if callable(obj):
        return CallableAdapter(obj, preprocess=preprocess, name=name, **common)
    raise ModelSpecError(f"Cannot use a {type(obj).__name__} as a model: expected {_SPEC_FORMS}.")
