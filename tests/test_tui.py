"""The terminal app, driven by Textual's Pilot, with a tiny model so every worker is quick."""

import asyncio
import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image as PILImage
from rich.color import Color, ColorSystem
from textual import events
from textual.widgets import Footer
from textual.worker import WorkerCancelled

from minivgg import VGG8, Classifier, ExplainSettings, load_model, save_model
from minivgg.cli import BUNDLED_SAMPLES, main
from minivgg.cli.common import input_files
from minivgg.explain import GradCAM
from minivgg.files import distinct_stems
from minivgg.imaging.preprocess import preprocessing_settings, to_display
from minivgg.text import format_probability
from minivgg.trust.ood import FEATURE_LAYER, MahalanobisDetector
from minivgg.tui.app import MiniVGGApp
from minivgg.tui.layout import arrange
from minivgg.tui.picker import PathSuggester
from minivgg.tui.shaptable import bar
from minivgg.tui.state import Opened
from minivgg.tui.view import OUTLINE, View, sign_pattern, xterm256, xterm_palette

RA_SAMPLE = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
SAMPLES = sorted(BUNDLED_SAMPLES.rglob("*.png"))


def tiny_model(threshold=None):
    """A tiny VGG8 (64 px); with ``threshold``, an out-of-distribution detector that flags scores above it."""
    channels = (4, 4, 8, 8, 8, 8, 8, 8)
    network = VGG8(channels=channels, hidden=8, image_size=64, seed=0, class_names=["Normal", "RA"])
    model = Classifier(network, preprocessing=preprocessing_settings(64))
    if threshold is not None:
        c = channels[3]                           # block 3's last conv: the detector's layer
        model.ood = MahalanobisDetector(np.zeros((2, c)), np.eye(c), threshold, 0.99, FEATURE_LAYER, 10, 4)
    return model


def make_app(tmp_path, image=None, cam="gradcam", model=None, **kwargs):
    return MiniVGGApp(model or tiny_model(), image=image, out_dir=tmp_path / "out", samples=[RA_SAMPLE],
                      graphics="halfcell", settings=ExplainSettings(budget=40, regions=8, cam=cam),
                      palette="truecolor", **kwargs)


async def settle(app, pilot):
    """Wait for the app's own computations and saves (not the long-lived loader of an open file picker)."""
    ours = [w for w in app.workers if w.group in ("predict", "gradcam", "shap", "save", "folder")]
    if ours:                                  # (an empty list would mean "wait for every worker")
        with suppress(WorkerCancelled):
            await app.workers.wait_for_complete(ours)
    await pilot.pause()


def text_of(app, selector):
    return str(app.query_one(selector).render())


