"""Checkers for the exercises of the course in ``docs/``.

Each ``check_*`` function calls your function on inputs of its own, compares what it
returns with minivgg's reference, prints one line saying what it found, and returns True
or False. Here a dense layer's backward pass with ``dw`` transposed:

>>> from minivgg.course.exercises import check_dense_backward
>>> def my_dense_backward(dout, x, w):
...     return dout @ w, x.T @ dout, dout.sum(axis=0)
>>> check_dense_backward(my_dense_backward)
dense backward: dw has shape (5, 3), expected (3, 5): it looks transposed.
False

The stubs in ``docs/exercises/chNN.py`` hold one function per exercise, each raising
``NotImplementedError`` until you write it, and the list of their checkers;
``python docs/exercises/ch01.py`` runs them (:func:`run_exercises`). Worked answers are in
``docs/solutions/``.

A mismatch is put in words where a usual mistake can be recognised, and each hint first
tests its own premise: "a constant factor" only when your answer is zero exactly where
the reference is (a missing ReLU is not a factor of 1), a transposed or mis-shaped array,
an extra batch axis or a missing sum over the batch, a wrong sign, an integer division,
``log(0)`` or an overflowing ``exp``; and, per exercise, the mistakes people make there
(uniform weights for Shapley values, the first conv's width for a block's, a forgotten
kernel rotation ...). Otherwise it names the largest error and where it is.
``tests/test_course.py`` keeps each of those mistakes and asserts its hint.
"""

import functools
import itertools
import traceback
from math import comb, factorial
from pathlib import Path

import numpy as np

from minivgg.explain.checks import lesion_mass_ratio
from minivgg.explain.gradcam import GradCAM
from minivgg.explain.shapley import simultaneous_z
from minivgg.nn import activation, conv, dense, loss, pool
from minivgg.nn.model import VGG8, Tape, vgg8_layout

TOLERANCE = 1e-6


class WrongAnswer(Exception):
    """What a checker says when it cannot even compare: a function not written yet, an error, a wrong type."""


def checker(title):
    """Make a checker out of ``check(fn, ...) -> list of problems (None for none)``.

    The checker prints ``"<title>: correct."`` or ``"<title>: <problems>."`` and returns
    True or False. A :class:`WrongAnswer` raised on the way is its one problem.
    """
    def wrap(check):
        @functools.wraps(check)
        def run(fn, *args, **kwargs):
            try:
                problems = [p for p in check(fn, *args, **kwargs) if p]
            except WrongAnswer as e:
                problems = [str(e)]
            print(f"{title}: " + ("; ".join(problems) if problems else "correct") + ".")
            return not problems
        run.title = title
        return run
    return wrap


def _call(fn, *args):
    """``fn(*args)``; a stub's NotImplementedError or an error in ``fn`` becomes a :class:`WrongAnswer` in words."""
    name = getattr(fn, "__name__", "your function")
    try:
        with np.errstate(all="ignore"):             # overflow and log(0) are found by their results, not warnings
            return fn(*args)
    except NotImplementedError:
        raise WrongAnswer(f"not written yet ({name} raises NotImplementedError: replace its TODO with your code)"
                          ) from None
    except Exception as e:                         # any error in the learner's code, told with its line
        code = getattr(fn, "__code__", None)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if code and f.filename == code.co_filename]
        where = f" (line {frames[-1].lineno} of {Path(frames[-1].filename).name})" if frames else ""
        raise WrongAnswer(f"{name} raised {type(e).__name__}: {e}{where}") from None


