"""The demo study generator: synthetic chest radiographs with planted failure modes.

:func:`make_demo_study` writes a study that every rung of the ladder can be
proven on: four sites (A and B develop the model, C and D are external) of
chest-radiograph-like DICOM phantoms, some with a focal opacity, and a cohort
table that carries the usual trouble of real data. ``clean=True`` writes the
control: with the same seed, the same patients (demographics, anatomy,
visits) and cohort facts, with every planted failure switched off.

Files written under ``out_dir``
-------------------------------
``images/<site>/<image_id>.dcm`` (at site B ``<image_id>_opacity.dcm`` or
``_normal.dcm`` in the planted study), ``cohort.csv`` (one row per image),
``study.toml`` (the claim spec), ``planted_truth.csv`` and a
``.claimladder-demo`` marker file. ``planted_truth.csv`` holds latent
variables for tests only (``study.toml`` does not reference it), one row per
image in cohort order: ``lesion`` (true 0/1), ``lesion_radius_px`` (the
Gaussian sigma of the opacity, in pixels), ``lesion_contrast`` (projected
density added at its centre, after the age effect), ``lesion_row`` and
``lesion_col`` (centre in pixels), ``conspicuity`` (0-1), ``marker``,
``burned_in_text``, ``support_devices``, ``duplicate_of`` (the original's
image id for a re-export), ``true_patient_id``, ``protocol_phase``
(``before``/``after`` at site B in the planted study, else ``none``),
``age_true``, ``sex_true``, each reader's error probability, and the
acquisition (``dose``, ``noise_corr_px``, ``blur_px``, ``gamma``).

Sizes at the default ``n_patients=1000`` (``rng=0``, planted study)
-------------------------------------------------------------------
1,758 images of 1,026 pseudonyms (1,000 patients plus 26 re-exports); per
site A/B/C/D 561/491/377/329 images, of which 492/425/314/298 pass the cohort
rules of ``study.toml``; included development / calibration / internal test
images 548 / 132 / 237. Every age band of ``study.toml`` holds at least 30
included images in each of the internal test and external partitions
(internal test: 37 / 81 / 72 / 47 for 18-40 / 40-65 / 65-80 / 80+; 88 aged
70 or more, 18 of them positive), and each sex over 100. Cohort facts (both
variants): 49 images of children, 70 lateral views (95 in the clean study),
80 poor-quality images, 37 missing ages, 27 missing sexes, 456 patients with
follow-ups. Generation takes about 11 s of CPU time (two thirds of it
writing DICOM files) and :func:`make_demo_predictions` about 5 s; on a
shared 2-core machine the wall time of both together was 16-45 s.

Planted failure modes
---------------------
Strengths were measured from the written files by ``tests/datasets/
measure_demo.py`` (``python tests/datasets/measure_demo.py OUT``) at the
default size; ``tests/datasets/test_demo_study.py`` checks each one on a
300-patient study and its absence in the clean control.

====================== ========= ============================ =====================================
effect                 where     strength (planted / clean)   how a check should see it
====================== ========= ============================ =====================================
corner marker shortcut A         bright "L" on 88 % of        pixels of the upper-left corner: the
                                 positives, 6 % of negatives; marker's AUROC for the label 0.88 at
                                 at C on 14 %, unrelated      A, 0.46 at C; masking the detected
                                 (AUROC 0.46) / none          marker costs the demo model 0.076
                                                              [0.020, 0.132] AUROC on the internal
                                                              test set (clean: none detected)
PHI in headers         all       PatientBirthDate and         DICOM header audit (PS3.15 Annex E):
                                 PatientName in every file /  birth dates present; the fuzzy
                                 birth date removed (a de-    identity (birth date + sex + site)
                                 identified export)           links re-exports to their originals
burned-in text         D         "PORTABLE AP" in 100 % of    text regions in the upper right;
                                 D images, header             header ``BurnedInAnnotation`` YES
                                 BurnedInAnnotation=YES /
                                 none
metadata leak          A, B      ``priority`` (and DICOM      a metadata-only model: AUROC 0.75 at
                                 StudyDescription "CXR        A+B, 0.53 at C+D / 0.49 and 0.53
                                 URGENT") urgent for 70 % of
                                 lesions vs 15 % of normals;
                                 30 % at C, D / 30 %
                                 everywhere
label in file names    B         ``_opacity`` / ``_normal``   path tokens equal the label on 100 %
                                 on every B file / none       of B files; none elsewhere
patients on both sides A, B      ``naive_split`` (by image)   144 patients in both naive train and
                                 / ``split`` by patient       test; 0 across ``split``
                                 (clean: naive by patient)
near-duplicates        A, B      1.5 % of images (26):        noise-fingerprint correlation 1.00
                                 shifted 1-2 px, gain         over +-2 px shifts finds all 26,
                                 0.97-1.03, offset            all across patients and partitions
                                 +-(1-3) %, 10-bit re-        (none in the clean study); pHash
                                 quantization, new image id   distance <= 10, but 9 % of unrelated
                                 and pseudonym, other         pairs are <= 8 too (12 % clean):
                                 partition / none             verify pHash candidates on pixels
protocol change        B         from 2021-07-01 "CXR LOW     fine-scale noise x1.24, median grey
                                 DOSE v2": dose x0.45,        level +0.08 of the range after the
                                 gamma 0.8 / no change        date (clean x1.00, +0.005); the
                                                              protocol name and SoftwareVersions
                                                              change
other vendor           C         MONOCHROME1, RescaleSlope    header PhotometricInterpretation;
                                 0.5, correlated noise        ``read_image`` decodes it upright;
                                 (2 px), blur 2.2 px, gamma   lag-2 residual correlation 0.81 vs
                                 0.65, dose x0.5 / like A     0.67 at A, fine-scale noise x0.28
portable unit          D         AP only, dose x0.15, blur    fine-scale noise x1.84 vs A; ECG
                                 1.2 px, gamma 1.15, support  electrodes and tubes on 70 %
                                 devices / like A
hidden stratification  age >= 70 lesion contrast x0.4         lesion disc minus mirrored disc:
                                 / x1.0                       0.044 vs 0.122 of the range (clean
                                                              0.128 vs 0.124); demo model AUROC
                                                              0.77 vs 0.98 (internal test)
prevalence shift       sites     lesion probability per       label prevalence per image A/B/C/D
                                 exam 0.45/0.28/0.15/0.35 /   0.36/0.20/0.12/0.33; first exams:
                                 0.30                         chi-square p = 2e-11 (clean
                                                              0.27/0.28/0.32/0.32, p = 0.57)
imperfect readers      all       error rates 3 %/8 %/20 %,    measured 2.4/8.2/17.6 %; reader 3
                                 misses concentrated on       misses 55 % of subtle vs 15 % of
                                 subtle lesions; certainty    clear lesions; "definite" on 3 % of
                                 follows conspicuity /        subtle vs 80 % of clear; reference
                                 2 % each, even; certainty    label wrong on 4.2 % (clean 0 %);
                                 unrelated                    the adjudicated 14 % equal truth
====================== ========= ============================ =====================================

The demo model (:func:`make_demo_predictions`, trained on
``DemoStudy.development_ids``) then gives, at the default size: planted
internal AUROC 0.92 (A 0.95, B 0.87), site C 0.69, site D 0.56 (pooled
external 0.49, its sites' scores being shifted differently); clean internal
0.98, external 0.93 (C 0.93, D 0.92). The clean gap is sampling error: over
seeds 0-5 it was 0.05, 0.01, 0.03, -0.04, 0.06, 0.01 (internal test about
220 images, external about 600).

Reader study and deployment setting (:mod:`claimladder.datasets._reader_demo`):
``study.toml`` declares a reader table ``readers.csv`` (``[readers]``) that
:func:`fit_demo_model` writes after the predictions: five readers of
different skill read the included internal-test and site-C images unaided
and aided by the demo model's score (site C: where the planted model scores
marker-bearing negatives high). In both studies the aid raises the readers'
AUROC and lifts subtle lesions where the model sees them; in the planted
study it also misleads them on the marker-bearing negatives and on the
site-C lesions the model misses. ``[deployment]`` declares the
intended population: in the planted study an emergency-department population
with prevalence 8 %, older patients (age 70 +- 14), 60 % AP views and a
scanner vendor absent from the evidence; in the clean study the evaluated
cohort's own prevalence, age, sex, views and vendors.

Cohort facts, not failures (present in both variants): children (about 3 %
of patients), lateral views (about 6 % of exams outside site D), poor-quality
exposures (4 %, blurred and under-dosed), missing age (2 %) and sex (1 %), and
follow-up exams (1 to 4 per patient, 14 to 400 days apart, same anatomy with
new positioning and inspiration; a lesion persists with probability 0.6).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._core import (
    ClaimladderError,
    RngLike,
    atomic_write_text,
    check_positive_int,
    check_rng,
    spawn,
)
from ._phantom import (
    Acquisition,
    acquire,
    add_devices,
    apply_exposure_ramp,
    draw_marker,
    draw_text,
    perturb_anatomy,
    render_density,
    sample_anatomy,
)
from ._progress import track
from ._reader_demo import deployment_toml, readers_toml

__all__ = [
    "DEFAULT_N_PATIENTS",
    "PROTOCOL_CHANGE_DATE",
    "DemoStudy",
    "make_demo_study",
]

#: Default number of (real) patients: about 1,750 images, of which about 300
#: at each external site pass the cohort rules.
DEFAULT_N_PATIENTS = 1000

#: The day site B switched to its low-dose protocol (planted study only).
PROTOCOL_CHANGE_DATE = dt.date(2021, 7, 1)

_FIRST_DAY = dt.date(2019, 1, 1)
_BASELINE_SPAN_DAYS = (dt.date(2023, 6, 30) - _FIRST_DAY).days
_SITES = ("A", "B", "C", "D")
_DEV_SITES = ("A", "B")
_SITE_SHARE = (0.33, 0.27, 0.20, 0.20)
_IMAGES_PER_PATIENT_P = (0.55, 0.25, 0.12, 0.08)
_CHILD_FRACTION = 0.03
_POOR_QUALITY_FRACTION = 0.04
_AGE_MISSING_FRACTION = 0.02
_SEX_MISSING_FRACTION = 0.01
_ADJUDICATED_FRACTION = 0.15
_DUPLICATE_FRACTION = 0.015
_SPLIT_FRACTIONS = (("train", 0.60), ("calib", 0.15), ("test", 0.25))
_NAIVE_TRAIN_FRACTION = 0.70
_LESION_PERSISTENCE = 0.6
_LESION_SIGMA_PX = (3.0, 8.0)
_LESION_CONTRAST = (0.12, 0.45)
_ELDERLY_AGE = 70
_ELDERLY_CONTRAST_FACTOR = 0.4
_READER_ERROR_RATES = (0.03, 0.08, 0.20)
_CLEAN_READER_ERROR_RATE = 0.02
_MARKER_P_POSITIVE = 0.85
_MARKER_P_NEGATIVE = 0.07
_MARKER_P_SITE_C = 0.12
_URGENT_P_POSITIVE = 0.70
_URGENT_P_NEGATIVE = 0.15
_URGENT_P_BASE = 0.30
_DEVICES_P_SITE_D = 0.7
_CHUNK = 128
_TEXT = "PORTABLE AP"
_MARKER_FILE = ".claimladder-demo"


@dataclass(frozen=True, slots=True)
class _Site:
    institution: str
    station: str
    manufacturer: str
    scanner: str
    serial: str
    software: str
    protocol: str
    fov_mm: float
    prevalence: float
    views: tuple[float, float, float]  # P(PA), P(AP), P(LL)
    acquisition: Acquisition


_PLANTED_SITES = {
    "A": _Site(
        "Northbridge General Hospital", "NBG-DX01", "Lumetra Medical", "LumaDR 500",
        "LM500-1187", "4.2.1", "CHEST PA/AP STANDARD", 430.0, 0.45, (0.86, 0.08, 0.06),
        Acquisition(),
    ),
    "B": _Site(
        "St Aldric University Hospital", "SAU-RAD3", "Lumetra Medical", "LumaDR 700",
        "LM700-0421", "4.2.1", "CXR STANDARD v1", 430.0, 0.28, (0.86, 0.08, 0.06),
        Acquisition(gain=0.90, offset=0.04),
    ),
    "C": _Site(
        "Rivermouth Regional Hospital", "RRH-XR2", "Orison Imaging", "OrisDX Pro",
        "ODX-77310", "11.0.4", "THORAX ROUTINE", 410.0, 0.15, (0.86, 0.08, 0.06),
        Acquisition(dose=0.5, noise_corr_px=2.0, blur_px=2.2, gamma=0.65, gain=0.85, offset=0.05),
    ),
    "D": _Site(
        "Harrowgate Community Hospital", "HCH-MOBILE1", "Kestrel Systems", "Kestrel Mobile 2",
        "KM2-00583", "2.7", "PORTABLE CHEST AP", 350.0, 0.35, (0.0, 1.0, 0.0),
        Acquisition(dose=0.15, blur_px=1.2, gamma=1.15, gain=0.90, offset=0.02),
    ),
}  # fmt: skip
_B_AFTER_PROTOCOL = "CXR LOW DOSE v2"
_B_AFTER_SOFTWARE = "5.0.3"
_B_AFTER_ACQUISITION = Acquisition(dose=0.45, gamma=0.80, gain=0.95, offset=0.02)
_CLEAN_PREVALENCE = 0.30
_CLEAN_VIEWS = (0.82, 0.12, 0.06)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoStudy:
    """Where :func:`make_demo_study` wrote a demo study, and its size.

    Attributes
    ----------
    root : pathlib.Path
        The study folder (``out_dir``).
    study_path, cohort_path, planted_truth_path : pathlib.Path
        ``study.toml``, ``cohort.csv`` and ``planted_truth.csv`` (latent
        variables for tests; the study spec does not reference it).
    predictions_path : pathlib.Path
        Where :func:`make_demo_predictions` writes ``predictions.csv`` (named
        by ``study.toml``; not written by :func:`make_demo_study`).
    n_patients : int
        Real patients (duplicate re-exports add pseudonyms on top).
    n_images : int
        Rows of ``cohort.csv``.
    clean : bool
        Whether the planted failure modes are absent.
    protocol_change_date : datetime.date or None
        The day site B changed protocol; None in the clean study.
    development_ids : tuple of str
        Image ids of the development partition that pass the cohort rules of
        ``study.toml`` (``site in ['A', 'B'] and split == 'train'``, adult,
        frontal view, good quality), the ids to train the demo model on.
    """

    root: Path
    study_path: Path
    cohort_path: Path
    planted_truth_path: Path
    predictions_path: Path
    n_patients: int
    n_images: int
    clean: bool
    protocol_change_date: dt.date | None
    development_ids: tuple[str, ...] = field(repr=False)


def _choice_index(rng: np.random.Generator, p: Sequence[float], n: int) -> np.ndarray:
    return rng.choice(len(p), size=n, p=np.asarray(p) / np.sum(p))


def _uid(rng: np.random.Generator, n: int) -> list[str]:
    """UUID-derived DICOM UIDs (PS3.5 B.2): ``2.25.`` and a 126-bit integer."""
    parts = rng.integers(0, 2**63, size=(n, 2), dtype=np.uint64)
    return [f"2.25.{(int(hi) << 63) | int(lo)}" for hi, lo in parts]


def _patients(rng: np.random.Generator, n: int) -> pd.DataFrame:
    site = np.asarray(_SITES)[_choice_index(rng, _SITE_SHARE, n)]
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    child = rng.random(n) < _CHILD_FRACTION
    age0 = np.where(child, rng.uniform(3.0, 17.5, n), 18.0 + 77.0 * rng.beta(2.0, 1.5, n))
    n_img = 1 + _choice_index(rng, _IMAGES_PER_PATIENT_P, n)
    baseline = rng.integers(0, _BASELINE_SPAN_DAYS, n)
    birth = baseline - np.round(age0 * 365.25).astype(int)
    return pd.DataFrame(
        {"site": site, "sex": sex, "n_img": n_img, "baseline": baseline, "birth": birth}
    )


def _images(
    rng: np.random.Generator, pat: pd.DataFrame, clean: bool
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Expand patients to visits; draw views, quality, lesions, marker, priority."""
    r_visit, r_anat, r_fu, r_lesion, r_flags = spawn(rng, 5)
    patient = np.repeat(np.arange(len(pat)), pat["n_img"].to_numpy())
    visit = np.concatenate([np.arange(k) for k in pat["n_img"].to_numpy()])
    n = len(patient)
    gaps = np.where(visit > 0, r_visit.integers(14, 400, n), 0)
    # cumulative days since baseline within each patient
    days = np.zeros(n, dtype=int)
    for k in range(1, int(visit.max()) + 1):
        idx = np.flatnonzero(visit == k)
        days[idx] = days[idx - 1] + gaps[idx]
    day = pat["baseline"].to_numpy()[patient] + days
    age = np.floor((day - pat["birth"].to_numpy()[patient]) / 365.25).astype(int)
    site = pat["site"].to_numpy()[patient]
    sites = _PLANTED_SITES
    view_p = np.array([_CLEAN_VIEWS if clean else sites[s].views for s in _SITES])
    site_idx = np.searchsorted(np.asarray(_SITES), site)
    u = r_visit.random(n)
    cum = np.cumsum(view_p[site_idx], axis=1)
    view = np.asarray(["PA", "AP", "LL"])[(u[:, None] > cum).sum(axis=1).clip(0, 2)]
    poor = r_visit.random(n) < _POOR_QUALITY_FRACTION

    # Anatomy: the patient's at baseline, perturbed at each follow-up.
    base = sample_anatomy(r_anat, len(pat))
    fu = perturb_anatomy({k: v[patient] for k, v in base.items()}, r_fu)
    anatomy = {k: np.where(visit == 0, base[k][patient], fu[k]) for k in base}

    # Lesions: a per-patient Markov chain (persist, resolve, appear).
    prev_site = np.array([_CLEAN_PREVALENCE if clean else sites[s].prevalence for s in _SITES])[
        site_idx
    ]
    p_new = (1.0 - _LESION_PERSISTENCE) * prev_site / (1.0 - prev_site)
    lesion = np.zeros(n, dtype=bool)
    side = np.where(r_lesion.random(n) < 0.5, -1.0, 1.0)
    rad = np.sqrt(r_lesion.random(n)) * 0.6
    theta = r_lesion.uniform(0.0, 2.0 * np.pi, n)
    sigma_px = r_lesion.uniform(*_LESION_SIGMA_PX, n)
    contrast = r_lesion.uniform(*_LESION_CONTRAST, n)
    jitter = r_lesion.normal(0.0, 0.02, (n, 2))
    scale = r_lesion.uniform(0.8, 1.2, (n, 2))
    persist_u = r_lesion.random(n)
    for k in range(int(visit.max()) + 1):
        idx = np.flatnonzero(visit == k)
        if k == 0:
            lesion[idx] = persist_u[idx] < prev_site[idx]
        else:
            had = lesion[idx - 1]
            lesion[idx] = np.where(
                had, persist_u[idx] < _LESION_PERSISTENCE, persist_u[idx] < p_new[idx]
            )
            keep = idx[had & lesion[idx]]
            # a persisting opacity stays in place and changes size a little
            side[keep] = side[keep - 1]
            rad[keep], theta[keep] = rad[keep - 1], theta[keep - 1]
            sigma_px[keep] = sigma_px[keep - 1] * scale[keep, 0]
            contrast[keep] = np.clip(contrast[keep - 1] * scale[keep, 1], *_LESION_CONTRAST)
    frontal = view != "LL"
    cx = np.where(frontal, side * anatomy["lung_x"] + anatomy["lung_asym"], 0.03) + np.where(
        frontal, 0.9 * anatomy["lung_ax"], 1.3 * anatomy["lung_ax"]
    ) * rad * np.cos(theta)
    cy = anatomy["lung_y"] + anatomy["lung_ay"] * np.minimum(rad * np.sin(theta), 0.35)
    lx = cx + jitter[:, 0] * (visit > 0)
    ly = cy + jitter[:, 1] * (visit > 0)
    # Where the lesion centre lands in the image (normalised units), for the record.
    cos, sin = np.cos(anatomy["rot"]), np.sin(anatomy["rot"])
    img_x = anatomy["dx"] + anatomy["scale"] * (cos * lx - sin * ly)
    img_y = anatomy["dy"] + anatomy["scale"] * (sin * lx + cos * ly)
    age_true = age
    elderly = age_true >= _ELDERLY_AGE
    eff_contrast = contrast * np.where(elderly & (not clean), _ELDERLY_CONTRAST_FACTOR, 1.0)
    eff_contrast = np.where(lesion, eff_contrast, 0.0)

    # Marker shortcut (site A), priority leak (development sites).
    u_marker = r_flags.random(n)
    if clean:
        marker = np.zeros(n, dtype=bool)
    else:
        p_marker = np.where(lesion, _MARKER_P_POSITIVE, _MARKER_P_NEGATIVE)
        marker = ((site == "A") & (u_marker < p_marker)) | (
            (site == "C") & (u_marker < _MARKER_P_SITE_C)
        )
    marker_shift = r_flags.integers(-2, 3, (n, 2))
    u_pri = r_flags.random(n)
    dev = np.isin(site, _DEV_SITES)
    if clean:
        p_urgent = np.full(n, _URGENT_P_BASE)
    else:
        p_urgent = np.where(
            dev, np.where(lesion, _URGENT_P_POSITIVE, _URGENT_P_NEGATIVE), _URGENT_P_BASE
        )
    priority = np.where(u_pri < p_urgent, "urgent", "routine")
    text = (site == "D") & (not clean)
    devices = (site == "D") & (r_flags.random(n) < _DEVICES_P_SITE_D) & (not clean)
    study_seconds = r_flags.integers(7 * 3600, 22 * 3600, n)
    age_missing = r_flags.random(n) < _AGE_MISSING_FRACTION
    sex_missing = r_flags.random(n) < _SEX_MISSING_FRACTION
    images = pd.DataFrame(
        {
            "patient": patient,
            "visit": visit,
            "site": site,
            "day": day,
            "seconds": study_seconds,
            "age_true": age_true,
            "age_missing": age_missing,
            "sex_true": pat["sex"].to_numpy()[patient],
            "sex_missing": sex_missing,
            "birth": pat["birth"].to_numpy()[patient],
            "view": view,
            "poor": poor,
            "lesion": lesion,
            "lesion_x": lx,
            "lesion_y": ly,
            "lesion_img_x": np.where(lesion, img_x, np.nan),
            "lesion_img_y": np.where(lesion, img_y, np.nan),
            "lesion_sigma_px": np.where(lesion, sigma_px, 0.0),
            "lesion_contrast": eff_contrast,
            "marker": marker,
            "marker_dy": marker_shift[:, 0],
            "marker_dx": marker_shift[:, 1],
            "priority": priority,
            "text": text,
            "devices": devices,
            "duplicate_of": -1,
        }
    )
    return images, anatomy