def screen_text(app):
    """The characters on the screen now, row by row (what a person sees, colours aside)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def test_open_predict_explain_save(tmp_path):
    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            verdict = text_of(app, "#verdict")
            assert "Normal" in verdict and "RA" in verdict and "predicted:" in verdict
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
            status = text_of(app, "#status")
            assert "saved Grad-CAM and finished SHAP (42 of 42 model calls): 3 files" in status
    asyncio.run(run())


def test_hirescam_option_computes_and_names_the_chosen_map(tmp_path):
    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE, cam="hirescam")
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            item = app.current
            expected = GradCAM(app.model, method="hirescam")(item.x[None], int(item.probs.argmax())).normalized[0]
            np.testing.assert_allclose(item.cam, expected)
            # The title names the map and how far it was validated (a tiny model trained on nothing: not at all).
            assert app.query_one("#panel-gradcam").border_title == "HiResCAM: not validated"
            assert app.query_one("#panel-shap").border_title == "SHAP: not validated"
            assert app.query_one("#panel-image").border_title == "model input (64x64 crop)"
    asyncio.run(run())


def test_shap_panel_redraws_every_round_and_progress_only_rises(tmp_path, monkeypatch):
    shown, progress = [], []
    real_show, real_progress = MiniVGGApp.show_shap, MiniVGGApp.set_progress

    def spy_show(self, item, explanation, state, run):
        shown.append((item, explanation.shap.n_evaluations, state))
        return real_show(self, item, explanation, state, run)

    def spy_progress(self, done, total):
        progress.append((done, total))
        return real_progress(self, done, total)
    monkeypatch.setattr(MiniVGGApp, "show_shap", spy_show)
    monkeypatch.setattr(MiniVGGApp, "set_progress", spy_progress)

    async def run():
        # A tolerance too small to meet: the run spends its whole budget, in rounds.
        app = MiniVGGApp(tiny_model(), image=RA_SAMPLE, out_dir=tmp_path / "out", graphics="halfcell",
                         settings=ExplainSettings(budget=200, regions=8, tolerance=1e-9), palette="truecolor")
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            progress.clear()
            await pilot.press("s")
            await settle(app, pilot)
            states = [state for *_, state in shown]
            assert states.count("round") >= 3 and states[-1] == "done"
            assert all(item is app.current for item, *_ in shown)
            calls = [n for _, n, state in shown if state == "round"]
            assert calls == sorted(calls) and calls[-1] == 202 == app.current.shap.n_evaluations
            done = [d for d, t in progress if t == 202]
            assert done == sorted(done) and done[-1] == 202       # no restart: one total for the whole run
            status = text_of(app, "#status")
            assert "SHAP done: 8 regions, 202/202 model calls" in status and "largest stderr" in status
            # The table lists every region, largest effect first, with its value and error bar.
            table = app.query_one("#shap")
            values = app.current.shap.values
            assert table.order == sorted(range(8), key=lambda r: -abs(values[r]))
            assert len(app.query_one("#shap-rows").options) == 8
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


def footer_keys(app):
    """The key descriptions the footer on screen shows (the pop-up's own footer while one is open)."""
    return {key.description for key in app.screen.query_one(Footer).query("FooterKey")}


def test_gallery_help_and_layers_with_their_own_footers(tmp_path):
    async def run():
        app = make_app(tmp_path)
        async with app.run_test(size=(130, 40)) as pilot:
            await pilot.pause()
            assert {"Open", "CAM", "SHAP", "Save"} <= footer_keys(app)
            await pilot.press("g")
            await pilot.pause()
            assert footer_keys(app) == {"Close", "Open"}          # the pop-up's keys, not the main screen's
            await pilot.press("enter")
            await settle(app, pilot)
            assert app.current.path == RA_SAMPLE
            assert {"Open", "CAM", "SHAP", "Save"} <= footer_keys(app)      # the main screen's keys again
            await pilot.press("l")
            await pilot.pause()
            assert type(app.screen).__name__ == "LayersScreen" and footer_keys(app) == {"Close"}
            assert len(app.screen.block_outputs()) == 5
            await pilot.press("escape")
            await pilot.press("question_mark")
            await pilot.pause()
            assert type(app.screen).__name__ == "HelpScreen" and footer_keys(app) == {"Close"}
            await pilot.press("escape")
            await pilot.pause()
            assert type(app.screen).__name__ == "Screen"
    asyncio.run(run())


def test_keys_typed_at_once_are_queued_not_dropped(tmp_path):
    """g Enter c arriving together (as from a fast typist): the map is the chosen sample's, not lost."""
    normal = sorted((BUNDLED_SAMPLES / "Normal").glob("*.png"))[0]

    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        app.samples = [normal]
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            for key, char in (("g", "g"), ("enter", "\r"), ("c", "c")):
                app._driver.send_message(events.Key(key, char))   # no wait between them, as the terminal does
            for _ in range(20):
                await pilot.pause(0.05)
                await settle(app, pilot)
            assert app.current.path == normal and type(app.screen).__name__ == "Screen"
            x = app.model.read(normal)
            target = int(app.model.predict_proba(x[None])[0].argmax())
            np.testing.assert_allclose(app.current.cam, GradCAM(app.model)(x[None], target).normalized[0])
    asyncio.run(run())


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
                         graphics="halfcell", settings=ExplainSettings(budget=400, regions=12), palette="truecolor")
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
            cam = GradCAM(model, method=app.settings.cam)
            expected_cam = cam(x[None], int(model.predict_proba(x[None])[0].argmax())).normalized[0]
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
    keys = ["c", "s", "x", "w", "l", "escape", "g", "enter", "down", "question_mark", "o", "ctrl+p", "n", "p",
            "r", "plus", "minus", "a", "v", "left", "up", "tab", "backspace"]
    rng = np.random.default_rng(0)

    async def run():
        app = make_app(tmp_path, files=SAMPLES[:4])
        async with app.run_test(size=(100, 30)) as pilot:
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
            assert "3 files" in text_of(app, "#status")
    asyncio.run(run())


