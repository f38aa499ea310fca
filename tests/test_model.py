"""VGG8 construction, state dicts, model files and every kind of bad input."""

import json
import zipfile

import numpy as np
import pytest

from minivgg import SGD, VGG8, Adam, ModelFileError, Tape, load_model, save_model, softmax_cross_entropy
from minivgg.deploy import Classifier
from minivgg.deploy.modelfile import META_KEY
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
    # train=True draws dropout masks from the rng it is given; the same seed draws the same masks
    np.testing.assert_array_equal(a.forward(x, train=True, rng=np.random.default_rng(1)),
                                  b.forward(x, train=True, rng=np.random.default_rng(1)))
    assert not np.array_equal(a.forward(x, train=True, rng=np.random.default_rng(1)), a.forward(x))
    with pytest.raises(ValueError, match="pass rng="):
        a.forward(x, train=True)
    p = a.predict_proba(x, batch_size=2)
    np.testing.assert_allclose(p.sum(axis=1), 1)
    np.testing.assert_allclose(p, a.predict_proba(x, batch_size=3))          # batching does not matter


def test_training_reduces_loss(rng):
    model = VGG8(**TINY, dropout=0.0, seed=0)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    y = np.array([0, 1] * 4)
    x[y == 1, :, 8:16, 8:16] += 2.0
    opt = Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        tape = Tape()
        loss, d = softmax_cross_entropy(model.forward(x, train=True, tape=tape), y)
        _, grads = model.backward(d, tape, need_input_grad=False)
        opt.step(grads)
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]
    assert (model.forward(x).argmax(axis=1) == y).all()


def test_tape_keeps_watched_outputs_and_gradients(tiny64, rng):
    tape = Tape(watch={"features.19"})
    x = rng.standard_normal((2, 3, 32, 32))
    logits = tiny64.forward(x, tape=tape)
    dx, grads = tiny64.backward(np.ones_like(logits), tape)
    assert tape.outputs["features.19"].shape == (2, 6, 2, 2)
    assert tape.output_grads["features.19"].shape == (2, 6, 2, 2)
    assert dx.shape == x.shape and set(grads) == set(tiny64.parameters())
    _, outputs = tiny64.infer(x, capture=["features.19"])
    np.testing.assert_array_equal(outputs["features.19"], tape.outputs["features.19"])
    assert not tape.caches                      # the backward pass released every activation it used
    with pytest.raises(ValueError, match="tape of a complete forward pass of this model, used once"):
        tiny64.backward(np.ones_like(logits), tape)
    with pytest.raises(ValueError, match="tape of a complete forward pass"):
        tiny64.backward(np.ones_like(logits), Tape())
    with pytest.raises(KeyError, match="no layer named"):
        tiny64.forward(x, tape=Tape(watch={"features.99"}))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolutions_apply_their_relu_exactly_as_the_relu_layers(rng, dtype, monkeypatch):
    """VGG8.forward lets each convolution apply the ReLU after it (one memory pass less), and without a tape
    the first layer its pool as well: the result is bit for bit that of calling the layers one by one, and a
    watched convolution keeps its output before the ReLU."""
    from minivgg.nn import conv
    fused = []
    original = conv.direct_relu_maxpool_rows
    monkeypatch.setattr(conv, "direct_relu_maxpool_rows", lambda *a: fused.append(1) or original(*a))
    model = VGG8(channels=(8, 8, 16, 16, 16, 16, 16, 16), hidden=8, image_size=64, dtype=dtype, seed=2)
    x = rng.standard_normal((3, 3, 64, 64)).astype(dtype)
    h = x
    for _, layer in model.layers:
        h = layer.forward(h)[0]
    assert not fused
    np.testing.assert_array_equal(model.forward(x), h)
    assert fused                                        # the first block, fused
    fused.clear()
    # A pass that only records outputs (the features OOD scores) fuses too, and records the pool's output.
    tape = Tape(watch={"features.2"}, keep_caches=False)
    np.testing.assert_array_equal(model.forward(x, tape=tape), h)
    assert fused
    pooled = x
    for _, layer in model.layers[:3]:
        pooled = layer.forward(pooled)[0]
    np.testing.assert_array_equal(tape.outputs["features.2"], pooled)
    fused.clear()
    np.testing.assert_array_equal(model.forward(x, tape=Tape(watch={"features.1"}, keep_caches=False)), h)
    assert not fused                                    # the ReLU's output is watched: not fused away
    tape = Tape(watch={"features.3", "features.4"})
    np.testing.assert_array_equal(model.forward(x, tape=tape), h)
    assert not fused                                    # a tape's pass keeps the ReLU's output for backward
    before, after = tape.outputs["features.3"], tape.outputs["features.4"]
    assert (before < 0).any() and (after >= 0).all()
    np.testing.assert_array_equal(after, np.where(before > 0, before, 0))


