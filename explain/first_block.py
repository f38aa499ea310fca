"""The first block of Kernel-SHAP's coalition images, mostly copied from two passes made once.

A coalition image keeps some regions of the image and fills the others with the baseline
(:func:`.kernelshap.coalition_images_naive`). VGG8's first block -- a 3x3 convolution, its
ReLU and a 2x2 max-pool, (3, H, W) -> (K, H/2, W/2) -- gives each pooled pixel ``(r, j)``
from the input's 4x4 window of rows ``2r-1 .. 2r+2`` and columns ``2j-1 .. 2j+2`` alone
(the receptive field of a 2x2 pool over 3x3 convolutions). So where a coalition keeps
every pixel of that window, its first block equals the image's; where it hides all of
them, the baseline's. Both are computed once per image (:class:`FirstBlock`); per
coalition only the windows that mix kept and hidden pixels -- those across the border
of a region that is in and one that is out -- are computed, by the convolution's own
formula, and the network goes on from its second block
(``model.predict_proba(h, start="features.3")``).

On the bundled model's samples (32 superpixels of a 128-pixel image) 28-34% of the
windows span more than one region, and a coalition often keeps all or none of those
regions too. The block costs 0.45 instead of 0.6 ms per image for coalitions that keep
each region with probability 1/2 (one thread), and a model call of Kernel-SHAP's
defaults 8% less (median of 4 interleaved rounds over the six samples, 0.83-0.97; 2-core
Xeon, batches of 24). The coalition images themselves are never built.

The windows computed are added up in the order of
:func:`minivgg.nn.conv.direct_relu_maxpool_rows`, the kernel that computes the network's
first block: the result is equal bit for bit to the full pass over the coalition image
(``tests/test_explain.py``).
"""

import numba
import numpy as np

from minivgg.nn import activation
from minivgg.nn.layers import Conv3x3, MaxPool2x2, ReLU
from minivgg.nn.threads import parallel_for


def first_block_naive(model, images):
    """(B, K, H/2, W/2): the network's first block of whole coalition images (B, C, H, W), by the network itself
    (build them with :func:`.kernelshap.coalition_images_naive`)."""
    pool = model.layer_names[2]
    return model.infer(images, capture=(pool,))[1][pool]


@numba.njit(cache=True, nogil=True)
def first_block_of_coalition(kept, hidden, image, background, regions, owner, zn, w, b, out):
    """``out`` (K, H/2, W/2): the first block of the image that coalition ``zn`` (M,) makes.

    Parameters
    ----------
    kept, hidden : (K, H/2, W/2) the first block of ``image`` and of ``background``
    image, background : (C, H, W)
    regions : (H, W) int, region labels
    owner : (H/2, W/2) int, the region of each pooled pixel's window, -1 where it spans several
    zn : (M,) 0/1, the regions kept
    w : (C, 3, 3, K) the convolution's kernel, output channels last (so that the channels of
        one pixel are summed side by side, in vector lanes)
    b : (K,) bias

    Each pooled pixel whose window is all kept (all hidden) is copied from ``kept``
    (``hidden``); the others take ``max over the 2x2 pool of relu(b + sum_c,dy,dx w x)``
    from the window's pixels, each the image's or the baseline's by its region. Taps on the
    zero padding are skipped, and each row of three taps is summed as in
    :func:`minivgg.nn.conv._direct_row` (three products, then added), so the result is the
    same bit for bit.
    """
    K, Hp, Wp = kept.shape
    C, H, W = image.shape
    state = np.empty((Hp, Wp), dtype=np.uint8)            # 0 hidden, 1 kept, 2 mixed
    for r in range(Hp):
        for j in range(Wp):
            if owner[r, j] >= 0:
                state[r, j] = zn[owner[r, j]] != 0
                continue
            inside = n_kept = 0
            for y in range(max(2 * r - 1, 0), min(2 * r + 3, H)):
                for x in range(max(2 * j - 1, 0), min(2 * j + 3, W)):
                    inside += 1
                    n_kept += zn[regions[y, x]] != 0
            state[r, j] = 1 if n_kept == inside else (0 if n_kept == 0 else 2)
    for k in range(K):                          # copied, a plane at a time (the mixed ones overwritten below)
        for r in range(Hp):
            for j in range(Wp):
                out[k, r, j] = kept[k, r, j] if state[r, j] == 1 else hidden[k, r, j]
    window = np.zeros((C, 4, 4), dtype=image.dtype)       # the coalition's pixels; 0 on the padding
    acc = np.empty(K, dtype=out.dtype)
    best = np.empty(K, dtype=out.dtype)
    for r in range(Hp):
        for j in range(Wp):
            if state[r, j] != 2:
                continue
            for y in range(max(2 * r - 1, 0), min(2 * r + 3, H)):
                for x in range(max(2 * j - 1, 0), min(2 * j + 3, W)):
                    keep = zn[regions[y, x]] != 0
                    for c in range(C):
                        window[c, y - 2 * r + 1, x - 2 * j + 1] = image[c, y, x] if keep else background[c, y, x]
            best[:] = 0                            # max of ReLU outputs: 0 is where they start
            for oy in range(2):
                for ox in range(2):
                    y, x = 2 * r + oy, 2 * j + ox
                    acc[:] = b
                    for c in range(C):
                        for dy in range(3):
                            if not 0 <= y + dy - 1 < H:
                                continue
                            row = window[c, oy + dy]
                            if 1 <= x < W - 1:
                                left, mid, right = row[ox], row[ox + 1], row[ox + 2]
                                for k in range(K):
                                    acc[k] += w[c, dy, 0, k] * left + w[c, dy, 1, k] * mid + w[c, dy, 2, k] * right
                            else:
                                for t in range(3):
                                    if 0 <= x + t - 1 < W:
                                        for k in range(K):
                                            acc[k] += w[c, dy, t, k] * row[ox + t]
                    for k in range(K):
                        best[k] = max(best[k], activation.relu_if(acc[k], True))
            for k in range(K):
                out[k, r, j] = best[k]