def test_saved_gradcam_is_stamped_as_the_command_line_stamps_it(tmp_path):
    """c then w: the picture holds the shown explanation's stamp, the one ``minivgg explain`` writes, and its map."""
    model_file = tmp_path / "tiny.npz"
    save_model(tiny_model(), model_file)
    assert main(["explain", str(RA_SAMPLE), "--method", "gradcam", "--model", str(model_file),
                 "--out", str(tmp_path / "cli"), "--save-raw"]) == 0

    async def run():
        app = MiniVGGApp(load_model(model_file).freeze(), image=RA_SAMPLE, out_dir=tmp_path / "out",
                         graphics="halfcell", settings=ExplainSettings(raw=True), palette="truecolor")
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


# ---------------------------------------------------------------- the layout follows the window


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_the_verdict_is_always_on_screen_and_the_pictures_take_the_room(tmp_path, size):
    """Probabilities, label, model and the out-of-distribution warning in view at every size; pictures fill the rest."""
    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE, model=tiny_model(threshold=-1.0))   # every image flagged
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            screen = screen_text(app)
            probs = app.current.probs
            for name, p in zip(app.model.class_names, probs):
                assert any(name in row and format_probability(p) in row for row in screen.splitlines())
            assert f"predicted: {app.model.class_names[int(probs.argmax())]}" in screen
            assert "OUT OF DISTRIBUTION" in screen and "model: unnamed model" in screen
            panels = [p for p in app.query(".panel") if p.display]
            widths = [p.region.width - 2 for p in panels]
            for panel in panels:                              # square pictures: half as many rows as cells
                picture = panel.query_one(".picture")
                assert picture.region.height * 2 == picture.region.width
                if picture.image is not None:                 # (SHAP was not computed)
                    assert picture.image.size == (picture.region.width, 2 * picture.region.height)
            return widths
    widths = asyncio.run(run())
    if size == (80, 24):
        assert len(widths) == 1 and widths[0] >= 30       # one picture at a time, beside the verdict
    elif size == (200, 60):
        assert len(widths) == 3 and min(widths) > 60
    else:
        assert len(widths) == 3 and min(widths) >= 36


def test_arrangements():
    assert arrange(80, 24).beside and arrange(80, 24).cells == 38
    assert not arrange(120, 40).beside and arrange(120, 40).cells == 38
    assert not arrange(200, 60).beside and arrange(200, 60).cells == 64
    for width, height in ((20, 5), (40, 12), (300, 90), (90, 70)):
        a = arrange(width, height)
        assert a.cells >= 2 and a.cells % 2 == 0 and a.rows + 4 <= max(height, 6)


def test_zoom_pan_opacity_and_view(tmp_path):
    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            panels = app.query_one("#pictures")
            assert panels.active == "gradcam"                   # a new map shows itself in a small window
            whole = np.asarray(panels.picture("gradcam"))
            await pilot.press("plus", "plus", "plus")
            assert panels.view.zoom == 3 and "zoom 3x" in app.query_one("#panel-gradcam").border_subtitle
            await pilot.press("left", "left", "left", "left", "up", "up", "up", "up")
            top, left, side = panels.view.window(64)
            assert (top, left, side) == (0, 0, 21)              # panned into the top left corner, and no further
            zoomed = np.asarray(panels.picture("gradcam"))
            assert zoomed.shape == whole.shape and not np.array_equal(zoomed, whole)
            await pilot.press("a")                              # maps at half their opacity
            half = np.asarray(panels.picture("gradcam"), dtype=float)
            gray = np.asarray(panels.picture("image"), dtype=float)
            assert np.abs(half - gray).mean() < np.abs(zoomed - gray).mean()
            await pilot.press("a", "a", "a")                    # 0%, 150%, and back to 100%
            assert panels.view.opacity == 1
            await pilot.press("v")
            assert panels.active == "image"
            await pilot.press("minus", "minus", "minus")
            assert panels.view.window(64) == (0, 0, 64)
    asyncio.run(run())