def _matches(got, expected):
    """True when ``got`` has ``expected``'s shape and values (relative error at most TOLERANCE)."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    scale = max(np.abs(expected).max(initial=0), 1e-12)
    return bool(np.all(np.isfinite(got))) and np.abs(got - expected).max(initial=0) <= TOLERANCE * scale


def _shape_hint(got, expected):
    """Why an array of shape ``got`` may have come out instead of ``expected``."""
    if len(got) == 2 and got[::-1] == expected:
        return ": it looks transposed"
    if len(got) == len(expected) + 1 and got[1:] == expected:
        if got[0] == 1:
            return ": an extra axis of length 1 in front (a batch axis left in? take [0])"
        return f": one axis too many in front, of length {got[0]} (the sum over the batch, axis 0, is missing?)"
    if len(got) == len(expected) + 1 and got[:-1] == expected and got[-1] == 1:
        return ": an extra axis of length 1 at the end (keepdims=True where none belongs?)"
    if len(expected) and got == expected[1:]:
        return ": one axis short (a sum over the batch where none belongs?)"
    if not got:
        return ": a single number where an array belongs (a sum over everything?)"
    if int(np.prod(got)) == int(np.prod(expected)):
        return ": the right number of values in the wrong shape (a reshape or a transpose missing?)"
    return ""


def _explain_number(what, got, expected):
    """None when the numbers agree, else what differs: scalars have no "constant factor" (any two differ by one)."""
    if abs(got - expected) <= TOLERANCE * max(abs(expected), 1e-12):
        return None
    if not np.isfinite(got):
        return f"{what} is {got}, expected {expected:.6g}"
    if got == 0:
        return f"{what} is 0, expected {expected:.6g} (an integer division? // rounds down: use /)"
    if abs(got + expected) <= TOLERANCE * abs(expected):
        return f"{what} is {got:.6g}, expected {expected:.6g}: the wrong sign"
    return f"{what} is {got:.6g}, expected {expected:.6g}"


def _explain(what, got, expected):
    """None when ``got`` equals ``expected`` (relative error at most TOLERANCE), else one sentence why not."""
    if got is None:
        return f"{what} is None; return an array of shape {np.shape(expected)}"
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{what} is a {type(got).__name__}, not an array of numbers"
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        if got.size == 1 and expected.size == 1:
            got = got.reshape(expected.shape)
        else:
            return f"{what} has shape {got.shape}, expected {expected.shape}{_shape_hint(got.shape, expected.shape)}"
    if expected.ndim == 0:
        return _explain_number(what, float(got), float(expected))
    scale = max(np.abs(expected).max(initial=0), 1e-12)
    err = np.abs(got - expected).max(initial=0) / scale
    if err <= TOLERANCE:
        return None
    bad = ~np.isfinite(got)
    if bad.any():
        return f"{what} has {int(bad.sum())} non-finite values (inf or NaN) of {got.size}"
    if np.abs(got + expected).max(initial=0) / scale <= TOLERANCE:
        return f"{what} has the wrong sign everywhere"
    if not got.any():
        return f"{what} is zero everywhere (an integer division, such as 1 // n? an array never filled in?)"
    # A constant factor is only a factor where the zeros agree: a map that should be
    # clipped at 0 agrees with the reference wherever that is non-zero, with a "factor" of 1.
    zero = np.abs(expected) <= 1e-9 * scale
    got_zero = np.abs(got) <= 1e-9 * np.abs(got).max()
    if (zero == got_zero).all() and (~zero).sum() >= 2:
        ratio = got[~zero] / expected[~zero]
        if np.ptp(ratio) <= 1e-6 * np.abs(ratio).max():
            return f"{what} is off by a constant factor of {ratio.mean():.4g}"
    if zero.any() and not zero.all() and _matches(got[~zero], expected[~zero]):
        if (got[zero] <= 0).all():
            return f"{what} has negative values where the reference is 0: a clip at 0 (a ReLU) is missing"
        return f"{what} is right wherever the reference is non-zero, but not 0 where it is 0"
    where = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
    return (f"{what} differs: largest relative error {err:.2e} at index {tuple(int(i) for i in where)} "
            f"(yours {got[where]:.6g}, expected {expected[where]:.6g})")


def _as_tuple(result, n):
    """``result`` as a tuple of ``n`` items, or a :class:`WrongAnswer` saying what came back instead."""
    if isinstance(result, (tuple, list)) and len(result) == n:
        return tuple(result)
    got = type(result).__name__ + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
    raise WrongAnswer(f"return a tuple of {n} values, got {got}")


def run_exercises(exercises):
    """Run ``[(your function, its checker), ...]``, printing each verdict and a total; True when all pass."""
    passed = sum(bool(check(fn)) for fn, check in exercises)
    print(f"{passed} of {len(exercises)} correct.")
    return passed == len(exercises)


# ------------------------------------------------------------------ chapter 1: one layer


@checker("dense backward")
def check_dense_backward(fn, seed=0):
    """``fn(dout, x, w) -> (dx, dw, db)`` for ``out = x @ w.T + b`` (see :mod:`minivgg.nn.dense`)."""
    rng = np.random.default_rng(seed)
    x, w, dout = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal((4, 3))
    got = _as_tuple(_call(fn, dout, x, w), 3)
    expected = dense.dense_backward_naive(dout, x, w)
    return [_explain(n, g, e) for n, g, e in zip(("dx", "dw", "db"), got, expected)]


@checker("conv backward")
def check_conv_backward(fn, seed=0):
    """``fn(dout, x, w) -> (dx, dw, db)`` for a same-padded 3x3 convolution (see :mod:`minivgg.nn.conv`)."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 5, 4))
    got = _as_tuple(_call(fn, dout, x, w), 3)
    expected = conv.conv3x3_backward_naive(dout, x, w)
    problems = [_explain(n, g, e) for n, g, e in zip(("dx", "dw", "db"), got, expected)]
    # The usual mistake: dx as a convolution of dout with the kernel as it is, not rotated.
    unrotated = conv.conv3x3_forward_naive(dout, np.ascontiguousarray(w.transpose(1, 0, 2, 3)), np.zeros(3))
    if problems[0] and _matches(got[0], unrotated):
        problems[0] = "dx uses the kernel without rotating it by 180 degrees (w[..., ::-1, ::-1])"
    return problems


