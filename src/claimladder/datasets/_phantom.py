"""Chest-radiograph-like phantoms, rendered many at a time with numpy.

The renderer works in three stages, all vectorized over a batch of images:

1. *Anatomy* -> a projected tissue-density map (body, lungs, heart,
   mediastinum, spine, ribs, clavicles, diaphragm, optional focal opacity).
2. *Acquisition* -> transmitted-photon statistics: the log signal gets
   quantum noise whose variance grows where fewer photons arrive, optionally
   spatially correlated (a vendor's noise texture), after a blur that sets the
   effective resolution.
3. *Processing* -> a window and gamma curve map the log signal to display
   values in [0, 1]; a per-image detector gain and offset follow; markers and
   burned-in text are drawn last, as a modality does.

Coordinates are normalised: ``x`` and ``y`` run from -1 to 1 across the image
(``y`` downwards, ``x`` to the image right, which is the patient's left on a
PA view). Lengths given in pixels refer to a 128-pixel image and scale with
the image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._glyphs import render_text_mask

__all__ = [
    "ANATOMY_KEYS",
    "Acquisition",
    "acquire",
    "add_devices",
    "apply_exposure_ramp",
    "draw_marker",
    "draw_text",
    "perturb_anatomy",
    "render_density",
    "sample_anatomy",
]

# Projected density -> log attenuation; the window maps log signal to display.
_MU = 2.5
_WINDOW_HIGH = 4.2
_PHOTONS = 3000.0

ANATOMY_KEYS = (
    "dx", "dy", "scale", "rot",
    "body_w", "lung_x", "lung_y", "lung_ax", "lung_ay", "lung_asym",
    "heart_x", "heart_y", "heart_w", "heart_h",
    "med_w", "rib_spacing", "rib_curve", "rib_phase", "clav_y", "dome", "dome_right",
    "knob", "habitus", "ramp_angle", "ramp",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Acquisition:
    """How one device and protocol turn anatomy into pixels.

    Parameters
    ----------
    dose : float
        Relative photon count; the quantum-noise standard deviation scales
        with ``1 / sqrt(dose)``.
    noise_corr_px : float
        Gaussian correlation length of the noise (pixels at 128 px); 0 is
        white noise.
    blur_px : float
        Gaussian blur (pixels at 128 px) standing for the effective
        resolution of detector and processing.
    gamma : float
        Exponent of the display curve applied to the windowed log signal.
    gain : float
        Detector gain applied to display values (before 12-bit storage).
    offset : float
        Display offset, as a fraction of the 12-bit range.
    """

    dose: float = 1.0
    noise_corr_px: float = 0.0
    blur_px: float = 0.6
    gamma: float = 1.0
    gain: float = 0.92
    offset: float = 0.03


def _normal(rng: np.random.Generator, mean: float, sd: float, n: int) -> np.ndarray:
    return rng.normal(mean, sd, n).astype(np.float64)


def sample_anatomy(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw ``n`` independent patients' anatomy and positioning parameters."""
    return {
        "dx": _normal(rng, 0.0, 0.02, n),
        "dy": _normal(rng, 0.0, 0.02, n),
        "scale": np.clip(_normal(rng, 1.0, 0.035, n), 0.9, 1.1),
        "rot": _normal(rng, 0.0, 0.015, n),
        "body_w": rng.uniform(0.80, 0.93, n),
        "lung_x": _normal(rng, 0.37, 0.02, n),
        "lung_y": _normal(rng, -0.08, 0.03, n),
        "lung_ax": _normal(rng, 0.27, 0.02, n),
        "lung_ay": _normal(rng, 0.56, 0.04, n),
        "lung_asym": _normal(rng, 0.0, 0.03, n),
        "heart_x": _normal(rng, 0.12, 0.03, n),
        "heart_y": _normal(rng, 0.15, 0.03, n),
        "heart_w": _normal(rng, 0.27, 0.03, n),
        "heart_h": _normal(rng, 0.20, 0.02, n),
        "med_w": _normal(rng, 0.11, 0.012, n),
        "rib_spacing": _normal(rng, 0.165, 0.012, n),
        "rib_curve": _normal(rng, 0.38, 0.05, n),
        "rib_phase": rng.uniform(0.0, 1.0, n),
        "clav_y": _normal(rng, -0.60, 0.03, n),
        "dome": _normal(rng, 0.30, 0.04, n),
        "dome_right": _normal(rng, 0.08, 0.04, n),
        "knob": np.clip(_normal(rng, 0.06, 0.015, n), 0.02, 0.1),
        "habitus": np.clip(_normal(rng, 1.0, 0.08, n), 0.8, 1.25),
        **_exposure(rng, n),
    }


