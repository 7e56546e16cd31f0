"""Properties every image perturbation must have, checked on real photographs and volumes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from claimladder.robustness import (
    DEFAULT_PERTURBATIONS,
    PERTURBATIONS,
    RANDOM_PERTURBATIONS,
    SEVERITY_LEVELS,
    BiasField,
    Crop,
    Downsample,
    GaussianBlur,
    GaussianNoise,
    Ghosting,
    IntensityScale,
    JpegCompression,
    Motion,
    RandomGaussianNoise,
    RicianNoise,
    Rotation,
    Spike,
    Translation,
    bias_field_basis,
    image_seeds,
)

IMAGE_PERTURBATIONS = [PERTURBATIONS[name] for name in DEFAULT_PERTURBATIONS]
IDS = list(DEFAULT_PERTURBATIONS)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_registry_is_complete():
    assert len(DEFAULT_PERTURBATIONS) == 14
    assert set(RANDOM_PERTURBATIONS) == set(PERTURBATIONS)
    for name, cls in PERTURBATIONS.items():
        assert cls.name == name
        assert len(cls.severity_parameters) == len(SEVERITY_LEVELS)
        assert cls.at_severity(0).is_identity
        assert not any(cls.at_severity(s).is_identity for s in SEVERITY_LEVELS[1:])
        assert "Severity levels" in cls.__doc__
        assert RANDOM_PERTURBATIONS[name]().name == f"random_{name}"


@pytest.mark.parametrize("cls", IMAGE_PERTURBATIONS, ids=IDS)
def test_severity_zero_is_the_identity(cls, photos, volumes):
    for images in (photos, volumes):
        out = cls.at_severity(0)(images, rng=0)
        np.testing.assert_array_equal(out, images)
        assert out is not images


@pytest.mark.parametrize("cls", IMAGE_PERTURBATIONS, ids=IDS)
def test_deterministic_for_a_given_rng(cls, photos):
    p = cls.at_severity(3)
    first, second = p(photos, rng=42), p(photos, rng=42)
    np.testing.assert_array_equal(first, second)
    other = p(photos, rng=43)
    if cls.uses_rng:
        assert not np.array_equal(first, other)
    else:
        np.testing.assert_array_equal(first, other)


GEOMETRIC = ("crop", "translation", "rotation")


@pytest.mark.parametrize("cls", [c for c in IMAGE_PERTURBATIONS if c.name not in GEOMETRIC],
                         ids=[n for n in IDS if n not in GEOMETRIC])
def test_degradation_grows_with_severity(cls, photos):
    """Mean squared error against the clean image (i.e. -PSNR) increases at every level.

    The random draws of one seed are shared across severities (nested k-space lines,
    proportional noise and coefficients), so this holds image by image, not only on average.
    """
    errors = np.array([[_mse(cls.at_severity(s)(photos, rng=7)[i], photos[i])
                        for s in SEVERITY_LEVELS] for i in range(len(photos))])
    assert (errors[:, 0] == 0).all()
    assert (np.diff(errors, axis=1) > 0).all(), errors


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_displacement_grows_with_severity(name):
    """An off-centre blob moves further at every level (MSE need not grow for geometry:
    a zoomed texture can resemble the original)."""
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 20.0) ** 2 + (xx - 44.0) ** 2) / 8.0)[None]

    def centroid(image):
        w = image / image.sum()
        return np.array([(w * yy).sum(), (w * xx).sum()])

    start = centroid(blob[0])
    moved = [np.linalg.norm(centroid(PERTURBATIONS[name].at_severity(s)(blob)[0]) - start)
             for s in SEVERITY_LEVELS]
    assert moved[0] == 0 and (np.diff(moved) > 0.1).all(), moved


@pytest.mark.parametrize("cls", IMAGE_PERTURBATIONS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int16])
def test_keeps_shape_and_dtype(cls, dtype, photos):
    images = (photos * 1000).astype(dtype) if np.dtype(dtype).kind in "iu" else \
        photos.astype(dtype)
    out = cls.at_severity(3)(images, rng=0)
    assert out.shape == images.shape and out.dtype == images.dtype
    single = cls.at_severity(3)(images[0], rng=0)
    assert single.shape == images[0].shape and single.dtype == images.dtype


@pytest.mark.parametrize("cls", IMAGE_PERTURBATIONS, ids=IDS)
def test_volumes(cls, volumes):
    p = cls.at_severity(4)
    out = p(volumes, rng=0)
    assert out.shape == volumes.shape and out.dtype == volumes.dtype
    assert _mse(out, volumes) > 0
    single = p(volumes[0], rng=0, spatial_dims=3)
    assert single.shape == volumes[0].shape


@pytest.mark.parametrize("cls", IMAGE_PERTURBATIONS, ids=IDS)
def test_batch_equals_per_image(cls, photos):
    """With per-image seeds, an image's result does not depend on its batch."""
    p = cls.at_severity(3)
    seeds = image_seeds(11, len(photos), owner="test")
    batch = p(photos, rng=seeds)
    for i in range(len(photos)):
        np.testing.assert_allclose(p(photos[i:i + 1], rng=seeds[i:i + 1])[0], batch[i],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", IMAGE_PERTURBATIONS, ids=IDS)
def test_torch_tensors_in_and_out(cls, photos):
    torch = pytest.importorskip("torch")
    tensor = torch.from_numpy(photos.copy())
    out = cls.at_severity(2)(tensor, rng=3)
    assert isinstance(out, torch.Tensor) and out.dtype == tensor.dtype
    np.testing.assert_array_equal(out.numpy(), cls.at_severity(2)(photos, rng=3))


@pytest.mark.parametrize("name", IDS)
def test_random_counterpart_records_and_replays(name, photos):
    """``Det(**row).apply(image, rng=[row.seed])`` reproduces every image of a random call."""
    random_cls = RANDOM_PERTURBATIONS[name]
    det = random_cls.deterministic
    result = random_cls().apply(photos, rng=5)
    table = result.parameters
    assert len(table) == len(photos) and (table["perturbation"] == name).all()
    fields = [f.name for f in dataclasses.fields(det)]
    for i, row in table.iterrows():
        replay = det(**{f: row[f] for f in fields})
        seeds = [int(row["seed"])] if "seed" in table else None
        np.testing.assert_allclose(replay(photos[i:i + 1], rng=seeds)[0], result.images[i],
                                   rtol=1e-5, atol=1e-6)


def test_random_parameters_stay_in_range(photos):
    result = RandomGaussianNoise(sigma=(0.01, 0.03)).apply(np.repeat(photos, 20, axis=0),
                                                           rng=0)
    sigma = result.parameters["sigma"].astype(float)
    assert sigma.between(0.01, 0.03).all() and sigma.nunique() == 60


def test_noise_std_matches_sigma(photos):
    out = GaussianNoise(sigma=0.05)(photos, rng=0)
    lo, hi = np.percentile(photos.reshape(3, -1)[:, ::1], [1, 99], axis=1)
    measured = (out - photos).reshape(3, -1).std(axis=1)
    np.testing.assert_allclose(measured, 0.05 * (hi - lo), rtol=0.05)


def test_rician_noise_is_biased_in_the_dark():
    dark = np.zeros((4, 64, 64), dtype=np.float32)
    dark[:, 0, 0] = 1.0  # the range is [0, 1]; span falls back to max - min
    out = RicianNoise(sigma=0.1)(dark, rng=0)
    # Rayleigh mean: sigma * sqrt(pi / 2).
    assert out[:, 1:].mean() == pytest.approx(0.1 * np.sqrt(np.pi / 2), rel=0.03)


def test_blur_preserves_mean_and_smooths(photos):
    out = GaussianBlur(sigma=2.0)(photos)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), photos.mean(axis=(1, 2)), rtol=1e-3)
    assert np.abs(np.diff(out, axis=2)).mean() < 0.5 * np.abs(np.diff(photos, axis=2)).mean()


