"""The terminal app, driven by Textual's Pilot, with a tiny model so every worker is quick."""

import asyncio
import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from textual.worker import WorkerCancelled

from minivgg import VGG8, Classifier, ExplainSettings, load_model, save_model
from minivgg.cli import BUNDLED_SAMPLES, main
from minivgg.explain import GradCAM
from minivgg.imaging.preprocess import preprocessing_settings, to_display
from minivgg.tui.app import MiniVGGApp

RA_SAMPLE = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]


def tiny_model():
    network = VGG8(channels=(4, 4, 8, 8, 8, 8, 8, 8), hidden=8, image_size=64, seed=0, class_names=["Normal", "RA"])
    return Classifier(network, preprocessing=preprocessing_settings(64))


def make_app(tmp_path, image=None, cam="gradcam"):
    return MiniVGGApp(tiny_model(), image=image, out_dir=tmp_path / "out", samples=[RA_SAMPLE],
                      graphics="halfcell", settings=ExplainSettings(budget=40, regions=8, cam=cam))


async def settle(app, pilot):
    """Wait for the app's own computations and saves (not the long-lived loader of an open file picker)."""
    ours = [w for w in app.workers if w.group in ("predict", "gradcam", "shap", "save")]
    if ours:                                  # (an empty list would mean "wait for every worker")
        with suppress(WorkerCancelled):
            await app.workers.wait_for_complete(ours)
    await pilot.pause()


def text_of(app, selector):
    return str(app.query_one(selector).render())


def test_open_predict_explain_save(tmp_path):
    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            probs = text_of(app, "#probs")
            assert "Normal" in probs and "RA" in probs and "predicted:" in probs
            assert app.current.probs is not None and app.current.probs.sum() == pytest.approx(1)
            await pilot.press("c")
            await settle(app, pilot)
            assert app.current.cam is not None and app.current.cam.shape == (64, 64)
            await pilot.press("s")
            await settle(app, pilot)
            assert app.current.shap is not None
            assert "SHAP done" in text_of(app, "#status")
            await pilot.press("w")
            await settle(app, pilot)
            for suffix in ("_gradcam.png", "_shap.png", "_explain.png"):
                assert (tmp_path / "out" / f"{RA_SAMPLE.stem}{suffix}").stat().st_size > 0
            assert "saved 3 files" in text_of(app, "#status")
    asyncio.run(run())


def test_hirescam_option_computes_and_names_the_chosen_map(tmp_path):
    from minivgg.explain import GradCAM

    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE, cam="hirescam")
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            item = app.current
            expected = GradCAM(app.model, method="hirescam")(item.x[None], item.target(app.model)).normalized[0]
            np.testing.assert_allclose(item.cam, expected)
            assert app.query_one("#panel-gradcam").border_title == "HiResCAM"
    asyncio.run(run())


def test_shap_panel_redraws_every_round_and_progress_only_rises(tmp_path, monkeypatch):
    shown, progress = [], []
    real_show, real_progress = MiniVGGApp.show_shap, MiniVGGApp.set_progress

    def spy_show(self, item, explanation, state):
        shown.append((item, explanation.shap.n_evaluations, explanation.shap.max_stderr, state))
        return real_show(self, item, explanation, state)

    def spy_progress(self, done, total):
        progress.append((done, total))
        return real_progress(self, done, total)
    monkeypatch.setattr(MiniVGGApp, "show_shap", spy_show)
    monkeypatch.setattr(MiniVGGApp, "set_progress", spy_progress)

    async def run():
        app = MiniVGGApp(tiny_model(), image=RA_SAMPLE, out_dir=tmp_path / "out", graphics="halfcell",
                         settings=ExplainSettings(budget=200, regions=8))
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            progress.clear()
            await pilot.press("s")
            await settle(app, pilot)
            states = [state for *_, state in shown]
            assert states.count("round") >= 3 and states[-1] == "done"
            assert all(item is app.current for item, *_ in shown)
            calls = [n for _, n, _, state in shown if state == "round"]
            assert calls == sorted(calls) and calls[-1] == 202 == app.current.shap.n_evaluations
            done = [d for d, t in progress if t == 202]
            assert done == sorted(done) and done[-1] == 202       # no restart: one total for the whole run
            status = text_of(app, "#status")
            assert "SHAP done: 8 regions, 202/202 model calls" in status and "largest stderr" in status
    asyncio.run(run())


