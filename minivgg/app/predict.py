"""Many files through one classifier: read ahead on threads, score in batches, one record per file.

``minivgg predict`` (here and on Dask workers), ``minivgg evaluate`` and ``predict
--gradcam/--shap`` use these. Each file is read and scored by the operations of
:class:`minivgg.deploy.Classifier` (``read``, ``assess``); this module only schedules them
and turns their answers into records.
"""

import contextlib
import threading
import warnings
from collections import deque

import numpy as np

from minivgg.deploy.classifier import Assessment
from minivgg.errors import ImageError, Note
from minivgg.imaging.imageio import reading_bytes
from minivgg.nn.model import vgg8_layout
from minivgg.nn.threads import submit
from minivgg.text import NOT_TRAINED_ON_THIS, format_probability, printable

# What reading and scoring many files may hold at once: the images being decoded together, and
# one batch being scored, each stay within it whatever the number of threads or --batch-size.
MEMORY_BUDGET = 512 * 2 ** 20


def assess_dataset(model, dataset, indices, batch_size=32, progress=None):
    """``model.assess`` over ``dataset[indices]`` (no augmentation), in batches.

    ``progress(done, total)`` is called after each batch.
    """
    parts, done = [], 0
    for x, _ in dataset.batches(indices, batch_size):
        parts.append(model.assess(x, batch_size))
        done += len(x)
        if progress:
            progress(done, len(indices))
    return Assessment.concatenate(parts, model.num_classes)


def prediction_record(model, path, found):
    """What ``predict --json`` prints for one image, as a dict of JSON values.

    Keys: ``file``, ``label``, ``probabilities`` (class -> calibrated probability, 6
    decimals), ``model`` (its name), ``in_distribution`` (true/false, or null for a model
    file without a detector), ``ood_score`` and the detector's ``ood_threshold`` (a score
    above it is out of distribution; both null without a detector). The model's output was
    checked to be finite, so every number is a valid JSON number.
    """
    known = found.in_distribution is not None
    return {"file": str(path), "label": model.class_names[int(found.probs.argmax())],
            "probabilities": {c: round(float(v), 6) for c, v in zip(model.class_names, found.probs)},
            "model": model.name, "in_distribution": bool(found.in_distribution) if known else None,
            "ood_score": float(f"{found.ood_score:.6g}") if known else None,
            "ood_threshold": float(model.ood.threshold) if known else None}


def error_record(path, error):
    """The record of a file that could not be predicted: ``{"file": ..., "error": one line}``."""
    return {"file": str(path), "error": str(error)}


def record_text(record):
    """The text line ``predict`` prints for a :func:`prediction_record`."""
    shown = "  ".join(f"{printable(c)} {format_probability(v)}" for c, v in record["probabilities"].items())
    line = f"{printable(record['file'])}: {printable(record['label'])}  ({shown})"
    if record["in_distribution"] is False:
        line += f"  (out of distribution): {NOT_TRAINED_ON_THIS}"
    return line


def batch_limit(model, budget=None):
    """The most images one batch may hold for ``model`` to score it within ``budget`` bytes (:data:`MEMORY_BUDGET`).

    Measured with tracemalloc on the bundled and the paper's VGG8: scoring takes about 1.8
    times the largest activation per image (a layer's input and output side by side), and
    the batch's input is held throughout; counted here as twice the largest plus the input.
    """
    largest = max(int(np.prod(spec.shape)) for spec in vgg8_layout(**model.config))
    per_image = np.dtype(model.dtype).itemsize * (2 * largest + 3 * model.image_size ** 2)
    return max(1, (budget or MEMORY_BUDGET) // per_image)


class MemoryBudget:
    """Bytes that threads take before a large allocation and give back after it.

    A request waits until it fits beside those being used; a request larger than the
    whole budget waits until it is alone, so every request is served.
    """

    def __init__(self, total=None):
        self.total, self.used = total or MEMORY_BUDGET, 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def taken(self, nbytes):
        nbytes = min(nbytes, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self.used + nbytes <= self.total)
            self.used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self.used -= nbytes
                self._changed.notify_all()


def _read_or_error(path, model, budget):
    try:
        with budget.taken(reading_bytes(path)):
            return model.read(path)
    except ImageError as e:
        return e


def predict_files(model, files, batch_size=16):
    """Yield ``(path, assessment, x)`` per file, or ``(path, ImageError, None)`` for unreadable ones.

    ``assessment`` is that image's :class:`~minivgg.deploy.classifier.Assessment`; ``x`` is
    the model input (3, S, S), handed on so that callers drawing heatmaps need not read the
    file again.

    Files are decoded and preprocessed on minivgg's thread pool (:func:`minivgg.nn.threads.submit`;
    Pillow, SciPy and PyWavelets release the GIL) while the model scores the previous batch,
    and scored ``batch_size`` at a time, so memory stays bounded for any number of files:
    the images being decoded at once share :data:`MEMORY_BUDGET` (:class:`MemoryBudget`,
    by :func:`~minivgg.imaging.imageio.reading_bytes`), and ``batch_size`` is lowered to
    :func:`batch_limit` where it would not fit (with a :class:`~minivgg.errors.Note`).
    """
    if batch_size > batch_limit(model):
        warnings.warn(Note(f"--batch-size {batch_size}: {batch_limit(model)} images at a time is what model "
                           f"{model.name} can score within {MEMORY_BUDGET // 2 ** 20} MB; using that"), stacklevel=2)
        batch_size = batch_limit(model)
    budget = MemoryBudget()
    # At most two batches are being read ahead: memory does not grow with the folder.
    pending = deque(submit(_read_or_error, f, model, budget) for f in files[:2 * batch_size])
    ahead = len(pending)
    for i in range(0, len(files), batch_size):
        chunk = files[i:i + batch_size]
        inputs = []
        for _ in chunk:
            inputs.append(pending.popleft().result())
            if ahead < len(files):
                pending.append(submit(_read_or_error, files[ahead], model, budget))
                ahead += 1
        good = [j for j, r in enumerate(inputs) if not isinstance(r, ImageError)]
        results = list(inputs)
        if good:
            batch = model.assess(np.stack([inputs[j] for j in good]), batch_size)
            for k, j in enumerate(good):
                results[j] = batch[k]
        for f, r, x in zip(chunk, results, inputs):
            yield f, r, (None if isinstance(x, ImageError) else x)