@pytest.mark.parametrize("watch", [set(), {"features.4"}])
def test_relu_then_pool_backward_in_one_pass_equals_the_layers(rng, watch, monkeypatch):
    """VGG8.backward runs ReLU + pool backward as one in-place pass where nothing else needs the ReLU's output:
    gradients equal (bit for bit) those of the layers' own backward passes; a watched ReLU is left to its layer."""
    from minivgg.nn import activation, pool
    fused = []
    original = pool.relu_maxpool2x2_backward_inplace
    monkeypatch.setattr(pool, "relu_maxpool2x2_backward_inplace", lambda d, x: fused.append(1) or original(d, x))
    model = VGG8(channels=(8, 8, 16, 16, 16, 16, 16, 16), hidden=8, image_size=64, dtype=np.float64, seed=2)
    x = rng.standard_normal((2, 3, 64, 64))
    tape = Tape(watch=watch)
    logits = model.forward(x, tape=tape)
    dx, grads = model.backward(np.ones_like(logits), tape)
    assert len(fused) == 5 - len(watch)                 # five ReLU + pool pairs, but not the watched one
    caches, h = [], x
    for _, layer in model.layers:
        h, cache = layer.forward(h)
        caches.append(cache)
    g, expected = np.ones_like(logits), {}
    for (name, layer), cache in zip(reversed(model.layers), reversed(caches)):
        g, layer_grads = layer.backward(g, cache)
        expected.update({f"{name}.{k}": v for k, v in layer_grads.items()})
    np.testing.assert_array_equal(dx, g)
    for key in expected:
        np.testing.assert_array_equal(grads[key], expected[key], err_msg=key)
    if watch:
        assert tape.output_grads["features.4"].shape == (2, 8, 32, 32)
    out = np.maximum(rng.standard_normal((1, 2, 4, 4)), 0)
    dout = rng.standard_normal((1, 2, 2, 2))
    reference = activation.relu_backward(pool.maxpool2x2_backward(dout, out), out)
    assert pool.relu_maxpool2x2_backward_inplace(dout, out) is out
    np.testing.assert_array_equal(out, reference)


def test_a_tape_can_lend_the_last_steps_gradients_to_the_next(tiny64, rng):
    """Tape(reuse=grads): the dense layers' weight gradients are written into the given arrays, same values."""
    from minivgg.nn.layers import LayerInputError
    x = rng.standard_normal((2, 3, 32, 32))
    tape = Tape()
    _, expected = tiny64.backward(np.ones_like(tiny64.forward(x, tape=tape)), tape)
    spent = {k: np.full_like(v, np.nan) for k, v in expected.items()}
    tape = Tape(reuse=spent)
    _, grads = tiny64.backward(np.ones_like(tiny64.forward(x, tape=tape)), tape)
    for name in ("classifier.0.weight", "classifier.3.weight", "classifier.6.weight"):
        assert grads[name] is spent[name]
    for k in expected:
        np.testing.assert_array_equal(grads[k], expected[k], err_msg=k)
    tape = Tape(reuse={"classifier.0.weight": np.zeros((3, 3))})
    logits = tiny64.forward(x, tape=tape)
    with pytest.raises(LayerInputError, match="classifier.0.*weight_grad_into must be .* float64 array of shape"):
        tiny64.backward(np.ones_like(logits), tape)


