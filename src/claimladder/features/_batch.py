"""Validation of image batches and shape-grouped, memory-bounded chunking.

Every batch function of :mod:`claimladder.features` accepts either a sequence
of 2D arrays (any shapes) or one ``(N, H, W)`` array. Images of one shape are
processed together in chunks of at most ``CHUNK_PIXELS`` pixels, converted to
float32 into one reused buffer: the kernels are then a few large matrix
products per chunk, and memory stays bounded whatever ``N`` is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CHUNK_PIXELS",
    "ImageBatch",
    "as_image",
    "as_image_batch",
    "check_fraction",
    "single_blas_thread",
]

# 2**20 float32 pixels (4 MiB) keeps a chunk in the CPU's last-level cache:
# measured 28 us per 256 x 256 image for the hash at 16 images per chunk
# against 43 us at 256 per chunk (the conversion to float32 then spills).
CHUNK_PIXELS = 1 << 20

Images = np.ndarray | Sequence[np.ndarray]


def single_blas_thread(enabled: bool = True) -> contextlib.AbstractContextManager[object]:
    """Run the enclosed matrix products on one BLAS thread.

    The per-chunk products are small and skinny (``(c H, W) @ (W, 8)``): with
    OpenBLAS's threads on a 2-core machine that other processes also use,
    they ran 8x slower (430 against 53 us per 256 x 256 image) than on one
    thread. Parallelism belongs a level up (one task per batch of images).
    threadpoolctl ships with scikit-learn, a dependency; without it the
    products simply run with the library's default. Switching costs ~3 ms,
    so small batches (``enabled=False``) skip it.
    """
    if not enabled:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn requires threadpoolctl
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageBatch:
    """Validated images: a stacked array or a list of 2D arrays, grouped by shape."""

    stacked: np.ndarray | None
    items: list[np.ndarray] | None
    groups: dict[tuple[int, int], np.ndarray]

    @property
    def n_pixels(self) -> int:
        """Total number of pixels over all images."""
        return sum(h * w * len(idx) for (h, w), idx in self.groups.items())

    def __len__(self) -> int:
        return len(self.stacked) if self.stacked is not None else len(self.items or ())

    def chunks(
        self, *, max_pixels: int = CHUNK_PIXELS
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, float32 array (c, H, W))`` per shape group.

        The yielded array is a reused buffer: it is overwritten by the next
        chunk, so consumers reduce it before asking for more.
        """
        for (h, w), indices in self.groups.items():
            per_chunk = max(1, max_pixels // max(h * w, 1))
            buffer = np.empty((min(per_chunk, len(indices)), h, w), dtype=np.float32)
            for start in range(0, len(indices), per_chunk):
                idx = indices[start : start + per_chunk]
                out = buffer[: len(idx)]
                if self.stacked is not None:
                    np.copyto(out, self.stacked[idx[0] : idx[-1] + 1], casting="unsafe")
                else:
                    for k, i in enumerate(idx):
                        np.copyto(out[k], self.items[i], casting="unsafe")
                yield idx, out

    def image(self, i: int) -> np.ndarray:
        """The ``i``-th image as given (no copy)."""
        return self.stacked[i] if self.stacked is not None else self.items[i]


def check_fraction(value: object, *, param: str, owner: str, upper: float) -> float:
    """Validate a float in ``(0, upper]``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not 0 < value <= upper
    ):
        raise ValueError(
            f"The {param!r} parameter of {owner} must be a float in (0, {upper}]. "
            f"Got {value!r} instead."
        )
    return float(value)


def check_real_dtype(array: np.ndarray, where: str, owner: str) -> None:
    """Raise a ValueError naming ``where`` unless ``array`` holds real numbers."""
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{owner}: {where} has dtype {array.dtype}, which is not a real number type. "
            "Pass greyscale intensities (e.g. from claimladder.io.read_image)."
        )


def _check_finite(array: np.ndarray, where: str, owner: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise ValueError(
            f"{owner}: {where} has {bad} non-finite pixel value(s) (NaN or inf). "
            "Replace them first, e.g. with numpy.nan_to_num, or re-read the file."
        )


def _shape_hint(shape: tuple[int, ...]) -> str:
    if len(shape) == 3 and shape[-1] in (3, 4):
        return " It looks like a colour image: convert it to greyscale (read_image does)."
    if len(shape) == 3:
        return " Pass one frame or slice (e.g. read_image(path, frame=0))."
    return ""


def as_image(image: np.ndarray, *, owner: str) -> np.ndarray:
    """Validate one 2D greyscale image and return it as a float64 array."""
    array = np.asarray(image)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(
            f"{owner}: the image must be a non-empty 2D array (H, W). Got shape "
            f"{array.shape} instead.{_shape_hint(array.shape)}"
        )
    check_real_dtype(array, "the image", owner)
    _check_finite(array, "the image", owner)
    return array.astype(np.float64, copy=False)


def as_image_batch(images: Images, *, owner: str, check_finite: bool = True) -> ImageBatch:
    """Validate a batch of 2D images and group the indices by shape.

    Raises
    ------
    ValueError
        Not a sequence of 2D real-valued arrays / an ``(N, H, W)`` array, or an
        image with NaN or infinite values. The message names the image index.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 3:
            hint = " For a single image pass [image]." if images.ndim == 2 else ""
            raise ValueError(
                f"{owner}: 'images' must be a sequence of 2D arrays or one (N, H, W) array. "
                f"Got an array of shape {images.shape} instead.{hint}"
            )
        if len(images) and min(images.shape[1:]) < 1:
            raise ValueError(f"{owner}: the images are empty (shape {images.shape}).")
        check_real_dtype(images, "'images'", owner)
        if check_finite and images.dtype.kind == "f" and images.size:
            finite = np.isfinite(images).reshape(len(images), -1).all(axis=1)
            if not finite.all():
                first = int(np.flatnonzero(~finite)[0])
                _check_finite(images[first], f"image {first}", owner)
        groups = {} if not len(images) else {
            (images.shape[1], images.shape[2]): np.arange(len(images))
        }
        return ImageBatch(stacked=images, items=None, groups=groups)
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise ValueError(
            f"{owner}: 'images' must be a sequence of 2D arrays or one (N, H, W) array. "
            f"Got {type(images).__name__} instead."
        )
    items = []
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim != 2 or min(array.shape) < 1:
            raise ValueError(
                f"{owner}: image {i} must be a non-empty 2D array (H, W). Got shape "
                f"{array.shape} instead.{_shape_hint(array.shape)}"
            )
        check_real_dtype(array, f"image {i}", owner)
        if check_finite:
            _check_finite(array, f"image {i}", owner)
        items.append(array)
        by_shape.setdefault(array.shape, []).append(i)
    groups = {shape: np.asarray(idx, dtype=np.intp) for shape, idx in by_shape.items()}
    return ImageBatch(stacked=None, items=items, groups=groups)
