"""Kernel-SHAP (Lundberg & Lee, 2017) over image regions, on minivgg's forward pass.

Players are M image regions (:mod:`.regions`). A coalition ``z`` in {0, 1}^M keeps the
regions with ``z_i = 1`` and replaces the others by a baseline: ``"air"`` (default: the
image's darkest value, the background around the hand), ``"mean"`` (the image mean), a
constant, or ``"blur"`` (a blurred copy; see :data:`BLUR_WARNING`).

The baseline is part of the question: "what does the model say when these regions look
like X". It must carry no class signal of its own on the model explained. On the second
bundled model, measured on 5 twin phantoms at 800 calls, the lesion mass ratio of the map
(its positive mass on the lesions, per pixel, over the image's) was 1.5 with the mean, 5.2
with air, 8.4 with the healthy twin (which an ordinary image does not have) and 0.94 with
blur: the mean made the air around the hand a region that pushes to "RA", and blur is
itself a class cue of a model trained without blurred images. The bundled model is
trained with regions hidden by air (:mod:`minivgg.imaging.augment`), as SHAP hides them.

``v(z)`` is the model's output for the target class on that image, on one of two scales:

* ``"probability"`` (default): the softmax probability. Easy to read, but flat where the
  model is sure: at p = 0.996 ... 1.0 every region's value is noise-sized.
* ``"logit"``: the log-odds ``log(p / (1 - p))``, computed from the logits (no rounding
  at p near 1), which keeps its spread where the probability saturates.

The Shapley values are estimated by :func:`.shapley.shapley_rounds`: complementary pairs
of coalitions drawn without replacement in rounds, each round giving an estimate with
standard errors; with ``tolerance`` it stops once every region's value is known to within
``tolerance`` of the map's scale (its largest |value|), all regions at once (the
simultaneous 95% band, :func:`.shapley.simultaneous_z`). Model calls run in chunks of ``batch_size`` images, so memory
stays flat however large the budget. The network's first block of each coalition is mostly
copied from the image's and the baseline's (:mod:`.first_block`): the values are the same
to the bit, and a call costs 8% less.
"""

from dataclasses import dataclass

import numba
import numpy as np

from minivgg.explain.coalitions import ALLOCATIONS
from minivgg.explain.first_block import FirstBlock
from minivgg.explain.regions import grid_regions, superpixels
from minivgg.explain.settings import BASELINES, DEFAULT_BUDGET, DEFAULT_REGIONS, DEFAULT_TOLERANCE, OUTPUTS
from minivgg.explain.shapley import ShapleyEstimate, shapley_rounds

MAX_REGIONS = 1000
SATURATED = 1e-3          # |fx - base| below this (probability scale): say so, suggest logit
NOISE = 1e-6              # values below this fraction of the output's range are numerical noise
# Images per model call. On the bundled model (2 cores), whole runs of the six samples' default maps,
# interleaved, relative to 16: 1.09 at 24 (1.07-1.09, 3 rounds; 1.07-1.44 in 4 more), 1.06 at 20, 1.07 at 8, 1.04 at
# 12 (AVX2 EPYC); 16 was also the fastest on an AVX-512 Xeon (0.88 of 24's time, 0.79-1.11 over 8 rounds).
SHAP_BATCH = 16


def coalition_images_naive(image, background, regions, z):
    """(B, C, H, W): image ``b`` keeps the pixels of the regions that coalition ``z[b]`` keeps, the rest is
    ``background``. ``image``, ``background`` (C, H, W); ``regions`` (H, W) labels 0..M-1; ``z`` (B, M) 0/1."""
    keep = z[:, regions].astype(bool)                                  # (B, H, W): is the pixel's region kept?
    return np.where(keep[:, None], image[None], background[None])


