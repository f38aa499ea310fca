"""Model files: one ``.npz`` holding the weights plus a JSON metadata record.

Layout of the archive::

    features.0.weight, features.0.bias, ..., classifier.6.bias   float arrays (PyTorch names)
    __meta__                                                     uint8 array: UTF-8 JSON

The metadata says how to rebuild the network (``config``), what the classes are
called, how images were preprocessed for training (reused at prediction time), and
which minivgg wrote it. Since format 2 it also holds the model card (``card``, see
:mod:`minivgg.trust.modelcard`) and, for a model fitted on held-out images, the temperature
(``calibration``, :mod:`minivgg.trust.calibration`) and the out-of-distribution detector
(``ood``, :mod:`minivgg.trust.ood`), whose two arrays are stored beside the weights::

    ood.class_means  float64 (classes, C)      C: channels of the detector's layer
    ood.precision    float64 (C, C)

Files of format 1 (no card, no calibration, no detector) still load.

A model file may come from anywhere, so it is read defensively, in this order, and
refused with a one-line :class:`ModelFileError` at the first problem:

1. it must be a zip archive of ``.npy`` members (``np.load`` is never given a chance
   to unpickle anything: ``allow_pickle=False``, and object arrays are refused);
2. the metadata record (at most :data:`MAX_META_BYTES`) must be valid JSON and pass
   :func:`validate_meta`: every field has the right type and lies within
   :data:`LIMITS`, so that ``num_classes: 1e9`` is refused before any allocation;
3. every array's ``.npy`` header (dtype and shape) and its uncompressed size in the zip
   directory must be exactly what the validated metadata implies, *before* the array is
   read: a zip bomb is refused without being decompressed;
4. the weights (and the detector's arrays) must be finite, and the detector's precision
   matrix symmetric positive definite.
"""

import json
import zipfile

import numpy as np
import pywt

from minivgg.atomic import atomic_write
from minivgg.deploy.classifier import Classifier, as_classifier
from minivgg.errors import ModelFileError, ModelFileMissing
from minivgg.files import MISSING, input_problem, json_safe
from minivgg.nn.model import CONV_RELUS, VGG8, parameter_shapes
from minivgg.trust.calibration import TEMPERATURE_RANGE
from minivgg.trust.modelcard import new_card, validate_card
from minivgg.trust.ood import MahalanobisDetector
from minivgg.version import __version__

FORMAT = "minivgg-model"
FORMAT_VERSION = 2
META_KEY = "__meta__"
MAX_META_BYTES = 4 * 2 ** 20
LIMITS = {"num_classes": 1000, "channels": 4096, "hidden": 65536, "image_size": 1024, "parameters": 300_000_000}



