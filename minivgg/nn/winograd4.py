"""Winograd's F(4x4, 3x3): a 4x4 output tile from a 6x6 input patch, with 4 times fewer multiplications.

The same algorithm as :mod:`minivgg.nn.winograd` (read that first), with larger tiles
(Lavin & Gray 2016, section 4.2). In one dimension, four outputs of a 3-tap correlation
take 12 multiplications written out, and 6 as::

    y = A^T [ (G g) * (B^T d) ]            (d: 6 inputs, g: 3 taps, y: 4 outputs)

    B^T = [[4,  0, -5,  0, 1, 0],     G = [[ 1/4,     0,    0],     A^T = [[1, 1,  1, 1,  1, 0],
           [0, -4, -4,  1, 1, 0],          [-1/6, -1/6, -1/6],            [0, 1, -1, 2, -2, 0],
           [0,  4, -4, -1, 1, 0],          [-1/6,  1/6, -1/6],            [0, 1,  1, 4,  4, 0],
           [0, -2, -1,  2, 1, 0],          [1/24, 1/12,  1/6],            [0, 1, -1, 8, -8, 1]]
           [0,  2, -1, -2, 1, 0],          [1/24, -1/12, 1/6],
           [0,  4,  0, -5, 0, 1]]          [   0,    0,    1]]

(the polynomial points 0, 1, -1, 2, -2 and infinity). In two dimensions a 4x4 tile costs
6 x 6 = 36 multiplications instead of 16 x 9 = 144: per output 2.25, against 4 for F(2x2, 3x3)
and 9 for the direct sum. Over channels they become 36 matrix products per layer.

The price is accuracy: the transforms multiply by up to 8 and divide by 24, so float32
round-off grows by about an order of magnitude over F(2x2, 3x3) (measured for every layer
shape of the paper's model, against the float64 naive twin: ``tests/test_kernels.py``),
and the tiles are larger, so a map whose side is not a multiple of 4 wastes more padding
(14x14 is computed as 16x16). :mod:`minivgg.nn.conv` picks F(4x4, 3x3) only where it
measured faster.

``dW`` is F(3x3, 4x4): ``dW = G^T [ sum over tiles of (A g A^T) * (B^T d B) ] G`` with
``g`` the 4x4 tile of ``dout`` and ``d`` the 6x6 input patch under it.

Every kernel here applies a one-dimensional transform to the rows of a tile, then to the
columns of the result; the five 1-D transforms are the small functions at the top. The
loops have the shape of :mod:`minivgg.nn.winograd`'s kernels, written out again rather
than shared through a function argument, so that numba compiles each transform inline
into its loop (the loops are bound by memory traffic, and a call per value would not be).
The tiling, the work items and the matrix products are shared: :func:`winograd._convolve`
and :func:`winograd.conv3x3_weight_grad` run either scheme.
"""

import numba
import numpy as np

from minivgg.nn import activation
from minivgg.nn.winograd import Scheme

B_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
               dtype=np.float64)

# ---------------------------------------------------------------- the 1-D transforms


# Each takes its constants in the precision of its inputs, ``f(4)`` with ``f = type(d0)``:
# a bare ``4 * d0`` would compute a float32 array's values in float64 (numba follows NumPy's
# promotion of int64 with float32), at half the vector width and with conversions both ways.


@numba.njit(cache=True, nogil=True, inline="always")
def _bt(d0, d1, d2, d3, d4, d5):
    """B^T d: six inputs -> six transformed values."""
    f = type(d0)
    return (f(4) * (d0 - d2) + (d4 - d2),
            (d3 + d4) - f(4) * (d1 + d2),
            (d4 - d3) + f(4) * (d1 - d2),
            (d4 - d2) + f(2) * (d3 - d1),
            (d4 - d2) - f(2) * (d3 - d1),
            f(4) * (d1 - d3) + (d5 - d3))


@numba.njit(cache=True, nogil=True, inline="always")
def _at(m0, m1, m2, m3, m4, m5):
    """A^T m: six products -> four outputs."""
    f = type(m0)
    s12, d12, s34, d34 = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + s12 + s34, d12 + f(2) * d34, s12 + f(4) * s34, d12 + f(8) * d34 + m5


@numba.njit(cache=True, nogil=True, inline="always")
def _g(g0, g1, g2):
    """G g: three taps -> six transformed taps."""
    f = type(g0)
    s, t = g0 + g2, f(1 / 24) * g0 + f(1 / 6) * g2
    return f(1 / 4) * g0, f(-1 / 6) * (s + g1), f(-1 / 6) * (s - g1), t + f(1 / 12) * g1, t - f(1 / 12) * g1, g2


