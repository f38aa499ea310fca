"""Chapter 4, Speed: worked answers to the exercises in ``docs/exercises/ch04.py``.

Try the exercises first; then ``python docs/solutions/ch04.py`` runs each answer through its checker.
"""

import numpy as np

from minivgg.course.exercises import check_im2col, check_winograd_image, check_winograd_row, run_exercises

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


def winograd_row(d, g):
    """The valid 3-tap correlation of a row d (n,), two outputs at a time, each pair from its 4 inputs by F(2, 3).

    Neighbouring pairs share two inputs (their windows overlap by two): the windows start
    every 2 inputs. The weights' transform ``G g`` is computed once, for every window.
    """
    u = G @ g
    return np.concatenate([A_T @ (u * (B_T @ d[i:i + 4])) for i in range(0, len(d) - 2, 2)])


def winograd_image(x, g):
    """The same-padded 3x3 correlation of one channel x (H, W), H and W even, one 2x2 output tile at a time.

    The tile whose top-left output is (i, j) needs the 4x4 patch of the padded image at
    rows i..i+3, columns j..j+3: ``A^T [(G g G^T) * (B^T d B)] A``, with ``G g G^T`` once.
    """
    h, w = x.shape
    xpad = np.pad(x, 1)
    u = G @ g @ G.T
    return np.vstack([np.hstack([A_T @ (u * (B_T @ xpad[i:i + 4, j:j + 4] @ B_T.T)) @ A_T.T for j in range(0, w, 2)])
                      for i in range(0, h, 2)])


EXERCISES = [(my_im2col, check_im2col), (winograd_row, check_winograd_row), (winograd_image, check_winograd_image)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
