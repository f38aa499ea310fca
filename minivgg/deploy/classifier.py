"""The deployed model: a trained VGG8 and everything that turns a file into a prediction and a figure.

:class:`~minivgg.nn.model.VGG8` is the network the course teaches: layers, forward and
backward passes, parameters. A :class:`Classifier` is what a model file holds and what
every front end (``minivgg predict``/``explain``, the Dask workers, the terminal app)
works with: the network, plus

* the preprocessing its training images went through (reused for every input),
* the temperature that calibrates its probabilities (:mod:`minivgg.trust.calibration`),
* its out-of-distribution detector (:mod:`minivgg.trust.ood`) and its model card
  (:mod:`minivgg.trust.modelcard`),

and the four operations every front end needs, so that none of them has a copy of its own:

=========================  ==============================================================
``read(path)``             a file -> the model input (3, S, S)
``assess(x)``              a batch -> calibrated probabilities, label, out-of-distribution
``explain(x, settings)``   an input -> an :class:`Explanation` (Grad-CAM/HiResCAM, SHAP)
``save_explanation(e)``    an explanation -> stamped PNG files under a distinct name
=========================  ==============================================================

For the network-level calls that the explainers and the course make (``forward``,
``backward``, ``infer``, ``layers`` ...) a classifier answers as its network does
(:data:`NETWORK_MEMBERS`); only the probabilities differ: ``predict_proba`` and
``softmax`` divide the logits by the temperature.

A classifier is set up once (loaded, or fitted at the end of training) and then only
read: one object serves any number of threads.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from minivgg.errors import ModelFileError, UsageError
from minivgg.explain.gradcam import GradCAM
from minivgg.explain.kernelshap import KernelSHAP
from minivgg.explain.render import save_explanation
from minivgg.explain.settings import ExplainSettings
from minivgg.imaging.imageio import load_image
from minivgg.imaging.preprocess import preprocess, preprocessing_settings, to_display
from minivgg.nn.loss import softmax
from minivgg.text import NOT_TRAINED_ON_THIS, format_probability, printable
from minivgg.trust.modelcard import explanation_line, model_name
from minivgg.version import __version__

HIDDEN_SHARE = 0.05       # the share of the image the per-image check hides, hottest pixels first
# What a classifier answers exactly as its network does.
NETWORK_MEMBERS = frozenset({"forward", "backward", "infer", "check_input", "layers", "layer_names",
                             "conv_layer_names", "config", "dtype", "image_size", "num_classes", "class_names",
                             "parameters", "state_dict", "load_state_dict", "num_parameters", "frozen"})


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

    @property
    def flagged(self):
        """For one image's assessment: True when the detector found it unlike the training images."""
        return self.in_distribution is not None and not self.in_distribution

    @staticmethod
    def concatenate(parts, num_classes):
        """One assessment from the assessments of consecutive batches."""
        if not parts:
            return Assessment(np.zeros((0, num_classes)), np.zeros((0, num_classes)))
        joined = [None if getattr(parts[0], k) is None else np.concatenate([getattr(p, k) for p in parts])
                  for k in ("probs", "logits", "ood_score", "in_distribution")]
        return Assessment(*joined)


@dataclass(frozen=True)
class Explanation:
    """The maps of one image for one class, with everything a saved picture must say about them.

    Attributes
    ----------
    x : (3, S, S) the model input explained
    found : Assessment of that input (scalars)
    target : int, the explained class
    settings : ExplainSettings that made it
    cam : (S, S) the normalised class-activation map in [0, 1] (in [-1, 1] with ``settings.signed``),
        or None
    cam_name, cam_layer : what the map is ("Grad-CAM"/"HiResCAM") and where it looks
    shap : :class:`~minivgg.explain.kernelshap.SHAPResult`, or None (possibly a partial one:
        ``shap.n_evaluations < shap.budget`` while rounds are still running)
    cam_check, shap_check : p(target) once the hottest :data:`HIDDEN_SHARE` of the image by
        that map is hidden with the baseline's fill (:meth:`Classifier.hiding_check`); None for
        a map with nothing positive to hide, and until :meth:`Classifier.checked` has run (the
        rounds of :meth:`Classifier.explain_rounds` carry none)
    notes : notes for the user (an empty map, a saturated model)
    path : the file it came from, or None
    """
    x: np.ndarray
    found: Assessment
    target: int
    settings: ExplainSettings
    cam: np.ndarray = None
    cam_name: str = None
    cam_layer: str = None
    shap: object = None
    notes: tuple = ()
    path: Path = None
    cam_check: float = None
    shap_check: float = None

    @property
    def probability(self):
        return float(self.found.probs[self.target])

    def merged(self, other):
        """This explanation with ``other``'s maps added (the terminal app computes them one at a time)."""
        if other.target != self.target or other.x is not self.x:
            raise ValueError("only explanations of the same input and class can be merged")
        cam = other if other.cam is not None else self
        shap = other if other.shap is not None else self
        method = {(True, True): "both", (True, False): "gradcam", (False, True): "shap"}[
            (cam.cam is not None, shap.shap is not None)]
        return replace(self, cam=cam.cam, cam_name=cam.cam_name, cam_layer=cam.cam_layer, shap=shap.shap,
                       cam_check=cam.cam_check, shap_check=shap.shap_check,
                       settings=replace(shap.settings, cam=cam.settings.cam, signed=cam.settings.signed,
                                        method=method),
                       notes=tuple(dict.fromkeys(self.notes + other.notes)))