@numba.njit(cache=True, nogil=True)
def coalition_images(image, background, regions, z, out):
    """:func:`coalition_images_naive` written into ``out`` (B, C, H, W), C-contiguous.

    Why a kernel: NumPy's ``where`` gives the batch the memory order of its broadcast
    inputs (the batch axis innermost), so the first convolution had to copy it once more;
    both passes cost 8 ms per 24 images of 128 px, a fifth of a model call of the bundled
    model. This writes each image once, in order, a row at a time: which pixels of the
    row are kept, then each channel's row from the image or the background (0.5 ms).
    """
    B, C, H, W = out.shape
    kept = np.empty(W, dtype=np.bool_)
    for b in range(B):
        zb = z[b]
        for i in range(H):
            labels = regions[i]
            for j in range(W):
                kept[j] = zb[labels[j]] != 0
            for c in range(C):
                src, fill, dst = image[c, i], background[c, i], out[b, c, i]
                for j in range(W):
                    dst[j] = src[j] if kept[j] else fill[j]


@dataclass
class SHAPResult(ShapleyEstimate):
    """Kernel-SHAP for one image: a :class:`ShapleyEstimate` over its regions.

    Attributes (besides ``values``, ``stderr``, ``base_value``, ``fx``, ``n_evaluations``
    and ``exact``)
    ----------
    regions : (S, S) int labels 0..M-1
    target : int, the explained class
    output : "probability" or "logit", the scale of ``values``
    budget : int, the model calls allowed (the two ends included)
    """
    regions: np.ndarray = None
    target: int = 0
    output: str = "probability"
    budget: int = 0

    @property
    def n_regions(self):
        return len(self.values)

    @property
    def noise_level(self):
        """Values smaller than this are numerical noise: 1e-6 of the output's range.

        The probability's range is 1; the log-odds have no bound, so their scale here is
        the larger of 1 and |fx|, |base|.
        """
        scale = 1.0 if self.output == "probability" else max(1.0, abs(self.fx), abs(self.base_value))
        return NOISE * scale

    @property
    def measurable(self):
        """False when every value is below :attr:`noise_level` (the map shows no effect)."""
        return bool(np.max(np.abs(self.values)) > self.noise_level)

    @property
    def significant(self):
        """(M,) bool: regions whose value lies outside the simultaneous 95% band around 0 (``|value| >= band``):
        their sign is established for all of them at once."""
        return np.abs(self.values) >= self.band

    @property
    def warnings(self):
        """Human-readable notes: a saturated output, no measurable effect."""
        notes = []
        change = abs(self.fx - self.base_value)
        if self.output == "probability" and change < SATURATED:
            notes.append(f"the probability changes by only {change:.1e} between the all-hidden image and the "
                         f"image (the model is saturated); the map is noise-sized: explain the logit instead "
                         f"(--output logit)")
        if not self.measurable:
            notes.append(f"no measurable effect: every value is below {self.noise_level:.0e}")
        return notes

    def pixel_map(self):
        """(S, S) map: each pixel carries its region's Shapley value."""
        return self.values[self.regions]

    def stderr_map(self):
        """(S, S) map: each pixel carries its region's standard error."""
        return self.stderr[self.regions]

    def summary(self):
        """A JSON-ready dict: the settings, the totals and every region's value and standard error."""
        sizes = np.bincount(self.regions.ravel(), minlength=self.n_regions)
        return {"target": self.target, "output": self.output, "base_value": self.base_value, "fx": self.fx,
                "n_regions": self.n_regions, "n_evaluations": self.n_evaluations, "budget": self.budget,
                "exact": self.exact, "max_stderr": self.max_stderr,
                "regions": [{"region": i, "pixels": int(sizes[i]), "value": float(v), "stderr": float(e)}
                            for i, (v, e) in enumerate(zip(self.values, self.stderr))]}


