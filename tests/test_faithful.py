"""Faithful by default: the defaults point at the evidence, and every picture says how far it can be trusted.

ROAD's imputation against a harmonic function it must reproduce; the per-image hiding check,
signed maps and the explanation card against models whose evidence is known.
"""

import numpy as np
import pytest
from PIL import Image

from minivgg import VGG8, Classifier, ExplainSettings, load_model, save_model
from minivgg.deploy.bundled import BUNDLED_MODEL, BUNDLED_SAMPLES
from minivgg.explain.checks import noisy_linear_imputation, road
from minivgg.explain.gradcam import GradCAM
from minivgg.imaging.preprocess import preprocessing_settings
from minivgg.trust.modelcard import explanation_line, validate_card
from tests.test_ground_truth import BrightSpotModel


def test_the_defaults_are_hirescam_and_air():
    settings = ExplainSettings()
    assert settings.cam == "hirescam" and settings.baseline == "air" and not settings.signed
    assert ExplainSettings(baseline="blur").warnings and not settings.warnings


def test_noisy_linear_imputation_fills_a_plane_exactly_and_leaves_the_rest():
    yy, xx = np.mgrid[0:40, 0:40]
    image = np.stack([0.02 * yy + 0.01 * xx + c for c in (0.0, 0.5, 1.0)])      # a plane in each channel
    removed = np.zeros((40, 40), bool)
    removed[5:30, 10:35] = True                              # inside, a mean of all 8 neighbours: exact on a plane
    filled = noisy_linear_imputation(image, removed, np.random.default_rng(0), noise=0.0)
    np.testing.assert_allclose(filled, image, atol=1e-10)
    removed[0, :] = True                                     # at the border, fewer neighbours: close, and finite
    edge = noisy_linear_imputation(image, removed, np.random.default_rng(0), noise=0.0)
    assert np.isfinite(edge).all() and np.abs(edge - image).max() < 0.05
    noisy = noisy_linear_imputation(image, removed, np.random.default_rng(0), noise=0.01)
    np.testing.assert_array_equal(noisy[:, ~removed], image[:, ~removed])
    assert 0 < np.abs(noisy - image)[:, removed].std() < 0.05


def test_road_tells_a_faithful_map_from_a_random_one():
    rng = np.random.default_rng(0)
    model = BrightSpotModel()
    image = np.full((3, 32, 32), -1.0, np.float32) + 0.05 * rng.random((3, 32, 32)).astype(np.float32)
    image[:, 12:16, 20:24] = 2.0                                   # the only evidence: a bright patch
    faithful = np.zeros((32, 32))
    faithful[12:16, 20:24] = 1.0
    good = road(model, image, faithful + 1e-3 * rng.random((32, 32)), target=1)
    chance = road(model, image, rng.random((32, 32)), target=1)
    assert max(good["morf"]) < 0.2 and min(good["lerf"]) > 0.8           # removing the patch removes the "RA"
    assert np.mean(good["lerf"]) - np.mean(good["morf"]) > np.mean(chance["lerf"]) - np.mean(chance["morf"]) + 0.3


def tiny_classifier():
    network = VGG8(channels=(4, 4, 8, 8, 8, 8, 8, 8), hidden=8, image_size=64, seed=3, class_names=["Normal", "RA"])
    return Classifier(network, preprocessing=preprocessing_settings(64))


def test_signed_maps_keep_the_evidence_against():
    model = tiny_classifier()
    x = model.read(sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0])
    result = GradCAM(model, method="gradcam")(x[None], 1)
    signed = result.signed[0]
    assert signed.min() < 0 < signed.max() and np.abs(signed).max() == pytest.approx(1.0)
    # Upsampling is linear, so the signed map never exceeds the usual one (its ReLU'd cells upsampled):
    # where the usual map is 0 the signed one is <= 0, and where the signed one is positive so is the usual.
    raw = result.raw[0]
    assert (signed[raw == 0] <= 0).all() and (raw[signed > 0] > 0).all() and (raw == 0).any()
    explanation = model.explain(x, ExplainSettings(method="gradcam", cam="gradcam", signed=True, target="RA"))
    np.testing.assert_allclose(explanation.cam, signed)


