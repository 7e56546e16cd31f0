"""Measurements of the demo study's planted effects, from the files it writes.

Shared by ``test_demo_study.py`` and the script that produced the strengths
quoted in ``claimladder.datasets._demo``::

    python tests/datasets/measure_demo.py OUT_DIR [N_PATIENTS]

Every function reads what a user would read: ``cohort.csv``, the DICOM files
(through :func:`claimladder.io.read_image` and
:func:`claimladder.io.dicom_header_index`) and, for latent truth only,
``planted_truth.csv``.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from claimladder.datasets import PROTOCOL_CHANGE_DATE, DemoStudy
from claimladder.features import perceptual_hash
from claimladder.io import dicom_header_index, read_image

DEV_SITES = ("A", "B")
EXTERNAL_SITES = ("C", "D")
HEADER_ATTRIBUTES = (
    "PatientID",
    "PatientAge",
    "PatientSex",
    "StudyDate",
    "StudyDescription",
    "Manufacturer",
    "ManufacturerModelName",
    "InstitutionName",
    "ProtocolName",
    "ViewPosition",
    "PhotometricInterpretation",
    "RescaleSlope",
    "RescaleIntercept",
    "BurnedInAnnotation",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "Modality",
    "PixelSpacing",
)


@dataclass(frozen=True)
class Loaded:
    """A demo study read back: cohort, planted truth (aligned rows), pixels, headers."""

    study: DemoStudy
    cohort: pd.DataFrame
    truth: pd.DataFrame
    images: np.ndarray
    headers: pd.DataFrame


def load(study: DemoStudy) -> Loaded:
    cohort = pd.read_csv(study.cohort_path)
    truth = pd.read_csv(study.planted_truth_path, dtype={"duplicate_of": str})
    truth["duplicate_of"] = truth["duplicate_of"].fillna("")
    if not (truth["image_id"].to_numpy() == cohort["image_id"].to_numpy()).all():
        raise AssertionError("planted_truth.csv rows are not aligned with cohort.csv")
    paths = [study.root / p for p in cohort["path"]]
    images = np.stack([read_image(p) for p in paths])
    headers = dicom_header_index(paths, attributes=HEADER_ATTRIBUTES, on_error="raise")
    return Loaded(study, cohort, truth, images, headers)


def included(cohort: pd.DataFrame) -> pd.Series:
    """The cohort rules of study.toml (missing age fails ``age >= 18``)."""
    adult = (cohort["age"] >= 18).fillna(False).astype(bool)
    return adult & cohort["view"].isin(["PA", "AP"]) & (cohort["quality"] == "good")


def auroc(y_true, y_score) -> float:
    y_true = np.asarray(y_true)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, y_score))


# --------------------------------------------------------------------- pixels
def _scaled(images: np.ndarray, value: float) -> int:
    return max(1, round(value * images.shape[-1] / 128.0))


def corner_marker(images: np.ndarray) -> np.ndarray:
    """Whether the upper-left corner holds a bright marker (>= 20 px at 90 % of the max)."""
    n = len(images)
    top = images.reshape(n, -1).max(axis=1)
    region = images[:, : _scaled(images, 24), : _scaled(images, 24)]
    bright = (region >= 0.9 * top[:, None, None]).sum(axis=(1, 2))
    return bright >= _scaled(images, 20)


def burned_in_text(images: np.ndarray) -> np.ndarray:
    """Whether the upper-right band holds >= 30 pixels at exactly the image maximum.

    Burned-in text is drawn at one saturated value; anatomy reaches the
    maximum only in a few noisy pixels, and not in that band.
    """
    n = len(images)
    top = images.reshape(n, -1).max(axis=1)
    region = images[:, : _scaled(images, 16), -_scaled(images, 80) :]
    return (region == top[:, None, None]).sum(axis=(1, 2)) >= _scaled(images, 30)


def _range(images: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(images, [2, 98], axis=(1, 2))
    return np.maximum(hi - lo, 1e-9)


def noise_level(images: np.ndarray) -> np.ndarray:
    """Robust SD of the fine-scale residual over the chest, per unit of dynamic range."""
    size = images.shape[-1]
    residual = images - ndimage.gaussian_filter(images, (0, 1.0, 1.0))
    chest = residual[:, size // 4 : 3 * size // 4, size // 8 : 7 * size // 8]
    chest = chest.reshape(len(images), -1)
    mad = np.median(np.abs(chest - np.median(chest, axis=1, keepdims=True)), axis=1)
    return 1.4826 * mad / _range(images)


def brightness(images: np.ndarray) -> np.ndarray:
    """Median grey level within each image's 2-98 percentile range (0 to 1)."""
    lo, med = np.percentile(images, [2, 50], axis=(1, 2))
    return (med - lo) / _range(images)


