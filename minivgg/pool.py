"""2x2 max-pooling with stride 2: forward and backward.

Shapes (NCHW)::

    x   : (N, C, H, W)        H and W even
    out : (N, C, H', W')      H' = 1 + (H - 2) / 2 = H / 2,  W' = W / 2

Forward::

    out[n, c, i, j] = max_{a, b in {0, 1}} x[n, c, 2i + a, 2j + b]

Backward: the gradient of a max flows only to the element that won. When several
elements of a window tie, the first one in row-major order takes it all (PyTorch
does the same), so the gradient stays the gradient of one fixed function::

    dx[n, c, 2i + a, 2j + b] = dout[n, c, i, j]  if (a, b) is the window's first argmax
                               0                 otherwise

The backward pass needs no stored indices: it re-finds the winner from ``x``, which the
network keeps anyway for the layer below.
"""

import numba
import numpy as np


def _windows(x):
    """View ``x`` (N, C, H, W) as (N, C, H/2, W/2, 4): the four elements of each window."""
    N, C, H, W = x.shape
    return x.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H // 2, W // 2, 4)


def maxpool2x2_forward_naive(x):
    """Max over each 2x2 window. x: (N, C, H, W) -> (N, C, H/2, W/2)."""
    return _windows(x).max(axis=-1)


def maxpool2x2_backward_naive(dout, x):
    """Route each ``dout`` value to its window's first argmax. Returns dx, shape of ``x``."""
    N, C, H, W = x.shape
    winner = _windows(x).argmax(axis=-1)                        # (N, C, H/2, W/2), in 0..3
    dwin = (np.arange(4) == winner[..., None]) * dout[..., None]  # (N, C, H/2, W/2, 4)
    return dwin.reshape(N, C, H // 2, W // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, W)


@numba.njit(cache=True)
def maxpool2x2_forward(x):
    """Compiled twin of :func:`maxpool2x2_forward_naive`. x: (N, C, H, W) -> (N, C, H/2, W/2)."""
    N, C, H, W = x.shape
    out = np.empty((N, C, H // 2, W // 2), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H // 2):
                top = x[n, c, 2 * i]
                bottom = x[n, c, 2 * i + 1]
                for j in range(W // 2):
                    out[n, c, i, j] = max(max(top[2 * j], top[2 * j + 1]),
                                          max(bottom[2 * j], bottom[2 * j + 1]))
    return out


@numba.njit(cache=True)
def maxpool2x2_backward(dout, x):
    """Compiled twin of :func:`maxpool2x2_backward_naive`. Returns dx, shape of ``x``."""
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H // 2):
                for j in range(W // 2):
                    # Scan the window in row-major order; a strict '>' keeps the first winner.
                    best_a, best_b = 0, 0
                    best = x[n, c, 2 * i, 2 * j]
                    for a in range(2):
                        for b in range(2):
                            v = x[n, c, 2 * i + a, 2 * j + b]
                            if v > best:
                                best, best_a, best_b = v, a, b
                    dx[n, c, 2 * i + best_a, 2 * j + best_b] = dout[n, c, i, j]
    return dx
