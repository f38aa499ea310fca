"""Chapter 1, One layer: worked answers to the exercises in ``docs/exercises/ch01.py``.

Try the exercises first; then ``python docs/solutions/ch01.py`` runs each answer through its checker.
"""

import numpy as np

from minivgg.course.exercises import check_conv_backward, check_dense_backward, check_maxpool_backward, run_exercises


def dense_backward(dout, x, w):
    """Gradients of ``out = x @ w.T + b``: dx (N, D), dw (O, D), db (O,).

    Each gradient has the shape of what it is the gradient of, and one product gives it.
    """
    return dout @ w, dout.T @ x, dout.sum(axis=0)


def correlate3x3(x, w):
    """Same-padded 3x3 correlation, (N, C, H, W) with (K, C, 3, 3) -> (N, K, H, W): the conv layer's forward pass."""
    h, wd = x.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return sum(np.einsum("nchw,kc->nkhw", xpad[:, :, dy:dy + h, dx:dx + wd], w[:, :, dy, dx])
               for dy in range(3) for dx in range(3))


def conv_backward(dout, x, w):
    """Gradients of a same-padded 3x3 convolution: dx (N, C, H, W), dw (K, C, 3, 3), db (K,).

    ``dw[k, c, dy, dx]`` sums ``dout[n, k]`` times the input window that tap (dy, dx) saw.
    ``dx`` is a convolution too: of ``dout`` with each kernel rotated by 180 degrees and
    its in/out channels swapped (a pixel reaches the output through the mirrored taps).
    """
    h, wd = x.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dw = np.empty_like(w)
    for dy in range(3):
        for dx in range(3):
            dw[:, :, dy, dx] = np.einsum("nkhw,nchw->kc", dout, xpad[:, :, dy:dy + h, dx:dx + wd])
    rotated = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)          # (C, K, 3, 3)
    return correlate3x3(dout, rotated), dw, dout.sum(axis=(0, 2, 3))


def maxpool_backward(dout, x):
    """Gradient of 2x2 max-pooling: each window's gradient goes to its first maximum (row-major order)."""
    n, c, h, w = x.shape
    # (n, c, h/2, w/2, 4): the four values of each window, in row-major order.
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    winner = windows.argmax(axis=-1)                 # argmax returns the first of equal maxima
    dwindows = np.zeros_like(windows)
    np.put_along_axis(dwindows, winner[..., None], dout[..., None], axis=-1)
    return dwindows.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


EXERCISES = [(dense_backward, check_dense_backward), (conv_backward, check_conv_backward),
             (maxpool_backward, check_maxpool_backward)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