@checker("max-pool backward")
def check_maxpool_backward(fn, seed=0):
    """``fn(dout, x) -> dx`` for 2x2 max-pooling; windows with ties must send the gradient to one element only."""
    rng = np.random.default_rng(seed)
    x = np.maximum(np.round(rng.standard_normal((2, 3, 6, 4)) * 2), 0)          # many ties, some all-zero windows
    dout = rng.standard_normal((2, 3, 3, 2))
    got = _call(fn, dout, x)
    problem = _explain("dx", got, pool.maxpool2x2_backward_naive(dout, x))
    # The usual mistake: every element equal to its window's maximum gets the gradient.
    window_max = np.repeat(np.repeat(pool.maxpool2x2_forward_naive(x), 2, axis=2), 2, axis=3)
    if problem and _matches(got, np.where(x == window_max, np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3), 0)):
        problem = ("a window with several equal maxima passes its gradient to each of them; give it to the "
                   "first one only (row-major order), so that each window's gradients still sum to dout")
    return [problem]


# ------------------------------------------------------------------ chapter 2: a small network


@checker("ReLU backward")
def check_relu_backward(fn, seed=0):
    """``fn(dout, x) -> dx`` for ``out = max(x, 0)``; at x == 0 exactly the derivative is 0 (PyTorch's convention)."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((4, 6)), 1)
    x[0, :3] = 0.0                                          # exact zeros: the kink
    dout = rng.standard_normal((4, 6))
    got = _call(fn, dout, x)
    problem = _explain("dx", got, activation.relu_backward_naive(dout, np.maximum(x, 0)))
    if problem and _matches(got, dout * (dout > 0)):
        problem = "dx keeps dout where dout > 0; the gate is the input: keep dout where x > 0"
    elif problem and _matches(got, dout * (x >= 0)):
        problem = "dx passes the gradient where x == 0 exactly; the kink's derivative is taken as 0 (use x > 0)"
    elif problem and _matches(got, dout * np.maximum(x, 0)):
        problem = "dx multiplies dout by the output max(x, 0); the derivative of ReLU is 0 or 1, not x"
    return [problem]


def two_layer_net_reference(x, y, params):
    """``(loss, grads)`` of the affine-ReLU-affine-softmax net of chapter 2, from minivgg's own kernels."""
    hidden_in = dense.dense_forward_naive(x, params["w1"], params["b1"])
    hidden = activation.relu_forward_naive(hidden_in)
    scores = dense.dense_forward_naive(hidden, params["w2"], params["b2"])
    value, dscores = loss.softmax_cross_entropy(scores, y)
    dhidden, dw2, db2 = dense.dense_backward_naive(dscores, hidden, params["w2"])
    dhidden_in = activation.relu_backward_naive(dhidden, hidden)
    _, dw1, db1 = dense.dense_backward_naive(dhidden_in, x, params["w1"])
    return value, {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}


@checker("two-layer net")
def check_two_layer_net(fn, seed=0):
    """``fn(x, y, params) -> (loss, grads)``: the mean softmax cross-entropy of ``affine -> ReLU -> affine`` and
    ``grads``, a dict with the gradient of every entry of ``params`` (``w1`` (H, D), ``b1``, ``w2`` (K, H), ``b2``)."""
    rng = np.random.default_rng(seed)
    n, d, h, k = 6, 5, 7, 3
    params = {"w1": rng.standard_normal((h, d)), "b1": rng.standard_normal(h), "w2": rng.standard_normal((k, h)),
              "b2": rng.standard_normal(k)}
    x, y = rng.standard_normal((n, d)), rng.integers(0, k, n)
    value, grads = _as_tuple(_call(fn, x, y, {name: p.copy() for name, p in params.items()}), 2)
    ref_value, ref_grads = two_layer_net_reference(x, y, params)
    if not isinstance(grads, dict):
        raise WrongAnswer(f"grads must be a dict {{'w1': ..., 'b1': ..., 'w2': ..., 'b2': ...}}, got "
                          f"{type(grads).__name__}")
    missing = [name for name in ref_grads if name not in grads]
    if missing:
        raise WrongAnswer(f"grads has no {', '.join(missing)}")
    problems = [_explain("loss", value, ref_value)]
    if problems[0] and _matches(value, ref_value * n):
        problems[0] = f"the loss is the sum over the {n} examples; take the mean"
    problems += [_explain(f"d{name}", grads[name], ref_grads[name]) for name in ref_grads]
    # The usual mistake: the gradient goes back through the ReLU as if it were the identity.
    hidden_in = x @ params["w1"].T + params["b1"]
    ungated = (loss.softmax_cross_entropy(np.maximum(hidden_in, 0) @ params["w2"].T + params["b2"], y)[1]
               @ params["w2"])
    if problems[1] and _matches(grads["w1"], ungated.T @ x):
        problems[1] = "dw1 ignores the ReLU: the gradient must be 0 where a hidden unit was off (its input <= 0)"
    return problems


