"""3x3 convolution, stride 1, padding 1 ("same"): forward and backward.

Shapes (NCHW)::

    x   : (N, C, H, W)      input
    w   : (K, C, 3, 3)      weights, PyTorch's ``Conv2d`` layout
    b   : (K,)              bias
    out : (N, K, H', W')    with H' = 1 + (H + 2*pad - 3) / stride = H  (pad=1, stride=1)

Forward::

    out[n, k, i, j] = b[k] + sum_{c, dy, dx} w[k, c, dy, dx] * xpad[n, c, i + dy, j + dx]

where ``xpad`` is ``x`` with one row/column of zeros on every side.

Backward, for an upstream gradient ``dout = dL/dout`` of shape (N, K, H, W)::

    dL/db[k]             = sum_{n, i, j} dout[n, k, i, j]
    dL/dw[k, c, dy, dx]  = sum_{n, i, j} dout[n, k, i, j] * xpad[n, c, i + dy, j + dx]
    dL/dx[n, c, i, j]    = sum_{k, dy, dx} dout[n, k, i + 1 - dy, j + 1 - dx] * w[k, c, dy, dx]

(terms whose ``dout`` index falls outside the image are zero). The last line is itself a
same-padded 3x3 correlation, of ``dout`` with the kernel rotated by 180 degrees and its
in/out channels swapped: the input gradient of a convolution is a convolution.

Four implementations live here (the Winograd ones in :mod:`minivgg.nn.winograd`), tested
against each other:

* ``conv3x3_forward_naive`` / ``conv3x3_backward_naive``: the formulas above written
  with nine shifted windows and ``np.einsum``. Read these first.
* ``conv3x3_forward_im2col`` / ``conv3x3_weight_grad_im2col`` / ``conv3x3_input_grad_im2col``:
  each image is unrolled by ``im2col3x3`` into a matrix ``cols`` of shape (C*9, H*W), one
  column per output pixel holding its 3x3xC neighbourhood, so that the convolution
  becomes one matrix product that BLAS runs near the machine's peak::

      out_n  = W @ cols_n          W = w.reshape(K, C*9)      (K, H*W)
      dW    += dout_n @ cols_n.T                              (K, C*9)
      dx_n   = col2im(W.T @ dout_n)                           (C, H, W)

  where ``col2im3x3``, the transpose of ``im2col3x3``, adds each entry back to its pixel.

* ``conv3x3_forward_direct``: the forward formula as compiled loops over rows of pixels,
  for inputs of few channels.

* :mod:`minivgg.nn.winograd`: the same products with 2.25 times fewer multiplications
  (F(2x2, 3x3)), or 4 times fewer with larger tiles (F(4x4, 3x3), :mod:`minivgg.nn.winograd4`).

``conv3x3_forward`` and ``conv3x3_backward`` pick an algorithm per layer
(:func:`algorithm_for`), by rules measured on the paper's and the bundled model's layers
(``benchmarks/bench_kernels.py``):

* fewer than :data:`WINOGRAD_MIN_CHANNELS` input channels (a network's first layer):
  the forward pass by the formula itself, ``conv3x3_forward_direct`` (27 multiply-adds per
  output are too few for im2col's copy or Winograd's transforms to pay), its gradients by
  im2col;
* fewer than :data:`WINOGRAD_MIN_POSITIONS` output positions (N*H*W) in the batch: im2col
  (for a single 14x14 map, transforming all K x C kernels costs more than it saves);
* from :data:`WINOGRAD4_MIN_POSITIONS` (or at any size when the kernel's transforms are kept),
  on sides that are multiples of 4: F(4x4, 3x3); else
  F(2x2, 3x3) (a 14x14 map would be padded to 16x16: 31% more tiles). ``dW`` keeps
  F(2x2, 3x3) for fewer than :data:`WINOGRAD4_DW_MIN_CHANNELS` input channels, a number
  that depends on the processor (:func:`weight_grad_algorithm_for`).

A layer that serves (``VGG8.freeze``) keeps its kernel's Winograd transforms
(:class:`KernelTransforms`), computed once: then no call pays for them, and Winograd replaces
im2col on small inputs too (measured on single images, 8x8 to 14x14 maps of 64-512
channels: 0.55-0.9x im2col's time, where a transform per call lost to it).

``dx`` is computed like a forward pass on ``dout``: Winograd with the flipped kernel, or col2im.
The products run in NumPy's BLAS (``np.matmul``); the loops are compiled with numba.
"""

