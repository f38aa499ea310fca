"""Check a backward pass against centred finite differences.

Three lines for a student::

    import numpy as np
    from minivgg import gradcheck
    from minivgg.nn import layers
    print(gradcheck(layers.Conv3x3(2, 3, np.random.default_rng(0), np.float64), np.random.randn(2, 2, 5, 5)))

which prints the relative error of ``dL/dx``, ``dL/dweight`` and ``dL/dbias``; in
float64 a correct backward gives about 1e-8 or less, a wrong one 1e-3 or more.

The scalar being differentiated is ``L = sum(forward(x) * dout)`` for a fixed random
``dout``, so ``dL/dout = dout`` and one ``backward(dout)`` yields every gradient.
Each numerical entry is ``(L(theta + h) - L(theta - h)) / (2h)``, whose error is
O(h^2) in exact arithmetic.

**Kinks.** ReLU at 0 and a max-pool window with two equal maxima are points where the
function has no derivative. When ``theta - h`` and ``theta + h`` fall on different sides
of such a point, the centred difference averages two different slopes and disagrees
with *any* backward pass, correct or not. Such entries are recognised by their one-sided
differences, ``(L(theta + h) - L(theta)) / h`` and ``(L(theta) - L(theta - h)) / h``,
which agree to round-off on a smooth (or piecewise-linear, away from its corners)
function and differ by O(1) across a kink. They are counted and left out of the error,
so a correct max-pool is not reported as broken.
"""

import numpy as np

from minivgg.nn.model import Tape


def rel_error(a, b):
    """max_i |a_i - b_i| / max(|a_i| + |b_i|, 1e-8): the CS231n relative error."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))) if a.size else 0.0


def norm_rel_error(a, b):
    """||a - b|| / (||a|| + ||b||): relative error of the whole array.

    Preferred for large checks: an entry whose true gradient is ~0 makes the
    elementwise error meaningless, because a centred difference carries an absolute
    round-off of about eps * |L| / h on *every* entry.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def numerical_gradient(f, x, dout, h=1e-6, indices=None, kinks=None):
    """Centred-difference gradient of ``sum(f() * dout)`` with respect to ``x``.

    Parameters
    ----------
    f : callable with no arguments
        Recomputes the output from the current contents of ``x`` (and anything else).
    x : ndarray (float64), perturbed in place and restored
    dout : ndarray, shape of ``f()``
    h : float
    indices : sequence of int, optional
        Flat indices to check (default: all).
    kinks : list, optional
        When given, the flat indices whose one-sided differences disagree (a kink
        within ``h``; see the module docstring) are appended to it.

    Returns
    -------
    grad : ndarray, shape of ``x`` (zero where not checked)
    """
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    centre = np.sum(f() * dout)
    for i in range(x.size) if indices is None else indices:
        old = flat[i]
        flat[i] = old + h
        plus = np.sum(f() * dout)
        flat[i] = old - h
        minus = np.sum(f() * dout)
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * h)
        if kinks is not None:
            right, left = (plus - centre) / h, (centre - minus) / h
            # Round-off in each one-sided difference is about 100 eps |L| / h; across a
            # kink the two slopes differ by a share of the gradient itself.
            roundoff = 1e-14 * max(abs(centre), 1.0) / h
            if abs(right - left) > max(roundoff, 1e-4 * max(abs(right), abs(left))):
                kinks.append(i)
    return grad


class GradcheckReport(dict):
    """``{array name: normwise relative error}``, plus how many entries were checked and left out as kinks.

    Attributes
    ----------
    checked : dict, name -> entries compared
    kinks : dict, name -> entries left out because a kink lay within ``h`` of them
    """

    def __init__(self, errors, checked, kinks):
        super().__init__(errors)
        self.checked, self.kinks = checked, kinks

    def __repr__(self):
        rows = []
        for name, err in self.items():
            kinks = self.kinks[name]
            note = f"  ({kinks} of {self.checked[name]} entries at kinks, left out)" if kinks else ""
            rows.append(f"{name:>8}: {err:.2e}{note}")
        return "\n".join(rows)


def _parameters(obj):
    return obj.parameters() if hasattr(obj, "layers") else obj.params


def _forward_backward(obj, x, dout=None):
    """Run a layer (``forward -> (out, cache)``) or a VGG8 (``forward(tape=...)``) and, with ``dout``, its backward."""
    if hasattr(obj, "layers"):
        tape = Tape(keep_caches=dout is not None)
        out = obj.forward(x, tape=tape)
        return out if dout is None else obj.backward(dout, tape)
    out, cache = obj.forward(x)
    return out if dout is None else obj.backward(dout, cache)


def gradcheck(layer, x, h=1e-6, max_entries=500, seed=0):
    """Compare a backward pass with finite differences, for the input and every parameter.

    Parameters
    ----------
    layer : a minivgg layer (``out, cache = forward(x)``, ``dx, grads = backward(dout, cache)``)
        or a VGG8 model, built with ``dtype=np.float64``
    x : array_like, the input
    h : float, finite-difference step
    max_entries : int
        At most this many randomly chosen entries of each array are checked.
    seed : int, seeds ``dout`` and the choice of entries

    Returns
    -------
    GradcheckReport
        ``{"input": error, "<parameter name>": error, ...}``, each the
        :func:`norm_rel_error` over the checked entries that are not at a kink.
    """
    params = _parameters(layer)
    wrong = {name: p.dtype for name, p in params.items() if p.dtype != np.float64}
    if wrong:
        name, dtype = next(iter(wrong.items()))
        fix = "VGG8(..., dtype=np.float64)" if hasattr(layer, "layers") else "the layer with dtype=np.float64"
        raise ValueError(f"gradcheck needs float64 weights (float32 round-off swamps a finite difference); "
                         f"{name} is {dtype}: build {fix}")
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    out = _forward_backward(layer, x)
    dout = rng.standard_normal(out.shape)
    dx, grads = _forward_backward(layer, x, dout)
    analytic = {"input": dx, **{name: g.copy() for name, g in grads.items()}}
    arrays = {"input": x, **params}

    errors, checked, kinks = {}, {}, {}
    for name, array in arrays.items():
        n = array.size
        idx = np.arange(n) if n <= max_entries else rng.choice(n, max_entries, replace=False)
        at_kinks = []
        numeric = numerical_gradient(lambda: _forward_backward(layer, x), array, dout, h, idx, at_kinks)
        smooth = np.setdiff1d(idx, at_kinks)
        errors[name] = norm_rel_error(analytic[name].reshape(-1)[smooth], numeric.reshape(-1)[smooth])
        checked[name], kinks[name] = len(idx), len(at_kinks)
    return GradcheckReport(errors, checked, kinks)