def _small_model(seed):
    """A float64 VGG8 at 64 pixels, with random weights: small enough for a checker's second."""
    return VGG8(channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=8, image_size=64, dtype=np.float64, seed=seed)


def _gradient_at(model, x, layer, dlogits_of):
    """``(gradient at layer's output, layer's output)`` for the backward pass started from ``dlogits_of(logits)``."""
    tape = Tape(watch={layer})
    logits = model.forward(x, tape=tape)
    grad, _ = model.backward(dlogits_of(logits), tape, stop_at=layer)
    return grad, tape.outputs[layer]


def _one_hot(target):
    """``dlogits_of`` for the target's logit itself: 1 at the target, 0 elsewhere."""
    def dlogits_of(logits):
        d = np.zeros_like(logits)
        d[:, target] = 1.0
        return d
    return dlogits_of


@checker("gradient at a layer")
def check_layer_gradient(fn, seed=0):
    """``fn(model, x, target, layer) -> (N, ...)``: the gradient of each image's ``target`` logit at ``layer``'s
    output."""
    model = _small_model(seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, 64, 64))
    for layer in ("features.14", "classifier.4"):
        expected, output = _gradient_at(model, x, layer, _one_hot(1))
        got = _call(fn, model, x, 1, layer)
        problem = _explain(f"the gradient at {layer}", got, expected)
        of_the_loss, _ = _gradient_at(model, x, layer, lambda z: loss.softmax_cross_entropy(z, np.ones(len(z), int))[1])
        if problem and np.shape(got) == x.shape:
            problem = (f"the gradient at {layer} has the input's shape {x.shape}: that is dL/dx; end the backward "
                       f"pass at the layer (backward(..., stop_at=layer))")
        elif problem and _matches(got, output):
            problem = f"that is {layer}'s output (tape.outputs), not the gradient that reaches it"
        elif problem and _matches(got, of_the_loss):
            problem = (f"the gradient at {layer} is that of the loss; start from a one-hot dlogits (1 at the target, "
                       f"0 elsewhere): the gradient of the target's logit")
        if problem:
            return [problem]              # the next layer would only repeat the same mistake
    return []


# ------------------------------------------------------------------ chapter 3: VGG8


