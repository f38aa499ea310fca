"""Winograd's minimal filtering F(2x2, 3x3): the same 3x3 convolution with 2.25 times fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). In one
dimension, two outputs of a 3-tap correlation, ``y_i = sum_j g_j d_{i+j}``, take six
multiplications when written out, but only four when computed as::

    y = A^T [ (G g) * (B^T d) ]            (* elementwise; d: 4 inputs, g: 3 taps, y: 2 outputs)

    B^T = [[1,  0, -1,  0],     G = [[1,    0,   0  ],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]          [0,    0,   1  ]]

Nested in two dimensions, a 2x2 output tile of a 3x3 convolution is ``A^T [(G g G^T) *
(B^T d B)] A`` with ``d`` the 4x4 input patch around the tile: 16 multiplications instead
of 36. Over channels, the elementwise products become matrix products: for each of the
16 positions ``(a, b)`` of the transformed tile,

    M[a, b] = U[a, b] @ V[a, b]      U = G w G^T: (K, C)    V = B^T d B: (C, tiles)    M: (K, tiles)

so a convolution layer is 16 BLAS products of a (K, C) by a (C, tiles) matrix, with
cheap transforms before and after. The three products of a layer all take this form:

* forward: ``out = A^T [U @ V] A``;
* ``dx``: the input gradient of a convolution is the convolution of ``dout`` with the
  kernel rotated by 180 degrees and its channels swapped (see :mod:`minivgg.nn.conv`);
* ``dW``: ``dW[k, c]`` correlates each 4x4 input patch with the 2x2 tile of ``dout`` over
  it, a 3x3 output from a 2-tap filter: Winograd's F(3x3, 2x2), whose matrices are those
  of F(2x2, 3x3) with the roles of ``A`` and ``G`` exchanged::

      dW = G^T [ sum over images and tiles of (A dout_tile A^T) * (B^T d B) ] G

  where the sum is again 16 matrix products, (K, tiles) @ (tiles, C).

Images are processed in work items of about :data:`VALUES_PER_CHUNK` transformed values
per channel (1024 tiles of F(2x2, 3x3), 455 of F(4x4, 3x3)), so the transformed arrays
stay small enough to be read back from the cache. Heights or widths that are not a
multiple of the tile side are padded with zero rows or columns, cropped from the result.
Float32 round-off is a few units in the last place larger than direct summation (tested).
"""

from dataclasses import dataclass

import numba
import numpy as np

from minivgg.nn import activation
from minivgg.nn.threads import get_threads, parallel_for, split

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

VALUES_PER_CHUNK = 16 * 1024      # transformed values per channel in one work item (see _jobs)
PLANE_PAD = 16            # floats between consecutive planes (see _planes)


def _planes(n, rows, cols, dtype):
    """An uninitialised (n, rows, cols) array whose planes are PLANE_PAD elements further apart than needed.

    The transforms read or write all n planes at once, one stream each. With planes a
    power-of-two-ish number of bytes apart (1 MB for a 512x512 filter bank), every stream
    maps to the same cache sets and they evict each other: the padding makes the same
    loops five times faster. Each plane stays C-contiguous, as BLAS needs.
    """
    buf = np.empty((n, rows * cols + PLANE_PAD), dtype=dtype)
    return buf[:, :rows * cols].reshape(n, rows, cols)


