"""Checks of the explanations themselves: are they faithful to the model, and to the lesions?

* ROAD, remove and debias (Rong et al., ICML 2022): pixels are ranked by the map and a
  share of them is removed, the most relevant first (MoRF: a faithful map makes the
  target probability fall) or the least relevant first (LeRF: it should stay). Removed
  pixels are filled by *noisy linear imputation* from their neighbours, so the filling
  itself leaks neither the removed shape nor a class cue: deletion to black or insertion
  from a blurred copy measure the fill as much as the map when the model has a cue in the
  fill (the second bundled model called blurred healthy hands "RA", so insertion from blur
  started at p(RA) = 1 for every map, a random one included).
* Deletion and insertion (Petsiuk, Das & Saenko, RISE, 2018). Pixels are ranked by the
  map; *deletion* replaces the top-ranked ones step by step by the image's darkest
  value (for a radiograph: empty background, as RISE deletes to black) and follows
  the target-class probability (a faithful map makes it fall fast: low AUC);
  *insertion* starts from a blurred copy and puts the top-ranked pixels back (a
  faithful map makes it rise fast: high AUC). A random map is the reference.
* Cascading model-parameter randomisation (Adebayo et al., Sanity Checks for Saliency
  Maps, 2018). Layers are re-initialised one by one from the output down; after each,
  the map is recomputed and compared with the original by Spearman rank correlation.
  A map that still looks the same once the weights are random does not explain the
  model (high correlation = fails the check). When the randomised map is zero
  everywhere there is nothing to rank, and the correlation is reported as NaN.
* On phantoms, with the true lesion masks: the pointing game (is the map's maximum on a
  lesion?) and the share of the map's mass that falls on lesions, beside the share of
  the image the lesions cover (what a uniform map would score); their ratio is the
  lesion mass ratio (1 for a map that ignores the lesions).
* The twin-swap check, on twin phantoms (:mod:`minivgg.imaging.phantoms`): paste each RA
  image's healthy twin into its lesion mask and see whether p(RA) falls. It asks the
  model, not a map, whether its decision rests on the lesions: a model that learnt a
  confounder (global osteopenia) or a shortcut (a side marker) keeps its "RA".
* The Clever-Hans check: the share of a map's positive mass on a spurious cue (a side
  marker's mask) instead of on the lesions.
"""

import copy

import numpy as np

from minivgg.imaging.preprocess import center_crop, resize
from minivgg.nn.layers import Conv3x3, Dense

ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)
# Rong et al.'s neighbour weights: the four direct neighbours count twice the four diagonal ones.
NEIGHBOURS = [(-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
              (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)]


def noisy_linear_imputation(image, removed, rng, noise=0.01):
    """Fill the ``removed`` pixels (S, S) bool of ``image`` (C, S, S) from their neighbours, plus a little noise.

    Each removed pixel is set to the weighted mean of its eight neighbours (:data:`NEIGHBOURS`,
    renormalised at the border), removed neighbours included: one sparse linear system
    ``A f = b`` for all of them at once, so a removed blob fills smoothly from its rim
    inwards. Gaussian noise of ``noise`` times the image's range is added to the filled
    pixels (the "noisy" of ROAD: the fill must not be recognisable as a fill).
    """
    s = removed.shape[0]
    index = -np.ones(removed.shape, dtype=np.int64)
    rows, cols = np.nonzero(removed)
    index[rows, cols] = np.arange(len(rows))
    a_rows, a_cols, a_vals = [np.arange(len(rows))], [np.arange(len(rows))], [np.ones(len(rows))]
    rhs = np.zeros((len(rows), image.shape[0]))
    total = np.zeros(len(rows))
    for dr, dc, w in NEIGHBOURS:
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < s) & (c >= 0) & (c < s)
        total[inside] += w
    for dr, dc, w in NEIGHBOURS:
        r, c = rows + dr, cols + dc
        inside = np.flatnonzero((r >= 0) & (r < s) & (c >= 0) & (c < s))
        weight = w / total[inside]
        neighbour = index[r[inside], c[inside]]
        unknown = neighbour >= 0
        a_rows.append(inside[unknown])
        a_cols.append(neighbour[unknown])
        a_vals.append(-weight[unknown])
        known = inside[~unknown]
        rhs[known] += weight[~unknown, None] * image[:, r[known], c[known]].T
    from scipy import sparse  # here, not at the top: every command imports this module (0.1-0.3 s)
    from scipy.sparse.linalg import spsolve
    matrix = sparse.csr_matrix((np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))),
                               shape=(len(rows), len(rows)))
    filled = spsolve(matrix.tocsc(), rhs).reshape(len(rows), -1)
    out = image.copy()
    out[:, rows, cols] = (filled + rng.normal(0, noise * np.ptp(image), filled.shape)).T
    return out


