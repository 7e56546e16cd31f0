"""A prediction cache keyed by image content, perturbation, severity and seed.

Robustness and masking checks score the same images under many
perturbations; the expensive part is inference. A key names the *source*
image (a content hash), the perturbation and its parameters, the severity and
the seed, so a cached prediction also saves the perturbation itself: a rerun
of a stress test with the same seed reads every score back without touching a
pixel.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._core import atomic_write_bytes, atomic_write_text

__all__ = ["CacheKey", "PredictionCache", "image_digests"]

_SHARD_PREFIX = "shard-"
_FORMAT_VERSION = 1


def image_digests(images: np.ndarray | Sequence[np.ndarray]) -> list[str]:
    """SHA-256 hex digest of each image's dtype, shape and C-ordered pixel bytes.

    Parameters
    ----------
    images : numpy.ndarray of shape (N, ...) or sequence of arrays
        One entry per image (2D or 3D, any real dtype).

    Returns
    -------
    list of str
        64 hex digits per image; equal digests mean identical arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.models import image_digests
    >>> a = np.zeros((2, 4, 4), dtype=np.float32)
    >>> d = image_digests(a)
    >>> d[0] == d[1], len(d[0])
    (True, 64)
    """
    out = []
    for image in images:
        array = np.ascontiguousarray(image)
        digest = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
        digest.update(memoryview(array).cast("B"))
        out.append(digest.hexdigest())
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheKey:
    """What one cached prediction was computed from.

    Parameters
    ----------
    image : str
        Content digest of the source (unperturbed) image, see :func:`image_digests`;
        combined with a digest of the metadata row for models that take metadata.
    perturbation : str, default "none"
        Canonical description of the perturbation, e.g.
        ``"gaussian_noise(sigma=0.02)"``; ``"none"`` for the clean image.
    severity : int, default 0
        Severity level of the perturbation.
    seed : int or None, default None
        Root seed of the perturbation's random draws (None for deterministic ones).
    """

    image: str
    perturbation: str = "none"
    severity: int = 0
    seed: int | None = None

    @property
    def token(self) -> str:
        """A 32-hex-digit digest of all four fields (the on-disk key)."""
        text = f"{self.image}|{self.perturbation}|{int(self.severity)}|{self.seed}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class PredictionCache:
    """Predictions by :class:`CacheKey`, in memory and optionally in a folder.

    Parameters
    ----------
    directory : str or path-like, optional
        Folder for the persistent cache; created when missing. Without it the
        cache lives in memory only.
    namespace : str, default ""
        Model fingerprint (see :attr:`ModelAdapter.fingerprint`); entries of
        different namespaces never mix, so one folder can serve several models.

    Notes
    -----
    On disk every :meth:`put` writes one ``.npz`` shard (the keys' tokens and
    the values) under ``directory/<namespace digest>/`` through a temporary
    file and an atomic rename, so concurrent runs sharing the folder never
    read a half-written shard and never overwrite each other's work; a lookup
    that misses re-scans the folder for shards other runs wrote since. Values
    are stored as float64 arrays of shape ``(n, K)``. A shard that cannot be
    read (e.g. truncated by a full disk) is skipped, and its entries are
    recomputed.

    Examples
    --------
    >>> import numpy as np
    >>> from claimladder.models import CacheKey, PredictionCache
    >>> cache = PredictionCache()
    >>> keys = [CacheKey(image="a"), CacheKey(image="b")]
    >>> cache.put(keys[:1], np.array([[0.3]]))
    >>> values, hit = cache.get(keys)
    >>> hit.tolist(), float(values[0, 0])
    ([True, False], 0.3)
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 namespace: str = "") -> None:
        self.namespace = str(namespace)
        self._memory: dict[str, np.ndarray] = {}
        self._seen_shards: set[str] = set()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        if directory is None:
            self.directory: Path | None = None
        else:
            ns = hashlib.sha256(self.namespace.encode()).hexdigest()[:16]
            self.directory = Path(directory) / ns
            self.directory.mkdir(parents=True, exist_ok=True)
            meta = self.directory / "namespace.json"
            if not meta.exists():
                atomic_write_text(meta, json.dumps(
                    {"namespace": self.namespace, "format_version": _FORMAT_VERSION},
                    indent=2, sort_keys=True) + "\n")
            self._scan()

    def __len__(self) -> int:
        return len(self._memory)

    def __repr__(self) -> str:
        where = "memory" if self.directory is None else str(self.directory)
        return f"PredictionCache({where!r}, entries={len(self)}, hits={self.hits}, " \
               f"misses={self.misses})"

    def _scan(self) -> None:
        if self.directory is None:
            return
        for path in sorted(self.directory.glob(f"{_SHARD_PREFIX}*.npz")):
            if path.name in self._seen_shards:
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    tokens, values = data["tokens"], data["values"]
            except (OSError, ValueError, KeyError):
                continue  # unreadable shard: its entries will be recomputed
            self._seen_shards.add(path.name)
            for token, value in zip(tokens.tolist(), values, strict=True):
                self._memory.setdefault(token, value)

    def get(self, keys: Sequence[CacheKey]) -> tuple[np.ndarray | None, np.ndarray]:
        """Look up ``keys``.

        Returns
        -------
        values : numpy.ndarray of shape (n, K) or None
            Cached values, NaN rows where missing; None when nothing was found.
        hit : numpy.ndarray of bool, shape (n,)
            Which keys were found.
        """
        tokens = [k.token for k in keys]
        with self._lock:
            if self.directory is not None and any(t not in self._memory for t in tokens):
                self._scan()
            found = [self._memory.get(t) for t in tokens]
        hit = np.array([v is not None for v in found], dtype=bool)
        self.hits += int(hit.sum())
        self.misses += int((~hit).sum())
        if not hit.any():
            return None, hit
        width = max(v.shape[0] for v in found if v is not None)
        values = np.full((len(keys), width), np.nan)
        for i, v in enumerate(found):
            if v is not None and v.shape[0] == width:
                values[i] = v
            elif v is not None:
                hit[i] = False
        return values, hit

    def put(self, keys: Sequence[CacheKey], values: np.ndarray) -> None:
        """Store ``values`` (shape ``(n,)`` or ``(n, K)``) under ``keys``."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.shape[0] != len(keys):
            raise ValueError(f"PredictionCache.put got {len(keys)} keys but {values.shape[0]} "
                             "rows of values; pass one row per key.")
        tokens = [k.token for k in keys]
        with self._lock:
            for token, value in zip(tokens, values, strict=True):
                self._memory[token] = value
        if self.directory is None or not tokens:
            return
        buffer = io.BytesIO()
        np.savez(buffer, tokens=np.asarray(tokens, dtype="<U32"), values=values)
        name = f"{_SHARD_PREFIX}{hashlib.sha256(''.join(tokens).encode()).hexdigest()[:24]}.npz"
        atomic_write_bytes(self.directory / name, buffer.getvalue())
        with self._lock:
            self._seen_shards.add(name)

    def clear(self) -> None:
        """Forget the in-memory entries (files on disk are kept)."""
        with self._lock:
            self._memory.clear()
            self._seen_shards.clear()
