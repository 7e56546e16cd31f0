"""Synthetic radiograph-like sets with (or without) a planted corner marker and a site effect."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

SIZE = 128
_YY, _XX = np.mgrid[:SIZE, :SIZE]
BODY = 0.1 + 0.6 * np.exp(-((_YY - 64.0) ** 2 / 1800.0 + (_XX - 64.0) ** 2 / 1200.0))
LESION = np.exp(-((_YY - 60.0) ** 2 + (_XX - 44.0) ** 2) / 60.0)


@dataclass
class SyntheticSet:
    images: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    site: np.ndarray
    ids: np.ndarray
    marker: np.ndarray


def draw_marker(image: np.ndarray, dy: int = 0, dx: int = 0) -> None:
    """A lead 'L' (11 x 8 px, strokes 3 px) in the upper-left corner, as the demo draws it."""
    r0, c0 = 5 + dy, 6 + dx
    image[r0:r0 + 11, c0:c0 + 3] = 1.0
    image[r0 + 8:r0 + 11, c0:c0 + 8] = 1.0


def make_set(n_patients: int = 60, *, marker: bool = True, site_offset: float = 0.0,
             prevalence=(0.5, 0.5), seed: int = 0) -> SyntheticSet:
    """Two images per patient; half the patients at site A, half at B.

    Positives carry a faint lesion. With ``marker``, 85 % of positive and 7 % of negative
    images at site A get the corner marker (the demo's planted shortcut). Site B images are
    brighter by ``site_offset``.
    """
    rng = np.random.default_rng(seed)
    site_p = np.where(np.arange(n_patients) % 2 == 0, "A", "B")
    label_p = (rng.random(n_patients) < np.where(site_p == "A", *prevalence)).astype(int)
    y, site = np.repeat(label_p, 2), np.repeat(site_p, 2)
    groups = np.repeat([f"P{i:03d}" for i in range(n_patients)], 2)
    n = y.size
    contrast = rng.uniform(0.03, 0.12, n) * y
    images = (BODY + contrast[:, None, None] * LESION
              + 0.02 * rng.standard_normal((n, SIZE, SIZE)))
    images[site == "B"] += site_offset
    has_marker = np.zeros(n, dtype=bool)
    if marker:
        p = np.where(y == 1, 0.85, 0.07)
        has_marker = (site == "A") & (rng.random(n) < p)
        for i in np.flatnonzero(has_marker):
            draw_marker(images[i], *rng.integers(-2, 3, 2))
    ids = np.array([f"IMG{i:04d}" for i in range(n)])
    return SyntheticSet(images.astype(np.float32), y, groups, site, ids, has_marker)


def lesion_excess(x: np.ndarray) -> np.ndarray:
    """Mean excess over the body template where the lesion sits."""
    return (x - BODY)[:, 54:66, 38:50].mean(axis=(1, 2))


def anatomy_model(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-150 * (lesion_excess(x) - 0.04)))


def shortcut_model(x: np.ndarray) -> np.ndarray:
    """Mostly the corner marker, a little anatomy: what a shortcut learner ends up with."""
    corner = x[:, :24, :24].max(axis=(1, 2))
    return 1 / (1 + np.exp(-(12 * (corner - 0.6) + 40 * (lesion_excess(x) - 0.04))))


@pytest.fixture(scope="session")
def planted() -> SyntheticSet:
    return make_set(marker=True, site_offset=0.08, prevalence=(0.75, 0.2), seed=0)


@pytest.fixture(scope="session")
def clean() -> SyntheticSet:
    return make_set(marker=False, site_offset=0.0, seed=1)


@pytest.fixture(scope="session")
def models() -> dict:
    """The two hand-written models: anatomy-only and shortcut-prone."""
    return {"anatomy": anatomy_model, "shortcut": shortcut_model}
