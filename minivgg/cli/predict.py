"""``minivgg predict``: the class and probabilities of each image, locally or on Dask; maps on request."""

import json
import sys
from dataclasses import replace

from minivgg.app.cluster import predict_chunk
from minivgg.app.pipeline import explain_file
from minivgg.app.predict import record_text
from minivgg.cli.common import dask_records, input_files, load, local_records, model_path, report_records, resume
from minivgg.errors import UsageError
from minivgg.explain.settings import ExplainSettings
from minivgg.files import distinct_stems, prepare_output_dir
from minivgg.progress import Progress
from minivgg.text import printable


def run(args):
    """Predicted class and probabilities for each image (locally, or on a Dask cluster with --dask)."""
    files = input_files(args.inputs)
    model = load(args.model)
    if args.dask is not None and (args.gradcam or args.shap):
        raise UsageError("--gradcam/--shap draw heatmaps locally; on a cluster use: minivgg explain --dask")
    progress = Progress(quiet=args.quiet)
    heatmaps = heatmap_writer(model, args, distinct_stems(files), progress)   # names over every input, as explain
    results, todo, keys = resume(args, files, progress)
    if args.dask is not None:
        records = dask_records(args, todo, predict_chunk, model_path(args), args.batch_size)
    else:
        records = local_records(model, todo, args.batch_size, heatmaps)
    shown = []

    def show(record):
        shown.append(record["in_distribution"] is False)
        print(json.dumps(record, allow_nan=False) if args.json else record_text(record), flush=True)
    status = report_records(records, results, keys, progress, "predict", len(todo), show)
    if shown:
        print(ood_summary(model, len(shown), sum(shown)), file=sys.stderr)
    return status


def heatmap_writer(model, args, stems, progress):
    """For ``--gradcam DIR`` / ``--shap DIR``: a function writing one image's maps, or None.

    Each map is made and saved by the one pipeline (:func:`minivgg.app.pipeline.explain_file`)
    with the default settings, from the prediction just made: the same picture, name and
    stamp as ``minivgg explain --method gradcam`` (or ``shap``) gives.
    """
    folders = [(method, prepare_output_dir(d)) for method, d in (("gradcam", args.gradcam), ("shap", args.shap)) if d]
    if not folders:
        return None

    def write(path, x, found):
        for method, folder in folders:
            record = explain_file(model, path, stems[path], folder, replace(ExplainSettings(), method=method),
                                  x=x, found=found, combined=False)
            for text in record["notes"]:
                progress.problem(f"minivgg: note: {printable(path)}: {printable(text)}")
    return write


def ood_summary(model, scored, flagged):
    """The one stderr line of a prediction run about out-of-distribution images."""
    name = printable(model.name)
    if model.ood is None:
        return (f"minivgg: note: model {name} has no out-of-distribution detector, so nothing tells whether these "
                f"images are like its training images (fit one with: minivgg calibrate)")
    if flagged:
        return (f"minivgg: {flagged} of {scored} images are out of distribution for model {name}: it was not "
                f"trained on images like them, and their predictions are not reliable")
    return f"minivgg: 0 of {scored} images are out of distribution for model {name}"