def _readers(rng: np.random.Generator, img: pd.DataFrame, clean: bool) -> pd.DataFrame:
    """Three readers, label certainty, an adjudicated subset and the reference label."""
    n = len(img)
    lesion = img["lesion"].to_numpy()
    sigma = np.maximum(img["lesion_sigma_px"].to_numpy(), 1e-9)
    # Conspicuity: contrast times the square root of size, scaled to [0, 1] over
    # the design ranges; subtlety is its complement (1 for negatives' "lesion").
    lo = _LESION_CONTRAST[0] * _ELDERLY_CONTRAST_FACTOR * np.sqrt(_LESION_SIGMA_PX[0])
    hi = _LESION_CONTRAST[1] * np.sqrt(_LESION_SIGMA_PX[1])
    consp = img["lesion_contrast"].to_numpy() * np.sqrt(sigma)
    consp = np.where(lesion, np.clip((consp - lo) / (hi - lo), 0.0, 1.0), np.nan)
    subtle = np.where(lesion, 1.0 - consp, 0.0)
    u = rng.random((n, 3))
    if clean:
        p_err = np.full((n, 3), _CLEAN_READER_ERROR_RATE)
    else:
        # Misses concentrate on subtle lesions; false calls are rarer and even.
        weight = np.where(lesion, 0.15 + 4.0 * subtle**2, 0.3)
        rates = np.asarray(_READER_ERROR_RATES)
        p_err = np.minimum(rates[None, :] * (weight / weight.mean())[:, None], 0.75)
    errors = u < p_err
    readers = np.where(errors, ~lesion[:, None], lesion[:, None]).astype(int)
    noise = rng.normal(0.0, 0.1, n)
    u_cert = rng.random(n)
    neg_cert = np.where(u_cert < 0.85, "definite", np.where(u_cert < 0.97, "probable", "possible"))
    if clean:
        certainty = neg_cert
    else:
        s = subtle + noise
        pos_cert = np.where(s < 0.45, "definite", np.where(s < 0.75, "probable", "possible"))
        certainty = np.where(lesion, pos_cert, neg_cert)
    adjudicated = rng.random(n) < _ADJUDICATED_FRACTION
    majority = (readers.sum(axis=1) >= 2).astype(int)
    label = np.where(adjudicated, lesion.astype(int), majority)
    out = img.copy()
    for j in range(3):
        out[f"reader_{j + 1}"] = readers[:, j]
        out[f"p_error_{j + 1}"] = p_err[:, j]
    out["conspicuity"] = consp
    out["label_certainty"] = certainty
    out["adjudicated"] = adjudicated
    out["label"] = label
    return out


