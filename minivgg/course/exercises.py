"""Checkers for the exercises at the end of each chapter in ``docs/``.

Each ``check_*`` function calls your function on random inputs, compares what it returns
with minivgg's reference, prints what it found, and returns True or False::

    >>> from minivgg.course.exercises import check_dense_backward
    >>> check_dense_backward(my_dense_backward)          # doctest: +SKIP
    dense backward: dw has shape (3, 5), expected (5, 3): it looks transposed.

A mismatch is explained in words where a common mistake can be recognised (a
transposed or mis-shaped result, a wrong sign, a constant factor, a missing sum over the
batch, ties in a max-pool window); otherwise the largest error and where it is.
"""

import itertools
from math import comb, factorial

import numpy as np

from minivgg.explain.checks import lesion_mass_ratio
from minivgg.explain.gradcam import GradCAM
from minivgg.nn import conv, dense, loss, pool
from minivgg.nn.model import VGG8

TOLERANCE = 1e-6


def _explain(what, got, expected):
    """None when ``got`` equals ``expected`` (relative error below TOLERANCE), else one sentence why not."""
    if got is None:
        return f"{what} is None; return an array of shape {np.shape(expected)}"
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        hint = ""
        if got.ndim == 2 and got.shape[::-1] == expected.shape:
            hint = ": it looks transposed"
        elif got.size == expected.size:
            hint = ": the right number of values in the wrong shape (a reshape or a transpose missing?)"
        elif expected.ndim and got.shape == expected.shape[1:]:
            hint = ": one axis short (a sum over the batch where none belongs?)"
        return f"{what} has shape {got.shape}, expected {expected.shape}{hint}"
    scale = max(np.abs(expected).max(initial=0), 1e-12)
    err = np.abs(got - expected).max(initial=0) / scale
    if err <= TOLERANCE:
        return None
    if np.abs(got + expected).max(initial=0) / scale <= TOLERANCE:
        return f"{what} has the wrong sign everywhere"
    flat = expected.reshape(-1)
    nonzero = np.abs(flat) > 1e-9 * scale
    if nonzero.any():
        ratio = got.reshape(-1)[nonzero] / flat[nonzero]
        if np.ptp(ratio) <= 1e-6 * max(1.0, abs(ratio[0])):
            return f"{what} is off by a constant factor of {ratio[0]:.4g}"
    where = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
    return (f"{what} differs: largest relative error {err:.2e} at index {tuple(int(i) for i in where)} "
            f"(yours {got[where]:.6g}, expected {expected[where]:.6g})")


def _report(title, problems):
    problems = [p for p in problems if p]
    if problems:
        print(f"{title}: " + "; ".join(problems) + ".")
        return False
    print(f"{title}: correct.")
    return True


def _as_tuple(result, n, title):
    if not isinstance(result, tuple) or len(result) != n:
        print(f"{title}: return a tuple of {n} arrays, got {type(result).__name__}"
              + (f" of length {len(result)}" if isinstance(result, tuple) else ""))
        return None
    return result


# ------------------------------------------------------------------ chapter 1: one layer


def check_dense_backward(fn, seed=0):
    """``fn(dout, x, w) -> (dx, dw, db)`` for ``out = x @ w.T + b`` (see :mod:`minivgg.nn.dense`)."""
    rng = np.random.default_rng(seed)
    x, w, dout = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal((4, 3))
    got = _as_tuple(fn(dout, x, w), 3, "dense backward")
    if got is None:
        return False
    expected = dense.dense_backward_naive(dout, x, w)
    return _report("dense backward", [_explain(n, g, e) for n, g, e in zip(("dx", "dw", "db"), got, expected)])


