"""The model card: where a model comes from and what it is for, inside its model file.

Every model file of format 2 holds one, as ``meta["card"]`` (``null`` marks what is not
known, e.g. for weights trained elsewhere); the input size and preprocessing it was
trained with are the file's ``config`` and ``preprocessing`` records, printed with the
card by ``minivgg info``::

    name           str             how predictions name the model ("model" in predict --json)
    intended_use   str             what the model may be used for, in the trainer's words
    trained_on     object or null  source (the data folder's name), images_per_class and
                                   validation_images_per_class ({class: count}), files_sha256
                                   (SHA-256 of the sorted "class/file" list of training images)
    metrics        object          held-out metrics by split: {"validation": {...}, "test": {...}}
    command        str or null     the command that trained it
    seed           int or null     its random seed
    code_version   str             the minivgg that wrote the card (and its git commit, when known)
    date           str             when the card was written (ISO 8601, UTC)
"""

import math
import re
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from minivgg.version import __version__

DEFAULT_INTENDED_USE = "not stated (the trainer can state it with --intended-use)"
MAX_TEXT = 2000
CARD_FIELDS = ("name", "intended_use", "trained_on", "metrics", "command", "seed", "code_version", "date")
# Fields a card may lack (cards written before they existed): the explanation card.
OPTIONAL_FIELDS = ("explanations",)


@lru_cache(maxsize=1)
def code_version():
    """``minivgg <version>``, with the git commit when minivgg runs from a git checkout."""
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=10"], capture_output=True,
                                text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"minivgg {__version__}" + (f" (git {commit})" if commit else "")


def new_card(name=None, intended_use=None, trained_on=None, metrics=None, command=None, seed=None):
    """A card dated now, by this minivgg; what is not given is recorded as not known."""
    return {"name": name, "intended_use": intended_use or DEFAULT_INTENDED_USE, "trained_on": trained_on,
            "metrics": metrics or {}, "command": command, "seed": seed, "code_version": code_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def training_data(dataset, train_idx, val_idx, files_sha256):
    """The ``trained_on`` record of a model trained on ``dataset[train_idx]`` and validated on ``val_idx``."""
    def per_class(idx):
        counts = [int((dataset.labels[idx] == k).sum()) for k in range(len(dataset.class_names))]
        return dict(zip(dataset.class_names, counts))
    return {"source": dataset.root.name, "images_per_class": per_class(train_idx),
            "validation_images_per_class": per_class(val_idx), "files_sha256": files_sha256}


def model_name(model):
    """The card's name, else the model file's name, else "unnamed model"."""
    name = (model.card or {}).get("name")
    return name or (Path(model.source).stem if model.source else "unnamed model")


# ---------------------------------------------------------------- validation


def _text(card, key, nullable=False):
    v = card.get(key)
    ok = (v is None and nullable) or (isinstance(v, str) and 0 < len(v) <= MAX_TEXT)
    if not ok:
        raise ValueError(f"card.{key} must be {'null or ' if nullable else ''}a string of 1 to {MAX_TEXT} "
                         f"characters, got {v!r:.80}")


def _counts(d, key, class_names):
    v = d.get(key)
    if not (isinstance(v, dict) and sorted(v) == sorted(class_names)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v.values())):
        raise ValueError(f"card.trained_on.{key} must map each class {class_names} to a count, got {v!r:.80}")