def test_bad_file_leaves_the_app_usable(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")

    async def run():
        app = make_app(tmp_path, image=bad)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            assert "broken.png" in text_of(app, "#status") and "error" in text_of(app, "#status")
            await pilot.press("c")                       # nothing open: a warning, no crash
            await pilot.pause()
            app.open_image(RA_SAMPLE)                    # still works afterwards
            await settle(app, pilot)
            assert app.current.probs is not None and app.is_running
    asyncio.run(run())


def test_gallery_help_and_layers(tmp_path):
    async def run():
        app = make_app(tmp_path)
        async with app.run_test(size=(130, 40)) as pilot:
            await pilot.press("g")
            await pilot.pause()
            await pilot.press("enter")
            await settle(app, pilot)
            assert app.current.path == RA_SAMPLE
            await pilot.press("l")
            await pilot.pause()
            assert type(app.screen).__name__ == "LayersScreen"
            assert len(app.screen.block_outputs()) == 5
            await pilot.press("escape")
            await pilot.press("question_mark")
            await pilot.pause()
            assert type(app.screen).__name__ == "HelpScreen"
            await pilot.press("escape")
            await pilot.pause()
            assert type(app.screen).__name__ == "Screen"
    asyncio.run(run())


def test_snapshot(snap_compare, tmp_path):
    async def open_and_explain(pilot):
        await settle(pilot.app, pilot)
        await pilot.press("c")
        await settle(pilot.app, pilot)
    # The header shows the image's path: use one that is the same in every checkout.
    fixed = Path(tempfile.gettempdir()) / "minivgg-snapshot" / "ra_sample.png"
    fixed.parent.mkdir(exist_ok=True)
    shutil.copy(RA_SAMPLE, fixed)
    app = make_app(Path("/nonexistent-out"), image=fixed)
    assert snap_compare(app, terminal_size=(130, 36), run_before=open_and_explain)


def test_tui_without_a_terminal_points_to_headless_commands(capsys):
    assert main(["tui"]) == 2            # pytest's stdin is not a terminal
    err = capsys.readouterr().err
    assert "needs an interactive terminal" in err and "minivgg predict" in err


RACE_REPEATS = int(os.environ.get("MINIVGG_TUI_RACE_REPEATS", "3"))


@pytest.mark.parametrize("repeat", range(RACE_REPEATS))
def test_quick_keys_never_save_one_image_under_another(tmp_path, monkeypatch, repeat):
    """c s l Esc g Enter w, pressed without waiting: whatever is saved is the new image's own map."""
    normal = sorted((BUNDLED_SAMPLES / "Normal").glob("*.png"))[0]
    saved = []
    real_save = Classifier.save_explanation

    def spy(self, explanation, out, stem, combined=True):
        saved.append((stem, self.display(explanation.x), explanation.cam, explanation.shap))
        return real_save(self, explanation, out, stem, combined)
    monkeypatch.setattr(Classifier, "save_explanation", spy)

    async def run():
        app = MiniVGGApp(tiny_model(), image=RA_SAMPLE, out_dir=tmp_path / "out", samples=[normal],
                         graphics="halfcell", settings=ExplainSettings(budget=400, regions=12))
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            for key in ("c", "s", "l", "escape", "g", "enter", "w", "c", "w"):
                await pilot.press(key)
            await settle(app, pilot)
            await pilot.press("w")                      # once more, with every worker finished
            await settle(app, pilot)
            assert app.current.path == normal and app.is_running
            model = app.model
            x = model.read(normal)
            expected_cam = GradCAM(model)(x[None], int(model.predict_proba(x[None])[0].argmax())).normalized[0]
            assert saved, "the last save had a Grad-CAM map to write"
            for stem, gray, cam, shap in saved:
                assert stem == normal.stem
                np.testing.assert_array_equal(gray, to_display(x, model.preprocessing))
                if cam is not None:
                    np.testing.assert_allclose(cam, expected_cam, atol=1e-12)
                assert shap is None                    # SHAP was only ever started for the first image
            assert not list((tmp_path / "out").glob(f"{RA_SAMPLE.stem}*"))
    asyncio.run(run())


def test_random_key_sequences_never_raise(tmp_path):
    keys = ["c", "s", "x", "w", "l", "escape", "g", "enter", "down", "question_mark", "o", "ctrl+p"]
    rng = np.random.default_rng(0)

    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            for key in rng.choice(keys, size=80):
                await pilot.press(str(key))
            await settle(app, pilot)
            for _ in range(4):                          # close whatever modal screen is open
                await pilot.press("escape")
            await settle(app, pilot)
            assert app.is_running and app.return_code is None
            assert "error" not in text_of(app, "#status").lower()
    asyncio.run(run())


def test_gradcam_then_shap_in_quick_succession_keeps_both(tmp_path):
    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("c", "s")                 # no wait between them
            await settle(app, pilot)
            assert app.current.cam is not None and app.current.shap is not None
            await pilot.press("w")
            await settle(app, pilot)
            assert "saved 3 files" in text_of(app, "#status")
    asyncio.run(run())


def test_saved_gradcam_is_stamped_as_the_command_line_stamps_it(tmp_path):
    """c then w: the picture holds the shown explanation's stamp, the one ``minivgg explain`` writes, and its map."""
    model_file = tmp_path / "tiny.npz"
    save_model(tiny_model(), model_file)
    assert main(["explain", str(RA_SAMPLE), "--method", "gradcam", "--model", str(model_file),
                 "--out", str(tmp_path / "cli"), "--save-raw"]) == 0

    async def run():
        app = MiniVGGApp(load_model(model_file), image=RA_SAMPLE, out_dir=tmp_path / "out", graphics="halfcell",
                         settings=ExplainSettings(raw=True))
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            await pilot.press("w")
            await settle(app, pilot)
            assert "saved" in text_of(app, "#status")
            return app.model.stamp(app.current.cam_explanation)
    stamp = asyncio.run(run())
    fields = ("Model", "Class", "Probability", "In distribution", "Map")
    app_text = PILImage.open(tmp_path / "out" / f"{RA_SAMPLE.stem}_gradcam.png").text
    cli_text = PILImage.open(tmp_path / "cli" / f"{RA_SAMPLE.stem}_gradcam.png").text
    assert {k: app_text[k] for k in fields} == {k: stamp[k] for k in fields} == {k: cli_text[k] for k in fields}
    np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{RA_SAMPLE.stem}_gradcam.npy"),
                                  np.load(tmp_path / "cli" / f"{RA_SAMPLE.stem}_gradcam.npy"))
