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


def dense_forward_naive(x, w, b):
    """out[n, o] = b[o] + sum_d x[n, d] * w[o, d], written as an explicit sum."""
    return np.einsum("nd,od->no", x, w) + b


def dense_backward_naive(dout, x, w):
    """Gradients of :func:`dense_forward_naive`: returns dx (N, D), dw (O, D), db (O,)."""
    return np.einsum("no,od->nd", dout, w), np.einsum("no,nd->od", dout, x), dout.sum(axis=0)


@numba.njit(cache=True)
def dense_forward(x, w, b):
    """Compiled twin of :func:`dense_forward_naive`; the product runs in BLAS ``gemm``."""
    out = np.dot(x, w.T)
    for n in range(out.shape[0]):
        out[n] += b
    return out


@numba.njit(cache=True)
def dense_backward(dout, x, w):
    """Compiled twin of :func:`dense_backward_naive`: returns dx, dw, db."""
    return np.dot(dout, w), np.dot(dout.T, x), dout.sum(axis=0)
