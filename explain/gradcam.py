"""Grad-CAM (Selvaraju et al., 2017) on any minivgg conv layer.

For a target class ``c`` with score ``y_c`` (its logit, before the softmax) and a
layer with activations ``A`` of shape (N, K, h, w)::

    alpha[n, k] = mean_{i, j} dy_c / dA[n, k, i, j]           channel weights
    cam[n]      = ReLU( sum_k alpha[n, k] * A[n, k] )           (h, w)
    map[n]      = bilinear upsampling of cam[n] to the input size (S, S)

The default layer is the deepest conv ReLU whose maps are at least 14x14
(:data:`MIN_MAP_SIDE`; :func:`default_layer`). Selvaraju et al. take the last conv layer,
the most class-specific one; but its maps are coarse, and once they are smaller than
the paper's 14x14 (224-pixel input) a map cannot say *which* joint it means: a 128-pixel
model's last conv maps are 8x8, one cell per 16 pixels, wider than a finger.
So the paper's VGG8 at 224 pixels keeps its last conv ReLU (``features.19``, 14x14),
and the 128-pixel presets use the last ReLU of block 4 (``features.14``, 16x16), which
still sees 62 x 62 input pixels (its receptive field). Any layer name works, e.g.
``features.18`` for the last conv output before its ReLU.

**HiResCAM** (Draelos & Carin, 2020; ``method="hirescam"``) drops the averaging::

    cam[n]      = ReLU( sum_k dy_c / dA[n, k] * A[n, k] )       elementwise, then summed over k

Grad-CAM gives channel ``k`` one weight for the whole image, the mean of its gradient
over positions. When the evidence is small and local (a lesion at one joint) and the
gradient changes sign from place to place, that mean can be small or of the other sign,
and the map points elsewhere. HiResCAM weighs each position by its own gradient, so its
map is the first-order contribution of each position of the layer to ``y_c`` (summed over
channels). Measured on the bundled model (``benchmarks/bench_explain.py table``): at
``features.14`` Grad-CAM's maximum was on a lesion in none of 100 RA phantoms, HiResCAM's
in 96 (README, "Explanations").

The raw map keeps its units (comparable across images of one model); the normalised
map is ``raw / max(raw)`` per image. When a map is zero everywhere (every weighted
activation negative) the result says so in ``empty`` rather than dividing by zero.

**Signed maps.** The ReLU keeps only the evidence *for* the class; what speaks against it
is erased. ``signed`` is the same map before the ReLU, divided by its largest |value|
(in [-1, 1]): a picture can show the negative evidence in a second colour. On the bundled
model this is where Grad-CAM's lesions went: its channel weights make the lesion cells
the most *negative* part of the map, so the ReLU erases them (README, "Explanations").
"""

from dataclasses import dataclass

import numpy as np

from minivgg.nn.layers import Conv3x3, MaxPool2x2
from minivgg.nn.model import Tape

METHODS = {"gradcam": "Grad-CAM", "hirescam": "HiResCAM"}   # method -> its name in pictures (module docstring)
MIN_MAP_SIDE = 14


def default_layer(model):
    """The deepest conv ReLU whose output is at least :data:`MIN_MAP_SIDE` pixels on a side.

    When even the first conv's maps are smaller (a tiny input), the first conv's ReLU.
    """
    names = model.layer_names
    side, best = model.image_size, None
    for i, (_, layer) in enumerate(model.layers):
        if isinstance(layer, MaxPool2x2):
            side //= 2
        elif isinstance(layer, Conv3x3) and (side >= MIN_MAP_SIDE or best is None):
            best = names[i + 1]                        # the ReLU that follows every conv
    return best


def upsample_bilinear(maps, size):
    """Bilinear resize of (N, h, w) maps to (N, size, size) with half-pixel centres.

    Output pixel ``i`` samples the input at ``(i + 0.5) * h / size - 0.5`` (clamped to the
    edges), the convention of PyTorch's ``interpolate(mode="bilinear", align_corners=False)``
    and of OpenCV's ``resize``.
    """
    maps = np.asarray(maps, dtype=np.float64)

    def weights(n_in):
        src = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = src - lo
        m = np.zeros((size, n_in))
        m[np.arange(size), lo] += 1 - frac
        m[np.arange(size), hi] += frac
        return m

    wy, wx = weights(maps.shape[1]), weights(maps.shape[2])
    return np.einsum("yh,nhw,xw->nyx", wy, maps, wx)


