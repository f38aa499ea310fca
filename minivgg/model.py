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

``forward`` and ``backward`` call each layer in turn, with two exceptions that save a pass
over the largest arrays and give the same numbers bit for bit (tested): a convolution
applies the ReLU after it while it writes its output (``Conv3x3.forward(relu=True)``),
and the backward pass through a ReLU and the pool after it is one in-place pass
(:func:`minivgg.pool.relu_maxpool2x2_backward_inplace`). Neither happens where a tape
watches the array in between, so Grad-CAM and friends see every layer as it is.
"""

import numpy as np

from . import denormals, pool
from .layers import Conv3x3, Dense, Dropout, Flatten, MaxPool2x2, ReLU
from .loss import softmax
from .preprocess import preprocessing_settings

PAPER_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
CONVS_PER_BLOCK = (1, 1, 2, 2, 2)


class Tape:
    """What one forward pass keeps for its backward pass; it belongs to the caller.

    ``model.forward(x, tape=tape)`` fills it, ``model.backward(dlogits, tape)`` uses it up:
    each layer's cache is dropped as soon as that layer's backward pass is done, so the
    memory of the activations is given back while the gradients are being computed (as
    PyTorch does unless told ``retain_graph=True``). To backpropagate again, run the
    forward pass again. Nothing of a call is ever stored on the model or its layers, so
    threads that share one model each use their own tape and cannot see each other's
    activations.

    Parameters
    ----------
    watch : iterable of str
        Layer names whose outputs (and, after ``backward``, the gradients reaching those
        outputs) are kept: Grad-CAM watches the layer it explains, the layers view each block.
    keep_caches : bool
        False records only the watched outputs (inference that needs no backward pass).
    reuse : dict, parameter name -> array, optional
        Gradients the caller no longer needs, typically the previous training step's once
        the optimiser has used them: ``backward`` writes the dense layers' new weight
        gradients into them instead of new arrays. The first dense layer's (51 MB for the
        paper's model) is too large for the memory allocator to recycle, and a fresh one
        every step sometimes stalled 70-90 ms while the system found the memory.

    Attributes
    ----------
    caches : dict, layer name -> that layer's cache (see :mod:`minivgg.layers`)
    outputs : dict, watched layer name -> its output
    output_grads : dict, watched layer name -> dL/d(its output), filled by ``backward``
    """

    def __init__(self, watch=(), keep_caches=True, reuse=None):
        self.watch = frozenset(watch)
        self.keep_caches = keep_caches
        self.reuse = dict(reuse or {})
        self.caches = {}
        self.outputs = {}
        self.output_grads = {}


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
        Seeds the weight initialisation.
    dtype : numpy dtype
        float32 (default) or float64 (for gradient checks).
    class_names : sequence of str, optional
        One name per class; stored in model files.

    The model holds only its weights and settings. Inference (``forward`` without a tape,
    ``infer``, ``predict_proba``) writes nothing, so one model serves many threads;
    training changes the weights, through the optimiser, and nothing else.

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
        if int(hidden) != hidden or hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {hidden}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.config = dict(num_classes=int(num_classes), channels=list(channels), hidden=int(hidden),
                           image_size=int(image_size), dropout=float(dropout), seed=int(seed))
        self.class_names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names given for {num_classes} classes")
        # How images become inputs (saved with the model, reused at prediction time); the
        # paper's pipeline by default, replaced by the data pipeline's settings in training.
        self.preprocessing = preprocessing_settings(self.config["image_size"])
        self.extra = {}             # free-form JSON metadata of a model file
        self.source = None          # the file it was loaded from, for messages
        # What a model file says about trusting the model (see minivgg.trust), set once,
        # at load or by fitting, before the model is shared: the model card (a dict), the
        # out-of-distribution detector (minivgg.ood) and the temperature-scaling record
        # (minivgg.calibration) whose temperature every probability is computed with.
        self.card = None
        self.ood = None
        self.calibration = None

        init_rng = np.random.default_rng([seed, 0])
        self.layers = []            # [(name, layer)] in forward order
        index, in_ch, conv_iter = 0, 3, iter(channels)
        for n_convs in CONVS_PER_BLOCK:
            for _ in range(n_convs):
                out_ch = next(conv_iter)
                self._add(f"features.{index}", Conv3x3(in_ch, out_ch, init_rng, self.dtype))
                self._add(f"features.{index + 1}", ReLU(inplace=True))
                index, in_ch = index + 2, out_ch
            self._add(f"features.{index}", MaxPool2x2())
            index += 1
        self._add("flatten", Flatten())
        flat = in_ch * (image_size // 32) ** 2
        self._add("classifier.0", Dense(flat, hidden, init_rng, self.dtype))
        self._add("classifier.1", ReLU(inplace=True))
        self._add("classifier.2", Dropout(dropout))
        self._add("classifier.3", Dense(hidden, hidden, init_rng, self.dtype))
        self._add("classifier.4", ReLU(inplace=True))
        self._add("classifier.5", Dropout(dropout))
        self._add("classifier.6", Dense(hidden, num_classes, init_rng, self.dtype))

    def _add(self, name, layer):
        layer.name = name
        self.layers.append((name, layer))

    def __getitem__(self, name):
        """The layer called ``name``, e.g. ``model["features.18"]``."""
        for n, layer in self.layers:
            if n == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(n for n, _ in self.layers)}")

    @property
    def layer_names(self):
        return [n for n, _ in self.layers]

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

    @property
    def temperature(self):
        """The softmax temperature T fitted by temperature scaling (1.0 for an uncalibrated model)."""
        return self.calibration["temperature"] if self.calibration else 1.0

    # ------------------------------------------------------------------ forward / backward

    def check_input(self, x):
        """Raise ``ValueError`` unless ``x`` is a batch this model accepts."""
        s = self.image_size
        if not isinstance(x, np.ndarray):
            raise ValueError(f"expected a numpy array of shape (N, 3, {s}, {s}), got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1:] != (3, s, s) or x.shape[0] < 1:
            hint = " (one image? use x[None] to add the batch axis)" if x.shape == (3, s, s) else ""
            raise ValueError(f"expected input of shape (N, 3, {s}, {s}) with N >= 1, got {x.shape}{hint}")
        if x.dtype != self.dtype:
            raise ValueError(f"expected {self.dtype} input for this {self.dtype} model, got {x.dtype} "
                             f"(convert with x.astype(np.{self.dtype}))")

    def forward(self, x, train=False, tape=None, rng=None):
        """Class scores (logits) for a batch.

        Parameters
        ----------
        x : ndarray, shape (N, 3, S, S), the model's dtype
        train : bool
            Dropout is active only when True (it then needs ``rng``).
        tape : Tape, optional
            Records what ``backward`` needs (and the watched outputs). Without a tape
            nothing is kept: each activation is freed once the next layer has used it.
        rng : numpy.random.Generator, optional
            Draws the dropout masks when ``train`` is True.

        Returns
        -------
        logits : ndarray, shape (N, num_classes)
        """
        self.check_input(x)
        if tape is not None:
            unknown = tape.watch - set(self.layer_names)
            if unknown:
                self[sorted(unknown)[0]]                    # KeyError naming the valid layers
        # An overflowing model gives non-finite logits, which callers check and report by
        # name (minivgg.predict.check_finite_output): no warning per kernel on the way.
        # Subnormal floats are flushed to zero meanwhile (see minivgg.denormals).
        with np.errstate(over="ignore", invalid="ignore"), denormals.flushed():
            relu_done = False
            for i, (name, layer) in enumerate(self.layers):
                following = self.layers[i + 1][1] if i + 1 < len(self.layers) else None
                if relu_done:
                    # This ReLU was applied by the convolution before it, in the pass that
                    # wrote the convolution's output: x is already max(x, 0). Its cache, as
                    # ReLU.forward's, is that output.
                    cache, relu_done = x, False
                elif isinstance(layer, Conv3x3):
                    # Fuse the ReLU that follows, unless the tape must keep the output before it.
                    relu_done = (isinstance(following, ReLU) and following.inplace
                                 and not (tape is not None and name in tape.watch))
                    x, cache = layer.forward(x, train=train, rng=rng, relu=relu_done)
                else:
                    x, cache = layer.forward(x, train=train, rng=rng)
                if tape is not None:
                    if tape.keep_caches:
                        tape.caches[name] = cache
                    if name in tape.watch:
                        # An in-place layer next (ReLU) would overwrite what the tape keeps.
                        tape.outputs[name] = x.copy() if getattr(following, "inplace", False) else x
        return x

    def backward(self, dlogits, tape, need_input_grad=True, stop_at=None):
        """Backpropagate ``dL/dlogits`` through the forward pass recorded on ``tape``.

        Parameters
        ----------
        dlogits : ndarray, shape (N, num_classes)
        tape : Tape, filled by ``forward(x, tape=tape)``
        need_input_grad : bool
            Training does not need ``dL/dx`` for the image; skipping it saves time.
        stop_at : str, optional
            Stop once the gradient reaching this layer's output is known (Grad-CAM needs
            no more) and return that gradient instead of ``dL/dx``.

        Returns
        -------
        dx : ndarray, shape (N, 3, S, S), or None when ``need_input_grad`` is False;
            with ``stop_at``, the gradient at that layer's output.
        grads : dict, parameter name (``features.0.weight`` ...) -> gradient, for every
            layer the pass went through (same keys and shapes as :meth:`parameters`).
        """
        if stop_at is not None:
            self[stop_at]                       # raises KeyError naming the valid layers
        if len(tape.caches) != len(self.layers):
            raise ValueError("backward needs the tape of a complete forward pass of this model, used once: "
                             "tape = Tape(); model.forward(x, tape=tape); model.backward(dlogits, tape)")
        with denormals.flushed():           # a confident model's gradients are subnormal (minivgg.denormals)
            return self._backward(np.asarray(dlogits, dtype=self.dtype), tape, need_input_grad, stop_at)

    def _backward(self, grad, tape, need_input_grad, stop_at):
        grads = {}
        first = self.layers[0][0]
        backwards = list(reversed(self.layers))
        relu_done = None
        for i, (name, layer) in enumerate(backwards):
            if name == relu_done:
                # The pool after this ReLU did its backward pass too (below).
                tape.caches.pop(name)
                continue
            if name in tape.watch:
                tape.output_grads[name] = grad.copy() if getattr(layer, "inplace", False) else grad
            if name == stop_at:
                return grad, grads
            cache = tape.caches.pop(name)
            below, below_layer = backwards[i + 1] if i + 1 < len(backwards) else (None, None)
            if (isinstance(layer, MaxPool2x2) and isinstance(below_layer, ReLU) and tape.caches.get(below) is cache
                    and below not in tape.watch and below != stop_at):
                # ReLU then pool, and the ReLU's output (the pool's input) is needed by
                # nothing else: one pass writes the gradient at the ReLU's input over it.
                grad, relu_done = pool.relu_maxpool2x2_backward_inplace(grad, cache), below
                continue
            into = {"weight_grad_into": tape.reuse.get(f"{name}.weight")} if isinstance(layer, Dense) else {}
            grad, layer_grads = layer.backward(grad, cache, need_dx=need_input_grad or name != first, **into)
            for key, g in layer_grads.items():
                grads[f"{name}.{key}"] = g
        return grad, grads

    def infer(self, x, batch_size=32, capture=()):
        """Logits for any number of images, in batches, inference mode (no dropout).

        Parameters
        ----------
        x : ndarray, shape (N, 3, S, S)
        batch_size : int
            Images per forward pass; bounds the memory.
        capture : iterable of str
            Layer names whose outputs are returned too (e.g. ``"classifier.4"``, the
            penultimate features).

        Returns
        -------
        logits : ndarray, shape (N, num_classes), float64
        captured : dict name -> ndarray (N, ...), only when ``capture`` names layers
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        capture = tuple(capture)
        logits, captured = [], {name: [] for name in capture}
        for i in range(0, len(x), batch_size):
            tape = Tape(watch=capture, keep_caches=False) if capture else None
            logits.append(self.forward(x[i:i + batch_size], tape=tape).astype(np.float64))
            for name in capture:
                captured[name].append(tape.outputs[name])
        logits = np.concatenate(logits) if logits else np.zeros((0, self.num_classes))
        if not capture:
            return logits
        return logits, {name: np.concatenate(v) for name, v in captured.items()}

    def softmax(self, logits):
        """The model's probabilities for logits it produced: ``softmax(logits / T)``, T = :attr:`temperature`."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature)

    def predict_proba(self, x, batch_size=32, capture=()):
        """Calibrated probabilities, (N, 3, S, S) -> (N, num_classes), in batches, inference mode.

        ``softmax(logits / T)`` with the model's :attr:`temperature`. With ``capture``
        (layer names, as :meth:`infer`), returns ``(probabilities, captured)``: one pass
        gives the probabilities and, say, the features the out-of-distribution score needs.
        """
        if not capture:
            return self.softmax(self.infer(x, batch_size))
        logits, captured = self.infer(x, batch_size, capture)
        return self.softmax(logits), captured

    # ------------------------------------------------------------------ parameters

    def parameters(self):
        """Live parameter arrays by PyTorch name (``features.0.weight`` ...). Optimisers update these."""
        return {f"{name}.{key}": value for name, layer in self.layers for key, value in layer.params.items()}

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

    def __repr__(self):
        c = self.config
        return (f"VGG8(num_classes={c['num_classes']}, channels={tuple(c['channels'])}, hidden={c['hidden']}, "
                f"image_size={c['image_size']}, dropout={c['dropout']}, dtype={self.dtype.name})")
