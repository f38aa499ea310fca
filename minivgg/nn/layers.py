"""Layers: small objects that hold parameters and wire each kernel's forward to its backward.

Every layer has the same two calls (the CS231n convention)::

    out, cache = layer.forward(x, train=False, rng=None)   # cache: what backward needs
    dx, grads  = layer.backward(dout, cache)               # grads: {"weight": dW, "bias": db}

A layer keeps nothing from a call: the ``cache`` belongs to whoever called ``forward``
and is handed back to ``backward``. So one layer (and one model) can serve any number
of threads at once, and a backward pass can never pick up another call's input.

``layer.params`` maps ``"weight"`` / ``"bias"`` to the live parameter arrays; ``grads``
has the same keys. The arithmetic lives in the kernel modules (``conv``, ``pool``,
``activation``, ``dense``, ``dropout``). Each layer checks its input and names itself
and the shape it expected when the input does not fit.
"""

import numpy as np

from minivgg.nn import activation, conv, dense, dropout, pool


class LayerInputError(ValueError):
    """An input a layer cannot take; the message names the layer and the shape it expects."""


class Layer:
    """Base class: a layer without parameters.

    ``name`` is set by the network that holds the layer (e.g. ``"features.3"``) and is
    only used in error messages.
    """

    def __init__(self):
        self.params = {}
        self.name = None

    def forward(self, x, train=False, rng=None):
        """Returns ``(out, cache)``."""
        raise NotImplementedError

    def freeze(self):
        """Serve: the parameters become read-only (an optimiser step or an in-place write raises
        ``ValueError``; a copy of the layer, by ``copy.deepcopy`` or pickle, is writable again)."""
        for value in self.params.values():
            value.flags.writeable = False

    def backward(self, dout, cache, need_dx=True):
        """Returns ``(dx, grads)``; ``need_dx=False`` lets a layer skip ``dx`` (returning None)."""
        raise NotImplementedError

    def _fail(self, expected, x):
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        where = f"{self.name} " if self.name else ""
        raise LayerInputError(f"{where}{self!r}: expected input {expected}, got {got}")

    def __repr__(self):
        return f"{type(self).__name__}()"


def _check_float(layer, x, dtype):
    if not isinstance(x, np.ndarray):
        layer._fail("a numpy array", x)
    if x.dtype != dtype:
        where = f"{layer.name} " if layer.name else ""
        raise LayerInputError(f"{where}{layer!r}: expected {np.dtype(dtype).name} input (the dtype of its "
                              f"weights), got {x.dtype}")


class Conv3x3(Layer):
    """3x3 convolution, stride 1, padding 1: (N, C, H, W) -> (N, K, H, W). See :mod:`minivgg.nn.conv`.

    cache: the input ``x`` (dW needs it).
    """

    def __init__(self, in_channels, out_channels, rng, dtype=np.float32):
        super().__init__()
        # He (Kaiming) normal with fan_in = C*9: keeps the variance of the activations
        # steady through ReLU layers, so a VGG without batch norm starts learning at once.
        std = np.sqrt(2.0 / (in_channels * 9))
        self.params["weight"] = (rng.standard_normal((out_channels, in_channels, 3, 3)) * std).astype(dtype)
        self.params["bias"] = np.zeros(out_channels, dtype=dtype)
        self.transformed = None       # the kernel's Winograd transforms, kept once frozen (conv.KernelTransforms)

    def freeze(self, side=None):
        """Serve: read-only parameters (see :meth:`Layer.freeze`), and the kernel's Winograd transforms for
        input maps ``side`` pixels square computed once, here, instead of in every forward pass
        (:func:`minivgg.nn.conv.transform_kernel`; None: keep none)."""
        # A copy: a view of the old array, made before, could still write it (and the transform would go stale).
        self.params["weight"] = self.params["weight"].copy()
        super().freeze()
        self.transformed = None if side is None else conv.transform_kernel(self.params["weight"], side)

    def __getstate__(self):
        # A copy (deepcopy, pickle) gets writable weights and keeps no transform: it may be changed.
        return {**vars(self), "transformed": None}

    def forward(self, x, train=False, rng=None, relu=False, pool=False):
        """``relu=True``: the output of this layer and a ReLU after it; ``pool=True`` as well: and a 2x2
        max-pool after that (see VGG8.forward; :func:`minivgg.nn.conv.conv3x3_forward`)."""
        w = self.params["weight"]
        k, c = w.shape[:2]
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != c:
            self._fail(f"(N, {c}, H, W)", x)
        _check_float(self, x, w.dtype)
        x = np.ascontiguousarray(x)
        # The kept transform is used only while it belongs to the layer's kernel (one put in
        # its place since, by ``params["weight"] = ...``, has none).
        transformed = self.transformed if self.transformed is not None and self.transformed.weight is w else None
        return conv.conv3x3_forward(x, w, self.params["bias"], relu=relu, pool=pool, transformed=transformed), x

    def backward(self, dout, cache, need_dx=True):
        dx, dw, db = conv.conv3x3_backward(dout, cache, self.params["weight"], need_dx=need_dx)
        return dx, {"weight": dw, "bias": db}

    def __repr__(self):
        k, c = self.params["weight"].shape[:2]
        return f"Conv3x3({c}, {k})"