def _duplicates(rng: np.random.Generator, img: pd.DataFrame, n_patients: int) -> pd.DataFrame:
    """Re-exported near-duplicates under a new pseudonym (planted study only)."""
    eligible = np.flatnonzero(
        np.isin(img["site"], _DEV_SITES)
        & (img["age_true"] >= 18)
        & (img["view"] != "LL")
        & ~img["poor"]
        & ~img["age_missing"]
    )
    n_dup = max(1, round(_DUPLICATE_FRACTION * len(img)))
    originals = np.sort(rng.choice(eligible, size=min(n_dup, len(eligible)), replace=False))
    dup = img.iloc[originals].copy()
    dup["duplicate_of"] = originals
    dup["patient"] = n_patients + np.arange(len(originals))
    dup["shift_y"] = rng.choice([-2, -1, 1, 2], len(originals))
    dup["shift_x"] = rng.choice([-2, -1, 1, 2], len(originals))
    dup["dup_gain"] = rng.uniform(0.97, 1.03, len(originals))
    dup["dup_offset"] = rng.choice([-1.0, 1.0], len(originals)) * rng.uniform(
        0.01, 0.03, len(originals)
    )
    return pd.concat([img, dup], ignore_index=True)


def _assign_splits(rng: np.random.Generator, img: pd.DataFrame, clean: bool) -> pd.DataFrame:
    """Patient-level stratified split at A/B; naive image-level split (planted)."""
    r_split, r_naive = spawn(rng, 2)
    out = img.copy()
    is_dup = out["duplicate_of"].to_numpy() >= 0
    dev = out["site"].isin(_DEV_SITES).to_numpy()
    real = out[dev & ~is_dup]
    per_patient = real.groupby("patient").agg(site=("site", "first"), pos=("lesion", "any"))
    split_of: dict[int, str] = {}
    for _, group in per_patient.groupby(["site", "pos"], sort=True):
        ids = group.index.to_numpy()[r_split.permutation(len(group))]
        bounds = np.round(np.cumsum([f for _, f in _SPLIT_FRACTIONS]) * len(ids)).astype(int)
        start = 0
        for (name, _), stop in zip(_SPLIT_FRACTIONS, bounds, strict=True):
            split_of.update(dict.fromkeys(ids[start:stop].tolist(), name))
            start = stop
    split = np.where(dev, "", "external").astype(object)
    for i in np.flatnonzero(dev & ~is_dup):
        split[i] = split_of[int(out["patient"].iat[i])]
    # A re-export lands in another partition than its original.
    crossing = {"train": "test", "calib": "test", "test": "train"}
    for i in np.flatnonzero(is_dup):
        split[i] = crossing[split[int(out["duplicate_of"].iat[i])]]
    out["split"] = split.astype(str)
    if clean:
        naive = np.where(out["split"] == "test", "test", "train")
    else:
        naive = np.where(r_naive.random(len(out)) < _NAIVE_TRAIN_FRACTION, "train", "test")
    out["naive_split"] = np.where(dev, naive, "external")
    return out


