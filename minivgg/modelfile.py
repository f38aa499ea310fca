"""Model files: one ``.npz`` holding the weights plus a JSON metadata record.

Layout of the archive::

    features.0.weight, features.0.bias, ..., classifier.6.bias   float arrays (PyTorch names)
    __meta__                                                     uint8 array: UTF-8 JSON

The metadata says how to rebuild the network (``config``), what the classes are
called, how images were preprocessed for training (reused at prediction time), and
which minivgg wrote it. Files are read with ``allow_pickle=False``: an archive
holding object arrays is refused, never unpickled.
"""

import json
import zipfile

import numpy as np

from .atomic import atomic_write

FORMAT = "minivgg-model"
FORMAT_VERSION = 1
META_KEY = "__meta__"


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be read; the message names the file."""


def write_npz(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and the JSON-able ``meta`` to ``path`` atomically."""
    payload = dict(arrays)
    payload[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **payload)


def read_npz(path, expected_format):
    """Read an archive written by :func:`write_npz`; returns ``(arrays, meta)``.

    Raises :class:`ModelFileError` for a missing, truncated, corrupt or foreign file,
    one holding object arrays, or one whose ``meta["format"]`` is not ``expected_format``.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except ValueError as e:
        reason = "it holds object arrays, which are never unpickled" if "pickle" in str(e) else str(e)
        raise ModelFileError(f"{path}: not a valid {expected_format} file ({reason})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ModelFileError(f"{path}: not a valid {expected_format} file (truncated or corrupt: {e})") from None
    bad = [name for name, a in arrays.items() if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu"]
    if bad:
        raise ModelFileError(f"{path}: not a valid {expected_format} file (unreadable entries: {', '.join(bad)})")
    if META_KEY not in arrays:
        raise ModelFileError(f"{path}: not a {expected_format} file (no metadata record)")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: corrupt metadata ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        raise ModelFileError(f"{path}: not a {expected_format} file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer minivgg (format version {meta['format_version']}); upgrade minivgg")
    return arrays, meta


def model_metadata(model, extra=None):
    """The JSON record stored beside a model's weights."""
    from . import __version__
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "minivgg_version": __version__,
            "architecture": "VGG8", "config": model.config, "dtype": model.dtype.name,
            "class_names": model.class_names, "preprocessing": model.preprocessing, "extra": extra or {}}


def save_model(model, path, extra=None):
    """Write ``model`` to ``path`` atomically; ``extra`` (JSON-able) is stored as ``meta["extra"]``."""
    write_npz(path, model.state_dict(), model_metadata(model, extra))


def model_from_arrays(arrays, meta, path):
    """Rebuild a :class:`~minivgg.model.VGG8` from archive contents (shared with checkpoints)."""
    from .model import VGG8
    try:
        model = VGG8(**meta["config"], dtype=meta.get("dtype", "float32"), class_names=meta["class_names"])
        model.load_state_dict(arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: weights or metadata do not describe a VGG8 ({e})") from None
    model.preprocessing = meta.get("preprocessing", {})
    model.extra = meta.get("extra", {})
    return model


def load_model(path):
    """Read a model written by :func:`save_model`."""
    arrays, meta = read_npz(path, FORMAT)
    return model_from_arrays(arrays, meta, path)
