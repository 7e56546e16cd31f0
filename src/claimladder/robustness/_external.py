"""Plug TorchIO or MONAI transforms in as perturbations, one image at a time."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._core import RngLike
from ._base import Batch, PerturbationResult, image_seeds

__all__ = ["MonaiPerturbation", "TorchIOPerturbation"]


class _External(abc.ABC):
    """Shared: a name, a description, and the per-image loop."""

    kind = "image"
    is_identity = False
    library = ""

    def __init__(self, transform: Any, *, name: str | None = None) -> None:
        if not callable(transform):
            raise TypeError(f"{type(self).__name__} needs a callable {self.library} transform. "
                            f"Got {type(transform).__name__}.")
        self.transform = transform
        self.name = name or f"{self.library.lower()}_{type(transform).__name__.lower()}"

    def describe(self) -> str:
        """``name`` plus the transform's repr (a cache key part)."""
        return f"{self.name}[{self.transform!r}]"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform!r}, name={self.name!r})"

    def __call__(self, images: Any, *, rng: RngLike | Sequence[int] = None,
                 spatial_dims: int | None = None) -> Any:
        """Perturb ``images`` (see :meth:`apply`); returns only the images."""
        return self.apply(images, rng=rng, spatial_dims=spatial_dims).images

    def apply(self, images: Any, *, rng: RngLike | Sequence[int] = None,
              spatial_dims: int | None = None) -> PerturbationResult:
        """Run the transform on each image separately with its own seed.

        Parameters and returns as :meth:`Perturbation.apply`; the
        ``parameters`` table holds the ``seed`` and what the library reports
        it applied (``applied``).
        """
        owner = type(self).__name__
        batch = Batch(images, spatial_dims, owner=owner)
        seeds = image_seeds(rng, batch.n, owner=owner)
        out = np.empty_like(batch.work)
        applied = []
        for i in range(batch.n):
            result, record = self._one(batch.work[i], batch.spatial_dims, int(seeds[i]))
            if result.shape != batch.spatial_shape:
                raise ValueError(
                    f"The {self.library} transform {self.transform!r} changed the image shape "
                    f"from {batch.spatial_shape} to {result.shape}; a perturbation must keep "
                    "it (crop or pad back inside the transform)."
                )
            out[i] = result
            applied.append(record)
        table = pd.DataFrame({"perturbation": [self.name] * batch.n, "applied": applied,
                              "seed": [int(s) for s in seeds]}, dtype=object)
        return PerturbationResult(images=batch.restore(out), parameters=table)

    @abc.abstractmethod
    def _one(self, image: np.ndarray, spatial_dims: int, seed: int) -> tuple[np.ndarray, Any]:
        """Perturb one image; return it and what the library reports it applied."""


class TorchIOPerturbation(_External):
    """A TorchIO transform used as a perturbation.

    Parameters
    ----------
    transform : torchio.Transform
        Any TorchIO transform (e.g. ``torchio.RandomMotion()``) that keeps
        the shape.
    name : str, optional
        Name in tables and check ids; default ``"torchio_<class name>"``.

    Notes
    -----
    Each image becomes its own ``torchio.Subject`` holding one
    ``ScalarImage`` with its own tensor: a 2D image ``(H, W)`` as
    ``(1, H, W, 1)``, a volume ``(D, H, W)`` as ``(1, D, H, W)`` (unit
    spacing). TorchIO transforms apply one set of parameters to the whole
    tensor they receive, so handing them a batch as one tensor would give
    every image the same draw (and treat the batch axis as space). TorchIO
    draws from torch's global generator; each image runs inside
    ``torch.random.fork_rng`` seeded with its own seed, so results are
    reproducible and the caller's torch random state is left untouched.
    What TorchIO reports it applied (``Subject.applied_transforms``) is
    recorded in the ``applied`` column.

    Examples
    --------
    >>> import numpy as np
    >>> import torchio as tio
    >>> from claimladder.robustness import TorchIOPerturbation
    >>> noise = TorchIOPerturbation(tio.RandomNoise(std=(0.1, 0.1)))
    >>> y = noise(np.zeros((2, 16, 16), dtype=np.float32), rng=0)
    >>> y.shape, round(float(y.std()), 1)
    ((2, 16, 16), 0.1)
    """

    library = "TorchIO"

    def __init__(self, transform: Any, *, name: str | None = None) -> None:
        try:
            import torchio  # noqa: F401
        except ImportError as exc:
            raise ImportError("TorchIOPerturbation needs torchio. Fix: pip install "
                              "'claimladder[torch]'") from exc
        super().__init__(transform, name=name)

    def _one(self, image: np.ndarray, spatial_dims: int, seed: int) -> tuple[np.ndarray, Any]:
        import torch
        import torchio as tio

        tensor = torch.from_numpy(np.ascontiguousarray(
            image[None, ..., None] if spatial_dims == 2 else image[None]))
        subject = tio.Subject(image=tio.ScalarImage(tensor=tensor))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            transformed = self.transform(subject)
        data = transformed["image"].data.detach().cpu().numpy()
        result = data[0, ..., 0] if spatial_dims == 2 else data[0]
        record = [(name, {k: _plain(v) for k, v in args.items()})
                  for name, args in transformed.applied_transforms]
        return result.astype(image.dtype, copy=False), record


class MonaiPerturbation(_External):
    """A MONAI array transform used as a perturbation.

    Parameters
    ----------
    transform : monai.transforms.Transform
        An array (not dictionary) transform that keeps the shape, e.g.
        ``monai.transforms.RandGaussianNoise(prob=1.0)``.
    name : str, optional
        Name in tables and check ids; default ``"monai_<class name>"``.

    Notes
    -----
    Each image is passed alone, channel first (``(1, H, W)`` or
    ``(1, D, H, W)``). Randomizable transforms are re-seeded per image with
    ``set_random_state(seed=...)`` (MONAI keeps a ``RandomState`` on the
    transform object), so results do not depend on the order of the images.
    The adapter relies only on that protocol; MONAI itself is not a
    dependency and is not installed in the test environment.
    """

    library = "MONAI"

    def _one(self, image: np.ndarray, spatial_dims: int, seed: int) -> tuple[np.ndarray, Any]:
        if hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(seed=seed % 2**32)
        result = self.transform(image[None].copy())
        if hasattr(result, "detach"):
            result = result.detach().cpu().numpy()
        result = np.asarray(result)
        if result.ndim == image.ndim + 1:
            result = result[0]
        return result.astype(image.dtype, copy=False), None


def _plain(value: Any) -> Any:
    """TorchIO's recorded arguments as plain Python values (tensors to lists)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
