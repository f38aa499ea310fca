"""Optimisers with PyTorch's semantics: Adam and SGD with momentum.

Both take the model's live parameters (a dict name -> array) and, at each ``step``,
the matching gradients; they update the parameters in place. Their state (moments,
step count) round-trips through ``state_dict`` / ``load_state_dict`` so a training
run can be resumed exactly.

Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``; with weight decay ``wd`` added to
the gradient ("coupled", L2 regularisation, not AdamW)::

    g  = grad + wd * p
    m  = beta1 * m + (1 - beta1) * g
    v  = beta2 * v + (1 - beta2) * g^2
    p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

SGD with momentum ``mu`` and dampening ``d``, as ``torch.optim.SGD``::

    g  = grad + wd * p
    b  = g                          (first step)
    b  = mu * b + (1 - d) * g       (later steps)
    p -= lr * (g + mu * b  if nesterov else  b)
"""

import math

import numba
import numpy as np

from minivgg.nn.threads import parallel_for, split

PIECE = 1 << 20


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2):
    # One fused pass over the four arrays; in NumPy this is ~10 passes and temporaries.
    # Two details make it 4x faster, as fast as memory allows (22M float32 parameters,
    # measured): the arithmetic is done in the parameters' dtype, as PyTorch does (Python
    # floats would make it float64), and error_model="numpy" lets a division by zero give
    # inf instead of raising, without which the loop cannot be vectorised.
    t = p.dtype.type
    step_size, sqrt_bc2 = t(lr / bias_correction1), t(math.sqrt(bias_correction2))
    beta1, beta2, eps, weight_decay, one = t(beta1), t(beta2), t(eps), t(weight_decay), t(1)
    for i in range(p.size):
        gi = g[i] + weight_decay * p[i]
        m[i] = beta1 * m[i] + (one - beta1) * gi
        v[i] = beta2 * v[i] + (one - beta2) * gi * gi
        p[i] -= step_size * m[i] / (math.sqrt(v[i]) / sqrt_bc2 + eps)


def writable(params):
    """``params`` (name -> array), once checked that an optimiser may update them: a frozen model's
    (``VGG8.freeze``) are read-only, and training it is refused here, naming the parameter."""
    for name, p in params.items():
        if not p.flags.writeable:
            raise ValueError(f"{name} is read-only: the model is frozen to serve (VGG8.freeze); "
                             f"train a copy instead: copy.deepcopy(model)")
    return params


class Adam:
    """Adam, as ``torch.optim.Adam(params, lr, betas, eps, weight_decay)``.

    Parameters
    ----------
    params : dict of str -> ndarray
        Live parameter arrays (``model.parameters()``), updated in place.
    lr : float
    betas : (float, float)
    eps : float
    weight_decay : float
        Coupled L2 penalty added to the gradient.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr <= 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        self.params = writable(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.t = 0
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads):
        """Apply one update from ``grads`` (same keys as ``params``)."""
        self.t += 1
        beta1, beta2 = self.betas
        bc1, bc2 = 1 - beta1 ** self.t, 1 - beta2 ** self.t
        # Every parameter array is cut into pieces of about PIECE elements, and the pieces
        # (of all arrays at once) are shared among the threads.
        flat = [(p.reshape(-1), np.ascontiguousarray(grads[k]).reshape(-1), self.m[k].reshape(-1),
                 self.v[k].reshape(-1)) for k, p in self.params.items()]
        pieces = [(arrays, a, z) for arrays in flat for a, z in split(arrays[0].size, -(-arrays[0].size // PIECE))]

        def run(i):
            arrays, a, z = pieces[i]
            _adam_update(*(x[a:z] for x in arrays), self.lr, beta1, beta2, self.eps, self.weight_decay, bc1, bc2)
        parallel_for(len(pieces), run)

    def state_dict(self):
        """Moments and step count: ``{"t": int, "m.<name>": array, "v.<name>": array}``."""
        return {"t": self.t, **{f"m.{k}": a.copy() for k, a in self.m.items()},
                **{f"v.{k}": a.copy() for k, a in self.v.items()}}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        for k in self.params:
            self.m[k][...] = state[f"m.{k}"]
            self.v[k][...] = state[f"v.{k}"]


class SGD:
    """SGD with momentum, as ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)``."""

    def __init__(self, params, lr=1e-2, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"invalid SGD settings: lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.params = writable(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.t = 0
        self.buf = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads):
        """Apply one update from ``grads`` (same keys as ``params``)."""
        self.t += 1
        for k, p in self.params.items():
            g = grads[k] + self.weight_decay * p if self.weight_decay else grads[k]
            if self.momentum:
                b = self.buf[k]
                if self.t == 1:
                    b[...] = g
                else:
                    b *= self.momentum
                    b += (1 - self.dampening) * g
                g = g + self.momentum * b if self.nesterov else b
            p -= self.lr * g

    def state_dict(self):
        return {"t": self.t, **{f"buf.{k}": a.copy() for k, a in self.buf.items()}}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        for k in self.params:
            self.buf[k][...] = state[f"buf.{k}"]