@numba.njit(cache=True, nogil=True, inline="always")
def _a(g0, g1, g2, g3):
    """A g (A = (A^T)^T): four values of ``dout`` -> six (the dW transform of ``dout``)."""
    f = type(g0)
    s02, s13, e02, e13 = g0 + g2, g1 + g3, g0 + f(4) * g2, f(2) * g1 + f(8) * g3
    return g0, s02 + s13, s02 - s13, e02 + e13, e02 - e13, g3


@numba.njit(cache=True, nogil=True, inline="always")
def _gt(m0, m1, m2, m3, m4, m5):
    """G^T m: six sums -> three taps of dW."""
    f = type(m0)
    s12, s34 = m1 + m2, m3 + m4
    return (f(1 / 4) * m0 - f(1 / 6) * s12 + f(1 / 24) * s34, f(1 / 6) * (m2 - m1) + f(1 / 12) * (m3 - m4),
            f(1 / 6) * (s34 - s12) + m5)


# ---------------------------------------------------------------- the 2-D kernels


@numba.njit(cache=True, nogil=True)
def input_transform(x, v, ty0, ty1):
    """``v[6a + b, c, col] = (B^T d B)[a, b]`` for the 6x6 patch ``d`` under each tile of tile rows ty0..ty1-1.

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W), H and W multiples of 4
    v : ndarray, shape (36, C, n * (ty1 - ty0) * W/4); overwritten. Tile (image i, row ty,
        column tx) is column ``(i * (ty1 - ty0) + ty - ty0) * W/4 + tx``.

    Tile row ``ty`` reads input rows ``4ty - 1 .. 4ty + 4`` (padding 1): ``B^T d`` for a
    whole row of tiles at once into ``rows`` (with a zero column each side), then
    ``(B^T d) B`` tile by tile.
    """
    n_img, C, H, W = x.shape
    tw = W // 4
    zero = np.zeros(W, dtype=x.dtype)
    rows = np.zeros((6, W + 2), dtype=x.dtype)           # columns 0 and W+1 stay zero (padding)
    for n in range(n_img):
        for c in range(C):
            for ty in range(ty0, ty1):
                top = 4 * ty - 1
                d0 = x[n, c, top] if top >= 0 else zero
                d1, d2, d3, d4 = x[n, c, top + 1], x[n, c, top + 2], x[n, c, top + 3], x[n, c, top + 4]
                d5 = x[n, c, top + 5] if top + 5 < H else zero
                for j in range(W):
                    rows[0, j + 1], rows[1, j + 1], rows[2, j + 1], rows[3, j + 1], rows[4, j + 1], \
                        rows[5, j + 1] = _bt(d0[j], d1[j], d2[j], d3[j], d4[j], d5[j])
                base = (n * (ty1 - ty0) + ty - ty0) * tw
                for a in range(6):
                    r = rows[a]
                    for q in range(tw):
                        j = 4 * q
                        v[6 * a, c, base + q], v[6 * a + 1, c, base + q], v[6 * a + 2, c, base + q], \
                            v[6 * a + 3, c, base + q], v[6 * a + 4, c, base + q], v[6 * a + 5, c, base + q] = \
                            _bt(r[j], r[j + 1], r[j + 2], r[j + 3], r[j + 4], r[j + 5])


# The output transforms go through a run of tiles at once, a step of A^T m A at a time, over
# consecutive columns of ``m``: so the loops run on vector registers. Tile by tile, the 36 values of
# a tile come from 36 planes, one by one, and every step is scalar: measured on a 2-core AVX-512
# Xeon, 1.1-1.7x slower (bundled model's and paper model's shapes; benchmarks/bench_kernels.py).


@numba.njit(cache=True, nogil=True, inline="always")
def _at_columns(m, k, c0, t, n_tiles):
    """``t[p, j, i] = (A^T m)[p, j]`` of the tile in column ``c0 + i`` of ``m`` (36, K, cols), channel ``k``,
    for ``i < n_tiles``: the first half of ``A^T m A``, column ``j`` of ``A^T m`` after column ``j``.

    ``t``: (4, 6, >= n_tiles), overwritten.
    """
    for j in range(6):
        m0, m1, m2, m3, m4, m5 = m[j, k], m[6 + j, k], m[12 + j, k], m[18 + j, k], m[24 + j, k], m[30 + j, k]
        for i in range(n_tiles):
            c = c0 + i
            t[0, j, i], t[1, j, i], t[2, j, i], t[3, j, i] = _at(m0[c], m1[c], m2[c], m3[c], m4[c], m5[c])


