"""VGG8 construction, state dicts, model files and every kind of bad input."""

import json
import zipfile

import numpy as np
import pytest

from minivgg import VGG8, Adam, ModelFileError, load_model, softmax_cross_entropy
from minivgg.modelfile import META_KEY
from tests.conftest import TINY

PAPER_KEYS = [f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13, 16, 18) for p in ("weight", "bias")] + \
             [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]


def test_paper_architecture():
    model = VGG8()
    state = model.state_dict()
    assert list(state) == PAPER_KEYS
    assert [state[f"features.{i}.weight"].shape[0] for i in (0, 3, 6, 8, 11, 13, 16, 18)] == \
           [64, 128, 256, 256, 512, 512, 512, 512]
    assert state["classifier.0.weight"].shape == (512, 25088)
    assert state["classifier.3.weight"].shape == (512, 512)
    assert state["classifier.6.weight"].shape == (2, 512)
    assert all(v.dtype == np.float32 for v in state.values())


def test_forward_shapes_and_determinism(rng):
    x = rng.standard_normal((3, 3, 64, 64)).astype(np.float32)
    a = VGG8(**{**TINY, "image_size": 64}, seed=7)
    b = VGG8(**{**TINY, "image_size": 64}, seed=7)
    assert a.forward(x).shape == (3, 2)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.forward(x), VGG8(**{**TINY, "image_size": 64}, seed=8).forward(x))
    # train=True draws dropout masks; the same seed draws the same masks
    np.testing.assert_array_equal(a.forward(x, train=True), b.forward(x, train=True))
    assert not np.array_equal(a.forward(x, train=True), a.forward(x))
    p = a.predict_proba(x, batch_size=2)
    np.testing.assert_allclose(p.sum(axis=1), 1)


def test_training_reduces_loss(rng):
    model = VGG8(**TINY, dropout=0.0, seed=0)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    y = np.array([0, 1] * 4)
    x[y == 1, :, 8:16, 8:16] += 2.0
    opt = Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, d = softmax_cross_entropy(model.forward(x, train=True), y)
        model.backward(d, need_input_grad=False)
        opt.step(model.grads())
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]
    assert (model.forward(x).argmax(axis=1) == y).all()


def test_watched_layers_keep_output_and_gradient(tiny64, rng):
    tiny64.watch = {"features.19"}
    x = rng.standard_normal((2, 3, 32, 32))
    logits = tiny64.forward(x)
    tiny64.backward(np.ones_like(logits))
    assert tiny64.watched_outputs["features.19"].shape == (2, 6, 2, 2)
    assert tiny64.watched_grads["features.19"].shape == (2, 6, 2, 2)


@pytest.mark.parametrize("x,match", [
    (np.zeros((2, 3, 64, 64), np.float32), r"shape \(N, 3, 32, 32\)"),
    (np.zeros((2, 1, 32, 32), np.float32), r"shape \(N, 3, 32, 32\)"),
    (np.zeros((3, 32, 32), np.float32), r"shape \(N, 3, 32, 32\)"),
    (np.zeros((2, 3, 32, 32), np.float64), "expected float32 input"),
    (np.zeros((2, 3, 32, 32), np.uint8), "expected float32 input"),
    ([[0.0]], "numpy array"),
])
def test_bad_input_is_a_value_error(x, match):
    with pytest.raises(ValueError, match=match):
        VGG8(**TINY).forward(x)


@pytest.mark.parametrize("kwargs,match", [
    ({"image_size": 100}, "multiple of 32"),
    ({"image_size": 0}, "multiple of 32"),
    ({"channels": (8, 8)}, "8 positive integers"),
    ({"num_classes": 1}, "at least 2"),
    ({"dtype": np.int32}, "float32 or float64"),
    ({"dropout": 1.0}, r"\[0, 1\)"),
])
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VGG8(**{**TINY, **kwargs})


def test_load_state_dict_lists_every_problem():
    model = VGG8(**TINY)
    state = model.state_dict()
    del state["features.0.bias"], state["classifier.6.weight"]
    state["features.3.weight"] = np.zeros((1, 1, 3, 3))
    state["extra.weight"] = np.zeros(3)
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    message = str(err.value)
    for needle in ["missing: classifier.6.weight, features.0.bias", "unexpected: extra.weight",
                   "features.3.weight: expected (3, 2, 3, 3), got (1, 1, 3, 3)"]:
        assert needle in message


def test_state_dict_round_trip_and_copy_semantics(rng):
    a, b = VGG8(**TINY, seed=1), VGG8(**TINY, seed=2)
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    state = a.state_dict()
    state["features.0.weight"][...] = 0
    assert np.abs(a.parameters()["features.0.weight"]).sum() > 0


def test_save_load_round_trip(tmp_path, rng):
    model = VGG8(**TINY, seed=4, class_names=["Normal", "RA"])
    model.preprocessing = {"resize": 36, "wavelet": "sym8"}
    path = tmp_path / "m.npz"
    model.save(path, extra={"note": "test"})
    loaded = load_model(path)
    assert loaded.class_names == ["Normal", "RA"]
    assert loaded.preprocessing == model.preprocessing
    assert loaded.config == model.config
    assert loaded.extra == {"note": "test"}
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert list(tmp_path.iterdir()) == [path]          # no temporary files left behind
    meta = json.loads(np.load(path)[META_KEY].tobytes())
    assert meta["format"] == "minivgg-model" and meta["architecture"] == "VGG8"


def test_corrupt_model_files_give_clear_errors(tmp_path):
    good = tmp_path / "good.npz"
    VGG8(**TINY).save(good)
    data = good.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "empty.npz": b"",
        "text.npz": b"this is not a model",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "objects.npz", **{META_KEY: np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "nometa.npz", w=np.zeros(3))
    with zipfile.ZipFile(tmp_path / "badjson.npz", "w") as z:
        z.writestr(META_KEY + ".npy", b"")
    np.savez(tmp_path / "foreign.npz", **{META_KEY: np.frombuffer(b'{"format": "other"}', np.uint8)})
    for name in [*cases, "objects.npz", "nometa.npz", "badjson.npz", "foreign.npz", "missing.npz"]:
        with pytest.raises(ModelFileError) as err:
            load_model(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ModelFileError, match="object arrays"):
        load_model(tmp_path / "objects.npz")


def test_failed_save_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    VGG8(**TINY, seed=1).save(path)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError):
        VGG8(**TINY, seed=2).save(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