def test_view_window_stays_inside_the_image():
    view = View()
    for _ in range(10):
        view = view.zoomed(1).panned(3, -2)
    top, left, side = view.window(128)
    assert view.zoom == 8 and side == 16 and left == 128 - 16 and top == 0


# ---------------------------------------------------------------- SHAP as numbers


def test_error_bars_show_what_is_certain():
    against, towards = bar(0.5, 0.1, 1.0, 10)
    assert against == " " * 10 and towards == "████░░    "           # certain to 0.4, interval to 0.6
    against, towards = bar(-0.05, 0.2, 0.5, 5)
    assert against == "  ░░░" and towards == "░░   "                  # crosses zero: no established sign
    assert bar(0.0, 0.0, 1.0, 4) == ("    ", "    ")


def test_shap_row_highlight_outlines_the_region(tmp_path):
    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("s")
            await settle(app, pilot)
            table = app.query_one("#shap")
            app.query_one("#shap-rows").focus()
            await pilot.press("down", "down")                  # the first row, then the second
            await pilot.pause()
            panels = app.query_one("#pictures")
            assert panels.selected == table.order[1]
            pixels = np.asarray(panels.picture("shap"))
            assert (pixels == np.array(OUTLINE) * 255).all(axis=2).any()
    asyncio.run(run())


# ---------------------------------------------------------------- colour that degrades well


def on_a_256_colour_terminal(rgb):
    """What a 256-colour terminal shows for ``rgb`` (H, W, 3) in [0, 1]: Rich's rounding of each colour."""
    def shown(triplet):
        return tuple(Color.from_rgb(*triplet).downgrade(ColorSystem.EIGHT_BIT).get_truecolor())
    flat = [tuple(t) for t in np.round(rgb * 255).astype(int).reshape(-1, 3)]
    table = {t: shown(t) for t in set(flat)}
    return np.array([table[t] for t in flat]).reshape(rgb.shape) / 255


def test_256_colour_dither_keeps_each_area_colour_and_the_terminal_draws_it_as_written():
    written, shown = xterm_palette()
    np.testing.assert_allclose(on_a_256_colour_terminal(written), np.round(shown * 255) / 255)
    heat = colormaps["turbo"](np.linspace(0.1, 1, 64))[:, :3]
    rgb = np.tile((0.45 * heat + 0.55 * 0.3)[None], (16, 1, 1))      # a class-activation map over gray bone
    dithered, rounded = on_a_256_colour_terminal(xterm256(rgb)), on_a_256_colour_terminal(rgb)
    blocks = lambda a: a.reshape(2, 8, 8, 8, 3).mean(axis=(1, 3))        # noqa: E731 - 8 x 8 pixel areas
    assert np.abs(blocks(dithered) - blocks(rgb)).max() < 0.03 < 0.1 < np.abs(blocks(rounded) - blocks(rgb)).max()
    gray = np.repeat(np.linspace(0, 1, 16)[None, :, None], 3, axis=2)
    np.testing.assert_array_equal(xterm256(gray), gray)                 # gray stays for the terminal's gray ramp