@numba.njit(cache=True, nogil=True)
def input_transform(x, v, ty0, ty1):
    """``v[4a + b, c, col] = (B^T d B)[a, b]`` for the 4x4 patch ``d`` under each tile of tile rows ty0..ty1-1.

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W), H and W even
    v : ndarray, shape (16, C, n * (ty1 - ty0) * W/2); overwritten. Tile (image i, row ty,
        column tx) is column ``(i * (ty1 - ty0) + ty - ty0) * W/2 + tx``.
    ty0, ty1 : the tile rows to transform (all: 0, H/2)

    The tile in row ``ty`` reads input rows ``2ty - 1 .. 2ty + 2`` (padding 1). ``B^T d``
    combines those four rows into four, for the whole row of tiles at once (``rows``, with
    a zero column on each side for the padding); ``(B^T d) B`` then combines each tile's
    four columns.
    """
    n_img, C, H, W = x.shape
    tw = W // 2
    zero = np.zeros(W, dtype=x.dtype)
    rows = np.zeros((4, W + 2), dtype=x.dtype)           # columns 0 and W+1 stay zero (padding)
    for n in range(n_img):
        for c in range(C):
            for ty in range(ty0, ty1):
                top = 2 * ty - 1
                d0 = x[n, c, top] if top >= 0 else zero
                d1, d2 = x[n, c, top + 1], x[n, c, top + 2]
                d3 = x[n, c, top + 3] if top + 3 < H else zero
                for j in range(W):                         # B^T d, a whole row of tiles at once
                    rows[0, j + 1] = d0[j] - d2[j]
                    rows[1, j + 1] = d1[j] + d2[j]
                    rows[2, j + 1] = d2[j] - d1[j]
                    rows[3, j + 1] = d1[j] - d3[j]
                base = (n * (ty1 - ty0) + ty - ty0) * tw
                for a in range(4):                         # (B^T d) B, tile by tile
                    r = rows[a]
                    va0, va1, va2, va3 = v[4 * a, c], v[4 * a + 1, c], v[4 * a + 2, c], v[4 * a + 3, c]
                    for q in range(tw):
                        e0, e1, e2, e3 = r[2 * q], r[2 * q + 1], r[2 * q + 2], r[2 * q + 3]
                        va0[base + q] = e0 - e2
                        va1[base + q] = e1 + e2
                        va2[base + q] = e2 - e1
                        va3[base + q] = e1 - e3


@numba.njit(cache=True, nogil=True, inline="always")
def _tile_outputs(m, k, col):
    """``A^T m A`` of one tile (channel ``k``, column ``col`` of ``m`` (16, K, cols)): y00, y01, y10, y11."""
    # A^T m: two rows from four.
    r00 = m[0, k, col] + m[4, k, col] + m[8, k, col]
    r01 = m[1, k, col] + m[5, k, col] + m[9, k, col]
    r02 = m[2, k, col] + m[6, k, col] + m[10, k, col]
    r03 = m[3, k, col] + m[7, k, col] + m[11, k, col]
    r10 = m[4, k, col] - m[8, k, col] - m[12, k, col]
    r11 = m[5, k, col] - m[9, k, col] - m[13, k, col]
    r12 = m[6, k, col] - m[10, k, col] - m[14, k, col]
    r13 = m[7, k, col] - m[11, k, col] - m[15, k, col]
    # (A^T m) A: two columns from four.
    return r00 + r01 + r02, r01 - r02 - r03, r10 + r11 + r12, r11 - r12 - r13


@numba.njit(cache=True, nogil=True)
def output_transform(m, b, out, ty0, ty1, relu):
    """``out[n, k, 2ty + p, 2tx + q] = (A^T m A)[p, q] + b[k]`` for tile rows ty0..ty1-1.

    Columns as in input_transform.

    Parameters
    ----------
    m : ndarray, shape (16, K, n * (ty1 - ty0) * W/2)
    b : ndarray, shape (K,)
    out : ndarray, shape (n, K, H, W); rows 2*ty0 .. 2*ty1-1 are written
    relu : bool
        Write ``max(out, 0)`` instead: the ReLU that follows a convolution, applied in
        this pass over the output rather than in a pass of its own.
    """
    n_img, K, H, W = out.shape
    tw = W // 2
    for n in range(n_img):
        for k in range(K):
            bias = b[k]
            for ty in range(ty0, ty1):
                base = (n * (ty1 - ty0) + ty - ty0) * tw
                for tx in range(tw):
                    y00, y01, y10, y11 = _tile_outputs(m, k, base + tx)
                    out[n, k, 2 * ty, 2 * tx] = activation.relu_if(y00 + bias, relu)
                    out[n, k, 2 * ty, 2 * tx + 1] = activation.relu_if(y01 + bias, relu)
                    out[n, k, 2 * ty + 1, 2 * tx] = activation.relu_if(y10 + bias, relu)
                    out[n, k, 2 * ty + 1, 2 * tx + 1] = activation.relu_if(y11 + bias, relu)


