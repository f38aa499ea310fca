"""Fit what a model file says about trusting its model: card, out-of-distribution detector, temperature.

On a folder data set split into the images the model trained on and held-out validation
images (the split of its training run), :func:`fit_trust` fits

1. the out-of-distribution detector (:mod:`minivgg.trust.ood`): class means and shared
   covariance of the pooled features of one conv block (``ood.FEATURE_LAYER``) of the training images, threshold at the
   99% quantile of the validation images' scores;
2. the temperature (:mod:`minivgg.trust.calibration`) by the validation images' NLL;
3. the model card (:mod:`minivgg.trust.modelcard`): the data, the validation metrics, the command,
   seed, code version and date;
4. when the data set has ground truth beside its images (a phantom folder: ``DIR/images``,
   ``DIR/masks``, ``DIR/twins``, as ``minivgg phantoms`` writes it), the explanation card
   (:func:`explanation_card`): how often each map method pointed at the lesion of the
   validation twins, its lesion mass ratio, and the twin-swap flip rate.

``minivgg train`` calls it at the end of training. ``minivgg calibrate``
(:func:`calibrate_command`) calls it for a model that exists already: one trained before
this version (the bundled model), or weights trained elsewhere, e.g. in PyTorch and loaded
with ``load_state_dict``. Nothing here changes the weights: predictions keep their class,
only the probabilities and the flags change.
"""

from pathlib import Path

import numpy as np

from minivgg.deploy.modelfile import ModelFileError, load_model, save_model
from minivgg.explain.checks import lesion_mass_ratio, mask_for_model, pointing_game, twin_swap
from minivgg.explain.gradcam import GradCAM
from minivgg.explain.kernelshap import KernelSHAP
from minivgg.explain.settings import ExplainSettings
from minivgg.files import OutputError, prepare_output_dir
from minivgg.imaging.datasets import FolderDataset, file_list_hash, stratified_split
from minivgg.imaging.imageio import load_image
from minivgg.imaging.preprocess import preprocess
from minivgg.trust.calibration import calibration_report, fit_temperature
from minivgg.trust.metrics import binary_metrics
from minivgg.trust.modelcard import explanation_line, new_card, training_data
from minivgg.trust.ood import FEATURE_LAYER, MahalanobisDetector


def _logits_and_features(model, dataset, indices, batch_size=32):
    logits, features = [], []
    for x, _ in dataset.batches(indices, batch_size):
        z, captured = model.infer(x, batch_size, capture=(FEATURE_LAYER,))
        logits.append(z)
        features.append(captured[FEATURE_LAYER])
    return np.concatenate(logits), np.concatenate(features)


def validation_metrics(model, logits, labels):
    """The card's held-out metrics from validation logits: accuracy (binary: Table 2's metrics), NLL, ECE, Brier."""
    probs = model.softmax(logits)
    metrics = {"n": int(len(labels)), "accuracy": float((probs.argmax(axis=1) == labels).mean())}
    if model.num_classes == 2:
        m = binary_metrics(labels, probs[:, 1], 1)
        metrics.update({"positive_class": model.class_names[1],
                        **{k: m[k] for k in ("sensitivity", "specificity", "precision", "auc")}})
    c = model.calibration
    if c:
        metrics.update(nll=c["nll_after"], ece=c["ece_after"], brier=c["brier_after"])
    return metrics


# Kernel-SHAP costs seconds an image: the card scores it on the first few twins, with fewer calls.
CARD_SHAP_IMAGES, CARD_SHAP_BUDGET = 24, 600


def ground_truth(dataset, indices):
    """``(images, twins, masks, labels)`` of the images of ``dataset[indices]`` that have a lesion mask and a twin.

    A phantom folder (``minivgg phantoms``) keeps them beside its images: ``DIR/masks`` and
    ``DIR/twins`` for ``DIR/images``, the same class folder and file name. Empty lists when
    the data set has none (real radiographs).
    """
    root = dataset.root.parent
    found = ([], [], [], [])
    for i in indices:
        path = dataset.paths[i]
        mask_file = root / "masks" / path.parent.name / path.name
        twin_file = root / "twins" / path.parent.name / path.name
        if not (mask_file.is_file() and twin_file.is_file()):
            continue
        mask = load_image(mask_file) > 0.5
        if mask.any():
            for into, value in zip(found, (load_image(path), load_image(twin_file), mask, int(dataset.labels[i]))):
                into.append(value)
    return found


def explanation_card(model, images, twins, masks, target, settings=ExplainSettings()):
    """How right each map method is on this model, measured on twins whose lesions are known.

    Parameters
    ----------
    model : Classifier
    images, twins, masks : lists of radiographs (H, W), their healthy twins and lesion masks
    target : int, the class the lesions stand for (RA)
    settings : ExplainSettings, how Kernel-SHAP is run (with at most :data:`CARD_SHAP_BUDGET`
        calls, on the first :data:`CARD_SHAP_IMAGES` twins)

    Returns
    -------
    dict, the card's ``explanations`` record (:func:`minivgg.trust.modelcard.explanation_line`):
    per method the share of twins whose map's maximum lies on the lesion (the pointing
    game), the mean lesion mass ratio and the number of twins; and the twin-swap flip rate.
    """
    x = np.stack([preprocess(g, model.preprocessing) for g in images])
    lesions = [mask_for_model(m, model.preprocessing) for m in masks]
    maps = {cam: GradCAM(model, method=cam)(x, target).normalized for cam in ("hirescam", "gradcam")}
    shap = KernelSHAP(model, n_regions=settings.regions, baseline=settings.baseline, output=settings.output,
                      budget=min(settings.budget, CARD_SHAP_BUDGET), tolerance=settings.tolerance, seed=settings.seed)
    maps["shap"] = [shap(image, target).pixel_map() for image in x[:CARD_SHAP_IMAGES]]
    methods = {}
    for method, method_maps in maps.items():
        ratios = [lesion_mass_ratio(m, lesion) for m, lesion in zip(method_maps, lesions)]
        ratios = [r for r in ratios if np.isfinite(r)]
        methods[method] = {"pointing": float(np.mean([pointing_game(m, lesion)
                                                      for m, lesion in zip(method_maps, lesions)])),
                           "mass_ratio": float(np.mean(ratios)) if ratios else None, "n": len(method_maps)}
    swap = twin_swap(model, images, twins, masks, target)
    return {"data": f"{len(images)} validation images of class {model.class_names[target]} with lesion masks and "
                    f"healthy twins", "twin_swap_flip": swap["flip_rate"], "methods": methods}