def test_the_model_holds_no_state_of_a_call(tiny64, rng):
    """After any call, the model and its layers hold exactly what they held before: their parameters."""
    before = {name: dict(vars(layer)) for name, layer in tiny64.layers}
    attrs = set(vars(tiny64))
    x = rng.standard_normal((2, 3, 32, 32))
    tape = Tape(watch={"features.19"})
    tiny64.backward(np.ones((2, 2)), tape) if tiny64.forward(x, tape=tape) is not None else None
    tiny64.infer(x, capture=["classifier.4"])
    assert set(vars(tiny64)) == attrs
    for name, layer in tiny64.layers:
        assert vars(layer).keys() == before[name].keys()
        for key, value in vars(layer).items():
            assert value is before[name][key], (name, key)


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
    model = Classifier(VGG8(**TINY, seed=4, class_names=["Normal", "RA"]))
    model.preprocessing = {**model.preprocessing, "wavelet": None}
    path = tmp_path / "m.npz"
    save_model(model, path, extra={"note": "test"})
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
    save_model(VGG8(**TINY), good)
    data = good.read_bytes()
    cases = {
        "truncated.npz": (data[: len(data) // 2], "truncated or corrupt|not an .npz"),
        "empty.npz": (b"", "empty file"),
        "text.npz": (b"this is not a model", r"not an \.npz archive"),
    }
    for name, (content, _) in cases.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "objects.npz", **{META_KEY: np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "nometa.npz", w=np.zeros(3))
    with zipfile.ZipFile(tmp_path / "badjson.npz", "w") as z:
        z.writestr(META_KEY + ".npy", b"")
    np.savez(tmp_path / "foreign.npz", **{META_KEY: np.frombuffer(b'{"format": "other"}', np.uint8)})
    (tmp_path / "loop.npz").symlink_to(tmp_path / "loop.npz")
    (tmp_path / "folder.npz").mkdir()
    expected = {**{k: v for k, (_, v) in cases.items()}, "objects.npz": "object arrays", "nometa.npz": "no metadata",
                "badjson.npz": "corrupt", "foreign.npz": "format is 'other'", "missing.npz": "no such file",
                "loop.npz": "symbolic link loop", "folder.npz": "is a folder"}
    for name, needle in expected.items():
        with pytest.raises(ModelFileError, match=needle) as err:
            load_model(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


def _rewrite(path, target, meta=None, arrays=None):
    """Copy the model file ``path`` to ``target`` with its metadata and/or some arrays replaced."""
    with np.load(path) as archive:
        contents = {k: archive[k] for k in archive.files}
    if meta is not None:
        contents[META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    contents.update(arrays or {})
    np.savez(target, **contents)
    return target


def _meta(path):
    return json.loads(np.load(path)[META_KEY].tobytes())


@pytest.mark.parametrize("change,needle", [
    (lambda m: m.pop("preprocessing"), "preprocessing settings are missing"),
    (lambda m: m.update(preprocessing={}), "preprocessing settings are missing"),
    (lambda m: m["preprocessing"].update(wavelet="sym99"), "wavelet must be null or a discrete"),
    (lambda m: m["preprocessing"].update(std=[0.2, 0, 0.2]), "std must be positive"),
    (lambda m: m["preprocessing"].update(crop=64), "differs from the network's image_size"),
    (lambda m: m["config"].update(hidden="8"), "hidden must be an integer"),
    (lambda m: m["config"].update(num_classes=1e9), "num_classes must be an integer"),
    (lambda m: m["config"].update(num_classes=10 ** 9), r"num_classes must be an integer in \[2, 1000\]"),
    (lambda m: m["config"].update(channels=[4096] * 8, image_size=1024), "parameters"),
    (lambda m: m.update(format_version="2"), "format_version must be a positive integer"),
    (lambda m: m.update(format_version=99), "newer minivgg"),
    (lambda m: m.update(dtype="float16"), "dtype must be float32 or float64"),
    (lambda m: m.update(class_names=["A"]), "class_names must be 2 distinct"),
    (lambda m: m.update(class_names=["A", "A"]), "class_names must be 2 distinct"),
    (lambda m: m.update(extra=[1]), "extra must be an object"),
], ids=["no-preprocessing", "empty-preprocessing", "bad-wavelet", "zero-std", "crop", "string-number",
        "float-classes", "huge-classes", "huge-network", "string-version", "newer-version", "dtype", "few-names",
        "same-names", "extra"])
def test_hostile_metadata_is_refused_before_anything_is_allocated(tmp_path, change, needle):
    import tracemalloc
    good = tmp_path / "good.npz"
    save_model(VGG8(**TINY, class_names=["A", "B"]), good)
    meta = _meta(good)
    change(meta)
    bad = _rewrite(good, tmp_path / "bad.npz", meta=meta)
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=needle) as err:
        load_model(bad)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2 ** 20 and "bad.npz: bad metadata" in str(err.value)


def test_declared_array_sizes_are_checked_before_decompressing(tmp_path):
    import tracemalloc
    good = tmp_path / "good.npz"
    save_model(VGG8(**TINY), good)
    # A zip bomb: classifier.0.weight replaced by 256 MB of zeros that compress to a few hundred KB.
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != "classifier.0.weight.npy":
                dst.writestr(info.filename, src.read(info))
        with dst.open("classifier.0.weight.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                     "shape": (8, 2 ** 23)})
            for _ in range(64):
                f.write(bytes(2 ** 22))
    assert bomb.stat().st_size < 2 ** 20
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=r"classifier.0.weight is float32\[8, 8388608\], expected float32\[8, 6\]"):
        load_model(bomb)
    assert tracemalloc.get_traced_memory()[1] < 20 * 2 ** 20
    tracemalloc.stop()


def test_non_finite_weights_are_refused(tmp_path):
    good = tmp_path / "good.npz"
    save_model(VGG8(**TINY), good)
    w = np.load(good)["features.3.weight"].copy()
    w[0, 0, 0, 0] = np.nan
    bad = _rewrite(good, tmp_path / "nan.npz", arrays={"features.3.weight": w})
    with pytest.raises(ModelFileError, match="non-finite weights.*features.3.weight"):
        load_model(bad)


def test_failed_save_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(VGG8(**TINY, seed=1), path)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError):
        save_model(VGG8(**TINY, seed=2), path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


# ---------------------------------------------------------------------- serving: a frozen model

SERVED = dict(channels=(4, 8, 8, 12, 12, 16, 16, 16), hidden=16, image_size=96)   # conv sides 96 ... 6: F4 and F2


def _filter_transforms(monkeypatch):
    """A list that grows by one each time a Winograd kernel transform is computed."""
    from minivgg.nn import winograd
    calls, transform = [], winograd.filter_transform
    monkeypatch.setattr(winograd, "filter_transform", lambda *a, **k: calls.append(1) or transform(*a, **k))
    return calls


def test_a_frozen_model_computes_what_it_did_without_transforming_a_kernel_per_call(rng, monkeypatch):
    import copy
    import threading

    from minivgg.nn import winograd
    from minivgg.nn.winograd4 import F4
    model = VGG8(**SERVED, seed=5)
    x = rng.standard_normal((3, 3, 96, 96)).astype(np.float32)
    expected = {n: model.forward(x[:n]) for n in (1, 3)}
    served = copy.deepcopy(model).freeze()
    assert served.frozen and not model.frozen
    # The scheme each layer takes, and only it: F(4x4, 3x3) where the sides are multiples of 4 (24 and 12),
    # F(2x2, 3x3) elsewhere (6); the first two layers (3 and 4 input channels) run the direct loop: no transform.
    f4, f2 = {F4}, {winograd.F2}
    assert [served[n].transformed and set(served[n].transformed.u) for n in served.conv_layer_names] == \
           [None, None, f4, f4, f4, f4, f2, f2]
    calls = _filter_transforms(monkeypatch)
    for n, logits in expected.items():
        np.testing.assert_allclose(served.forward(x[:n]), logits, rtol=1e-4, atol=1e-5 * np.abs(logits).max())
    assert calls == []                                    # every kernel transform was kept
    model.forward(x)
    assert calls                                          # the unfrozen model transforms per call
    # One frozen model serves several threads at once.
    results = [None] * 4
    workers = [threading.Thread(target=lambda i=i: results.__setitem__(i, served.forward(x))) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, results[0])


def test_a_frozen_model_refuses_changes_and_its_copies_are_writable_and_right(rng):
    import copy
    import pickle
    served = VGG8(**SERVED, seed=5).freeze()
    x = rng.standard_normal((2, 3, 96, 96)).astype(np.float32)
    with pytest.raises(ValueError, match="read-only"):
        served["features.3"].params["weight"][...] = 0
    with pytest.raises(ValueError, match="features.0.weight is read-only: .*deepcopy"):
        Adam(served.parameters())
    with pytest.raises(ValueError, match="read-only"):
        SGD(served.parameters())
    # A copy is a model to change: writable, no kept transform, and a changed kernel is the one used.
    for clone in (copy.deepcopy(served), pickle.loads(pickle.dumps(served))):
        assert not clone.frozen and all(clone[n].transformed is None for n in clone.conv_layer_names)
        clone["features.11"].params["weight"][...] *= -1
        reference = VGG8(**SERVED)
        reference.load_state_dict(clone.state_dict())
        np.testing.assert_allclose(clone.forward(x), reference.forward(x), rtol=1e-5)
    # A kernel put in a frozen layer's place is used (the kept transform belongs to the old one).
    changed = copy.deepcopy(served).freeze()
    changed["features.11"].params["weight"] = -served["features.11"].params["weight"]
    reference = VGG8(**SERVED)
    reference.load_state_dict(changed.state_dict())
    np.testing.assert_allclose(changed.forward(x), reference.forward(x), rtol=1e-5)
    assert not np.allclose(changed.forward(x), served.forward(x))


def test_the_commands_serve_frozen_models():
    from minivgg.app.cluster import worker_model
    from minivgg.cli.common import load
    from minivgg.deploy.bundled import BUNDLED_MODEL
    assert load(None).frozen and not load_model(BUNDLED_MODEL).frozen
    assert worker_model(str(BUNDLED_MODEL)).frozen