def _acquisition_arrays(img: pd.DataFrame, clean: bool) -> dict[str, np.ndarray]:
    fields = ("dose", "noise_corr_px", "blur_px", "gamma", "gain", "offset")
    acq = {f: np.zeros(len(img)) for f in fields}
    for i, (site, after) in enumerate(zip(img["site"], img["after_change"], strict=True)):
        a = (
            Acquisition()
            if clean
            else (_B_AFTER_ACQUISITION if after else _PLANTED_SITES[site].acquisition)
        )
        for f in fields:
            acq[f][i] = getattr(a, f)
    poor = img["poor"].to_numpy()
    acq["blur_px"] = acq["blur_px"] + np.where(poor, 2.2, 0.0)
    acq["dose"] = acq["dose"] * np.where(poor, 0.35, 1.0)
    return acq


def _render(
    rng: np.random.Generator,
    img: pd.DataFrame,
    anatomy: dict[str, np.ndarray],
    acq: dict[str, np.ndarray],
    *,
    size: int,
    progress: bool,
) -> np.ndarray:
    """Display values in [0, 1] of every original image, shape (n, size, size)."""
    n = len(img)
    out = np.empty((n, size, size), dtype=np.float32)
    starts = range(0, n, _CHUNK)
    gens = spawn(rng, len(starts))
    r_gain = spawn(rng, 1)[0]
    gain_jitter = r_gain.normal(1.0, 0.02, n)
    offset_jitter = r_gain.normal(0.0, 0.005, n)
    for start, gen in track(
        zip(starts, gens, strict=True), total=len(starts), description="Rendering", enabled=progress
    ):
        sl = slice(start, min(start + _CHUNK, n))
        part = img.iloc[sl]
        density = render_density(
            {k: v[sl] for k, v in anatomy.items()},
            view=part["view"].to_numpy(),
            lesion_x=part["lesion_x"].to_numpy(),
            lesion_y=part["lesion_y"].to_numpy(),
            lesion_sigma=part["lesion_sigma_px"].to_numpy() / 64.0,
            lesion_contrast=part["lesion_contrast"].to_numpy(),
            size=size,
        )
        add_devices(density, part["devices"].to_numpy(), gen)
        display = acquire(
            density,
            dose=acq["dose"][sl],
            noise_corr_px=acq["noise_corr_px"][sl],
            blur_px=acq["blur_px"][sl],
            gamma=acq["gamma"][sl],
            gain=acq["gain"][sl] * gain_jitter[sl],
            offset=acq["offset"][sl] + offset_jitter[sl],
            rng=gen,
        )
        apply_exposure_ramp(display, {k: v[sl] for k, v in anatomy.items()})
        draw_marker(
            display,
            part["marker"].to_numpy(),
            shift=part[["marker_dy", "marker_dx"]].to_numpy(),
        )
        draw_text(display, part["text"].to_numpy(), _TEXT)
        out[sl] = display
    return out


