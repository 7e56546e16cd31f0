"""Model adapters: a batch of images in, probabilities out, batched and cached."""

from __future__ import annotations

import abc
import copy
import hashlib
import inspect
import json
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._core import ClaimladderError, check_option, check_positive_int
from ._cache import CacheKey, PredictionCache, image_digests

__all__ = [
    "ACTIVATIONS",
    "CallableAdapter",
    "ModelAdapter",
    "ModelOutputError",
    "OnnxAdapter",
    "SklearnAdapter",
    "TorchAdapter",
    "as_image_batch",
]

#: Values of the ``activation`` argument: what turns raw outputs into probabilities.
ACTIVATIONS = ("none", "sigmoid", "softmax")
# Probabilities may overshoot [0, 1] by float rounding (float32 softmax).
_PROBABILITY_TOLERANCE = 1e-5

ONNX_EXTRA_FIX = "pip install 'claimladder[onnx]'"
TORCH_EXTRA_FIX = ("pip install 'claimladder[torch]' (install a CPU build of torch first, e.g. "
                   "pip install torch --index-url https://download.pytorch.org/whl/cpu)")

Activation = Literal["none", "sigmoid", "softmax"]
CacheOption = PredictionCache | str | os.PathLike[str] | bool | None


class ModelOutputError(ClaimladderError, ValueError):
    """A model returned something that is not one probability row per image."""


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def as_image_batch(images: Any, *, owner: str) -> np.ndarray:
    """Stack ``images`` into a C-contiguous float32 array ``(N, H, W)`` or ``(N, D, H, W)``.

    Accepts an array (or torch tensor) with a leading batch axis, or a
    sequence of equally shaped 2D or 3D arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.models import as_image_batch
    >>> batch = as_image_batch([np.zeros((4, 5), np.uint16)] * 3, owner="example")
    >>> batch.shape, batch.dtype
    ((3, 4, 5), dtype('float32'))
    """
    if _is_torch_tensor(images):
        images = images.detach().cpu().numpy()
    if isinstance(images, np.ndarray):
        array = images
    else:
        items = [np.asarray(im.detach().cpu().numpy() if _is_torch_tensor(im) else im)
                 for im in images]
        shapes = {im.shape for im in items}
        if len(shapes) > 1:
            raise ValueError(
                f"The images passed to {owner} have {len(shapes)} different shapes "
                f"(e.g. {sorted(shapes)[:3]}); a model needs equally shaped inputs. Fix: "
                "resample them to one shape first."
            )
        if not items:
            raise ValueError(f"{owner} got no images; pass at least one.")
        array = np.stack(items)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"The images passed to {owner} must be a batch of shape (N, H, W) or (N, D, H, W). "
            f"Got shape {array.shape} instead. Fix: add a leading batch axis "
            "(image[None]) or drop a channel axis."
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"The images passed to {owner} must be real numbers. Got dtype "
                         f"{array.dtype} instead.")
    return np.ascontiguousarray(array, dtype=np.float32)