from functools import partial
from typing import NamedTuple

import numba
import numpy as np

from minivgg.nn import activation, winograd
from minivgg.nn.pool import maxpool2x2_forward
from minivgg.nn.threads import get_threads, parallel_for, split
from minivgg.nn.winograd4 import F4

# ---------------------------------------------------------------------------
# Naive twin: the formulas, one shifted window per kernel tap.
# ---------------------------------------------------------------------------


def conv3x3_forward_naive(x, w, b):
    """Same-padded 3x3 convolution, written for reading.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (K, C, 3, 3)
    b : ndarray, shape (K,)

    Returns
    -------
    out : ndarray, shape (N, K, H, W)
    """
    N, C, H, W = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((N, w.shape[0], H, W), dtype=x.dtype)
    for dy in range(3):
        for dx in range(3):
            window = xpad[:, :, dy:dy + H, dx:dx + W]            # (N, C, H, W)
            out += np.einsum("nchw,kc->nkhw", window, w[:, :, dy, dx])
    return out + b[None, :, None, None]


def conv3x3_backward_naive(dout, x, w):
    """Gradients of :func:`conv3x3_forward_naive`.

    Parameters
    ----------
    dout : ndarray, shape (N, K, H, W)
    x : ndarray, shape (N, C, H, W)
        The input of the forward pass.
    w : ndarray, shape (K, C, 3, 3)

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (K, C, 3, 3)
    db : ndarray, shape (K,)
    """
    N, C, H, W = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for dy in range(3):
        for dx in range(3):
            window = xpad[:, :, dy:dy + H, dx:dx + W]
            dw[:, :, dy, dx] = np.einsum("nkhw,nchw->kc", dout, window)
            dxpad[:, :, dy:dy + H, dx:dx + W] += np.einsum("nkhw,kc->nchw", dout, w[:, :, dy, dx])
    db = dout.sum(axis=(0, 2, 3))
    return dxpad[:, :, 1:-1, 1:-1], dw, db


# ---------------------------------------------------------------------------
# im2col + BLAS, the direct loop, and the fast path that picks one of them or Winograd.
# ---------------------------------------------------------------------------

WINOGRAD_MIN_CHANNELS = 8       # measured: at 3 channels im2col is 3x faster than Winograd and the direct
                                # loop 1.5-2x faster than im2col; from 8 channels Winograd wins
WINOGRAD_MIN_POSITIONS = 784    # N*H*W; measured (512 -> 512 channels, 2 threads): at 1x14x14 im2col is
                                # 2x faster, at 1x28x28 and 4x14x14 they tie, from there Winograd wins
WINOGRAD4_MIN_POSITIONS = 2048  # measured (benchmarks/bench_kernels.py): F(4x4) is 1.3x slower than F(2x2)
                                # at 1x28x28 (512 -> 512), ties at 1x56x56, and is 1.2-1.5x faster from
                                # 32x8x8 (128 -> 128) and 16x28x28 up; at 16x14x14, padded to 16x16, it tied
                                # on an AMD EPYC and was 1.2x slower on an Intel Xeon: F(4x4) takes only
                                # sides that are multiples of 4. With the kernel's transforms kept, its
                                # time is 0.76-1.04x F(2x2)'s from 1x8x8 up (1x28x28 512 -> 512 pooled
                                # 0.81x, 24x8x8 128 -> 128 0.80x; AVX-512 Xeon): no threshold then


def has_avx512():
    """True when numba compiles for a processor with AVX-512 (its host's features, as LLVM reports them)."""
    from llvmlite import binding
    return bool(binding.get_host_cpu_features().get("avx512f", False))


