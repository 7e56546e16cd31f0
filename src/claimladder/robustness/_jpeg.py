"""Lossy JPEG export (PACS exports, teleradiology, screenshots)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ._base import Perturbation, RandomPerturbation, check_range

__all__ = ["JpegCompression", "RandomJpegCompression"]


def _check_quality(value: Any, owner: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not 1 <= value <= 100:
        raise ValueError(f"The 'quality' parameter of {owner} must be an int in [1, 100] or None "
                         f"(no compression). Got {value!r} instead.")
    return int(value)


def jpeg_roundtrip(image: np.ndarray, quality: int, lo: float, hi: float) -> np.ndarray:
    """Encode a 2D image as an 8-bit greyscale JPEG at ``quality`` and decode it."""
    from PIL import Image

    width = hi - lo
    codes = np.clip(np.rint((image - lo) * (255.0 / width)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(codes, mode="L").save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        values = np.asarray(decoded, dtype=np.float64)
    return lo + values * (width / 255.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class JpegCompression(Perturbation):
    """Export to an 8-bit JPEG and back.

    Parameters
    ----------
    quality : int or None, default 75
        Pillow's JPEG quality (1-100); None leaves the image unchanged.

    Notes
    -----
    Each image is windowed to 8 bits over its own minimum..maximum (the
    quantisation of a PACS or screenshot export), JPEG-encoded with Pillow
    and mapped back to the original intensity range. Volumes are encoded
    slice by slice along the first axis with the volume's window. Even
    ``quality=100`` is lossy (8-bit quantisation, chroma-free DCT rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.robustness import JpegCompression
    >>> x = np.random.default_rng(0).random((1, 32, 32))
    >>> y = JpegCompression(quality=10)(x)
    >>> y.shape, bool(np.abs(y - x).mean() > 0.05)
    ((1, 32, 32), True)
    """

    quality: int | None = 75

    name: ClassVar[str] = "jpeg"
    severity_parameters: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"quality": q} for q in (None, 90, 70, 50, 30, 10))

    def __post_init__(self) -> None:
        object.__setattr__(self, "quality", _check_quality(self.quality, type(self).__name__))

    @property
    def is_identity(self) -> bool:
        return self.quality is None

    @classmethod
    def _kernel(cls, batch, params, seeds):
        lo, hi = batch.bounds()
        out = batch.work.copy()
        for i, quality in enumerate(params["quality"]):
            if quality is None or hi[i] <= lo[i]:
                continue
            image = batch.work[i]
            if batch.spatial_dims == 2:
                out[i] = jpeg_roundtrip(image, quality, lo[i], hi[i])
            else:
                for k in range(image.shape[0]):
                    out[i, k] = jpeg_roundtrip(image[k], quality, lo[i], hi[i])
        return out, {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomJpegCompression(RandomPerturbation):
    """JPEG export with the quality drawn uniformly (inclusive) for each image.

    Parameters
    ----------
    quality : (int, int), default (30, 95)
        Inclusive range of Pillow's quality.
    """

    quality: tuple[int, int] = (30, 95)
    deterministic: ClassVar[type[Perturbation]] = JpegCompression

    def __post_init__(self) -> None:
        low, high = check_range(self.quality, param="quality", owner=type(self).__name__,
                                lower=1.0, upper=100.0)
        object.__setattr__(self, "quality", (int(low), int(high)))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"quality": int(rng.integers(self.quality[0], self.quality[1] + 1))}
