"""Small, intensity-normalised copies of images for embeddings, probes and display."""

from __future__ import annotations

import numpy as np

from .._core import check_positive_int
from ._batch import _CHUNK_PIXELS, Images, as_image_batch, single_blas_thread
from ._resample import area_matrix

__all__ = ["robust_normalize", "thumbnails"]

#: Percentiles mapped to 0 and 1 by the robust normalisation.
NORMALIZE_PERCENTILES = (1.0, 99.0)


def robust_normalize(chunk: np.ndarray) -> np.ndarray:
    """Map each image's 1st..99th percentile to [0, 1] and clip, in place.

    Images whose 1st and 99th percentiles coincide (mostly constant, e.g.
    a small bright marker on a flat background) use their minimum and
    maximum instead; constant images become 0.
    """
    flat = chunk.reshape(len(chunk), -1)
    lo, hi = np.percentile(flat, NORMALIZE_PERCENTILES, axis=1)
    flat_range = hi <= lo
    if flat_range.any():
        lo[flat_range] = flat[flat_range].min(axis=1)
        hi[flat_range] = flat[flat_range].max(axis=1)
    span = hi - lo
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
    flat -= lo[:, None]
    flat *= scale[:, None]
    np.clip(flat, 0.0, 1.0, out=flat)
    return chunk


def thumbnails(images: Images, *, size: int = 32) -> np.ndarray:
    """Area-averaged ``size x size`` thumbnails after robust intensity normalisation.

    Parameters
    ----------
    images : sequence of 2D array-like, or numpy.ndarray of shape (N, H, W)
        Greyscale images of any shapes and real dtype.
    size : int, default=32
        Side of the square thumbnail in pixels.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(N, size, size)``, values in [0, 1].

    Raises
    ------
    ValueError
        An image is not 2D or has NaN/inf pixels, or ``size`` < 1.

    Notes
    -----
    Each image is first normalised on its own: its 1st percentile maps to 0
    and its 99th to 1, values outside are clipped (robust to hot pixels and
    burned-in text, and comparable across scanners with different intensity
    scales); images with equal percentiles use min and max, constant images
    become 0. It is then resized by exact area averaging (each output pixel
    is the mean of the input area it covers, fractional pixels weighted by
    overlap), which does not alias. The aspect ratio is not preserved.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import thumbnails
    >>> image = np.zeros((64, 96))
    >>> image[:, 48:] = 1000.0
    >>> t = thumbnails([image, image[:40]], size=4)
    >>> t.shape, t.dtype
    ((2, 4, 4), dtype('float32'))
    >>> t[0, 0].tolist()
    [0.0, 0.0, 1.0, 1.0]
    """
    size = check_positive_int(size, param="size", owner="thumbnails")
    batch = as_image_batch(images, owner="thumbnails")
    out = np.empty((len(batch), size, size), dtype=np.float32)
    with single_blas_thread(batch.n_pixels > 4 * _CHUNK_PIXELS):
        for idx, chunk in batch.chunks():
            c, h, w = chunk.shape
            robust_normalize(chunk)
            rows = area_matrix(h, size).astype(np.float32)
            cols_t = np.ascontiguousarray(area_matrix(w, size).T, dtype=np.float32)
            resized = np.matmul(rows, (chunk.reshape(c * h, w) @ cols_t).reshape(c, h, size))
            out[idx] = np.clip(resized, 0.0, 1.0)
    return out