def road(model, image, saliency, target, fractions=ROAD_FRACTIONS, seed=0):
    """ROAD (remove and debias) curves of ``saliency`` (S, S) for one image (3, S, S) and class ``target``.

    Returns ``{"morf": [...], "lerf": [...]}``: p(target) after removing each fraction of the
    pixels, most relevant first and least relevant first, filled by
    :func:`noisy_linear_imputation`. A faithful map has a low MoRF curve and a high LeRF
    curve; ``mean(lerf) - mean(morf)`` is the summary (0 for a map that ranks at random).
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(-saliency, axis=None, kind="stable")
    curves = {"morf": [], "lerf": []}
    for fraction in fractions:
        k = int(round(fraction * saliency.size))
        for name, chosen in (("morf", order[:k]), ("lerf", order[::-1][:k])):
            removed = np.zeros(saliency.size, bool)
            removed[chosen] = True
            filled = noisy_linear_imputation(image.astype(np.float64), removed.reshape(saliency.shape), rng)
            curves[name].append(filled.astype(image.dtype))
    return {name: model.predict_proba(np.stack(images))[:, target].tolist() for name, images in curves.items()}


def deletion_insertion(model, image, saliency, target, steps=32):
    """Deletion and insertion AUCs (each in [0, 1]) of ``saliency`` (S, S) for one image (3, S, S).

    Returns ``{"deletion": auc, "insertion": auc}``; each AUC is the mean target probability
    over the ``steps + 1`` points from 0% to 100% of the pixels changed (trapezoid rule).
    """
    from scipy import ndimage  # here, not at the top: every command imports this module (0.16 s)
    s = image.shape[-1]
    blurred = ndimage.gaussian_filter(image, sigma=(0, s / 16, s / 16)).astype(image.dtype)
    empty = np.broadcast_to(image.min(axis=(1, 2), keepdims=True), image.shape)
    order = np.argsort(-saliency.ravel(), kind="stable")
    counts = np.linspace(0, s * s, steps + 1).astype(int)
    rank = np.empty(s * s, dtype=np.int64)
    rank[order] = np.arange(s * s)
    changed = (rank[None, :] < counts[:, None]).reshape(-1, 1, s, s)        # (steps+1, 1, S, S)
    deleted = np.where(changed, empty[None], image[None])
    inserted = np.where(changed, image[None], blurred[None])
    x = np.linspace(0, 1, steps + 1)
    return {"deletion": float(np.trapezoid(model.predict_proba(deleted)[:, target], x)),
            "insertion": float(np.trapezoid(model.predict_proba(inserted)[:, target], x))}


def cascading_randomization(model, explain_fn, image, target, seed=0):
    """Spearman correlation between the original map and the map after randomising layers.

    Parameters
    ----------
    model : VGG8 (left unchanged: a deep copy is randomised)
    explain_fn : callable ``(model, image, target) -> map (S, S)``
    image : (3, S, S)

    Returns
    -------
    list of (layer name, rho), from the output layer down to the first conv.
    """
    from scipy.stats import spearmanr  # here, not at the top: SciPy's statistics take 0.3 s to import
    original = explain_fn(model, image, target).ravel()
    randomized = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    rows = []
    for name, layer in reversed(randomized.layers):
        if not isinstance(layer, (Conv3x3, Dense)):
            continue
        w = layer.params["weight"]
        fan_in = w[0].size
        w[...] = rng.normal(0, np.sqrt(2.0 / fan_in), w.shape)
        layer.params["bias"][...] = 0
        new = explain_fn(randomized, image, target).ravel()
        rho = spearmanr(original, new).statistic if np.ptp(new) > 0 and np.ptp(original) > 0 else float("nan")
        rows.append((name, float(rho)))
    return rows


def mask_for_model(mask, settings):
    """A lesion mask of the original image, resized and cropped exactly as the image is."""
    return center_crop(resize(mask.astype(np.float32), settings["resize"]), settings["crop"]) > 0.5


def pointing_game(saliency, mask, tolerance=3):
    """True when the map's maximum lies on the lesion mask (dilated by ``tolerance`` pixels).

    When several pixels share the maximum (a SHAP map is constant over each region), the
    map points at the one nearest their centroid, not at the first in reading order. A flat
    map (an empty Grad-CAM) points nowhere: False.
    """
    if np.ptp(saliency) == 0:
        return False
    if tolerance:
        from scipy import ndimage  # here, not at the top: every command imports this module
        mask = ndimage.binary_dilation(mask, iterations=tolerance)
    rows, cols = np.nonzero(saliency == saliency.max())
    k = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    return bool(mask[rows[k], cols[k]])


def mass_on_lesions(saliency, mask):
    """Share of the positive map mass inside the mask, and the share of pixels the mask covers."""
    positive = np.clip(saliency, 0, None)
    total = positive.sum()
    return (float(positive[mask].sum() / total) if total > 0 else float("nan")), float(mask.mean())


def lesion_mass_ratio(saliency, mask):
    """Positive map mass on the mask divided by the mask's area share (1: no better than uniform).

    NaN when the map has no positive mass or the mask is empty.
    """
    share, area = mass_on_lesions(saliency, mask)
    return share / area if area > 0 else float("nan")


def twin_swap(model, images, twins, masks, target, batch_size=32):
    """The twin-swap check: p(target) before and after the twin's pixels replace the masked ones.

    ``swapped = where(mask, twin, image)``, in the radiograph, before preprocessing. With the
    phantoms' own masks (exactly where image and twin differ) the swapped image *is* the
    twin; with a coarser mask (say, one drawn by hand) it tests that mask too.

    Parameters
    ----------
    model : VGG8 (its ``preprocessing`` turns the radiographs into inputs)
    images, twins : (N, H, W) gray radiographs in [0, 1]: RA phantoms and their healthy twins
    masks : (N, H, W) bool lesion masks
    target : int, the class whose probability is followed (RA)

    Returns
    -------
    dict with ``before`` and ``after`` (N,) probabilities, ``flip_rate`` (the share of
    images whose p(target) falls below 0.5 after the swap) and ``mean_drop``.
    """
    from minivgg.imaging.preprocess import preprocess
    images, twins, masks = np.asarray(images), np.asarray(twins), np.asarray(masks, dtype=bool)
    swapped = np.where(masks, twins, images)
    settings = model.preprocessing
    before = model.predict_proba(np.stack([preprocess(g, settings) for g in images]), batch_size)[:, target]
    after = model.predict_proba(np.stack([preprocess(g, settings) for g in swapped]), batch_size)[:, target]
    return {"before": before, "after": after, "flip_rate": float(np.mean(after < 0.5)),
            "mean_drop": float(np.mean(before - after))}
