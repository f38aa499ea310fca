"""Inverted dropout: forward and backward.

Shapes: any; ``out``, ``mask`` and ``dx`` have the shape of ``x``.

Training::   mask = [u >= p] / (1 - p),  u ~ Uniform[0, 1)     out = x * mask
Inference::  out = x                                           (the identity)

Dividing by the keep probability during training ("inverted" dropout) keeps the
expected activation unchanged, so inference needs no rescaling.

Backward::   dx = dout * mask
"""

import numpy as np


def dropout_mask(shape, p, rng, dtype=np.float32):
    """Draw an inverted-dropout mask: 0 with probability ``p``, else ``1 / (1 - p)``."""
    scale = np.dtype(dtype).type(1.0 / (1.0 - p))
    return (rng.random(shape) >= p).astype(dtype) * scale


def dropout_forward(x, mask):
    """out = x * mask."""
    return x * mask


def dropout_backward(dout, mask):
    """dx = dout * mask."""
    return dout * mask
