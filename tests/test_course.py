"""The course's exercises: stubs that fail with a message, solutions that pass, and checkers that know the mistakes.

* Each chapter ``docs/NN-*.md`` has ``docs/exercises/chNN.py`` (a function per exercise,
  raising NotImplementedError at its TODO, and its checker) and ``docs/solutions/chNN.py``
  (the same functions, answered; the same written questions, answered).
* Every solution passes its checker; every stub fails it with the checker's one-line
  message, not a traceback.
* No chapter prints an answer under its prompt: the exercises section holds no code.
* Each typical wrong answer in :data:`WRONG_ANSWERS` fails its checker with the hint meant for it.
"""

import contextlib
import doctest
import importlib.util
import io
import itertools
import re
import subprocess
import sys
from math import factorial
from pathlib import Path

import numpy as np
import pytest

from minivgg import Tape
from minivgg.course import exercises as checks
from minivgg.nn.loss import softmax, softmax_cross_entropy

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHAPTERS = sorted(DOCS.glob("[0-9][0-9]-*.md"))
NUMBERS = [c.name[:2] for c in CHAPTERS]


def load(kind, number):
    """The module ``docs/<kind>/ch<number>.py``."""
    path = DOCS / kind / f"ch{number}.py"
    spec = importlib.util.spec_from_file_location(f"course_{kind}_ch{number}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def verdict(check, fn):
    """``(what check(fn) returned, what it printed)``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = check(fn)
    return result, out.getvalue()


def test_every_chapter_has_exercises_and_solutions():
    assert len(CHAPTERS) >= 8
    for chapter, number in zip(CHAPTERS, NUMBERS):
        text = chapter.read_text()
        for kind in ("exercises", "solutions"):
            assert (DOCS / kind / f"ch{number}.py").exists(), f"docs/{kind}/ch{number}.py is missing"
            assert f"{kind}/ch{number}.py" in text, f"{chapter.name} does not point to {kind}/ch{number}.py"


@pytest.mark.parametrize("number", NUMBERS)
def test_stubs_and_solutions_hold_the_same_exercises(number):
    stub, solution = load("exercises", number), load("solutions", number)
    assert [(fn.__name__, check) for fn, check in stub.EXERCISES] == \
           [(fn.__name__, check) for fn, check in solution.EXERCISES]
    questions = getattr(stub, "QUESTIONS", {})
    assert questions.keys() == getattr(solution, "QUESTIONS", {}).keys()
    for name, answer in solution.QUESTIONS.items() if questions else ():
        assert questions[name].startswith("TODO")
        assert "TODO" not in answer and len(answer) > 200, f"ch{number}: the answer to {name!r} is not written"


@pytest.mark.parametrize("number", NUMBERS)
def test_solutions_pass_their_checkers(number):
    for fn, check in load("solutions", number).EXERCISES:
        result, said = verdict(check, fn)
        assert result is True, said
        assert said == f"{check.title}: correct.\n"


@pytest.mark.parametrize("number", NUMBERS)
def test_stubs_fail_with_the_checkers_message(number):
    for fn, check in load("exercises", number).EXERCISES:
        result, said = verdict(check, fn)
        assert result is False
        assert said == (f"{check.title}: not written yet ({fn.__name__} raises NotImplementedError: replace its TODO "
                        f"with your code).\n")


def test_the_twin_swap_by_hand_gives_twin_swaps_probability():
    assert load("solutions", "08").same_as_twin_swap()


def test_running_a_stub_file_prints_one_line_per_exercise():
    done = subprocess.run([sys.executable, str(DOCS / "exercises" / "ch01.py")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert done.stdout.splitlines()[-1] == "0 of 3 correct."


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_answer_under_a_prompt(chapter):
    """The exercises section of a chapter points to the files; it runs no code that could answer them."""
    text = chapter.read_text()
    assert "## Exercises" in text
    exercises = text.split("## Exercises", 1)[1].split("\n## ", 1)[0]
    assert "```python" not in exercises


def test_the_module_docstring_example_is_true():
    assert doctest.testmod(checks, verbose=False).failed == 0


def test_an_error_in_the_learners_code_is_told_with_its_line():
    def dense_backward(dout, x, w):
        return dout @ w.T, None, None                 # (4, 3) @ (5, 3): shapes do not fit
    result, said = verdict(checks.check_dense_backward, dense_backward)
    assert result is False and "raised ValueError" in said and "of test_course.py)" in said


def test_no_constant_factor_between_two_numbers():
    """Any two non-zero numbers differ by a factor: a scalar's mismatch names both numbers instead."""
    _, said = verdict(checks.check_shapley_kernel_weight, lambda m, s: 2 * (m - 1) / (m * s * (m - s)))
    assert "factor" not in said and "expected" in said


def test_a_real_constant_factor_is_named():
    _, said = verdict(checks.check_dense_backward, lambda dout, x, w: (2 * dout @ w, dout.T @ x, dout.sum(axis=0)))
    assert "dx is off by a constant factor of 2" in said


# ---------------------------------------------------------------------- typical wrong answers


def gradcam(signs=1.0, relu=True, hires=False):
    """A Grad-CAM answer with a usual mistake: the weights' sign flipped, the ReLU forgotten, or HiResCAM."""
    def my_gradcam(model, x, target, layer):
        tape = Tape(watch={layer})
        logits = model.forward(x, tape=tape)
        dlogits = np.zeros_like(logits)
        dlogits[:, target] = signs
        grads, _ = model.backward(dlogits, tape, stop_at=layer)
        a = tape.outputs[layer]
        cam = (grads * a).sum(axis=1) if hires else np.einsum("nk,nkhw->nhw", grads.mean(axis=(2, 3)), a)
        return np.maximum(cam, 0) if relu else cam
    return my_gradcam


def log_of_softmax(logits, y):
    """Shifted (no overflow), but the log of the softmax: log(0) when a probability rounds to 0."""
    p = softmax(logits)
    n = len(y)
    return -np.log(p[np.arange(n), y]).mean(), (p - np.eye(logits.shape[1])[y]) / n


def unshifted(logits, y):
    """exp of the raw logits: overflows at 1000."""
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    return -np.log(p[np.arange(n), y]).mean(), (p - np.eye(logits.shape[1])[y]) / n


def banzhaf(value, m):
    """Uniform weights over all coalitions: the mistake the Shapley exercise is about."""
    phi = np.zeros(m)
    for i in range(m):
        for z in np.ndindex(*(2,) * m):
            if not z[i]:
                with_i = list(z)
                with_i[i] = 1
                phi[i] += (value(tuple(with_i)) - value(z)) / 2 ** (m - 1)
    return phi


def first_convs(image_size, channels):
    """Each block's width taken from its first conv."""
    widths = (channels[0], channels[1], channels[2], channels[4], channels[6])
    return [(c, image_size // 2 ** (i + 1), image_size // 2 ** (i + 1)) for i, c in enumerate(widths)]


def two_layer(gate=True, mean=True):
    """The chapter 2 net with a usual mistake: no ReLU gate in the backward pass, or the loss summed."""
    solution = load("solutions", "02").two_layer_net

    def two_layer_net(x, y, params):
        value, grads = solution(x, y, params)
        if not gate:
            hidden_in = x @ params["w1"].T + params["b1"]
            dscores = softmax_cross_entropy(np.maximum(hidden_in, 0) @ params["w2"].T + params["b2"], y)[1]
            grads["w1"] = (dscores @ params["w2"]).T @ x
        return value if mean else value * len(y), grads
    return two_layer_net


def gradient_of(kind):
    """The chapter 2 Tape exercise answered with dL/dx (no stop_at) or with the loss's gradient."""
    def layer_gradient(model, x, target, layer):
        tape = Tape(watch={layer})
        logits = model.forward(x, tape=tape)
        if kind == "input":
            dlogits = np.zeros_like(logits)
            dlogits[:, target] = 1.0
            return model.backward(dlogits, tape)[0]
        dlogits = softmax_cross_entropy(logits, np.full(len(x), target))[1]
        return model.backward(dlogits, tape, stop_at=layer)[0]
    return layer_gradient


def field(step_grows=True, pool_widens=True):
    """A receptive field that forgets the pools' doubling of the step, or the pools' own width."""
    def receptive_field(layers):
        size, step = 1, 1
        for kind in layers:
            size += 2 * step if kind == "conv" else step * pool_widens
            step *= 2 if kind == "pool" and step_grows else 1
        return size
    return receptive_field


def direct_row(d, g):
    return np.array([d[i] * g[0] + d[i + 1] * g[1] + d[i + 2] * g[2] for i in range(len(d) - 2)])


def direct_image(x, g):
    xpad = np.pad(x, 1)
    return np.array([[np.sum(xpad[i:i + 3, j:j + 3] * g) for j in range(x.shape[1])] for i in range(x.shape[0])])


def winograd_pairs_every_input(d, g):
    """F(2, 3) on a window starting at every input, not every second one: right values, twice the work."""
    solution = load("solutions", "04")
    u = solution.G @ g
    pairs = [solution.A_T @ (u * (solution.B_T @ d[i:i + 4])) for i in range(len(d) - 3)]
    return np.array([pair[0] for pair in pairs] + [pairs[-1][1]])


def im2col_rows_by_tap(x):
    """The right windows, rows ordered (dy, dx, c) instead of (c, dy, dx)."""
    c, h, w = x.shape
    xpad = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return np.stack([xpad[ch, dy:dy + h, dx:dx + w].ravel() for dy in range(3) for dx in range(3) for ch in range(c)])


def ties_to_every_max(dout, x):
    """Every element equal to its window's maximum gets the window's gradient."""
    big = np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3)
    top = np.repeat(np.repeat(x.reshape(*x.shape[:2], x.shape[2] // 2, 2, x.shape[3] // 2, 2).max(axis=(3, 5)),
                              2, axis=2), 2, axis=3)
    return np.where(x == top, big, 0)


def conv_unrotated(dout, x, w):
    """dw and db right, dx a convolution of dout with the kernel as it is (not rotated)."""
    solution = load("solutions", "01")
    _, dw, db = solution.conv_backward(dout, x, w)
    return solution.correlate3x3(dout, w.transpose(1, 0, 2, 3)), dw, db


def parameters_without_biases(channels, hidden, image_size, num_classes):
    sizes = [3, *channels]
    flat = channels[-1] * (image_size // 32) ** 2
    return sum(9 * a * b for a, b in zip(sizes, sizes[1:])) + flat * hidden + hidden * hidden + hidden * num_classes


def dampened_sgd(p, g, velocity, lr, momentum):
    velocity = (1 - momentum) * g if velocity is None else momentum * velocity + (1 - momentum) * g
    return p - lr * velocity, velocity


def missing_sizes(value, m):
    """Shapley weights, but the loop over coalition sizes stops one short (range(m - 1))."""
    phi = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m - 1):
            for s in itertools.combinations(others, size):
                without = tuple(1 if j in s else 0 for j in range(m))
                with_i = tuple(1 if j in s or j == i else 0 for j in range(m))
                phi[i] += factorial(size) * factorial(m - size - 1) / factorial(m) * (value(with_i) - value(without))
    return phi


WRONG_ANSWERS = {
    # id: (checker, wrong answer, words the hint must contain)
    "dense: dw transposed": (checks.check_dense_backward, lambda dout, x, w: (dout @ w, x.T @ dout, dout.sum(0)),
                             "it looks transposed"),
    "dense: db without the batch sum": (checks.check_dense_backward, lambda dout, x, w: (dout @ w, dout.T @ x, dout),
                                        "the sum over the batch, axis 0, is missing"),
    "conv: dx with the kernel unrotated": (checks.check_conv_backward, conv_unrotated, "without rotating it"),
    "max-pool: ties all get the gradient": (checks.check_maxpool_backward, ties_to_every_max, "the first one only"),
    "ReLU: gated by dout": (checks.check_relu_backward, lambda dout, x: dout * (dout > 0), "the gate is the input"),
    "ReLU: x >= 0": (checks.check_relu_backward, lambda dout, x: dout * (x >= 0), "where x == 0 exactly"),
    "ReLU: times the output": (checks.check_relu_backward, lambda dout, x: dout * np.maximum(x, 0), "0 or 1, not x"),
    "net: no ReLU gate going back": (checks.check_two_layer_net, two_layer(gate=False), "dw1 ignores the ReLU"),
    "net: the loss summed": (checks.check_two_layer_net, two_layer(mean=False), "take the mean"),
    "Tape: dL/dx, no stop_at": (checks.check_layer_gradient, gradient_of("input"), "stop_at=layer"),
    "Tape: the loss's gradient": (checks.check_layer_gradient, gradient_of("loss"), "start from a one-hot dlogits"),
    "shapes: the first conv's width": (checks.check_output_shapes, first_convs, "the width of its last conv"),
    "shapes: no pool in the first block": (
        checks.check_output_shapes,
        lambda s, ch: [(c, s // 2 ** i, s // 2 ** i) for i, c in enumerate((ch[0], ch[1], ch[3], ch[5], ch[7]))],
        "already S/2 wide"),
    "parameters: no biases": (checks.check_parameter_count, parameters_without_biases, "the biases"),
    "receptive field: the step never grows": (checks.check_receptive_field, field(step_grows=False),
                                              "twice as many input pixels"),
    "receptive field: a pool adds nothing": (checks.check_receptive_field, field(pool_widens=False),
                                             "a 2x2 pool widens the field too"),
    "im2col: rows by tap, then channel": (checks.check_im2col, im2col_rows_by_tap, "in another row order"),
    "im2col: transposed": (checks.check_im2col, lambda x: load("solutions", "04").my_im2col(x).T,
                           "it looks transposed"),
    "Winograd row: the direct sum": (checks.check_winograd_row, direct_row, "24 multiplications"),
    "Winograd row: a window at every input": (checks.check_winograd_row, winograd_pairs_every_input,
                                              "Winograd needs 16, 2 per output"),
    "Winograd image: the direct sum": (checks.check_winograd_image, direct_image, "Winograd needs 96, 4 per"),
    "loss: log of the softmax": (checks.check_softmax_cross_entropy, log_of_softmax, "log(0)"),
    "loss: no shift": (checks.check_softmax_cross_entropy, unshifted, "subtract each row's maximum"),
    "loss: summed over the batch": (checks.check_softmax_cross_entropy,
                                    lambda z, y: tuple(v * len(y) for v in softmax_cross_entropy(z, y)),
                                    "the loss is the sum over the 5 examples"),
    "SGD: dampened": (checks.check_sgd_momentum_step, dampened_sgd, "(dampening)"),
    "Grad-CAM: the ReLU forgotten": (checks.check_gradcam, gradcam(relu=False), "a clip at 0 (a ReLU) is missing"),
    "Grad-CAM: weights of the wrong sign": (checks.check_gradcam, gradcam(signs=-1.0), "sign flipped"),
    "Grad-CAM: HiResCAM instead": (checks.check_gradcam, gradcam(hires=True), "is HiResCAM"),
    "probability: the loss's gradient": (checks.check_probability_gradient,
                                         lambda z, t: softmax(z) - np.eye(z.shape[1])[t], "gradient of the cross"),
    "kernel weight: integer division": (checks.check_shapley_kernel_weight,
                                        lambda m, s: (m - 1) // (checks.comb(m, s) * s * (m - s)), "integer division"),
    "Shapley: uniform weights": (checks.check_shapley_values, banzhaf, "uniform weights"),
    "Shapley: a coalition size left out": (checks.check_shapley_values, missing_sizes, "every coalition size"),
    "significance: two standard errors": (checks.check_significant, lambda v, se: np.abs(v) >= 2 * se, "Bonferroni"),
    "mass ratio: no clip": (checks.check_lesion_mass_ratio,
                            lambda s, m: s[m].sum() / s.sum() / m.mean(), "clip it at 0 first"),
    "mass ratio: mask.sum()": (checks.check_lesion_mass_ratio,
                               lambda s, m: np.clip(s, 0, None)[m].sum() / np.clip(s, 0, None).sum() / m.sum(),
                               "a count of pixels"),
    "twin swap: the other way round": (checks.check_twin_swap_image, lambda image, twin, mask:
                                       np.where(mask, image, twin), "swap the two"),
}


@pytest.mark.parametrize("name", WRONG_ANSWERS)
def test_a_typical_wrong_answer_gets_its_hint(name):
    check, wrong, hint = WRONG_ANSWERS[name]
    result, said = verdict(check, wrong)
    assert result is False
    assert hint in said, said


def test_the_docs_code_is_linted():
    """The stubs and solutions follow the project's style (ruff, 120 columns), as the package does."""
    pytest.importorskip("ruff")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "docs"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_hints_are_sentences():
    """Every hint the regression list asks for ends a one-line verdict (no traceback, no second line)."""
    for check, wrong, _ in WRONG_ANSWERS.values():
        said = verdict(check, wrong)[1]
        assert re.fullmatch(rf"{re.escape(check.title)}: [^\n]+\.\n", said), said