def _metadata_digests(metadata: pd.DataFrame) -> list[str]:
    columns = [str(c) for c in metadata.columns]
    out = []
    for row in metadata.itertuples(index=False):
        text = json.dumps([columns, [None if _isna(v) else str(v) for v in row]])
        out.append(hashlib.sha256(text.encode()).hexdigest())
    return out


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        raise ModelOutputError("activation='softmax' needs one output column per class; the "
                               "model returned one value per image. Fix: use 'sigmoid'.")
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class ModelAdapter(abc.ABC):
    """A model seen as ``images -> probabilities``, batched and cached.

    Subclasses implement :meth:`_predict_batch`; :func:`load_model` builds the
    right one from a spec. Use :meth:`predict_proba`.

    Parameters
    ----------
    name : str
        Human-readable model name (reports, cache namespace).
    batch_size : int, default 32
        Images per call of the underlying model.
    cache : PredictionCache, str, path-like, bool or None, default None
        ``None`` or ``True``: an in-memory cache; a folder: a persistent
        cache there (safe to share between concurrent runs); ``False``: no
        cache; a :class:`PredictionCache`: that one.
    progress : bool, default False
        Show a rich progress bar over batches.
    activation : {"none", "sigmoid", "softmax"}, default "none"
        Applied to the raw outputs, for models that return logits.
    takes_metadata : bool, default False
        Whether the model also takes a metadata table (one row per image).

    Attributes
    ----------
    fingerprint : str
        What identifies the model's behaviour (file digest, estimator digest,
        or function name and source digest); the cache namespace.
    classes : tuple or None
        Class of each output column when the model declares them
        (scikit-learn's ``classes_``).
    """

    fingerprint: str = ""
    classes: tuple[Any, ...] | None = None

    def __init__(self, *, name: str, batch_size: int = 32, cache: CacheOption = None,
                 progress: bool = False, activation: Activation = "none",
                 takes_metadata: bool = False) -> None:
        owner = type(self).__name__
        self.name = str(name)
        self.batch_size = check_positive_int(batch_size, param="batch_size", owner=owner)
        self.progress = bool(progress)
        self.activation = check_option(activation, ACTIVATIONS, param="activation", owner=owner)
        self.takes_metadata = bool(takes_metadata)
        self._cache_option = cache
        self._cache: PredictionCache | None = None
        self.n_model_calls = 0
        self.n_images_predicted = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, batch_size={self.batch_size})"

    @property
    def cache(self) -> PredictionCache | None:
        """The prediction cache (created on first use), or None when disabled."""
        if self._cache is None and self._cache_option is not False:
            option = self._cache_option
            namespace = f"{self.name}|{self.fingerprint}|{self.activation}"
            if isinstance(option, PredictionCache):
                self._cache = option
            elif option is None or option is True:
                self._cache = PredictionCache(namespace=namespace)
            else:
                self._cache = PredictionCache(option, namespace=namespace)
        return self._cache

    @abc.abstractmethod
    def _predict_batch(self, batch: np.ndarray, metadata: pd.DataFrame | None) -> Any:
        """Raw model output for one batch (float32 images, metadata rows or None)."""

    def image_keys(self, images: Any, *, metadata: pd.DataFrame | None = None,
                   perturbation: str = "none", severity: int = 0,
                   seed: int | None = None) -> list[CacheKey]:
        """Cache keys of ``images`` (and their metadata rows) under a perturbation."""
        batch = as_image_batch(images, owner=f"{type(self).__name__}.image_keys")
        return self.keys_from_digests(image_digests(batch), metadata=metadata,
                                      perturbation=perturbation, severity=severity, seed=seed)

    def keys_from_digests(self, digests: Sequence[str], *, metadata: pd.DataFrame | None = None,
                          perturbation: str = "none", severity: int = 0,
                          seed: int | None = None) -> list[CacheKey]:
        """Cache keys from precomputed image digests (see :func:`image_digests`)."""
        digests = list(digests)
        if metadata is not None and self.takes_metadata:
            rows = _metadata_digests(metadata)
            digests = [hashlib.sha256(f"{d}|{r}".encode()).hexdigest()
                       for d, r in zip(digests, rows, strict=True)]
        return [CacheKey(image=d, perturbation=perturbation, severity=severity, seed=seed)
                for d in digests]

    def cached(self, keys: Sequence[CacheKey]) -> tuple[np.ndarray | None, np.ndarray]:
        """Cached outputs of ``keys``: ``(values (n, K) or None, hit mask)``."""
        if self.cache is None:
            return None, np.zeros(len(keys), dtype=bool)
        return self.cache.get(keys)

    def predict_proba(self, images: Any, *, metadata: pd.DataFrame | None = None,
                      keys: Sequence[CacheKey] | None = None) -> np.ndarray:
        """Probabilities of a batch of images.

        Parameters
        ----------
        images : array-like of shape (N, H, W) or (N, D, H, W), or a sequence of arrays
            Images (or a torch tensor); converted to float32.
        metadata : pandas.DataFrame, optional
            One row per image, for models created with ``takes_metadata=True``.
        keys : sequence of CacheKey, optional
            Cache keys of the images; by default their content digests (with
            perturbation ``"none"``). Callers that perturb images pass the
            keys of the source images, so that a rerun can skip the
            perturbation as well.

        Returns
        -------
        numpy.ndarray
            float64, shape ``(N,)`` when the model returns one probability per
            image (or one column), else ``(N, K)``.

        Raises
        ------
        ModelOutputError
            The model returned the wrong number of rows, NaN, or values
            outside [0, 1] (the message suggests ``activation``).
        """
        owner = f"{type(self).__name__}.predict_proba"
        batch = as_image_batch(images, owner=owner)
        n = batch.shape[0]
        if metadata is not None:
            if not isinstance(metadata, pd.DataFrame) or len(metadata) != n:
                raise ValueError(f"The 'metadata' parameter of {owner} must be a DataFrame with "
                                 f"one row per image ({n}).")
            metadata = metadata.reset_index(drop=True)
        if self.takes_metadata and metadata is None:
            raise ValueError(f"Model {self.name!r} takes metadata (takes_metadata=True); pass "
                             f"'metadata' to {owner}.")
        cache = self.cache
        values = hit = None
        if cache is not None:
            if keys is None:
                keys = self.keys_from_digests(image_digests(batch), metadata=metadata)
            elif len(keys) != n:
                raise ValueError(f"{owner} got {len(keys)} cache keys for {n} images.")
            values, hit = cache.get(keys)
        missing = np.arange(n) if hit is None else np.flatnonzero(~hit)
        if missing.size:
            computed = self._run(batch, metadata, missing)
            if cache is not None:
                cache.put([keys[i] for i in missing], computed)
            if values is None or values.shape[1] != computed.shape[1]:
                full = np.full((n, computed.shape[1]), np.nan)
                if values is not None:
                    full[hit] = values[hit]
                values = full
            values[missing] = computed
        return values[:, 0] if values.shape[1] == 1 else values

    __call__ = predict_proba

    def predict_uncached(self, images: Any, *, metadata: pd.DataFrame | None = None
                         ) -> np.ndarray:
        """Probabilities of a batch, always computed (the cache is neither read nor written).

        The work unit of parallel inference: the caller looks keys up and
        stores results in its own cache; the worker only computes.

        Returns
        -------
        numpy.ndarray
            float64, shape ``(N, K)`` (K = 1 for one probability per image).
        """
        owner = f"{type(self).__name__}.predict_uncached"
        batch = as_image_batch(images, owner=owner)
        if metadata is not None:
            metadata = metadata.reset_index(drop=True)
        if self.takes_metadata and metadata is None:
            raise ValueError(f"Model {self.name!r} takes metadata (takes_metadata=True); pass "
                             f"'metadata' to {owner}.")
        return self._run(batch, metadata, np.arange(batch.shape[0]))

    def without_cache(self) -> ModelAdapter:
        """A shallow copy with no prediction cache, to send to worker processes.

        The cache holds a lock and possibly many entries; workers compute and
        the caller caches (see :meth:`predict_uncached`).
        """
        clone = copy.copy(self)
        clone._cache = None
        clone._cache_option = False
        return clone

    def _run(self, batch: np.ndarray, metadata: pd.DataFrame | None,
             rows: np.ndarray) -> np.ndarray:
        starts = range(0, rows.size, self.batch_size)
        outputs = []
        progress = None
        if self.progress and len(starts) > 1:
            from rich.console import Console
            from rich.progress import Progress

            progress = Progress(console=Console(stderr=True), transient=True)
            progress.start()
            task = progress.add_task(f"Scoring with {self.name}", total=rows.size)
        try:
            for start in starts:
                idx = rows[start:start + self.batch_size]
                chunk = batch[idx] if idx.size != batch.shape[0] else batch
                meta = None if metadata is None else metadata.iloc[idx].reset_index(drop=True)
                raw = self._predict_batch(np.ascontiguousarray(chunk), meta)
                self.n_model_calls += 1
                self.n_images_predicted += idx.size
                outputs.append(self._postprocess(raw, idx.size))
                if progress is not None:
                    progress.advance(task, idx.size)
        finally:
            if progress is not None:
                progress.stop()
        widths = {o.shape[1] for o in outputs}
        if len(widths) > 1:
            raise ModelOutputError(f"Model {self.name!r} returned different numbers of columns "
                                   f"for different batches ({sorted(widths)}).")
        return np.concatenate(outputs, axis=0)

    def _postprocess(self, raw: Any, n: int) -> np.ndarray:
        if _is_torch_tensor(raw):
            raw = raw.detach().cpu().numpy()
        try:
            out = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelOutputError(f"Model {self.name!r} returned {type(raw).__name__}, not an "
                                   "array of probabilities.") from exc
        if out.ndim == 0 or out.shape[0] != n or out.ndim > 2:
            raise ModelOutputError(
                f"Model {self.name!r} returned shape {out.shape} for a batch of {n} images; "
                f"expected ({n},) or ({n}, n_classes)."
            )
        if self.activation == "sigmoid":
            out = _sigmoid(out)
        elif self.activation == "softmax":
            out = _softmax(out)
        bad = ~np.isfinite(out)
        if bad.any():
            raise ModelOutputError(f"Model {self.name!r} returned {int(bad.sum())} NaN or "
                                   "infinite value(s).")
        if out.size and (out.min() < -_PROBABILITY_TOLERANCE
                         or out.max() > 1 + _PROBABILITY_TOLERANCE):
            raise ModelOutputError(
                f"Model {self.name!r} returned values in [{out.min():.3g}, {out.max():.3g}], "
                "not probabilities. Fix: pass activation='sigmoid' (one logit per image) or "
                "'softmax' (one logit per class) to load_model."
            )
        out = np.clip(out, 0.0, 1.0)
        return out[:, None] if out.ndim == 1 else out