# Measured for dW on two machines (benchmarks/bench_kernels.py): on an AMD EPYC (AVX2) F(4x4) was 1.3-1.4x
# slower than F(2x2) at 32x16..64 channels (64 down to 32 px) and faster from 128 channels; on an Intel Xeon
# (AVX-512) it was 1.3x faster from 16 channels up, and a training step of the paper's model 5-6% faster
# (batch 1 and 16).
WINOGRAD4_DW_MIN_CHANNELS = 16 if has_avx512() else 128


class KernelTransforms(NamedTuple):
    """A kernel's Winograd transforms, computed once for a layer that serves (:func:`transform_kernel`).

    Attributes
    ----------
    weight : (K, C, 3, 3) the read-only kernel they were computed from (a layer uses them only
        while ``weight`` is still its kernel)
    u : dict, the scheme the layer takes (``winograd.F2`` or ``winograd4.F4``) -> its (planes, K, C)
        read-only transform (:func:`minivgg.nn.winograd.filter_transform`); a scheme not in it
        computes its transform per call
    """
    weight: np.ndarray
    u: dict


def transform_kernel(w, side):
    """The :class:`KernelTransforms` of kernel ``w`` (K, C, 3, 3), for a layer whose input maps are ``side``
    pixels square: the scheme :func:`algorithm_for` picks there with the transform kept (F(4x4, 3x3) on
    sides that are multiples of 4, else F(2x2, 3x3)); None for fewer than :data:`WINOGRAD_MIN_CHANNELS`
    input channels (the direct loop needs no transform)."""
    if w.shape[1] < WINOGRAD_MIN_CHANNELS:
        return None
    scheme = F4 if side % 4 == 0 else winograd.F2
    u = winograd.filter_transform(w, scheme=scheme)
    u.flags.writeable = False
    return KernelTransforms(w, {scheme: u})


def algorithm_for(x, transformed=None):
    """The fast path's algorithm for input ``x`` (N, C, H, W): ``"direct"`` (gradients: im2col), ``"im2col"``,
    or the Winograd scheme to use (``winograd.F2`` or ``winograd4.F4``; see the module docstring).

    ``transformed`` (:class:`KernelTransforms` or None): the kernel's transforms are kept, so
    Winograd pays no transform of its own and takes the place of im2col on small inputs too,
    and F(4x4, 3x3), whose kernel transform is the costlier, takes F(2x2, 3x3)'s wherever it fits.
    """
    n, c, h, w = x.shape
    if c < WINOGRAD_MIN_CHANNELS:
        return "direct"
    if n * h * w < WINOGRAD_MIN_POSITIONS and transformed is None:
        return "im2col"
    large = n * h * w >= WINOGRAD4_MIN_POSITIONS or (transformed is not None and F4 in transformed.u)
    return F4 if large and h % 4 == 0 and w % 4 == 0 else winograd.F2


def weight_grad_algorithm_for(x):
    """The algorithm for ``dW`` of a layer with input ``x``: as :func:`algorithm_for`, except that F(4x4, 3x3)
    gives way to F(2x2, 3x3) below :data:`WINOGRAD4_DW_MIN_CHANNELS` input channels (where its many small
    products cost more than they save on some processors)."""
    chosen = algorithm_for(x)
    return winograd.F2 if chosen is F4 and x.shape[1] < WINOGRAD4_DW_MIN_CHANNELS else chosen


@numba.njit(cache=True, nogil=True)
def im2col3x3(x, cols, i0, i1):
    """Unroll output rows i0..i1-1 of one zero-padded image into the matrix of their 3x3 neighbourhoods.

    ``cols[c*9 + dy*3 + dx, (i - i0)*W + j] = xpad[c, i + dy, j + dx]``, so row ``r`` of
    ``cols`` lines up with column ``r`` of ``w.reshape(K, C*9)``.

    Parameters
    ----------
    x : ndarray, shape (C, H, W)
    cols : ndarray, shape (C*9, (i1 - i0)*W)
        Output buffer, overwritten.
    i0, i1 : the output rows to unroll (all: 0, H)
    """
    C, H, W = x.shape
    for r in range(C * 9):
        c = r // 9
        dy = (r % 9) // 3 - 1
        dx = r % 3 - 1
        j0, j1 = max(0, -dx), min(W, W - dx)     # the output columns whose source column is inside x
        for i in range(i0, i1):
            src = i + dy            # source row in x; outside [0, H) it is padding
            at = (i - i0) * W
            # Plain element loops, not slices: a slice costs a view object, which for a
            # 14x14 map is more than the copy (measured: 2x slower).
            if src < 0 or src >= H:
                for j in range(W):
                    cols[r, at + j] = 0
                continue
            for j in range(j0):
                cols[r, at + j] = 0
            for j in range(j0, j1):
                cols[r, at + j] = x[c, src, j + dx]
            for j in range(j1, W):
                cols[r, at + j] = 0