class KernelSHAP:
    """Kernel-SHAP over image regions for a :class:`minivgg.Classifier` (or a bare :class:`minivgg.VGG8`).

    Parameters
    ----------
    model : Classifier or VGG8 (its ``predict_proba`` is what is explained)
    n_regions : int, regions (met exactly by the superpixels and the grid; see :mod:`.regions`)
    segmentation : "superpixels" (follow the anatomy) or "grid"
    merge_background : bool or None, one region for the near-constant background (superpixels
        only); None: merge for superpixels, keep a grid's cells as they are
    baseline : "air" (the image's minimum, per channel), "mean" (image mean), "blur"
        (Gaussian-blurred image) or a float (constant, in the model's normalised input units)
    budget : int, coalitions evaluated at most (model calls, besides the two ends)
    tolerance : float or None, stop once the simultaneous 95% band of every region is within
        ``tolerance`` times the largest |value| (None or 0: spend the whole budget)
    output : "probability" or "logit" (log-odds), the scale explained
    batch_size : int, images per model call; bounds the memory (:data:`SHAP_BATCH`: the fastest measured)
    seed : int
    allocation : "leverage" or "kernel", how coalitions are spread over sizes (:mod:`.coalitions`)

    Examples
    --------
    >>> shap = KernelSHAP(model, n_regions=32, budget=2000, tolerance=0.2)    # doctest: +SKIP
    >>> result = shap(x[0], target=1)                          # x[0]: (3, S, S)
    >>> result.values.sum(), result.fx - result.base_value     # equal (efficiency)
    >>> result.stderr, result.n_evaluations                    # the error, and the calls it took
    """

    def __init__(self, model, n_regions=DEFAULT_REGIONS, segmentation="superpixels", merge_background=None,
                 baseline="air", budget=DEFAULT_BUDGET, tolerance=DEFAULT_TOLERANCE, output="probability",
                 batch_size=SHAP_BATCH, seed=0, allocation="leverage"):
        if segmentation not in ("superpixels", "grid"):
            raise ValueError(f"segmentation must be 'superpixels' or 'grid', got {segmentation!r}")
        if merge_background and segmentation == "grid":
            raise ValueError("merge_background applies to superpixels; a grid's cells are plain tiles")
        if merge_background is None:
            merge_background = segmentation == "superpixels"
        if not (baseline in BASELINES or (isinstance(baseline, (int, float)) and np.isfinite(baseline))):
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)} or a finite number, got {baseline!r}")
        for name, value, low in (("n_regions", n_regions, 1), ("budget", budget, 2), ("batch_size", batch_size, 1)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if n_regions > MAX_REGIONS:
            raise ValueError(f"n_regions must be at most {MAX_REGIONS}, got {n_regions}")
        if tolerance is not None and not (isinstance(tolerance, (int, float)) and np.isfinite(tolerance)
                                          and tolerance >= 0):
            raise ValueError(f"tolerance must be a number >= 0 or None, got {tolerance!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
        self.model, self.n_regions, self.segmentation = model, n_regions, segmentation
        self.merge_background, self.baseline, self.budget = merge_background, baseline, budget
        self.tolerance = tolerance or None
        self.output, self.batch_size, self.seed, self.allocation = output, batch_size, seed, allocation

    def regions_for(self, image):
        """Region labels (S, S) for one preprocessed image (3, S, S)."""
        if self.segmentation == "grid":
            return grid_regions(image.shape[1:], self.n_regions)
        gray = image.mean(axis=0)
        return superpixels((gray - gray.min()) / max(np.ptp(gray), 1e-6), self.n_regions,
                           merge_background=self.merge_background)

    def baseline_for(self, image):
        """(3, S, S): what every hidden pixel of ``image`` becomes."""
        if self.baseline == "air":
            return np.broadcast_to(image.min(axis=(1, 2), keepdims=True), image.shape)
        if self.baseline == "mean":
            return np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape)
        if self.baseline == "blur":
            from scipy import ndimage  # only this baseline needs SciPy's filters
            return ndimage.gaussian_filter(image, sigma=(0, image.shape[1] / 16, image.shape[2] / 16))
        return np.full_like(image, float(self.baseline))

    def _check(self, image, target):
        model = self.model
        s = model.image_size
        if np.shape(image) != (3, s, s):
            hint = " (pass one image, x[0], not a batch)" if np.shape(image) == (1, 3, s, s) else ""
            raise ValueError(f"KernelSHAP explains one image of shape (3, {s}, {s}), got {np.shape(image)}{hint}")
        image = np.asarray(image, dtype=model.dtype)
        if target is None:
            return image, int(model.infer(image[None]).argmax())
        if not isinstance(target, (int, np.integer)) or not 0 <= target < model.num_classes:
            raise ValueError(f"target must be a class index in [0, {model.num_classes}) "
                             f"(classes: {', '.join(model.class_names)}), got {target!r}")
        return image, int(target)

    def output_of(self, batch, target, start=None):
        """(B,) the explained output for a batch of model inputs: probability or log-odds of ``target``.

        ``start``: the batch is the input of that layer (:meth:`minivgg.VGG8.forward`).
        """
        at = {} if start is None else {"start": start}      # a stand-in for a model need not know ``start``
        if self.output == "probability":
            return self.model.predict_proba(batch, self.batch_size, **at)[:, target].astype(np.float64)
        # The calibrated log-odds: the same temperature as every probability (predict_proba); a bare
        # network (a VGG8, not a deployed Classifier) is uncalibrated, T = 1.
        temperature = getattr(self.model, "temperature", 1.0)
        logits = self.model.infer(batch, self.batch_size, **at).astype(np.float64) / temperature
        others = np.delete(logits, target, axis=1)
        top = others.max(axis=1)
        return logits[:, target] - top - np.log(np.exp(others - top[:, None]).sum(axis=1))

    def rounds(self, image, target=None, regions=None, progress=None, first_round=None):
        """Explain one preprocessed image (3, S, S) for class ``target`` (None: the predicted one), in rounds.

        Yields a :class:`SHAPResult` after each round of model calls: the estimate so
        far and its standard errors (a user interface redraws the map each time).
        ``progress(done, total)``, if given, is called after each batch of model calls with
        the calls made so far and the most the budget allows; it rises monotonically, and
        ends at ``(done, done)`` when the tolerance is met early. It may raise to abandon
        the computation (a user interface's cancel button does). ``first_round``: pairs of
        coalitions in the first round (see :func:`.shapley.shapley_rounds`).
        """
        image, target = self._check(image, target)
        regions = self.regions_for(image) if regions is None else regions
        m = int(regions.max()) + 1
        background = np.ascontiguousarray(self.baseline_for(image), dtype=self.model.dtype)
        image, labels = np.ascontiguousarray(image), np.ascontiguousarray(regions, dtype=np.int64)
        total = 2 + min(self.budget // 2 * 2, 2 ** min(m, 62) - 2) if m > 1 else 2
        done = 0
        # The network's first block of each coalition, mostly copied from the image's and the baseline's
        # (.first_block); the whole coalition images for a model that begins otherwise.
        block = FirstBlock.of(self.model, image, background, labels)
        start = None if block is None else block.start
        batch = np.empty((min(self.batch_size, total), *(image.shape if block is None else block.shape)),
                         dtype=image.dtype)                                     # reused by every call

        def value_fn(z):
            nonlocal done
            out, i = np.empty(len(z)), 0
            # Calls of equal size, none above the batch size: 50 coalitions go as 25 + 25, not 24 + 24 + 2
            # (a small call costs nearly as much per image as a batch of one).
            for part in np.array_split(z, max(1, -(-len(z) // self.batch_size))):
                if block is None:
                    coalition_images(image, background, labels, part, batch[:len(part)])
                else:
                    block(part, batch[:len(part)])
                out[i:i + len(part)] = self.output_of(batch[:len(part)], target, start)
                i += len(part)
                done += len(part)
                if progress:
                    progress(done, total)
            return out

        estimate = None
        for estimate in shapley_rounds(value_fn, m, self.budget, self.seed, self.tolerance, self.allocation,
                                       first_round=first_round):
            yield SHAPResult(**vars(estimate), regions=regions, target=target, output=self.output, budget=total)
        if progress and estimate is not None and done < total:
            progress(done, done)

    def __call__(self, image, target=None, regions=None, progress=None):
        """Explain one preprocessed image (3, S, S): the final :class:`SHAPResult` of :meth:`rounds`.

        Without a tolerance the budget is drawn in one round: the same pairs, one fit.
        """
        first = max(self.budget // 2, 1) if self.tolerance is None else None
        result = None
        for result in self.rounds(image, target, regions, progress, first_round=first):  # noqa: B007 (keep the last)
            pass
        return result