@numba.njit(cache=True, nogil=True, inline="always")
def _tile_row_outputs(t, p, bias, relu, y, n_tiles):
    """``y[q, i] = (A^T m A)[p, q] + bias`` (then max(., 0) when ``relu``) of tile ``i < n_tiles``, from ``t``
    (4, 6, >= n_tiles) of :func:`_at_columns`: row ``p`` of every tile's output. ``y``: (4, >= n_tiles)."""
    tp = t[p]
    y0, y1, y2, y3 = y[0], y[1], y[2], y[3]
    for i in range(n_tiles):
        a0, a1, a2, a3 = _at(tp[0, i], tp[1, i], tp[2, i], tp[3, i], tp[4, i], tp[5, i])
        y0[i] = activation.relu_if(a0 + bias, relu)
        y1[i] = activation.relu_if(a1 + bias, relu)
        y2[i] = activation.relu_if(a2 + bias, relu)
        y3[i] = activation.relu_if(a3 + bias, relu)


TILES_PER_RUN = 128      # output_transform's runs: their t and y (40 values a tile, 20 kB in float32) stay in L1


@numba.njit(cache=True, nogil=True)
def output_transform(m, b, out, ty0, ty1, relu):
    """``out[n, k, 4ty + p, 4tx + q] = (A^T m A)[p, q] + b[k]`` (then max(., 0) when ``relu``) for tile rows ty0..ty1-1.

    Parameters
    ----------
    m : ndarray, shape (36, K, n * (ty1 - ty0) * W/4), columns as in input_transform
    b : ndarray, shape (K,)
    out : ndarray, shape (n, K, H, W); rows 4*ty0 .. 4*ty1-1 are written

    Channel by channel, the tiles go in runs of :data:`TILES_PER_RUN` consecutive columns
    (which may span images); each run's outputs are then copied to their rows of ``out``,
    a stretch of one tile row at a time.
    """
    n_img, K, H, W = out.shape
    tw = W // 4
    per_image = (ty1 - ty0) * tw
    cols = n_img * per_image
    t = np.empty((4, 6, TILES_PER_RUN), dtype=m.dtype)
    y = np.empty((4, 4, TILES_PER_RUN), dtype=out.dtype)   # y[p, q, i]: output (p, q) of the run's tile i
    for k in range(K):
        for c0 in range(0, cols, TILES_PER_RUN):
            n_tiles = min(TILES_PER_RUN, cols - c0)
            _at_columns(m, k, c0, t, n_tiles)
            for p in range(4):
                _tile_row_outputs(t, p, b[k], relu, y[p], n_tiles)
            col = c0
            while col < c0 + n_tiles:                       # a stretch of the run in one tile row
                n, within = col // per_image, col % per_image
                ty, tx0 = ty0 + within // tw, within % tw
                stretch = min(tw - tx0, c0 + n_tiles - col)
                for p in range(4):
                    row = out[n, k, 4 * ty + p]
                    q0, q1, q2, q3 = y[p, 0], y[p, 1], y[p, 2], y[p, 3]
                    for s in range(stretch):
                        i, j = col - c0 + s, 4 * (tx0 + s)
                        row[j], row[j + 1], row[j + 2], row[j + 3] = q0[i], q1[i], q2[i], q3[i]
                col += stretch


@numba.njit(cache=True, nogil=True)
def pooled_output_transform(m, b, out, ty0, ty1, relu):
    """:func:`output_transform` followed by the 2x2 max-pool: each 4x4 tile gives 2x2 values of ``out``
    (n, K, H/2, W/2), rows 2*ty0 .. 2*ty1-1 (see :func:`minivgg.nn.winograd.pooled_output_transform`).

    Image by image and channel by channel, all the image's tiles at once (their columns of
    ``m`` are consecutive; a work item holds at most about 455 of them, 73 kB of ``t`` and ``y``).
    Runs of :data:`TILES_PER_RUN` as in :func:`output_transform`, whose stretches then need pooling
    one by one, measured slower on most of the shapes tried.
    """
    n_img, K, _, W2 = out.shape
    tw = W2 // 2
    per_image = (ty1 - ty0) * tw
    t = np.empty((4, 6, per_image), dtype=m.dtype)
    y = np.empty((4, 4, per_image), dtype=out.dtype)       # y[p, q, i]: output (p, q) of tile i, after the ReLU
    for n in range(n_img):
        for k in range(K):
            _at_columns(m, k, n * per_image, t, per_image)
            for p in range(4):
                _tile_row_outputs(t, p, b[k], relu, y[p], per_image)
            for ty in range(ty0, ty1):
                first = (ty - ty0) * tw
                for h in range(2):                   # as minivgg.nn.pool: the top pair, the bottom pair, then both
                    row, top, bottom = out[n, k, 2 * ty + h], y[2 * h], y[2 * h + 1]
                    for tx in range(tw):
                        i = first + tx
                        row[2 * tx] = max(max(top[0, i], top[1, i]), max(bottom[0, i], bottom[1, i]))
                        row[2 * tx + 1] = max(max(top[2, i], top[3, i]), max(bottom[2, i], bottom[3, i]))


