"""Chapter 4, Speed: exercises. Replace each TODO, then run ``python docs/exercises/ch04.py``.

Each checker calls your function on inputs of its own and says in words what differs; the
Winograd checkers also count your multiplications of an input by a weight.
Worked answers: ``docs/solutions/ch04.py`` (look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg.course.exercises import check_im2col, check_winograd_1d, check_winograd_tile, run_exercises


def my_im2col(x):
    """One image x (C, H, W) -> cols (C*9, H*W) with ``cols[c*9 + dy*3 + dx, i*W + j] = xpad[c, i + dy, j + dx]``.

    xpad is x with one row/column of zeros on every side, so that
    ``w.reshape(K, C*9) @ my_im2col(x)`` is the convolution, (K, H*W).
    """
    # TODO: one row of cols per (channel, tap): the shifted window of xpad, flattened.
    raise NotImplementedError


def winograd_1d(d, g):
    """The two outputs ``y[i] = g[0] d[i] + g[1] d[i+1] + g[2] d[i+2]`` (i = 0, 1), with 4 multiplications.

    d: 4 inputs, g: 3 weights -> y, 2 values. Multiplications among the weights alone (such
    as ``(g[0] + g[1] + g[2]) / 2``) do not count: a network computes them once per kernel.
    """
    # TODO: the four products m1..m4 of the chapter, then y from their sums and differences.
    raise NotImplementedError


def winograd_tile(d, g):
    """A 2x2 output tile of the 3x3 correlation of a 4x4 patch d with g (3, 3), with 16 multiplications.

    y[i, j] = sum over a, b of g[a, b] d[i + a, j + b] -> y (2, 2).
    """
    # TODO: the 1-D transforms nested: B^T d B for the patch, G g G^T for the kernel, multiply
    # elementwise, and A^T ... A. (Use the matrices of the chapter.)
    raise NotImplementedError


EXERCISES = [(my_im2col, check_im2col), (winograd_1d, check_winograd_1d), (winograd_tile, check_winograd_tile)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
