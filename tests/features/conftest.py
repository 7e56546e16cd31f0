"""Real images shared by the feature tests: scikit-image samples and DICOM test files."""

from __future__ import annotations

import glob
import os
import site

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from claimladder.io import read_image

# Bundled with scikit-image (no download); colour ones are converted to luminance.
# ("cat" is the same picture as "chelsea", so it is left out: the images are distinct.)
SKIMAGE_NAMES = (
    "astronaut", "binary_blobs", "brick", "camera", "cell", "chelsea", "clock",
    "coffee", "coins", "grass", "gravel", "horse", "hubble_deep_field",
    "immunohistochemistry", "microaneurysms", "moon", "page", "retina", "rocket",
    "shepp_logan_phantom", "text",
)
# pydicom's own test files, and pydicom-data's when installed.
DICOM_NAMES = (
    "CT_small.dcm", "MR_small.dcm", "RG1_UNCR.dcm", "RG3_UNCR.dcm", "MR2_UNCR.dcm",
    "US1_UNCR.dcm", "693_UNCR.dcm", "OBXXXX1A.dcm",
)


def to_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    lo, hi = image.min(), image.max()
    return np.round(255 * (image - lo) / (hi - lo if hi > lo else 1.0)).astype(np.uint8)


def _skimage_images() -> dict[str, np.ndarray]:
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    out = {}
    for name in SKIMAGE_NAMES:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 3:
            image = np.asarray(Image.fromarray(image[..., :3]).convert("L"))
        out[f"skimage:{name}"] = to_uint8(image)
    return out


def _dicom_images() -> dict[str, np.ndarray]:
    out = {}
    for name in DICOM_NAMES:
        path = get_testdata_file(name)
        if path is not None:
            image = read_image(path)
            out[f"dicom:{name}"] = to_uint8(image if image.ndim == 2 else image[0])
    return out


@pytest.fixture(scope="session")
def real_images() -> dict[str, np.ndarray]:
    """Named uint8 greyscale images of many kinds and sizes."""
    images = {**_skimage_images(), **_dicom_images()}
    if len(images) < 20:
        pytest.skip("too few sample images installed (scikit-image, pydicom test files)")
    return images


@pytest.fixture(scope="session")
def dicom_images() -> dict[str, np.ndarray]:
    return _dicom_images()


@pytest.fixture(scope="session")
def deid_ultrasound_paths() -> list[str]:
    """deid-data's ultrasound DICOMs with burned-in text."""
    paths = []
    for root in site.getsitepackages():
        paths += sorted(glob.glob(os.path.join(root, "deid_data", "data", "ultrasounds", "*.dcm")))
    return paths
