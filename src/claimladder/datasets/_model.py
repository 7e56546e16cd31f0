"""The demo model: a small, shortcut-prone scikit-learn classifier on downsampled pixels."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin

from .._core import AlignmentError, RngLike, StudySpecError, atomic_write_text, check_rng
from ._progress import track
from ._reader_demo import make_demo_readings

__all__ = ["DEMO_MODEL_NAME", "make_demo_predictions"]

#: The value of the ``model`` column the demo model writes.
DEMO_MODEL_NAME = "demo-model"

_WORK_SIZE = 64
_GRID = 16
_THUMB = 32
_N_COMPONENTS = 50
_DOG_SIGMAS = (1.5, 4.0)
_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
_DOG_PERCENTILES = (50, 90, 99, 99.9, 100)


def _resample(image: np.ndarray, size: int) -> np.ndarray:
    """Block-mean to ``size`` x ``size`` when the shape divides, else linear zoom."""
    h, w = image.shape
    if h % size == 0 and w % size == 0:
        return image.reshape(size, h // size, size, w // size).mean(axis=(1, 3))
    return ndimage.zoom(image, (size / h, size / w), order=1)


def _blocks(stack: np.ndarray, grid: int) -> np.ndarray:
    n, size = stack.shape[0], stack.shape[-1]
    step = size // grid
    return stack.reshape(n, grid, step, grid, step).mean(axis=(2, 4)).reshape(n, -1)


def _standardize(stack: np.ndarray) -> np.ndarray:
    """Centre each image on its median and scale by its 2-98 percentile range.

    A common, and here deliberately naive, preprocessing: anything bright in
    the image (a marker, burned-in text) takes part in it.
    """
    lo, med, hi = np.percentile(stack, [2, 50, 98], axis=(1, 2))
    return (stack - med[:, None, None]) / np.maximum(hi - lo, 1e-6)[:, None, None]


def _image_features(stack: np.ndarray) -> np.ndarray:
    """Features of (n, 64, 64) images that need no fitting.

    16 x 16 block means of the standardized image (anatomy, and anything
    drawn in a corner), its intensity percentiles and standard deviation,
    and percentiles of a difference-of-Gaussians response (focal blobs),
    followed by a 32 x 32 thumbnail for :class:`_PCAResidual`.
    """
    n = stack.shape[0]
    norm = _standardize(stack)
    pct = np.percentile(norm, _PERCENTILES, axis=(1, 2)).T
    fine, coarse = (ndimage.gaussian_filter(norm, (0, s, s)) for s in _DOG_SIGMAS)
    dog_pct = np.percentile((fine - coarse).reshape(n, -1), _DOG_PERCENTILES, axis=1).T
    thumb = _blocks(ndimage.gaussian_filter(norm, (0, 1.0, 1.0)), _THUMB)
    return np.hstack([_blocks(norm, _GRID), pct, dog_pct, norm.std(axis=(1, 2))[:, None], thumb])


class _PCAResidual(TransformerMixin, BaseEstimator):
    """Append what the training images' principal components cannot explain.

    The last ``32 * 32`` columns are thumbnails. A PCA fit on the training
    thumbnails captures normal anatomy and positioning; a focal opacity,
    which can sit anywhere in a lung, is left in the residual. The thumbnail
    columns are replaced by the positive residual's 8 x 8 block means, its
    upper percentiles over the chest, and the residual energy.
    """

    def __init__(self, n_components: int = _N_COMPONENTS, random_state: int | None = None):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> _PCAResidual:
        from sklearn.decomposition import PCA

        thumbs = X[:, -(_THUMB * _THUMB) :]
        # At most one component per five training images: more would fit the
        # training images themselves and leave them no residual.
        k = max(1, min(self.n_components, thumbs.shape[0] // 5, thumbs.shape[1]))
        self.pca_ = PCA(n_components=k, random_state=self.random_state).fit(thumbs)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        head, thumbs = X[:, : -(_THUMB * _THUMB)], X[:, -(_THUMB * _THUMB) :]
        residual = thumbs - self.pca_.inverse_transform(self.pca_.transform(thumbs))
        positive = np.maximum(residual, 0.0).reshape(n, _THUMB, _THUMB)
        chest = positive[:, 6:26, 3:29].reshape(n, -1)
        return np.hstack(
            [
                head,
                _blocks(positive, 8),
                np.percentile(chest, (90, 99, 100), axis=1).T,
                (residual**2).mean(axis=1, keepdims=True),
            ]
        )


class DemoModel:
    """The fitted demo classifier as a model: ``predict_proba(images) -> (n,)`` probabilities.

    Accepts a batch ``(n, H, W)`` (or a list of 2D arrays) of decoded images, as
    :func:`claimladder.models.load_model` expects of a callable, so the ladder's
    robustness and masking probes can run fresh inference on perturbed images.
    """

    def __init__(self, pipeline: object) -> None:
        self.pipeline = pipeline

    def predict_proba(self, images: Any) -> np.ndarray:
        """Probability of a focal opacity for every image of the batch."""
        stack = np.stack([_resample(np.asarray(im, dtype=np.float64), _WORK_SIZE)
                          for im in images]) if len(images) else np.zeros((0, _WORK_SIZE,
                                                                          _WORK_SIZE))
        if not len(stack):
            return np.zeros(0)
        return self.pipeline.predict_proba(_image_features(stack))[:, 1]

    def __call__(self, images: Any) -> np.ndarray:
        return self.predict_proba(images)


def _load(paths: Iterable[Path], total: int, progress: bool) -> np.ndarray:
    from ..io import read_image

    images = [
        _resample(np.asarray(read_image(p), dtype=np.float64), _WORK_SIZE)
        for p in track(paths, total=total, description="Reading images", enabled=progress)
    ]
    return np.stack(images) if images else np.zeros((0, _WORK_SIZE, _WORK_SIZE))


def _study_files(study_dir: Path) -> dict[str, object]:
    spec_path = study_dir / "study.toml"
    try:
        spec = tomllib.loads(spec_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudySpecError(
            f"make_demo_predictions found no study.toml in {str(study_dir)!r}. Pass the "
            "folder written by make_demo_study."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise StudySpecError(f"{str(spec_path)!r} is not valid TOML ({exc}).") from None
    data = spec.get("data", {})
    columns = data.get("columns", {})
    return {
        "cohort": study_dir / data.get("cohort", "cohort.csv"),
        "predictions": study_dir / data.get("predictions", "predictions.csv"),
        "images_root": study_dir / data.get("images_root", "."),
        "image_id": columns.get("image_id", "image_id"),
        "patient_id": columns.get("patient_id", "patient_id"),
        "path": columns.get("path", "path"),
        "label": columns.get("label", "label"),
    }


def make_demo_predictions(
    study_dir: str | os.PathLike[str],
    *,
    train_image_ids: Iterable[str],
    rng: RngLike = 0,
    progress: bool = False,
) -> Path:
    """Train the demo model on ``train_image_ids`` and write ``predictions.csv``.

    See :func:`fit_demo_model` (this returns only the path of the predictions).
    """
    return fit_demo_model(study_dir, train_image_ids=train_image_ids, rng=rng,
                          progress=progress)[1]


def fit_demo_model(
    study_dir: str | os.PathLike[str],
    *,
    train_image_ids: Iterable[str],
    rng: RngLike = 0,
    progress: bool = False,
) -> tuple[DemoModel, Path]:
    """Train the demo model on ``train_image_ids`` and score every cohort image.

    The model reads each image with :func:`claimladder.io.read_image`,
    block-means it to 64 x 64 and standardizes it per image. Its features
    are 16 x 16 block means, intensity percentiles, blob
    (difference-of-Gaussians) statistics, and what a PCA of the training
    thumbnails (normal anatomy and positioning) leaves unexplained; a
    ``StandardScaler`` and an L2 ``LogisticRegression`` (C = 0.1) follow.
    PCA, scaler and classifier are one scikit-learn pipeline fit on the
    training images only; its probabilities are Platt-scaled on out-of-fold
    scores (five folds of whole patients, ``CalibratedClassifierCV`` with
    ``ensemble=False``), a monotone map that leaves every ranking metric
    unchanged, so the model is calibrated where it was developed. Like many real models it is shortcut-prone: on
    the planted study it leans on site A's corner marker, and it degrades on
    the external sites (see :mod:`claimladder.datasets` for the AUROCs).

    Runs in about 5 s for the default study on 2 cores (reading the images
    dominates).

    Parameters
    ----------
    study_dir : str or path-like
        A folder written by :func:`make_demo_study` (its ``study.toml`` names
        the cohort, the image root and the predictions file).
    train_image_ids : iterable of str
        Image ids to train on, e.g. ``DemoStudy.development_ids``; both
        classes must be present.
    rng : int, numpy.random.Generator or None, default 0
        Seed of the classifier's solver.
    progress : bool, default False
        Show a rich progress bar while reading images.

    Returns
    -------
    model : DemoModel
        The fitted model, for fresh inference (robustness, masking probes).
    path : pathlib.Path
        The predictions file, columns ``image_id, model, score`` (the
        predicted probability of the positive label), one row per cohort
        image, written atomically. When the folder is a demo study whose
        ``study.toml`` declares a reader table, the simulated reader study
        (aided by these scores) is written next to it
        (:func:`claimladder.datasets._reader_demo.make_demo_readings`).

    Raises
    ------
    StudySpecError
        ``study_dir`` has no readable ``study.toml``.
    AlignmentError
        A training id is not in the cohort, or the training images hold one
        class only.
    TypeError
        ``train_image_ids`` is a single string.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from claimladder.datasets import make_demo_study
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     demo = make_demo_study(tmp, n_patients=40, image_size=64)
    ...     path = make_demo_predictions(tmp, train_image_ids=demo.development_ids)
    ...     predictions = pd.read_csv(path)
    >>> list(predictions.columns), len(predictions) == demo.n_images
    (['image_id', 'model', 'score'], True)
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    study_dir = Path(study_dir)
    files = _study_files(study_dir)
    seed = int(check_rng(rng).integers(0, 2**31 - 1))
    cohort = pd.read_csv(files["cohort"], dtype={files["image_id"]: str, files["path"]: str})
    ids = cohort[files["image_id"]].astype(str).to_numpy()
    if isinstance(train_image_ids, str):
        raise TypeError(
            "The 'train_image_ids' parameter of make_demo_predictions must be an iterable "
            "of image ids, not a single string."
        )
    train = {str(i) for i in train_image_ids}
    unknown = sorted(train.difference(ids))
    if unknown:
        raise AlignmentError(
            f"{len(unknown)} training image id(s) are not in {str(files['cohort'])!r}, "
            f"e.g. {unknown[:5]}. Pass ids from its {files['image_id']!r} column."
        )
    is_train = np.isin(ids, list(train))
    labels = cohort[files["label"]].to_numpy()
    y_train = labels[is_train]
    if len(np.unique(y_train)) < 2:
        raise AlignmentError(
            f"The {int(is_train.sum())} training images hold one class only "
            f"({np.unique(y_train).tolist()}); the demo model needs both. Pass the "
            "development partition."
        )

    paths = [files["images_root"] / p for p in cohort[files["path"]]]
    features = _image_features(_load(paths, len(paths), progress))
    pipeline = make_pipeline(
        _PCAResidual(random_state=seed),
        StandardScaler(),
        LogisticRegression(C=0.1, max_iter=5000, random_state=seed),
    )
    # Platt scaling on out-of-fold scores (folds of whole patients), then the pipeline refit
    # on every training image: a monotone map of its scores, so ranking is unchanged.
    patients = (cohort[files["patient_id"]].astype(str).to_numpy()[is_train]
                if files["patient_id"] in cohort.columns else ids[is_train])
    folds = list(GroupKFold(n_splits=5).split(features[is_train], y_train, patients))
    model = CalibratedClassifierCV(pipeline, method="sigmoid", cv=folds, ensemble=False)
    model.fit(features[is_train], y_train.astype(int))
    score = model.predict_proba(features)[:, 1]
    out = pd.DataFrame({"image_id": ids, "model": DEMO_MODEL_NAME, "score": score})
    target = Path(files["predictions"])
    atomic_write_text(target, out.to_csv(index=False, lineterminator="\n", float_format="%.10g"))
    # The demo's reader study is read with the model's scores shown, so it follows them.
    make_demo_readings(study_dir, rng=seed)
    return DemoModel(model), target