class Classifier:
    """A trained VGG8 as it is deployed (see the module docstring).

    Parameters
    ----------
    network : VGG8
    preprocessing : dict, optional, the settings of :mod:`minivgg.imaging.preprocess`
        (default: the paper's pipeline at the network's input size)
    calibration : dict, optional, the temperature-scaling record (None: T = 1)
    ood : MahalanobisDetector, optional
    card : dict, optional, the model card
    extra : dict, optional, free-form JSON metadata of the model file
    source : str, optional, the file it was loaded from (for messages)
    """

    def __init__(self, network, preprocessing=None, calibration=None, ood=None, card=None, extra=None,
                 source=None):
        self.network = network
        self.preprocessing = preprocessing or preprocessing_settings(network.image_size)
        self.calibration = calibration
        self.ood = ood
        self.card = card
        self.extra = dict(extra or {})
        self.source = source

    def __getattr__(self, name):
        # Only called for names the classifier does not have itself.
        if name in NETWORK_MEMBERS:
            return getattr(self.network, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getitem__(self, name):
        return self.network[name]

    def __repr__(self):
        return f"Classifier({self.name}, {self.network!r})"

    @property
    def name(self):
        """The model's name: its card's, else its file's stem."""
        return model_name(self)

    @property
    def temperature(self):
        """The softmax temperature T fitted by temperature scaling (1.0 for an uncalibrated model)."""
        return self.calibration["temperature"] if self.calibration else 1.0

    def freeze(self):
        """Serve: freeze the network (:meth:`minivgg.VGG8.freeze`: read-only weights, kernel transforms
        computed once). Returns the classifier."""
        self.network.freeze()
        return self

    # ------------------------------------------------------------------ reading and assessing

    def read(self, path):
        """The model input (3, S, S) for the image file at ``path``; raises :class:`~minivgg.errors.ImageError`."""
        return preprocess(load_image(path), self.preprocessing)

    def display(self, x):
        """What the model saw of input ``x`` (3, S, S), as a gray image (S, S) in [0, 1]."""
        return to_display(x, self.preprocessing)

    def softmax(self, logits):
        """The model's probabilities for logits it produced: ``softmax(logits / T)``, T = :attr:`temperature`."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature)

    def predict_proba(self, x, batch_size=32, capture=(), start=None):
        """Calibrated probabilities, (N, 3, S, S) -> (N, num_classes), in batches, inference mode.

        With ``capture`` (layer names, as :meth:`VGG8.infer`), returns ``(probabilities,
        captured)``: one pass gives the probabilities and, say, the features the
        out-of-distribution score needs. ``start``: begin at that layer (:meth:`VGG8.forward`).
        """
        if not capture:
            return self.softmax(self.network.infer(x, batch_size, start=start))
        logits, captured = self.network.infer(x, batch_size, capture, start)
        return self.softmax(logits), captured

    def assess(self, x, batch_size=32):
        """Probabilities and out-of-distribution verdicts for model inputs ``x`` (N, 3, S, S), in one pass.

        Raises :class:`~minivgg.errors.ModelFileError` naming the model when its output is not finite.
        """
        last = self.network.layer_names[-1]
        layers = (last,) + ((self.ood.layer,) if self.ood else ())
        probs, captured = self.predict_proba(x, batch_size, capture=layers)
        logits = captured[last].astype(np.float64)
        if self.ood is None:
            return Assessment(self.check_finite(probs), logits)
        scores = self.ood.score(captured[self.ood.layer])
        self.check_finite(probs, scores)
        return Assessment(probs, logits, scores, self.ood.in_distribution(scores))

    def check_finite(self, *outputs):
        """Return ``outputs[0]``, or raise :class:`ModelFileError` naming the model when any is NaN or infinite.

        A model whose weights overflow on some input gives NaN; that must never reach a
        report (nor a JSON line, where ``NaN`` is not valid).
        """
        if not all(np.isfinite(o).all() for o in outputs if o is not None):
            raise ModelFileError(f"{self.source or self.name}: output is not finite (NaN or infinity); "
                                 f"the model is unusable on these inputs")
        return outputs[0]

    # ------------------------------------------------------------------ explaining

    def target_index(self, class_name):
        """The index of the class called ``class_name``; raises :class:`~minivgg.errors.UsageError`."""
        if class_name not in self.class_names:
            raise UsageError(f"--target {class_name!r} is not one of the model's classes {self.class_names}")
        return self.class_names.index(class_name)

    def explainers(self, settings):
        """``(GradCAM, KernelSHAP)`` for ``settings`` (they hold no state of a call: shareable)."""
        background = None if settings.background is None else settings.background == "merge"
        baseline = settings.baseline if isinstance(settings.baseline, str) else float(settings.baseline)
        cam = GradCAM(self, method=settings.cam)
        shap = KernelSHAP(self, n_regions=settings.regions, segmentation=settings.segmentation,
                          merge_background=background, baseline=baseline, budget=settings.budget,
                          tolerance=settings.tolerance, output=settings.output, seed=settings.seed)
        return cam, shap

    def explain_rounds(self, x, settings=ExplainSettings(), found=None, path=None, progress=None):
        """Explain input ``x`` (3, S, S) as ``settings`` ask; yields an :class:`Explanation` as it grows.

        The class-activation map comes first (one yield), then one yield per round of
        Kernel-SHAP model calls; the last one yielded is the finished explanation. A user
        interface redraws each; ``progress(done, total)`` is called after each batch of
        model calls, and may raise to abandon the computation. ``found``: the input's
        :class:`Assessment`, when the caller has it already. The hiding checks are left to
        :meth:`checked` (:meth:`explain` and :meth:`save_explanation` call it).
        """
        found = self.assess(x[None])[0] if found is None else found
        target = int(found.probs.argmax()) if settings.target is None else self.target_index(settings.target)
        cam, shap = self.explainers(settings)
        explanation = Explanation(x, found, target, settings, path=path, notes=tuple(settings.warnings))
        if settings.wants_cam:
            result = cam(x[None], target)
            heat = result.signed[0] if settings.signed else result.normalized[0]
            explanation = replace(explanation, cam=heat, cam_name=cam.name, cam_layer=cam.layer,
                                  notes=explanation.notes + tuple(result.warnings))
            yield explanation
        if settings.wants_shap:
            for result in shap.rounds(x, target, progress=progress,
                                      first_round=max(settings.budget // 2, 1) if not settings.tolerance else None):
                yield replace(explanation, shap=result,
                              notes=explanation.notes + tuple(f"SHAP: {w}" for w in result.warnings))

    def checked(self, explanation):
        """``explanation`` with the hiding check of each of its maps (:meth:`hiding_check`) where it has none yet.

        :meth:`explain` and :meth:`save_explanation` call it: a check is a model call, made once for the
        map that is kept, not once per round of Kernel-SHAP (seven rounds of a default run).
        """
        e = explanation
        cam_missing = e.cam is not None and e.cam_check is None
        shap_missing = e.shap is not None and e.shap_check is None
        if not (cam_missing or shap_missing):
            return e
        fill = self.explainers(e.settings)[1].baseline_for(e.x)
        return replace(e, cam_check=self.hiding_check(e.x, e.cam, e.target, fill) if cam_missing else e.cam_check,
                       shap_check=(self.hiding_check(e.x, e.shap.pixel_map(), e.target, fill) if shap_missing
                                   else e.shap_check))

    def hiding_check(self, x, heat, target, fill):
        """p(target) once the hottest :data:`HIDDEN_SHARE` of the pixels by ``heat`` (S, S) take ``fill``.

        Each picture carries this check of its own map on its own image: a map that points at
        the evidence the model uses makes the probability fall ("hiding the hottest 5% moved
        p(RA) 0.98 -> 0.11"); one that points elsewhere leaves it. None for a map with nothing
        positive to hide.
        """
        if not np.max(heat) > 0:
            return None
        hottest = np.zeros(heat.size, bool)
        hottest[np.argsort(heat, axis=None)[-max(1, round(HIDDEN_SHARE * heat.size)):]] = True
        hidden = np.where(hottest.reshape(heat.shape)[None], fill, x).astype(x.dtype)
        return float(self.predict_proba(hidden[None])[0, target])

    def explain(self, x, settings=ExplainSettings(), found=None, path=None):
        """The finished :class:`Explanation` of input ``x`` (the last of :meth:`explain_rounds`)."""
        explanation = None
        for explanation in self.explain_rounds(x, settings, found, path):  # noqa: B007 (keep the last)
            pass
        return self.checked(explanation)

    # ------------------------------------------------------------------ saving

    def stamp(self, explanation):
        """What every saved picture of ``explanation`` says about itself: ``{field: text}``.

        Drawn under each picture and stored as PNG text fields, so that a file passed on
        still names the model, the class and its probability, whether the image is like
        the model's training images, and which map with which settings it shows.
        """
        e, found = explanation, explanation.found
        if found.in_distribution is None:
            verdict = "not known (the model has no out-of-distribution detector)"
        elif found.in_distribution:
            verdict = f"yes (score {float(found.ood_score):.4g} <= threshold {self.ood.threshold:.4g})"
        else:
            verdict = (f"NO (score {float(found.ood_score):.4g} > threshold {self.ood.threshold:.4g}): "
                       f"{NOT_TRAINED_ON_THIS}")
        s, name = e.settings, printable(self.class_names[e.target])     # names are data: drawn as written
        maps, checks, validated = [], [], []
        for shown, check, method, label in ((e.cam, e.cam_check, s.cam, e.cam_name), (e.shap, e.shap_check, "shap",
                                                                                      "Kernel-SHAP")):
            if shown is None:
                continue
            validated.append(explanation_line(self, method))
            if check is not None:
                checks.append(f"hiding the hottest {HIDDEN_SHARE:.0%} of the {label} map (with {s.baseline}) moved "
                              f"p({name}) {format_probability(e.probability)} -> {format_probability(check)}")
        if e.cam is not None:
            maps.append(f"{e.cam_name}{' (signed)' if s.signed else ''} at {e.cam_layer}")
        if e.shap is not None:
            maps.append(f"Kernel-SHAP of the {s.output}, {e.shap.n_regions} {s.segmentation} regions, "
                        f"baseline {s.baseline} (base value {e.shap.base_value:.3g}), {e.shap.n_evaluations} of "
                        f"{e.shap.budget} model calls, seed {s.seed}")
        return {"Software": f"minivgg {__version__}", "Model": printable(self.name),
                "Source": printable(Path(e.path).name) if e.path is not None else "",
                "Class": name, "Probability": format_probability(e.probability),
                "In distribution": verdict, "Map": "; ".join(maps), "Check": "; ".join(checks),
                "Validated": "; ".join(validated)}

    def save_explanation(self, explanation, out, stem, combined=True):
        """Write the pictures of ``explanation`` to the folder ``out`` as ``<stem>_*``, each one stamped.

        ``stem`` is distinct per input (:func:`minivgg.files.distinct_stems`). Writes
        ``<stem>_gradcam.png`` and/or ``<stem>_shap.png``, with ``combined`` the figure of
        both (``<stem>_explain.png``), and with ``settings.raw`` the maps as ``.npy``, SHAP's
        regions as JSON, and the maps on the original file's pixels (``<stem>_*_original.npy``,
        ``<stem>_original.png`` with the model's crop outlined). Returns the paths written.
        """
        e = self.checked(explanation)
        title = printable(Path(e.path).name) if e.path is not None else ""
        # With raw maps, also the maps on the file's own pixels (read again: the input kept only the crop).
        original = (load_image(e.path), self.preprocessing) if e.settings.raw and e.path is not None else None
        return save_explanation(out, stem, self.display(e.x), printable(self.class_names[e.target]), e.probability,
                                cam=e.cam, shap=e.shap, combined=combined, raw=e.settings.raw, title=title,
                                cam_name=e.cam_name or "Grad-CAM", stamp=self.stamp(e), original=original)


def as_classifier(model):
    """``model`` as a :class:`Classifier`: a VGG8 gets the paper's preprocessing and no trust records."""
    return model if isinstance(model, Classifier) else Classifier(model)

