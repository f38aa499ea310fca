"""``minivgg explain``: Grad-CAM/HiResCAM and Kernel-SHAP pictures for each image, locally or on Dask."""

from minivgg.app.cluster import explain_chunk
from minivgg.app.pipeline import explain_files, explanation_text
from minivgg.cli.common import dask_records, input_files, load, model_path, report_records, resume
from minivgg.errors import UsageError
from minivgg.explain.settings import ExplainSettings
from minivgg.files import distinct_stems, prepare_output_dir
from minivgg.progress import Progress
from minivgg.text import printable

# The options that are ExplainSettings fields, by the same names.
SETTINGS_OPTIONS = ("method", "cam", "signed", "target", "regions", "segmentation", "background", "baseline", "budget",
                    "tolerance", "output", "seed")


def settings_from(args):
    """The :class:`ExplainSettings` the command line asks for; a value that cannot work is a usage error."""
    try:
        return ExplainSettings(**{name: getattr(args, name) for name in SETTINGS_OPTIONS}, raw=args.save_raw)
    except ValueError as e:
        raise UsageError(str(e)) from None


def run(args):
    """Heatmaps for each image, as PNG files (and raw .npy maps); --dask on a cluster."""
    files = input_files(args.inputs)
    model = load(args.model)
    settings = settings_from(args)
    if settings.target is not None:
        model.target_index(settings.target)            # an unknown class fails here, before any image
    out = prepare_output_dir(args.out)
    progress = Progress(quiet=args.quiet)
    stems = distinct_stems(files)                 # over every input, so names stay the same on a rerun
    results, todo, keys = resume(args, files, progress)
    job = [(f, stems[f]) for f in todo]
    if args.dask is not None:
        records = dask_records(args, job, explain_chunk, model_path(args), str(out), settings)
    else:
        records = explain_files(model, job, out, settings)

    def show(record):
        for text in record["notes"]:
            progress.problem(f"minivgg: note: {printable(record['file'])}: {printable(text)}")
        print(explanation_text(record), flush=True)
    return report_records(records, results, keys, progress, "explain", len(todo), show)
