"""Chapter 4, Speed: worked answers to the exercises in ``docs/exercises/ch04.py``.

Try the exercises first; then ``python docs/solutions/ch04.py`` runs each answer through its checker.
"""

import numpy as np

from minivgg.course.exercises import check_im2col, check_winograd_1d, check_winograd_tile, run_exercises

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def my_im2col(x):
    """One image (C, H, W) -> cols (C*9, H*W): ``cols[c*9 + dy*3 + dx, i*W + j] = xpad[c, i + dy, j + dx]``."""
    c, h, w = x.shape
    xpad = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.empty((c * 9, h * w), dtype=x.dtype)
    for channel in range(c):
        for dy in range(3):
            for dx in range(3):
                cols[channel * 9 + dy * 3 + dx] = xpad[channel, dy:dy + h, dx:dx + w].ravel()
    return cols


def winograd_1d(d, g):
    """Two outputs of a 3-tap correlation from four inputs, with four input-by-weight products.

    The weights' combinations ``(g0 + g1 + g2) / 2`` and ``(g0 - g1 + g2) / 2`` are computed
    once per kernel in a network, not once per pixel, so they cost nothing per output.
    """
    m1 = (d[0] - d[2]) * g[0]
    m2 = (d[1] + d[2]) * ((g[0] + g[1] + g[2]) / 2)
    m3 = (d[2] - d[1]) * ((g[0] - g[1] + g[2]) / 2)
    m4 = (d[1] - d[3]) * g[2]
    return np.array([m1 + m2 + m3, m2 - m3 - m4])


def winograd_tile(d, g):
    """A 2x2 output tile of a 3x3 correlation from its 4x4 input patch: ``A^T [(G g G^T) * (B^T d B)] A``."""
    return A_T @ ((G @ g @ G.T) * (B_T @ d @ B_T.T)) @ A_T.T


EXERCISES = [(my_im2col, check_im2col), (winograd_1d, check_winograd_1d), (winograd_tile, check_winograd_tile)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