def check_conv_backward(fn, seed=0):
    """``fn(dout, x, w) -> (dx, dw, db)`` for a same-padded 3x3 convolution (see :mod:`minivgg.nn.conv`)."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 5, 4))
    got = _as_tuple(fn(dout, x, w), 3, "conv backward")
    if got is None:
        return False
    expected = conv.conv3x3_backward_naive(dout, x, w)
    problems = [_explain(n, g, e) for n, g, e in zip(("dx", "dw", "db"), got, expected)]
    if problems[0] and np.shape(got[0]) == expected[0].shape:
        flipped = conv.conv3x3_forward_naive(dout, np.ascontiguousarray(w.transpose(1, 0, 2, 3)), np.zeros(3))
        if _explain("dx", got[0], flipped) is None:
            problems[0] = "dx uses the kernel without rotating it by 180 degrees (w[..., ::-1, ::-1])"
    return _report("conv backward", problems)


def check_maxpool_backward(fn, seed=0):
    """``fn(dout, x) -> dx`` for 2x2 max-pooling; windows with ties must send the gradient to one element only."""
    rng = np.random.default_rng(seed)
    x = np.maximum(np.round(rng.standard_normal((2, 3, 6, 4)) * 2), 0)          # many ties, some all-zero windows
    dout = rng.standard_normal((2, 3, 3, 2))
    got = fn(dout, x)
    expected = pool.maxpool2x2_backward_naive(dout, x)
    problem = _explain("dx", got, expected)
    if problem and np.shape(got) == expected.shape:
        # The usual mistake: every element equal to its window's maximum gets the gradient.
        window_max = np.repeat(np.repeat(pool.maxpool2x2_forward_naive(x), 2, axis=2), 2, axis=3)
        to_every_tie = np.where(x == window_max, np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3), 0)
        if _explain("dx", got, to_every_tie) is None:
            problem = ("a window with several equal maxima passes its gradient to each of them; give it to the "
                       "first one only (row-major order), so that each window's gradients still sum to dout")
    return _report("max-pool backward", [problem])


# ------------------------------------------------------------------ chapter 2: VGG8


def check_im2col(fn, seed=0):
    """``fn(x) -> cols`` for one image x (C, H, W): cols (C*9, H*W) as in :func:`minivgg.nn.conv.im2col3x3`."""
    x = np.random.default_rng(seed).standard_normal((2, 4, 5))
    expected = np.empty((18, 20))
    conv.im2col3x3(x, expected, 0, 4)
    return _report("im2col", [_explain("cols", fn(x), expected)])


def check_output_shapes(fn):
    """``fn(image_size, channels) -> list of (C, H, W)``: the output of each of VGG8's five blocks."""
    problems = []
    for size, channels in ((224, (64, 128, 256, 256, 512, 512, 512, 512)), (64, (4, 8, 8, 8, 16, 16, 16, 16))):
        model = VGG8(channels=channels, hidden=8, image_size=size)
        names = model.layer_names
        blocks = [names[i] for i in range(len(names)) if names[i].startswith("features") and
                  type(model[names[i]]).__name__ == "MaxPool2x2"]
        _, outputs = model.infer(np.zeros((1, 3, size, size), np.float32), capture=blocks)
        expected = [tuple(outputs[n].shape[1:]) for n in blocks]
        got = [tuple(int(v) for v in s) for s in fn(size, channels)]
        if got != expected:
            problems.append(f"for {size} px you gave {got}, expected {expected}")
    return _report("block output shapes", problems)


def check_parameter_count(fn):
    """``fn(channels, hidden, image_size, num_classes) -> int``: the number of parameters of that VGG8."""
    problems = []
    for channels, hidden, size, classes in (((64, 128, 256, 256, 512, 512, 512, 512), 512, 224, 2),
                                            ((4, 8, 8, 8, 16, 16, 16, 16), 32, 64, 3)):
        expected = VGG8(channels=channels, hidden=hidden, image_size=size, num_classes=classes).num_parameters()
        got = fn(channels, hidden, size, classes)
        if got != expected:
            hint = " (the biases?)" if 0 < expected - got < 10_000 else ""
            problems.append(f"{got:,} for channels {channels}, expected {expected:,}{hint}")
    return _report("parameter count", problems)


# ------------------------------------------------------------------ chapter 3: training


def check_softmax_cross_entropy(fn, seed=0):
    """``fn(logits, y) -> (loss, dlogits)``: the mean cross-entropy and its gradient (see :mod:`minivgg.nn.loss`)."""
    rng = np.random.default_rng(seed)
    logits, y = rng.standard_normal((5, 3)) * 3, np.array([0, 2, 1, 1, 0])
    got = _as_tuple(fn(logits, y), 2, "softmax cross-entropy")
    if got is None:
        return False
    expected = loss.softmax_cross_entropy(logits, y)
    problems = [_explain("loss", got[0], expected[0]), _explain("dlogits", got[1], expected[1])]
    big = np.array([[1000.0, -1000.0]])
    try:
        stable = np.isfinite(fn(big, np.array([1]))[0])
    except FloatingPointError:
        stable = False
    if not stable:
        problems.append("logits of 1000 overflow: subtract each row's maximum before exp")
    return _report("softmax cross-entropy", problems)