@checker("block output shapes")
def check_output_shapes(fn):
    """``fn(image_size, channels) -> list of (C, H, W)``: the output of each of VGG8's five blocks.

    Every layer has its own width here, so that a block's width must be taken from its last conv.
    """
    for size, channels in ((64, (4, 5, 6, 7, 9, 10, 11, 12)), (224, (64, 128, 256, 256, 512, 512, 512, 512))):
        pools = [s for s in vgg8_layout(channels=channels, image_size=size) if s.kind == "pool"]
        expected = [s.shape for s in pools]
        try:
            got = [tuple(int(v) for v in s) for s in _call(fn, size, channels)]
        except TypeError:
            raise WrongAnswer("return a list of five (C, H, W) tuples") from None
        if got == expected:
            continue
        first_convs = [channels[0], channels[1], channels[2], channels[4], channels[6]]
        hint = ""
        if [c for c, _, _ in got] == first_convs:
            hint = (": blocks 3-5 have two convs each, and a block's output has the width of its last conv "
                    "(channels[3], [5], [7])")
        elif [h for _, h, _ in got] == [size // 2 ** i for i in range(5)]:
            hint = ": each block ends with a 2x2 max-pool, so block 1's output is already S/2 wide"
        return [f"for {size} px and channels {channels} you gave {got}, expected {expected}{hint}"]
    return []


@checker("parameter count")
def check_parameter_count(fn):
    """``fn(channels, hidden, image_size, num_classes) -> int``: the number of parameters of that VGG8."""
    for channels, hidden, size, classes in (((4, 5, 6, 7, 9, 10, 11, 12), 32, 64, 3),
                                            ((64, 128, 256, 256, 512, 512, 512, 512), 512, 224, 2)):
        shapes = [shape for spec in vgg8_layout(classes, channels, hidden, size) for shape in spec.params.values()]
        expected = sum(int(np.prod(shape)) for shape in shapes)
        got = _call(fn, channels, hidden, size, classes)
        if got == expected:
            continue
        biases = sum(shape[0] for shape in shapes if len(shape) == 1)
        hint = " (the biases: one per output unit of every layer)" if got == expected - biases else ""
        return [f"{got:,} for channels {channels}, expected {expected:,}{hint}"]
    return []


def receptive_field(layers):
    """The side of the input square that one output cell sees, after ``layers`` ("conv" 3x3 or "pool" 2x2).

    A 3x3 conv widens the field by one step of its input on each side, a 2x2 pool by one
    step; each pool doubles the step (in input pixels) of everything after it.
    """
    field, step = 1, 1
    for kind in layers:
        field += (2 if kind == "conv" else 1) * step
        step *= 1 if kind == "conv" else 2
    return field


@checker("receptive field")
def check_receptive_field(fn):
    """``fn(layers) -> int``: the receptive field's side for a list of "conv" and "pool" layers (VGG8's, and others)."""
    kinds = [s.kind for s in vgg8_layout() if s.kind in ("conv", "pool")]
    cases = [kinds[:i + 1] for i, k in enumerate(kinds) if k == "pool"] + [["conv", "conv", "conv"],
                                                                            ["pool", "pool", "conv"]]
    for layers in cases:
        expected, got = receptive_field(layers), _call(fn, list(layers))
        if got == expected:
            continue
        hint = ""
        if got == 1 + sum(2 if k == "conv" else 1 for k in layers):
            hint = " (after a pool, one step of the next layer spans twice as many input pixels)"
        elif got == _no_pool_width(layers):
            hint = " (a 2x2 pool widens the field too, by one step of its input)"
        return [f"{got} for {' -> '.join(layers)}, expected {expected}{hint}"]
    return []


def _no_pool_width(layers):
    """The field when a pool doubles the step but adds nothing itself (a usual mistake)."""
    field, step = 1, 1
    for kind in layers:
        field, step = (field + 2 * step, step) if kind == "conv" else (field, 2 * step)
    return field


# ------------------------------------------------------------------ chapter 4: speed


@checker("im2col")
def check_im2col(fn, seed=0):
    """``fn(x) -> cols`` for one image x (C, H, W): cols (C*9, H*W) as in :func:`minivgg.nn.conv.im2col3x3`."""
    x = np.random.default_rng(seed).standard_normal((2, 4, 5))
    expected = np.empty((18, 20))
    conv.im2col3x3(x, expected, 0, 4)
    got = _call(fn, x)
    problem = _explain("cols", got, expected)
    if problem and np.shape(got) == expected.shape and _matches(np.sort(got, axis=0), np.sort(expected, axis=0)):
        problem = ("cols has the right values in each column, in another row order: row c*9 + dy*3 + dx holds "
                   "channel c at offset (dy - 1, dx - 1), to line up with w.reshape(K, C*9)")
    return [problem]


class Counted:
    """A number that counts, in ``tally``, each product of an input value and a weight (not a constant).

    The Winograd checkers pass your function inputs and weights made of these, so that
    ``d[0] * g[1]`` counts one multiplication while ``0.5 * g[1]`` (a constant times a
    weight, which a layer computes once per kernel, not per pixel) counts none.
    """

    def __init__(self, value, kinds, tally):
        self.value, self.kinds, self.tally = float(value), frozenset(kinds), tally

    def _with(self, value, kinds):
        return Counted(value, kinds, self.tally)

    def __add__(self, other):
        if isinstance(other, Counted):
            return self._with(self.value + other.value, self.kinds | other.kinds)
        return self._with(self.value + other, self.kinds)

    __radd__ = __add__

    def __neg__(self):
        return self._with(-self.value, self.kinds)

    def __pos__(self):
        return self

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, Counted):
            if {"input", "weight"} <= (self.kinds | other.kinds):
                self.tally[0] += 1
            return self._with(self.value * other.value, self.kinds | other.kinds)
        return self._with(self.value * other, self.kinds)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, Counted):
            return NotImplemented
        return self._with(self.value / other, self.kinds)


def _counted(values, kind, tally):
    return np.array([Counted(v, {kind}, tally) for v in np.ravel(values)], dtype=object).reshape(np.shape(values))


def _numbers(result):
    """A result built of :class:`Counted` (or plain numbers) as a float array."""
    return np.vectorize(lambda v: v.value if isinstance(v, Counted) else float(v), otypes=[float])(
        np.asarray(result, dtype=object))