def window_owner(regions):
    """(H/2, W/2) int: the region that holds every pixel of each pooled pixel's 4x4 window, -1 where several do.

    Edge padding repeats the border's labels, which those windows hold already.
    """
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(regions, 1, mode="edge"), (4, 4))[::2, ::2]
    low, high = windows.min(axis=(2, 3)), windows.max(axis=(2, 3))
    return np.where(low == high, low, -1)


class FirstBlock:
    """The network's first block (conv 3x3, ReLU, 2x2 max-pool) of one image's coalition images.

    Parameters
    ----------
    model : Classifier or VGG8 whose first three layers are that block
    image, background : (C, H, W) the image explained and what its hidden pixels become
    regions : (H, W) int labels

    Attributes
    ----------
    start : str, the layer the network continues from (the one after the pool)
    shape : (K, H/2, W/2), the block's output for one image

    Examples
    --------
    >>> block = FirstBlock.of(model, image, background, regions)        # doctest: +SKIP
    >>> h = np.empty((len(z), *block.shape), model.dtype)
    >>> block(z, h)
    >>> model.predict_proba(h, start=block.start)         # as predict_proba of the coalition images
    """

    def __init__(self, model, image, background, regions):
        (_, conv), _, (pool_name, _) = model.layers[:3]
        self.start = model.layer_names[3]
        _, captured = model.infer(np.stack([image, background]), capture=(pool_name,))
        self.kept, self.hidden = captured[pool_name]
        self.shape = self.kept.shape
        self.image, self.background, self.regions = image, background, regions
        self.owner = window_owner(regions)
        self.w = np.ascontiguousarray(conv.params["weight"].transpose(1, 2, 3, 0))
        self.b = conv.params["bias"]

    @classmethod
    def of(cls, model, image, background, regions):
        """A :class:`FirstBlock`, or None for a model that does not begin with conv, ReLU, pool (then the
        coalition images are built whole)."""
        layers = [layer for _, layer in getattr(model, "layers", [])[:4]]
        if len(layers) < 4 or not (isinstance(layers[0], Conv3x3) and isinstance(layers[1], ReLU)
                                   and isinstance(layers[2], MaxPool2x2)):
            return None
        return cls(model, image, background, regions)

    def __call__(self, z, out):
        """Write the first block of coalitions ``z`` (B, M) into ``out`` (B, K, H/2, W/2), one coalition per
        work item."""
        parallel_for(len(z), lambda n: first_block_of_coalition(self.kept, self.hidden, self.image, self.background,
                                                                 self.regions, self.owner, z[n], self.w, self.b,
                                                                 out[n]))
