"""Chapter 4, Speed: exercises. Replace each TODO, then run ``python docs/exercises/ch04.py``.

Each checker calls your function on inputs of its own and says in words what differs; the
Winograd checkers also count your multiplications of an input by a weight.
Worked answers: ``docs/solutions/ch04.py`` (look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg.course.exercises import check_im2col, check_winograd_image, check_winograd_row, run_exercises
from minivgg.nn.winograd import A_T, B_T, G  # noqa: F401 (the chapter's matrices, for your answers)


def my_im2col(x):
    """One image x (C, H, W) -> cols (C*9, H*W) with ``cols[c*9 + dy*3 + dx, i*W + j] = xpad[c, i + dy, j + dx]``.

    xpad is x with one row/column of zeros on every side, so that
    ``w.reshape(K, C*9) @ my_im2col(x)`` is the convolution, (K, H*W).
    """
    # TODO: one row of cols per (channel, tap): the shifted window of xpad, flattened.
    raise NotImplementedError


def winograd_row(d, g):
    """All outputs ``y[i] = g[0] d[i] + g[1] d[i+1] + g[2] d[i+2]``, i = 0 .. n - 3, of a row d (n,), n - 2 even.

    Two outputs at a time by F(2, 3), with 2 multiplications of an input by a weight per
    output (the direct sum takes 3). Multiplications among the weights alone (such as
    ``(g[0] + g[1] + g[2]) / 2``) do not count: a network computes them once per kernel.
    """
    # TODO: which 4 inputs does each pair of outputs need, and where does the next pair's window start?
    raise NotImplementedError


def winograd_image(x, g):
    """The same-padded 3x3 correlation of one channel x (H, W), H and W even, with g (3, 3) -> y (H, W).

    ``y[i, j] = sum over a, b of g[a, b] xpad[i + a, j + b]``, one 2x2 output tile at a time
    by F(2x2, 3x3): 4 multiplications of an input by a weight per output (the direct sum takes 9).
    """
    # TODO: pad x by one pixel; each 2x2 output tile comes from a 4x4 patch of the padded image.
    # Use the matrices of the chapter.
    raise NotImplementedError


EXERCISES = [(my_im2col, check_im2col), (winograd_row, check_winograd_row),
             (winograd_image, check_winograd_image)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
