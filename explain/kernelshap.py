"""Kernel-SHAP (Lundberg & Lee, 2017) over image regions, on minivgg's forward pass.

Players are M image regions. A coalition ``z`` in {0, 1}^M keeps the regions with
``z_i = 1`` and replaces the others by a baseline (the image mean, a blurred copy, or a
constant). ``v(z)`` is the model's probability of the target class for that image.
The Shapley values ``phi`` solve the weighted least-squares problem

    minimise  sum_z  pi(z) * (v(0) + sum_i z_i phi_i - v(z))^2
    subject to  sum_i phi_i = v(1) - v(0)                     (efficiency, exact)

with the Shapley kernel  pi(z) = (M - 1) / (C(M, |z|) * |z| * (M - |z|)).

Choosing coalitions within a budget of B model calls: the kernel puts most weight on
very small and very large coalitions, so sizes are taken in pairs (s, M - s) from
the outside in, and each pair is *enumerated completely* while the budget allows.
The rest of the budget is *sampled* from the remaining sizes (in proportion to their
kernel weight) as complementary pairs ``z`` and ``1 - z``, which cancels the odd-order
error terms; sampled coalitions share the remaining kernel weight equally. When the
budget covers all 2^M - 2 coalitions the result is the exact Shapley values.

Model calls run in chunks of ``batch_size`` images, so memory stays flat however
large the budget.
"""

from dataclasses import dataclass
from math import comb

import numpy as np
from scipy import ndimage

from .regions import grid_regions, superpixels

MAX_REGIONS = 1000


def shapley_kernel_weight(m, s):
    """pi(z) for one coalition of size ``s`` out of ``m`` players (0 < s < m)."""
    return (m - 1) / (comb(m, s) * s * (m - s))


def _all_of_size(m, s):
    """Every coalition of size ``s`` as rows of a (C(m, s), m) 0/1 matrix."""
    from itertools import combinations
    rows = np.zeros((comb(m, s), m), dtype=np.uint8)
    for r, idx in enumerate(combinations(range(m), s)):
        rows[r, list(idx)] = 1
    return rows


def choose_coalitions(m, budget, rng):
    """Coalitions and their regression weights: ``(Z (B', m) uint8, w (B',))`` with B' <= budget.

    Sizes 1 and m-1, then 2 and m-2, ... are enumerated completely while the budget
    allows; the remaining budget is sampled in complementary pairs. Distinct rows only.
    """
    sizes_left = list(range(1, m))
    blocks, weights = [], []
    left = budget
    for s in range(1, m // 2 + 1):
        pair = [s] if s == m - s else [s, m - s]
        need = sum(comb(m, t) for t in pair)
        if need > left:
            break
        for t in pair:
            blocks.append(_all_of_size(m, t))
            weights.append(np.full(comb(m, t), shapley_kernel_weight(m, t)))
            sizes_left.remove(t)
        left -= need
    if sizes_left and left >= 2:
        # Total kernel weight of each remaining size; sample sizes in proportion to it.
        mass = np.array([comb(m, t) * shapley_kernel_weight(m, t) for t in sizes_left])
        n_pairs = left // 2
        sizes = rng.choice(sizes_left, size=n_pairs, p=mass / mass.sum())
        z = np.zeros((n_pairs, m), dtype=np.uint8)
        for r, s in enumerate(sizes):
            z[r, rng.choice(m, size=s, replace=False)] = 1
        blocks += [z, 1 - z]
        share = mass.sum() / (2 * n_pairs)
        weights += [np.full(n_pairs, share), np.full(n_pairs, share)]
    if not blocks:
        raise ValueError(f"a budget of {budget} coalitions is too small for {m} regions (need at least 2)")
    # A coalition drawn twice is evaluated once, carrying both draws' weight.
    z, where = np.unique(np.concatenate(blocks), axis=0, return_inverse=True)
    return z, np.bincount(where.ravel(), weights=np.concatenate(weights))


def solve_shapley(z, w, values, v_empty, v_full):
    """Weighted least squares for phi with sum(phi) = v_full - v_empty enforced exactly.

    The constraint is used to eliminate the last player: phi_M = total - sum_{i<M} phi_i.
    """
    m = z.shape[1]
    total = v_full - v_empty
    y = values - v_empty - z[:, -1] * total                    # move the eliminated player's part over
    a = z[:, :-1] - z[:, -1:]                                  # (B, m-1)
    sw = np.sqrt(w)
    head, *_ = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)
    return np.append(head, total - head.sum()) if m > 1 else np.array([total])


@dataclass
class SHAPResult:
    """Kernel-SHAP for one image.

    Attributes
    ----------
    values : (M,) one Shapley value per region (probability units)
    base_value : float, v(all regions hidden)
    fx : float, v(image)
    regions : (S, S) int labels 0..M-1
    n_regions : int, the number of regions actually produced
    target : int, the explained class
    n_evaluations : int, model calls made (coalitions + 2)
    exact : bool, True when every coalition was enumerated
    """
    values: np.ndarray
    base_value: float
    fx: float
    regions: np.ndarray
    n_regions: int
    target: int
    n_evaluations: int
    exact: bool

    def pixel_map(self):
        """(S, S) map: each pixel carries its region's Shapley value."""
        return self.values[self.regions]