@numba.njit(cache=True, nogil=True)
def pooled_output_transform(m, b, out, ty0, ty1, relu):
    """:func:`output_transform` followed by the 2x2 max-pool: ``out`` (n, K, H/2, W/2) gets one value per
    tile, rows ty0..ty1-1, without the full-size output being written first.

    The pool follows a ReLU (``relu`` True), and takes the maxima in the order of
    :mod:`minivgg.nn.pool` (the top pair, the bottom pair, then both): bit for bit the two in turn.
    A kernel of its own, not a flag of :func:`output_transform`: a branch in that loop made it slower.
    """
    n_img, K, _, tw = out.shape
    for n in range(n_img):
        for k in range(K):
            for ty in range(ty0, ty1):
                row, first = out[n, k, ty], (n * (ty1 - ty0) + ty - ty0) * tw
                for tx in range(tw):               # one tile per pooled value
                    y00, y01, y10, y11 = _tile_outputs(m, k, first + tx)
                    top = max(activation.relu_if(y00 + b[k], relu), activation.relu_if(y01 + b[k], relu))
                    row[tx] = max(top, max(activation.relu_if(y10 + b[k], relu), activation.relu_if(y11 + b[k], relu)))


@numba.njit(cache=True, nogil=True)
def gradient_transform(dout, u, ty0, ty1):
    """``u[4a + b, k, col] = (A g A^T)[a, b]`` for each 2x2 tile ``g`` of ``dout`` in tile rows ty0..ty1-1 (for dW).

    Parameters
    ----------
    dout : ndarray, shape (n, K, H, W), H and W even
    u : ndarray, shape (16, K, n * (ty1 - ty0) * W/2), overwritten (columns as in input_transform)
    """
    n_img, K, H, W = dout.shape
    tw = W // 2
    for n in range(n_img):
        for k in range(K):
            for ty in range(ty0, ty1):
                base = (n * (ty1 - ty0) + ty - ty0) * tw
                for tx in range(tw):
                    col = base + tx
                    g00, g01 = dout[n, k, 2 * ty, 2 * tx], dout[n, k, 2 * ty, 2 * tx + 1]
                    g10, g11 = dout[n, k, 2 * ty + 1, 2 * tx], dout[n, k, 2 * ty + 1, 2 * tx + 1]
                    # A g: four rows from two (A = (A^T)^T: rows [1,0], [1,1], [1,-1], [0,-1]).
                    rows = ((g00, g01), (g00 + g10, g01 + g11), (g00 - g10, g01 - g11), (-g10, -g11))
                    for a in range(4):
                        h0, h1 = rows[a]
                        u[4 * a, k, col] = h0
                        u[4 * a + 1, k, col] = h0 + h1
                        u[4 * a + 2, k, col] = h0 - h1
                        u[4 * a + 3, k, col] = -h1


@numba.njit(cache=True, nogil=True, inline="always")
def _g_times(v0, v1, v2):
    """G v for a 3-vector: (v0, (v0+v1+v2)/2, (v0-v1+v2)/2, v2)."""
    return v0, 0.5 * (v0 + v1 + v2), 0.5 * (v0 - v1 + v2), v2


@numba.njit(cache=True, nogil=True)
def _filter_transform(w, u, k0, k1):
    """``u[4a + b, k, c] = (G g G^T)[a, b]`` with ``g = w[k, c]`` (3x3), for k in k0..k1-1 and every c.

    ``w`` (K, C, 3, 3) and ``u`` (16, K, C) may be strided views (see :func:`filter_transform`).
    """
    for k in range(k0, k1):
        for c in range(w.shape[1]):
            # G g, column by column: rows r0..r3 of the 4x3 product.
            r00, r10, r20, r30 = _g_times(w[k, c, 0, 0], w[k, c, 1, 0], w[k, c, 2, 0])
            r01, r11, r21, r31 = _g_times(w[k, c, 0, 1], w[k, c, 1, 1], w[k, c, 2, 1])
            r02, r12, r22, r32 = _g_times(w[k, c, 0, 2], w[k, c, 1, 2], w[k, c, 2, 2])
            # (G g) G^T, row by row.
            u[0, k, c], u[1, k, c], u[2, k, c], u[3, k, c] = _g_times(r00, r01, r02)
            u[4, k, c], u[5, k, c], u[6, k, c], u[7, k, c] = _g_times(r10, r11, r12)
            u[8, k, c], u[9, k, c], u[10, k, c], u[11, k, c] = _g_times(r20, r21, r22)
            u[12, k, c], u[13, k, c], u[14, k, c], u[15, k, c] = _g_times(r30, r31, r32)


@numba.njit(cache=True, nogil=True, inline="always")
def _gt_times(v0, v1, v2, v3):
    """G^T v for a 4-vector: (v0 + (v1+v2)/2, (v1-v2)/2, (v1+v2)/2 + v3)."""
    return v0 + 0.5 * (v1 + v2), 0.5 * (v1 - v2), 0.5 * (v1 + v2) + v3


