"""The prediction core shared by ``minivgg predict``, ``explain``, ``evaluate`` and the terminal app.

An image is read (:mod:`minivgg.imageio`), preprocessed with the settings stored in
the model file (:mod:`minivgg.preprocess`), and scored in inference mode.
"""

import numpy as np

from .imageio import ImageError, load_image
from .preprocess import preprocess


def load_for_model(path, model):
    """The model input (3, S, S) for the image at ``path``; raises :class:`ImageError`."""
    return preprocess(load_image(path), model.preprocessing)


def predict_files(model, files, batch_size=16):
    """Yield ``(path, probabilities)`` per file, or ``(path, ImageError)`` for unreadable ones.

    Files are read and scored ``batch_size`` at a time, so memory stays bounded for any
    number of files, and the forward pass runs on full batches.
    """
    for i in range(0, len(files), batch_size):
        chunk, xs, results = files[i:i + batch_size], [], {}
        for f in chunk:
            try:
                xs.append((f, load_for_model(f, model)))
            except ImageError as e:
                results[f] = e
        if xs:
            probs = model.predict_proba(np.stack([x for _, x in xs]), batch_size)
            results.update({f: p for (f, _), p in zip(xs, probs)})
        for f in chunk:
            yield f, results[f]
