"""Every backward pass against centred finite differences in float64 (relative error < 1e-6)."""

import numpy as np
import pytest

from minivgg import activation, conv, dense, dropout, gradcheck, layers, numerical_gradient, pool, rel_error
from minivgg.loss import softmax_cross_entropy

TOL = 1e-6


def check_function(f, backward, x, rng):
    """Check ``backward(dout)`` == d sum(f(x) * dout) / dx."""
    dout = rng.standard_normal(f().shape)
    assert rel_error(backward(dout), numerical_gradient(f, x, dout)) < TOL


def test_conv3x3_naive_backward(rng):
    x, w, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    check_function(lambda: conv.conv3x3_forward_naive(x, w, b), lambda d: conv.conv3x3_backward_naive(d, x, w)[0], x, rng)
    check_function(lambda: conv.conv3x3_forward_naive(x, w, b), lambda d: conv.conv3x3_backward_naive(d, x, w)[1], w, rng)
    check_function(lambda: conv.conv3x3_forward_naive(x, w, b), lambda d: conv.conv3x3_backward_naive(d, x, w)[2], b, rng)


@pytest.mark.parametrize("make", [
    lambda r: layers.Conv3x3(3, 4, r, np.float64),
    lambda r: layers.Dense(7, 5, r, np.float64),
    lambda r: layers.ReLU(),
    lambda r: layers.MaxPool2x2(),
    lambda r: layers.Flatten(),
    lambda r: layers.Dropout(0.5, r),          # inference mode: the identity
], ids=["conv3x3", "dense", "relu", "maxpool", "flatten", "dropout-eval"])
def test_layer_backward(rng, make):
    layer = make(rng)
    shape = (3, 7) if isinstance(layer, layers.Dense) else (2, 3, 6, 4)
    report = gradcheck(layer, rng.standard_normal(shape))
    assert set(report) == {"input", *layer.parameters()}
    assert max(report.values()) < TOL, report


def test_gradcheck_catches_a_wrong_backward(rng):
    layer = layers.Dense(4, 3, rng, np.float64)
    right = layer.backward
    layer.backward = lambda dout: 1.01 * right(dout)
    assert gradcheck(layer, rng.standard_normal((2, 4)))["input"] > 1e-3


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
