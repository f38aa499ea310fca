"""The prediction core shared by ``minivgg predict``, ``explain``, ``evaluate`` and the terminal app.

An image is read (:mod:`minivgg.imageio`), preprocessed with the settings stored in
the model file (:mod:`minivgg.preprocess`), and scored in inference mode.
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .imageio import ImageError, load_image
from .modelfile import ModelFileError
from .preprocess import preprocess


def load_for_model(path, model):
    """The model input (3, S, S) for the image at ``path``; raises :class:`ImageError`."""
    return preprocess(load_image(path), model.preprocessing)


def check_finite_output(model, probs):
    """Return ``probs``, or raise :class:`ModelFileError` naming the model when any is NaN or infinite.

    A model whose weights overflow on some input gives NaN; that must never reach a
    report (nor a JSON line, where ``NaN`` is not valid).
    """
    if not np.isfinite(probs).all():
        raise ModelFileError(f"{model.source or 'the model'}: output is not finite (NaN or infinity); "
                             f"the model is unusable on these inputs")
    return probs


def _load_or_error(path, model):
    try:
        return load_for_model(path, model)
    except ImageError as e:
        return e


def predict_files(model, files, batch_size=16, workers=2):
    """Yield ``(path, probabilities, x)`` per file, or ``(path, ImageError, None)`` for unreadable ones.

    ``x`` is the model input (3, S, S), handed on so that callers drawing heatmaps need
    not read the file again.

    Files are decoded and preprocessed by ``workers`` threads (Pillow, SciPy and
    PyWavelets release the GIL) while the model scores the previous batch, and scored
    ``batch_size`` at a time, so memory stays bounded for any number of files.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # At most two batches are being read ahead: memory does not grow with the folder.
        pending = deque(pool.submit(_load_or_error, f, model) for f in files[:2 * batch_size])
        ahead = len(pending)
        for i in range(0, len(files), batch_size):
            chunk = files[i:i + batch_size]
            inputs = []
            for _ in chunk:
                inputs.append(pending.popleft().result())
                if ahead < len(files):
                    pending.append(pool.submit(_load_or_error, files[ahead], model))
                    ahead += 1
            good = [j for j, r in enumerate(inputs) if not isinstance(r, ImageError)]
            results = list(inputs)
            if good:
                probs = check_finite_output(model, model.predict_proba(np.stack([inputs[j] for j in good]), batch_size))
                for j, p in zip(good, probs):
                    results[j] = p
            for f, r, x in zip(chunk, results, inputs):
                yield f, r, (None if isinstance(x, ImageError) else x)
