"""Every backward pass against centred finite differences in float64 (relative error < 1e-6)."""

import numpy as np
import pytest

from minivgg import gradcheck, numerical_gradient, rel_error
from minivgg.nn import activation, conv, dense, dropout, layers, pool
from minivgg.nn.loss import softmax_cross_entropy

TOL = 1e-6


def check_function(f, backward, x, rng):
    """Check ``backward(dout)`` == d sum(f(x) * dout) / dx."""
    dout = rng.standard_normal(f().shape)
    assert rel_error(backward(dout), numerical_gradient(f, x, dout)) < TOL


def test_conv3x3_naive_backward(rng):
    x, w, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    for i, wrt in enumerate((x, w, b)):
        check_function(lambda: conv.conv3x3_forward_naive(x, w, b),
                       lambda d, i=i: conv.conv3x3_backward_naive(d, x, w)[i], wrt, rng)


@pytest.mark.parametrize("make", [
    lambda r: layers.Conv3x3(3, 4, r, np.float64),
    lambda r: layers.Dense(7, 5, r, np.float64),
    lambda r: layers.ReLU(),
    lambda r: layers.MaxPool2x2(),
    lambda r: layers.Flatten(),
    lambda r: layers.Dropout(0.5),             # inference mode: the identity
], ids=["conv3x3", "dense", "relu", "maxpool", "flatten", "dropout-eval"])
def test_layer_backward(rng, make):
    layer = make(rng)
    shape = (3, 7) if isinstance(layer, layers.Dense) else (2, 3, 6, 4)
    report = gradcheck(layer, rng.standard_normal(shape))
    assert set(report) == {"input", *layer.params}
    assert max(report.values()) < TOL, report


def test_gradcheck_catches_a_wrong_backward(rng):
    layer = layers.Dense(4, 3, rng, np.float64)
    right = layer.backward

    def wrong(dout, cache, need_dx=True):
        dx, grads = right(dout, cache, need_dx)
        return 1.01 * dx, grads
    layer.backward = wrong
    report = gradcheck(layer, rng.standard_normal((2, 4)))
    assert report["input"] > 1e-3 and report["weight"] < TOL


@pytest.mark.parametrize("layer", [layers.ReLU(), layers.MaxPool2x2()], ids=["relu", "maxpool"])
def test_gradcheck_reports_kinks_as_kinks(layer):
    # Exact zeros (ReLU) and exact ties (max-pool): every entry sits on a kink.
    x = np.zeros((1, 2, 4, 4))
    x[0, 0, :2, :2] = 1.0                           # one window with a four-way tie at 1
    report = gradcheck(layer, x)
    assert report.kinks["input"] > 0
    assert report["input"] < TOL, report           # the remaining entries agree
    assert "at kinks" in repr(report)


def test_gradcheck_refuses_float32_before_running_forward(rng):
    from minivgg import VGG8
    with pytest.raises(ValueError, match=r"float64 weights.*VGG8\(\.\.\., dtype=np.float64\)"):
        gradcheck(VGG8(channels=(2, 2, 2, 2, 2, 2, 2, 2), hidden=4, image_size=32), rng.standard_normal((1, 3, 32, 32)))
    with pytest.raises(ValueError, match="float64 weights"):
        gradcheck(layers.Conv3x3(2, 3, rng), rng.standard_normal((1, 2, 5, 5)))


def test_dropout_training_backward(rng):
    x = rng.standard_normal((4, 10))
    mask = dropout.dropout_mask(x.shape, 0.3, rng, np.float64)
    check_function(lambda: dropout.dropout_forward(x, mask), lambda d: dropout.dropout_backward(d, mask), x, rng)


def test_fast_kernels_backward(rng):
    x = rng.standard_normal((2, 3, 4, 6))
    out = activation.relu_forward(x)
    check_function(lambda: activation.relu_forward(x), lambda d: activation.relu_backward(d, out), x, rng)
    check_function(lambda: pool.maxpool2x2_forward(x), lambda d: pool.maxpool2x2_backward(d, x), x, rng)
    xd, w, b = rng.standard_normal((3, 5)), rng.standard_normal((2, 5)), rng.standard_normal(2)
    check_function(lambda: dense.dense_forward(xd, w, b), lambda d: dense.dense_backward(d, xd, w)[0], xd, rng)


@pytest.mark.parametrize("weight", [None, np.array([0.3, 2.0, 1.0])])
def test_softmax_cross_entropy_gradient(rng, weight):
    logits = rng.standard_normal((5, 3))
    y = np.array([0, 2, 1, 1, 0])
    _, dlogits = softmax_cross_entropy(logits, y, weight)
    numeric = numerical_gradient(lambda: np.array(softmax_cross_entropy(logits, y, weight)[0]), logits, np.array(1.0))
    assert rel_error(dlogits, numeric) < TOL


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss, d = softmax_cross_entropy(np.array([[1000.0, -1000.0], [0.0, 1e4]]), np.array([0, 0]))
    assert np.isfinite(loss) and np.isfinite(d).all()
    assert loss == pytest.approx(1e4 / 2)


def test_whole_vgg8_backward(tiny64, rng):
    report = gradcheck(tiny64, rng.standard_normal((2, 3, 32, 32)), max_entries=150)
    assert set(report) == {"input", *tiny64.parameters()}
    assert max(report.values()) < TOL, report
