"""The Clever-Hans lesson: a model that learns a spurious cue, and the checks that catch it.

Clever Hans, a horse in 1900s Berlin, seemed to count; he was reading his questioner's
posture. A classifier can do the same: Lapuschkin et al. (Unmasking Clever Hans
predictors, Nature Communications 2019) found an image model that recognised horses by
a photographer's copyright tag, and radiograph models have been found to read the
hospital's side markers. Here the cue is a radiographer's side marker planted on the RA
phantoms only (``minivgg phantoms --shortcut``), while their lesions are made hard to see.

:func:`clever_hans` trains a model on such data and asks three questions of it:

* **Where does SHAP put the evidence?** The share of each marked RA image's positive
  Kernel-SHAP value that goes to the marker (:func:`cue_shares`); above one half, the
  explanation says "the marker", not "the joints".
* **What if the marker goes?** The AUC on fresh phantoms with their markers, and on the
  very same phantoms without them (the marker has its own random stream, so nothing else
  changes). A Clever Hans collapses.
* **The twin swap.** The twin keeps the marker, so swapping the lesions out leaves the
  model's "RA" standing (:func:`minivgg.explain.checks.twin_swap`).
"""

from dataclasses import asdict
from pathlib import Path

import numpy as np

from minivgg.explain.checks import mask_for_model, twin_swap
from minivgg.explain.kernelshap import KernelSHAP
from minivgg.imaging.datasets import FolderDataset, stratified_split
from minivgg.imaging.phantoms import PhantomSettings, make_phantom, write_phantoms
from minivgg.imaging.preprocess import preprocess, preprocessing_settings
from minivgg.training.train import PRESETS, Progress, fit
from minivgg.trust.metrics import auc_score


def cue_shares(model, images, cue_masks, target, shap):
    """Share of each image's positive Kernel-SHAP value that goes to its cue (e.g. a side marker).

    The cue's pixels are made one player of their own, beside the explainer's regions for
    the rest of the image, so the cue's Shapley value is its whole contribution however
    the segmentation would have cut it. The share is ``max(phi_cue, 0) / sum_i max(phi_i, 0)``
    over players, not pixels: in a pixel map a large region would outweigh the small
    marker by its area alone.

    Parameters
    ----------
    model : VGG8
    images : sequence of (H, W) gray radiographs in [0, 1]
    cue_masks : sequence of (H, W) bool masks of the cue (a phantom's ``shortcut_mask``)
    target : int, the explained class
    shap : :class:`~minivgg.explain.KernelSHAP`

    Returns
    -------
    (N,) shares in [0, 1] (NaN when no player has a positive value)
    """
    shares = []
    for gray, cue in zip(images, cue_masks):
        x = preprocess(gray, model.preprocessing)
        cue = mask_for_model(cue, model.preprocessing)
        regions = shap.regions_for(x)
        regions[cue] = regions.max() + 1
        regions = np.unique(regions, return_inverse=True)[1].reshape(cue.shape)   # labels 0..M-1 again
        positive = np.clip(shap(x, target, regions=regions).values, 0, None)
        total = positive.sum()
        shares.append(positive[regions[cue][0]] / total if total > 0 else float("nan"))
    return np.array(shares)


def clever_hans(out, preset, n_train=400, n_test=100, seed=0, shortcut_share=1.0, difficulty="hard", size=256,
                shap_options=None, progress=None):
    """Train on side-marked RA phantoms and measure how much the model leans on the marker.

    Parameters
    ----------
    out : folder for the training phantoms (``out/phantoms``) and the run (``out/run``)
    preset : a preset name or dict of :mod:`minivgg.training.train` (its ``epochs`` included)
    n_train, n_test : phantoms to train on (seed ``seed``) and to test on (seed ``seed + 1``)
    shortcut_share : share of the RA phantoms that carry the marker
    difficulty, size : of the phantoms (:class:`minivgg.imaging.phantoms.PhantomSettings`)
    shap_options : keyword arguments of :class:`minivgg.explain.KernelSHAP`

    Returns
    -------
    dict: ``marker_share`` (one per marked RA test image), ``share_over_half`` (the
    share of those images with more than half their positive SHAP value on the marker),
    ``auc_with_markers``, ``auc_without_markers``, ``twin_swap_flip_rate``, ``n_marked``.
    """
    out = Path(out)
    marked = PhantomSettings(size=size, difficulty=difficulty, shortcut_share=shortcut_share, shortcut_class="RA")
    write_phantoms(out / "phantoms", n_train, seed=seed, **asdict(marked))
    cfg = preset if isinstance(preset, dict) else PRESETS[preset]
    data = FolderDataset(out / "phantoms" / "images", preprocessing_settings(cfg["image_size"]))
    train_idx, val_idx = stratified_split(data.labels, 0.2, seed)
    model, _ = fit(data, train_idx, val_idx, out / "run", preset, seed=seed, progress=progress or Progress())
    ra = model.class_names.index("RA")
    plain = PhantomSettings(size=size, difficulty=difficulty)
    test = [make_phantom(seed + 1, i, i % 2, marked) for i in range(n_test)]
    unmarked = [make_phantom(seed + 1, i, i % 2, plain).image for i in range(n_test)]
    labels = np.array([p.label for p in test])

    def auc(images):
        x = np.stack([preprocess(g, model.preprocessing) for g in images])
        return auc_score(labels, model.predict_proba(x)[:, ra])

    cued = [p for p in test if p.shortcut_mask is not None]
    shares = cue_shares(model, [p.image for p in cued], [p.shortcut_mask for p in cued], ra,
                        KernelSHAP(model, **(shap_options or {})))
    sick = [p for p in test if p.label == 1]
    swap = twin_swap(model, [p.image for p in sick], [p.twin for p in sick], [p.mask for p in sick], ra)
    return {"marker_share": shares.tolist(), "share_over_half": float(np.mean(shares > 0.5)),
            "n_marked": len(cued), "auc_with_markers": auc([p.image for p in test]),
            "auc_without_markers": auc(unmarked), "twin_swap_flip_rate": swap["flip_rate"]}
