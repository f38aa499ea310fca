"""Each fast (numba + BLAS) kernel agrees with its naive NumPy twin."""

import numpy as np
import pytest

from minivgg.nn import activation, conv, dense, pool
from minivgg.nn.pool import maxpool2x2_forward

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
    conv.im2col3x3(x, cols, 0, 4)
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


@pytest.mark.parametrize("batch", [1, 5])                  # one image: dw is an outer product (its own code)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_dense_fast_matches_naive(rng, dtype, tol, batch):
    x = rng.standard_normal((batch, 37)).astype(dtype)
    w = rng.standard_normal((11, 37)).astype(dtype)
    b = rng.standard_normal(11).astype(dtype)
    np.testing.assert_allclose(dense.dense_forward(x, w, b), dense.dense_forward_naive(x, w, b), rtol=tol, atol=tol)
    dout = rng.standard_normal((batch, 11)).astype(dtype)
    for fast, naive in zip(dense.dense_backward(dout, x, w), dense.dense_backward_naive(dout, x, w)):
        np.testing.assert_allclose(fast, naive, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (2, 3, 6, 8), (3, 9, 5, 7), (2, 16, 14, 14), (1, 2, 1, 1),
                                   (5, 4, 9, 12)])
def test_every_fast_convolution_matches_naive(rng, shape, dtype, tol, threads, restore_threads):
    """The fast formulations, called directly (whatever the dispatch picks), odd sizes included:
    Winograd F(2x2, 3x3) and F(4x4, 3x3) (sides not a multiple of the tile are padded), im2col,
    and the direct loop (forward only).

    1-3 threads: batches with fewer images than threads share the work by output
    channels, the others by images (see winograd.conv3x3_weight_grad); both are checked.
    """
    from minivgg.nn import threads as pool
    from minivgg.nn import winograd
    from minivgg.nn.winograd4 import F4
    pool.set_threads(threads)
    N, C, H, W = shape
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((5, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    ref = conv.conv3x3_forward_naive(x, w, b)
    dout = rng.standard_normal(ref.shape).astype(dtype)
    _, dw_ref, _ = conv.conv3x3_backward_naive(dout, x, w)
    scale = np.abs(ref).max()
    # F(4x4, 3x3) rounds more (see test_winograd_f4_error_on_every_layer_of_the_paper_model).
    f4_tol = tol * 10
    forwards = [(winograd.conv3x3_forward(x, w, b), tol), (winograd.conv3x3_forward(x, w, b, scheme=F4), f4_tol),
                (conv.conv3x3_forward_im2col(x, w, b), tol), (conv.conv3x3_forward_direct(x, w, b), tol)]
    for out, t in forwards:
        assert out.dtype == dtype and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=t, atol=t * scale)
    relu = conv.conv3x3_forward_direct(x, w, b, relu=True)
    np.testing.assert_allclose(relu, np.maximum(ref, 0), rtol=tol, atol=tol * scale)
    if H % 2 == 0 and W % 2 == 0:
        # The first layer's convolution, ReLU and pool in one pass: bit for bit the three in turn.
        xn = x.copy()
        xn[0, 0, 0, :2] = np.nan                  # a NaN goes through the ReLU as 0, fused or not
        unfused = maxpool2x2_forward(conv.conv3x3_forward_direct(xn, w, b, relu=True))
        np.testing.assert_array_equal(conv.conv3x3_forward_direct(xn, w, b, relu=True, pool=True), unfused)
        np.testing.assert_array_equal(conv.conv3x3_forward(xn, w, b, relu=True, pool=True),
                                      maxpool2x2_forward(conv.conv3x3_forward(xn, w, b, relu=True)))
        # Winograd pools in its output transform, padded tiles included: bit for bit as well.
        for scheme in (winograd.F2, F4):
            np.testing.assert_array_equal(
                winograd.conv3x3_forward(xn, w, b, relu=True, scheme=scheme, pool=True),
                maxpool2x2_forward(winograd.conv3x3_forward(xn, w, b, relu=True, scheme=scheme)))
    else:
        with pytest.raises(ValueError, match="even height and width"):
            conv.conv3x3_forward(x, w, b, relu=True, pool=True)
    with pytest.raises(ValueError, match="needs relu=True"):      # the fused pool follows the ReLU
        conv.conv3x3_forward_direct(x, w, b, relu=False, pool=True)
    with pytest.raises(ValueError, match="needs relu=True"):
        winograd.conv3x3_forward(x, w, b, relu=False, pool=True)
    for dw, t in ((winograd.conv3x3_weight_grad(dout, x), tol), (winograd.conv3x3_weight_grad(dout, x, F4), f4_tol),
                  (conv.conv3x3_weight_grad_im2col(dout, x), tol)):
        assert dw.dtype == dtype
        np.testing.assert_allclose(dw, dw_ref, rtol=t, atol=t * np.abs(dw_ref).max())
    dx_ref, _, _ = conv.conv3x3_backward_naive(dout, x, w)
    for dx, t in ((winograd.conv3x3_input_grad(dout, w), tol), (winograd.conv3x3_input_grad(dout, w, F4), f4_tol),
                  (conv.conv3x3_input_grad_im2col(dout, w), tol)):
        assert dx.dtype == dtype and dx.shape == x.shape
        np.testing.assert_allclose(dx, dx_ref, rtol=t, atol=t * np.abs(dx_ref).max())


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 16, 12, 12), (3, 9, 7, 10), (1, 24, 6, 6), (2, 5, 9, 9)])
def test_winograd_shared_by_planes_matches_naive(rng, shape, threads, restore_threads, monkeypatch):
    """Winograd shared among threads by planes of the kernel transform (one image's deep layers) computes
    what the naive twin does, for both schemes, odd sides padded, batches of several images included;
    and the rule takes it where the kernels outweigh the tiles, the tiles' sharing elsewhere."""
    from minivgg.nn import threads as pool
    from minivgg.nn import winograd
    from minivgg.nn.winograd4 import F4
    pool.set_threads(threads)
    N, C, H, W = shape
    x = rng.standard_normal(shape)
    w = rng.standard_normal((7, C, 3, 3))
    b = rng.standard_normal(7)
    ref = conv.conv3x3_forward_naive(x, w, b)
    for scheme in (winograd.F2, F4):
        xe = winograd._tiled(x, scheme.m)
        out = np.empty((N, 7, *xe.shape[2:]))
        u = winograd.filter_transform(w, scheme=scheme)
        winograd._convolve_by_planes(xe, u, b, True, scheme, False, out)
        np.testing.assert_allclose(out[:, :, :H, :W], np.maximum(ref, 0), rtol=1e-10, atol=1e-10 * np.abs(ref).max())
        if H % 2 == 0 and W % 2 == 0:                   # the max-pool in the output transform
            pooled = np.empty((N, 7, xe.shape[2] // 2, xe.shape[3] // 2))
            winograd._convolve_by_planes(xe, u, b, True, scheme, True, pooled)
            np.testing.assert_array_equal(pooled[:, :, :H // 2, :W // 2], maxpool2x2_forward(out[:, :, :H, :W]))
    taken = []
    by_planes = winograd._convolve_by_planes
    monkeypatch.setattr(winograd, "_convolve_by_planes", lambda *a: taken.append(1) or by_planes(*a))
    winograd.conv3x3_forward(np.ones((1, 64, 8, 8)), np.ones((64, 64, 3, 3)), np.zeros(64))      # 16 tiles
    winograd.conv3x3_forward(np.ones((8, 8, 16, 16)), np.ones((8, 8, 3, 3)), np.zeros(8))        # 512 tiles
    assert taken == [1]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_winograd_filter_transform_is_g_w_gt(rng, threads, restore_threads):
    from minivgg.nn import threads as pool
    from minivgg.nn import winograd, winograd4
    pool.set_threads(threads)
    w = rng.standard_normal((3, 4, 3, 3))
    for scheme, G in ((winograd.F2, winograd.G), (winograd4.F4, winograd4.G)):
        a = scheme.m + 2
        u, u_flipped = winograd.filter_transform(w, scheme=scheme), winograd.filter_transform(w, True, scheme)
        assert u.shape == (a * a, 3, 4) and u_flipped.shape == (a * a, 4, 3)
        for k in range(3):
            for c in range(4):
                np.testing.assert_allclose(u[:, k, c].reshape(a, a), G @ w[k, c] @ G.T, atol=1e-14)
                rotated = w[k, c, ::-1, ::-1]                      # the kernel of dx: rotated, channels swapped
                np.testing.assert_allclose(u_flipped[:, c, k].reshape(a, a), G @ rotated @ G.T, atol=1e-14)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("relu", [True, False])
def test_winograd_output_transforms_are_a_t_m_a_tile_by_tile(rng, relu, dtype, tol):
    """Both schemes' output transforms on a band of tile rows (ty0 > 0) of three images, 252 tiles in all
    (F(4x4): runs of TILES_PER_RUN that cross rows and images): ``A^T m A + b`` of each tile, as NumPy
    computes it, written where the tile lies and nowhere else; pooled, bit for bit the pool of that."""
    from minivgg.nn import winograd, winograd4
    n, K, tw, ty0, ty1 = 3, 5, 12, 2, 9
    # Otherwise the runs would not cross a tile row or an image, and this would not test them.
    assert n * (ty1 - ty0) * tw > winograd4.TILES_PER_RUN and winograd4.TILES_PER_RUN % tw
    for scheme, A_T in ((winograd.F2, winograd.A_T), (winograd4.F4, winograd4.A_T)):
        s, side, per_image = scheme.m, scheme.m * tw, (ty1 - ty0) * tw
        m = rng.standard_normal((scheme.planes, K, n * per_image)).astype(dtype)
        b = rng.standard_normal(K).astype(dtype)
        out = np.full((n, K, side, side), np.nan, dtype=dtype)
        scheme.output_transform(m, b, out, ty0, ty1, relu)
        expected = np.full(out.shape, np.nan)
        for i in range(n):
            for ty in range(ty0, ty1):
                for tx in range(tw):
                    tile = m[:, :, i * per_image + (ty - ty0) * tw + tx].T.reshape(K, s + 2, s + 2)
                    y = A_T @ tile @ A_T.T + b[:, None, None]
                    expected[i, :, s * ty:s * ty + s, s * tx:s * tx + s] = np.maximum(y, 0) if relu else y
        np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * np.nanmax(np.abs(expected)))  # NaN: untouched
        if relu:
            pooled = np.full((n, K, side // 2, side // 2), np.nan, dtype=dtype)
            scheme.pooled_output_transform(m, b, pooled, ty0, ty1, relu)
            np.testing.assert_array_equal(pooled, maxpool2x2_forward(out))


def test_winograd_f4_matrices_compute_four_outputs_of_a_three_tap_correlation(rng):
    """Lavin & Gray's F(4, 3) in one dimension: A^T [(G g) * (B^T d)] = the direct sums, on random data."""
    from minivgg.nn.winograd4 import A_T, B_T, G
    for _ in range(5):
        d, g = rng.standard_normal(6), rng.standard_normal(3)
        np.testing.assert_allclose(A_T @ ((G @ g) * (B_T @ d)), [g @ d[i:i + 3] for i in range(4)], atol=1e-13)


F4_ERROR_BOUND = 1e-4     # float32, largest |error| / largest |value|, for forward, dx and dW


@pytest.mark.parametrize("layer", [(64, 128, 112), (128, 256, 56), (256, 256, 56), (256, 512, 28), (512, 512, 28),
                                   (512, 512, 14)])
def test_winograd_f4_error_on_every_layer_of_the_paper_model(rng, layer):
    """F(4x4, 3x3) in float32 against the float64 naive twin, on every layer shape of the paper's VGG8 that
    Winograd serves (C -> K channels, side): the error stays below F4_ERROR_BOUND of the output's range
    (measured 5e-6 to 1e-5), and within 50 times F(2x2, 3x3)'s (the price of the larger tile's
    transforms; measured 10-25 times).

    Weights at He initialisation's scale, inputs after a ReLU (non-negative), as in the network.
    """
    from minivgg.nn import winograd
    from minivgg.nn.winograd4 import F4
    C, K, S = layer
    x = np.maximum(rng.standard_normal((1, C, S, S)), 0)
    w = rng.standard_normal((K, C, 3, 3)) * np.sqrt(2 / (9 * C))
    b = np.zeros(K)
    dout = rng.standard_normal((1, K, S, S)) * 1e-3
    ref = conv.conv3x3_forward_naive(x, w, b)
    dx_ref, dw_ref, _ = conv.conv3x3_backward_naive(dout, x, w)
    x32, w32, b32, d32 = (a.astype(np.float32) for a in (x, w, b, dout))

    def errors(scheme):
        got = (winograd.conv3x3_forward(x32, w32, b32, scheme=scheme), winograd.conv3x3_input_grad(d32, w32, scheme),
               winograd.conv3x3_weight_grad(d32, x32, scheme))
        return [np.abs(g - r).max() / np.abs(r).max() for g, r in zip(got, (ref, dx_ref, dw_ref))]
    f4, f2 = errors(F4), errors(winograd.F2)
    assert max(f4) < F4_ERROR_BOUND, f4
    assert all(a < 50 * max(b, 1e-7) for a, b in zip(f4, f2)), (f4, f2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_in_place_matches_naive(rng, dtype):
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)
    expected = activation.relu_forward_naive(x)
    work = x.copy()
    out = activation.relu_forward(work, out=work)
    assert out is work and np.array_equal(out, expected)
    dout = rng.standard_normal(x.shape).astype(dtype)
    expected_dx = activation.relu_backward_naive(dout, out)
    dx = activation.relu_backward(dout, out, dx=dout)
    assert dx is dout and np.array_equal(dx, expected_dx)


def test_in_place_relu_layer_and_watched_outputs(rng):
    from minivgg import VGG8, Tape
    from minivgg.nn import layers
    relu = layers.ReLU(inplace=True)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    out, cache = relu.forward(x)
    assert out is x and (x >= 0).all()
    # A watched conv output keeps its values although the ReLU after it works in place.
    model = VGG8(channels=(2, 2, 2, 2, 2, 2, 2, 2), hidden=4, image_size=32, dtype=np.float64)
    tape = Tape(watch={"features.0", "features.1"})
    model.forward(rng.standard_normal((1, 3, 32, 32)), tape=tape)
    assert (tape.outputs["features.0"] < 0).any() and (tape.outputs["features.1"] >= 0).all()


def test_fast_path_picks_each_algorithm_where_it_measured_fastest():
    """The dispatch rule of conv.algorithm_for (measured by benchmarks/bench_kernels.py)."""
    from minivgg.nn import winograd
    from minivgg.nn.winograd4 import F4
    shape = lambda *s: np.empty(s, dtype=np.float32)                       # noqa: E731
    assert conv.algorithm_for(shape(16, 3, 224, 224)) == "direct"          # the first layer
    assert conv.algorithm_for(shape(1, 512, 14, 14)) == "im2col"           # one small map
    assert conv.algorithm_for(shape(1, 512, 28, 28)) is winograd.F2
    assert conv.algorithm_for(shape(4, 512, 14, 14)) is winograd.F2
    assert conv.algorithm_for(shape(16, 512, 14, 14)) is winograd.F2                      # 14 would pad to 16
    assert conv.algorithm_for(shape(1, 256, 56, 56)) is F4 and conv.algorithm_for(shape(32, 128, 8, 8)) is F4
    # Kernels transformed once (a frozen layer): Winograd on small inputs too, F(4x4) wherever it fits,
    # and only the transform of the scheme taken is kept.
    kept = {side: conv.transform_kernel(shape(8, 16, 3, 3), side) for side in (8, 14)}
    assert set(kept[8].u) == {F4} and set(kept[14].u) == {winograd.F2}
    assert conv.algorithm_for(shape(1, 16, 8, 8), kept[8]) is F4                 # im2col without them
    assert conv.algorithm_for(shape(1, 16, 14, 14), kept[14]) is winograd.F2
    assert conv.algorithm_for(shape(64, 16, 8, 8), kept[8]) is F4
    assert conv.algorithm_for(shape(1, 16, 28, 28), conv.transform_kernel(shape(8, 16, 3, 3), 28)) is F4
    assert conv.transform_kernel(shape(8, 3, 3, 3), 8) is None                  # the direct loop needs none
    # dW: F(4x4, 3x3) from 16 input channels with AVX-512, from 128 without (measured on one of each).
    assert conv.WINOGRAD4_DW_MIN_CHANNELS == (16 if conv.has_avx512() else 128)
    assert conv.weight_grad_algorithm_for(shape(32, 64, 32, 32)) is (F4 if conv.has_avx512() else winograd.F2)
    assert conv.weight_grad_algorithm_for(shape(32, 8, 32, 32)) is winograd.F2            # few channels
    assert conv.weight_grad_algorithm_for(shape(16, 512, 14, 14)) is winograd.F2          # 14 would pad to 16
    assert conv.weight_grad_algorithm_for(shape(16, 256, 56, 56)) is F4
    assert conv.weight_grad_algorithm_for(shape(16, 3, 224, 224)) == "direct"            # dW by im2col
    # The network's fast path agrees with the naive twin whichever algorithm it takes.
    rng = np.random.default_rng(0)
    for s in ((2, 3, 8, 8), (1, 8, 6, 6), (1, 8, 32, 32), (2, 8, 32, 32)):
        x = rng.standard_normal(s).astype(np.float32)
        w = rng.standard_normal((4, s[1], 3, 3)).astype(np.float32)
        b = rng.standard_normal(4).astype(np.float32)
        ref = conv.conv3x3_forward_naive(x, w, b)
        np.testing.assert_allclose(conv.conv3x3_forward(x, w, b), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