@dataclass
class GradCAMResult:
    """Grad-CAM maps for a batch.

    Attributes
    ----------
    raw : (N, S, S) upsampled maps in the layer's units
    normalized : (N, S, S) in [0, 1] (all zero where ``empty``)
    signed : (N, S, S) in [-1, 1], the map before the ReLU divided by its largest |value|
    low_res : (N, h, w) the maps before upsampling
    target : (N,) the explained class of each image
    probabilities : (N, classes) the model's (calibrated) probabilities
    empty : (N,) bool, True where the map is zero everywhere
    layer : str
    method : str, "gradcam" or "hirescam"
    """
    raw: np.ndarray
    normalized: np.ndarray
    low_res: np.ndarray
    target: np.ndarray
    probabilities: np.ndarray
    empty: np.ndarray
    layer: str
    method: str = "gradcam"
    signed: np.ndarray = None

    @property
    def warnings(self):
        """Human-readable notes, e.g. which maps are empty."""
        return [f"image {i}: Grad-CAM map is zero everywhere for class {t} at {self.layer} "
                f"(no positive evidence in this layer)" for i, (t, e) in enumerate(zip(self.target, self.empty)) if e]


class GradCAM:
    """Grad-CAM explainer for a :class:`minivgg.VGG8`.

    Parameters
    ----------
    model : VGG8
    layer : str, optional
        Layer whose output is explained (default: :func:`default_layer`, the deepest conv
        ReLU with maps of at least 14x14).
    method : "gradcam" (default, the paper's) or "hirescam" (see the module docstring)

    Examples
    --------
    >>> cam = GradCAM(model)                                   # doctest: +SKIP
    >>> result = cam(x, target=1)        # x: (N, 3, S, S); target: class index or None
    >>> result.normalized.shape          # (N, S, S)
    """

    def __init__(self, model, layer=None, method="gradcam"):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.model = model
        self.method = method
        if layer is None:
            layer = default_layer(model)
        model[layer]                                   # KeyError naming the valid layers
        self.layer = layer

    @property
    def name(self):
        """What the map is called in pictures and messages: "Grad-CAM" or "HiResCAM"."""
        return METHODS[self.method]

    def __call__(self, x, target=None):
        """Explain ``x`` (N, 3, S, S) for class ``target`` (int, array of N ints, or None = predicted)."""
        model = self.model
        model.check_input(x)
        n = len(x)
        if target is not None:
            target = np.broadcast_to(np.asarray(target), (n,)).copy()
            if not np.issubdtype(target.dtype, np.integer) or np.any(target < 0) or np.any(target >= model.num_classes):
                raise ValueError(f"target must be a class index in [0, {model.num_classes}) "
                                 f"(classes: {', '.join(model.class_names)}), got {target.tolist()}")
        tape = Tape(watch={self.layer})          # this call's own record: safe beside other threads
        logits = model.forward(x, tape=tape)
        activations = tape.outputs[self.layer]
        if activations.ndim != 4:
            raise ValueError(f"Grad-CAM needs a spatial layer (N, K, h, w); {self.layer} gives {activations.shape}")
        if target is None:
            target = logits.argmax(axis=1)
        dlogits = np.zeros_like(logits)
        dlogits[np.arange(n), target] = 1                 # d y_c / d logits: the class score itself
        grads, _ = model.backward(dlogits, tape, need_input_grad=False, stop_at=self.layer)
        grads, activations = grads.astype(np.float64), activations.astype(np.float64)
        if self.method == "gradcam":
            alpha = grads.mean(axis=(2, 3))                                      # (N, K): one weight per channel
            before_relu = np.einsum("nk,nkhw->nhw", alpha, activations)
        else:                                                                    # hirescam: a weight per position
            before_relu = (grads * activations).sum(axis=1)
        low = np.maximum(before_relu, 0)
        raw = upsample_bilinear(low, x.shape[-1])
        both_signs = upsample_bilinear(before_relu, x.shape[-1])
        reach = np.abs(both_signs).reshape(n, -1).max(axis=1)
        signed = both_signs / np.where(reach > 0, reach, 1.0)[:, None, None]
        peak = raw.reshape(n, -1).max(axis=1)
        empty = peak <= 0
        normalized = np.where(empty[:, None, None], 0.0, raw / np.where(empty, 1.0, peak)[:, None, None])
        return GradCAMResult(raw=raw, normalized=normalized, low_res=low, target=target,
                             probabilities=model.softmax(logits), empty=empty, layer=self.layer,
                             method=self.method, signed=signed)