def validate_card(card, class_names):
    """Check a card record; raises ``ValueError`` naming the field (``card.<field>``)."""
    if not isinstance(card, dict):
        raise ValueError(f"card must be an object, got {type(card).__name__}")
    unknown = sorted(set(card) - set(CARD_FIELDS) - set(OPTIONAL_FIELDS))
    missing = [k for k in CARD_FIELDS if k not in card]
    if unknown or missing:
        raise ValueError(f"card fields do not match (missing: {', '.join(missing) or '-'}; "
                         f"unknown: {', '.join(unknown) or '-'})")
    _text(card, "name", nullable=True)
    _text(card, "intended_use")
    _text(card, "command", nullable=True)
    _text(card, "code_version")
    if not (isinstance(card["date"], str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", card["date"])):
        raise ValueError(f"card.date must be an ISO 8601 UTC time like 2025-01-31T12:00:00Z, got {card['date']!r:.80}")
    seed = card["seed"]
    if not (seed is None or (isinstance(seed, int) and not isinstance(seed, bool))):
        raise ValueError(f"card.seed must be null or an integer, got {seed!r:.80}")
    data = card["trained_on"]
    if data is not None:
        if not isinstance(data, dict) or set(data) != {"source", "images_per_class", "validation_images_per_class",
                                                       "files_sha256"}:
            raise ValueError("card.trained_on must be null or an object with source, images_per_class, "
                             "validation_images_per_class and files_sha256")
        if not (isinstance(data["source"], str) and 0 < len(data["source"]) <= MAX_TEXT):
            raise ValueError(f"card.trained_on.source must be a folder name, got {data['source']!r:.80}")
        _counts(data, "images_per_class", class_names)
        _counts(data, "validation_images_per_class", class_names)
        if not (isinstance(data["files_sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", data["files_sha256"])):
            raise ValueError(f"card.trained_on.files_sha256 must be 64 hex digits, got {data['files_sha256']!r:.80}")
    metrics = card["metrics"]
    leaf = (str, int, float, type(None))
    if not (isinstance(metrics, dict) and all(isinstance(m, dict) and all(isinstance(v, leaf) for v in m.values())
                                              for m in metrics.values())):
        raise ValueError("card.metrics must map each split to an object of numbers, strings or nulls")
    if card.get("explanations") is not None:
        validate_explanation_card(card["explanations"])


def _number(v, nullable=False):
    return (v is None and nullable) or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def validate_explanation_card(record):
    """Check a card's ``explanations`` record (see :func:`explanation_line`); raises ``ValueError``."""
    if not (isinstance(record, dict) and set(record) == {"data", "twin_swap_flip", "methods"}
            and isinstance(record["data"], str) and 0 < len(record["data"]) <= MAX_TEXT
            and _number(record["twin_swap_flip"], nullable=True) and isinstance(record["methods"], dict)):
        raise ValueError("card.explanations must be an object with data (text), twin_swap_flip (a number or "
                         "null) and methods")
    for method, scores in record["methods"].items():
        if not (isinstance(scores, dict) and set(scores) == {"pointing", "mass_ratio", "n"}
                and _number(scores["pointing"]) and _number(scores["mass_ratio"], nullable=True)
                and isinstance(scores["n"], int) and not isinstance(scores["n"], bool) and scores["n"] > 0):
            raise ValueError(f"card.explanations.methods.{method:.40} must hold pointing, mass_ratio and n")


# ---------------------------------------------------------------- printing


def describe_preprocessing(settings):
    """One line: what happens to an image before the network sees it."""
    wavelet = (f"{settings['wavelet']} wavelet denoising ({settings.get('wavelet_levels', 3)} levels), "
               if settings.get("wavelet") else "")
    return (f"grayscale, resize to {settings['resize']}, centre-crop {settings['crop']}, {wavelet}"
            f"normalise (mean {settings['mean']}, std {settings['std']})")


def card_lines(model):
    """The card of ``model`` as ``(label, text)`` rows, for ``minivgg info``."""
    card = model.card or {}
    unknown = "not known (a model file without a card)" if model.card is None else "not known"
    data = card.get("trained_on")
    rows = [("name", model_name(model)),
            ("intended use", card.get("intended_use") or unknown)]
    if data:
        counts = ", ".join(f"{n} {c}" for c, n in data["images_per_class"].items())
        val = ", ".join(f"{n} {c}" for c, n in data["validation_images_per_class"].items())
        rows += [("trained on", f"folder {data['source']!r}: {counts} (validation: {val})"),
                 ("training files", f"SHA-256 {data['files_sha256']}")]
    else:
        rows.append(("trained on", unknown))
    rows += [("image size", f"{model.image_size} x {model.image_size}"),
             ("preprocessing", describe_preprocessing(model.preprocessing))]
    for split, values in card.get("metrics", {}).items():
        rows.append((f"{split} metrics", ", ".join(f"{k} {_short(v)}" for k, v in values.items())))
    rows += [("command", card.get("command") or unknown),
             ("seed", unknown if card.get("seed") is None else str(card["seed"])),
             ("code version", card.get("code_version") or unknown),
             ("date", card.get("date") or unknown)]
    if model.calibration:
        c = model.calibration
        rows.append(("calibration", f"temperature {c['temperature']:.4g} (fitted on {c['n']} validation images; "
                                    f"ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f})"))
    else:
        rows.append(("calibration", "none (probabilities are the raw softmax)"))
    if model.ood:
        d = model.ood
        rows.append(("out of distribution", f"flagged when the Mahalanobis score of the pooled {d.layer} output "
                                            f"is above {d.threshold:.4g} (the {d.quantile:.0%} quantile of "
                                            f"{d.n_held_out} validation images)"))
    else:
        rows.append(("out of distribution", "no detector (fit one with: minivgg calibrate)"))
    record = card.get("explanations")
    if record:
        rows.append(("explanations", f"checked on {record['data']}"))
        rows += [("", explanation_line(model, method)) for method in record["methods"]]
        if record["twin_swap_flip"] is not None:
            rows.append(("", f"twin swap: p(class) fell below 0.5 for {record['twin_swap_flip']:.0%} of the twins "
                             f"once their lesions were replaced by healthy tissue"))
    else:
        rows.append(("explanations", "not validated (no ground truth: the model was not trained on images with "
                                     "lesion masks)"))
    return rows


def explanation_line(model, method):
    """How far the maps of ``method`` ("hirescam", "gradcam", "shap") were right on this model's validation twins.

    One line for every picture and screen that shows such a map: "HiResCAM pointed at the
    lesion in 95% of 240 validation twins (lesion mass ratio 9.0)", or "not validated: ..."
    when the model was trained without lesion masks (there was no ground truth to check
    the maps against).
    """
    record = (model.card or {}).get("explanations")
    label = METHOD_LABELS.get(method, method)
    if not record or method not in record["methods"]:
        return f"{label}: not validated (no ground truth: the model was not trained on images with lesion masks)"
    scores = record["methods"][method]
    ratio = "" if scores["mass_ratio"] is None else f" (lesion mass ratio {scores['mass_ratio']:.1f})"
    return (f"{label} pointed at the lesion in {scores['pointing']:.0%} of {scores['n']} validation twins"
            f"{ratio}")


def explanation_score(model, method):
    """:func:`explanation_line` in a few words, for a screen's panel title: "98% on 240 twins", "not validated"."""
    record = (model.card or {}).get("explanations")
    if not record or method not in record["methods"]:
        return "not validated"
    scores = record["methods"][method]
    return f"on lesion in {scores['pointing']:.0%} of {scores['n']} twins"


METHOD_LABELS = {"hirescam": "HiResCAM", "gradcam": "Grad-CAM", "shap": "Kernel-SHAP"}


def _short(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)
