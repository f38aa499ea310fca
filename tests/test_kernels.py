"""Each fast (numba + BLAS) kernel agrees with its naive NumPy twin."""

import numpy as np
import pytest

from minivgg import activation, conv, dense, pool

SHAPES = [(1, 1, 2, 2), (2, 3, 6, 8), (3, 5, 10, 4), (2, 16, 14, 14)]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("shape", SHAPES)
def test_conv3x3_fast_matches_naive(rng, shape, dtype, tol):
    N, C, H, W = shape
    K = 7
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((K, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    out = conv.conv3x3_forward(x, w, b)
    ref = conv.conv3x3_forward_naive(x, w, b)
    assert out.dtype == dtype and out.shape == (N, K, H, W)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * 10)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for fast, naive in zip(conv.conv3x3_backward(dout, x, w), conv.conv3x3_backward_naive(dout, x, w)):
        assert fast.dtype == dtype
        np.testing.assert_allclose(fast, naive, rtol=tol, atol=tol * 10 * np.sqrt(N * H * W))


def test_conv3x3_backward_can_skip_input_grad(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 5, 5))
    dx, dw, db = conv.conv3x3_backward(dout, x, w, need_dx=False)
    assert dx is None
    _, dw_ref, db_ref = conv.conv3x3_backward_naive(dout, x, w)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db_ref, rtol=1e-12, atol=1e-12)


def test_im2col_layout_matches_weight_reshape(rng):
    x = rng.standard_normal((2, 4, 5))
    cols = np.empty((18, 20))
    conv.im2col3x3(x, cols)
    xpad = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    for c in range(2):
        for dy in range(3):
            for dx in range(3):
                np.testing.assert_array_equal(cols[c * 9 + dy * 3 + dx].reshape(4, 5), xpad[c, dy:dy + 4, dx:dx + 5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_fast_matches_naive_including_ties(rng, dtype):
    # Rounded values make many ties, and a ReLU-like floor makes all-zero windows.
    x = np.maximum(np.round(rng.standard_normal((3, 4, 8, 6)) * 2), 0).astype(dtype)
    out = pool.maxpool2x2_forward(x)
    np.testing.assert_array_equal(out, pool.maxpool2x2_forward_naive(x))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = pool.maxpool2x2_backward(dout, x)
    np.testing.assert_array_equal(dx, pool.maxpool2x2_backward_naive(dout, x))
    # Each window passes its gradient to exactly one element: its first maximum.
    np.testing.assert_allclose(dx.reshape(3, 4, 4, 2, 3, 2).sum(axis=(3, 5)), dout)
    assert dx[0, 0, 0, 0] == (dout[0, 0, 0, 0] if x[0, 0, 0, 0] == out[0, 0, 0, 0] else 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_fast_matches_naive(rng, dtype):
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)
    x[0, 0, 0, :3] = 0
    out = activation.relu_forward(x)
    np.testing.assert_array_equal(out, activation.relu_forward_naive(x))
    dout = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(activation.relu_backward(dout, out), activation.relu_backward_naive(dout, out))
    assert activation.relu_backward(dout, out)[0, 0, 0, 0] == 0     # derivative at 0 is 0


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_dense_fast_matches_naive(rng, dtype, tol):
    x = rng.standard_normal((5, 37)).astype(dtype)
    w = rng.standard_normal((11, 37)).astype(dtype)
    b = rng.standard_normal(11).astype(dtype)
    np.testing.assert_allclose(dense.dense_forward(x, w, b), dense.dense_forward_naive(x, w, b), rtol=tol, atol=tol)
    dout = rng.standard_normal((5, 11)).astype(dtype)
    for fast, naive in zip(dense.dense_backward(dout, x, w), dense.dense_backward_naive(dout, x, w)):
        np.testing.assert_allclose(fast, naive, rtol=tol, atol=tol * 10)
