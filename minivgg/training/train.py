"""Training and cross-validation of VGG8 on a folder data set (``minivgg train`` / ``python train.py``).

One epoch: shuffle the training indices, and for each batch augment (rotation and/or
brightness, as the paper's Figure 2), preprocess, forward, weighted softmax
cross-entropy, backward, Adam step. After each epoch the validation set is scored
and a checkpoint (weights, Adam moments, history) is written atomically, so:

* ``--resume`` continues a killed run; because every random draw of epoch ``e``
  (shuffle, augmentation, dropout) comes from a generator seeded with ``(seed, e)``,
  the resumed run reaches exactly the weights of an uninterrupted one. That promise
  holds only for the same settings, so a resume that names a different preset, seed,
  batch size, learning rate, validation split, wavelet setting or data folder content is
  refused, naming what differs (``--epochs`` may grow: later epochs do not change earlier ones);
* Ctrl-C leaves the last completed epoch's checkpoint and exits cleanly;
* a NaN or infinite loss stops the run with a message; the checkpoint on disk is
  the last good epoch.

At the end, the out-of-distribution detector, the temperature and the model card are
fitted on the same train/validation split (:mod:`minivgg.training.calibrate`) and saved with the model.

Learning rate: the paper reports "Adam ... learning rate = 0.05". For Adam that is far
too large (each step moves every weight by up to ``lr``; weights of a VGG are ~0.01),
and it diverges here within a few steps. We default to 1e-4 for the paper preset, the
common Adam setting for VGG-sized networks, and 3e-4 for the small one.

Dropout: the paper preset keeps the paper's 0.5. The small preset (a 128-unit
classifier) turns it off: on 400 phantoms with 0.5 it was still at chance after 20
epochs, while without it the validation AUC passed 0.95 by epoch 14.

The bundled preset is the small network trained on twin phantoms, whose only disease
signal is a few small lesions at the joints. Measured on 1600 easy twin phantoms, 25
epochs, on 160 fresh ones: without augmentation the AUC was 0.9998, but a transposed
healthy hand could get p(RA) = 1.00 (orientation had become a class cue); with each
hand shown in one of its eight orientations the AUC was 0.9998 and the worst transposed
healthy hand got 0.30. Hiding random regions as Kernel-SHAP hides them (``occlusion``)
teaches the network that a hidden patch is not a lesion, which SHAP relies on. The
paper's augmentation (rotations up to 45 degrees) slowed learning most: a network that
flattens its last 4x4 maps into a dense layer learns a lesion detector per place, and
every rotation adds places.
"""

import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from minivgg.deploy.classifier import Classifier
from minivgg.deploy.modelfile import (
    load_model,
    model_array_specs,
    model_from_arrays,
    model_metadata,
    read_npz,
    save_model,
    write_npz,
)
from minivgg.errors import ResumeError, TrainingError, UsageError
from minivgg.files import json_safe, prepare_output_dir, write_json
from minivgg.imaging.datasets import FolderDataset, file_list_hash, stratified_kfold, stratified_split
from minivgg.imaging.preprocess import preprocessing_settings
from minivgg.nn.loss import softmax_cross_entropy
from minivgg.nn.model import PAPER_CHANNELS, VGG8, Tape, parameter_shapes
from minivgg.nn.optim import Adam
from minivgg.progress import Progress
from minivgg.training.calibrate import fit_trust
from minivgg.trust.metrics import binary_metrics, evaluate_predictions, plot_learning_curves, summarise_folds

PRESETS = {
    "paper": dict(channels=PAPER_CHANNELS, hidden=512, image_size=224, epochs=100, batch_size=16, lr=1e-4,
                  dropout=0.5),
    "small": dict(channels=(16, 32, 64, 64, 128, 128, 128, 128), hidden=128, image_size=128,
                  epochs=30, batch_size=16, lr=3e-4, dropout=0.0),
    # The bundled model's recipe (scripts/make_bundled_model.py; see the module docstring):
    # the small network, trained on hands in all eight orientations, half of them blurred or
    # sharpened, half with random regions hidden as Kernel-SHAP hides them (filled with air,
    # Kernel-SHAP's default baseline).
    "bundled": dict(channels=(16, 32, 64, 64, 128, 128, 128, 128), hidden=128, image_size=128,
                    epochs=40, batch_size=16, lr=3e-4, dropout=0.0,
                    augmentation={"strategy": "none", "orientation": True, "sharpness": 0.5, "occlusion": 0.5,
                                  "fill": "air"}),
}
CHECKPOINT_FORMAT = "minivgg-checkpoint"




