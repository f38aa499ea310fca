"""One image file from start to finish: read it, assess it, explain it, save the stamped pictures, say so.

The single path from a file to its figures. ``minivgg explain`` runs :func:`explain_files`
in its own process and, with ``--dask``, on the workers of a cluster
(:mod:`minivgg.app.cluster`); ``minivgg predict --gradcam/--shap`` calls :func:`explain_file`
with the prediction it has already made. The terminal app uses the same operations of
:class:`~minivgg.deploy.Classifier` (``explain_rounds``, ``save_explanation``).
"""

from minivgg.app.predict import error_record
from minivgg.errors import ImageError
from minivgg.text import format_probability, printable


def explain_file(model, path, stem, out, settings, x=None, found=None, combined=True):
    """Explain the image at ``path`` as ``settings`` ask and write its pictures to ``out`` as ``<stem>_*``.

    Parameters
    ----------
    model : Classifier
    path : the image file
    stem : distinct output-name stem (:func:`minivgg.files.distinct_stems`)
    out : an existing, writable folder
    settings : ExplainSettings
    x, found : the model input and its assessment, when the caller has them already
    combined : also write the combined figure ``<stem>_explain.png``

    Returns
    -------
    dict: ``file``, ``label`` (the explained class), ``probability``, ``in_distribution``
    (or None), ``written`` (paths), ``notes`` (e.g. an empty map), and ``cam``/``shap``
    (what was computed). Raises :class:`~minivgg.errors.ImageError` for an unreadable image.
    """
    x = model.read(path) if x is None else x
    explanation = model.explain(x, settings, found=found, path=path)
    written = model.save_explanation(explanation, out, stem, combined=combined)
    found = explanation.found
    record = {"file": str(path), "label": model.class_names[explanation.target],
              "probability": explanation.probability,
              "in_distribution": None if found.in_distribution is None else bool(found.in_distribution),
              "written": [str(w) for w in written], "notes": list(explanation.notes)}
    if explanation.cam is not None:
        record["cam"] = {"method": explanation.cam_name, "layer": explanation.cam_layer}
    shap = explanation.shap
    if shap is not None:
        record["shap"] = {"regions": shap.n_regions, "model_calls": shap.n_evaluations, "exact": shap.exact,
                          "largest_stderr": float(shap.max_stderr)}
    return record


def explain_files(model, job, out, settings):
    """Records of explaining ``job``, a list of ``(file, output stem)``; unreadable images give error records.

    A generator, so that the local path prints each record as it is made.
    """
    for path, stem in job:
        try:
            yield explain_file(model, path, stem, out, settings)
        except ImageError as e:
            yield error_record(path, e)



def explanation_text(record):
    """The line ``minivgg explain`` prints for a record of :func:`explain_file`."""
    shap = record.get("shap")
    detail = "" if shap is None else (f"; SHAP: {shap['regions']} regions, {shap['model_calls']} model calls, "
                                      + ("exact" if shap["exact"] else f"largest stderr {shap['largest_stderr']:.2g}"))
    return (f"{printable(record['file'])}: {printable(record['label'])} "
            f"(p = {format_probability(record['probability'])}{detail})"
            + ("  (out of distribution)" if record["in_distribution"] is False else "")
            + " -> " + ", ".join(map(printable, record["written"])))
