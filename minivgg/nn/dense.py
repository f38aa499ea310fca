"""Dense (fully connected, linear) layer: forward and backward.

Shapes::

    x   : (N, D)
    w   : (O, D)     PyTorch's ``Linear`` layout: one row per output unit
    b   : (O,)
    out : (N, O)

Forward::   out = x @ w.T + b               out[n, o] = b[o] + sum_d x[n, d] * w[o, d]
Backward::  dx = dout @ w                   (N, D)
            dw = dout.T @ x                 (O, D)
            db = sum_n dout[n]              (O,)
"""

import numba
import numpy as np

from minivgg.nn.threads import get_threads, parallel_for, split


def dense_forward_naive(x, w, b):
    """out[n, o] = b[o] + sum_d x[n, d] * w[o, d], written as an explicit sum."""
    return np.einsum("nd,od->no", x, w) + b


def dense_backward_naive(dout, x, w):
    """Gradients of :func:`dense_forward_naive`: returns dx (N, D), dw (O, D), db (O,)."""
    return np.einsum("no,od->nd", dout, w), np.einsum("no,nd->od", dout, x), dout.sum(axis=0)


SMALL_BATCH = 4          # up to this many rows, dense_forward reads the weights once with its own loop


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _dense_forward_rows(x, w, b, out, o0, o1):
    """``out[n, o] = b[o] + sum_d x[n, d] * w[o, d]`` for the units o0..o1-1, every row of ``x``.

    Each weight row is read once and dotted with every input row while it is in cache.
    ``fastmath`` lets the compiler reorder each sum into vector lanes (a dot product
    summed in another order: the same up to float round-off).
    """
    for o in range(o0, o1):
        for n in range(x.shape[0]):
            total = x.dtype.type(0)
            for d in range(x.shape[1]):
                total += x[n, d] * w[o, d]
            out[n, o] = total + b[o]


def dense_forward(x, w, b):
    """Fast twin of :func:`dense_forward_naive`, each thread computing its share of the output units.

    Large batches: BLAS products (``np.matmul`` passes the transpose to BLAS as a flag,
    so ``w.T`` is never copied). Up to :data:`SMALL_BATCH` rows the product is bound by
    reading the weights (51 MB for the paper's first dense layer), and
    :func:`_dense_forward_rows` reads them faster than BLAS does (measured: 2.4 against
    3.4 ms for one image, weights not in cache).
    """
    out = np.empty((x.shape[0], w.shape[0]), dtype=x.dtype)
    units = split(w.shape[0], get_threads())

    def run(p):
        a, z = units[p]
        if len(x) <= SMALL_BATCH:
            _dense_forward_rows(x, w, b, out, a, z)
            return
        np.matmul(x, w[a:z].T, out=out[:, a:z])
        out[:, a:z] += b[a:z]
    parallel_for(len(units), run)
    return out


def dense_backward(dout, x, w, dw=None):
    """Fast twin of :func:`dense_backward_naive`: returns dx, dw, db.

    Each thread computes a share of dx's and dw's columns/rows.

    ``dw``: an array of ``w``'s shape and dtype to write the weight gradient into instead
    of a new one (see ``Tape(reuse=...)`` in :mod:`minivgg.nn.model`).
    """
    dx = np.empty_like(x)
    dw = np.empty_like(w) if dw is None else dw
    inputs, units = split(w.shape[1], get_threads()), split(w.shape[0], get_threads())

    def run(p):
        a, z = inputs[p]
        np.matmul(dout, w[:, a:z], out=dx[:, a:z])
        a, z = units[p]
        if len(x) == 1:
            # One image: dw is the outer product of two vectors, which a broadcast
            # multiply writes 7x faster than BLAS's matrix product does (measured, 512 x 25088).
            np.multiply(dout[0, a:z, None], x[0], out=dw[a:z])
        else:
            np.matmul(dout[:, a:z].T, x, out=dw[a:z])
    parallel_for(min(len(inputs), len(units)), run)
    return dx, dw, dout.sum(axis=0)
