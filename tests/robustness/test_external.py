"""The MONAI adapter's protocol (MONAI itself is not installed here: a transform with the
same interface -- ``set_random_state(seed=...)`` and a channel-first array call -- stands in)."""

from __future__ import annotations

import numpy as np
import pytest

from claimladder.robustness import MonaiPerturbation


class _RandNoiseLike:
    """Mimics monai.transforms.RandGaussianNoise: a RandomState on the object, (C, ...) in."""

    def __init__(self, std: float) -> None:
        self.std = std
        self.R = np.random.RandomState()
        self.calls: list[tuple[int, ...]] = []

    def set_random_state(self, seed=None, state=None):
        self.R = np.random.RandomState(seed)
        return self

    def __call__(self, img):
        self.calls.append(img.shape)
        return img + self.R.normal(0.0, self.std, img.shape).astype(img.dtype)


def test_one_call_per_image_channel_first_and_seeded():
    transform = _RandNoiseLike(0.1)
    adapter = MonaiPerturbation(transform)
    images = np.zeros((3, 8, 8), dtype=np.float32)
    result = adapter.apply(images, rng=[1, 2, 3])
    assert transform.calls == [(1, 8, 8)] * 3
    assert result.images.shape == images.shape and result.images.dtype == np.float32
    # Image 2 depends on its own seed only, not on its position in the batch.
    np.testing.assert_array_equal(adapter(images[2:3], rng=[3])[0], result.images[2])
    assert not np.allclose(result.images[0], result.images[1])
    assert result.parameters["seed"].tolist() == [1, 2, 3]
    assert adapter.name == "monai__randnoiselike"


def test_volumes_and_shape_check():
    adapter = MonaiPerturbation(_RandNoiseLike(0.1))
    assert adapter(np.zeros((2, 4, 6, 6), np.float32), rng=0).shape == (2, 4, 6, 6)
    with pytest.raises(ValueError, match="changed the image shape"):
        MonaiPerturbation(lambda img: img[:, :4])(np.zeros((1, 8, 8), np.float32))
    with pytest.raises(TypeError, match="callable"):
        MonaiPerturbation(3)
