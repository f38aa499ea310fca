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
    dL/dx                = conv3x3(dout, w_flipped)       (a "full" correlation)

with ``w_flipped[c, k, dy, dx] = w[k, c, 2 - dy, 2 - dx]``: the input gradient of a
same-padded 3x3 convolution is itself a same-padded 3x3 convolution of the output
gradient, with in/out channels swapped and the kernel rotated by 180 degrees.

Two implementations live here, tested against each other:

* ``conv3x3_forward_naive`` / ``conv3x3_backward_naive``: the formulas above written
  with nine shifted windows and ``np.einsum``. Read these first.
* ``conv3x3_forward`` / ``conv3x3_backward``: the fast path. Each image is unrolled
  with ``im2col3x3`` into a matrix ``cols`` of shape (C*9, H*W), so the convolution
  becomes one matrix product ``w.reshape(K, C*9) @ cols`` that BLAS runs near the
  machine's peak. The loops are compiled with numba; ``np.dot`` inside numba calls
  the same BLAS ``gemm`` routine.
"""

import numba
import numpy as np

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
# Fast path: im2col + BLAS, compiled with numba.
# ---------------------------------------------------------------------------


@numba.njit(cache=True)
def im2col3x3(x, cols):
    """Unroll one zero-padded image into the matrix of its 3x3 neighbourhoods.

    ``cols[c*9 + dy*3 + dx, i*W + j] = xpad[c, i + dy, j + dx]``, so row ``r`` of ``cols``
    lines up with column ``r`` of ``w.reshape(K, C*9)``.

    Parameters
    ----------
    x : ndarray, shape (C, H, W)
    cols : ndarray, shape (C*9, H*W)
        Output buffer, overwritten (reused across images to save allocations).
    """
    C, H, W = x.shape
    for r in range(C * 9):
        c = r // 9
        dy = (r % 9) // 3 - 1
        dx = r % 3 - 1
        row = cols[r]
        for i in range(H):
            src = i + dy            # source row in x; outside [0, H) it is padding
            at = i * W
            # Whole-row slice copies (not element loops) let LLVM emit vector moves.
            if src < 0 or src >= H:
                row[at:at + W] = 0
            elif dx == 0:
                row[at:at + W] = x[c, src, :]
            elif dx < 0:
                row[at] = 0
                row[at + 1:at + W] = x[c, src, :W - 1]
            else:
                row[at:at + W - 1] = x[c, src, 1:]
                row[at + W - 1] = 0


@numba.njit(cache=True)
def _add_bias_per_channel(out, b):
    """``out[k, p] += b[k]`` for ``out`` of shape (K, P)."""
    for k in range(out.shape[0]):
        bk = b[k]
        for p in range(out.shape[1]):
            out[k, p] += bk


@numba.njit(cache=True)
def conv3x3_forward(x, w, b):
    """Same-padded 3x3 convolution via im2col and one GEMM per image.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous
    w : ndarray, shape (K, C, 3, 3), C-contiguous
    b : ndarray, shape (K,)

    Returns
    -------
    out : ndarray, shape (N, K, H, W)

    Cost: 2*N*K*C*9*H*W flops in ``gemm``; the ``cols`` buffer holds C*9*H*W values,
    one image at a time, so memory does not grow with the batch.
    """
    N, C, H, W = x.shape
    K = w.shape[0]
    wmat = w.reshape(K, C * 9)
    cols = np.empty((C * 9, H * W), dtype=x.dtype)
    out = np.empty((N, K, H, W), dtype=x.dtype)
    for n in range(N):
        im2col3x3(x[n], cols)
        out_n = out[n].reshape(K, H * W)
        np.dot(wmat, cols, out_n)
        _add_bias_per_channel(out_n, b)
    return out


def flip_kernel(w):
    """Weights of the convolution that maps ``dout`` to ``dx``.

    ``w_flipped[c, k, dy, dx] = w[k, c, 2 - dy, 2 - dx]``, shape (C, K, 3, 3).
    """
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


@numba.njit(cache=True)
def _conv3x3_backward_kernel(dout, x, w_flipped, need_dx):
    N, C, H, W = x.shape
    K = dout.shape[1]
    HW = H * W
    dwmat = np.zeros((K, C * 9), dtype=x.dtype)
    dw_n = np.empty((K, C * 9), dtype=x.dtype)
    cols = np.empty((C * 9, HW), dtype=x.dtype)
    if need_dx:
        dx = np.empty((N, C, H, W), dtype=x.dtype)
        dcols = np.empty((K * 9, HW), dtype=x.dtype)
    else:
        dx = np.empty((0, C, H, W), dtype=x.dtype)
        dcols = np.empty((0, HW), dtype=x.dtype)
    wf_mat = w_flipped.reshape(C, K * 9)
    for n in range(N):
        dout_n = dout[n].reshape(K, HW)
        # dW = dout_n @ cols^T: the unrolled input is rebuilt rather than kept from the
        # forward pass, trading one cheap memory pass for C*9 times less stored data.
        im2col3x3(x[n], cols)
        np.dot(dout_n, cols.T, dw_n)
        dwmat += dw_n
        if need_dx:
            im2col3x3(dout[n], dcols)
            np.dot(wf_mat, dcols, dx[n].reshape(C, HW))
    db = np.zeros(K, dtype=x.dtype)
    for n in range(N):
        for k in range(K):
            db[k] += dout[n, k].sum()
    return dx, dwmat.reshape(K, C, 3, 3), db


def conv3x3_backward(dout, x, w, need_dx=True):
    """Gradients of :func:`conv3x3_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, K, H, W)
    x : ndarray, shape (N, C, H, W)
        The input of the forward pass.
    w : ndarray, shape (K, C, 3, 3)
    need_dx : bool
        The first layer of a network does not need ``dx`` during training; skipping it
        saves a third of that layer's work.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None when ``need_dx`` is False
    dw : ndarray, shape (K, C, 3, 3)
    db : ndarray, shape (K,)
    """
    dx, dw, db = _conv3x3_backward_kernel(
        np.ascontiguousarray(dout), np.ascontiguousarray(x), flip_kernel(w), need_dx)
    return (dx if need_dx else None), dw, db