def test_without_colour_shap_keeps_its_sign_as_a_pattern(tmp_path, monkeypatch):
    signs = np.zeros((8, 8), int)
    signs[:, :4], signs[:, 4:] = 1, -1
    marked = sign_pattern(np.full((8, 8, 3), 0.2), signs)[..., 0] > 0.5
    assert marked[:, :4].sum() > marked[:, 4:].sum() > 0                # a grid for, lines against
    assert marked[0, 4:].all() and not marked[1, 4:].any()
    monkeypatch.setenv("NO_COLOR", "1")

    async def run():
        app = make_app(tmp_path, image=RA_SAMPLE)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("s")
            await settle(app, pilot)
            assert app.no_color and "grid: for, lines: against" in app.query_one("#panel-shap").border_subtitle
            rows = [str(option.prompt) for option in app.query_one("#shap-rows").options]
            assert any("+" in row for row in rows) and any("-" in row for row in rows)   # the sign as text
    asyncio.run(run())


# ---------------------------------------------------------------- folder mode


def make_folder(root, n=20):
    """``n`` images in two sub-folders (rotated and mirrored samples), some with the same name in both."""
    files = []
    for i in range(n):
        image = PILImage.open(SAMPLES[i % len(SAMPLES)]).rotate(90 * (i // len(SAMPLES)))
        path = root / ("a" if i % 2 else "b") / f"hand_{i // 2:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        files.append(path)
    return files


def test_walk_a_folder_with_n_and_every_saved_picture_is_stamped_for_the_image_shown(tmp_path):
    folder = tmp_path / "scans"
    make_folder(folder)
    files = input_files([folder])
    stems = distinct_stems(files)                       # the command line's names for this folder
    model = tiny_model(threshold=np.inf)
    scores = model.assess(np.stack([model.read(f) for f in files])).ood_score
    model = tiny_model(threshold=float(np.median(scores)))     # half the images flagged

    async def run():
        app = make_app(tmp_path, model=model, files=files)
        shown = []
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            for i in range(len(files)):
                if i:
                    await pilot.press("n")
                await settle(app, pilot)
                await pilot.press("c")
                await settle(app, pilot)
                await pilot.press("w")
                await settle(app, pilot)
                screen = screen_text(app)
                label = screen.split("predicted: ")[1].split()[0]
                shown.append((app.current.path, label, app.current.probs.max(), "OUT OF DISTRIBUTION" in screen))
                assert "saved Grad-CAM: 2 files" in text_of(app, "#status")
            await pilot.press("n")
            await pilot.pause()
            assert app.current.path == files[-1]            # the end of the list: it stays
        return shown
    shown = asyncio.run(run())
    assert [path for path, *_ in shown] == files
    assert 0 < sum(flagged for *_, flagged in shown) < len(files)
    for path, label, probability, flagged in shown:
        text = PILImage.open(tmp_path / "out" / f"{stems[path]}_gradcam.png").text
        assert text["Source"] == path.name and text["Model"] == model.name
        assert text["Class"] == label and text["Probability"] == format_probability(probability)
        assert text["In distribution"].startswith("NO" if flagged else "yes")
        assert text["Map"].startswith("Grad-CAM at")


def test_folder_list_fills_in_the_background_and_sorts(tmp_path):
    folder = tmp_path / "scans"
    make_folder(folder, n=10)
    files = input_files([folder])

    async def run():
        app = make_app(tmp_path, model=tiny_model(threshold=1e9), files=files)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            listing = app.query_one("#files")
            assert set(listing.found) == set(files)
            assert "10 images, by name" in text_of(app, "#files-title")
            await pilot.press("r")
            p_ra = [float(listing.found[f].probs[1]) for f in listing.order]
            assert p_ra == sorted(p_ra, reverse=True) and "p(RA), highest first" in text_of(app, "#status")
            await pilot.press("r")
            scores = [float(listing.found[f].ood_score) for f in listing.order]
            assert scores == sorted(scores, reverse=True)
            at = listing.order.index(app.current.path)
            await pilot.press("n")
            await settle(app, pilot)
            assert app.current.path == listing.order[at + 1]    # n follows the order on screen
            await pilot.press("p")
            await settle(app, pilot)
            assert app.current.path == listing.order[at]
    asyncio.run(run())


def test_n_passes_over_an_unreadable_file(tmp_path):
    files = make_folder(tmp_path / "scans", n=2)                  # b/hand_00.png, a/hand_00.png
    broken = tmp_path / "scans" / "a" / "hand_00b.png"          # listed between them (by name)
    broken.write_bytes(b"not an image")

    async def run():
        app = make_app(tmp_path, files=[*files, broken])
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            listing = app.query_one("#files")
            assert listing.order == [files[1], broken, files[0]] and isinstance(listing.found[broken], Exception)
            app.open_image(files[1])
            await pilot.press("n")
            await settle(app, pilot)
            assert app.current.path == files[0]
            await pilot.press("p")
            await settle(app, pilot)
            assert app.current.path == files[1] and "✗ error" in str(app.query_one("#file-rows").options[1].prompt)
    asyncio.run(run())


def test_picker_goes_up_and_completes_paths(tmp_path):
    folder = tmp_path / "scans"
    files = make_folder(folder, n=4)
    (folder / "notes.txt").write_text("not an image")
    opened = []
    suggest = PathSuggester(lambda: folder)
    assert asyncio.run(suggest.get_suggestion("a")) == "a/"
    assert asyncio.run(suggest.get_suggestion("a/ha")) == "a/hand_00.png"
    assert asyncio.run(suggest.get_suggestion("no")) is None            # notes.txt is not an image

    async def run():
        app = make_app(tmp_path, image=files[0])
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            app.open_image = opened.append
            await pilot.press("o")
            await pilot.pause()
            tree = app.screen.query_one("ImageTree")
            assert Path(tree.path) == files[0].parent
            await pilot.press("backspace")
            await pilot.pause()
            assert Path(tree.path) == folder and str(folder) in str(app.screen.query_one("#where").render())
            app.screen.query_one("#path").focus()
            await pilot.press(*"b/hand_00.png", "enter")
            await pilot.pause()
            assert opened == [folder / "b" / "hand_00.png"] and type(app.screen).__name__ == "Screen"
    asyncio.run(run())


# ---------------------------------------------------------------- what saving says


def test_save_says_which_map_state_it_writes():
    shap = SimpleNamespace(n_evaluations=80, budget=202)
    item = Opened(Path("x.png"), None, None, "x")
    item.cam_explanation = SimpleNamespace(cam_name="HiResCAM", cam=1)
    assert item.map_words() == "HiResCAM"
    item.shap_running = 1
    assert item.keep_shap(SimpleNamespace(shap=shap), "round", 1)
    assert item.map_words() == "HiResCAM and partial SHAP after 80 of 202 model calls (still computing)"
    item.shap_running = 2                              # s again: a new run, no round of it back yet
    assert "the previous SHAP run's map (80 of 202 model calls; the new run has no map yet)" in item.map_words()
    assert item.keep_shap(SimpleNamespace(shap=shap), "stopped", 2)
    assert not item.keep_shap(SimpleNamespace(shap=shap), "stopped", 1)  # the old run's late end: dropped
    assert item.map_words().endswith("partial SHAP after 80 of 202 model calls (stopped)")
    assert item.shap_running is None


@pytest.mark.parametrize("size, threshold", [((120, 40), None), ((80, 24), -1.0)], ids=["120x40", "80x24-flagged"])
def test_snapshot(snap_compare, size, threshold):
    """The row arrangement, and the small window's (one picture beside the verdict, the image flagged)."""
    async def open_and_explain(pilot):
        await settle(pilot.app, pilot)
        await pilot.press("c")
        await settle(pilot.app, pilot)
    # The header shows the image's path: use one that is the same in every checkout.
    fixed = Path(tempfile.gettempdir()) / "minivgg-snapshot" / "ra_sample.png"
    fixed.parent.mkdir(exist_ok=True)
    shutil.copy(RA_SAMPLE, fixed)
    app = make_app(Path("/nonexistent-out"), image=fixed, model=tiny_model(threshold))
    assert snap_compare(app, terminal_size=size, run_before=open_and_explain)
