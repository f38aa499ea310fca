"""Image loading, preprocessing, augmentation, folder data sets, splits and phantoms."""

import json

import numpy as np
import pytest
from PIL import Image

from minivgg.imaging.augment import STRATEGIES, augment
from minivgg.imaging.datasets import DatasetError, FolderDataset, stratified_kfold, stratified_split
from minivgg.imaging.imageio import ImageError, load_image
from minivgg.imaging.phantoms import phantom, write_phantoms
from minivgg.imaging.preprocess import center_crop, preprocess, preprocessing_settings, wavelet_denoise


@pytest.fixture
def gradient_image():
    return (np.add.outer(np.arange(40), np.arange(50)) * 2).astype(np.uint8)   # 0..178


@pytest.mark.parametrize("mode,suffix", [("L", ".png"), ("L", ".jpg"), ("L", ".bmp"), ("L", ".tif"),
                                         ("RGB", ".png"), ("RGBA", ".png"), ("P", ".png"), ("CMYK", ".jpg"),
                                         ("I;16", ".png"), ("I", ".tif")])
def test_load_image_modes(tmp_path, gradient_image, mode, suffix):
    base = Image.fromarray(gradient_image)
    if mode == "I;16":
        im = Image.fromarray(gradient_image.astype(np.uint16) * 257)
    elif mode == "I":
        im = Image.fromarray(gradient_image.astype(np.int32) * 257)
    else:
        im = base.convert(mode)
    path = tmp_path / f"x{suffix}"
    im.save(path)
    out = load_image(path)
    assert out.shape == (40, 50) and out.dtype == np.float32
    tol = 0.03 if suffix == ".jpg" else 1e-3
    np.testing.assert_allclose(out, gradient_image / 255.0, atol=tol)


def test_load_image_applies_exif_orientation(tmp_path, gradient_image):
    im = Image.fromarray(gradient_image)
    exif = im.getexif()
    exif[0x0112] = 6            # "rotate 90 CW to display"
    im.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (50, 40)


def test_load_image_16bit_keeps_full_range(tmp_path):
    a = np.array([[0, 1000, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "d.png")
    np.testing.assert_allclose(load_image(tmp_path / "d.png"), a / 65535.0, rtol=1e-6)


def test_bad_images_are_clear_errors(tmp_path, gradient_image):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    Image.fromarray(gradient_image).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    for name, needle in [("empty.png", "empty file"), ("text.png", "not a readable image"),
                         ("cut.png", "not a readable image|truncated or corrupt"), ("nope.png", "no such file")]:
        with pytest.raises(ImageError, match=needle) as err:
            load_image(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(ImageError, match="exceeds the limit"):
        load_image(tmp_path / "full.png", max_pixels=100)


def test_wavelet_step_lowers_noise_and_keeps_shape():
    clean = phantom(0, 0, 0, 128)[0].astype(np.float64)
    noisy = clean + np.random.default_rng(0).normal(0, 0.05, clean.shape)
    den = wavelet_denoise(noisy)
    assert den.shape == noisy.shape
    err_before = np.sqrt(np.mean((noisy - clean) ** 2))
    err_after = np.sqrt(np.mean((den - clean) ** 2))
    assert err_after < 0.7 * err_before


def test_preprocess_shape_and_normalisation():
    s = preprocessing_settings(224)
    assert (s["resize"], s["crop"]) == (256, 224)
    x = preprocess(np.full((300, 200), 0.5, np.float32), s)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 100, 100], (0.5 - np.array(s["mean"])) / np.array(s["std"]), atol=1e-3)
    assert preprocess(np.zeros((64, 64)), preprocessing_settings(64, wavelet=None)).shape == (3, 64, 64)
    assert center_crop(np.arange(25).reshape(5, 5), 3)[0, 0] == 6


def test_augmentation_ranges():
    rng = np.random.default_rng(0)
    img = np.full((32, 32), 0.6, np.float32)
    seen = set()
    for _ in range(200):
        out, info = augment(img, rng)
        seen.add(info["strategy"])
        assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
        if "angle" in info:
            assert -45 <= info["angle"] <= 45
        if "brightness" in info:
            assert 0.6 <= info["brightness"] <= 1.4
            if info["strategy"] == "brightness":
                assert out[16, 16] == pytest.approx(min(0.6 * info["brightness"], 1.0), abs=1e-6)
    assert seen == set(STRATEGIES)
    a, _ = augment(img, np.random.default_rng(5))
    b, _ = augment(img, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_stratified_kfold():
    labels = np.array([0] * 38 + [1] * 12)
    folds = stratified_kfold(labels, 5, seed=1)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(50))                 # each sample tested exactly once
    for train, test in folds:
        assert not set(train) & set(test)
        counts = np.bincount(labels[test], minlength=2)
        assert abs(counts[0] - 38 / 5) < 1 and abs(counts[1] - 12 / 5) < 1
    with pytest.raises(DatasetError, match="smallest class"):
        stratified_kfold(labels, 13)


def test_stratified_split():
    labels = np.array([0] * 30 + [1] * 10)
    train, held = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[held]).tolist() == [6, 2]
    assert len(set(train) | set(held)) == 40