def epoch_summary(record, epochs):
    """One line per epoch, e.g.

    ``epoch 3/30: loss 0.4121 accuracy 0.812 | validation loss 0.3904 accuracy 0.850 AUC 0.921 (4.1 s)``.
    """
    text = f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.4f} accuracy {record['train_accuracy']:.3f}"
    if "val_loss" in record:
        text += f" | validation loss {record['val_loss']:.4f} accuracy {record['val_accuracy']:.3f}"
        if record.get("val_auc") is not None and np.isfinite(record["val_auc"]):
            text += f" AUC {record['val_auc']:.3f}"
    return text + f" ({record['seconds']:.1f} s)"


def class_weights(labels, n_classes):
    """Balanced weights ``n / (k * count_c)``: each class contributes equally to the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return len(labels) / (n_classes * np.maximum(counts, 1))


def predict_dataset(model, dataset, indices, batch_size=32):
    """Class probabilities for ``dataset[indices]`` (no augmentation), shape (len, classes)."""
    if len(indices) == 0:
        return np.zeros((0, model.num_classes))
    return np.concatenate([model.predict_proba(x, batch_size) for x, _ in dataset.batches(indices, batch_size)])


def _epoch_rng(seed, epoch, stream):
    return np.random.default_rng([seed, epoch, stream])


def save_checkpoint(path, model, opt, state):
    arrays = dict(model.state_dict())
    for k, v in opt.state_dict().items():
        if k != "t":
            arrays[f"adam.{k}"] = v
    meta = model_metadata(model)
    meta.update(format=CHECKPOINT_FORMAT, adam_t=opt.t, adam_lr=opt.lr, training=state)
    write_npz(path, arrays, meta)


def _checkpoint_specs(meta):
    """The arrays a checkpoint holds: the model's weights and Adam's two moments of each."""
    specs = model_array_specs(meta, CHECKPOINT_FORMAT)
    for key in ("adam_t", "adam_lr"):
        if not isinstance(meta.get(key), (int, float)) or isinstance(meta.get(key), bool):
            raise ValueError(f"{key} must be a number, got {meta.get(key)!r}")
    if not isinstance(meta.get("training"), dict):
        raise ValueError("training state is missing")
    moments = {f"adam.{moment}.{name}": (meta["dtype"], shape)
               for name, shape in parameter_shapes(meta["config"]).items() for moment in "mv"}
    return {**specs, **moments}


def load_checkpoint(path):
    arrays, meta = read_npz(path, CHECKPOINT_FORMAT, _checkpoint_specs)
    adam = {k[len("adam."):]: arrays.pop(k) for k in list(arrays) if k.startswith("adam.")}
    model = model_from_arrays(arrays, meta, path)
    opt = Adam(model.parameters(), lr=meta["adam_lr"])
    opt.load_state_dict({"t": meta["adam_t"], **adam})
    return model, opt, meta["training"]


def fit(dataset, train_idx, val_idx, out, preset="small", epochs=None, batch_size=None, lr=None, seed=0,
        resume=False, progress=None, options=None, card=None, init=None):
    """Train a VGG8 on ``dataset[train_idx]``, scoring ``dataset[val_idx]`` each epoch.

    Writes ``out/checkpoint.npz`` every epoch, and ``out/model.npz`` and
    ``out/history.json`` at the end. With ``resume``, continues from ``out/checkpoint.npz``
    when there is one, after checking that every setting that shapes the weights is the
    checkpoint's (:class:`ResumeError` names those that are not). ``options`` are further
    JSON-able run settings to record and check the same way. At the end, the
    out-of-distribution detector, the temperature and the model card are fitted on the
    same split (:func:`minivgg.training.calibrate.fit_trust`); ``card`` gives the card's ``name``,
    ``intended_use`` and ``command``. ``init``: a model file whose weights start the run
    instead of a random initialisation (fine-tuning; its architecture must be the preset's).
    Returns ``(model, history)``.
    """
    cfg = PRESETS[preset] if isinstance(preset, str) else preset
    epochs = epochs or cfg["epochs"]
    batch_size = batch_size or cfg["batch_size"]
    lr = lr or cfg["lr"]
    augmentation = cfg.get("augmentation", {})     # augment() options ({}: the paper's), or False: none
    out = prepare_output_dir(out)
    ckpt = out / "checkpoint.npz"
    progress = progress or Progress()
    weights = class_weights(dataset.labels[train_idx], len(dataset.class_names))
    run = {"preset": preset if isinstance(preset, str) else "custom",
           "architecture": {k: cfg[k] for k in ("channels", "hidden", "image_size", "dropout") if k in cfg},
           "augmentation": augmentation,
           "seed": seed, "batch_size": batch_size, "lr": lr, "preprocessing": dataset.settings,
           "train_files": file_list_hash(dataset, train_idx), "val_files": file_list_hash(dataset, val_idx),
           "init": None if init is None else file_sha256(init), **(options or {})}
    run = json.loads(json.dumps(json_safe(run)))            # as the checkpoint will hold it (lists, not tuples)
    if resume and ckpt.exists():
        model, opt, state = load_checkpoint(ckpt)
        check_resume(ckpt, state.get("run", {}), run)
        history, start = state["history"], state["epoch"] + 1
        progress.line(f"resuming from {ckpt} after epoch {state['epoch']}")
    else:
        network = VGG8(num_classes=len(dataset.class_names), channels=cfg["channels"], hidden=cfg["hidden"],
                       image_size=cfg["image_size"], dropout=cfg.get("dropout", 0.5), seed=seed,
                       class_names=dataset.class_names)
        model = Classifier(network, preprocessing=dataset.settings)
        if init is not None:
            start_from(network, init)
        opt = Adam(model.parameters(), lr=lr)
        history, start = [], 1
    for epoch in range(start, epochs + 1):
        # Every draw of this epoch comes from (seed, epoch): a resumed run repeats it exactly.
        order = _epoch_rng(seed, epoch, 0).permutation(train_idx)
        aug_rng = _epoch_rng(seed, epoch, 1)
        dropout_rng = _epoch_rng(seed, epoch, 2)
        started = time.perf_counter()
        losses, correct, seen, grads = [], 0, 0, {}
        for b in range(0, len(order), batch_size):
            x, y = dataset.batch(order[b:b + batch_size], aug_rng if augmentation is not False else None,
                                 augmentation or None)
            tape = Tape(reuse=grads)           # last step's gradients are spent: their memory is reused
            logits = model.forward(x, train=True, tape=tape, rng=dropout_rng)
            loss, dlogits = softmax_cross_entropy(logits, y, weights)
            if not np.isfinite(loss):
                where = f"last good checkpoint: {ckpt}" if ckpt.exists() else "no checkpoint was written yet"
                raise TrainingError(f"loss became {loss} at epoch {epoch}, batch {b // batch_size + 1}; "
                                    f"try a smaller --lr ({where})")
            _, grads = model.backward(dlogits, tape, need_input_grad=False)
            opt.step(grads)
            losses.append(loss * len(y))
            correct += int((logits.argmax(axis=1) == y).sum())
            seen += len(y)
            progress.update(f"epoch {epoch}/{epochs}", seen, len(order),
                            f"loss {sum(losses) / seen:.4f} acc {correct / seen:.3f}")
        record = {"epoch": epoch, "train_loss": sum(losses) / seen, "train_accuracy": correct / seen,
                  "seconds": time.perf_counter() - started}
        if len(val_idx):
            probs = predict_dataset(model, dataset, val_idx)
            yv = dataset.labels[val_idx]
            record["val_loss"] = softmax_cross_entropy(np.log(np.clip(probs, 1e-12, None)), yv, weights)[0]
            record["val_accuracy"] = float((probs.argmax(axis=1) == yv).mean())
            if len(dataset.class_names) == 2:
                record["val_auc"] = binary_metrics(yv, probs[:, 1], 1)["auc"]
        history.append(record)
        progress.line(epoch_summary(record, epochs))
        save_checkpoint(ckpt, model, opt, {"epoch": epoch, "epochs": epochs, "history": history, "run": run})
    preset_name = preset if isinstance(preset, str) else "custom"
    model.extra = {"history": history, "preset": preset_name, "seed": seed}
    card = card or {}
    fit_trust(model, dataset, train_idx, val_idx,
              name=card.get("name") or f"{dataset.root.name}-{preset_name}-seed{seed}",
              intended_use=card.get("intended_use"), command=card.get("command"), seed=seed, progress=progress)
    save_model(model, out / "model.npz")
    write_json(out / "history.json", history)
    plot_learning_curves(history, out / "learning_curves.png")
    return model, history


def file_sha256(path):
    """The SHA-256 of a file's bytes (what a run started from, for its record)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def start_from(network, path):
    """Copy the weights of the model file at ``path`` into ``network``; its architecture must be the same."""
    start = load_model(path)
    if start.config | {"seed": 0, "dropout": 0} != network.config | {"seed": 0, "dropout": 0}:
        raise UsageError(f"{path}: --init needs a model of the run's architecture {network!r}, got {start.network!r}")
    network.load_state_dict(start.state_dict())


RESUME_FLAGS = {"preset": "--preset", "architecture": "--preset", "augmentation": "--preset", "seed": "--seed",
                "batch_size": "--batch-size", "lr": "--lr", "preprocessing": "--no-wavelet",
                "val_fraction": "--val-fraction", "init": "--init",
                "train_files": "--data (the training images)", "val_files": "--data (the validation images)"}


def check_resume(ckpt, stored, current):
    """Raise :class:`ResumeError` naming every setting of ``current`` that differs from the checkpoint's."""
    differ = [key for key in current if key in stored and stored[key] != current[key]]
    if differ:
        shown = [f"{RESUME_FLAGS.get(k, k)}: {stored[k]!r} in the checkpoint, {current[k]!r} now"
                 for k in differ if not k.endswith("_files")]
        shown += [f"{RESUME_FLAGS[k]} differ from the checkpoint's" for k in differ if k.endswith("_files")]
        raise ResumeError(f"{ckpt}: cannot resume with different settings ({'; '.join(shown)}); "
                          f"leave those options out to continue the run, or train into a new --out")


def stored_run(ckpt):
    """The settings a checkpoint's run was started with, or None when there is no checkpoint."""
    if not Path(ckpt).exists():
        return None
    return read_npz(ckpt, CHECKPOINT_FORMAT, _checkpoint_specs, load_arrays=False)[1]["training"].get("run")


def load_folder(data, preset, wavelet, progress):
    """The folder data set at ``data``, preprocessed for ``preset``; reports skipped files."""
    settings = preprocessing_settings(PRESETS[preset]["image_size"], wavelet="sym8" if wavelet else None)
    dataset = FolderDataset(data, settings, progress=lambda done, total: progress.update("reading", done, total))
    for line in dataset.broken:
        progress.problem(f"minivgg: skipped: {line}")
    return dataset


def train_command(data, out, preset=None, epochs=None, batch_size=None, lr=None, seed=None, val_fraction=None,
                  resume=False, wavelet=None, progress=None, name=None, intended_use=None, command=None, init=None):
    """Load ``data``, split off a stratified validation set, train; returns (model, history).

    Options left as None take their defaults (preset ``small``, seed 0, validation
    fraction 0.2, wavelet on, the preset's epochs, batch size and learning rate), or, when
    resuming, the checkpoint's values; an option given with another value than the
    checkpoint's is refused (:class:`ResumeError`). ``name``, ``intended_use`` and
    ``command`` (default: this process's command line) go into the model card. ``init``: a
    model file to start from (see :func:`fit`).
    """
    progress = progress or Progress()
    out = prepare_output_dir(out)
    run = stored_run(out / "checkpoint.npz") if resume else None
    if resume and run is None:
        progress.line(f"no checkpoint in {out}: starting a new run")
    given = run or {}
    preset = preset or given.get("preset", "small")
    if preset not in PRESETS:
        raise ResumeError(f"{out / 'checkpoint.npz'}: the checkpoint's preset {preset!r} is not one of "
                          f"{sorted(PRESETS)}")
    seed = given.get("seed", 0) if seed is None else seed
    val_fraction = given.get("val_fraction", 0.2) if val_fraction is None else val_fraction
    if wavelet is None:
        wavelet = given.get("preprocessing", {}).get("wavelet", "sym8") is not None
    dataset = load_folder(data, preset, wavelet, progress)
    train_idx, val_idx = stratified_split(dataset.labels, val_fraction, seed) if val_fraction else \
        (np.arange(len(dataset)), np.array([], dtype=np.int64))
    counts = ", ".join(f"{n} {c}" for c, n in zip(dataset.class_names, dataset.class_counts()))
    progress.line(f"{data}: {len(dataset)} images ({counts}); training on {len(train_idx)}, "
                  f"validating on {len(val_idx)}")
    return fit(dataset, train_idx, val_idx, out, preset, epochs, batch_size or given.get("batch_size"),
               lr or given.get("lr"), seed, resume, progress, options={"val_fraction": val_fraction},
               card={"name": name, "intended_use": intended_use,
                     "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}, init=init)


def cross_validate(data, out, k=5, preset="small", epochs=None, batch_size=None, lr=None, seed=0,
                   positive=None, wavelet=True, progress=None):
    """Stratified k-fold cross-validation; writes ``out/cv.json`` and returns it."""
    progress = progress or Progress()
    prepare_output_dir(out)
    dataset = load_folder(data, preset, wavelet, progress)
    positive = positive or dataset.class_names[-1]
    folds = []
    for f, (train_idx, test_idx) in enumerate(stratified_kfold(dataset.labels, k, seed)):
        progress.line(f"fold {f + 1}/{k}: train {len(train_idx)}, test {len(test_idx)}")
        model, _ = fit(dataset, train_idx, np.array([], dtype=np.int64), Path(out) / f"fold{f + 1}", preset,
                       epochs, batch_size, lr, seed, progress=progress)
        probs = predict_dataset(model, dataset, test_idx)
        folds.append(evaluate_predictions(dataset.labels[test_idx], probs, dataset.class_names, positive,
                                          n_boot=200, seed=seed))
    result = {"k": k, "preset": preset, "positive": positive, "folds": folds, "summary": summarise_folds(folds)}
    write_json(Path(out) / "cv.json", result)
    return result
