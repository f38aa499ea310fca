"""Softmax cross-entropy, averaged over the batch.

Shapes::

    logits : (N, K)     unnormalised class scores
    y      : (N,)       integer labels in [0, K)
    weight : (K,)       optional class weights (for imbalanced data)

Forward::

    p[n]  = softmax(logits[n]) = exp(logits[n] - max) / sum(exp(logits[n] - max))
    loss  = sum_n weight[y_n] * -log p[n, y_n] / sum_n weight[y_n]

(with all weights 1 this is the plain mean; the weighted form matches PyTorch's
``cross_entropy(..., weight=w)``).

Backward::

    dlogits[n] = weight[y_n] * (p[n] - onehot(y_n)) / sum_n weight[y_n]
"""

import numpy as np


def softmax(logits):
    """Row-wise softmax, shifted by the row maximum so ``exp`` cannot overflow. (N, K) -> (N, K).

    Non-finite logits (an overflowing model) give NaN rows without a warning; callers
    check the result and name the model (:func:`minivgg.app.predict.check_finite_output`).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, y, weight=None):
    """Loss and its gradient with respect to ``logits``.

    Parameters
    ----------
    logits : ndarray, shape (N, K)
    y : ndarray of int, shape (N,)
    weight : ndarray, shape (K,), optional

    Returns
    -------
    loss : float
    dlogits : ndarray, shape (N, K), dtype of ``logits``
    """
    N, K = logits.shape
    y = np.asarray(y)
    if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer) or (N and (y.min() < 0 or y.max() >= K)):
        raise ValueError(f"labels must be {N} integers in [0, {K}), got shape {y.shape} dtype {y.dtype}")
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))        # log-softmax, stable
    w = np.ones(N) if weight is None else np.asarray(weight, dtype=np.float64)[y]
    total = w.sum()
    loss = float(-(w * log_p[np.arange(N), y]).sum() / total)
    dlogits = np.exp(log_p)
    dlogits[np.arange(N), y] -= 1
    dlogits *= (w / total)[:, None].astype(logits.dtype)
    return loss, dlogits.astype(logits.dtype, copy=False)