@numba.njit(cache=True, nogil=True)
def col2im3x3(dcols, dx):
    """The transpose of :func:`im2col3x3` (all rows): add every entry of ``dcols`` back to the pixel it was copied from.

    ``dx[c, i + dy - 1, j + dx - 1] += dcols[c*9 + dy*3 + dx, i*W + j]`` for every entry
    whose pixel lies inside the image (the rest came from the zero padding).

    Parameters
    ----------
    dcols : ndarray, shape (C*9, H*W)
    dx : ndarray, shape (C, H, W)
        Output, overwritten.
    """
    C, H, W = dx.shape
    dx[...] = 0
    for r in range(C * 9):
        c = r // 9
        dy = (r % 9) // 3 - 1
        dxx = r % 3 - 1
        j0, j1 = max(0, -dxx), min(W, W - dxx)
        for i in range(max(0, -dy), min(H, H - dy)):
            at = i * W
            for j in range(j0, j1):
                dx[c, i + dy, j + dxx] += dcols[r, at + j]


BAND_PIXELS = 4096      # the least output pixels of a band of rows when an image is shared out (below)


def _row_jobs(n_images, rows, width):
    """Work items ``(n, i0, i1)``: one per image, or bands of rows when there are fewer images than threads.

    Bands: at least one per thread, and up to four per thread while each keeps
    :data:`BAND_PIXELS` pixels. Threads take items as they come (``parallel_for``), so
    with more items than threads a thread that starts late (woken from sleep, or slowed
    by another process) simply takes fewer.
    """
    per_image = -(-get_threads() // n_images)
    if n_images < get_threads():
        per_image = max(per_image, min(4 * per_image, rows * width // BAND_PIXELS))
    return [(n, a, b) for n in range(n_images) for a, b in split(rows, per_image)]


def conv3x3_forward_im2col(x, w, b, relu=False):
    """Same-padded 3x3 convolution via im2col and one BLAS product per work item: (N, C, H, W) -> (N, K, H, W).

    Cost: 2*N*K*C*9*H*W flops in BLAS. Each item (an image, or a band of its rows) has its
    own ``cols`` buffer of C*9*rows*W values, so memory does not grow with the batch.
    ``relu``: max(out, 0), in the same pass that adds the bias.
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    K = w.shape[0]
    wmat = np.ascontiguousarray(w).reshape(K, C * 9)
    out = np.empty((N, K, H, W), dtype=x.dtype)
    jobs = _row_jobs(N, H, W)

    def run(j):
        n, i0, i1 = jobs[j]
        cols = np.empty((C * 9, (i1 - i0) * W), dtype=x.dtype)
        im2col3x3(x[n], cols, i0, i1)
        out_rows = out[n].reshape(K, H * W)[:, i0 * W:i1 * W]
        np.matmul(wmat, cols, out=out_rows)
        add_bias(out_rows, b, relu)
    parallel_for(len(jobs), run)
    return out


@numba.njit(cache=True, nogil=True)
def add_bias(rows, b, relu):
    """``rows[k] += b[k]``, then max(rows, 0) when ``relu`` (the ReLU that follows the convolution), in one pass."""
    for k in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            rows[k, j] = activation.relu_if(rows[k, j] + b[k], relu)


@numba.njit(cache=True, nogil=True)
def _direct_row(x, w, b, ks, i, acc):
    """``acc[q, :] = b[ks[q]] + sum_{c, dy, dx} w[ks[q], c, dy, dx] * xpad[c, i + dy, dx : dx + W]``: output row ``i``
    of the four output channels ``ks``, for one image ``x`` (C, H, W); ``acc`` (4, W).

    27 multiply-adds per output value for 3 input channels, in passes over rows that stay
    in the L1 cache, and no unrolled copy of the input. Four output channels are computed
    per pass, so that each input value loaded serves 12 multiply-adds instead of 3 (the
    loop is bound by loads and stores, not by arithmetic). The first and last columns, where
    a tap falls on the zero padding, are added separately.
    """
    C, H, W = x.shape
    for q in range(4):
        acc[q, :] = b[ks[q]]
    for c in range(C):
        for dy in range(3):
            src = i + dy - 1
            if src < 0 or src >= H:
                continue
            row = x[c, src]
            a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
            u0, u1, u2 = w[ks[0], c, dy, 0], w[ks[0], c, dy, 1], w[ks[0], c, dy, 2]
            v0, v1, v2 = w[ks[1], c, dy, 0], w[ks[1], c, dy, 1], w[ks[1], c, dy, 2]
            s0, s1, s2 = w[ks[2], c, dy, 0], w[ks[2], c, dy, 1], w[ks[2], c, dy, 2]
            t0, t1, t2 = w[ks[3], c, dy, 0], w[ks[3], c, dy, 1], w[ks[3], c, dy, 2]
            for j in range(1, W - 1):
                left, mid, right = row[j - 1], row[j], row[j + 1]
                a0[j] += u0 * left + u1 * mid + u2 * right
                a1[j] += v0 * left + v1 * mid + v2 * right
                a2[j] += s0 * left + s1 * mid + s2 * right
                a3[j] += t0 * left + t1 * mid + t2 * right
            for j in range(0, W, max(W - 1, 1)):            # the edges (0 and W-1): taps on padding
                for q in range(4):
                    for t in range(3):
                        if 0 <= j + t - 1 < W:
                            acc[q, j] += w[ks[q], c, dy, t] * row[j + t - 1]


@numba.njit(cache=True, nogil=True)
def _channel_group(k0, K):
    """Output channels k0..k0+3, a short last group repeating its last channel."""
    return k0, min(k0 + 1, K - 1), min(k0 + 2, K - 1), min(k0 + 3, K - 1)


@numba.njit(cache=True, nogil=True)
def direct_rows(x, w, b, out, i0, i1, relu):
    """Output rows i0..i1-1 of one image by the formula itself (:func:`_direct_row`), four channels at a time.

    Parameters
    ----------
    x : ndarray, shape (C, H, W)
    w : ndarray, shape (K, C, 3, 3)
    b : ndarray, shape (K,)
    out : ndarray, shape (K, H, W); rows i0..i1-1 are written
    relu : bool, write max(out, 0)
    """
    K, W = w.shape[0], x.shape[2]
    acc = np.empty((4, W), dtype=out.dtype)
    for k0 in range(0, K, 4):
        ks = _channel_group(k0, K)
        for i in range(i0, i1):
            _direct_row(x, w, b, ks, i, acc)
            for q in range(4):
                for j in range(W):
                    out[ks[q], i, j] = activation.relu_if(acc[q, j], relu)


@numba.njit(cache=True, nogil=True)
def direct_relu_maxpool_rows(x, w, b, out, r0, r1):
    """Rows r0..r1-1 of ``maxpool2x2(max(conv(x), 0))`` for one image: (C, H, W) -> ``out`` (K, H/2, W/2).

    ``out[k, r, j] = max of max(conv, 0) over rows 2r, 2r+1 and columns 2j, 2j+1``, equal bit for
    bit to :func:`direct_rows` with ``relu`` and then the pool. The two convolution rows of a pooled row live in a
    small buffer, so the full-size output of the first layer, four times the pooled one,
    is never written to memory nor read back by the pool.
    """
    K, W = w.shape[0], x.shape[2]
    acc = np.empty((2, 4, W), dtype=out.dtype)
    for k0 in range(0, K, 4):
        ks = _channel_group(k0, K)
        for r in range(r0, r1):
            _direct_row(x, w, b, ks, 2 * r, acc[0])
            _direct_row(x, w, b, ks, 2 * r + 1, acc[1])
            for q in range(4):
                for j in range(W // 2):       # the ReLU first, as the layers in turn would (NaN -> 0)
                    top = max(activation.relu_if(acc[0, q, 2 * j], True),
                              activation.relu_if(acc[0, q, 2 * j + 1], True))
                    bottom = max(activation.relu_if(acc[1, q, 2 * j], True),
                                 activation.relu_if(acc[1, q, 2 * j + 1], True))
                    out[ks[q], r, j] = max(top, bottom)


def conv3x3_forward_direct(x, w, b, relu=False, pool=False):
    """Same-padded 3x3 convolution by :func:`direct_rows`: (N, C, H, W) -> (N, K, H, W), for few input channels.

    For a network's first layer (3 channels) the arithmetic is small (27 multiply-adds per
    output) and im2col's unrolled copy, 9 times the input, costs more than the products:
    measured 2-3 times slower than this loop. Work items as :func:`conv3x3_forward_im2col`'s.
    ``pool=True`` (with ``relu``; H and W even): ``maxpool2x2(max(out, 0))``, (N, K, H/2, W/2), by
    :func:`direct_relu_maxpool_rows`.
    """
    _check_pool(x, relu, pool)
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    if pool:
        out = np.empty((N, w.shape[0], H // 2, W // 2), dtype=x.dtype)
        jobs = _row_jobs(N, H // 2, W)
        parallel_for(len(jobs), lambda j: direct_relu_maxpool_rows(x[jobs[j][0]], w, b, out[jobs[j][0]],
                                                                   *jobs[j][1:]))
        return out
    out = np.empty((N, w.shape[0], H, W), dtype=x.dtype)
    jobs = _row_jobs(N, H, W)
    parallel_for(len(jobs), lambda j: direct_rows(x[jobs[j][0]], w, b, out[jobs[j][0]], *jobs[j][1:], relu))
    return out


def conv3x3_weight_grad_im2col(dout, x):
    """``dL/dw`` (K, C, 3, 3) via im2col: ``dW = sum over images of dout_n @ cols_n.T``.

    With at least as many images as threads, each thread sums the products of its own
    images and the threads' sums are added at the end. With fewer (a single image), the
    threads unroll each image together (a band of rows each) and then each computes the
    rows ``dW[k0:k1]`` of its own output channels, so nothing needs adding up.
    """
    N, C, H, W = x.shape
    K = dout.shape[1]
    threads = get_threads()
    if N < threads:
        dwmat = np.empty((K, C * 9), dtype=x.dtype)
        bands, kernels = split(H, threads), split(K, threads)
        cols = np.empty((C * 9, H * W), dtype=x.dtype)

        def unroll(i, n):
            i0, i1 = bands[i]
            im2col3x3(x[n], cols[:, i0 * W:i1 * W], i0, i1)

        def product(i, n):
            k = slice(*kernels[i])
            if n == 0:
                np.matmul(dout[n, k].reshape(-1, H * W), cols.T, out=dwmat[k])
            else:
                dwmat[k] += dout[n, k].reshape(-1, H * W) @ cols.T
        for n in range(N):
            parallel_for(len(bands), partial(unroll, n=n))
            parallel_for(len(kernels), partial(product, n=n))
        return dwmat.reshape(K, C, 3, 3)
    shares = split(N, threads)

    def run(share):
        # The unrolled input is rebuilt rather than kept from the forward pass: one cheap
        # memory pass instead of storing C*9 times the input for every layer.
        dwmat = cols = None
        for n in range(*shares[share]):
            cols = np.empty((C * 9, H * W), dtype=x.dtype) if cols is None else cols
            im2col3x3(x[n], cols, 0, H)
            product = np.matmul(dout[n].reshape(K, H * W), cols.T)
            dwmat = product if dwmat is None else np.add(dwmat, product, out=dwmat)
        return dwmat
    return sum(parallel_for(len(shares), run)).reshape(K, C, 3, 3)


def _check_pool(x, relu, pool):
    """The fused pool follows the ReLU, on a map it can halve: ``pool=True`` needs ``relu=True`` and even sides."""
    if pool and not (relu and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0):
        raise ValueError(f"pool=True needs relu=True and an even height and width, got relu={relu}, {x.shape}")


def conv3x3_forward(x, w, b, relu=False, pool=False, transformed=None):
    """Same-padded 3x3 convolution, the fast path: Winograd or im2col (see the module docstring).

    Shapes as :func:`conv3x3_forward_naive`: x (N, C, H, W), w (K, C, 3, 3), b (K,) -> (N, K, H, W).
    ``relu=True`` returns max(out, 0) instead, computed in the pass that writes ``out``
    (the network uses it for the ReLU after each convolution: one pass over memory less).
    ``pool=True`` (with ``relu``; H and W even) returns the 2x2 max-pool of that, (N, K, H/2, W/2):
    for the direct algorithm and Winograd in the same pass (:func:`direct_relu_maxpool_rows`, the
    output transforms), for im2col by :func:`minivgg.nn.pool.maxpool2x2_forward` after it.
    ``transformed``: ``w``'s :class:`KernelTransforms`, when the layer keeps them.
    """
    _check_pool(x, relu, pool)
    x = np.ascontiguousarray(x)
    algorithm = algorithm_for(x, transformed)
    if algorithm == "direct":
        return conv3x3_forward_direct(x, w, b, relu, pool)
    if algorithm == "im2col":
        out = conv3x3_forward_im2col(x, w, b, relu)
    else:
        u = None if transformed is None else transformed.u.get(algorithm)
        return winograd.conv3x3_forward(x, w, b, relu, scheme=algorithm, u=u, pool=pool)
    return maxpool2x2_forward(out) if pool else out


def conv3x3_backward(dout, x, w, need_dx=True):
    """Gradients of :func:`conv3x3_forward`: ``dout`` (N, K, H, W), the forward pass's input ``x`` (N, C, H, W)
    and kernel ``w`` (K, C, 3, 3), as :func:`conv3x3_backward_naive`, and

    Parameters
    ----------
    need_dx : bool
        The first layer of a network does not need ``dx`` during training; skipping it
        saves half of that layer's work.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None when ``need_dx`` is False
    dw : ndarray, shape (K, C, 3, 3)
    db : ndarray, shape (K,)
    """
    dout, x = np.ascontiguousarray(dout), np.ascontiguousarray(x)
    algorithm = weight_grad_algorithm_for(x)
    if algorithm in ("direct", "im2col"):
        dw = conv3x3_weight_grad_im2col(dout, x)
    else:
        dw = winograd.conv3x3_weight_grad(dout, x, scheme=algorithm)
    return (conv3x3_input_grad(dout, w) if need_dx else None), dw, dout.sum(axis=(0, 2, 3))


def conv3x3_input_grad(dout, w):
    """``dL/dx`` (N, C, H, W): the input gradient of a convolution is a convolution (see the formulas above).

    ``dout`` (N, K, H, W) convolved with the flipped kernel, by Winograd or im2col as the
    forward pass would choose for an input of ``dout``'s shape.
    """
    algorithm = algorithm_for(dout)
    if algorithm in ("direct", "im2col"):
        return conv3x3_input_grad_im2col(dout, w)
    return winograd.conv3x3_input_grad(dout, w, scheme=algorithm)


def conv3x3_input_grad_im2col(dout, w):
    """``dL/dx`` via the transpose of im2col: ``dx_n = col2im(W.T @ dout_n)``.

    ``W.T @ dout_n`` (C*9, H*W) is the gradient of the unrolled matrix ``cols_n``, and each
    of its entries goes back to the pixel ``im2col3x3`` copied it from. (Nothing flips the
    kernel: ``W.T`` is a transposed view.) Each thread computes the rows of its own input
    channels, ``W[:, c0*9:c1*9].T @ dout_n``, and writes ``dx[:, c0:c1]``.
    """
    dout = np.ascontiguousarray(dout)
    N, K, H, W = dout.shape
    C = w.shape[1]
    wmat = np.ascontiguousarray(w).reshape(K, C * 9)
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    channels = split(C, get_threads())

    def run(g):
        c0, c1 = channels[g]
        for n in range(N):
            col2im3x3(wmat[:, c0 * 9:c1 * 9].T @ dout[n].reshape(K, H * W), dx[n, c0:c1])
    parallel_for(len(channels), run)
    return dx