class ReLU(Layer):
    """max(x, 0), any shape. See :mod:`minivgg.nn.activation`.

    cache: the output (it has the sign pattern of the input).

    ``inplace=True`` (as torchvision's ``nn.ReLU(inplace=True)``) overwrites the input
    with the output, and the incoming gradient with the outgoing one, instead of
    writing new arrays. VGG8 uses it: there, a ReLU's input is a fresh convolution or
    dense output that nothing else reads, and its ``dout`` a fresh gradient.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x, train=False, rng=None):
        if not isinstance(x, np.ndarray):
            self._fail("a numpy array", x)
        out = activation.relu_forward(x, out=x if self.inplace and x.flags.c_contiguous else None)
        return out, out

    def backward(self, dout, cache, need_dx=True):
        inplace = self.inplace and dout.flags.c_contiguous and dout.flags.writeable
        return activation.relu_backward(dout, cache, dx=dout if inplace else None), {}

    def __repr__(self):
        return "ReLU(inplace=True)" if self.inplace else "ReLU()"


class MaxPool2x2(Layer):
    """2x2 max-pooling, stride 2: (N, C, H, W) -> (N, C, H/2, W/2). See :mod:`minivgg.nn.pool`.

    cache: the input (the backward pass re-finds each window's winner in it).
    """

    def forward(self, x, train=False, rng=None):
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[2] % 2 or x.shape[3] % 2:
            self._fail("(N, C, H, W) with H and W even", x)
        x = np.ascontiguousarray(x)
        return pool.maxpool2x2_forward(x), x

    def backward(self, dout, cache, need_dx=True):
        return pool.maxpool2x2_backward(np.ascontiguousarray(dout), cache), {}


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), in C order (as ``torch.flatten(x, 1)``). cache: the input shape."""

    def forward(self, x, train=False, rng=None):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            self._fail("(N, ...)", x)
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dout, cache, need_dx=True):
        return dout.reshape(cache), {}


class Dense(Layer):
    """Fully connected: (N, D) -> (N, O). See :mod:`minivgg.nn.dense`. cache: the input."""

    def __init__(self, in_features, out_features, rng, dtype=np.float32):
        super().__init__()
        # U(-1/sqrt(D), 1/sqrt(D)), PyTorch's default for Linear. (torchvision's VGG uses
        # N(0, 0.01) instead, which leaves a narrow network's logits near zero for many epochs.)
        bound = 1.0 / np.sqrt(in_features)
        self.params["weight"] = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        self.params["bias"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x, train=False, rng=None):
        o, d = self.params["weight"].shape
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != d:
            self._fail(f"(N, {d})", x)
        _check_float(self, x, self.params["weight"].dtype)
        x = np.ascontiguousarray(x)
        return dense.dense_forward(x, self.params["weight"], self.params["bias"]), x

    def backward(self, dout, cache, need_dx=True, weight_grad_into=None):
        """``weight_grad_into``: an array to write dL/dW into (see VGG8.backward), or None for a new one."""
        w = self.params["weight"]
        into = weight_grad_into
        if into is not None and not (into.shape == w.shape and into.dtype == w.dtype and into.flags.c_contiguous
                                     and into.flags.writeable):
            raise LayerInputError(f"{self.name or self!r}: weight_grad_into must be a writeable C-contiguous "
                                  f"{w.dtype} array of shape {w.shape}, got {into.dtype} {into.shape}")
        dx, dw, db = dense.dense_backward(np.ascontiguousarray(dout), cache, w, dw=into)
        return dx, {"weight": dw, "bias": db}

    def __repr__(self):
        o, d = self.params["weight"].shape
        return f"Dense({d}, {o})"


class Dropout(Layer):
    """Inverted dropout with probability ``p``, active only when ``train=True``. See :mod:`minivgg.nn.dropout`.

    The mask is drawn from the ``rng`` passed to ``forward`` (a ``numpy.random.Generator``),
    so a seeded training run drops the same units every time. cache: the mask, or None at
    inference (the identity).
    """

    def __init__(self, p):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x, train=False, rng=None):
        if not (train and self.p > 0):
            return x, None
        if rng is None:
            raise ValueError(f"{self.name or 'Dropout'}: train=True draws dropout masks; pass "
                             f"rng=np.random.default_rng(seed) so that the run can be repeated")
        mask = dropout.dropout_mask(x.shape, self.p, rng, x.dtype)
        return dropout.dropout_forward(x, mask), mask

    def backward(self, dout, cache, need_dx=True):
        return (dout if cache is None else dropout.dropout_backward(dout, cache)), {}

    def __repr__(self):
        return f"Dropout(p={self.p})"