def _re_export(display: np.ndarray, *, dy: int, dx: int, gain: float, offset: float) -> np.ndarray:
    """Shift by a few pixels (crop and edge-pad), rescale and re-quantize to 10 bits."""
    size = display.shape[-1]
    s = max(1, size // 128)
    padded = np.pad(display, 3 * s, mode="edge")
    r0, c0 = 3 * s - dy * s, 3 * s - dx * s
    moved = padded[r0 : r0 + size, c0 : c0 + size]
    return np.round(np.clip(moved * gain + offset, 0.0, 1.0) * 1023.0) / 1023.0


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ClaimladderError(
            f"make_demo_study cannot write into {str(out_dir)!r}: it is a file. "
            "Pass a new or empty folder."
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / _MARKER_FILE).exists():
            raise ClaimladderError(
                f"make_demo_study will not write into {str(out_dir)!r}: the folder is not "
                "empty and holds no earlier demo study. Pass a new or empty folder."
            )
        # An earlier demo study: replace its images so none are left over, and
        # drop its predictions, which would not match the new cohort.
        shutil.rmtree(out_dir / "images", ignore_errors=True)
        (out_dir / "predictions.csv").unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / _MARKER_FILE, "Written by claimladder.datasets.make_demo_study\n")


def _date(days: np.ndarray) -> list[str]:
    base = np.datetime64(_FIRST_DAY.isoformat(), "D")
    return [str(d) for d in base + np.asarray(days, dtype="timedelta64[D]")]


