"""read_image / read_volume on NIfTI, Pillow formats and NumPy files."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from claimladder._core import ImageReadError
from claimladder.io import IMAGE_EXTENSIONS, Volume, read_image, read_volume

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


# --- NIfTI ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_axis_order_and_spacing(tmp_path, rng, suffix):
    data = rng.normal(size=(5, 6, 7)).astype(np.float32)  # (i, j, k)
    affine = np.diag([0.5, 0.75, 2.5, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 7.5]
    path = tmp_path / f"vol{suffix}"
    nib.save(nib.Nifti1Image(data, affine), path)

    volume = read_volume(path)
    assert isinstance(volume, Volume)
    assert volume.array.dtype == np.float32 and volume.array.shape == (7, 6, 5)
    np.testing.assert_array_equal(volume.array, data.transpose(2, 1, 0))
    assert volume.spacing == (2.5, 0.75, 0.5)
    # The affine maps array indices (d, h, w) to the world point of voxel (i, j, k) = (w, h, d).
    d, h, w = 3, 2, 4
    np.testing.assert_allclose(volume.affine @ [d, h, w, 1], affine @ [w, h, d, 1])

    image = read_image(path)
    np.testing.assert_array_equal(image, volume.array)
    np.testing.assert_array_equal(read_image(path, frame=6), volume.array[6])
    with pytest.raises(ValueError, match=r"\[0, 6\]"):
        read_image(path, frame=7)


def test_nifti_canonical_reorientation_keeps_world_positions(tmp_path, rng):
    data = rng.normal(size=(4, 5, 6)).astype(np.float32)
    # Stored left-to-right flipped (x axis points left) and axes permuted.
    affine = np.array(
        [[0.0, -1.0, 0.0, 20.0], [2.0, 0.0, 0.0, -5.0], [0.0, 0.0, 3.0, 1.0], [0, 0, 0, 1]]
    )
    path = tmp_path / "oblique.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)

    volume = read_volume(path)
    raw = read_volume(path, canonical=False)
    np.testing.assert_array_equal(raw.array, data.transpose(2, 1, 0))
    # i points anterior, j left, k superior: canonical RAS+ is (-j, i, k), and
    # the array reverses that into (D, H, W) = (S, A, R).
    assert volume.array.shape == (6, 4, 5)
    assert volume.spacing == (3.0, 2.0, 1.0)
    assert np.all(np.diag(np.fliplr(volume.affine[:3, :3])) > 0)
    inverse = np.linalg.inv(affine)
    for d, h, w in np.ndindex(volume.array.shape):
        world = volume.affine @ [d, h, w, 1]
        i, j, k, _ = np.rint(inverse @ world).astype(int)
        assert volume.array[d, h, w] == data[i, j, k]


def test_nifti_scaling_is_applied(tmp_path):
    stored = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = nib.Nifti1Image(stored, np.eye(4))
    img.header.set_slope_inter(2.0, -10.0)
    path = tmp_path / "scaled.nii"
    nib.save(img, path)
    np.testing.assert_array_equal(read_volume(path).array, (stored * 2.0 - 10.0).T)


def test_nifti_trailing_singleton_dropped_and_4d_rejected(tmp_path, rng):
    data = rng.normal(size=(3, 4, 5, 1)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "t1.nii.gz")
    assert read_image(tmp_path / "t1.nii.gz").shape == (5, 4, 3)
    nib.save(nib.Nifti1Image(rng.normal(size=(3, 4, 5, 2)), np.eye(4)), tmp_path / "t2.nii.gz")
    with pytest.raises(ImageReadError, match=r"t2\.nii\.gz.*4 dimensions.*Split"):
        read_image(tmp_path / "t2.nii.gz")


def test_nifti_2d(tmp_path, rng):
    data = rng.normal(size=(6, 7)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "slice.nii")
    np.testing.assert_array_equal(read_image(tmp_path / "slice.nii"), data.T)
    assert read_volume(tmp_path / "slice.nii").array.shape == (1, 7, 6)


def test_corrupt_nifti(tmp_path, rng):
    path = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4)), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageReadError, match=r"vol\.nii\.gz.*NIfTI"):
        read_image(path)
    (tmp_path / "text.nii").write_text("not nifti")
    with pytest.raises(ImageReadError, match=r"text\.nii"):
        read_volume(tmp_path / "text.nii")


def test_read_volume_rejects_other_formats(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
    with pytest.raises(ImageReadError, match=r"NIfTI.*read_image"):
        read_volume(path)


# --- Pillow ---------------------------------------------------------------------


def test_png_8bit(tmp_path, rng):
    data = rng.integers(0, 256, size=(9, 11), dtype=np.uint8)
    Image.fromarray(data).save(tmp_path / "a.png")
    got = read_image(tmp_path / "a.png")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, data)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_values_preserved(tmp_path, rng, suffix):
    data = rng.integers(0, 65536, size=(9, 11), dtype=np.uint16)
    data[0, 0] = 65535
    Image.fromarray(data).save(tmp_path / f"a{suffix}")
    got = read_image(tmp_path / f"a{suffix}")
    np.testing.assert_array_equal(got, data)
    assert got.max() == 65535


def test_rgb_and_rgba_png_become_luminance(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_allclose(read_image(tmp_path / "rgb.png"), rgb @ LUMA, rtol=1e-6)
    rgba = np.concatenate([rgb, np.full((7, 5, 1), 17, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(read_image(tmp_path / "rgba.png"), rgb @ LUMA, rtol=1e-6)


def test_palette_png(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(rgb).quantize(colors=8)
    img.save(tmp_path / "p.png")
    expected = np.asarray(img.convert("RGB")) @ LUMA
    np.testing.assert_allclose(read_image(tmp_path / "p.png"), expected, rtol=1e-6)


def test_jpeg_and_bmp(tmp_path):
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "a.jpg", quality=95)
    got = read_image(tmp_path / "a.jpg")
    assert got.shape == ramp.shape and np.abs(got - ramp).mean() < 2.0  # lossy
    Image.fromarray(ramp).save(tmp_path / "a.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "a.bmp"), ramp)


def test_float_tiff(tmp_path, rng):
    data = rng.normal(size=(5, 6)).astype(np.float32)
    Image.fromarray(data).save(tmp_path / "f.tiff")
    np.testing.assert_array_equal(read_image(tmp_path / "f.tiff"), data)


def test_multipage_tiff(tmp_path, rng):
    pages = [rng.integers(0, 65536, size=(4, 5), dtype=np.uint16) for _ in range(3)]
    images = [Image.fromarray(p) for p in pages]
    images[0].save(tmp_path / "stack.tif", save_all=True, append_images=images[1:])
    got = read_image(tmp_path / "stack.tif")
    np.testing.assert_array_equal(got, np.stack(pages))
    np.testing.assert_array_equal(read_image(tmp_path / "stack.tif", frame=2), pages[2])
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        read_image(tmp_path / "stack.tif", frame=3)


def test_binary_png(tmp_path):
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    Image.fromarray(mask).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_image(tmp_path / "m.png"), mask.astype(np.float32))


def test_truncated_and_fake_png(tmp_path, rng):
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:300])
    with pytest.raises(ImageReadError, match=r"cut\.png.*truncated"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "fake.png").write_text("hello")
    with pytest.raises(ImageReadError, match=r"fake\.png.*Pillow cannot decode"):
        read_image(tmp_path / "fake.png")


def test_uppercase_extension(tmp_path, rng):
    data = rng.integers(0, 256, size=(3, 3), dtype=np.uint8)
    Image.fromarray(data).save(tmp_path / "A.PNG", format="PNG")
    np.testing.assert_array_equal(read_image(tmp_path / "A.PNG"), data)


# --- NumPy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int16).reshape(3, 4),
        np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7,
        np.eye(3, dtype=bool),
    ],
    ids=["int16-2d", "float64-3d", "bool"],
)
def test_npy(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    got = read_image(tmp_path / "a.npy")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, array.astype(np.float32))


def test_npy_frame(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy", frame=1), array[1])


def test_npy_object_array_is_never_unpickled(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match=r"obj\.npy.*never unpickled"):
        read_image(tmp_path / "obj.npy")


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.arange(5.0), r"shape \(5,\)"),
        (np.zeros((2, 2, 2, 2)), r"shape \(2, 2, 2, 2\)"),
        (np.zeros((2, 2), complex), "complex"),
        (np.array([["a", "b"]]), "<U1"),
    ],
    ids=["1d", "4d", "complex", "strings"],
)
def test_npy_rejected_arrays(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ImageReadError, match=match):
        read_image(tmp_path / "bad.npy")


def test_npz_archive_named_npy(tmp_path):
    with open(tmp_path / "a.npy", "wb") as handle:
        np.savez(handle, image=np.zeros((2, 2)))
    with pytest.raises(ImageReadError, match=r"a\.npy.*\.npz archive"):
        read_image(tmp_path / "a.npy")


def test_grey_with_alpha_png(tmp_path, rng):
    grey = rng.integers(0, 256, size=(4, 5), dtype=np.uint8)
    alpha = np.full_like(grey, 9)
    Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), grey)


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((50, 50)))
    (tmp_path / "a.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:500])
    with pytest.raises(ImageReadError, match=r"a\.npy.*not a valid \.npy"):
        read_image(tmp_path / "a.npy")


def test_gzipped_nifti_detected_by_double_extension(tmp_path, rng):
    data = rng.normal(size=(2, 3, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "v.nii")
    (tmp_path / "v.NII.GZ").write_bytes(gzip.compress((tmp_path / "v.nii").read_bytes()))
    np.testing.assert_array_equal(read_image(tmp_path / "v.NII.GZ"), data.T)


def test_image_extensions_constant():
    assert {".dcm", ".nii", ".nii.gz", ".png", ".jpg", ".tif", ".bmp", ".npy"} <= set(
        IMAGE_EXTENSIONS
    )