@numba.njit(cache=True, nogil=True)
def _weight_output_transform(m, dw):
    """``dw[p, 3i + j] = (G^T m_p G)[i, j]`` where ``m_p[a, b] = m[4a + b, p]``: F(3x3, 2x2)'s last step."""
    for p in range(m.shape[1]):
        # G^T m, column by column: the three rows of the 3x4 product.
        r00, r10, r20 = _gt_times(m[0, p], m[4, p], m[8, p], m[12, p])
        r01, r11, r21 = _gt_times(m[1, p], m[5, p], m[9, p], m[13, p])
        r02, r12, r22 = _gt_times(m[2, p], m[6, p], m[10, p], m[14, p])
        r03, r13, r23 = _gt_times(m[3, p], m[7, p], m[11, p], m[15, p])
        # (G^T m) G, row by row.
        dw[p, 0], dw[p, 1], dw[p, 2] = _gt_times(r00, r01, r02, r03)
        dw[p, 3], dw[p, 4], dw[p, 5] = _gt_times(r10, r11, r12, r13)
        dw[p, 6], dw[p, 7], dw[p, 8] = _gt_times(r20, r21, r22, r23)


@dataclass(frozen=True)
class Scheme:
    """One Winograd algorithm F(m x m, 3x3): its tile and its five compiled transforms.

    The code below (tiling, work items, the matrix products) is the same for every
    scheme; only these differ. :data:`F2` is this module's F(2x2, 3x3),
    :data:`minivgg.nn.winograd4.F4` is F(4x4, 3x3).

    Attributes
    ----------
    name : str
    m : int, the side of an output tile; its input patch is ``m + 2`` wide, and the layer
        runs ``(m + 2)**2`` matrix products (``planes``)
    input_transform, output_transform, pooled_output_transform, gradient_transform, filter_rows,
    weight_output_transform :
        the kernels ``B^T d B``, ``A^T m A + b``, the same max-pooled, ``A g A^T`` (dW), ``G w G^T``
        and ``G^T m G`` (dW)
    """
    name: str
    m: int
    input_transform: object
    output_transform: object
    pooled_output_transform: object
    gradient_transform: object
    filter_rows: object
    weight_output_transform: object

    @property
    def planes(self):
        return (self.m + 2) ** 2


F2 = Scheme("F(2x2,3x3)", 2, input_transform, output_transform, pooled_output_transform, gradient_transform,
            _filter_transform,
            _weight_output_transform)


def filter_transform(w, flip=False, scheme=F2):
    """``U[4a + b] = (G w G^T)[a, b]`` for every (k, c): (K, C, 3, 3) -> (16, K, C) (F2; F4: 36 planes).

    With ``flip``, the transform of the kernel that maps ``dout`` to ``dx`` (see
    :mod:`minivgg.nn.conv`): every 3x3 kernel rotated by 180 degrees, in/out channels
    swapped, so (K, C, 3, 3) -> (16, C, K). The rotation and the swap are strided views
    of ``w``; no flipped copy of the weights is made.
    """
    if flip:
        w = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    rows, cols = w.shape[:2]
    u = _planes(scheme.planes, rows, cols, w.dtype)
    # Each thread writes its own rows of every plane, reading the weights it needs
    # (strided when flipped: reading scattered values is cheaper than writing them).
    shares = split(rows, get_threads())
    parallel_for(len(shares), lambda s: scheme.filter_rows(w, u, *shares[s]))
    return u


def _tiled(a, m):
    """Pad (N, C, H, W) with zero rows/columns so that H and W are multiples of the tile side ``m``."""
    H, W = a.shape[2:]
    if H % m == 0 and W % m == 0:
        return np.ascontiguousarray(a)
    return np.pad(a, ((0, 0), (0, 0), (0, -H % m), (0, -W % m)))