def fit_trust(model, dataset, train_idx, val_idx, name=None, intended_use=None, command=None, seed=None,
              metrics=None, progress=None):
    """Fit ``model``'s out-of-distribution detector, temperature and card on ``dataset``; returns ``model``.

    Parameters
    ----------
    model : VGG8, trained on ``dataset[train_idx]`` (it gets ``ood``, ``calibration`` and ``card``;
        call this before the model is shared between threads)
    dataset : FolderDataset
    train_idx, val_idx : index arrays; ``val_idx`` must hold images the model did not train on
    name, intended_use, command, seed : the card's fields (see :mod:`minivgg.trust.modelcard`)
    metrics : dict, further held-out metrics for the card (e.g. ``{"test": {...}}``)
    progress : object with ``line(text)``, optional

    Without validation images there is nothing honest to fit on: the model gets a card and
    no detector and no temperature. A detector that cannot be fitted (features that are zero
    on every training image, say) is left out with a note; training is not lost for it.
    """
    say = progress.line if progress else (lambda text: None)
    model.ood, model.calibration = None, None
    if len(val_idx) == 0:
        say("no validation images: the model gets no out-of-distribution detector and no temperature")
    else:
        _, train_features = _logits_and_features(model, dataset, train_idx)
        val_logits, val_features = _logits_and_features(model, dataset, val_idx)
        val_labels = dataset.labels[val_idx]
        if not all(np.isfinite(a).all() for a in (train_features, val_logits, val_features)):
            raise ModelFileError(f"{model.source or 'the model'}: output is not finite (NaN or infinity) on "
                                 f"images of {dataset.root}; the model is unusable on them")
        try:
            detector = MahalanobisDetector.fit(train_features, dataset.labels[train_idx], model.num_classes)
            model.ood = detector.with_threshold(detector.score(val_features))
            say(f"out-of-distribution threshold {model.ood.threshold:.4g} (the {model.ood.quantile:.0%} quantile of "
                f"{len(val_idx)} validation images' Mahalanobis scores)")
        except ValueError as e:
            say(f"no out-of-distribution detector: {e}")
        temperature, at_bound = fit_temperature(val_logits, val_labels)
        if at_bound and temperature < 1:
            # Every validation image lies on its side with room to spare: the NLL keeps falling as
            # the softmax sharpens, and the search's bound, not the data, would pick T. Sharpening on
            # that evidence makes every later mistake a confident one: keep the network's softmax.
            temperature = 1.0
        model.calibration = {"method": "temperature", **calibration_report(val_logits, val_labels, temperature),
                             "at_bound": at_bound}
        c = model.calibration
        say(f"temperature {temperature:.4g}: validation NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}, "
            f"ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f}"
            + (" (the search reached its bound: the validation images are too few or too easy to fit it; "
               "a temperature below 1 is then not applied)" if at_bound else ""))
        metrics = {"validation": validation_metrics(model, val_logits, val_labels), **(metrics or {})}
    model.card = new_card(name=name, intended_use=intended_use, command=command, seed=seed, metrics=metrics,
                          trained_on=training_data(dataset, train_idx, val_idx, file_list_hash(dataset, train_idx)))
    images, twins, masks, labels = ground_truth(dataset, val_idx)
    if images:
        target = int(np.bincount(labels).argmax())          # the class whose images carry lesions (RA)
        model.card["explanations"] = explanation_card(model, images, twins, masks, target)
        for method in model.card["explanations"]["methods"]:
            say(explanation_line(model, method))
    return model


def calibrate_command(model_path, data, out, val_fraction=0.2, seed=0, name=None, intended_use=None,
                      training_command=None, progress=None):
    """Fit the card, detector and temperature of the model at ``model_path`` on ``data``; write it to ``out``.

    ``data`` is the folder data set the model was trained on, split as its training run
    split it (``minivgg train``'s defaults: ``val_fraction`` 0.2, ``seed`` 0), so that the
    temperature and the threshold come from images the model did not train on. Card fields
    not given are kept from the model's card when it has one. Returns the model.
    """
    model = load_model(model_path)
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; name the model file to write")
    prepare_output_dir(out.parent)
    dataset = FolderDataset(data, model.preprocessing, class_names=model.class_names)
    say = progress.line if progress else (lambda text: None)
    for line in dataset.broken:
        say(f"skipped: {line}")
    train_idx, val_idx = stratified_split(dataset.labels, val_fraction, seed)
    say(f"{data}: {len(dataset)} images; fitting on {len(train_idx)}, holding out {len(val_idx)}")
    old = model.card or {}
    kept = {split: m for split, m in old.get("metrics", {}).items() if split != "validation"}
    fit_trust(model, dataset, train_idx, val_idx, name=name or old.get("name"),
              intended_use=intended_use or old.get("intended_use"), command=training_command or old.get("command"),
              seed=seed if old.get("seed") is None else old["seed"], metrics=kept, progress=progress)
    save_model(model, out)
    return model