def make_demo_study(
    out_dir: str | os.PathLike[str],
    *,
    n_patients: int = DEFAULT_N_PATIENTS,
    clean: bool = False,
    rng: RngLike = 0,
    image_size: int = 128,
    progress: bool = False,
) -> DemoStudy:
    """Write a synthetic chest-radiograph study with planted failure modes.

    Parameters
    ----------
    out_dir : str or path-like
        A new or empty folder (or one holding an earlier demo study, whose
        images are replaced).
    n_patients : int, default 700
        Real patients. About 1.73 images per patient; in the planted study
        another 1.5 % of images are re-exported duplicates.
    clean : bool, default False
        Write the clean control: the same kind of cohort with none of the
        planted failure modes (see the module documentation).
    rng : int, numpy.random.Generator or None, default 0
        Seed; the same seed and arguments give byte-identical files.
    image_size : int, default 128
        Image width and height in pixels (at least 64).
    progress : bool, default False
        Show rich progress bars for rendering and writing.

    Returns
    -------
    DemoStudy
        Paths, sizes and the development image ids.

    Raises
    ------
    ClaimladderError
        ``out_dir`` is a file, or a non-empty folder that holds no demo study.
    ValueError
        ``n_patients`` < 20 or ``image_size`` < 64.

    Examples
    --------
    >>> import tempfile, tomllib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     demo = make_demo_study(tmp, n_patients=24, image_size=64)
    ...     spec = tomllib.loads(demo.study_path.read_text())
    ...     head = demo.cohort_path.read_text().splitlines()[0]
    >>> spec["data"]["cohort"], head.split(",")[:3]
    ('cohort.csv', ['image_id', 'patient_id', 'path'])
    """
    n_patients = check_positive_int(
        n_patients, param="n_patients", owner="make_demo_study", minimum=20
    )
    image_size = check_positive_int(
        image_size, param="image_size", owner="make_demo_study", minimum=64
    )
    if not isinstance(clean, (bool, np.bool_)):
        raise TypeError(
            f"The 'clean' parameter of make_demo_study must be a bool. Got {clean!r} instead."
        )
    from ..io import write_dicom

    root = Path(out_dir)
    gen = check_rng(rng)
    r_pat, r_img, r_read, r_dup, r_split, r_id, r_render = spawn(gen, 7)

    pat = _patients(r_pat, n_patients)
    img, anatomy = _images(r_img, pat, clean)
    img = _readers(r_read, img, clean)
    n_orig = len(img)
    if not clean:
        img = _duplicates(r_dup, img, n_patients)
    img = _assign_splits(r_split, img, clean)

    n_total = len(img)
    n_pseudo = n_patients + int((img["duplicate_of"] >= 0).sum())
    width_img = max(5, len(str(n_total)))
    width_pat = max(4, len(str(n_pseudo)))
    image_no = r_id.permutation(n_total) + 1
    pseudo_no = r_id.permutation(n_pseudo) + 1
    img["image_id"] = [f"IMG{k:0{width_img}d}" for k in image_no]
    img["patient_id"] = [f"P{pseudo_no[p]:0{width_pat}d}" for p in img["patient"]]
    orig_patient = np.where(
        img["duplicate_of"] >= 0,
        img["patient"].to_numpy()[np.maximum(img["duplicate_of"].to_numpy(), 0)],
        img["patient"].to_numpy(),
    )
    img["true_patient_id"] = [f"P{pseudo_no[p]:0{width_pat}d}" for p in orig_patient]
    change_day = (PROTOCOL_CHANGE_DATE - _FIRST_DAY).days
    img["after_change"] = (img["site"] == "B") & (img["day"] >= change_day) & (not clean)
    img["protocol"] = [
        _B_AFTER_PROTOCOL if after else _PLANTED_SITES[s].protocol
        for s, after in zip(img["site"], img["after_change"], strict=True)
    ]
    suffix = np.where(img["label"] == 1, "_opacity", "_normal")
    img["path"] = [
        f"images/{s}/{i}{sfx if (s == 'B' and not clean) else ''}.dcm"
        for s, i, sfx in zip(img["site"], img["image_id"], suffix, strict=True)
    ]

    acq = _acquisition_arrays(img, clean)
    for key, values in acq.items():
        img[f"acq_{key}"] = values

    _prepare_out_dir(root)
    originals = img.iloc[:n_orig]
    display = _render(
        r_render, originals, anatomy, {k: v[:n_orig] for k, v in acq.items()},
        size=image_size, progress=progress,
    )  # fmt: skip
    uids = _uid(r_id, 3 * n_total)
    accession = r_id.choice(90_000_000, size=n_total, replace=False) + 10_000_000

    for i in track(range(n_total), total=n_total, description="Writing DICOM", enabled=progress):
        row = img.iloc[i]
        if row["duplicate_of"] >= 0:
            pixels = _re_export(
                display[int(row["duplicate_of"])],
                dy=int(row["shift_y"]), dx=int(row["shift_x"]),
                gain=float(row["dup_gain"]), offset=float(row["dup_offset"]),
            )  # fmt: skip
        else:
            pixels = display[i]
        stored = np.round(np.clip(pixels, 0.0, 1.0) * 4095.0).astype(np.uint16)
        meta = _header(row, clean=clean, size=image_size, uids=uids[3 * i : 3 * i + 3],
                       accession=int(accession[i]))  # fmt: skip
        photometric = "MONOCHROME2"
        if row["site"] == "C" and not clean:
            # The vendor stores inverted values and a rescale: a decoding trap.
            stored = (4095 - stored).astype(np.uint16)
            photometric = "MONOCHROME1"
            meta["RescaleSlope"] = 0.5
            meta["RescaleIntercept"] = 0
            meta["RescaleType"] = "US"
        write_dicom(
            root / row["path"], stored, meta=meta, bits_stored=12,
            photometric_interpretation=photometric,
        )  # fmt: skip

    cohort = _cohort_table(img)
    order = np.argsort(cohort["image_id"].to_numpy(), kind="stable")
    cohort = cohort.iloc[order].reset_index(drop=True)
    truth = _truth_table(img, image_size).iloc[order].reset_index(drop=True)
    atomic_write_text(root / "cohort.csv", cohort.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(
        root / "planted_truth.csv",
        truth.to_csv(index=False, lineterminator="\n", float_format="%.6g"),
    )
    atomic_write_text(root / "study.toml",
                      _study_toml(clean) + readers_toml() + deployment_toml(cohort, clean))
    dev_mask = (
        cohort["site"].isin(_DEV_SITES)
        & (cohort["split"] == "train")
        & (cohort["age"] >= 18).fillna(False).astype(bool)
        & cohort["view"].isin(["PA", "AP"])
        & (cohort["quality"] != "poor")
    )
    return DemoStudy(
        root=root,
        study_path=root / "study.toml",
        cohort_path=root / "cohort.csv",
        planted_truth_path=root / "planted_truth.csv",
        predictions_path=root / "predictions.csv",
        n_patients=n_patients,
        n_images=n_total,
        clean=bool(clean),
        protocol_change_date=None if clean else PROTOCOL_CHANGE_DATE,
        development_ids=tuple(cohort.loc[dev_mask, "image_id"]),
    )


def _header(row: pd.Series, *, clean: bool, size: int, uids: list[str], accession: int) -> dict:
    site = _PLANTED_SITES[row["site"]]
    date = _date([row["day"]])[0].replace("-", "")
    seconds = int(row["seconds"])
    spacing = round(site.fov_mm / size, 4)
    urgent = row["priority"] == "urgent"
    meta = {
        "Modality": "DX",
        "Manufacturer": site.manufacturer,
        "ManufacturerModelName": site.scanner,
        "DeviceSerialNumber": site.serial,
        "SoftwareVersions": _B_AFTER_SOFTWARE if row["after_change"] else site.software,
        "InstitutionName": site.institution,
        "StationName": site.station,
        "StudyDate": date,
        "SeriesDate": date,
        "StudyTime": f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}",
        "PatientName": f"DEMO^{row['patient_id']}",
        "PatientID": row["patient_id"],
        "AccessionNumber": f"ACC{accession:08d}",
        "StudyID": f"{accession % 100000:05d}",
        "StudyInstanceUID": uids[0],
        "SeriesInstanceUID": uids[1],
        "SOPInstanceUID": uids[2],
        "SeriesNumber": 1,
        "InstanceNumber": 1,
        "StudyDescription": "CXR URGENT" if urgent else "CXR ROUTINE",
        "SeriesDescription": f"CHEST {row['view']}",
        "ProtocolName": row["protocol"],
        "BodyPartExamined": "CHEST",
        "ViewPosition": row["view"],
        "ImageType": ["ORIGINAL", "PRIMARY"],
        "PixelSpacing": [spacing, spacing],
        "BurnedInAnnotation": "YES" if row["text"] else "NO",
        "PatientIdentityRemoved": "YES",
    }
    if not row["sex_missing"]:
        meta["PatientSex"] = row["sex_true"]
    if not row["age_missing"]:
        meta["PatientAge"] = f"{int(row['age_true']):03d}Y"
        if not clean:  # the clean export is de-identified: age kept, birth date removed
            meta["PatientBirthDate"] = _date([row["birth"]])[0].replace("-", "")
    return meta