def _exposure(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Exposure non-uniformity (anode heel, detector) of one exposure each: a gentle ramp."""
    return {
        "ramp_angle": rng.uniform(0.0, 2.0 * np.pi, n),
        "ramp": rng.uniform(0.0, 0.06, n),
    }


def perturb_anatomy(
    anatomy: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A follow-up of the same patients: same anatomy, new positioning and inspiration."""
    n = len(anatomy["dx"])
    out = {key: value.copy() for key, value in anatomy.items()}
    out["dx"] = out["dx"] + _normal(rng, 0.0, 0.02, n)
    out["dy"] = out["dy"] + _normal(rng, 0.0, 0.02, n)
    out["scale"] = np.clip(out["scale"] * _normal(rng, 1.0, 0.015, n), 0.85, 1.15)
    out["rot"] = out["rot"] + _normal(rng, 0.0, 0.012, n)
    out["lung_ay"] = out["lung_ay"] * _normal(rng, 1.0, 0.025, n)
    out["dome"] = out["dome"] + _normal(rng, 0.0, 0.02, n)
    out["rib_phase"] = out["rib_phase"] + _normal(rng, 0.0, 0.05, n)
    out.update(_exposure(rng, n))
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _col(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)[:, None, None]


def render_density(
    anatomy: dict[str, np.ndarray],
    *,
    view: np.ndarray,
    lesion_x: np.ndarray,
    lesion_y: np.ndarray,
    lesion_sigma: np.ndarray,
    lesion_contrast: np.ndarray,
    size: int,
) -> np.ndarray:
    """Project anatomy (and focal opacities) to a density map, shape (n, size, size).

    ``view`` holds ``'PA'``, ``'AP'`` or ``'LL'`` per image. Lesion
    coordinates are in the patient frame (normalised units, before
    positioning); ``lesion_contrast`` 0 means no lesion.
    """
    view = np.asarray(view)
    g = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    yy, xx = g[None, :, None], g[None, None, :]
    a = {key: _col(value) for key, value in anatomy.items()}
    is_ap = _col(view == "AP")
    is_ll = _col(view == "LL")
    # Positioning: the patient frame is the image frame shifted, scaled, rotated.
    xs = (xx - a["dx"]) / a["scale"]
    ys = (yy - a["dy"]) / a["scale"]
    cos, sin = np.cos(a["rot"]), np.sin(a["rot"])
    x = cos * xs + sin * ys
    y = -sin * xs + cos * ys
    edge = np.float32(0.035)

    body_w = a["body_w"] * (1.0 + 0.08 * is_ll)
    body_r = np.abs(x) / body_w
    thickness = np.sqrt(np.clip(1.0 - body_r**2, 0.0, 1.0)) * _sigmoid((1.0 - body_r) / edge)
    # Shoulders: the body narrows above the clavicles.
    shoulder = _sigmoid((y + 0.95) / 0.05)
    density = 1.05 * a["habitus"] * thickness * shoulder

    # Frontal views: two lungs; lateral: one overlapping lung field.
    heart_w = a["heart_w"] * (1.0 + 0.15 * is_ap)
    lung_ay = a["lung_ay"] * (1.0 - 0.05 * is_ap)
    lungs = np.zeros_like(density)
    for side in (-1.0, 1.0):
        cx = side * a["lung_x"] + a["lung_asym"]
        cy = a["lung_y"]
        ax = a["lung_ax"] * (1.0 - 0.08 * (side > 0))
        r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / lung_ay) ** 2)
        # the right hemidiaphragm (image left on a frontal view) sits higher
        dome = a["dome"] - a["dome_right"] * (side < 0)
        dia = cy + lung_ay * (dome + 0.35 + 0.3 * ((x - cx) / ax) ** 2)
        lungs = lungs + _sigmoid((1.0 - r) / 0.06) * _sigmoid((dia - y) / edge)
    r_ll = np.sqrt(((x - 0.03) / (a["lung_ax"] * 1.55)) ** 2 + ((y - a["lung_y"]) / lung_ay) ** 2)
    dia_ll = a["lung_y"] + lung_ay * (a["dome"] + 0.35 + 0.2 * (x / 0.5) ** 2)
    lung_ll = _sigmoid((1.0 - r_ll) / 0.06) * _sigmoid((dia_ll - y) / edge)
    lungs = (1.0 - is_ll) * lungs + is_ll * lung_ll
    density = density - 0.62 * lungs * thickness

    hx = (1.0 - is_ll) * a["heart_x"] + is_ll * (a["heart_x"] - 0.35)
    heart_r = np.sqrt(((x - hx) / heart_w) ** 2 + ((y - a["heart_y"]) / a["heart_h"]) ** 2)
    density = density + 0.5 * _sigmoid((1.0 - heart_r) / 0.12)
    med = _sigmoid((a["med_w"] - np.abs(x - 0.02)) / edge) * _sigmoid((a["heart_y"] - y) / 0.1)
    density = density + 0.30 * med * (1.0 - is_ll)
    knob_r = np.sqrt((x - 0.13) ** 2 + (y + 0.3) ** 2) / a["knob"]
    density = density + 0.3 * _sigmoid((1.0 - knob_r) / 0.15) * (1.0 - is_ll)
    spine_x = is_ll * 0.52
    spine = _sigmoid((0.07 - np.abs(x - spine_x)) / 0.02) * _sigmoid((0.9 - y) / 0.05)
    density = density + 0.22 * spine

    phase = (y - a["rib_curve"] * x**2) / a["rib_spacing"] + a["rib_phase"]
    ribs = np.maximum(np.cos(2.0 * np.pi * phase), 0.0) ** 4
    thorax = _sigmoid((0.93 * body_w - np.abs(x)) / edge) * _sigmoid((0.42 - y) / 0.06)
    density = density + 0.16 * ribs * thorax * _sigmoid((y + 0.88) / 0.04)

    clav_y0 = a["clav_y"] - 0.05 * is_ap
    ax_ = np.abs(x)
    clav_centre = clav_y0 - 0.22 * (ax_ - 0.08)
    clav_band = np.exp(-0.5 * ((y - clav_centre) / 0.028) ** 2)
    clav_span = _sigmoid((ax_ - 0.08) / 0.02) * _sigmoid((0.68 - ax_) / 0.03)
    density = density + 0.28 * clav_band * clav_span * (1.0 - is_ll)

    sig = _col(np.maximum(lesion_sigma, 1e-3))
    lr2 = (x - _col(lesion_x)) ** 2 + (y - _col(lesion_y)) ** 2
    density = density + _col(lesion_contrast) * np.exp(-0.5 * lr2 / sig**2)
    return np.clip(density, 0.0, None).astype(np.float32)


