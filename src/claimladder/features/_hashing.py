"""Perceptual (DCT) hashes, their Hamming distances, and exact content hashes."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from .._core import check_positive_int
from ._batch import CHUNK_PIXELS, Images, as_image_batch, single_blas_thread
from ._resample import dct_matrix, lanczos_matrix

__all__ = ["content_hash", "hamming_distance", "perceptual_hash", "popcount64"]


@lru_cache(maxsize=64)
def _phash_projection(in_size: int, hash_size: int, img_size: int) -> np.ndarray:
    # Resizing then taking the first DCT rows is one linear map: fold them so
    # the large product with the image touches only hash_size output columns.
    projection = np.ascontiguousarray(
        (dct_matrix(img_size)[:hash_size] @ lanczos_matrix(in_size, img_size)).astype(np.float32)
    )
    projection.setflags(write=False)
    return projection


def perceptual_hash(images: Images, *, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """DCT perceptual hashes (pHash) of a batch of 2D images.

    Each image is resized to ``hash_size * highfreq_factor`` pixels square
    with Lanczos-3 weights, transformed with a 2D DCT-II, and the
    ``hash_size x hash_size`` lowest frequencies are thresholded at their
    median: bit = coefficient > median. This is the definition of
    ``imagehash.phash`` (imagehash 4.3), computed for the whole batch as
    ``P_h @ X @ P_w.T`` with ``P = DCT[:hash_size] @ Resize``.

    Parameters
    ----------
    images : sequence of 2D array-like, or numpy.ndarray of shape (N, H, W)
        Greyscale images of any shapes and real dtype (e.g. from
        :func:`claimladder.io.read_image`).
    hash_size : int, default=8
        Side of the kept low-frequency block; ``hash_size ** 2`` bits, at most
        64 (so 2 to 8).
    highfreq_factor : int, default=4
        The image is resized to ``hash_size * highfreq_factor`` pixels square
        before the DCT.

    Returns
    -------
    numpy.ndarray
        uint64, shape ``(N,)``. Bit ``hash_size**2 - 1 - k`` holds the
        ``k``-th coefficient in row-major order, so for ``hash_size=8`` the
        value equals ``int(str(imagehash.phash(img)), 16)`` whenever the bits
        agree.

    Raises
    ------
    ValueError
        An image is not 2D, has NaN/inf pixels, or ``hash_size`` is outside
        2..8.

    Notes
    -----
    Differences from ``imagehash.phash``, which first converts to an 8-bit
    PIL image: the intensities keep their full precision (no conversion to
    uint8, no per-pass rounding in the resize), and the arithmetic is float32.
    On 29 scikit-image sample images and DICOM test files (as uint8), 99.2 %
    of the bits agree with ``imagehash.phash`` and 22 of the 29 hashes are
    identical (at most 2 bits differ); the differing bits are coefficients
    within that rounding of the median. Images whose coefficients tie (a
    perfect checkerboard) can differ more.

    Robustness, measured on the same images: JPEG re-encoding (quality
    70-90), brightness shifts of 10-25 grey levels and Gaussian noise (sigma
    2-8) change at most 6 bits; crops of 2-4 % resized back change 0-20
    bits, 84 % of them at most 8. Unrelated images differ by about 32.

    The median threshold makes the hash invariant to positive scaling of the
    intensities, and an offset changes only the DC coefficient (which is
    above the median for non-negative images), so no intensity normalisation
    is needed. BLAS may sum in a different order on another machine, which
    can flip a bit whose coefficient ties the median.

    References
    ----------
    .. [1] N. Krawetz, "Looks Like It", The Hacker Factor Blog, 2011.
    .. [2] J. Buchner, imagehash, ``imagehash.phash``,
       https://github.com/JohannesBuchner/imagehash

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import perceptual_hash, hamming_distance
    >>> y, x = np.mgrid[0:64, 0:64]
    >>> image = np.hypot(x - 20.0, y - 30.0) + 10.0 * np.sin(x * y / 200.0)
    >>> h = perceptual_hash([image, 2.0 * image + 10.0, image[2:62, 2:62], image[::-1]])
    >>> h.dtype, format(h[0], "016x")
    (dtype('uint64'), 'b883ce99b62d4a55')

    Rescaled: identical; cropped: close; flipped: unrelated.

    >>> hamming_distance(h[0], h[1:]).tolist()
    [0, 4, 32]
    """
    owner = "perceptual_hash"
    hash_size = check_positive_int(hash_size, param="hash_size", owner=owner, minimum=2)
    if hash_size > 8:
        raise ValueError(
            f"The 'hash_size' parameter of {owner} must be an int in 2..8 (at most 64 bits). "
            f"Got {hash_size!r} instead."
        )
    highfreq_factor = check_positive_int(highfreq_factor, param="highfreq_factor", owner=owner)
    img_size = hash_size * highfreq_factor
    batch = as_image_batch(images, owner=owner)
    n_bits = hash_size * hash_size
    weights = np.left_shift(np.uint64(1), np.arange(n_bits - 1, -1, -1, dtype=np.uint64))
    out = np.zeros(len(batch), dtype=np.uint64)
    with single_blas_thread(batch.n_pixels > 4 * CHUNK_PIXELS):
        for idx, chunk in batch.chunks():
            c, h, w = chunk.shape
            rows = _phash_projection(h, hash_size, img_size)
            cols_t = _phash_projection(w, hash_size, img_size).T
            low = np.matmul(rows, (chunk.reshape(c * h, w) @ cols_t).reshape(c, h, hash_size))
            low = low.reshape(c, n_bits).astype(np.float64)
            bits = low > np.median(low, axis=1, keepdims=True)
            out[idx] = (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return out


_POPCOUNT16 = np.array([i.bit_count() for i in range(1 << 16)], dtype=np.uint8)


def popcount64_lut(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64, by a 16-bit look-up table (numpy < 2.0)."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    parts = _POPCOUNT16[x.reshape(-1).view(np.uint16)].reshape(*x.shape, 4)
    return parts.sum(axis=-1, dtype=np.uint8)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64 (uint8 result)."""
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(x)
    return popcount64_lut(x)  # pragma: no cover - numpy < 2.0 only