def _winograd_check(fn, inputs, weights, direct, per_output):
    """Values on plain floats, then the multiplications counted on :class:`Counted` copies of the same numbers.

    ``per_output``: the input-by-weight products Winograd needs per output value (2 in one
    dimension, 4 in two); the direct sum needs one per weight.
    """
    expected = direct(inputs, weights)
    problems = [_explain("y", _call(fn, inputs, weights), expected)]
    if problems[0]:
        return problems
    tally = [0]
    try:
        got = _numbers(fn(_counted(inputs, "input", tally), _counted(weights, "weight", tally)))
    except (TypeError, ValueError, AttributeError):
        raise WrongAnswer("the values are right, but the multiplications could not be counted: work with the "
                          "entries as they come (d[i], g[j], or @ on them), without turning them into floats") from None
    if not _matches(got, expected):
        raise WrongAnswer("the values are right on floats but not on the counting numbers; use only +, -, * and /")
    least, direct_count = per_output * expected.size, weights.size * expected.size
    if tally[0] > least:
        how = "as many as the direct sum" if tally[0] == direct_count else f"the direct sum takes {direct_count}"
        return [f"right values with {tally[0]} multiplications of an input by a weight ({how}); Winograd needs "
                f"{least}, {per_output} per output: windows of 4 inputs (4x4 in 2-D) starting every 2, each "
                f"transformed (B^T d) and multiplied elementwise by the one transformed kernel (G g)"]
    return []


def _correlate_row(d, g):
    """The "valid" 3-tap correlation of a row: ``y[i] = sum_j g[j] d[i + j]``, i = 0 .. len(d) - 3."""
    return np.array([d[i:i + 3] @ g for i in range(len(d) - 2)])


def _correlate_image(x, g):
    """The same-padded 3x3 correlation of one single-channel image x (H, W)."""
    h, w = x.shape
    xpad = np.pad(x, 1)
    return np.array([[np.sum(xpad[i:i + 3, j:j + 3] * g) for j in range(w)] for i in range(h)])


@checker("Winograd along a row")
def check_winograd_row(fn, seed=0):
    """``fn(d, g) -> y`` (n - 2,): the valid 3-tap correlation of a row d (n,) with g (3,), two outputs at a time
    by F(2, 3): 2 input-by-weight products per output (the direct sum takes 3)."""
    rng = np.random.default_rng(seed)
    return _winograd_check(fn, rng.standard_normal(10), rng.standard_normal(3), _correlate_row, 2)


@checker("Winograd over an image")
def check_winograd_image(fn, seed=0):
    """``fn(x, g) -> y`` (H, W): the same-padded 3x3 correlation of one channel x (H, W), H and W even, by
    F(2x2, 3x3) tiles: 4 input-by-weight products per output (the direct sum takes 9)."""
    rng = np.random.default_rng(seed)
    return _winograd_check(fn, rng.standard_normal((4, 6)), rng.standard_normal((3, 3)), _correlate_image, 4)


# ------------------------------------------------------------------ chapter 5: training


@checker("softmax cross-entropy")
def check_softmax_cross_entropy(fn, seed=0):
    """``fn(logits, y) -> (loss, dlogits)``: the mean cross-entropy and its gradient (see :mod:`minivgg.nn.loss`)."""
    rng = np.random.default_rng(seed)
    logits, y = rng.standard_normal((5, 3)) * 3, np.array([0, 2, 1, 1, 0])
    got = _as_tuple(_call(fn, logits, y), 2)
    expected = loss.softmax_cross_entropy(logits, y)
    problems = [_explain("loss", got[0], expected[0]), _explain("dlogits", got[1], expected[1])]
    if problems[0] and _matches(got[0], expected[0] * len(y)):
        problems[0] = f"the loss is the sum over the {len(y)} examples; take the mean"
    if problems[1] and _matches(got[1], expected[1] * len(y)):
        problems[1] = f"dlogits is {len(y)} times too large: the loss is a mean, so divide by N"

    def finite_loss(z, label):
        try:
            return bool(np.isfinite(_as_tuple(_call(fn, np.array([z]), np.array([label])), 2)[0]))
        except WrongAnswer:
            return False
    # exp(1000) overflows unless each row's maximum is subtracted first; with it subtracted,
    # p = exp(-2000) still rounds to 0, and log(p) is -inf unless the log is taken of the
    # shifted logits directly (log-softmax).
    if not finite_loss([1000.0, 999.0], 0):
        problems.append("logits of 1000 overflow exp: subtract each row's maximum before exp")
    elif not finite_loss([1000.0, -1000.0], 1):
        problems.append("a probability that rounds to 0 gives log(0) = -inf: take the log-softmax as "
                        "shifted - log(sum(exp(shifted))), not the log of the softmax")
    return problems


