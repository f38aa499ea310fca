"""Hostile inputs, options and outputs: each is one clear line with the right exit code, or correct behaviour.

Exit codes: 2 usage, 65 bad data or model, 66 missing input, 73 output folder not writable.
"""

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minivgg import VGG8, save_model
from minivgg.cli import BUNDLED_SAMPLES
from minivgg.explain import GradCAM
from minivgg.imaging.phantoms import write_phantoms
from minivgg.training.train import PRESETS
from tests.conftest import run_cli as run

RA = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
NORMAL = sorted((BUNDLED_SAMPLES / "Normal").glob("*.png"))[0]
TINY_PRESET = dict(channels=(2, 2, 4, 4, 4, 4, 4, 4), hidden=8, image_size=32, epochs=2, batch_size=4, lr=1e-3)


@pytest.fixture(scope="module")
def phantom_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    write_phantoms(root, 12, seed=0, size=48)
    return root / "images"


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "small", TINY_PRESET)
    monkeypatch.setitem(PRESETS, "paper", {**TINY_PRESET, "channels": (2, 2, 2, 2, 2, 2, 2, 2)})


# ------------------------------------------------------------------ 3: images


def test_float_tiff_with_nan_or_inf_is_an_error_naming_the_file(tmp_path, capsys):
    for name, bad in (("nan.tif", np.nan), ("inf.tif", np.inf)):
        a = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
        a[3, 5] = bad
        Image.fromarray(a, mode="F").save(tmp_path / name)
        code, out, err = run(["predict", tmp_path / name, RA], capsys)
        assert code == 65 and f"{name}: 1 pixels are NaN or infinite" in err
        assert str(RA) in out                                  # the good file is still predicted


# ------------------------------------------------------------------ 4: resume


def test_resume_refuses_changed_options_and_names_them(phantom_data, tmp_path, capsys, tiny_preset):
    out = tmp_path / "run"
    assert run(["train", "--data", phantom_data, "--out", out, "--epochs", 1, "--seed", 3], capsys)[0] == 0
    for extra, needle in ((["--no-wavelet"], "--no-wavelet"), (["--seed", 4], "--seed: 3 in the checkpoint, 4 now"),
                          (["--batch-size", 2], "--batch-size"), (["--preset", "paper"], "--preset"),
                          (["--lr", 0.5], "--lr"), (["--val-fraction", 0.5], "--val-fraction")):
        code, _, err = run(["train", "--data", phantom_data, "--out", out, "--resume", "--epochs", 2, *extra], capsys)
        assert code == 2 and needle in err and "cannot resume with different settings" in err, (extra, err)
    # Naming the same values, or none, continues the run; the model keeps the run's wavelet setting.
    code, out_text, err = run(["train", "--data", phantom_data, "--out", out, "--resume", "--epochs", 2,
                               "--seed", 3], capsys)
    assert code == 0 and "resuming" in err
    meta = json.loads(np.load(out / "model.npz")["__meta__"].tobytes())
    assert meta["preprocessing"]["wavelet"] == "sym8" and len(meta["extra"]["history"]) == 2


def test_resume_refuses_a_changed_data_folder(phantom_data, tmp_path, capsys, tiny_preset):
    out = tmp_path / "run"
    assert run(["train", "--data", phantom_data, "--out", out, "--epochs", 1], capsys)[0] == 0
    other = tmp_path / "other"
    write_phantoms(other, 14, seed=5, size=48)
    code, _, err = run(["train", "--data", other / "images", "--out", out, "--resume", "--epochs", 2], capsys)
    assert code == 2 and "--data (the training images) differ" in err


# ------------------------------------------------------------------ 5: unreadable files