def _jobs(n_images, tile_rows, tiles_per_image, planes):
    """Work items ``(n0, n1, ty0, ty1)``: images n0..n1-1, tile rows ty0..ty1-1.

    Each item holds about ``VALUES_PER_CHUNK / planes`` tiles: whole images when they are
    that small, else each image's tile rows split into bands. The number of items is
    rounded up to a multiple of the threads (where the images or rows allow), so that no
    thread is left with a last item alone while the others wait: 16 images in items of 5
    would give the two threads 10 and 6.
    """
    threads = get_threads()
    target = max(1, VALUES_PER_CHUNK // planes)
    wanted = max(threads, -(-n_images * tiles_per_image // target))
    wanted = -(-wanted // threads) * threads
    if wanted <= n_images:
        per = -(-n_images // wanted)
        return [(s, min(s + per, n_images), 0, tile_rows) for s in range(0, n_images, per)]
    bands = split(tile_rows, min(tile_rows, -(-wanted // n_images)))
    return [(n, n + 1, a, b) for n in range(n_images) for a, b in bands]


def conv3x3_forward(x, w, b, relu=False, scheme=F2, u=None, pool=False):
    """Same-padded 3x3 convolution, (N, C, H, W) -> (N, K, H, W), by F(2x2, 3x3) (or ``scheme``); ``relu``: max(out, 0).

    ``u``: ``filter_transform(w, scheme=scheme)`` when the caller keeps it (a layer that serves).
    ``pool`` (with ``relu``; H and W even): the 2x2 max-pool of that, (N, K, H/2, W/2), taken
    in the output transform (bit for bit :func:`minivgg.nn.pool.maxpool2x2_forward` of the output).
    Equal to :func:`minivgg.nn.conv.conv3x3_forward_naive` up to float round-off.
    """
    if pool and not (relu and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0):
        raise ValueError(f"pool=True needs relu=True and an even height and width, got relu={relu}, {x.shape}")
    return _convolve(x, filter_transform(w, scheme=scheme) if u is None else u, b, relu, scheme, pool)


def conv3x3_input_grad(dout, w, scheme=F2):
    """``dL/dx`` (N, C, H, W) of a same-padded 3x3 convolution: ``dout`` convolved with the flipped kernel."""
    return _convolve(dout, filter_transform(w, flip=True, scheme=scheme), np.zeros(w.shape[1], dtype=dout.dtype),
                     False, scheme, False)


def _convolve(x, u, b, relu, scheme, pool):
    """``A^T [U @ (B^T d B)] A + b`` for every tile of ``x`` (N, C, H, W); ``relu``, ``pool`` as in
    :func:`conv3x3_forward`.

    ``u`` (planes, K, C) comes from :func:`filter_transform`.

    Shared among the threads in one of two ways:

    * by tiles (:func:`_jobs`): each work item transforms its own tiles, multiplies them by
      every plane of ``u`` and writes its outputs;
    * by planes, when ``u`` is at least half the size of the tiles' transformed input and
      output together (one image's deep layers): every item reading all of ``u`` would read it
      once per item, and multiply it by a narrow matrix (BLAS runs (512x512) @ (512x25) at
      half its speed at 200 columns). Then the tiles are transformed first (each thread some
      channels), each thread multiplies its share of the planes, and the output transform is
      shared by output channels. Measured on single images: (512 -> 512) at 28 px 8.9 -> 6.7 ms,
      at 14 px 3.2 -> 2.7 ms, (256 -> 256) at 56 px 6.0 -> 5.5 ms; a batch of small maps
      (24 x 128 x 8 x 8) is 1.3x slower this way.
    """
    N, C, H, W = x.shape
    K, planes, tile = u.shape[1], scheme.planes, scheme.m
    xe = _tiled(x, tile)
    He, We = xe.shape[2:]
    th, tw = He // tile, We // tile
    # Pooled, a padded tile's extra outputs fall in windows of their own (H and W are even): cropped below.
    side = 2 if pool else 1
    out = np.empty((N, K, He // side, We // side), dtype=x.dtype)
    transform = scheme.pooled_output_transform if pool else scheme.output_transform
    if 2 * K * C >= N * th * tw * (K + C):
        _convolve_by_planes(xe, u, b, relu, scheme, pool, out)
    else:
        jobs = _jobs(N, th, th * tw, planes)

        def run(j):
            n0, n1, ty0, ty1 = jobs[j]
            cols = (n1 - n0) * (ty1 - ty0) * tw
            v = _planes(planes, C, cols, x.dtype)
            m = _planes(planes, K, cols, x.dtype)
            scheme.input_transform(xe[n0:n1], v, ty0, ty1)
            np.matmul(u, v, out=m)
            transform(m, b, out[n0:n1], ty0, ty1, relu)
        parallel_for(len(jobs), run)
    return out if (He, We) == (H, W) else np.ascontiguousarray(out[:, :, :H // side, :W // side])


def _convolve_by_planes(xe, u, b, relu, scheme, pool, out):
    """:func:`_convolve` shared among the threads by planes of ``u``: ``xe`` (N, C, He, We) already tiled,
    ``out`` (N, K, He, We) written (pooled: (N, K, He/2, We/2))."""
    N, C, He, We = xe.shape
    K, planes, rows = u.shape[1], scheme.planes, He // scheme.m
    cols = N * rows * (We // scheme.m)
    v, m = _planes(planes, C, cols, xe.dtype), _planes(planes, K, cols, xe.dtype)
    threads = get_threads()
    channels, shares, kernels = split(C, threads), split(planes, threads), split(K, threads)
    parallel_for(len(channels), lambda i: scheme.input_transform(xe[:, slice(*channels[i])],
                                                                 v[:, slice(*channels[i])], 0, rows))
    parallel_for(len(shares), lambda i: np.matmul(u[slice(*shares[i])], v[slice(*shares[i])],
                                                  out=m[slice(*shares[i])]))
    transform = scheme.pooled_output_transform if pool else scheme.output_transform
    parallel_for(len(kernels), lambda i: transform(m[:, slice(*kernels[i])], b[slice(*kernels[i])],
                                                   out[:, slice(*kernels[i])], 0, rows, relu))


def conv3x3_weight_grad(dout, x, scheme=F2):
    """``dL/dw`` (K, C, 3, 3) of a same-padded 3x3 convolution, by F(3x3, 2x2), summed over the batch.

    The sum over tiles, ``M = sum of (A dout A^T) * (B^T d B)``, is shared out in one of two ways:

    * a batch with at least as many images as threads: each thread sums the products of
      its own images into its own ``M``, and the threads' ``M`` are added at the end;
    * fewer images (a single one): all tiles are transformed first (each thread some of
      the channels), then each thread computes the rows ``M[:, k0:k1]`` of its own output
      channels from all tiles, so nothing needs adding up.

    The last step, ``dW[k, c] = G^T M[k, c] G``, is again shared by output channels.
    """
    N, C = x.shape[:2]
    K, planes, tile = dout.shape[1], scheme.planes, scheme.m
    xe, de = _tiled(x, tile), _tiled(dout, tile)
    He, We = xe.shape[2:]
    th, tw = He // tile, We // tile
    threads = get_threads()
    if N >= threads:
        jobs = _jobs(N, th, th * tw, planes)
        shares = split(len(jobs), threads)

        def run(share):
            m = part = None
            for n0, n1, ty0, ty1 in jobs[slice(*shares[share])]:
                cols = (n1 - n0) * (ty1 - ty0) * tw
                v = _planes(planes, C, cols, x.dtype)
                u = _planes(planes, K, cols, x.dtype)
                scheme.input_transform(xe[n0:n1], v, ty0, ty1)
                scheme.gradient_transform(de[n0:n1], u, ty0, ty1)
                if m is None:
                    m = np.matmul(u, v.transpose(0, 2, 1), out=_planes(planes, K, C, x.dtype))
                    continue
                if part is None:
                    part = _planes(planes, K, C, x.dtype)
                m += np.matmul(u, v.transpose(0, 2, 1), out=part)
            return m
        parts = parallel_for(len(shares), run)
    else:
        cols = N * th * tw
        v, u = _planes(planes, C, cols, x.dtype), _planes(planes, K, cols, x.dtype)
        channels, kernels = split(C, threads), split(K, threads)

        def transform(i):
            if i < len(channels):
                c0, c1 = channels[i]
                scheme.input_transform(xe[:, c0:c1], v[:, c0:c1], 0, th)
            if i < len(kernels):
                k0, k1 = kernels[i]
                scheme.gradient_transform(de[:, k0:k1], u[:, k0:k1], 0, th)
        parallel_for(threads, transform)
        m = _planes(planes, K, C, x.dtype)
        parallel_for(len(kernels), lambda i: np.matmul(u[:, slice(*kernels[i])], v.transpose(0, 2, 1),
                                                       out=m[:, slice(*kernels[i])]))
        parts = [m]
    dw = np.empty((K, C * 9), dtype=x.dtype)
    kernels = split(K, threads)

    def finish(i):
        k = slice(*kernels[i])
        m = parts[0][:, k]
        for part in parts[1:]:
            m += part[:, k]
        scheme.weight_output_transform(m.reshape(planes, -1), dw[k].reshape(-1, 9))   # dW[k, c] = G^T M G
    parallel_for(len(kernels), finish)
    return dw.reshape(K, C, 3, 3)
