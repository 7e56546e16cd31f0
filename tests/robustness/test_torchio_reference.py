"""Our perturbations against TorchIO's (torchio 1.2.1), used the way TorchIO users do.

Where both implement the same model (ghosting, spike, blur, gamma) the outputs
must agree to float precision; where TorchIO's parametrisation differs (noise
in absolute units, bias-field coefficients) the statistics must agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from claimladder.robustness import (
    BiasField,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    Ghosting,
    Spike,
    TorchIOPerturbation,
    bias_field_basis,
)

torch = pytest.importorskip("torch")
tio = pytest.importorskip("torchio")
intensity = pytest.importorskip("torchio.transforms.augmentation.intensity")


def _torchio(transform, image: np.ndarray, seed: int = 0) -> np.ndarray:
    """One 2D image through TorchIO as its users do: a Subject with a (1, H, W, 1) tensor."""
    tensor = torch.from_numpy(np.ascontiguousarray(image[None, :, :, None], dtype=np.float32))
    torch.manual_seed(seed)
    out = transform(tio.Subject(image=tio.ScalarImage(tensor=tensor)))
    return out["image"].data[0, :, :, 0].numpy()


def _span(image: np.ndarray) -> float:
    """The documented robust span: 1st-99th order statistics of <= 2048 strided pixels."""
    sample = np.sort(image.ravel()[:: -(-image.size // 2048)])
    m = sample.size
    return float(sample[round(0.99 * (m - 1))] - sample[round(0.01 * (m - 1))])


@pytest.mark.parametrize("num_ghosts, strength, axis", [(4, 0.5, 0), (6, 0.8, 1), (3, 0.2, 0)])
def test_ghosting_equals_torchio(photos, num_ghosts, strength, axis):
    ghosting = intensity.random_ghosting.Ghosting(num_ghosts=num_ghosts, axis=axis,
                                                  intensity=strength, restore=None)
    ours = Ghosting(intensity=strength, num_ghosts=num_ghosts, axis=axis)(photos)
    for image, out in zip(photos, ours, strict=True):
        np.testing.assert_allclose(out, _torchio(ghosting, image), atol=2e-6)


def test_spike_equals_torchio(photos):
    image = photos[0]
    position, factor = np.array([0.7, 0.35, 0.0]), 0.4
    spike = intensity.random_spike.Spike(spikes_positions=position[None], intensity=factor)
    theirs = _torchio(spike, image)
    # TorchIO: spike at floor(pos * shape) of the centred spectrum, amplitude factor * max|K|.
    frequency = tuple(int(np.floor(p * n)) - n // 2 for p, n in zip(position[:2], (64, 64),
                                                                     strict=True))
    amplitude = factor * np.abs(np.fft.fftn(image.astype(np.float64))).max() / image.size
    pattern = Spike.pattern((64, 64), frequency)
    np.testing.assert_allclose(theirs, image + amplitude * pattern, atol=2e-5)
    # Our Spike with the equivalent intensity reproduces it for the frequency it draws.
    result = Spike(intensity=amplitude / _span(image)).apply(image[None], rng=0)
    drawn = result.parameters.loc[0, "frequencies"][0]
    np.testing.assert_allclose(result.images[0],
                               image + amplitude * Spike.pattern((64, 64), drawn), atol=2e-5)


@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0])
def test_blur_equals_torchio(photos, sigma):
    blur = intensity.random_blur.Blur(std=(sigma, sigma, sigma))
    ours = GaussianBlur(sigma=sigma)(photos)
    for image, out in zip(photos, ours, strict=True):
        np.testing.assert_allclose(out, _torchio(blur, image), atol=2e-6)


@pytest.mark.parametrize("gamma", [0.6, 1.4, 2.2])
def test_gamma_equals_torchio_on_unit_range(photos, gamma):
    transform = intensity.random_gamma.Gamma(gamma=gamma)
    ours = Gamma(gamma=gamma)(photos)  # each photo spans exactly [0, 1]
    for image, out in zip(photos, ours, strict=True):
        np.testing.assert_allclose(out, _torchio(transform, image), atol=2e-6)


def test_noise_std_matches_torchio(photos):
    image = photos[1]
    std = 0.05
    theirs = np.std(_torchio(tio.RandomNoise(std=(std, std)), image) - image)
    ours = np.std(GaussianNoise(sigma=std / _span(image))(image[None], rng=0)[0] - image)
    assert theirs == pytest.approx(std, rel=0.03)
    assert ours == pytest.approx(theirs, rel=0.05)


def _log_field_stats(fields: list[np.ndarray]) -> tuple[float, float]:
    """Mean std of the centred log field, and mean relative Laplacian energy (roughness)."""
    stds, rough = [], []
    for field in fields:
        log = np.log(field)
        log = log - log.mean()
        lap = log[2:, 1:-1] + log[:-2, 1:-1] + log[1:-1, 2:] + log[1:-1, :-2] - 4 * log[1:-1, 1:-1]
        stds.append(log.std())
        rough.append(np.sqrt((lap ** 2).mean()) / max(log.std(), 1e-12))
    return float(np.mean(stds)), float(np.mean(rough))


def test_bias_field_statistics_match_torchio():
    """Same model (order-3 polynomial, coefficients uniform in [-0.5, 0.5], exp): the spread
    and the smoothness of the log field agree with TorchIO's ``RandomBiasField``."""
    ones = np.ones((64, 64), dtype=np.float32)
    theirs = [_torchio(tio.RandomBiasField(coefficients=0.5, order=3), ones, seed=s)
              for s in range(150)]
    # Our field multiplies x - min(x): on a zero image with one pixel at -1 that is 1 almost
    # everywhere, so the output + 1 is the field itself (up to that pixel).
    base = np.zeros((150, 64, 64), dtype=np.float32)
    base[:, 0, 0] = -1.0
    ours = BiasField(strength=0.5, order=3)(base, rng=0) + 1.0
    ours[:, 0, 0] = ours[:, 0, 1]
    std_t, rough_t = _log_field_stats(theirs)
    std_o, rough_o = _log_field_stats(list(ours))
    assert std_o == pytest.approx(std_t, rel=0.15)
    assert rough_o == pytest.approx(rough_t, rel=0.25)
    # Both are smooth: the Laplacian is a tiny fraction of the field's variation.
    assert rough_t < 0.01 and rough_o < 0.01
    assert bias_field_basis((64, 64), 3).shape[0] == 9  # TorchIO's 10 terms minus the constant