def make_folder(root, spec):
    for cls, n in spec.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(phantom(0, i, 0, 48)[0].__mul__(255).astype(np.uint8)).save(root / cls / f"{i}.png")


def test_folder_dataset_skips_broken_files(tmp_path):
    make_folder(tmp_path, {"A": 3, "B": 2})
    (tmp_path / "B" / "bad.png").write_bytes(b"garbage")
    (tmp_path / "B" / "notes.txt").write_text("ignored: not an image suffix")
    ds = FolderDataset(tmp_path, preprocessing_settings(32))
    assert ds.class_names == ["A", "B"] and len(ds) == 5
    assert len(ds.broken) == 1 and "bad.png" in ds.broken[0]
    x, y = ds.batch([0, 4])
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [0, 1]


@pytest.mark.parametrize("spec,needle", [({"A": 2}, "at least two classes"), ({"A": 2, "B": 0}, "holds no image"),
                                         ({}, "at least two classes")])
def test_bad_folders(tmp_path, spec, needle):
    make_folder(tmp_path, spec)
    with pytest.raises(DatasetError, match=needle):
        FolderDataset(tmp_path, preprocessing_settings(32))


def test_class_names_must_match(tmp_path):
    make_folder(tmp_path, {"A": 1, "B": 1})
    with pytest.raises(DatasetError, match="differ from the model's classes"):
        FolderDataset(tmp_path, preprocessing_settings(32), class_names=["Normal", "RA"])
    with pytest.raises(DatasetError, match="no such folder"):
        FolderDataset(tmp_path / "missing", preprocessing_settings(32))


def test_phantoms_deterministic_with_masks(tmp_path):
    a, ma = phantom(3, 7, 1, 96)
    b, mb = phantom(3, 7, 1, 96)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    assert ma.any() and not phantom(3, 6, 0, 96)[1].any()        # RA has lesions, Normal none
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.05
    paths = write_phantoms(tmp_path / "p", 4, seed=2, size=64)
    assert len(paths) == 4 and all(p.exists() for p in paths)
    assert (tmp_path / "p" / "masks" / "RA" / "ra_00001.png").exists()
    assert json.loads((tmp_path / "p" / "phantoms.json").read_text())["seed"] == 2
    ds = FolderDataset(tmp_path / "p" / "images", preprocessing_settings(32))
    assert ds.class_names == ["Normal", "RA"]


def test_dicom_modality_lut_and_monochrome1(tmp_path):
    from tests.test_edges import write_dicom

    def write(name, photometric, pixels):
        return write_dicom(tmp_path / name, pixels.astype(np.uint16), photometric, BitsStored=12, HighBit=11,
                           RescaleSlope=2, RescaleIntercept=-100)

    pixels = np.array([[0, 1000], [2000, 4000]])
    mono2 = load_image(write("a.dcm", "MONOCHROME2", pixels))
    # Scaled by the range the rescaled 12-bit type can take (2 * [0, 4095] - 100), as a PNG is by its type's
    mono2_expected = (2 * pixels - 100 - (-100)) / (2 * 4095)
    np.testing.assert_allclose(mono2, mono2_expected, atol=1e-6)
    mono1 = load_image(write("b.dcm", "MONOCHROME1", pixels))
    np.testing.assert_allclose(mono1, 1 - mono2_expected, atol=1e-6)   # inverted: bright = dense
    (tmp_path / "c.dcm").write_bytes(b"DICM but not really")
    with pytest.raises(ImageError, match="c.dcm: unreadable DICOM"):
        load_image(tmp_path / "c.dcm")