def explain_function(value_fn, m, budget=1000, seed=0):
    """Kernel-SHAP of any set function: ``value_fn(Z)`` maps (B, m) 0/1 rows to (B,) values.

    Returns ``(phi, v_empty, v_full, n_coalitions, exact)``.
    """
    rng = np.random.default_rng(seed)
    ends = value_fn(np.array([np.zeros(m, np.uint8), np.ones(m, np.uint8)]))
    v_empty, v_full = float(ends[0]), float(ends[1])
    if m == 1:
        return np.array([v_full - v_empty]), v_empty, v_full, 0, True
    z, w = choose_coalitions(m, min(budget, 2 ** m - 2), rng)
    values = np.asarray(value_fn(z), dtype=np.float64)
    exact = len(z) == 2 ** m - 2
    return solve_shapley(z.astype(np.float64), w, values, v_empty, v_full), v_empty, v_full, len(z), exact


class KernelSHAP:
    """Kernel-SHAP over image regions for a :class:`minivgg.VGG8`.

    Parameters
    ----------
    model : VGG8
    n_regions : int, regions aimed at (50 by default)
    segmentation : "superpixels" (follow the anatomy) or "grid"
    baseline : "mean" (image mean), "blur" (Gaussian-blurred image) or a float (constant,
        in the model's normalised input units)
    budget : int, coalitions evaluated (model calls, besides the two ends)
    batch_size : int, images per model call; bounds the memory
    seed : int

    Examples
    --------
    >>> shap = KernelSHAP(model, n_regions=50, budget=1000)     # doctest: +SKIP
    >>> result = shap(x[0], target=1)                          # x[0]: (3, S, S)
    >>> result.values.sum(), result.fx - result.base_value     # equal (efficiency)
    """

    def __init__(self, model, n_regions=50, segmentation="superpixels", baseline="mean", budget=1000,
                 batch_size=32, seed=0):
        if segmentation not in ("superpixels", "grid"):
            raise ValueError(f"segmentation must be 'superpixels' or 'grid', got {segmentation!r}")
        if not (baseline in ("mean", "blur") or (isinstance(baseline, (int, float)) and np.isfinite(baseline))):
            raise ValueError(f"baseline must be 'mean', 'blur' or a finite number, got {baseline!r}")
        for name, value, low in (("n_regions", n_regions, 1), ("budget", budget, 2), ("batch_size", batch_size, 1)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if n_regions > MAX_REGIONS:
            raise ValueError(f"n_regions must be at most {MAX_REGIONS}, got {n_regions}")
        self.model, self.n_regions, self.segmentation = model, n_regions, segmentation
        self.baseline, self.budget, self.batch_size, self.seed = baseline, budget, batch_size, seed

    def regions_for(self, image):
        """Region labels (S, S) for one preprocessed image (3, S, S)."""
        if self.segmentation == "grid":
            return grid_regions(image.shape[1:], self.n_regions)
        gray = image.mean(axis=0)
        return superpixels((gray - gray.min()) / max(np.ptp(gray), 1e-6), self.n_regions)

    def baseline_for(self, image):
        if self.baseline == "mean":
            return np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape)
        if self.baseline == "blur":
            return ndimage.gaussian_filter(image, sigma=(0, image.shape[1] / 16, image.shape[2] / 16))
        return np.full_like(image, float(self.baseline))

    def __call__(self, image, target=None, regions=None, progress=None):
        """Explain one preprocessed image (3, S, S) for class ``target`` (None: the predicted one).

        ``progress(done, total)``, if given, is called after each batch of model calls; it
        may raise to abandon the computation (a user interface's cancel button does).
        """
        model = self.model
        s = model.image_size
        if np.shape(image) != (3, s, s):
            hint = " (pass one image, x[0], not a batch)" if np.shape(image) == (1, 3, s, s) else ""
            raise ValueError(f"KernelSHAP explains one image of shape (3, {s}, {s}), got {np.shape(image)}{hint}")
        image = np.asarray(image, dtype=model.dtype)
        if target is None:
            target = int(model.infer(image[None]).argmax())
        elif not isinstance(target, (int, np.integer)) or not 0 <= target < model.num_classes:
            raise ValueError(f"target must be a class index in [0, {model.num_classes}) "
                             f"(classes: {', '.join(model.class_names)}), got {target!r}")
        regions = self.regions_for(image) if regions is None else regions
        m = int(regions.max()) + 1
        background = self.baseline_for(image).astype(model.dtype)

        def value_fn(z):
            out = np.empty(len(z))
            for i in range(0, len(z), self.batch_size):
                keep = z[i:i + self.batch_size][:, regions].astype(bool)     # (b, S, S): pixel's region kept?
                batch = np.where(keep[:, None], image[None], background[None])
                out[i:i + len(batch)] = model.predict_proba(batch, self.batch_size)[:, target]
                if progress:
                    progress(i + len(batch), len(z))
            return out

        phi, v0, v1, n, exact = explain_function(value_fn, m, self.budget, self.seed)
        return SHAPResult(values=phi, base_value=v0, fx=v1, regions=regions, n_regions=m, target=int(target),
                          n_evaluations=n + 2, exact=exact)
