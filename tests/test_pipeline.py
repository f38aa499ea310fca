"""One pipeline from file to figure: every front end makes the same map, names it the same way, stamps it the same way.

``minivgg explain``, ``minivgg predict --gradcam`` and the terminal app's save all go
through :class:`minivgg.deploy.Classifier` (``read``, ``assess``, ``explain``,
``save_explanation``); these tests hold them to it, and check what the classifier adds to
its network.
"""

import asyncio
import pickle
from contextlib import suppress
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from minivgg import VGG8, Classifier, ExplainSettings, load_model, save_model, softmax
from minivgg.cli import BUNDLED_MODEL, BUNDLED_SAMPLES, main
from minivgg.errors import (
    DaskMissing,
    DatasetError,
    ImageError,
    MinivggError,
    ModelFileError,
    ModelFileMissing,
    NoInput,
    OutputError,
    ResultsFileError,
    ResumeError,
    TrainingError,
    UsageError,
)
from minivgg.explain import GradCAM
from minivgg.imaging.preprocess import preprocessing_settings

STAMP_FIELDS = ("Software", "Model", "Source", "Class", "Probability", "In distribution", "Map", "Check", "Validated")


def tiny_classifier():
    network = VGG8(channels=(4, 4, 8, 8, 8, 8, 8, 8), hidden=8, image_size=64, seed=3, class_names=["Normal", "RA"])
    return Classifier(network, preprocessing=preprocessing_settings(64))


def stamp_of(path):
    return {k: v for k, v in Image.open(path).text.items() if k in STAMP_FIELDS}


def test_explain_predict_and_the_terminal_app_save_the_same_stamped_map(tmp_path, capsys):
    """For one image: ``explain --method gradcam``, ``predict --gradcam`` and a TUI save write equal files."""
    from textual.worker import WorkerCancelled

    from minivgg.tui.app import MiniVGGApp
    model_file = tmp_path / "tiny.npz"
    save_model(tiny_classifier(), model_file)
    model = load_model(model_file).freeze()          # as ``minivgg tui`` serves it
    image = tmp_path / "in" / "hand.png"
    image.parent.mkdir()
    image.write_bytes(sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0].read_bytes())
    m = ["--model", str(model_file)]
    assert main(["explain", str(image), "--method", "gradcam", "--out", str(tmp_path / "explain"), *m]) == 0
    assert main(["predict", str(image), "--gradcam", str(tmp_path / "predict"), *m]) == 0
    capsys.readouterr()

    async def save_from_the_app():
        app = MiniVGGApp(model, image=image, out_dir=tmp_path / "tui", graphics="halfcell")
        async with app.run_test(size=(130, 40)) as pilot:
            for key in ("", "c", "w"):
                if key:
                    await pilot.press(key)
                with suppress(WorkerCancelled):
                    await app.workers.wait_for_complete()
                await pilot.pause()
    asyncio.run(save_from_the_app())

    files = [tmp_path / front / "hand_gradcam.png" for front in ("explain", "predict", "tui")]
    stamps = [stamp_of(f) for f in files]
    assert set(stamps[0]) == set(STAMP_FIELDS) and stamps[0]["Source"] == "hand.png"
    assert stamps[0]["Model"] == "tiny" and stamps[0]["Map"] == "HiResCAM at features.9"
    assert stamps[0]["In distribution"].startswith("not known")
    assert stamps[1] == stamps[0] and stamps[2] == stamps[0]
    # The same map drawn the same way: the pictures are equal pixel for pixel.
    pixels = [np.asarray(Image.open(f)) for f in files]
    np.testing.assert_array_equal(pixels[1], pixels[0])
    np.testing.assert_array_equal(pixels[2], pixels[0])


def test_a_flagged_image_is_stamped_in_every_file(tmp_path):
    from minivgg.trust.ood import FEATURE_LAYER, MahalanobisDetector
    model = tiny_classifier()
    c = model.config["channels"][3]
    model.ood = MahalanobisDetector(np.zeros((2, c)), np.eye(c), 0.0, 0.99, FEATURE_LAYER, 10, 4)  # flags everything
    x = model.read(sorted((BUNDLED_SAMPLES / "Normal").glob("*.png"))[0])
    explanation = model.explain(x, ExplainSettings(budget=20, regions=4))
    written = model.save_explanation(explanation, tmp_path, "img")
    assert sorted(p.name for p in written) == ["img_explain.png", "img_gradcam.png", "img_shap.png"]
    for path in written:
        verdict = Image.open(path).text["In distribution"]
        assert verdict.startswith("NO (score") and "do not rely on this prediction" in verdict