def _cohort_table(img: pd.DataFrame) -> pd.DataFrame:
    site = img["site"].to_numpy()
    return pd.DataFrame(
        {
            "image_id": img["image_id"],
            "patient_id": img["patient_id"],
            "path": img["path"],
            "site": site,
            "manufacturer": [_PLANTED_SITES[s].manufacturer for s in site],
            "scanner": [_PLANTED_SITES[s].scanner for s in site],
            "protocol": img["protocol"],
            "study_date": _date(img["day"].to_numpy()),
            "age": pd.Series(img["age_true"].to_numpy(), dtype="Int64").mask(
                img["age_missing"].to_numpy()
            ),
            "sex": pd.Series(img["sex_true"].to_numpy(), dtype=object).mask(
                img["sex_missing"].to_numpy()
            ),
            "view": img["view"],
            "quality": np.where(img["poor"], "poor", "good"),
            "priority": img["priority"],
            "split": img["split"],
            "naive_split": img["naive_split"],
            "reader_1": img["reader_1"],
            "reader_2": img["reader_2"],
            "reader_3": img["reader_3"],
            "label_certainty": img["label_certainty"],
            "adjudicated": img["adjudicated"],
            "label": img["label"],
        }
    ).reset_index(drop=True)


def _truth_table(img: pd.DataFrame, size: int) -> pd.DataFrame:
    dup = img["duplicate_of"].to_numpy()
    dup_of = np.where(dup >= 0, img["image_id"].to_numpy()[np.maximum(dup, 0)], "")
    lesion = img["lesion"].to_numpy()
    phase = np.where(img["site"] == "B", np.where(img["after_change"], "after", "before"), "none")
    if not img["after_change"].any():
        phase = np.full(len(img), "none")
    return pd.DataFrame(
        {
            "image_id": img["image_id"],
            "patient_id": img["patient_id"],
            "true_patient_id": img["true_patient_id"],
            "lesion": lesion.astype(int),
            "lesion_radius_px": np.where(lesion, img["lesion_sigma_px"] * size / 128.0, 0.0),
            "lesion_contrast": img["lesion_contrast"],
            "lesion_row": (img["lesion_img_y"] + 1.0) / 2.0 * size - 0.5,
            "lesion_col": (img["lesion_img_x"] + 1.0) / 2.0 * size - 0.5,
            "conspicuity": img["conspicuity"],
            "marker": img["marker"],
            "burned_in_text": img["text"],
            "support_devices": img["devices"],
            "duplicate_of": dup_of,
            "protocol_phase": phase,
            "age_true": img["age_true"],
            "sex_true": img["sex_true"],
            "p_error_reader_1": img["p_error_1"],
            "p_error_reader_2": img["p_error_2"],
            "p_error_reader_3": img["p_error_3"],
            "dose": img["acq_dose"],
            "noise_corr_px": img["acq_noise_corr_px"],
            "blur_px": img["acq_blur_px"],
            "gamma": img["acq_gamma"],
        }
    ).reset_index(drop=True)