def test_torchio_adapter_one_subject_per_image():
    images = np.zeros((4, 16, 16), dtype=np.float32)
    adapter = TorchIOPerturbation(tio.RandomNoise(std=(0.1, 0.1)))
    state = torch.random.get_rng_state()
    out = adapter(images, rng=0)
    assert torch.equal(state, torch.random.get_rng_state())  # caller's state untouched
    # Identical inputs get different noise (a batch tensor would share one draw).
    assert not np.allclose(out[0], out[1])
    np.testing.assert_array_equal(out, adapter(images, rng=0))
    result = adapter.apply(images, rng=[5, 6, 7, 8])
    np.testing.assert_array_equal(result.images[2], adapter(images[2:3], rng=[7])[0])
    assert result.parameters.loc[0, "applied"][0][0] == "Noise"


def test_torchio_adapter_volumes_and_shape_check():
    volumes = np.random.default_rng(0).random((2, 8, 12, 12), dtype=np.float32)
    out = TorchIOPerturbation(tio.RandomGamma(log_gamma=(0.2, 0.2)))(volumes, rng=0)
    np.testing.assert_allclose(out, volumes ** np.exp(0.2), rtol=1e-5)
    with pytest.raises(ValueError, match="changed the image shape"):
        TorchIOPerturbation(tio.Resize((8, 8, 1)))(np.zeros((1, 16, 16), np.float32))