@checker("SGD with momentum")
def check_sgd_momentum_step(fn, seed=0):
    """``fn(p, g, velocity, lr, momentum) -> (p, velocity)``: one step of PyTorch's SGD with momentum (no dampening).

    PyTorch: velocity = g on the first step (velocity None), else momentum * velocity + g; p -= lr * velocity.
    """
    rng = np.random.default_rng(seed)
    p0, grads = rng.standard_normal(6), [rng.standard_normal(6) for _ in range(3)]
    ref_p, ref_v = p0.copy(), None
    for t, g in enumerate(grads, 1):
        got = _as_tuple(_call(fn, ref_p.copy(), g, None if ref_v is None else ref_v.copy(), 0.1, 0.9), 2)
        dampened = 0.1 * g if ref_v is None else 0.9 * ref_v + 0.1 * g
        ref_v = g.copy() if ref_v is None else 0.9 * ref_v + g
        ref_p = ref_p - 0.1 * ref_v
        problem = _explain(f"velocity after step {t}", got[1], ref_v)
        if problem and _matches(got[1], dampened):
            problem = "the velocity adds (1 - momentum) * g (dampening); PyTorch's rule adds g itself"
        problem = problem or _explain(f"p after step {t}", got[0], ref_p)     # a wrong velocity makes p wrong too
        if problem:
            return [problem]              # later steps would only repeat the same mistake
    return []


# ------------------------------------------------------------------ chapter 6: Grad-CAM


@checker("Grad-CAM")
def check_gradcam(fn, seed=0):
    """``fn(model, x, target, layer) -> (N, h, w)``: the low-resolution Grad-CAM maps at ``layer``."""
    model = _small_model(seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, 64, 64))
    for layer in ("features.19", "features.14"):
        grads, a = _gradient_at(model, x, layer, _one_hot(1))
        signed = np.einsum("nk,nkhw->nhw", grads.mean(axis=(2, 3)), a)      # the map before its ReLU
        got = _call(fn, model, x, 1, layer)
        problem = _explain(f"map at {layer}", got, GradCAM(model, layer)(x, 1).low_res)
        if problem and _matches(got, np.maximum(-signed, 0)):
            problem = (f"map at {layer} has the channel weights' sign flipped: the weights are the mean gradient "
                       f"of the target's score (dlogits +1 at the target)")
        elif problem and _matches(got, np.maximum((grads * a).sum(axis=1), 0)):
            problem = (f"map at {layer} is HiResCAM (gradient times activation, position by position); Grad-CAM "
                       f"first averages each channel's gradient over its positions")
        elif problem and "differs" in problem:
            problem += " (weights: mean gradient over each channel's pixels; then a ReLU of the weighted sum)"
        if problem:
            return [problem]              # the next layer would only repeat the same mistake
    return []


@checker("gradient of a probability")
def check_probability_gradient(fn, seed=0):
    """``fn(logits, target) -> (N, K)``: d p_target / d logits for each row, p = softmax(logits)."""
    logits = np.random.default_rng(seed).standard_normal((4, 3)) * 2
    p = loss.softmax(logits)
    onehot = np.eye(3)[1]
    expected = p[:, 1:2] * (onehot - p)
    got = _call(fn, logits, 1)
    problem = _explain("dp/dlogits", got, expected)
    if problem and _matches(got, p - onehot):
        problem = "that is the gradient of the cross-entropy, p - onehot; the probability's is p_t (onehot - p)"
    elif problem and _matches(got, expected * onehot):
        problem = "the other logits move p_target too: d p_t / d z_j = -p_t p_j for j != t"
    return [problem]


@checker("map cell size")
def check_cell_size(fn):
    """``fn(model, layer) -> int``: how many input pixels one cell of ``layer``'s maps spans, along a side."""
    model = _small_model(0)
    for layer in ("features.1", "features.9", "features.14", "features.19"):
        _, out = model.infer(np.zeros((1, 3, 64, 64)), capture=[layer])
        expected = 64 // out[layer].shape[-1]
        got = _call(fn, model, layer)
        if got != expected:
            return [f"{got} pixels for {layer}, expected {expected} (the input's side over the map's)"]
    return []


# ------------------------------------------------------------------ chapter 7: Kernel-SHAP


@checker("Shapley kernel weight")
def check_shapley_kernel_weight(fn):
    """``fn(m, s) -> float``: the Shapley kernel weight of one coalition of size s among m players."""
    for m, s in ((4, 1), (6, 3), (10, 2)):
        problem = _explain(f"weight({m}, {s})", _call(fn, m, s), (m - 1) / (comb(m, s) * s * (m - s)))
        if problem:
            return [problem]
    return []


