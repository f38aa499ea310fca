"""ReLU: forward and backward.

Shapes: any; ``out`` and ``dx`` have the shape of ``x``.

Forward::   out = max(x, 0)
Backward::  dx = dout * [out > 0]

The backward pass reads the *output* (not the input): the two have the same sign
pattern, and the output is what the next layer keeps anyway, so nothing extra is stored.
At exactly x = 0 the derivative is taken as 0, as in PyTorch.
"""

import numba
import numpy as np


def relu_forward_naive(x):
    """out = max(x, 0)."""
    return np.maximum(x, 0)


def relu_backward_naive(dout, out):
    """dx = dout where out > 0, else 0."""
    return dout * (out > 0)


@numba.njit(cache=True)
def _relu_forward_flat(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > 0 else 0


@numba.njit(cache=True)
def _relu_backward_flat(dout, out, dx):
    for i in range(dout.size):
        dx[i] = dout[i] if out[i] > 0 else 0


def relu_forward(x):
    """Compiled twin of :func:`relu_forward_naive` (one pass over memory, no temporaries)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _relu_forward_flat(x.reshape(-1), out.reshape(-1))
    return out


def relu_backward(dout, out):
    """Compiled twin of :func:`relu_backward_naive`."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _relu_backward_flat(dout.reshape(-1), np.ascontiguousarray(out).reshape(-1), dx.reshape(-1))
    return dx
