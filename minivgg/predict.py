"""The prediction core shared by ``minivgg predict``, ``explain``, ``evaluate`` and the terminal app.

An image is read (:mod:`minivgg.imageio`), preprocessed with the settings stored in
the model file (:mod:`minivgg.preprocess`), and scored in inference mode: calibrated
probabilities (the model's temperature, :mod:`minivgg.calibration`) and, when the model
file has a detector, an out-of-distribution score and verdict (:mod:`minivgg.ood`).
"""

from collections import deque
from dataclasses import dataclass

import numpy as np

from .imageio import ImageError, load_image
from .modelcard import model_name
from .modelfile import ModelFileError
from .preprocess import preprocess
from .threads import submit

NOT_TRAINED_ON_THIS = "the model was not trained on images like this one; do not rely on this prediction"


def load_for_model(path, model):
    """The model input (3, S, S) for the image at ``path``; raises :class:`ImageError`."""
    return preprocess(load_image(path), model.preprocessing)


def check_finite_output(model, *outputs):
    """Return ``outputs[0]``, or raise :class:`ModelFileError` naming the model when any is NaN or infinite.

    A model whose weights overflow on some input gives NaN; that must never reach a
    report (nor a JSON line, where ``NaN`` is not valid). ``outputs`` are the
    probabilities and, when there are any, the out-of-distribution scores.
    """
    if not all(np.isfinite(o).all() for o in outputs if o is not None):
        raise ModelFileError(f"{model.source or model_name(model)}: output is not finite (NaN or infinity); "
                             f"the model is unusable on these inputs")
    return outputs[0]


@dataclass
class Assessment:
    """What the model says about a batch of images.

    Attributes
    ----------
    probs : (N, K) calibrated class probabilities
    logits : (N, K) the raw network outputs (``probs`` is ``softmax(logits / T)``)
    ood_score : (N,) Mahalanobis scores, or None for a model file without a detector
    in_distribution : (N,) bool, or None for a model file without a detector
    """
    probs: np.ndarray
    logits: np.ndarray
    ood_score: np.ndarray = None
    in_distribution: np.ndarray = None

    def __getitem__(self, i):
        """The assessment of image ``i`` (entries are scalars, or None)."""
        return Assessment(self.probs[i], self.logits[i], *(None if a is None else a[i]
                                                            for a in (self.ood_score, self.in_distribution)))

    @staticmethod
    def concatenate(parts, num_classes):
        """One assessment from the assessments of consecutive batches."""
        if not parts:
            return Assessment(np.zeros((0, num_classes)), np.zeros((0, num_classes)))
        joined = [None if getattr(parts[0], k) is None else np.concatenate([getattr(p, k) for p in parts])
                  for k in ("probs", "logits", "ood_score", "in_distribution")]
        return Assessment(*joined)


def assess(model, x, batch_size=32):
    """Probabilities and out-of-distribution verdicts for model inputs ``x`` (N, 3, S, S), in one pass.

    Raises :class:`ModelFileError` naming the model when its output is not finite.
    """
    layers = ("classifier.6",) + ((model.ood.layer,) if model.ood else ())
    probs, captured = model.predict_proba(x, batch_size, capture=layers)
    logits = captured["classifier.6"].astype(np.float64)
    if model.ood is None:
        return Assessment(check_finite_output(model, probs), logits)
    scores = model.ood.score(captured[model.ood.layer])
    check_finite_output(model, probs, scores)
    return Assessment(probs, logits, scores, model.ood.in_distribution(scores))


def assess_dataset(model, dataset, indices, batch_size=32, progress=None):
    """:func:`assess` over ``dataset[indices]`` (no augmentation), in batches; ``progress(done, total)`` after each."""
    parts, done = [], 0
    for x, _ in dataset.batches(indices, batch_size):
        parts.append(assess(model, x, batch_size))
        done += len(x)
        if progress:
            progress(done, len(indices))
    return Assessment.concatenate(parts, model.num_classes)


def prediction_record(model, path, found):
    """What ``predict --json`` prints for one image, as a dict of JSON values.

    Keys: ``file``, ``label``, ``probabilities`` (class -> calibrated probability, 6
    decimals), ``model`` (its name), ``in_distribution`` (true/false, or null for a model
    file without a detector) and ``ood_score`` (or null). The model's output was checked to
    be finite, so every number is a valid JSON number.
    """
    known = found.in_distribution is not None
    return {"file": str(path), "label": model.class_names[int(found.probs.argmax())],
            "probabilities": {c: round(float(v), 6) for c, v in zip(model.class_names, found.probs)},
            "model": model_name(model), "in_distribution": bool(found.in_distribution) if known else None,
            "ood_score": float(f"{found.ood_score:.6g}") if known else None}


def error_record(path, error):
    """The record of a file that could not be predicted: ``{"file": ..., "error": one line}``."""
    return {"file": str(path), "error": str(error)}


def record_text(record):
    """The text line ``predict`` prints for a :func:`prediction_record`."""
    shown = "  ".join(f"{c} {format_probability(v)}" for c, v in record["probabilities"].items())
    line = f"{record['file']}: {record['label']}  ({shown})"
    if record["in_distribution"] is False:
        line += f"  (out of distribution): {NOT_TRAINED_ON_THIS}"
    return line


def format_probability(p):
    """``p`` with 3 decimals, or as many more (up to 6) as it takes not to show a 0 or 1 it is not.

    0.9996 prints as 0.9996, not 1.000: a printed certainty should be one the model has.
    Only a probability within 5e-7 of 0 or 1 prints as 0.000000 or 1.000000.
    """
    for digits in range(3, 7):
        text = f"{p:.{digits}f}"
        if 0 < float(text) < 1:
            return text
    return text


def _load_or_error(path, model):
    try:
        return load_for_model(path, model)
    except ImageError as e:
        return e


def predict_files(model, files, batch_size=16):
    """Yield ``(path, assessment, x)`` per file, or ``(path, ImageError, None)`` for unreadable ones.

    ``assessment`` is that image's :class:`Assessment`; ``x`` is the model input (3, S, S),
    handed on so that callers drawing heatmaps need not read the file again.

    Files are decoded and preprocessed on minivgg's thread pool (:func:`minivgg.threads.submit`;
    Pillow, SciPy and PyWavelets release the GIL) while the model scores the previous batch,
    and scored ``batch_size`` at a time, so memory stays bounded for any number of files.
    """
    # At most two batches are being read ahead: memory does not grow with the folder.
    pending = deque(submit(_load_or_error, f, model) for f in files[:2 * batch_size])
    ahead = len(pending)
    for i in range(0, len(files), batch_size):
        chunk = files[i:i + batch_size]
        inputs = []
        for _ in chunk:
            inputs.append(pending.popleft().result())
            if ahead < len(files):
                pending.append(submit(_load_or_error, files[ahead], model))
                ahead += 1
        good = [j for j, r in enumerate(inputs) if not isinstance(r, ImageError)]
        results = list(inputs)
        if good:
            batch = assess(model, np.stack([inputs[j] for j in good]), batch_size)
            for k, j in enumerate(good):
                results[j] = batch[k]
        for f, r, x in zip(chunk, results, inputs):
            yield f, r, (None if isinstance(x, ImageError) else x)
