"""Explanations against the phantoms' ground truth: twin swap, lesion mass, pointing game, the
Grad-CAM layer, orientation augmentation, the explanation benchmark and the Clever-Hans lesson."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivgg import VGG8, ExplainSettings, save_model, softmax
from minivgg.deploy import Classifier
from minivgg.explain import GradCAM
from minivgg.explain.checks import lesion_mass_ratio, pointing_game, twin_swap
from minivgg.explain.gradcam import default_layer
from minivgg.imaging.augment import augment, orient
from minivgg.imaging.phantoms import PhantomSettings, make_phantom
from minivgg.imaging.preprocess import preprocessing_settings

ROOT = Path(__file__).resolve().parents[1]


class BrightSpotModel:
    """A stand-in model: the RA logit rises with the brightest 4x4 patch's excess over the median."""
    dtype = np.float32

    def __init__(self, image_size=32):
        self.preprocessing = preprocessing_settings(image_size, wavelet=None)

    def predict_proba(self, x, batch_size=32):
        gray = x.mean(axis=1)
        pooled = gray.reshape(len(x), gray.shape[1] // 4, 4, -1, 4).mean(axis=(2, 4))
        score = 20 * (pooled.reshape(len(x), -1).max(axis=1) - np.median(gray.reshape(len(x), -1), axis=1)) - 10
        return softmax(np.stack([np.zeros_like(score), score], axis=1))


def test_twin_swap_flips_exactly_the_images_whose_evidence_the_mask_covers():
    rng = np.random.default_rng(0)
    twins = 0.2 + 0.05 * rng.random((4, 36, 36))
    images = twins.copy()
    images[:, 10:18, 10:18] = 0.95                       # the "lesion": a bright spot
    masks = np.zeros_like(images, dtype=bool)
    masks[0, 8:20, 8:20] = True                          # covers it: the twin's pixels remove it
    masks[1, 10:18, 10:18] = True                        # exactly: swapped == twin
    masks[2, 10:14, 10:18] = True                        # half of it: the rest still convinces
    # masks[3] empty: nothing swapped
    result = twin_swap(BrightSpotModel(), images, twins, masks, target=1)
    assert (result["before"] > 0.9).all()
    np.testing.assert_array_equal(result["after"] < 0.5, [True, True, False, False])
    assert result["flip_rate"] == 0.5
    assert result["mean_drop"] == pytest.approx(np.mean(result["before"] - result["after"]))


def test_twin_swap_on_phantoms_is_the_twin():
    p = make_phantom(1, 1, 1, PhantomSettings(size=64))
    model = BrightSpotModel()
    swapped = twin_swap(model, [p.image], [p.twin], [p.mask], target=1)["after"]
    alone = twin_swap(model, [p.twin], [p.twin], [np.zeros_like(p.mask)], target=1)["after"]
    np.testing.assert_array_equal(swapped, alone)


def test_lesion_mass_ratio_and_pointing_game_on_plateaus():
    mask = np.zeros((20, 20), bool)
    mask[0:4, 8:12] = True                                 # 16 of 400 pixels: area share 0.04
    on = np.where(mask, 1.0, 0.0)
    assert lesion_mass_ratio(on, mask) == pytest.approx(25)
    assert lesion_mass_ratio(np.ones((20, 20)), mask) == pytest.approx(1)
    assert np.isnan(lesion_mass_ratio(-on, mask)) and np.isnan(lesion_mass_ratio(on, mask & False))
    # A region map whose maximal region is a band along the top row: the first pixel in reading
    # order (0, 0) is far from the lesion, the band's centre (0, 9) is on it.
    band = np.zeros((20, 20))
    band[0, :] = 1.0
    assert pointing_game(band, mask, tolerance=0)
    band[0, :] = 0
    band[0, :5] = 1.0
    assert not pointing_game(band, mask, tolerance=0) and pointing_game(band, mask, tolerance=6)


@pytest.mark.parametrize("size,layer,side", [(224, "features.19", 14), (128, "features.14", 16),
                                             (64, "features.9", 16), (32, "features.4", 16)])
def test_gradcam_default_layer_gives_maps_of_at_least_14x14(size, layer, side):
    model = VGG8(channels=(2,) * 8, hidden=4, image_size=size)
    assert default_layer(model) == layer
    if size <= 128:
        cam = GradCAM(model)(np.zeros((1, 3, size, size), np.float32), target=1)
        assert cam.layer == layer and cam.low_res.shape == (1, side, side)


def test_orientation_augmentation_draws_all_eight_orientations():
    img = np.arange(36, dtype=np.float32).reshape(6, 6) / 36
    seen = {orient(img, k, m).tobytes() for k in range(4) for m in (False, True)}
    assert len(seen) == 8                                     # the dihedral group of the square
    np.testing.assert_array_equal(orient(img, 1, True), np.rot90(img)[:, ::-1])
    rng = np.random.default_rng(0)
    draws = [augment(img, rng, strategy="brightness", brightness=(1, 1), orientation=True) for _ in range(400)]
    counts = {}
    for out, info in draws:
        key = (info["quarter_turns"], info["mirror"])
        counts[key] = counts.get(key, 0) + 1
        np.testing.assert_array_equal(out, orient(img, *key))
    assert len(counts) == 8 and min(counts.values()) > 25
    assert "quarter_turns" not in augment(img, rng)[1]                                 # off by default


@pytest.mark.parametrize("fill", ["air", "mean"])
def test_occlusion_paints_whole_cells_with_the_fill(fill):
    """SHAP-style occlusion: the hidden pixels take the fill (the image's minimum or mean), the rest stay,
    the share is reported."""
    img = np.random.default_rng(1).random((40, 40)).astype(np.float32)
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(30):
        out, info = augment(img, rng, strategy="none", occlusion=1.0, fill=fill)
        hidden = out != img
        np.testing.assert_allclose(out[hidden], img.min() if fill == "air" else img.mean(), rtol=1e-6)
        assert info["hidden"] == pytest.approx(hidden.mean(), abs=0.01)
        shares.append(info["hidden"])
    assert min(shares) < 0.2 and max(shares) > 0.8                  # the share hidden is drawn, not fixed
    assert "hidden" not in augment(img, rng, strategy="none")[1]    # off by default


def test_sharpness_augmentation_blurs_or_sharpens_and_says_which():
    """Half blur (less fine detail), half unsharp mask (more), each recorded; off by default."""
    from minivgg.imaging.phantoms import PhantomSettings, make_phantom
    img = make_phantom(0, 0, 0, PhantomSettings(size=96)).image

    def detail(a):
        return float(np.abs(np.diff(a, axis=1)).mean())
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        out, info = augment(img, rng, strategy="none", sharpness=1.0)
        kind = "blur" if "blur" in info else "sharpen"
        seen.add(kind)
        if kind == "blur" and info["blur"] > 0.5:
            assert detail(out) < detail(img)
        if kind == "sharpen" and info["sharpen"] > 0.2:
            assert detail(out) > detail(img) and out.min() >= 0 and out.max() <= 1
    assert seen == {"blur", "sharpen"}
    info = augment(img, rng, strategy="none")[1]
    assert "blur" not in info and "sharpen" not in info


def test_preset_augmentation_reaches_the_batches_and_the_run_record(tmp_path):
    from minivgg.imaging.datasets import FolderDataset
    from minivgg.imaging.phantoms import write_phantoms
    from minivgg.progress import Progress
    from minivgg.training.train import PRESETS, fit, stored_run
    write_phantoms(tmp_path / "p", 4, seed=0, size=48)
    data = FolderDataset(tmp_path / "p" / "images", preprocessing_settings(32, wavelet=None))
    plain, _ = data.batch([0, 1])
    darker, _ = data.batch([0, 1], np.random.default_rng(0), {"strategy": "brightness", "brightness": [0.5, 0.5]})
    mean, std = np.asarray(data.settings["mean"])[:, None, None], np.asarray(data.settings["std"])[:, None, None]
    np.testing.assert_allclose(darker * std + mean, 0.5 * (plain * std + mean), atol=1e-5)
    preset = dict(channels=(2,) * 8, hidden=4, image_size=32, epochs=1, batch_size=2, lr=1e-3,
                  augmentation=PRESETS["bundled"]["augmentation"])
    fit(data, np.arange(4), np.array([], dtype=np.int64), tmp_path / "run", preset, progress=Progress(quiet=True))
    assert stored_run(tmp_path / "run" / "checkpoint.npz")["augmentation"] == PRESETS["bundled"]["augmentation"]


def test_bench_table_json_keys(tmp_path):
    model = Classifier(VGG8(channels=(2, 2, 4, 4, 4, 4, 4, 4), hidden=4, image_size=32, seed=0,
                            class_names=["Normal", "RA"]), preprocessing=preprocessing_settings(32))
    save_model(model, tmp_path / "tiny.npz")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_explain.py"), "table", "--json",
                          "--model", str(tmp_path / "tiny.npz"), "--n", "4", "--budget", "8", "--regions", "4"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["phantoms"] == {"n": 4, "ra": 2, "seed": 2, "difficulty": "easy"}
    for key in ("auc", "accuracy", "twin_swap_flip_rate", "twin_swap_mean_drop"):
        assert isinstance(result[key], float)
    for method in ("gradcam", "hirescam", "shap", "random"):
        for key in ("pointing_game", "lesion_mass_ratio", "road_morf", "road_lerf", "road_gap", "deletion_auc",
                    "insertion_auc"):
            assert key in result[method]
    assert result["gradcam"]["layer"] == "features.4"
    tolerance = ExplainSettings().tolerance          # the product's default: the bench reports what it ran
    assert result["shap"]["settings"] == {"n_regions": 4, "segmentation": "superpixels", "baseline": "air",
                                          "budget": 8, "tolerance": tolerance}
    assert result["defaults"] == {"cam": "hirescam", "baseline": "air", "tolerance": tolerance}
    assert result["blur"]["sigma"] == 2.0 and 0 <= result["blur"]["normal_called_ra"] <= 1
    assert set(result["orientation"]) == {"normal_p_ra", "normal_transposed_p_ra", "normal_worst_orientation_p_ra"}
    assert list(result["randomization"]["gradcam"])[0] == "classifier.6"


def test_clever_hans_lesson_a_tiny_model_reads_the_side_marker(tmp_path):
    """Trained on RA phantoms that all carry a side marker (their lesions hard to see), a tiny
    model gives most of its positive SHAP value to the marker, and fails once the marker is gone."""
    from minivgg.course.cleverhans import clever_hans
    preset = dict(channels=(4, 8, 8, 8, 8, 8, 8, 8), hidden=16, image_size=64, epochs=15, batch_size=8, lr=3e-3,
                  dropout=0.0, augmentation={"strategy": "brightness"})
    result = clever_hans(tmp_path, preset, n_train=160, n_test=16, size=128, shortcut_share=1.0, difficulty="hard",
                         shap_options=dict(n_regions=16, budget=300))
    assert result["n_marked"] == 8
    assert result["share_over_half"] >= 0.8, result["marker_share"]
    assert result["auc_with_markers"] > 0.95 and result["auc_without_markers"] < 0.8
    assert result["twin_swap_flip_rate"] < 0.5                      # the twin keeps the marker: still "RA"
