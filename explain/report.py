"""Explain one image file from start to finish: the prediction, Grad-CAM and/or Kernel-SHAP, the files.

``minivgg explain`` runs :func:`explain_file` for each input in its own process, and
``minivgg explain --dask`` on the workers of a cluster (:mod:`minivgg.cluster`); both
print the records it returns with :func:`explanation_text`.
"""

from minivgg.predict import NOT_TRAINED_ON_THIS, assess, format_probability, load_for_model
from minivgg.preprocess import to_display

from .gradcam import GradCAM
from .kernelshap import KernelSHAP
from .render import save_explanation

METHODS = ("gradcam", "shap", "both")


def make_explainers(model, options):
    """``(GradCAM, KernelSHAP)`` for ``model`` from the explain options.

    ``options``: a dict with the keys of ``minivgg.cli.SHAP_DEFAULTS`` (regions, segmentation,
    background, baseline, budget, tolerance, output, seed), and optionally ``cam``
    ("gradcam" or "hirescam", :class:`GradCAM`'s ``method``). ``background`` None leaves
    the choice to :class:`KernelSHAP` (merge for superpixels, keep for a grid).
    """
    baseline = options["baseline"] if options["baseline"] in ("mean", "blur") else float(options["baseline"])
    background = options["background"]
    if background == "merge" and options["segmentation"] == "grid":
        raise ValueError("--background merge applies to superpixels; a grid's cells are plain tiles "
                         "(use --background keep)")
    cam = GradCAM(model, method=options.get("cam", "gradcam"))
    shap = KernelSHAP(model, n_regions=options["regions"], segmentation=options["segmentation"],
                      merge_background=None if background is None else background == "merge",
                      baseline=baseline, budget=options["budget"],
                      tolerance=options["tolerance"], output=options["output"], seed=options["seed"])
    return cam, shap


def explain_file(model, explainers, path, stem, out, method="both", target=None, raw=False):
    """Explain the image at ``path`` and write its files to ``out`` as ``<stem>_*``; returns the record.

    Parameters
    ----------
    model : VGG8
    explainers : (GradCAM, KernelSHAP), from :func:`make_explainers`
    path : the image file
    stem : distinct output-name stem (:func:`minivgg.files.distinct_stems`)
    out : an existing, writable folder
    method : "gradcam", "shap" or "both"
    target : class index to explain, or None for the predicted class
    raw : also write the maps as .npy

    Returns
    -------
    dict: ``file``, ``label`` (the explained class), ``probability``, ``in_distribution``
    (or None), ``written`` (paths) and ``notes`` (e.g. an empty Grad-CAM map). Raises
    :class:`minivgg.imageio.ImageError` for an unreadable image.
    """
    cam, shap = explainers
    x = load_for_model(path, model)
    found = assess(model, x[None])[0]
    cls = int(found.probs.argmax()) if target is None else target
    name = model.class_names[cls]
    notes, cam_map, shap_result = [], None, None
    if method in ("gradcam", "both"):
        result = cam(x[None], cls)
        notes += result.warnings
        cam_map = result.normalized[0]
    if method in ("shap", "both"):
        shap_result = shap(x, cls)
        notes += [f"SHAP: {w}" for w in shap_result.warnings]
    unfamiliar = found.in_distribution is not None and not found.in_distribution
    warning = f"Out of distribution: {NOT_TRAINED_ON_THIS}." if unfamiliar else None
    written = save_explanation(out, stem, to_display(x, model.preprocessing), name, float(found.probs[cls]),
                               cam=cam_map, shap=shap_result, raw=raw, title=path.name, warning=warning,
                               cam_name=cam.name)
    record = {"file": str(path), "label": name, "probability": float(found.probs[cls]),
              "in_distribution": None if found.in_distribution is None else bool(found.in_distribution),
              "written": [str(w) for w in written], "notes": notes}
    if cam_map is not None:
        record["cam"] = {"method": cam.name, "layer": cam.layer}
    if shap_result is not None:
        record["shap"] = {"regions": shap_result.n_regions, "model_calls": shap_result.n_evaluations,
                          "exact": shap_result.exact, "largest_stderr": float(shap_result.max_stderr)}
    return record


def explanation_text(record):
    """The line ``minivgg explain`` prints for a record of :func:`explain_file`."""
    shap = record.get("shap")
    detail = "" if shap is None else (f"; SHAP: {shap['regions']} regions, {shap['model_calls']} model calls, "
                                      + ("exact" if shap["exact"] else f"largest stderr {shap['largest_stderr']:.2g}"))
    return (f"{record['file']}: {record['label']} (p = {format_probability(record['probability'])}{detail})"
            + ("  (out of distribution)" if record["in_distribution"] is False else "")
            + " -> " + ", ".join(record["written"]))
