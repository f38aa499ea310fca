"""Metrics against brute force, training resume, NaN handling and the train/evaluate commands."""

import itertools
import json

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.imaging.datasets import FolderDataset
from minivgg.imaging.phantoms import write_phantoms
from minivgg.imaging.preprocess import preprocessing_settings
from minivgg.training.train import TrainingError, fit, load_checkpoint
from minivgg.trust.metrics import auc_score, binary_metrics, bootstrap_ci, roc_curve

TINY_PRESET = dict(channels=(2, 2, 4, 4, 4, 4, 4, 4), hidden=8, image_size=32, epochs=3, batch_size=4, lr=1e-3)


def test_auc_equals_pair_enumeration(rng):
    y = rng.integers(0, 2, 40)
    s = np.round(rng.random(40), 1)          # ties on purpose
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0)
             for (a, ya), (b, yb) in itertools.product(zip(s, y), repeat=2) if ya == 1 and yb == 0]
    assert auc_score(y, s) == pytest.approx(np.mean(pairs))
    fpr, tpr = roc_curve(y, s)
    assert np.trapezoid(tpr, fpr) == pytest.approx(np.mean(pairs))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)


def test_binary_metrics_from_a_known_confusion():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([.9, .8, .7, .2, .6, .1, .1, .1, .3, .4])
    m = binary_metrics(y, p, positive=1)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 5)
    assert m["accuracy"] == 0.8 and m["sensitivity"] == 0.75
    assert m["specificity"] == pytest.approx(5 / 6) and m["precision"] == 0.75
    assert np.isnan(binary_metrics(np.zeros(3, int), np.zeros(3), 1)["sensitivity"])
    ci = bootstrap_ci(y, p, 1, n_boot=300)
    for name in ("accuracy", "auc"):
        assert ci[name][0] <= m[name] <= ci[name][1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    write_phantoms(root, 16, seed=0, size=48)
    return root / "images"


def test_resume_equals_uninterrupted_run(tiny_data, tmp_path):
    ds = FolderDataset(tiny_data, preprocessing_settings(32))
    train, val = np.arange(12), np.arange(12, 16)
    full, _ = fit(ds, train, val, tmp_path / "full", TINY_PRESET, seed=3)
    fit(ds, train, val, tmp_path / "part", TINY_PRESET, epochs=1, seed=3)       # "killed" after epoch 1
    _, _, state = load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert state["epoch"] == 1
    resumed, history = fit(ds, train, val, tmp_path / "part", TINY_PRESET, seed=3, resume=True)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)
    assert (tmp_path / "full" / "learning_curves.png").stat().st_size > 0


def test_nan_loss_stops_with_message(tiny_data, tmp_path):
    ds = FolderDataset(tiny_data, preprocessing_settings(32))
    with pytest.raises(TrainingError, match="loss became nan at epoch 1"):
        fit(ds, np.arange(16), np.array([], int), tmp_path, {**TINY_PRESET, "lr": float("nan")}, seed=0)


def test_train_and_evaluate_commands(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("minivgg.training.train").training.train.PRESETS, "small", TINY_PRESET)
    assert main(["train", "--data", str(tiny_data), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 0
    model = tmp_path / "run" / "model.npz"
    assert main(["evaluate", "--model", str(model), "--data", str(tiny_data), "--out", str(tmp_path / "ev"),
                 "--bootstrap", "50"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 16 and metrics["positive"] == "RA"
    assert set(metrics["ci95"]) == {"accuracy", "sensitivity", "specificity", "precision", "auc"}
    assert (tmp_path / "ev" / "roc.png").exists() and (tmp_path / "ev" / "confusion_matrix.png").exists()
    assert main(["predict", str(tiny_data / "RA"), "--model", str(model), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 8 and set(lines[0]["probabilities"]) == {"Normal", "RA"}
    # A broken file among good ones: the good ones are still predicted, the exit code says 65.
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    good = sorted((tiny_data / "RA").glob("*.png"))[0]
    assert main(["predict", str(bad), str(good), "--model", str(model)]) == 65
    captured = capsys.readouterr()
    assert "broken.png: not a readable image" in captured.err and str(good) in captured.out


def test_phantoms_command(tmp_path, capsys):
    assert main(["phantoms", "--out", str(tmp_path / "p"), "--n", "4", "--size", "48", "--seed", "5"]) == 0
    assert "wrote 4 phantoms" in capsys.readouterr().out
    assert len(list((tmp_path / "p" / "images").rglob("*.png"))) == 4


def test_command_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "A").mkdir()
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 65
    assert main(["evaluate", "--model", str(tmp_path / "none.npz"), "--data", str(tmp_path)]) == 66
    assert main(["predict", str(tmp_path / "missing.png"), "--model", str(tmp_path / "none.npz")]) == 66
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("minivgg: error:") == 3


class InterruptAt:
    """A progress reporter that presses Ctrl-C in the middle of a given epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def update(self, label, *args):
        if label.startswith(f"epoch {self.epoch}/"):
            raise KeyboardInterrupt

    def line(self, text):
        pass

    problem = line


def test_ctrl_c_keeps_last_epoch_and_resume_finishes(tiny_data, tmp_path):
    ds = FolderDataset(tiny_data, preprocessing_settings(32))
    train, val = np.arange(12), np.arange(12, 16)
    with pytest.raises(KeyboardInterrupt):
        fit(ds, train, val, tmp_path, TINY_PRESET, seed=1, progress=InterruptAt(2))
    _, _, state = load_checkpoint(tmp_path / "checkpoint.npz")
    assert state["epoch"] == 1 and not list(tmp_path.glob(".*tmp"))
    resumed, _ = fit(ds, train, val, tmp_path, TINY_PRESET, seed=1, resume=True, progress=InterruptAt(0))
    full, _ = fit(ds, train, val, tmp_path / "full", TINY_PRESET, seed=1, progress=InterruptAt(0))
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)