def noise_correlation(images: np.ndarray, lag: int = 2) -> np.ndarray:
    """Correlation of the fine-scale residual with itself ``lag`` pixels to the right."""
    size = images.shape[-1]
    residual = images - ndimage.gaussian_filter(images, (0, 3.0, 3.0))
    chest = residual[:, size // 4 : 3 * size // 4, size // 8 : 7 * size // 8]
    a = chest[:, :, :-lag].reshape(len(images), -1)
    b = chest[:, :, lag:].reshape(len(images), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def lesion_pixel_contrast(images: np.ndarray, truth: pd.DataFrame) -> np.ndarray:
    """Mean over the lesion disc minus the mirrored disc, per unit of dynamic range.

    NaN where there is no lesion. The mirror image across the midline is the
    same lung field on the other side, which holds no lesion.
    """
    size = images.shape[-1]
    rows, cols = np.mgrid[:size, :size]
    out = np.full(len(images), np.nan)
    scale = _range(images)
    for i in np.flatnonzero(truth["lesion"].to_numpy() == 1):
        r, c = truth["lesion_row"].iat[i], truth["lesion_col"].iat[i]
        radius = max(truth["lesion_radius_px"].iat[i], 1.5)
        disc = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
        mirror = (rows - r) ** 2 + (cols - (size - 1 - c)) ** 2 <= radius**2
        if disc.any() and mirror.any():
            out[i] = (images[i][disc].mean() - images[i][mirror].mean()) / scale[i]
    return out


def near_duplicates(
    images: np.ndarray,
    patient_ids: np.ndarray,
    *,
    max_shift: int = 2,
    n_pixels: int = 512,
    min_corr: float = 0.9,
    seed: int = 0,
) -> pd.DataFrame:
    """Cross-patient near-duplicate pairs, found by their shared noise.

    Every exposure has its own quantum noise, so the fine-scale residual
    (image minus its Gaussian blur) is a fingerprint that survives
    re-quantization, gain and offset changes; a re-export shifted by a few
    pixels is found by trying every shift up to ``max_shift``. All pairs are
    compared on ``n_pixels`` sampled positions of the central region (the
    corners, which hold markers and text shared by many images, are left
    out). Returns columns ``i``, ``j`` (i < j) and ``corr`` for the pairs of
    different patients whose best correlation reaches ``min_corr``.
    """
    n, size = len(images), images.shape[-1]
    margin = size // 6
    s = _scaled(images, max_shift)
    residual = (images - ndimage.gaussian_filter(images, (0, 1.5, 1.5))).reshape(n, -1)
    gen = np.random.default_rng(seed)
    rows = gen.integers(margin, size - margin, n_pixels)
    cols = gen.integers(margin, size - margin, n_pixels)

    def sample(dy: int, dx: int) -> np.ndarray:
        block = residual[:, (rows + dy) * size + (cols + dx)]
        block = block - block.mean(axis=1, keepdims=True)
        return block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)

    base = sample(0, 0)
    best = np.full((n, n), -1.0)
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            np.maximum(best, base @ sample(dy, dx).T, out=best)
    best = np.maximum(best, best.T)
    same = patient_ids[:, None] == patient_ids[None, :]
    i, j = np.nonzero(np.triu(~same & (best >= min_corr), k=1))
    return pd.DataFrame({"i": i, "j": j, "corr": best[i, j]})


def planted_pair_hash_distances(loaded: Loaded) -> np.ndarray:
    """pHash Hamming distance between each planted re-export and its original."""
    hashes = perceptual_hash(loaded.images)
    index = {image_id: k for k, image_id in enumerate(loaded.cohort["image_id"])}
    out = []
    for k, original in enumerate(loaded.truth["duplicate_of"]):
        if original:
            out.append((int(hashes[k]) ^ int(hashes[index[original]])).bit_count())
    return np.asarray(out, dtype=int)


def unrelated_hash_distances(loaded: Loaded) -> np.ndarray:
    """pHash Hamming distances of all pairs of different patients (no re-exports)."""
    hashes = perceptual_hash(loaded.images)
    keep = (loaded.truth["duplicate_of"] == "").to_numpy() & ~loaded.cohort["image_id"].isin(
        loaded.truth["duplicate_of"]
    ).to_numpy()
    h = hashes[keep]
    pid = loaded.cohort["patient_id"].to_numpy()[keep]
    x = np.bitwise_xor(h[:, None], h[None, :])
    dist = np.zeros(x.shape, dtype=np.int64)
    for shift in range(64):
        dist += ((x >> np.uint64(shift)) & np.uint64(1)).astype(np.int64)
    i, j = np.triu_indices(len(h), k=1)
    cross = pid[i] != pid[j]
    return dist[i[cross], j[cross]]


# ------------------------------------------------------------------ summary
def measure(loaded: Loaded) -> dict[str, float]:
    """Every planted effect's strength, as a flat dict."""
    c, t, img, h = loaded.cohort, loaded.truth, loaded.images, loaded.headers
    out: dict[str, float] = {"n_images": len(c), "n_patients": c["patient_id"].nunique()}
    inc = included(c).to_numpy()
    for site in ("A", "B", "C", "D"):
        at = (c["site"] == site).to_numpy()
        out[f"n_{site}"] = int(at.sum())
        out[f"n_{site}_included"] = int((at & inc).sum())
        out[f"prevalence_{site}"] = float(c.loc[at, "label"].mean())

    marker = corner_marker(img)
    a = (c["site"] == "A").to_numpy()
    lesion = t["lesion"].to_numpy() == 1
    out["marker_A_pos"] = float(marker[a & lesion].mean())
    out["marker_A_neg"] = float(marker[a & ~lesion].mean())
    out["marker_agrees_truth"] = float((marker == t["marker"].to_numpy()).mean())
    for site in ("B", "C", "D"):
        at = (c["site"] == site).to_numpy()
        out[f"marker_{site}"] = float(marker[at].mean())
        out[f"marker_auroc_{site}"] = auroc(c.loc[at, "label"], marker[at])
    out["marker_auroc_A"] = auroc(c.loc[a, "label"], marker[a])

    text = burned_in_text(img)
    for site in ("A", "B", "C", "D"):
        at = (c["site"] == site).to_numpy()
        out[f"text_{site}"] = float(text[at].mean())
        out[f"burned_in_header_{site}"] = float((h.loc[at, "BurnedInAnnotation"] == "YES").mean())

    urgent = (c["priority"] == "urgent").astype(int)
    dev = c["site"].isin(DEV_SITES).to_numpy()
    out["priority_auroc_dev"] = auroc(c.loc[dev, "label"], urgent[dev])
    out["priority_auroc_external"] = auroc(c.loc[~dev, "label"], urgent[~dev])
    desc_urgent = (h["StudyDescription"] == "CXR URGENT").astype(int).to_numpy()
    out["description_auroc_dev"] = auroc(c.loc[dev, "label"], desc_urgent[dev])

    token = c["path"].str.extract(r"_(opacity|normal)\.dcm$", expand=False)
    b = (c["site"] == "B").to_numpy()
    out["filename_token_B"] = float(token[b].notna().mean())
    out["filename_token_matches_label_B"] = float(
        ((token[b] == "opacity").astype(int) == c.loc[b, "label"]).mean()
    )
    out["filename_token_other_sites"] = float(token[~b].notna().mean())

    dates = pd.to_datetime(c["study_date"]).dt.date
    after = (dates >= PROTOCOL_CHANGE_DATE).to_numpy()
    b_good = b & (c["quality"] == "good").to_numpy() & (c["view"] != "LL").to_numpy()
    noise = noise_level(img)
    bright = brightness(img)
    out["B_noise_ratio_after_before"] = float(
        np.median(noise[b_good & after]) / np.median(noise[b_good & ~after])
    )
    out["B_brightness_shift_after_before"] = float(
        np.median(bright[b_good & after]) - np.median(bright[b_good & ~after])
    )
    out["B_protocols_before"] = c.loc[b & ~after, "protocol"].nunique()
    out["B_protocols_after"] = c.loc[b & after, "protocol"].nunique()
    out["B_protocol_changes_at_date"] = float(
        set(c.loc[b & ~after, "protocol"]).isdisjoint(c.loc[b & after, "protocol"])
    )

    good = (c["quality"] == "good").to_numpy() & (c["view"] != "LL").to_numpy()
    corr = noise_correlation(img)
    for site in ("A", "B", "C", "D"):
        at = (c["site"] == site).to_numpy() & good
        out[f"noise_corr_{site}"] = float(np.median(corr[at]))
        out[f"noise_level_{site}"] = float(np.median(noise[at]))

    age_true = t["age_true"].to_numpy()
    old = age_true >= 70
    frontal_good = good & (c["view"] != "LL").to_numpy()
    pix = lesion_pixel_contrast(img, t)
    out["truth_contrast_ratio_old_young"] = float(
        t.loc[lesion & old, "lesion_contrast"].mean()
        / t.loc[lesion & ~old, "lesion_contrast"].mean()
    )
    out["pixel_contrast_old"] = float(np.nanmedian(pix[lesion & old & frontal_good]))
    out["pixel_contrast_young"] = float(np.nanmedian(pix[lesion & ~old & frontal_good]))

    for k in (1, 2, 3):
        out[f"reader_{k}_error"] = float((c[f"reader_{k}"] != t["lesion"]).mean())
    consp = t["conspicuity"].to_numpy()
    subtle = lesion & (consp < 0.5)
    clear = lesion & (consp >= 0.5)
    out["reader_3_error_subtle_pos"] = float((c.loc[subtle, "reader_3"] == 0).mean())
    out["reader_3_error_clear_pos"] = float((c.loc[clear, "reader_3"] == 0).mean())
    out["reader_3_error_neg"] = float((c.loc[~lesion, "reader_3"] == 1).mean())
    out["label_error"] = float((c["label"] != t["lesion"]).mean())
    adj = c["adjudicated"].to_numpy().astype(bool)
    out["adjudicated_fraction"] = float(adj.mean())
    out["adjudicated_label_is_truth"] = float((c.loc[adj, "label"] == t.loc[adj, "lesion"]).mean())
    out["definite_subtle_pos"] = float((c.loc[subtle, "label_certainty"] == "definite").mean())
    out["definite_clear_pos"] = float((c.loc[clear, "label_certainty"] == "definite").mean())

    pairs = near_duplicates(img, c["patient_id"].to_numpy())
    ids = c["image_id"].to_numpy()
    planted = {(d, i) for i, d in zip(t["image_id"], t["duplicate_of"], strict=True) if d}
    found = {tuple(sorted((ids[i], ids[j]))) for i, j in zip(pairs["i"], pairs["j"], strict=True)}
    out["duplicates_planted"] = len(planted)
    out["duplicates_found"] = len(found)
    out["duplicates_found_planted"] = len({tuple(sorted(p)) for p in planted} & found)
    split = c.set_index("image_id")["split"]
    out["duplicates_crossing_split"] = sum(split[a_] != split[b_] for a_, b_ in found)
    if planted:
        out["duplicates_phash_max"] = int(planted_pair_hash_distances(loaded).max())
    unrelated = unrelated_hash_distances(loaded)
    out["unrelated_phash_le8"] = float((unrelated <= 8).mean())
    out["unrelated_phash_le4"] = float((unrelated <= 4).mean())

    dev_rows = c[dev]
    sets = {
        s: set(dev_rows.loc[dev_rows["split"] == s, "patient_id"])
        for s in ("train", "calib", "test")
    }
    out["split_shared_patients"] = len(
        (sets["train"] & sets["calib"])
        | (sets["train"] & sets["test"])
        | (sets["calib"] & sets["test"])
    )
    naive = {
        s: set(dev_rows.loc[dev_rows["naive_split"] == s, "patient_id"]) for s in ("train", "test")
    }
    out["naive_split_shared_patients"] = len(naive["train"] & naive["test"])
    out["patients_with_followups"] = int((c.groupby("patient_id").size() > 1).sum())

    out["monochrome1_C"] = float(
        (h.loc[c["site"] == "C", "PhotometricInterpretation"] == "MONOCHROME1").mean()
    )
    out["monochrome1_other"] = float(
        (h.loc[c["site"] != "C", "PhotometricInterpretation"] == "MONOCHROME1").mean()
    )
    out["children"] = int((c["age"] < 18).sum())
    out["lateral"] = int((c["view"] == "LL").sum())
    out["poor_quality"] = int((c["quality"] == "poor").sum())
    out["age_missing"] = int(c["age"].isna().sum())
    out["sex_missing"] = int(c["sex"].isna().sum())
    return out


if __name__ == "__main__":  # pragma: no cover - the script that produced the documented numbers
    import time

    from claimladder.datasets import make_demo_predictions, make_demo_study

    root = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else None
    for clean in (False, True):
        kwargs = {"n_patients": n} if n else {}
        t0 = time.perf_counter()
        study = make_demo_study(root / ("clean" if clean else "planted"), clean=clean, **kwargs)
        t1 = time.perf_counter()
        make_demo_predictions(study.root, train_image_ids=study.development_ids)
        t2 = time.perf_counter()
        loaded = load(study)
        result = measure(loaded)
        pred = pd.read_csv(study.predictions_path)
        c = loaded.cohort.merge(pred, on="image_id")
        c = c[included(c).to_numpy()]
        internal = c[c["site"].isin(DEV_SITES) & (c["split"] == "test")]
        result["auroc_internal"] = auroc(internal["label"], internal["score"])
        for site in ("A", "B", "C", "D"):
            part = internal if site in DEV_SITES else c
            part = part[part["site"] == site]
            result[f"auroc_{site}"] = auroc(part["label"], part["score"])
        ext = c[c["site"].isin(EXTERNAL_SITES)]
        result["auroc_external"] = auroc(ext["label"], ext["score"])
        for name, part in (("internal", internal), ("external", ext)):
            for label, mask in (("old", part["age"] >= 70), ("young", part["age"] < 70)):
                result[f"auroc_{name}_{label}"] = auroc(
                    part.loc[mask, "label"], part.loc[mask, "score"]
                )
        result["n_internal_test"] = len(internal)
        result["generate_s"] = t1 - t0
        result["model_s"] = t2 - t1
        print("clean" if clean else "planted", dt.datetime.now().isoformat(timespec="seconds"))
        for key, value in result.items():
            print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