def add_devices(density: np.ndarray, present: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add bedside support devices to selected density maps, in place.

    Each selected image gets three to five ECG electrodes (small dense discs
    with a metal snap, anywhere over the chest, lungs included) and an
    endotracheal tube (a thin dense line down the midline), as on portable
    intensive-care films. Returns the (n, 3) electrode count, column and row
    of the first electrode for the record.
    """
    n, size = density.shape[0], density.shape[-1]
    px = size / 128.0
    rows = np.arange(size)[:, None]
    cols = np.arange(size)[None, :]
    info = np.zeros((n, 3))
    for i in np.flatnonzero(present):
        k = int(rng.integers(3, 6))
        cy = rng.uniform(0.15, 0.65, k) * size
        cx = rng.uniform(0.12, 0.88, k) * size
        for j in range(k):
            r2 = (rows - cy[j]) ** 2 + (cols - cx[j]) ** 2
            density[i] += np.float32(0.55) * (r2 < (3.2 * px) ** 2)
        info[i] = (k, cx[0], cy[0])
        tube_x = size / 2 + rng.normal(0.0, 1.5 * px)
        tube_end = rng.uniform(0.3, 0.42) * size
        line = (np.abs(cols - tube_x) < 1.0 * px) & (rows < tube_end)
        density[i] += np.float32(0.35) * line
    return info


def _group_filter(
    stack: np.ndarray, sigmas_px: np.ndarray, *, normalise_noise: bool = False
) -> np.ndarray:
    """Gaussian-filter each image with its own sigma, one call per distinct sigma."""
    out = stack.copy()
    rounded = np.round(np.asarray(sigmas_px, dtype=np.float64), 3)
    for s in np.unique(rounded):
        if s <= 0:
            continue
        idx = np.flatnonzero(rounded == s)
        filtered = ndimage.gaussian_filter(stack[idx], sigma=(0.0, s, s), mode="reflect")
        if normalise_noise:
            # A 2-D Gaussian of sigma s keeps 1 / (4 pi s^2) of white-noise variance.
            filtered = filtered * np.float32(np.sqrt(4.0 * np.pi) * s)
        out[idx] = filtered
    return out


def acquire(
    density: np.ndarray,
    *,
    dose: np.ndarray,
    noise_corr_px: np.ndarray,
    blur_px: np.ndarray,
    gamma: np.ndarray,
    gain: np.ndarray,
    offset: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Turn density maps into display values in [0, 1] (before markers and storage).

    Per-image arrays give each image its acquisition; pixel lengths refer to a
    128-pixel image and are scaled to ``density.shape[-1]``.
    """
    n, size = density.shape[0], density.shape[-1]
    px = size / 128.0
    log_signal = _MU * _group_filter(density, np.asarray(blur_px) * px)
    photons = _PHOTONS * _col(dose) * np.exp(-log_signal)
    white = rng.standard_normal((n, size, size), dtype=np.float32)
    noise = _group_filter(white, np.asarray(noise_corr_px) * px, normalise_noise=True)
    log_signal = log_signal + noise / np.sqrt(photons)
    display = np.clip(log_signal / _WINDOW_HIGH, 0.0, 1.0) ** _col(gamma)
    return (_col(offset) + _col(gain) * display).astype(np.float32)


def apply_exposure_ramp(display: np.ndarray, anatomy: dict[str, np.ndarray]) -> None:
    """Multiply each image by its exposure ramp ``1 + ramp * (direction . xy)``, in place."""
    size = display.shape[-1]
    g = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    angle, ramp = _col(anatomy["ramp_angle"]), _col(anatomy["ramp"])
    display *= 1.0 + ramp * (np.cos(angle) * g[None, None, :] + np.sin(angle) * g[None, :, None])


def draw_marker(
    display: np.ndarray, present: np.ndarray, *, shift: np.ndarray, value: float = 0.97
) -> None:
    """Draw a lead 'L' side marker in the upper-left corner of selected images, in place.

    ``shift`` is an (n, 2) integer array of row/column offsets in pixels at 128 px.
    """
    size = display.shape[-1]
    px = size / 128.0
    for i in np.flatnonzero(present):
        r0 = round((5 + shift[i, 0]) * px)
        c0 = round((6 + shift[i, 1]) * px)
        h, w, t = round(11 * px), round(8 * px), max(1, round(3 * px))
        display[i, r0 : r0 + h, c0 : c0 + t] = value
        display[i, r0 + h - t : r0 + h, c0 : c0 + w] = value


def draw_text(display: np.ndarray, present: np.ndarray, text: str, *, value: float = 1.0) -> None:
    """Burn ``text`` into the upper-right corner of selected images, in place."""
    size = display.shape[-1]
    mask = render_text_mask(text, scale=max(1, size // 128))
    h, w = mask.shape
    r0, c0 = max(1, size // 32), max(0, size - w - max(1, size // 32))
    w = min(w, size - c0)
    region = display[:, r0 : r0 + h, c0 : c0 + w]
    sel = np.flatnonzero(present)
    region[sel] = np.where(mask[None, :, :w], np.float32(value), region[sel])