def _source_digest(obj: Any) -> str:
    """Digest of ``obj``'s source and of its file, so edited code invalidates the cache."""
    digest = hashlib.sha256()
    try:
        digest.update(inspect.getsource(obj).encode())
        path = inspect.getsourcefile(obj)
    except (OSError, TypeError):
        return ""
    if path and os.path.isfile(path):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def _qualified_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    qual = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{qual}"


def _flatten(batch: np.ndarray) -> np.ndarray:
    return batch.reshape(batch.shape[0], -1)


class CallableAdapter(ModelAdapter):
    """A Python function ``f(images) -> probabilities`` (or ``f(images, metadata)``).

    Parameters
    ----------
    function : callable
        Takes a float32 array ``(N, H, W)`` or ``(N, D, H, W)`` (after
        ``preprocess``) and returns ``(N,)`` or ``(N, K)`` probabilities.
    preprocess : callable, optional
        Applied to each batch before ``function``.
    **kwargs
        See :class:`ModelAdapter`.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.models import CallableAdapter
    >>> model = CallableAdapter(lambda x: x.mean(axis=(1, 2)), name="mean")
    >>> model.predict_proba(np.full((2, 4, 4), 0.25, dtype=np.float32)).tolist()
    [0.25, 0.25]
    """

    def __init__(self, function: Callable[..., Any], *, preprocess: Callable | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        if not callable(function):
            raise TypeError(f"CallableAdapter needs a callable. Got {type(function).__name__}.")
        super().__init__(name=name or _qualified_name(function), **kwargs)
        self.function = function
        self.preprocess = preprocess
        parts = [_qualified_name(function), _source_digest(function)]
        if preprocess is not None:
            parts += [_qualified_name(preprocess), _source_digest(preprocess)]
        self.fingerprint = "|".join(parts)

    def _predict_batch(self, batch: np.ndarray, metadata: pd.DataFrame | None) -> Any:
        x = batch if self.preprocess is None else self.preprocess(batch)
        return self.function(x, metadata) if self.takes_metadata else self.function(x)


class SklearnAdapter(ModelAdapter):
    """A fitted scikit-learn estimator (anything with ``predict_proba``).

    Parameters
    ----------
    estimator : object
        Fitted; ``predict_proba(X)`` returns ``(N, n_classes)``.
    preprocess : callable, optional
        Maps the image batch (and the metadata table, when
        ``takes_metadata=True``) to the 2D feature matrix ``X`` the estimator
        was fit on. Default: flatten each image to one row.
    **kwargs
        See :class:`ModelAdapter`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from claimladder.models import SklearnAdapter
    >>> x = np.random.default_rng(0).random((20, 4, 4), dtype=np.float32)
    >>> y = (x.mean(axis=(1, 2)) > 0.5).astype(int)
    >>> model = SklearnAdapter(LogisticRegression().fit(x.reshape(20, -1), y))
    >>> model.predict_proba(x).shape, model.classes
    ((20, 2), (0, 1))
    """

    def __init__(self, estimator: Any, *, preprocess: Callable | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"SklearnAdapter needs an estimator with predict_proba. Got "
                            f"{type(estimator).__name__}; wrap a function in CallableAdapter.")
        super().__init__(name=name or type(estimator).__name__, **kwargs)
        self.estimator = estimator
        self.preprocess = _flatten if preprocess is None else preprocess
        classes = getattr(estimator, "classes_", None)
        self.classes = None if classes is None else tuple(np.asarray(classes).tolist())
        try:
            digest = hashlib.sha256(pickle.dumps(estimator, protocol=5)).hexdigest()[:16]
        except Exception:  # noqa: BLE001 - unpicklable estimators are cached by identity only
            digest = f"id{id(estimator)}"
        parts = [_qualified_name(estimator), digest]
        if preprocess is not None:
            parts += [_qualified_name(preprocess), _source_digest(preprocess)]
        self.fingerprint = "|".join(parts)

    def _predict_batch(self, batch: np.ndarray, metadata: pd.DataFrame | None) -> Any:
        x = self.preprocess(batch, metadata) if self.takes_metadata else self.preprocess(batch)
        return self.estimator.predict_proba(x)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class OnnxAdapter(ModelAdapter):
    """An ONNX model run by onnxruntime (the ``onnx`` extra).

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file.
    add_channel : bool, optional
        Insert a channel axis (``(N, 1, H, W)``). Default: when the model's
        first input has one more dimension than the image batch.
    providers : sequence of str, optional
        onnxruntime execution providers; default CPU.
    **kwargs
        See :class:`ModelAdapter`.

    Notes
    -----
    The first input and the first output are used; an output of shape
    ``(N, 1)`` becomes ``(N,)``.
    """

    def __init__(self, path: str | os.PathLike[str], *, add_channel: bool | None = None,
                 providers: Sequence[str] | None = None, name: str | None = None,
                 **kwargs: Any) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {str(path)!r} does not exist. Fix: check the "
                                    "path in the study's [model] section.")
        try:
            import onnxruntime
        except ImportError as exc:
            raise ImportError(f"Running the ONNX model {str(path)!r} needs onnxruntime. Fix: "
                              f"{ONNX_EXTRA_FIX}") from exc
        super().__init__(name=name or path.stem, **kwargs)
        if self.takes_metadata:
            raise ValueError("OnnxAdapter does not pass metadata to the model; wrap the "
                             "session in a function and use CallableAdapter.")
        self.path = path
        options = onnxruntime.SessionOptions()
        # One intra-op thread: parallelism belongs a level up (one task per batch).
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), sess_options=options,
            providers=list(providers) if providers else ["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        self._input_name = first.name
        self._input_rank = len(first.shape) if first.shape is not None else None
        self._input_double = first.type == "tensor(double)"
        self._add_channel = add_channel
        self.fingerprint = f"onnx|{_file_digest(path)}"

    def _predict_batch(self, batch: np.ndarray, metadata: pd.DataFrame | None) -> Any:
        add = self._add_channel
        if add is None:
            add = self._input_rank is not None and self._input_rank == batch.ndim + 1
        x = batch[:, None] if add else batch
        if self._input_double:
            x = x.astype(np.float64)
        return self.session.run(None, {self._input_name: x})[0]


class TorchAdapter(ModelAdapter):
    """A torch ``nn.Module`` or TorchScript module (the ``torch`` extra).

    Parameters
    ----------
    module : torch.nn.Module
        Called in ``eval`` mode under ``torch.inference_mode()``.
    add_channel : bool, default True
        Insert a channel axis (``(N, 1, H, W)``, the NCHW convention).
    device : str, default "cpu"
        Where the batch is moved before the call.
    **kwargs
        See :class:`ModelAdapter`.
    """

    def __init__(self, module: Any, *, add_channel: bool | None = True, device: str = "cpu",
                 name: str | None = None, fingerprint: str | None = None,
                 **kwargs: Any) -> None:
        try:
            import torch
        except ImportError as exc:
            raise ImportError(f"Running a torch model needs torch. Fix: {TORCH_EXTRA_FIX}") \
                from exc
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"TorchAdapter needs a torch.nn.Module. Got {type(module).__name__}.")
        super().__init__(name=name or type(module).__name__, **kwargs)
        if self.takes_metadata:
            raise ValueError("TorchAdapter does not pass metadata to the model; wrap the module "
                             "in a function and use CallableAdapter.")
        self.module = module.eval().to(device)
        self.device = device
        self.add_channel = True if add_channel is None else bool(add_channel)
        if fingerprint is None:
            digest = hashlib.sha256()
            for key, tensor in module.state_dict().items():
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().numpy().tobytes())
            fingerprint = f"torch|{_qualified_name(module)}|{digest.hexdigest()[:16]}"
        self.fingerprint = fingerprint

    def _predict_batch(self, batch: np.ndarray, metadata: pd.DataFrame | None) -> Any:
        import torch

        x = torch.from_numpy(batch[:, None] if self.add_channel else batch).to(self.device)
        with torch.inference_mode():
            out = self.module(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().float().cpu().numpy()


def _is_torch_module(obj: Any) -> bool:
    return any(cls.__module__.split(".")[0] == "torch" and cls.__name__ == "Module"
               for cls in type(obj).__mro__)

