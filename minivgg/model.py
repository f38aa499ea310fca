"""VGG8, the paper's network, as a list of layers.

Architecture (paper, "Model Development"; Figure 3), for a 224x224 input::

    block 1   conv 3->64                              pool   224 -> 112
    block 2   conv 64->128                            pool   112 -> 56
    block 3   conv 128->256, conv 256->256            pool    56 -> 28
    block 4   conv 256->512, conv 512->512            pool    28 -> 14
    block 5   conv 512->512, conv 512->512            pool    14 -> 7
    classifier  512*7*7 = 25088 -> 512 -> 512 -> classes   (ReLU and dropout between)

Every conv is followed by a ReLU. Layer names follow torchvision's ``VGG`` module
(``features.0`` is the first conv, ``features.2`` the first pool, ``classifier.6``
the last dense layer), so ``state_dict()`` keys and shapes are exactly those of the
equivalent PyTorch model and weights move both ways.
"""

import numpy as np

from .layers import Conv3x3, Dense, Dropout, Flatten, MaxPool2x2, ReLU
from .loss import softmax

PAPER_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
CONVS_PER_BLOCK = (1, 1, 2, 2, 2)


class VGG8:
    """The paper's VGG8, with configurable width and input size.

    Parameters
    ----------
    num_classes : int
        Output units (2: RA vs Normal).
    channels : sequence of 8 ints
        Output channels of the eight conv layers.
    hidden : int
        Width of the two hidden dense layers.
    image_size : int
        Side of the square input; divisible by 32 (five 2x2 poolings).
    dropout : float
        Dropout probability in the classifier.
    seed : int
        Seeds the weight initialisation and the dropout masks.
    dtype : numpy dtype
        float32 (default) or float64 (for gradient checks).
    class_names : sequence of str, optional
        One name per class; stored in model files.

    Examples
    --------
    >>> model = VGG8(channels=(8, 8, 16, 16, 16, 16, 16, 16), hidden=32, image_size=64)
    >>> logits = model.forward(np.zeros((2, 3, 64, 64), np.float32))
    >>> logits.shape
    (2, 2)
    """

    def __init__(self, num_classes=2, channels=PAPER_CHANNELS, hidden=512, image_size=224,
                 dropout=0.5, seed=0, dtype=np.float32, class_names=None):
        channels = tuple(int(c) for c in channels)
        if len(channels) != 8 or min(channels) < 1:
            raise ValueError(f"channels must be 8 positive integers, got {channels}")
        if int(image_size) != image_size or image_size < 32 or image_size % 32:
            raise ValueError(f"image_size must be a positive multiple of 32 (five 2x2 poolings), got {image_size}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.config = dict(num_classes=int(num_classes), channels=list(channels), hidden=int(hidden),
                           image_size=int(image_size), dropout=float(dropout), seed=int(seed))
        self.class_names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names given for {num_classes} classes")
        self.preprocessing = {}     # filled by the data pipeline; saved with the model

        init_rng = np.random.default_rng([seed, 0])
        self.dropout_rng = np.random.default_rng([seed, 1])
        self.layers = []            # [(name, layer)] in forward order
        index, in_ch, conv_iter = 0, 3, iter(channels)
        for n_convs in CONVS_PER_BLOCK:
            for _ in range(n_convs):
                out_ch = next(conv_iter)
                self._add(f"features.{index}", Conv3x3(in_ch, out_ch, init_rng, self.dtype))
                self._add(f"features.{index + 1}", ReLU())
                index, in_ch = index + 2, out_ch
            self._add(f"features.{index}", MaxPool2x2())
            index += 1
        self._add("flatten", Flatten())
        flat = in_ch * (image_size // 32) ** 2
        self._add("classifier.0", Dense(flat, hidden, init_rng, self.dtype))
        self._add("classifier.1", ReLU())
        self._add("classifier.2", Dropout(dropout, self.dropout_rng))
        self._add("classifier.3", Dense(hidden, hidden, init_rng, self.dtype))
        self._add("classifier.4", ReLU())
        self._add("classifier.5", Dropout(dropout, self.dropout_rng))
        self._add("classifier.6", Dense(hidden, num_classes, init_rng, self.dtype))

        # Explanations read a layer's output and the gradient reaching it: name the
        # layers in ``watch`` and both are kept after forward/backward.
        self.watch = set()
        self.watched_outputs = {}
        self.watched_grads = {}

    def _add(self, name, layer):
        self.layers.append((name, layer))

    def __getitem__(self, name):
        """The layer called ``name``, e.g. ``model["features.18"]``."""
        for n, layer in self.layers:
            if n == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(n for n, _ in self.layers)}")

    @property
    def conv_layer_names(self):
        """Names of the eight conv layers, first to last."""
        return [n for n, layer in self.layers if isinstance(layer, Conv3x3)]

    @property
    def image_size(self):
        return self.config["image_size"]

    @property
    def num_classes(self):
        return self.config["num_classes"]

    # ------------------------------------------------------------------ forward / backward

    def check_input(self, x):
        """Raise ``ValueError`` unless ``x`` is a batch this model accepts."""
        s = self.image_size
        if not isinstance(x, np.ndarray):
            raise ValueError(f"expected a numpy array of shape (N, 3, {s}, {s}), got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1:] != (3, s, s) or x.shape[0] < 1:
            raise ValueError(f"expected input of shape (N, 3, {s}, {s}) with N >= 1, got {x.shape}")
        if x.dtype != self.dtype:
            raise ValueError(f"expected {self.dtype} input for this {self.dtype} model, got {x.dtype} "
                             f"(convert with x.astype(np.{self.dtype}))")

    def forward(self, x, train=False, keep=True):
        """Class scores (logits) for a batch.

        Parameters
        ----------
        x : ndarray, shape (N, 3, S, S), the model's dtype
        train : bool
            Dropout is active only when True.
        keep : bool
            Keep what ``backward`` needs. ``keep=False`` is for inference: intermediate
            activations are freed as soon as the next layer has used them.

        Returns
        -------
        logits : ndarray, shape (N, num_classes)
        """
        self.check_input(x)
        self.watched_outputs = {}
        for name, layer in self.layers:
            x = layer.forward(x, train=train, keep=keep)
            if name in self.watch:
                self.watched_outputs[name] = x
        return x

    def backward(self, dlogits, need_input_grad=True, stop_at=None):
        """Backpropagate ``dL/dlogits`` through the network after a ``forward(keep=True)``.

        Fills the gradients of every layer it passes (read them with :meth:`grads`).

        Parameters
        ----------
        dlogits : ndarray, shape (N, num_classes)
        need_input_grad : bool
            Training does not need ``dL/dx`` for the image; skipping it saves time.
        stop_at : str, optional
            Stop once the gradient reaching this layer's output is known (Grad-CAM needs
            no more) and return that gradient instead of ``dL/dx``.

        Returns
        -------
        dx : ndarray, shape (N, 3, S, S), or None when ``need_input_grad`` is False;
            with ``stop_at``, the gradient at that layer's output.
        """
        if stop_at is not None:
            self[stop_at]                       # raises KeyError naming the valid layers
        first_conv = self.layers[0][1]
        first_conv.need_input_grad = need_input_grad
        self.watched_grads = {}
        grad = np.asarray(dlogits, dtype=self.dtype)
        for name, layer in reversed(self.layers):
            if name in self.watch:
                self.watched_grads[name] = grad
            if name == stop_at:
                return grad
            grad = layer.backward(grad)
        return grad

    def predict_proba(self, x, batch_size=16):
        """Softmax probabilities, (N, 3, S, S) -> (N, num_classes), in batches, inference mode."""
        return np.concatenate([softmax(self.forward(x[i:i + batch_size], keep=False).astype(np.float64))
                               for i in range(0, len(x), batch_size)])

    # ------------------------------------------------------------------ parameters

    def parameters(self):
        """Live parameter arrays by PyTorch name (``features.0.weight`` ...). Optimisers update these."""
        return {f"{name}.{key}": value for name, layer in self.layers for key, value in layer.params.items()}

    def grads(self):
        """Gradients from the last ``backward``, same keys as :meth:`parameters`."""
        out = {}
        for name, layer in self.layers:
            for key in layer.params:
                if key not in layer.gradients:
                    raise RuntimeError("no gradients yet: call forward(x) and backward(dlogits) first")
                out[f"{name}.{key}"] = layer.gradients[key]
        return out

    def state_dict(self):
        """A copy of every parameter, keyed and shaped exactly as torchvision-style VGG's ``state_dict``."""
        return {k: v.copy() for k, v in self.parameters().items()}

    def load_state_dict(self, state):
        """Copy parameters in from ``state`` (e.g. a PyTorch ``state_dict`` turned into numpy arrays).

        Raises ``ValueError`` listing every missing, unexpected and mis-shaped entry at once.
        """
        params = self.parameters()
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        misshaped = [f"{k}: expected {params[k].shape}, got {tuple(np.shape(state[k]))}"
                     for k in params if k in state and tuple(np.shape(state[k])) != params[k].shape]
        problems = ([f"missing: {', '.join(missing)}"] if missing else []) + \
                   ([f"unexpected: {', '.join(unexpected)}"] if unexpected else []) + \
                   ([f"wrong shape: {'; '.join(misshaped)}"] if misshaped else [])
        if problems:
            raise ValueError("state dict does not fit this model: " + " | ".join(problems))
        for k, p in params.items():
            p[...] = np.asarray(state[k], dtype=self.dtype)

    def num_parameters(self):
        return sum(p.size for p in self.parameters().values())

    def save(self, path, extra=None):
        """Write this model to ``path`` (one ``.npz``, atomically). See :mod:`minivgg.modelfile`."""
        from .modelfile import save_model
        save_model(self, path, extra=extra)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`. See :mod:`minivgg.modelfile`."""
        from .modelfile import load_model
        return load_model(path)

    def __repr__(self):
        c = self.config
        return (f"VGG8(num_classes={c['num_classes']}, channels={tuple(c['channels'])}, hidden={c['hidden']}, "
                f"image_size={c['image_size']}, dropout={c['dropout']}, dtype={self.dtype.name})")