def write_npz(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and the JSON-able ``meta`` to ``path`` atomically."""
    payload = dict(arrays)
    payload[META_KEY] = np.frombuffer(json.dumps(json_safe(meta), sort_keys=True, allow_nan=False).encode("utf-8"),
                                      dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **payload)


# ---------------------------------------------------------------------------- validation


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _require(ok, what):
    if not ok:
        raise ValueError(what)


def _int_in(d, key, lo, hi):
    v = d.get(key)
    _require(_is_int(v) and lo <= v <= hi, f"{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def validate_config(config):
    """Check a ``config`` record (see :class:`minivgg.nn.model.VGG8`); raises ``ValueError`` naming the field."""
    _require(isinstance(config, dict), f"config must be an object, got {type(config).__name__}")
    _int_in(config, "num_classes", 2, LIMITS["num_classes"])
    ch = config.get("channels")
    _require(isinstance(ch, list) and len(ch) == 8 and all(_is_int(c) and 1 <= c <= LIMITS["channels"] for c in ch),
             f"channels must be 8 integers in [1, {LIMITS['channels']}], got {ch!r}")
    _int_in(config, "hidden", 1, LIMITS["hidden"])
    size = _int_in(config, "image_size", 32, LIMITS["image_size"])
    _require(size % 32 == 0, f"image_size must be a multiple of 32, got {size}")
    p = config.get("dropout", 0.0)
    _require(_is_number(p) and 0 <= p < 1, f"dropout must be a number in [0, 1), got {p!r}")
    _require(_is_int(config.get("seed", 0)), f"seed must be an integer, got {config.get('seed')!r}")
    n = parameter_count(config)
    _require(n <= LIMITS["parameters"], f"the network would have {n:,} parameters (limit {LIMITS['parameters']:,})")


def validate_preprocessing(settings, image_size):
    """Check a ``preprocessing`` record (see :mod:`minivgg.imaging.preprocess`); raises ``ValueError``."""
    _require(isinstance(settings, dict) and settings, "preprocessing settings are missing")
    crop = _int_in(settings, "crop", 32, LIMITS["image_size"])
    _require(crop == image_size, f"preprocessing crop {crop} differs from the network's image_size {image_size}")
    _int_in(settings, "resize", crop, 4 * LIMITS["image_size"])
    wavelet = settings.get("wavelet")
    _require(wavelet is None or (isinstance(wavelet, str) and wavelet in pywt.wavelist(kind="discrete")),
             f"wavelet must be null or a discrete PyWavelets wavelet name, got {wavelet!r}")
    if wavelet is not None:
        _int_in(settings, "wavelet_levels", 1, 8)
    for key in ("mean", "std"):
        v = settings.get(key)
        _require(isinstance(v, list) and len(v) == 3 and all(_is_number(c) for c in v),
                 f"{key} must be 3 finite numbers, got {v!r}")
    _require(all(s > 0 for s in settings["std"]), f"std must be positive, got {settings['std']!r}")


def validate_meta(meta, expected_format):
    """Check the metadata of a model or checkpoint file; raises ``ValueError`` naming the field."""
    _require(isinstance(meta, dict), "metadata is not a JSON object")
    _require(meta.get("format") == expected_format, f"format is {meta.get('format')!r}, not {expected_format!r}")
    version = meta.get("format_version")
    _require(_is_int(version) and version >= 1, f"format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"written by a newer minivgg (format version {version}); upgrade minivgg")
    _require(meta.get("architecture") == "VGG8", f"architecture is {meta.get('architecture')!r}, not 'VGG8'")
    validate_config(meta.get("config"))
    _require(meta.get("dtype") in ("float32", "float64"),
             f"dtype must be float32 or float64, got {meta.get('dtype')!r}")
    names = meta.get("class_names")
    n = meta["config"]["num_classes"]
    _require(isinstance(names, list) and len(names) == n and all(isinstance(c, str) and c for c in names)
             and len(set(names)) == n, f"class_names must be {n} distinct non-empty strings, got {names!r}")
    validate_preprocessing(meta.get("preprocessing"), meta["config"]["image_size"])
    _require(isinstance(meta.get("extra", {}), dict), "extra must be an object")
    if version >= 2 or "card" in meta:
        validate_card(meta.get("card"), names)
    if meta.get("calibration") is not None:
        validate_calibration(meta["calibration"])
    if meta.get("ood") is not None:
        validate_ood(meta["ood"])


def _number_in(d, key, lo, hi, where):
    v = d.get(key)
    _require(_is_number(v) and lo <= v <= hi, f"{where}.{key} must be a number in [{lo}, {hi}], got {v!r}")


def validate_calibration(record):
    """Check a ``calibration`` record (temperature scaling); raises ``ValueError`` naming the field."""
    _require(isinstance(record, dict), "calibration must be an object")
    _require(record.get("method") == "temperature",
             f"calibration.method must be 'temperature', got {record.get('method')!r}")
    _number_in(record, "temperature", *TEMPERATURE_RANGE, "calibration")
    _require(_is_int(record.get("n")) and record["n"] >= 1, f"calibration.n must be a positive integer, "
                                                            f"got {record.get('n')!r}")
    for key in ("nll", "ece", "brier"):
        for when in ("before", "after"):
            _number_in(record, f"{key}_{when}", 0, float("inf"), "calibration")
    _require(isinstance(record.get("at_bound"), bool), "calibration.at_bound must be true or false")


def validate_ood(record):
    """Check an ``ood`` record (the out-of-distribution detector); raises ``ValueError`` naming the field."""
    _require(isinstance(record, dict), "ood must be an object")
    _require(record.get("method") == "mahalanobis", f"ood.method must be 'mahalanobis', got {record.get('method')!r}")
    _require(record.get("layer") in CONV_RELUS,
             f"ood.layer must be one of {', '.join(CONV_RELUS)}, got {record.get('layer')!r}")
    _number_in(record, "threshold", 0, float("inf"), "ood")
    _require(_is_number(record.get("quantile")) and 0 < record["quantile"] <= 1,
             f"ood.quantile must be a number in (0, 1], got {record.get('quantile')!r}")
    for key in ("n_fit", "n_held_out"):
        _require(_is_int(record.get(key)) and record[key] >= 1, f"ood.{key} must be a positive integer, "
                                                                f"got {record.get(key)!r}")


def parameter_count(config):
    return sum(int(np.prod(s)) for s in parameter_shapes(config).values())


# ---------------------------------------------------------------------------- reading


def _member_header(zf, info):
    """dtype and shape from the ``.npy`` header of one zip member, reading only the header."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        return np.dtype(dtype), tuple(shape), f.tell()


def read_npz(path, expected_format, array_specs, load_arrays=True):
    """Read and check an archive written by :func:`write_npz`; returns ``(arrays, meta)``.

    Parameters
    ----------
    path : path
    expected_format : str, ``meta["format"]`` (a model or a checkpoint)
    array_specs : callable ``meta -> {name: (dtype, shape)}``
        Validates the metadata (raising ``ValueError``) and says exactly which arrays the
        archive must hold; nothing is decompressed before this has passed.
    load_arrays : bool
        False checks the archive's directory and metadata only, and returns ``({}, meta)``.

    Raises :class:`ModelFileError` naming the file and the problem.
    """
    kind = "model" if expected_format == FORMAT else "checkpoint"
    problem = input_problem(path)
    if problem in MISSING:
        raise ModelFileMissing(f"{path}: {problem}")
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a minivgg {kind} file (not an .npz archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {info.filename: info for info in zf.infolist()}
            meta_info = infos.get(META_KEY + ".npy")
            if meta_info is None:
                raise ModelFileError(f"{path}: not a minivgg {kind} file (no metadata record)")
            if meta_info.file_size > MAX_META_BYTES:
                raise ModelFileError(f"{path}: metadata record of {meta_info.file_size:,} bytes is over the "
                                     f"limit of {MAX_META_BYTES:,}")
            meta = _read_meta(zf, meta_info, path)
            try:
                specs = array_specs(meta)
            except ValueError as e:
                raise ModelFileError(f"{path}: bad metadata: {e}") from None
            names = {name[:-4] for name in infos if name.endswith(".npy")} - {META_KEY}
            others = [name for name in infos if not name.endswith(".npy")]
            missing, unexpected = sorted(set(specs) - names), sorted(names - set(specs)) + others
            if missing or unexpected:
                raise ModelFileError(f"{path}: arrays do not match the metadata (missing: {', '.join(missing) or '-'}; "
                                     f"unexpected: {', '.join(unexpected) or '-'})")
            arrays = {}
            for name, (dtype, shape) in (specs.items() if load_arrays else ()):
                arrays[name] = _read_member(zf, infos[name + ".npy"], name, np.dtype(dtype), tuple(shape), path)
    except ModelFileError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, RuntimeError) as e:
        raise ModelFileError(f"{path}: not a valid minivgg {kind} file (truncated or corrupt: {e})") from None
    return arrays, meta


def _read_meta(zf, info, path):
    dtype, shape, offset = _member_header(zf, info)
    if dtype.hasobject:
        raise ModelFileError(f"{path}: the metadata record holds object arrays, which are never unpickled")
    if dtype != np.uint8 or len(shape) != 1 or info.file_size != offset + shape[0]:
        raise ModelFileError(f"{path}: corrupt metadata record (not a byte string)")
    with zf.open(info) as f:
        f.seek(offset)
        raw = f.read(shape[0])
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: corrupt metadata ({e})") from None


def _read_member(zf, info, name, dtype, shape, path):
    got_dtype, got_shape, offset = _member_header(zf, info)
    if got_dtype.hasobject:
        raise ModelFileError(f"{path}: {name} holds object arrays, which are never unpickled")
    if got_dtype != dtype or got_shape != shape:
        raise ModelFileError(f"{path}: {name} is {got_dtype}{list(got_shape)}, expected {dtype}{list(shape)}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if info.file_size != offset + nbytes:       # the zip directory's uncompressed size, checked before reading
        raise ModelFileError(f"{path}: {name} declares {info.file_size:,} uncompressed bytes, expected "
                             f"{offset + nbytes:,}")
    with zf.open(info) as f:
        f.seek(offset)
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise ModelFileError(f"{path}: {name} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def model_array_specs(meta, expected_format=FORMAT):
    """Validate model metadata and list the arrays it implies: ``{name: (dtype, shape)}``.

    The weights, and the out-of-distribution detector's arrays when ``meta["ood"]`` is set.
    """
    validate_meta(meta, expected_format)
    specs = {name: (meta["dtype"], shape) for name, shape in parameter_shapes(meta["config"]).items()}
    if meta.get("ood") is not None:
        c = meta["config"]["channels"][CONV_RELUS.index(meta["ood"]["layer"])]   # that conv's output channels
        specs["ood.class_means"] = ("float64", (meta["config"]["num_classes"], c))
        specs["ood.precision"] = ("float64", (c, c))
    return specs


# ---------------------------------------------------------------------------- models


def model_metadata(model, extra=None):
    """The JSON record stored beside a model's weights (a model without a card gets one that says so).

    ``model`` is a :class:`~minivgg.deploy.classifier.Classifier`, or a bare VGG8 (stored
    with the paper's preprocessing and no trust records).
    """
    model = as_classifier(model)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "minivgg_version": __version__,
            "architecture": "VGG8", "config": model.config, "dtype": model.dtype.name,
            "class_names": model.class_names, "preprocessing": model.preprocessing,
            "extra": model.extra if extra is None else extra, "card": model.card or new_card()}
    if model.calibration:
        meta["calibration"] = model.calibration
    if model.ood:
        meta["ood"] = {"method": "mahalanobis", "layer": model.ood.layer, "threshold": model.ood.threshold,
                       "quantile": model.ood.quantile, "n_fit": model.ood.n_fit, "n_held_out": model.ood.n_held_out}
    return meta


def model_arrays(model):
    """The arrays stored in a model file: the weights, and the detector's arrays when there is one."""
    model = as_classifier(model)
    arrays = model.state_dict()
    if model.ood:
        arrays.update({"ood.class_means": model.ood.class_means, "ood.precision": model.ood.precision})
    return arrays


def save_model(model, path, extra=None):
    """Write ``model`` to ``path`` atomically; ``extra`` (JSON-able; default ``model.extra``) goes in ``meta["extra"]``.

    The metadata is checked as :func:`load_model` will check it, first: a file that could
    not be loaded again is never written (``ValueError`` naming the field).
    """
    meta = model_metadata(model, extra)
    arrays = model_arrays(model)
    for name, (_, shape) in model_array_specs(json.loads(json.dumps(json_safe(meta))), FORMAT).items():
        if np.shape(arrays[name]) != shape:
            raise ValueError(f"{name} has shape {np.shape(arrays[name])}, expected {shape}")
    write_npz(path, arrays, meta)


def model_from_arrays(arrays, meta, path):
    """Rebuild a :class:`~minivgg.deploy.classifier.Classifier` from checked archive contents (also checkpoints')."""
    bad = [name for name, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        raise ModelFileError(f"{path}: non-finite weights (NaN or infinity) in {', '.join(bad)}")
    arrays = dict(arrays)
    means, precision = arrays.pop("ood.class_means", None), arrays.pop("ood.precision", None)
    network = VGG8(**meta["config"], dtype=meta["dtype"], class_names=meta["class_names"])
    network.load_state_dict(arrays)
    detector = None
    if meta.get("ood") is not None:
        if not (np.allclose(precision, precision.T) and _positive_definite(precision)):
            raise ModelFileError(f"{path}: ood.precision is not a symmetric positive definite matrix")
        d = meta["ood"]
        detector = MahalanobisDetector(means, precision, d["threshold"], d["quantile"], d["layer"],
                                       d["n_fit"], d["n_held_out"])
    return Classifier(network, preprocessing=meta["preprocessing"], calibration=meta.get("calibration"),
                      ood=detector, card=meta.get("card"), extra=meta.get("extra", {}), source=str(path))


def _positive_definite(matrix):
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def load_model(path):
    """Read and check a model written by :func:`save_model`: a :class:`~minivgg.deploy.classifier.Classifier`.

    Raises :class:`~minivgg.errors.ModelFileError` (:class:`~minivgg.errors.ModelFileMissing`
    when there is no such file).
    """
    arrays, meta = read_npz(path, FORMAT, model_array_specs)
    return model_from_arrays(arrays, meta, path)
