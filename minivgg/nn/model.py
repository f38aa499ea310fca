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
equivalent PyTorch model and weights move both ways. :func:`vgg8_layout` writes this
layout out once; the network, the model file's checks and ``minivgg info`` all read it.

``forward`` and ``backward`` call each layer in turn, except in two **fused blocks** that
save a pass over the largest arrays and give the same numbers bit for bit (tested):

* :class:`ConvReLU` (forward): a convolution applies the ReLU after it while it writes
  its output (``Conv3x3.forward(relu=True)``); in a pass that keeps no caches for a
  backward pass, :class:`ConvReLUPool` applies the max-pool after that as well;
* :class:`ReLUPool` (backward): the backward pass through a ReLU and the pool after it is
  one in-place pass (:func:`minivgg.nn.pool.relu_maxpool2x2_backward_inplace`).

Neither is used where a tape watches the array in between, so Grad-CAM and friends see
every layer as it is.
"""

from dataclasses import dataclass

import numpy as np

from minivgg.nn import denormals, pool
from minivgg.nn.layers import Conv3x3, Dense, Dropout, Flatten, MaxPool2x2, ReLU
from minivgg.nn.loss import softmax

PAPER_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
CONVS_PER_BLOCK = (1, 1, 2, 2, 2)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of :func:`vgg8_layout`.

    Attributes
    ----------
    name : str, torchvision's name (``features.0`` ...)
    kind : "conv", "relu", "pool", "flatten", "dense" or "dropout"
    shape : tuple, the layer's output shape for one image: (C, H, W) or (D,)
    params : dict, parameter name (``weight``, ``bias``) -> shape; empty for layers without
    """
    name: str
    kind: str
    shape: tuple
    params: dict