def test_downsample_factor_one_and_constant_images():
    x = np.full((2, 30, 30), 3.0)
    np.testing.assert_allclose(Downsample(factor=3.0)(x), x)


def test_crop_zooms_in():
    x = np.zeros((1, 40, 40))
    x[0, 15:25, 15:25] = 1.0
    out = Crop(fraction=0.25)(x)
    assert out.sum() > 3 * x.sum()  # the central square doubles in each direction


def test_translation_moves_content_and_fills_background():
    x = np.zeros((1, 20, 20)) + 5.0
    x[0, 5, 5] = 9.0
    out = Translation(shift=(0.1, -0.2))(x)
    assert out[0, 7, 1] == 9.0 and out.min() == 5.0


def test_rotation_keeps_the_centre():
    x = np.zeros((1, 21, 21))
    x[0, 10, 10] = 1.0
    out = Rotation(degrees=37.0)(x)
    assert out[0, 10, 10] == pytest.approx(1.0)


def test_intensity_scale_is_linear(photos):
    out = IntensityScale(scale=1.5, offset=0.0)(photos)
    np.testing.assert_allclose(out, 1.5 * photos, rtol=1e-6)


def test_bias_field_basis_and_replay(photos):
    basis = bias_field_basis((64, 64), order=3)
    assert basis.shape == (9, 64 * 64)
    np.testing.assert_allclose(basis.max(axis=1), 1.0)
    coefficients = tuple(np.linspace(-0.2, 0.2, 9))
    out = BiasField(coefficients=coefficients)(photos)
    field = np.exp(np.asarray(coefficients) @ basis).reshape(64, 64)
    lo = photos.reshape(3, -1).min(axis=1)[:, None, None]
    np.testing.assert_allclose(out, lo + (photos - lo) * field, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs 9 coefficients"):
        BiasField(coefficients=(0.1, 0.2))(photos)


def test_motion_matches_an_independent_kspace_implementation(photos):
    """Rows of the 2D spectrum (phase-encoding lines) get the phase ramp of a translation.

    Oracle: numpy.fft in complex128 with the line order and displacements drawn as the
    documented recipe says (permutation of the lines, then uniform displacements).
    """
    seeds = [3, 4, 5]
    result = Motion(fraction=0.25, shift=0.05).apply(photos, rng=seeds)
    assert result.parameters["lines"].tolist() == [16, 16, 16]
    f = np.fft.fftfreq(64)
    for image, seed, out in zip(photos, seeds, result.images, strict=True):
        gen = np.random.default_rng(seed)
        order = gen.permutation(64)
        unit = gen.uniform(-1.0, 1.0, size=(64, 2))
        k = np.fft.fft2(image.astype(np.float64))
        for line in order[:16]:
            dy, dx = unit[line] * 0.05 * 64
            k[line] *= np.exp(-2j * np.pi * (f[line] * dy + f * dx))
        np.testing.assert_allclose(out, np.fft.ifft2(k).real, atol=2e-5)


def test_ghosting_repeats_along_the_axis():
    x = np.zeros((1, 32, 32), dtype=np.float32)
    x[0, 13:19, 12:20] = 1.0
    rows = np.abs(Ghosting(intensity=0.5, num_ghosts=4, axis=-2)(x) - x)[0].max(axis=1)
    cols = np.abs(Ghosting(intensity=0.5, num_ghosts=4, axis=-1)(x) - x)[0].max(axis=0)
    np.testing.assert_allclose(rows[:8], rows[8:16], atol=1e-6)  # period 32 / 4
    np.testing.assert_allclose(cols[:8], cols[8:16], atol=1e-6)


def test_spike_adds_a_stripe_pattern_of_the_given_amplitude(photos):
    result = Spike(intensity=0.1, n_spikes=2).apply(photos, rng=0)
    frequencies = result.parameters.loc[0, "frequencies"]
    assert len(frequencies) == 2 and all(any(k) for k in frequencies)
    lo, hi = np.percentile(photos[0][::1].ravel()[::1], [1, 99])
    expected = sum(Spike.pattern((64, 64), k) for k in frequencies) * 0.1 * (hi - lo)
    np.testing.assert_allclose(result.images[0] - photos[0], expected, atol=2e-3)


def test_jpeg_quality_none_and_constant_images():
    x = np.full((1, 16, 16), 7.0)
    np.testing.assert_array_equal(JpegCompression(quality=10)(x), x)
    assert JpegCompression(quality=None).is_identity


@pytest.mark.parametrize("factory, match", [
    (lambda: GaussianNoise(sigma=-0.1), "sigma"),
    (lambda: GaussianNoise.at_severity(6), "level"),
    (lambda: Crop(fraction=0.5), "fraction"),
    (lambda: Downsample(factor=0.5), ">= 1"),
    (lambda: Ghosting(num_ghosts=0), "num_ghosts"),
    (lambda: JpegCompression(quality=0), "quality"),
    (lambda: Translation(shift=1.5), "shift"),
    (lambda: RandomGaussianNoise(sigma=(0.3, 0.1)), "low <= high"),
], ids=["sigma", "level", "crop", "factor", "ghosts", "quality", "shift", "range"])
def test_parameter_validation(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_input_validation(photos):
    with pytest.raises(ValueError, match="NaN"):
        GaussianNoise()(np.full((1, 4, 4), np.nan))
    with pytest.raises(ValueError, match="channel"):
        GaussianNoise()(np.zeros((1, 1, 4, 4, 4)))
    with pytest.raises(ValueError, match="per image"):
        GaussianNoise()(photos, rng=[1, 2])