def test_every_picture_checks_its_map_by_hiding_the_hottest_pixels():
    model = load_model(BUNDLED_MODEL)
    x = model.read(sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0])
    explanation = model.explain(x, ExplainSettings(budget=200, regions=8))
    fill = model.explainers(explanation.settings)[1].baseline_for(x)
    heat = explanation.cam
    hottest = heat >= np.sort(heat, axis=None)[-round(0.05 * heat.size)]
    expected = model.predict_proba(np.where(hottest[None], fill, x)[None].astype(np.float32))[0, 1]
    assert explanation.cam_check == pytest.approx(float(expected), abs=1e-6)
    assert explanation.shap_check is not None
    stamp = model.stamp(explanation)
    assert "hiding the hottest 5% of the HiResCAM map (with air) moved p(RA)" in stamp["Check"]
    assert "Kernel-SHAP map" in stamp["Check"] and stamp["Validated"]
    assert model.hiding_check(x, np.zeros_like(heat), 1, fill) is None            # nothing to hide


def test_card_without_ground_truth_says_not_validated(tmp_path):
    model = tiny_classifier()
    assert explanation_line(model, "hirescam").startswith("HiResCAM: not validated (no ground truth")
    x = model.read(sorted((BUNDLED_SAMPLES / "Normal").glob("*.png"))[0])
    written = model.save_explanation(model.explain(x, ExplainSettings(method="gradcam")), tmp_path, "n")
    assert "not validated" in Image.open(written[0]).text["Validated"]


def test_training_on_phantoms_measures_the_explanation_card(tmp_path):
    """A model trained on a phantom folder gets its maps scored on the validation twins, in its card."""
    from minivgg.imaging.phantoms import write_phantoms
    from minivgg.progress import Progress
    from minivgg.training.train import train_command
    write_phantoms(tmp_path / "p", 24, seed=0, size=96, difficulty="easy")
    train_command(tmp_path / "p" / "images", tmp_path / "run", preset="small", epochs=1, batch_size=8,
                  progress=Progress(quiet=True))
    model = load_model(tmp_path / "run" / "model.npz")
    record = model.card["explanations"]
    validate_card(model.card, model.class_names)
    assert set(record["methods"]) == {"hirescam", "gradcam", "shap"} and "of class RA" in record["data"]
    for scores in record["methods"].values():
        assert 0 <= scores["pointing"] <= 1 and scores["n"] >= 1
    line = explanation_line(model, "hirescam")
    assert line.startswith("HiResCAM pointed at the lesion in ") and "validation twins" in line
    with pytest.raises(ValueError, match="card.explanations"):
        validate_card({**model.card, "explanations": {"data": "x"}}, model.class_names)
    save_model(model, tmp_path / "again.npz")                     # the card survives the file
    assert load_model(tmp_path / "again.npz").card["explanations"] == record


def test_maps_go_back_onto_the_original_pixels_through_the_crop():
    """A map that is the model's own input image, carried back, lands on the original image where it came from."""
    from minivgg.imaging.preprocess import crop_box, preprocess, to_display, to_original
    settings = preprocessing_settings(64, wavelet=None)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:150, 0:220]
    original = (0.5 + 0.4 * np.sin(yy / 9.0) * np.cos(xx / 13.0) + 0.02 * rng.random((150, 220))).astype(np.float32)
    back = to_original(to_display(preprocess(original, settings), settings), original.shape, settings)
    top, left, bottom, right = crop_box(original.shape, settings)
    inside = ~np.isnan(back)
    assert inside[int(top) + 1:int(bottom) - 1, int(left) + 1:int(right) - 1].all()
    assert not inside[:int(top) - 1].any() and not inside[:, int(right) + 1:].any()
    assert np.corrcoef(back[inside], original[inside])[0, 1] > 0.97
    assert (bottom - top) / 150 == pytest.approx(64 / settings["resize"])


def test_save_raw_writes_the_maps_on_the_original(tmp_path):
    model = tiny_classifier()
    path = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    explanation = model.explain(model.read(path), ExplainSettings(method="gradcam", raw=True), path=path)
    written = {p.name for p in model.save_explanation(explanation, tmp_path, "ra")}
    assert {"ra_gradcam_original.npy", "ra_original.png"} <= written
    on_original = np.load(tmp_path / "ra_gradcam_original.npy")
    assert on_original.shape == Image.open(path).size[::-1] and np.isnan(on_original).any()
    assert Image.open(tmp_path / "ra_original.png").text["Map"].startswith("HiResCAM")