def check_sgd_momentum_step(fn, seed=0):
    """``fn(p, g, velocity, lr, momentum) -> (p, velocity)``: one step of PyTorch's SGD with momentum (no dampening).

    PyTorch: velocity = g on the first step (velocity None), else momentum * velocity + g; p -= lr * velocity.
    """
    rng = np.random.default_rng(seed)
    p0, grads = rng.standard_normal(6), [rng.standard_normal(6) for _ in range(3)]
    p, v = p0.copy(), None
    ref_p, ref_v = p0.copy(), None
    problems = []
    for t, g in enumerate(grads, 1):
        got = _as_tuple(fn(p.copy(), g, None if v is None else v.copy(), 0.1, 0.9), 2, "SGD step")
        if got is None:
            return False
        ref_v = g.copy() if ref_v is None else 0.9 * ref_v + g
        ref_p = ref_p - 0.1 * ref_v
        problems += [_explain(f"p after step {t}", got[0], ref_p), _explain(f"velocity after step {t}", got[1], ref_v)]
        p, v = ref_p.copy(), ref_v.copy()           # continue from the right state
    return _report("SGD with momentum", problems)


# ------------------------------------------------------------------ chapters 4 and 5: explanations


def check_gradcam(fn, seed=0):
    """``fn(model, x, target, layer) -> (N, h, w)``: the low-resolution Grad-CAM maps at ``layer``."""
    model = VGG8(channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=8, image_size=64, dtype=np.float64, seed=seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, 64, 64))
    problems = []
    for layer in ("features.19", "features.14"):
        expected = GradCAM(model, layer)(x, 1).low_res
        problem = _explain(f"map at {layer}", fn(model, x, 1, layer), expected)
        if problem and "differs" in problem:
            problem += " (weights: mean gradient over each channel's pixels; then a ReLU of the weighted sum)"
        problems.append(problem)
    return _report("Grad-CAM", problems)


def check_shapley_kernel_weight(fn):
    """``fn(m, s) -> float``: the Shapley kernel weight of one coalition of size s among m players."""
    problems = []
    for m, s in ((4, 1), (6, 3), (10, 2)):
        expected = (m - 1) / (comb(m, s) * s * (m - s))
        problems.append(_explain(f"weight({m}, {s})", fn(m, s), expected))
    return _report("Shapley kernel weight", problems)


def check_shapley_values(fn, seed=0):
    """``fn(value, m) -> phi (m,)``: exact Shapley values of the game ``value(z)`` (z: tuple of m 0/1)."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(4), rng.standard_normal((4, 4))

    def value(z):
        z = np.asarray(z, dtype=float)
        return float(z @ a + z @ b @ z)
    expected = np.zeros(4)
    for i in range(4):
        others = [j for j in range(4) if j != i]
        for size in range(4):
            for s in itertools.combinations(others, size):
                without = np.zeros(4)
                without[list(s)] = 1
                with_i = without.copy()
                with_i[i] = 1
                expected[i] += factorial(size) * factorial(3 - size) / factorial(4) * (value(with_i) - value(without))
    got = fn(value, 4)
    problem = _explain("phi", got, expected)
    if problem is None and abs(np.sum(got) - (value((1,) * 4) - value((0,) * 4))) > 1e-9:
        problem = "the values do not add up to v(all) - v(none)"
    return _report("Shapley values", [problem])


def check_lesion_mass_ratio(fn, seed=0):
    """``fn(saliency, mask) -> float``: positive map mass on the mask / the mask's share of the pixels."""
    rng = np.random.default_rng(seed)
    problems = []
    for case in range(3):
        saliency = rng.standard_normal((16, 16))
        mask = rng.random((16, 16)) < 0.1 + 0.2 * case
        problem = _explain(f"ratio (case {case + 1})", fn(saliency, mask), lesion_mass_ratio(saliency, mask))
        if problem and "differs" in problem:
            problem += " (only the positive part of the map counts: clip it at 0 first)"
        problems.append(problem)
    return _report("lesion mass ratio", problems)


def check_twin_swap_image(fn, seed=0):
    """``fn(image, twin, mask) -> image``: the RA image with its twin's pixels pasted into the mask."""
    rng = np.random.default_rng(seed)
    image, twin = rng.random((2, 12, 12))
    mask = rng.random((12, 12)) < 0.3
    problem = _explain("swapped image", fn(image, twin, mask), np.where(mask, twin, image))
    if problem and "differs" in problem and np.allclose(fn(image, twin, mask), np.where(mask, image, twin)):
        problem = "the twin's pixels went outside the mask and the image's inside: swap the two"
    return _report("twin swap", [problem])