def _game(seed, m=5):
    """A game with interactions of every order up to m: on a quadratic one, uniform weights would pass."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(m), rng.standard_normal((m, m))
    triples = {t: rng.standard_normal() for t in itertools.combinations(range(m), 3)}
    everyone = rng.standard_normal()

    def value(z):
        z = np.asarray(z, dtype=float)
        return float(z @ a + z @ b @ z + sum(c * np.prod(z[list(t)]) for t, c in triples.items()) + everyone * z.prod())
    return value


def _weighted_marginals(value, m, weight):
    """``phi_i = sum over S without i of weight(|S|) (v(S + i) - v(S))``."""
    phi = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            for s in itertools.combinations(others, size):
                without = np.zeros(m, int)
                without[list(s)] = 1
                with_i = without.copy()
                with_i[i] = 1
                phi[i] += weight(size) * (value(tuple(with_i)) - value(tuple(without)))
    return phi


@checker("Shapley values")
def check_shapley_values(fn, seed=0):
    """``fn(value, m) -> phi (m,)``: exact Shapley values of the game ``value(z)`` (z: tuple of m 0/1)."""
    m = 5
    value = _game(seed, m)
    expected = _weighted_marginals(value, m, lambda s: factorial(s) * factorial(m - s - 1) / factorial(m))
    got = _call(fn, value, m)
    problem = _explain("phi", got, expected)
    if problem is None:
        return []
    banzhaf = _weighted_marginals(value, m, lambda s: 1 / 2 ** (m - 1))
    if _matches(got, banzhaf):
        return ["uniform weights: every coalition counts 1 / 2^(m-1) (the Banzhaf value); Shapley weighs a "
                "coalition of size s by s! (m - s - 1)! / m!, so that every size counts as much"]
    total = value((1,) * m) - value((0,) * m)
    if np.ndim(got) == 1 and abs(np.sum(got) - total) > 1e-9 * max(1, abs(total)):
        problem += (f"; and the values add up to {np.sum(got):.6g}, not v(all) - v(none) = {total:.6g} "
                    f"(every coalition size, 0 to m - 1, must be in the sum)")
    return [problem]


@checker("significant regions")
def check_significant(fn, seed=0):
    """``fn(values, stderr) -> (m,) bool``: the regions outside the simultaneous 95% band around 0."""
    rng = np.random.default_rng(seed)
    m = 24
    stderr = rng.uniform(0.5, 1.5, m)
    values = stderr * np.linspace(0, 4, m) * rng.choice([-1, 1], m)
    expected = np.abs(values) >= simultaneous_z(m) * stderr
    got = np.asarray(_call(fn, values, stderr))
    if got.shape != expected.shape:
        return [f"return one True/False per region, shape {expected.shape}; got shape {got.shape}"]
    got = got.astype(bool)
    if (got == expected).all():
        return []
    if (got == (np.abs(values) >= 2 * stderr)).all() or (got == (np.abs(values) >= 1.96 * stderr)).all():
        return [f"{int(got.sum())} regions at two standard errors, expected {int(expected.sum())}: +-2 stderr holds "
                f"each value alone 95% of the time, not all {m} at once; widen it (Bonferroni: "
                f"z = {simultaneous_z(m):.2f} for {m} regions, Phi^-1(1 - 0.05 / (2 m)))"]
    if (got == (values >= simultaneous_z(m) * stderr)).all():
        return ["only positive values count; a value far below 0 is significant too (use |value|)"]
    return [f"{int(got.sum())} regions marked, expected {int(expected.sum())} (|value| >= z * stderr, "
            f"z = Phi^-1(1 - 0.05 / (2 m)) = {simultaneous_z(m):.2f})"]


# ------------------------------------------------------------------ chapter 8: are the explanations right?


@checker("lesion mass ratio")
def check_lesion_mass_ratio(fn, seed=0):
    """``fn(saliency, mask) -> float``: positive map mass on the mask / the mask's share of the pixels."""
    rng = np.random.default_rng(seed)
    problems = []
    for case in range(3):
        saliency = rng.standard_normal((16, 16))
        mask = rng.random((16, 16)) < 0.1 + 0.2 * case
        got = _call(fn, saliency, mask)
        problem = _explain(f"ratio (case {case + 1})", got, lesion_mass_ratio(saliency, mask))
        if problem and _matches(got, saliency[mask].sum() / saliency.sum() / mask.mean()):
            problem = f"ratio (case {case + 1}) counts the map's negative part: clip it at 0 first"
        elif problem and _matches(got, lesion_mass_ratio(saliency, mask) * mask.mean()):
            problem = (f"ratio (case {case + 1}) is the mask's share of the mass; divide by the mask's share of the "
                       f"pixels (mask.mean())")
        elif problem and _matches(got, lesion_mass_ratio(saliency, mask) * mask.mean() / mask.sum()):
            problem = f"ratio (case {case + 1}) divides by mask.sum(), a count of pixels; the share is mask.mean()"
        problems.append(problem)
        if problem:
            break
    return problems


@checker("twin swap")
def check_twin_swap_image(fn, seed=0):
    """``fn(image, twin, mask) -> image``: the RA image with its twin's pixels pasted into the mask."""
    rng = np.random.default_rng(seed)
    image, twin = rng.random((2, 12, 12))
    mask = rng.random((12, 12)) < 0.3
    got = _call(fn, image, twin, mask)
    problem = _explain("swapped image", got, np.where(mask, twin, image))
    if problem and _matches(got, np.where(mask, image, twin)):
        problem = "the twin's pixels went outside the mask and the image's inside: swap the two"
    return [problem]