_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")


def as_hashes(hashes: object, *, param: str, owner: str) -> np.ndarray:
    """Hashes as a uint64 array (signed 64-bit input is reinterpreted, not rejected)."""
    array = np.asarray(hashes)
    if array.dtype == np.uint64:
        return array
    if array.dtype == np.int64:
        return array.view(np.uint64)  # hashes stored in int64 columns (Parquet, SQL)
    if array.size == 0:
        return array.astype(np.uint64)
    if array.dtype.kind in "iuO":
        try:
            converted = np.asarray(hashes, dtype=np.uint64)
        except (OverflowError, TypeError, ValueError):
            converted = None
        if converted is not None and (array.dtype.kind != "i" or (array >= 0).all()):
            return converted
    raise ValueError(
        f"The {param!r} parameter of {owner} must hold 64-bit hashes (uint64, as returned "
        f"by perceptual_hash). Got values of dtype {array.dtype} instead."
    )


def hamming_distance(a: object, b: object) -> np.ndarray:
    """Number of differing bits between 64-bit hashes, with broadcasting.

    Parameters
    ----------
    a, b : array-like of uint64
        Hashes from :func:`perceptual_hash` (int64 input is reinterpreted
        bit for bit). Shapes broadcast as in NumPy: ``hamming_distance(h[:,
        None], h[None, :])`` is the full distance matrix.

    Returns
    -------
    numpy.ndarray
        int64 distances in 0..64, the broadcast shape of ``a`` and ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import hamming_distance
    >>> hamming_distance(np.uint64(0b1011), np.array([0, 1, 0b1111], dtype=np.uint64)).tolist()
    [3, 2, 1]
    """
    a = as_hashes(a, param="a", owner="hamming_distance")
    b = as_hashes(b, param="b", owner="hamming_distance")
    return popcount64(np.bitwise_xor(a, b)).astype(np.int64)


def content_hash(images: Images) -> np.ndarray:
    """SHA-256 of each image's pixels: equal digests mean identical images.

    Parameters
    ----------
    images : sequence of 2D array-like, or numpy.ndarray of shape (N, H, W)
        Images of any real dtype; NaN values are allowed.

    Returns
    -------
    numpy.ndarray
        str (64 hex digits), shape ``(N,)``. The digest covers the dtype, the
        shape and the C-ordered pixel bytes, so the same values stored as
        uint8 and as float32 differ (compare images decoded the same way,
        e.g. all through :func:`claimladder.io.read_image`).

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.features import content_hash
    >>> a = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> d = content_hash([a, a.copy(), a.reshape(4, 3)])
    >>> bool(d[0] == d[1]), bool(d[0] == d[2]), len(d[0])
    (True, False, 64)
    """
    batch = as_image_batch(images, owner="content_hash", check_finite=False)
    digests = []
    for i in range(len(batch)):
        image = np.ascontiguousarray(batch.image(i))
        digest = hashlib.sha256(f"{image.dtype.str}|{image.shape}|".encode())
        digest.update(memoryview(image).cast("B"))
        digests.append(digest.hexdigest())
    return np.asarray(digests, dtype="<U64").reshape(len(batch))