def vgg8_layout(num_classes=2, channels=PAPER_CHANNELS, hidden=512, image_size=224, **_):
    """Every layer of the VGG8 these settings describe, in forward order, as :class:`LayerSpec`; allocates nothing.

    Takes a model's ``config`` as keywords (``vgg8_layout(**config)``). Shapes, for input
    (3, S, S): a conv keeps H x W and sets the channels, a pool halves H and W
    (``H' = H / 2``), flatten gives ``C * (S/32)^2``.
    """
    layers, index, shape, conv_width = [], 0, (3, image_size, image_size), iter(channels)

    def add(name, kind, out_shape, **params):
        nonlocal shape
        layers.append(LayerSpec(name, kind, out_shape, params))
        shape = out_shape

    for n_convs in CONVS_PER_BLOCK:
        for _ in range(n_convs):
            c_in, c_out = shape[0], next(conv_width)
            add(f"features.{index}", "conv", (c_out, *shape[1:]), weight=(c_out, c_in, 3, 3), bias=(c_out,))
            add(f"features.{index + 1}", "relu", shape)
            index += 2
        add(f"features.{index}", "pool", (shape[0], shape[1] // 2, shape[2] // 2))
        index += 1
    add("flatten", "flatten", (int(np.prod(shape)),))
    for i, width in ((0, hidden), (3, hidden), (6, num_classes)):
        add(f"classifier.{i}", "dense", (width,), weight=(width, shape[0]), bias=(width,))
        if i < 6:
            add(f"classifier.{i + 1}", "relu", shape)
            add(f"classifier.{i + 2}", "dropout", shape)
    return layers


def parameter_shapes(config):
    """``{name: shape}`` of every parameter of the VGG8 that ``config`` describes (no allocation)."""
    return {f"{spec.name}.{key}": shape for spec in vgg8_layout(**config) for key, shape in spec.params.items()}


CONV_RELUS = tuple(s.name for s in vgg8_layout() if s.kind == "relu" and s.name.startswith("features."))


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
    caches : dict, layer name -> that layer's cache (see :mod:`minivgg.nn.layers`)
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

        init_rng = np.random.default_rng([seed, 0])          # draws the weights in layer order
        make = {"conv": lambda s: Conv3x3(s.params["weight"][1], s.params["weight"][0], init_rng, self.dtype),
                "dense": lambda s: Dense(s.params["weight"][1], s.params["weight"][0], init_rng, self.dtype),
                "relu": lambda s: ReLU(inplace=True), "pool": lambda s: MaxPool2x2(),
                "flatten": lambda s: Flatten(), "dropout": lambda s: Dropout(dropout)}
        self.layers = []            # [(name, layer)] in forward order
        for spec in vgg8_layout(**self.config):
            layer = make[spec.kind](spec)
            layer.name = spec.name
            self.layers.append((spec.name, layer))

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

    def forward_blocks(self, watch=frozenset(), pools=False):
        """The forward pass as steps: single layers, and a :class:`ConvReLU` for each conv whose output
        nobody watches (``watch``: layer names whose outputs a tape keeps); with ``pools`` (a pass
        that keeps no caches for a backward pass) a :class:`ConvReLUPool` where a max-pool follows
        as well and nobody watches the ReLU's output either."""
        blocks, layers, i = [], self.layers, 0
        while i < len(layers):
            name, layer = layers[i]
            following = layers[i + 1][1] if i + 1 < len(layers) else None
            then = layers[i + 2][1] if i + 2 < len(layers) else None
            if isinstance(layer, Conv3x3) and isinstance(following, ReLU) and following.inplace and name not in watch:
                if pools and isinstance(then, MaxPool2x2) and layers[i + 1][0] not in watch:
                    blocks.append(ConvReLUPool(layers[i], layers[i + 1], layers[i + 2]))
                    i += 3
                    continue
                blocks.append(ConvReLU(layers[i], layers[i + 1]))
                i += 2
            else:
                blocks.append(SingleLayer(name, layer))
                i += 1
        return blocks

    def forward(self, x, train=False, tape=None, rng=None, start=None):
        """Class scores (logits) for a batch.

        Parameters
        ----------
        x : ndarray, shape (N, 3, S, S), the model's dtype; with ``start``, the input of that layer
        train : bool
            Dropout is active only when True (it then needs ``rng``).
        tape : Tape, optional
            Records what ``backward`` needs (and the watched outputs). Without a tape
            nothing is kept: each activation is freed once the next layer has used it.
        rng : numpy.random.Generator, optional
            Draws the dropout masks when ``train`` is True.
        start : str, optional
            Begin at this layer, ``x`` being what the layers before it made (Kernel-SHAP
            computes the first block of its coalition images itself:
            :mod:`minivgg.explain.first_block`). It must begin a step of the pass
            (:meth:`forward_blocks`), e.g. ``"features.3"``, the layer after the first pool.

        Returns
        -------
        logits : ndarray, shape (N, num_classes)
        """
        if start is None:
            self.check_input(x)
        watch = frozenset() if tape is None else tape.watch
        unknown = (watch | ({start} if start else set())) - set(self.layer_names)
        if unknown:
            self[sorted(unknown)[0]]                    # KeyError naming the valid layers
        # An overflowing model gives non-finite logits, which callers check and report by
        # name (Classifier.check_finite): no warning per kernel on the way.
        # Subnormal floats are flushed to zero meanwhile (see minivgg.nn.denormals).
        with np.errstate(over="ignore", invalid="ignore"), denormals.flushed():
            names = self.layer_names
            blocks = self.forward_blocks(watch, pools=tape is None or not tape.keep_caches)
            if start is not None:
                starts = [block.names[0] for block in blocks]
                if start not in starts:
                    raise ValueError(f"start must be a layer that begins a step of the pass, one of "
                                     f"{', '.join(starts)}; got {start!r}")
                blocks = blocks[starts.index(start):]
            for block in blocks:
                x, caches = block.forward(x, train, rng)
                if tape is None:
                    continue
                if tape.keep_caches:
                    tape.caches.update(caches)
                last = block.names[-1]
                if last in watch:
                    # An in-place layer next (ReLU) would overwrite what the tape keeps.
                    k = names.index(last) + 1
                    following = self.layers[k][1] if k < len(names) else None
                    tape.outputs[last] = x.copy() if getattr(following, "inplace", False) else x
        return x

    def backward_blocks(self, tape, stop_at=None):
        """The backward pass as steps, last layer first: single layers, and a :class:`ReLUPool` for each
        ReLU + pool whose ReLU output is needed by nothing else (not watched, not where the pass stops)."""
        blocks, layers, i = [], self.layers[::-1], 0
        while i < len(layers):
            name, layer = layers[i]
            below, below_layer = layers[i + 1] if i + 1 < len(layers) else (None, None)
            if (isinstance(layer, MaxPool2x2) and isinstance(below_layer, ReLU) and name != stop_at
                    and name not in tape.watch and below not in tape.watch and below != stop_at
                    and tape.caches.get(below) is tape.caches.get(name)):
                blocks.append(ReLUPool(name, below))
                i += 2
            else:
                blocks.append(SingleLayer(name, layer))
                i += 1
        return blocks

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
        grad, grads, first = np.asarray(dlogits, dtype=self.dtype), {}, self.layer_names[0]
        with denormals.flushed():           # a confident model's gradients are subnormal (minivgg.nn.denormals)
            for block in self.backward_blocks(tape, stop_at):
                name = block.names[0]
                if name in tape.watch:
                    inplace = getattr(self[name], "inplace", False)
                    tape.output_grads[name] = grad.copy() if inplace else grad
                if name == stop_at:
                    return grad, grads
                need_dx = need_input_grad or block.names[-1] != first
                grad, layer_grads = block.backward(grad, tape, need_dx)
                grads.update(layer_grads)
        return grad, grads

    def infer(self, x, batch_size=32, capture=(), start=None):
        """Logits for any number of images, in batches, inference mode (no dropout).

        Parameters
        ----------
        x : ndarray, shape (N, 3, S, S) (with ``start``: the input of that layer, as :meth:`forward`)
        batch_size : int
            Images per forward pass; bounds the memory.
        capture : iterable of str
            Layer names whose outputs are returned too (e.g. ``"classifier.4"``, the
            penultimate features).
        start : str, optional, the layer to begin at (:meth:`forward`)

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
            logits.append(self.forward(x[i:i + batch_size], tape=tape, start=start).astype(np.float64))
            for name in capture:
                captured[name].append(tape.outputs[name])
        logits = np.concatenate(logits) if logits else np.zeros((0, self.num_classes))
        if not capture:
            return logits
        return logits, {name: np.concatenate(v) for name, v in captured.items()}

    def softmax(self, logits):
        """Probabilities for logits this network produced: ``softmax(logits)``.

        (A deployed :class:`minivgg.deploy.Classifier` divides by its calibrated temperature first.)
        """
        return softmax(np.asarray(logits, dtype=np.float64))

    def predict_proba(self, x, batch_size=32, capture=(), start=None):
        """Probabilities, (N, 3, S, S) -> (N, num_classes), in batches, inference mode.

        With ``capture`` (layer names, as :meth:`infer`), returns ``(probabilities, captured)``;
        ``start``: begin at that layer (:meth:`forward`).
        """
        if not capture:
            return self.softmax(self.infer(x, batch_size, start=start))
        logits, captured = self.infer(x, batch_size, capture, start)
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

    def freeze(self):
        """Make this model one that serves: every parameter read-only (each kernel a read-only copy), and every
        convolution's Winograd transforms of its kernel computed once, here (:meth:`Conv3x3.freeze`), not in
        every forward pass.

        A single 224-px image's forward pass of the paper's model took 50 -> 45 ms on a 2-core Xeon
        (the transforms, and Winograd taking im2col's place on 14x14 maps; README, "Benchmarks and
        speed"). Costs their memory: 2.9x the convolution weights
        (105 MB for the paper's model). Returns the model. Call it before the model is shared between
        threads (it changes the layers); afterwards an optimiser step or an in-place write to a
        weight raises ``ValueError``, while ``copy.deepcopy(model)`` gives a writable, unfrozen copy.
        ``minivgg predict``, ``explain``, ``evaluate``, the terminal app and the Dask workers serve
        frozen models.
        """
        for spec in vgg8_layout(**self.config):
            layer = self[spec.name]
            if isinstance(layer, Conv3x3):
                layer.freeze(side=spec.shape[1])        # a conv's output is as large as its input
            else:
                layer.freeze()
        return self

    @property
    def frozen(self):
        """True when the model serves (:meth:`freeze`): its weights are read-only."""
        return not any(p.flags.writeable for p in self.parameters().values())

    def num_parameters(self):
        return sum(p.size for p in self.parameters().values())

    def __repr__(self):
        c = self.config
        return (f"VGG8(num_classes={c['num_classes']}, channels={tuple(c['channels'])}, hidden={c['hidden']}, "
                f"image_size={c['image_size']}, dropout={c['dropout']}, dtype={self.dtype.name})")


# ---------------------------------------------------------------------- the steps of a pass


@dataclass(frozen=True)
class SingleLayer:
    """One layer as a step of a pass: its own forward and backward (:mod:`minivgg.nn.layers`)."""
    name: str
    layer: object

    @property
    def names(self):
        return (self.name,)

    def forward(self, x, train, rng):
        out, cache = self.layer.forward(x, train=train, rng=rng)
        return out, {self.name: cache}

    def backward(self, grad, tape, need_dx):
        cache = tape.caches.pop(self.name)
        into = {"weight_grad_into": tape.reuse.get(f"{self.name}.weight")} if isinstance(self.layer, Dense) else {}
        grad, layer_grads = self.layer.backward(grad, cache, need_dx=need_dx, **into)
        return grad, {f"{self.name}.{key}": g for key, g in layer_grads.items()}


@dataclass(frozen=True)
class ConvReLU:
    """Fused forward block: a 3x3 convolution and the ReLU after it, in the pass that writes the output.

    ``out = max(conv(x), 0)``, (N, C, H, W) -> (N, K, H, W), equal bit for bit to the two
    layers one after the other, without a second pass over the output. The caches are
    the two layers' own: the conv's input, and the ReLU's output (as ``ReLU.forward``'s).
    """
    conv: tuple        # (name, Conv3x3)
    relu: tuple        # (name, ReLU)

    @property
    def names(self):
        return (self.conv[0], self.relu[0])

    def forward(self, x, train, rng):
        (conv_name, conv), (relu_name, _) = self.conv, self.relu
        out, cache = conv.forward(x, train=train, rng=rng, relu=True)
        return out, {conv_name: cache, relu_name: out}


@dataclass(frozen=True)
class ConvReLUPool:
    """Fused forward block of a pass that keeps no caches: a 3x3 convolution, its ReLU and the 2x2 max-pool after.

    ``out = maxpool2x2(max(conv(x), 0))``, (N, C, H, W) -> (N, K, H/2, W/2), equal bit for bit
    to the three layers in turn. For a first layer (the direct algorithm) the convolution's
    full-size output, four times the pooled one, is never written
    (:func:`minivgg.nn.conv.direct_relu_maxpool_rows`): 13 MB per image for the paper's
    224-pixel input. No caches: the backward pass would need the ReLU's output.
    """
    conv: tuple        # (name, Conv3x3)
    relu: tuple        # (name, ReLU)
    pool: tuple        # (name, MaxPool2x2)

    @property
    def names(self):
        return (self.conv[0], self.relu[0], self.pool[0])

    def forward(self, x, train, rng):
        # Every map VGG8 pools has even sides: its input side is a multiple of 32 (checked).
        return self.conv[1].forward(x, train=train, rng=rng, relu=True, pool=True)[0], {}


@dataclass(frozen=True)
class ReLUPool:
    """Fused backward block: a 2x2 max-pool's backward pass and the ReLU's before it, in one in-place pass.

    ``dx = relu'(a) * pool_backward(dout)``, (N, C, H/2, W/2) -> (N, C, H, W), written over
    the ReLU's output ``a`` (the pool's input, which nothing else needs any more): no fresh
    array of the layer's full size. Equal bit for bit to the two layers' backward passes.
    """
    pool_name: str
    relu_name: str

    @property
    def names(self):
        return (self.pool_name, self.relu_name)

    def backward(self, grad, tape, need_dx):
        cache = tape.caches.pop(self.pool_name)
        tape.caches.pop(self.relu_name)
        return pool.relu_maxpool2x2_backward_inplace(grad, cache), {}
