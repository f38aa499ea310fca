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

from minivgg.nn.threads import get_threads, parallel_for, split


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


@numba.njit(cache=True, nogil=True)
def _maxpool_forward_planes(x, out):
    """out[p, i, j] = max of x[p, 2i:2i+2, 2j:2j+2] for every plane p of x (P, H, W)."""
    P, H, W = x.shape
    for p in range(P):
        for i in range(H // 2):
            top, bottom = x[p, 2 * i], x[p, 2 * i + 1]
            for j in range(W // 2):
                out[p, i, j] = max(max(top[2 * j], top[2 * j + 1]), max(bottom[2 * j], bottom[2 * j + 1]))


@numba.njit(cache=True, nogil=True)
def _maxpool_backward_planes(dout, x, dx, relu):
    """Route each dout[p, i, j] to its window's first argmax, for every plane p; writes all of dx.

    ``relu``: ``x`` is the output of a ReLU, and the gradient at the ReLU's input is written
    instead (0 where the window's maximum is 0). ``dx`` may be ``x`` itself: each window is
    read before it is written.
    """
    P, H, W = x.shape
    zero = dx.dtype.type(0)
    for p in range(P):
        for i in range(H // 2):
            top, bottom = x[p, 2 * i], x[p, 2 * i + 1]
            dtop, dbottom = dx[p, 2 * i], dx[p, 2 * i + 1]
            g = dout[p, i]
            for j in range(W // 2):
                a, b = top[2 * j], top[2 * j + 1]
                c, d = bottom[2 * j], bottom[2 * j + 1]
                m = max(max(a, b), max(c, d))
                # The first maximum in row-major order (a, b, c, d) takes the gradient.
                # Bitwise & | ~ rather than `and`/`or`, and selects rather than `if`: the
                # winner is data, so a branch on it is mispredicted often (3x slower).
                wins_a = a == m
                wins_b = (b == m) & ~wins_a
                wins_c = (c == m) & ~(wins_a | wins_b)
                wins_d = ~(wins_a | wins_b | wins_c)
                gj = g[j] if not relu or m > 0 else zero
                dtop[2 * j] = gj if wins_a else zero
                dtop[2 * j + 1] = gj if wins_b else zero
                dbottom[2 * j] = gj if wins_c else zero
                dbottom[2 * j + 1] = gj if wins_d else zero


def _planes(a):
    N, C, H, W = a.shape
    return a.reshape(N * C, H, W)


def maxpool2x2_forward(x):
    """Compiled twin of :func:`maxpool2x2_forward_naive`. x: (N, C, H, W) -> (N, C, H/2, W/2).

    The N*C feature maps are independent: equal shares of them go to each thread.
    """
    N, C, H, W = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((N, C, H // 2, W // 2), dtype=x.dtype)
    xp, op = _planes(x), _planes(out)
    shares = split(N * C, get_threads())
    parallel_for(len(shares), lambda s: _maxpool_forward_planes(xp[slice(*shares[s])], op[slice(*shares[s])]))
    return out


def maxpool2x2_backward(dout, x):
    """Compiled twin of :func:`maxpool2x2_backward_naive`. Returns dx, shape of ``x``.

    Every element of ``dx`` is written exactly once (the winner gets ``dout``, the other
    three 0), so ``dx`` needs no zeroing pass before the scatter.
    """
    return _backward(dout, x, np.empty_like(x), relu=False)


def relu_maxpool2x2_backward_inplace(dout, x):
    """Backward through ReLU then max-pool, written over ``x``, the ReLU's output: returns ``x``.

    ``dL/dz`` for ``y = maxpool2x2(relu(z))``: the window's winner gets ``dout`` when the
    maximum is positive (the ReLU passed it), every other element 0. Equal to
    ``relu_backward(maxpool2x2_backward(dout, x), x)``, in one pass and with no new array:
    at 224 pixels the gradient of 16 images is 205 MB, and fresh memory of that size
    costs more to obtain from the system than to compute. The network does this when
    nothing else needs ``x`` any more (see VGG8.backward).
    """
    if not (x.flags.c_contiguous and x.flags.writeable):
        raise ValueError("relu_maxpool2x2_backward_inplace writes over x: it must be a writeable C-contiguous array")
    return _backward(dout, x, x, relu=True)


def _backward(dout, x, dx, relu):
    dout, x = np.ascontiguousarray(dout), np.ascontiguousarray(x)
    dp, xp, dxp = _planes(dout), _planes(x), _planes(dx)
    shares = split(xp.shape[0], get_threads())
    parallel_for(len(shares), lambda s: _maxpool_backward_planes(*(a[slice(*shares[s])] for a in (dp, xp, dxp)), relu))
    return dx
