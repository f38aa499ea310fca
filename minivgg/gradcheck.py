"""Check a backward pass against centred finite differences.

Three lines for a student::

    from minivgg import gradcheck, layers
    import numpy as np
    print(gradcheck(layers.Conv3x3(2, 3, np.random.default_rng(0), np.float64), np.random.randn(2, 2, 5, 5)))

which prints the relative error of ``dL/dx``, ``dL/dweight`` and ``dL/dbias``; in
float64 a correct backward gives about 1e-8 or less, a wrong one 1e-3 or more.

The scalar being differentiated is ``L = sum(forward(x) * dout)`` for a fixed random
``dout``, so ``dL/dout = dout`` and one ``backward(dout)`` yields every gradient.
Each numerical entry is ``(L(theta + h) - L(theta - h)) / (2h)``, whose error is
O(h^2) in exact arithmetic.
"""

import numpy as np


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


def numerical_gradient(f, x, dout, h=1e-6, indices=None):
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

    Returns
    -------
    grad : ndarray, shape of ``x`` (zero where not checked)
    """
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for i in range(x.size) if indices is None else indices:
        old = flat[i]
        flat[i] = old + h
        plus = np.sum(f() * dout)
        flat[i] = old - h
        minus = np.sum(f() * dout)
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * h)
    return grad


def gradcheck(layer, x, h=1e-6, max_entries=500, seed=0):
    """Compare ``layer.backward`` with finite differences, for the input and every parameter.

    Parameters
    ----------
    layer : a minivgg layer or model (anything with ``forward``, ``backward``,
        ``parameters()`` and ``grads()``), built with ``dtype=np.float64``
    x : array_like, the input
    h : float, finite-difference step
    max_entries : int
        At most this many randomly chosen entries of each array are checked.
    seed : int, seeds ``dout`` and the choice of entries

    Returns
    -------
    dict
        ``{"input": error, "<parameter name>": error, ...}``, each the
        :func:`norm_rel_error` over the checked entries.
    """
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    out = layer.forward(x, train=False, keep=True)
    dout = rng.standard_normal(out.shape)
    analytic = {"input": layer.backward(dout)}
    analytic.update({name: g.copy() for name, g in layer.grads().items()})
    arrays = {"input": x, **layer.parameters()}

    def run():
        return layer.forward(x, train=False, keep=False)

    report = {}
    for name, array in arrays.items():
        if array.dtype != np.float64:
            raise ValueError(f"gradcheck needs float64 everywhere; {name} is {array.dtype} (build the layer with dtype=np.float64)")
        n = array.size
        idx = np.arange(n) if n <= max_entries else rng.choice(n, max_entries, replace=False)
        numeric = numerical_gradient(run, array, dout, h, idx)
        report[name] = norm_rel_error(analytic[name].reshape(-1)[idx], numeric.reshape(-1)[idx])
    return report
