"""Images for the perturbation tests: a real photograph and a smooth synthetic volume."""

from __future__ import annotations

import numpy as np
import pytest


def _area_resize(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    return image[: h - h % size, : w - w % size].reshape(
        size, h // size, size, w // size).mean(axis=(1, 3))


@pytest.fixture(scope="session")
def photos() -> np.ndarray:
    """Three 64 x 64 float32 images in [0, 1]: scikit-image's camera, coins and moon."""
    data = pytest.importorskip("skimage.data")
    images = [_area_resize(np.asarray(getattr(data, name)(), dtype=np.float64), 64)
              for name in ("camera", "coins", "moon")]
    return np.stack([(im - im.min()) / (im.max() - im.min()) for im in images]).astype(
        np.float32)


@pytest.fixture(scope="session")
def volumes() -> np.ndarray:
    """Two 12 x 24 x 24 float32 volumes: smooth blobs on a background."""
    z, y, x = np.mgrid[:12, :24, :24].astype(np.float64)
    first = np.exp(-((z - 6) ** 2 / 20 + (y - 12) ** 2 / 40 + (x - 10) ** 2 / 30))
    second = 0.5 * np.exp(-((z - 4) ** 2 / 10 + (y - 8) ** 2 / 20 + (x - 14) ** 2 / 50)) \
        + 0.2 * (x > 16)
    return np.stack([first, second]).astype(np.float32)