def test_classifier_answers_as_its_network_but_with_calibrated_probabilities(rng):
    network = VGG8(channels=(2, 2, 4, 4, 4, 4, 4, 4), hidden=4, image_size=32, seed=1)
    model = Classifier(network, calibration={"temperature": 2.0})
    x = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(model.infer(x), network.infer(x))
    assert model.layers is network.layers and model["features.0"] is network["features.0"]
    logits = network.infer(x)
    np.testing.assert_allclose(network.predict_proba(x), np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(model.predict_proba(x), softmax(logits / 2.0))
    assert not np.allclose(model.predict_proba(x), network.predict_proba(x))
    np.testing.assert_allclose(GradCAM(model)(x).probabilities, model.predict_proba(x), rtol=1e-6)
    with pytest.raises(AttributeError, match="no attribute 'card_of_network'"):
        model.card_of_network                                  # noqa: B018  (only the network's own names pass)


def test_explain_settings_are_frozen_checked_and_picklable():
    settings = ExplainSettings(method="gradcam", cam="hirescam", target="RA", baseline=-0.5)
    assert pickle.loads(pickle.dumps(settings)) == settings            # sent to Dask workers as it is
    with pytest.raises(AttributeError):
        settings.budget = 3                                              # noqa: B018
    for bad, message in [(dict(method="all"), "method must be one of"), (dict(budget=1), "budget must be"),
                         (dict(baseline="zero"), "baseline must be"), (dict(tolerance=2.0), "tolerance must be"),
                         (dict(segmentation="grid", background="merge"), "applies to superpixels")]:
        with pytest.raises(ValueError, match=message):
            ExplainSettings(**bad)
    assert replace(settings, method="shap").wants_shap and not replace(settings, method="shap").wants_cam


def test_explain_rounds_grow_to_the_finished_explanation(tmp_path):
    model = load_model(BUNDLED_MODEL)
    x = model.read(sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0])
    settings = ExplainSettings(budget=200, regions=10, tolerance=0.001)      # rounds until the budget
    rounds = list(model.explain_rounds(x, settings))
    assert rounds[0].cam is not None and rounds[0].shap is None                       # the map first
    calls = [r.shap.n_evaluations for r in rounds[1:]]
    assert calls == sorted(calls) and len(calls) >= 2
    final = model.explain(x, settings)
    np.testing.assert_array_equal(final.shap.values, rounds[-1].shap.values)
    # The hiding checks are model calls: made for the finished explanation, or for a round when it is saved.
    assert all(r.cam_check is None and r.shap_check is None for r in rounds)
    fill = model.explainers(settings)[1].baseline_for(x)
    assert final.cam_check == model.hiding_check(x, final.cam, final.target, fill) is not None
    partial = rounds[1]
    expected = model.hiding_check(x, partial.shap.pixel_map(), partial.target, fill)
    assert model.checked(partial).shap_check == expected is not None
    written = model.save_explanation(partial, tmp_path, "partial", combined=False)
    assert "Kernel-SHAP map" in Image.open(written[-1]).text["Check"]
    cam_only, shap_only = (model.explain(x, replace(settings, method=m)) for m in ("gradcam", "shap"))
    both = cam_only.merged(replace(shap_only, x=cam_only.x))
    assert both.settings.method == "both"
    np.testing.assert_array_equal(both.cam, final.cam)
    np.testing.assert_array_equal(both.shap.values, final.shap.values)


@pytest.mark.parametrize("error,code", [(UsageError, 2), (ResumeError, 2), (DaskMissing, 2), (NoInput, 66),
                                        (ModelFileMissing, 66), (ImageError, 65), (ModelFileError, 65),
                                        (DatasetError, 65), (ResultsFileError, 65), (TrainingError, 65),
                                        (OutputError, 73)])
def test_each_error_carries_its_exit_code(error, code, monkeypatch, capsys):
    from minivgg.cli import info

    def fail(args):
        raise error("somewhere.png: the problem")
    monkeypatch.setattr(info, "run", fail)
    assert issubclass(error, MinivggError) and error.exit_code == code
    assert main(["info"]) == code
    assert capsys.readouterr().err == "minivgg: error: somewhere.png: the problem\n"


def test_a_missing_model_file_is_no_input_and_a_bad_one_bad_data(tmp_path, capsys):
    assert main(["info", "--model", str(tmp_path / "none.npz")]) == 66
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    assert main(["info", "--model", str(tmp_path / "bad.npz")]) == 65
    err = capsys.readouterr().err.splitlines()
    assert err == [f"minivgg: error: {tmp_path / 'none.npz'}: no such file",
                   f"minivgg: error: {tmp_path / 'bad.npz'}: not a minivgg model file (not an .npz archive)"]