def test_unreadable_file_is_reported_and_the_others_still_run(phantom_data, tmp_path, capsys, monkeypatch):
    # Tests run as root, where chmod 000 does not stop reading: make Pillow meet the error instead.
    import minivgg.imaging.imageio as imageio
    locked = sorted((phantom_data / "RA").glob("*.png"))[0]
    real_open = imageio.Image.open

    def open_or_deny(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(imageio.Image, "open", open_or_deny)
    code, out, err = run(["predict", locked, RA], capsys)
    assert code == 65 and f"{locked}: permission denied" in err and str(RA) in out
    code, out, err = run(["evaluate", "--data", phantom_data, "--out", tmp_path / "ev", "--bootstrap", 20], capsys)
    assert code == 65 and "skipped" in err and "permission denied" in err
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n"] == 11


# ------------------------------------------------------------------ 6: models


def test_a_model_whose_output_is_nan_is_an_error_naming_it(tmp_path, capsys):
    model = VGG8(channels=(2, 2, 2, 2, 2, 2, 2, 2), hidden=4, image_size=128, class_names=["Normal", "RA"])
    for p in model.parameters().values():
        p[...] = 3e38                                   # finite weights whose products overflow
    save_model(model, tmp_path / "overflow.npz")
    code, out, err = run(["predict", RA, "--model", tmp_path / "overflow.npz", "--json"], capsys)
    assert code == 65 and "overflow.npz: output is not finite" in err and "NaN" not in out


@pytest.mark.parametrize("content,needle", [(b"\x00garbage bytes", r"not an \.npz archive"),
                                            (b"", "empty file")])
def test_garbage_model_bytes(tmp_path, capsys, content, needle):
    (tmp_path / "m.npz").write_bytes(content)
    code, _, err = run(["predict", RA, "--model", tmp_path / "m.npz"], capsys)
    assert code == 65 and "object arrays" not in err
    assert __import__("re").search(needle, err)


# ------------------------------------------------------------------ 7: outputs


@pytest.mark.parametrize("command", ["explain", "evaluate", "train", "predict-gradcam", "phantoms"])
def test_unwritable_output_fails_before_any_work(tmp_path, capsys, phantom_data, command, tiny_preset):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for out, needle in ((afile, "output folder is an existing file"),
                        (Path("/proc/minivgg-test"), "cannot write to the output folder")):
        argv = {"explain": ["explain", RA, "--out", out],
                "evaluate": ["evaluate", "--data", phantom_data, "--out", out],
                "train": ["train", "--data", phantom_data, "--out", out],
                "predict-gradcam": ["predict", RA, "--gradcam", out],
                "phantoms": ["phantoms", "--out", out, "--n", 2]}[command]
        code, stdout, err = run(argv, capsys)
        assert code == os.EX_CANTCREAT and needle in err and stdout == "", (command, out, err)


def test_same_stem_inputs_get_distinct_outputs(tmp_path, capsys):
    for folder, sample in (("A", RA), ("B", NORMAL)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "img.png").write_bytes(sample.read_bytes())
    out = tmp_path / "ex"
    code, _, _ = run(["explain", tmp_path / "A" / "img.png", tmp_path / "B" / "img.png", "--out", out,
                      "--method", "gradcam", "--save-raw"], capsys)
    assert code == 0
    a, b = np.load(out / "A_img_gradcam.npy"), np.load(out / "B_img_gradcam.npy")
    assert not np.array_equal(a, b)
    code, _, _ = run(["predict", tmp_path / "A", tmp_path / "B", "--gradcam", tmp_path / "g"], capsys)
    assert code == 0 and sorted(p.name for p in (tmp_path / "g").iterdir()) == ["A_img_gradcam.png",
                                                                               "B_img_gradcam.png"]


def test_stale_temporary_files_are_removed_on_the_next_write(phantom_data, tmp_path, capsys, tiny_preset):
    out = tmp_path / "run"
    out.mkdir()
    dead = out / ".checkpoint.npz.999999999.abcd.tmp"     # left by a writer killed with -9 (no such pid)
    dead.write_bytes(b"x" * 1000)
    alive = out / f".checkpoint.npz.{os.getpid()}.efgh.tmp"  # a live writer's file is left alone
    alive.write_bytes(b"x")
    assert run(["train", "--data", phantom_data, "--out", out, "--epochs", 1], capsys)[0] == 0
    assert not dead.exists() and alive.exists()


# ------------------------------------------------------------------ 8: option values and inputs


@pytest.mark.parametrize("argv", [
    ["explain", RA, "--regions", "0"], ["explain", RA, "--regions", "-3"], ["explain", RA, "--regions", "100000"],
    ["explain", RA, "--budget", "0"], ["explain", RA, "--budget", "1"], ["explain", RA, "--budget", "-5"],
    ["explain", RA, "--baseline", "inf"], ["explain", RA, "--baseline", "nan"],
    ["explain", RA, "--tolerance", "-0.1"], ["explain", RA, "--tolerance", "nan"], ["explain", RA, "--output", "odds"],
    ["predict", RA, "--batch-size", "0"], ["predict", RA, "--batch-size", "-1"],
    ["train", "--data", ".", "--batch-size", "0"], ["train", "--data", ".", "--lr", "-1"],
    ["train", "--data", ".", "--epochs", "0"], ["phantoms", "--out", "x", "--n", "0"],
])
def test_bad_option_values_are_usage_errors(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and err.strip().splitlines()[-1].startswith("minivgg ")


def test_missing_inputs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    for target, needle in ((tmp_path / "empty", "no images in this folder"),
                           (tmp_path / "loop.png", "symbolic link loop"),
                           (tmp_path / "nothing.png", "no such file or folder")):
        for command in ("predict", "explain"):
            code, out, err = run([command, target, "--out" if command == "explain" else "--json",
                                  *([tmp_path / "o"] if command == "explain" else [])], capsys)
            assert code == 66 and needle in err and out == "", (command, target, err)


# ------------------------------------------------------------------ 2: one model, many threads


def test_one_model_serves_many_threads():
    """Grad-CAM and batched prediction run side by side on one model give exactly their serial results."""
    model = VGG8(channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=16, image_size=64, seed=0)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, 3, 64, 64)).astype(np.float32) for _ in range(4)]
    cam_ref = [GradCAM(model)(x).raw for x in xs]
    prob_ref = [model.predict_proba(x) for x in xs]
    failures = []

    def work(kind, i):
        for _ in range(10):
            try:
                if kind == "cam":
                    np.testing.assert_array_equal(GradCAM(model)(xs[i]).raw, cam_ref[i])
                else:
                    np.testing.assert_array_equal(model.predict_proba(xs[i]), prob_ref[i])
            except Exception as e:                      # noqa: BLE001 - collected and reported below
                failures.append((kind, i, repr(e)))
    threads = [threading.Thread(target=work, args=(kind, i)) for i in range(4) for kind in ("cam", "proba")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
