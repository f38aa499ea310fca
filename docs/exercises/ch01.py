"""Chapter 1, One layer: exercises. Replace each TODO, then run ``python docs/exercises/ch01.py``.

Each checker calls your function on inputs of its own, compares the result with
minivgg's, and says in words what differs. Worked answers: ``docs/solutions/ch01.py``
(look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg.course.exercises import check_conv_backward, check_dense_backward, check_maxpool_backward, run_exercises


def dense_backward(dout, x, w):
    """Gradients of the dense layer ``out = x @ w.T + b``.

    dout (N, O), x (N, D), w (O, D) -> (dx (N, D), dw (O, D), db (O,)).
    """
    # TODO: three products or sums, one per gradient. Each gradient has the shape of what it
    # is the gradient of; write the chain rule for one entry, dL/dw[o, d], and read off the product.
    raise NotImplementedError


def conv_backward(dout, x, w):
    """Gradients of the same-padded 3x3 convolution of ``minivgg/nn/conv.py``.

    dout (N, K, H, W), x (N, C, H, W), w (K, C, 3, 3) -> (dx (N, C, H, W), dw (K, C, 3, 3), db (K,)).
    """
    # TODO: pad x by one pixel; for each of the nine taps (dy, dx), the window of the padded x
    # that tap saw gives its share of dw. dx is itself a convolution of dout: with which kernel?
    raise NotImplementedError


def maxpool_backward(dout, x):
    """Gradient of 2x2 max-pooling with stride 2: dout (N, C, H/2, W/2), x (N, C, H, W) -> dx (N, C, H, W).

    A window whose maxima tie sends its gradient to one element only, the first in
    row-major order, so that each window's gradients still sum to its dout.
    """
    # TODO: find each window's winner (np.argmax returns the first of equal values) and put the
    # window's dout there; every other element of the window gets 0.
    raise NotImplementedError


EXERCISES = [(dense_backward, check_dense_backward), (conv_backward, check_conv_backward),
             (maxpool_backward, check_maxpool_backward)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