def _study_toml(clean: bool) -> str:
    title = "claimladder demo: focal opacity on synthetic chest radiographs"
    if clean:
        title += " (clean control)"
    return f'''[study]
title = "{title}"

[claim]
statement = "The model detects focal lung opacities on adult frontal chest radiographs"
intended_use = "Triage of adult frontal chest radiographs (PA/AP) in emergency departments"
not_intended_for = ["children (age < 18)", "lateral views"]
positive_label = 1

[data]
cohort = "cohort.csv"
predictions = "predictions.csv"
images_root = "."

[data.columns]
image_id = "image_id"
patient_id = "patient_id"
label = "label"
path = "path"
site = "site"
scanner = "scanner"
manufacturer = "manufacturer"
protocol = "protocol"
acquired_at = "study_date"
label_certainty = "label_certainty"
adjudicated = "adjudicated"
annotators = ["reader_1", "reader_2", "reader_3"]
attributes = ["age", "sex", "view", "priority"]

[cohort]
include = ["age >= 18", "view in ['PA', 'AP']"]
exclude = ["quality == 'poor'"]

[partitions]
development = "site in ['A', 'B'] and split == 'train'"
calibration = "site in ['A', 'B'] and split == 'calib'"
internal_test = "site in ['A', 'B'] and split == 'test'"

[partitions.external]
site_C = "site == 'C'"
site_D = "site == 'D'"

[subgroups]
attributes = ["age", "sex", "site", "scanner"]
age_bands = [18, 40, 65, 80]

[leakage]
split_columns = ["naive_split"]

# The demo model's fitted preprocessing (claimladder.datasets.fit_demo_model).
[[preprocessing]]
name = "PCA residual and feature standardization (demo model)"
partition = "development"
description = "PCA basis and StandardScaler mean/SD of the image features, fitted with the model"

[metrics]
primary = "roc_auc"
threshold = 0.5
confidence_level = 0.95
n_resamples = 1000
seed = 0

[criteria]
internal.min_auroc = 0.75
external.max_auroc_drop = 0.05
bias.max_subgroup_auroc_gap = 0.05
bias.min_group_size = 30
'''
