"""Layers: small objects that hold parameters, gradients and what ``backward`` needs.

Every layer has the same two calls::

    out = layer.forward(x, train=False, keep=True)   # keep=False: inference only, store nothing
    dx  = layer.backward(dout)                       # fills layer.grads(), returns dL/dx

``layer.parameters()`` and ``layer.grads()`` return dicts with the same keys
(``"weight"``, ``"bias"``); ``backward`` overwrites the gradients (it does not
accumulate them, unlike PyTorch).
The arithmetic lives in the kernel modules (``conv``, ``pool``, ``activation``,
``dense``, ``dropout``); a layer only wires a kernel's forward to its backward.
"""

import numpy as np

from . import activation, conv, dense, dropout, pool


class Layer:
    """Base class: a layer without parameters."""

    def __init__(self):
        self.params = {}
        self.gradients = {}
        self.cache = None

    def parameters(self):
        """Live parameter arrays by name."""
        return self.params

    def grads(self):
        """Gradients from the last ``backward``, same keys as :meth:`parameters`."""
        return self.gradients

    def forward(self, x, train=False, keep=True):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def _cached(self):
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward pass with keep=True first")
        return self.cache

    def __repr__(self):
        return f"{type(self).__name__}()"


class Conv3x3(Layer):
    """3x3 convolution, stride 1, padding 1: (N, C, H, W) -> (N, K, H, W). See :mod:`minivgg.conv`."""

    def __init__(self, in_channels, out_channels, rng, dtype=np.float32):
        super().__init__()
        # He (Kaiming) normal with fan_in = C*9: keeps the variance of the activations
        # steady through ReLU layers, so a VGG without batch norm starts learning at once.
        std = np.sqrt(2.0 / (in_channels * 9))
        self.params["weight"] = (rng.standard_normal((out_channels, in_channels, 3, 3)) * std).astype(dtype)
        self.params["bias"] = np.zeros(out_channels, dtype=dtype)
        self.need_input_grad = True

    def forward(self, x, train=False, keep=True):
        self.cache = x if keep else None
        return conv.conv3x3_forward(np.ascontiguousarray(x), self.params["weight"], self.params["bias"])

    def backward(self, dout):
        dx, self.gradients["weight"], self.gradients["bias"] = conv.conv3x3_backward(
            dout, self._cached(), self.params["weight"], need_dx=self.need_input_grad)
        return dx

    def __repr__(self):
        k, c = self.params["weight"].shape[:2]
        return f"Conv3x3({c}, {k})"


class ReLU(Layer):
    """max(x, 0), any shape. See :mod:`minivgg.activation`."""

    def forward(self, x, train=False, keep=True):
        out = activation.relu_forward(x)
        self.cache = out if keep else None
        return out

    def backward(self, dout):
        return activation.relu_backward(dout, self._cached())


class MaxPool2x2(Layer):
    """2x2 max-pooling, stride 2: (N, C, H, W) -> (N, C, H/2, W/2). See :mod:`minivgg.pool`."""

    def forward(self, x, train=False, keep=True):
        self.cache = x if keep else None
        return pool.maxpool2x2_forward(np.ascontiguousarray(x))

    def backward(self, dout):
        return pool.maxpool2x2_backward(np.ascontiguousarray(dout), self._cached())


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), in C order (as ``torch.flatten(x, 1)``)."""

    def forward(self, x, train=False, keep=True):
        self.cache = x.shape if keep else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._cached())


class Dense(Layer):
    """Fully connected: (N, D) -> (N, O). See :mod:`minivgg.dense`."""

    def __init__(self, in_features, out_features, rng, dtype=np.float32):
        super().__init__()
        # U(-1/sqrt(D), 1/sqrt(D)), PyTorch's default for Linear. (torchvision's VGG uses
        # N(0, 0.01) instead, which leaves a narrow network's logits near zero for many epochs.)
        bound = 1.0 / np.sqrt(in_features)
        self.params["weight"] = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        self.params["bias"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x, train=False, keep=True):
        x = np.ascontiguousarray(x)
        self.cache = x if keep else None
        return dense.dense_forward(x, self.params["weight"], self.params["bias"])

    def backward(self, dout):
        dx, self.gradients["weight"], self.gradients["bias"] = dense.dense_backward(
            np.ascontiguousarray(dout), self._cached(), self.params["weight"])
        return dx

    def __repr__(self):
        o, d = self.params["weight"].shape
        return f"Dense({d}, {o})"


class Dropout(Layer):
    """Inverted dropout with probability ``p``, active only when ``train=True``. See :mod:`minivgg.dropout`.

    The mask comes from ``rng`` (a ``numpy.random.Generator``), so a seeded model
    drops the same units on every run.
    """

    def __init__(self, p, rng):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng

    def forward(self, x, train=False, keep=True):
        mask = dropout.dropout_mask(x.shape, self.p, self.rng, x.dtype) if train and self.p > 0 else None
        self.cache = (mask,) if keep else None        # mask None: inference, the identity
        return x if mask is None else dropout.dropout_forward(x, mask)

    def backward(self, dout):
        (mask,) = self._cached()
        return dout if mask is None else dropout.dropout_backward(dout, mask)

    def __repr__(self):
        return f"Dropout(p={self.p})"