@numba.njit(cache=True, nogil=True)
def gradient_transform(dout, u, ty0, ty1):
    """``u[6a + b, k, col] = (A g A^T)[a, b]`` for each 4x4 tile ``g`` of ``dout`` in tile rows ty0..ty1-1 (for dW).

    Parameters
    ----------
    dout : ndarray, shape (n, K, H, W), H and W multiples of 4
    u : ndarray, shape (36, K, n * (ty1 - ty0) * W/4), overwritten (columns as in input_transform)
    """
    n_img, K, H, W = dout.shape
    tw = W // 4
    h = np.empty((6, 4), dtype=dout.dtype)              # A g of one tile
    for n in range(n_img):
        for k in range(K):
            for ty in range(ty0, ty1):
                base = (n * (ty1 - ty0) + ty - ty0) * tw
                g0, g1, g2, g3 = dout[n, k, 4 * ty], dout[n, k, 4 * ty + 1], dout[n, k, 4 * ty + 2], \
                    dout[n, k, 4 * ty + 3]
                for tx in range(tw):
                    col = base + tx
                    for j in range(4):                   # A g, column by column
                        i = 4 * tx + j
                        h[0, j], h[1, j], h[2, j], h[3, j], h[4, j], h[5, j] = _a(g0[i], g1[i], g2[i], g3[i])
                    for a in range(6):                   # (A g) A^T, row by row
                        u[6 * a, k, col], u[6 * a + 1, k, col], u[6 * a + 2, k, col], u[6 * a + 3, k, col], \
                            u[6 * a + 4, k, col], u[6 * a + 5, k, col] = _a(h[a, 0], h[a, 1], h[a, 2], h[a, 3])


@numba.njit(cache=True, nogil=True)
def filter_rows(w, u, k0, k1):
    """``u[6a + b, k, c] = (G g G^T)[a, b]`` with ``g = w[k, c]`` (3x3), for k in k0..k1-1 and every c.

    ``w`` (K, C, 3, 3) and ``u`` (36, K, C) may be strided views.
    """
    for k in range(k0, k1):
        for c in range(w.shape[1]):
            # G g, column by column: the six rows of the 6x3 product, as its three columns.
            col0 = _g(w[k, c, 0, 0], w[k, c, 1, 0], w[k, c, 2, 0])
            col1 = _g(w[k, c, 0, 1], w[k, c, 1, 1], w[k, c, 2, 1])
            col2 = _g(w[k, c, 0, 2], w[k, c, 1, 2], w[k, c, 2, 2])
            for a in range(6):                            # (G g) G^T, row by row
                u[6 * a, k, c], u[6 * a + 1, k, c], u[6 * a + 2, k, c], u[6 * a + 3, k, c], u[6 * a + 4, k, c], \
                    u[6 * a + 5, k, c] = _g(col0[a], col1[a], col2[a])


@numba.njit(cache=True, nogil=True)
def weight_output_transform(m, dw):
    """``dw[p, 3i + j] = (G^T m_p G)[i, j]`` where ``m_p[a, b] = m[6a + b, p]``: F(3x3, 4x4)'s last step."""
    t = np.empty((3, 6), dtype=dw.dtype)                # G^T m_p
    for p in range(m.shape[1]):
        for j in range(6):
            t[0, j], t[1, j], t[2, j] = _gt(m[j, p], m[6 + j, p], m[12 + j, p], m[18 + j, p], m[24 + j, p],
                                            m[30 + j, p])
        for i in range(3):
            dw[p, 3 * i], dw[p, 3 * i + 1], dw[p, 3 * i + 2] = _gt(t[i, 0], t[i, 1], t[i, 2], t[i, 3], t[i, 4],
                                                                   t[i, 5])


F4 = Scheme("F(4x4,3x3)", 4, input_transform, output_transform, pooled_output_transform, gradient_transform,
            filter_rows, weight_output_transform)
