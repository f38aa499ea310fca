"""Calibrated probabilities: temperature scaling, expected calibration error, Brier score.

A classifier is *calibrated* when, of all the images it gives probability 0.8, about 80%
really are of that class. Networks trained to a small loss are usually over-confident.
**Temperature scaling** (Guo et al., ICML 2017) divides every logit vector by one scalar
``T > 0`` before the softmax::

    p_T(x) = softmax(z(x) / T)          T > 1 softens, T < 1 sharpens; argmax unchanged

and picks ``T`` by minimising the negative log-likelihood on the validation split (images
the network did not train on). Writing ``b = 1 / T``, with ``z_y`` the logit of the true
class and ``E_b[z] = sum_k p_k z_k`` under ``p = softmax(b z)``::

    NLL(b)    = mean_n [ logsumexp(b z_n) - b z_{n, y_n} ]
    NLL'(b)   = mean_n [ E_b[z_n] - z_{n, y_n} ]
    NLL''(b)  = mean_n [ Var_b[z_n] ]  >= 0

so the NLL is convex in ``b`` and its derivative increases with ``b``: the minimiser is the
one root of ``NLL'``, found here by bisection on ``log b`` (or a bound of ``TEMPERATURE_RANGE``
when there is no root inside it: a validation set that the model separates perfectly
keeps asking for a sharper softmax).

**Expected calibration error** (15 equal-width bins of the top-class confidence, as Guo
et al.)::

    ECE = sum_b |B_b| / n * | accuracy(B_b) - mean confidence(B_b) |      bin b = ((b-1)/15, b/15]

**Brier score** (Brier 1950), over all classes: ``mean_n sum_k (p_nk - [y_n == k])^2``, in
[0, 2]; 0 is perfect, and unlike ECE it cannot be gamed by predicting the base rate.
"""

import numpy as np

from minivgg.nn.loss import softmax

TEMPERATURE_RANGE = (0.05, 20.0)
ECE_BINS = 15


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def negative_log_likelihood(logits, labels, temperature=1.0):
    """Mean ``-log softmax(logits / T)[y]``; logits (N, K), labels (N,)."""
    logits = np.asarray(logits, dtype=np.float64)
    return float(-_log_softmax(logits / temperature)[np.arange(len(labels)), labels].mean())


def _nll_slope(logits, labels, b):
    """``dNLL/db`` at inverse temperature ``b`` (see the module docstring)."""
    p = softmax(b * logits)
    return float(((p * logits).sum(axis=1) - logits[np.arange(len(labels)), labels]).mean())


def fit_temperature(logits, labels, bounds=TEMPERATURE_RANGE):
    """The temperature minimising the validation NLL.

    Parameters
    ----------
    logits : ndarray, shape (N, K), the network's raw outputs on held-out images
    labels : ndarray of int, shape (N,)
    bounds : (low, high), the temperatures searched

    Returns
    -------
    temperature : float
    at_bound : bool, True when the minimum lies on (or beyond) a bound: a warning sign,
        usually a validation set that is too small or classified perfectly.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("temperature scaling needs at least one validation image")
    lo, hi = np.log(1 / bounds[1]), np.log(1 / bounds[0])          # log b, b = 1 / T
    if _nll_slope(logits, labels, np.exp(lo)) >= 0:
        return float(bounds[1]), True
    if _nll_slope(logits, labels, np.exp(hi)) <= 0:
        return float(bounds[0]), True
    for _ in range(100):                 # the interval halves each step: far below float precision
        mid = (lo + hi) / 2
        if _nll_slope(logits, labels, np.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return float(np.exp(-(lo + hi) / 2)), False


def reliability_bins(probs, labels, n_bins=ECE_BINS):
    """Per confidence bin: ``count``, mean ``confidence`` and ``accuracy`` (NaN where empty).

    The confidence of an image is its top-class probability; bin ``b`` (1-based) holds
    confidences in ``((b - 1) / n_bins, b / n_bins]`` (the first bin includes 0).
    """
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    which = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(which, confidence, n_bins) / count
        acc = np.bincount(which, correct, n_bins) / count
    return {"count": count, "confidence": conf, "accuracy": acc,
            "edges": np.linspace(0, 1, n_bins + 1)}


def expected_calibration_error(probs, labels, n_bins=ECE_BINS):
    """ECE with ``n_bins`` equal-width confidence bins (see the module docstring)."""
    bins = reliability_bins(probs, labels, n_bins)
    full = bins["count"] > 0
    gap = np.abs(bins["accuracy"][full] - bins["confidence"][full])
    return float((bins["count"][full] * gap).sum() / bins["count"].sum())


def brier_score(probs, labels):
    """Multi-class Brier score ``mean_n sum_k (p_nk - onehot(y_n)_k)^2``, in [0, 2]."""
    probs = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(probs.shape[1])[np.asarray(labels)]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def calibration_report(logits, labels, temperature):
    """NLL, ECE and Brier score before (T = 1) and after temperature scaling (JSON-able)."""
    logits = np.asarray(logits, dtype=np.float64)
    report = {"temperature": float(temperature), "n": int(len(labels))}
    for when, t in (("before", 1.0), ("after", temperature)):
        p = softmax(logits / t)
        report[f"nll_{when}"] = negative_log_likelihood(logits, labels, t)
        report[f"ece_{when}"] = expected_calibration_error(p, labels)
        report[f"brier_{when}"] = brier_score(p, labels)
    return report
