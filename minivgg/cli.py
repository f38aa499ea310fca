"""The ``minivgg`` command.

Exit codes (``os.EX_*``): 0 done; 2 a command line that cannot be carried out; 65 bad
data or a bad model (an unreadable image among others still lets the others through);
66 an input that does not exist or cannot be opened; 73 an output folder that cannot be
written; 130 interrupted. Every error is one line on stderr naming the file.
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .cluster import predict_chunk
from .predict import record_text
from .progress import Progress

BUNDLED_DIR = Path(__file__).parent / "data"
BUNDLED_MODEL = BUNDLED_DIR / "model.npz"
BUNDLED_SAMPLES = BUNDLED_DIR / "samples"


class UsageError(ValueError):
    """A command line that cannot be carried out (exit 2)."""


class NoInput(ValueError):
    """An input that does not exist or cannot be opened (exit 66)."""


# ---------------------------------------------------------------- option types


def int_at_least(low, high=None):
    """argparse type: an integer in [low, high]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value
    return parse


def finite_float(low=None, high=None, low_open=False):
    """argparse type: a finite number, optionally within bounds."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not np.isfinite(value) or (low is not None and (value < low or (low_open and value == low))) or \
                (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a finite number{_bounds(low, high, low_open)}, got {text}")
        return value
    return parse


def _bounds(low, high, low_open):
    if low is None and high is None:
        return ""
    return f" in {'(' if low_open else '['}{low}, {high if high is not None else 'inf'}]"


# ---------------------------------------------------------------- shared pieces


def _load(model_path):
    from .modelfile import load_model
    if model_path is None and not BUNDLED_MODEL.exists():
        raise NoInput(f"{BUNDLED_MODEL}: this installation has no bundled model; pass --model")
    return load_model(model_path or BUNDLED_MODEL)


def _input_files(inputs):
    """The image files named by ``inputs``: files as given, folders searched recursively.

    Raises :class:`NoInput` for an argument that does not exist or cannot be opened, and
    for a folder without image files.
    """
    from .files import input_problem
    from .imageio import is_image_path
    files = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if is_image_path(f) and not f.is_dir())
            if not found:
                raise NoInput(f"{p}: no images in this folder (looked for {', '.join(_suffixes())})")
            files += found
            continue
        problem = input_problem(p)
        if problem in ("no such file", "symbolic link loop"):
            raise NoInput(f"{p}: {'no such file or folder' if problem == 'no such file' else problem}")
        files.append(p)              # other problems are the image reader's to report, per file
    return files


def _suffixes():
    from .imageio import IMAGE_SUFFIXES
    return sorted(IMAGE_SUFFIXES)


def _target_index(model, target):
    if target is None:
        return None
    if target not in model.class_names:
        raise UsageError(f"--target {target!r} is not one of the model's classes {model.class_names}")
    return model.class_names.index(target)


# ---------------------------------------------------------------- commands


def cmd_info(args):
    """Describe a model (default: the bundled one): its card, then layers, shapes, parameter count."""
    from .modelcard import card_lines
    model = _load(args.model)
    s = model.image_size
    print(f"{args.model or BUNDLED_MODEL}")
    for label, text in card_lines(model):
        print(f"  {label + ':':21}{text}")
    print(model)
    print(f"classes: {', '.join(model.class_names)}")
    shape = (1, 3, s, s)
    print(f"{'layer':16}{'kind':24}{'output shape':>22}")
    for name, layer in model.layers:
        shape = _output_shape(layer, shape)
        print(f"{name:16}{layer!r:24}{str(shape):>22}")
    print(f"parameters: {model.num_parameters():,}")
    return 0


def _output_shape(layer, shape):
    from .layers import Conv3x3, Dense, Flatten, MaxPool2x2
    if isinstance(layer, Conv3x3):
        return (shape[0], layer.params["weight"].shape[0], *shape[2:])
    if isinstance(layer, MaxPool2x2):
        return (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    if isinstance(layer, Flatten):
        return (shape[0], int(np.prod(shape[1:])))
    if isinstance(layer, Dense):
        return (shape[0], layer.params["weight"].shape[0])
    return shape


def cmd_demo(args):
    """Predict the bundled phantom samples with the bundled model, and say what both are."""
    from .modelcard import model_name
    model = _load(None)
    extra = model.extra
    print(f"bundled model: {model_name(model)}, {model}")
    print(f"  trained on synthetic hand phantoms ({extra.get('trained_on', 'see README')})")
    if model.card:
        print(f"  intended use: {model.card['intended_use']}")
    test = extra.get("test_metrics")
    if test:
        print("  held-out phantoms: " + ", ".join(f"{k} {test[k]:.3f}" for k in
                                                ("accuracy", "sensitivity", "specificity", "precision", "auc")))
    print("  NOTE: phantoms are not patients; this model is for learning and testing, not diagnosis.\n")
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    print(f"{len(samples)} bundled samples (true class = folder name):")
    return cmd_predict(build_parser().parse_args(["predict", str(BUNDLED_SAMPLES)]))


def cmd_phantoms(args):
    """Write a folder data set of synthetic hand radiographs with lesion masks and healthy twins."""
    from .files import prepare_output_dir
    from .phantoms import write_phantoms
    out = prepare_output_dir(args.out)
    progress = Progress(quiet=args.quiet)
    paths = write_phantoms(out, args.n, seed=args.seed, size=args.size,
                           progress=lambda done, total: progress.update("phantoms", done, total),
                           difficulty=args.difficulty, global_osteopenia=args.global_osteopenia,
                           shortcut_share=args.shortcut or 0.0, shortcut_class=args.shortcut_class)
    extra = ", side-marker masks in shortcut_masks" if args.shortcut else ""
    print(f"wrote {len(paths)} phantoms to {out / 'images'} (lesion masks in masks, healthy twins of the RA "
          f"images in twins{extra}; every draw in phantoms.json)")
    return 0


def cmd_train(args):
    """Train VGG8 on a folder data set (or run k-fold cross-validation with --kfold)."""
    from .training import cross_validate, train_command
    wavelet = False if args.no_wavelet else None
    if args.kfold:
        if args.resume:
            raise UsageError("--resume continues one training run; it cannot be combined with --kfold")
        result = cross_validate(args.data, args.out, k=args.kfold, preset=args.preset or "small", epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, seed=args.seed or 0, positive=args.positive,
                                wavelet=wavelet is None, progress=Progress(quiet=args.quiet))
        for name, v in result["summary"].items():
            print(f"{name:12} {v['mean']:.3f} +- {v['sd']:.3f}")
        print(f"wrote {Path(args.out) / 'cv.json'}")
        return 0
    train_command(args.data, args.out, preset=args.preset, epochs=args.epochs, batch_size=args.batch_size,
                  lr=args.lr, seed=args.seed, val_fraction=args.val_fraction, resume=args.resume, wavelet=wavelet,
                  name=args.name, intended_use=args.intended_use, command=_command_line(args),
                  progress=Progress(quiet=args.quiet))
    print(f"wrote {Path(args.out) / 'model.npz'}, history.json, learning_curves.png")
    return 0


def _command_line(args):
    """The command line that ran, as a shell would take it back (for the model card)."""
    return shlex.join(["minivgg", *args.argv])


def cmd_calibrate(args):
    """Fit an existing model's card, out-of-distribution detector and temperature on its training folder."""
    from .modelcard import card_lines
    from .trust import calibrate_command
    model = calibrate_command(args.model or BUNDLED_MODEL, args.data, args.out, val_fraction=args.val_fraction,
                              seed=args.seed, name=args.name, intended_use=args.intended_use,
                              training_command=args.training_command, progress=Progress(quiet=args.quiet))
    for label, text in card_lines(model):
        if label in ("name", "calibration", "out of distribution", "validation metrics"):
            print(f"  {label + ':':21}{text}")
    print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args):
    """Table 2's metrics with 95% bootstrap intervals, ROC curve and confusion matrix."""
    from .datasets import FolderDataset
    from .files import prepare_output_dir, write_json
    from .calibration import calibration_report
    from .metrics import evaluate_predictions, plot_confusion, plot_reliability, plot_roc
    from .predict import assess_dataset
    model = _load(args.model)
    positive = args.positive or model.class_names[-1]
    if positive not in model.class_names:
        raise UsageError(f"--positive {positive!r} is not one of the model's classes {model.class_names}")
    out = prepare_output_dir(args.out)
    progress = Progress(quiet=args.quiet)
    dataset = FolderDataset(args.data, model.preprocessing, class_names=model.class_names,
                            progress=lambda done, total: progress.update("reading", done, total))
    for line in dataset.broken:
        progress.problem(f"minivgg: skipped: {line}")
    found = assess_dataset(model, dataset, np.arange(len(dataset)),
                           progress=lambda done, total: progress.update("predicting", done, total))
    result = evaluate_predictions(dataset.labels, found.probs, model.class_names, positive, n_boot=args.bootstrap,
                                  seed=args.seed)
    result["calibration"] = calibration_report(found.logits, dataset.labels, model.temperature)
    flagged = None if found.in_distribution is None else int((~found.in_distribution).sum())
    result["out_of_distribution"] = None if flagged is None else \
        {"flagged": flagged, "n": len(dataset), "share": flagged / len(dataset), "threshold": model.ood.threshold}
    write_json(out / "metrics.json", result)
    plot_roc(result, out / "roc.png", title=f"ROC, {Path(args.data).name}")
    plot_confusion(result, out / "confusion_matrix.png", title=f"Confusion matrix, {Path(args.data).name}")
    plot_reliability(found.logits, dataset.labels, model.temperature, out / "reliability.png",
                     title=f"Reliability, {Path(args.data).name}")
    print(f"{len(dataset)} images, positive class {positive}")
    for name in ("accuracy", "sensitivity", "specificity", "precision", "auc"):
        lo, hi = result["ci95"][name]
        print(f"{name:12} {result[name]:.3f}  (95% CI {lo:.3f}-{hi:.3f})")
    c = result["calibration"]
    if model.calibration:
        print(f"calibration  temperature {c['temperature']:.4g}: ECE (15 bins) {c['ece_before']:.4f} -> "
              f"{c['ece_after']:.4f}, Brier {c['brier_before']:.4f} -> {c['brier_after']:.4f}")
    else:
        print(f"calibration  none (raw softmax): ECE (15 bins) {c['ece_before']:.4f}, Brier {c['brier_before']:.4f}")
    if flagged is None:
        print("out of distribution: not known (the model has no detector; fit one with: minivgg calibrate)")
    else:
        print(f"out of distribution: {flagged} of {len(dataset)} images ({flagged / len(dataset):.1%})")
    print(f"wrote {out / 'metrics.json'}, roc.png, confusion_matrix.png, reliability.png")
    return 65 if dataset.broken else 0


# Kernel-SHAP's command-line defaults, shared by ``explain`` and ``predict --shap``: the explainer's
# own (explain/kernelshap.py, DEFAULT_*; a test keeps them equal), written out here so that
# building the parser does not import the explanations.
SHAP_DEFAULTS = dict(regions=24, segmentation="superpixels", background=None, baseline="mean", budget=2000,
                     tolerance=0.01, output="probability", seed=0)


def cmd_predict(args):
    """Predicted class and probabilities for each image (locally, or on a Dask cluster with --dask)."""
    from .modelcard import model_name
    files = _input_files(args.inputs)
    model = _load(args.model)
    if args.dask is not None and (args.gradcam or args.shap):
        raise UsageError("--gradcam/--shap draw heatmaps locally; on a cluster use: minivgg explain --dask")
    progress = Progress(quiet=args.quiet)
    results, todo, keys = _resume(args, files, progress)
    heatmaps = _heatmap_writer(model, args, todo)
    if args.dask is not None:
        records = _dask_records(args, todo, predict_chunk, _model_path(args), args.batch_size)
    else:
        records = _local_records(model, todo, args.batch_size, heatmaps)
    shown = []

    def show(record):
        shown.append(record["in_distribution"] is False)
        print(json.dumps(record, allow_nan=False) if args.json else record_text(record), flush=True)
    status = _report_records(records, results, keys, progress, "predict", len(todo), show)
    if shown:
        print(_ood_summary(model, model_name(model), len(shown), sum(shown)), file=sys.stderr)
    return status


def _report_records(records, results, keys, progress, label, total, show):
    """Take each record as it arrives: append it to the results file, report an error or ``show`` it.

    Returns the exit status: 65 when some image could not be read, else 0.
    """
    status = 0
    try:
        for n, record in enumerate(records, 1):
            if results is not None:
                results.append(record, keys.get(Path(record["file"])))
            if "error" in record:
                progress.problem(f"minivgg: error: {record['error']}")
                status = 65
            else:
                show(record)
            progress.update(label, n, total)
    finally:
        if results is not None:
            results.close()
    return status


def _model_path(args):
    return str(Path(args.model or BUNDLED_MODEL).resolve())


def _resume(args, files, progress):
    """The results file (or None), the files still to do, and their keys (see :mod:`minivgg.results`)."""
    if not args.results:
        return None, files, {}
    from .results import ResultsFile
    results = ResultsFile(args.results, args.key)
    todo, keys = results.pending(files)
    if len(todo) < len(files):
        progress.line(f"minivgg: {args.results}: {len(files) - len(todo)} of {len(files)} images already done; "
                      f"{len(todo)} to go")
    return results, todo, keys


def _local_records(model, files, batch_size, heatmaps):
    """The records of ``files``, predicted in this process (drawing heatmaps when asked)."""
    from .imageio import ImageError
    from .predict import error_record, predict_files, prediction_record
    for f, found, x in predict_files(model, files, batch_size):
        if isinstance(found, ImageError):
            yield error_record(f, found)
            continue
        record = prediction_record(model, f, found)
        if heatmaps:
            heatmaps(f, x, found)
        yield record


def _dask_records(args, files, task, *task_args):
    """The records of ``files``, computed on Dask as ``task(chunk, *task_args)`` per chunk of --chunk-size files."""
    from .cluster import chunked, run_chunks, start_client
    client, close = start_client(args.dask or None)
    try:
        yield from run_chunks(client, task, chunked(files, args.chunk_size), *task_args)
    finally:
        close()


def _heatmap_writer(model, args, files):
    """For ``predict --gradcam DIR / --shap DIR``: a function writing the requested maps of one image."""
    from .explain.render import save_explanation
    from .files import distinct_stems, prepare_output_dir
    from .preprocess import to_display
    folders = [(kind, prepare_output_dir(d)) for kind, d in (("gradcam", args.gradcam), ("shap", args.shap)) if d]
    if not folders:
        return None
    from .explain.report import make_explainers
    cam, shap = make_explainers(model, SHAP_DEFAULTS)
    stems = distinct_stems(files)

    def write(f, x, found):
        cls = int(found.probs.argmax())
        for kind, folder in folders:
            maps = {"cam": _gradcam_map(cam, f, x, cls)} if kind == "gradcam" else {"shap": _shap(shap, f, x, cls)}
            save_explanation(folder, stems[f], to_display(x, model.preprocessing), model.class_names[cls],
                             float(found.probs[cls]), combined=False, **maps)
    return write


def _shap(explainer, f, x, cls):
    """Kernel-SHAP of one model input, with its notes (saturation, no effect) on stderr."""
    result = explainer(x, cls)
    for warning in result.warnings:
        print(f"minivgg: note: {f}: SHAP: {warning}", file=sys.stderr)
    return result


def _ood_summary(model, name, scored, flagged):
    """The one stderr line of a prediction run about out-of-distribution images."""
    if model.ood is None:
        return (f"minivgg: note: model {name} has no out-of-distribution detector, so nothing tells whether these "
                f"images are like its training images (fit one with: minivgg calibrate)")
    if flagged:
        return (f"minivgg: {flagged} of {scored} images are out of distribution for model {name}: it was not "
                f"trained on images like them, and their predictions are not reliable")
    return f"minivgg: 0 of {scored} images are out of distribution for model {name}"


def _gradcam_map(cam, f, x, cls):
    """The normalised Grad-CAM map of one model input, with a note on stderr when it is empty."""
    result = cam(x[None], cls)
    for warning in result.warnings:
        print(f"minivgg: note: {f}: {warning}", file=sys.stderr)
    return result.normalized[0]


def cmd_explain(args):
    """Grad-CAM and/or Kernel-SHAP heatmaps for each image, as PNG files (and raw .npy maps); --dask on a cluster."""
    from .cluster import explain_chunk
    from .explain.report import explanation_text, make_explainers
    from .files import distinct_stems, prepare_output_dir
    files = _input_files(args.inputs)
    model = _load(args.model)
    target = _target_index(model, args.target)
    out = prepare_output_dir(args.out)
    progress = Progress(quiet=args.quiet)
    results, todo, keys = _resume(args, files, progress)
    stems = distinct_stems(files)                 # over every input, so names stay the same on a rerun
    options = _explain_options(args, target)
    try:
        make_explainers(model, options)         # options that cannot work fail here, before any image
    except ValueError as e:
        raise UsageError(str(e)) from None
    job = [(f, stems[f]) for f in todo]
    if args.dask is not None:
        records = _dask_records(args, job, explain_chunk, _model_path(args), str(out), options)
    else:
        records = explain_chunk(job, model, str(out), options)
    def show(record):
        for note in record["notes"]:
            progress.problem(f"minivgg: note: {record['file']}: {note}")
        print(explanation_text(record), flush=True)
    return _report_records(records, results, keys, progress, "explain", len(todo), show)


def _explain_options(args, target):
    """What the explain command does with each image, as plain values a Dask worker can receive."""
    options = {name: getattr(args, name) for name in SHAP_DEFAULTS}
    return {**options, "cam": args.cam, "method": args.method, "target": target, "raw": args.save_raw}


def cmd_tui(args):
    """The Textual app (needs a terminal)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        print("minivgg: error: the terminal app needs an interactive terminal; without one use "
              "'minivgg predict IMAGE' or 'minivgg explain IMAGE --out DIR'", file=sys.stderr)
        return 2
    from .files import input_problem
    if args.image and input_problem(args.image) in ("no such file", "symbolic link loop"):
        raise NoInput(f"{args.image}: {input_problem(args.image)}")
    from .tui.app import MiniVGGApp
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    MiniVGGApp(_load(args.model), image=args.image, out_dir=args.out, samples=samples,
               graphics=args.graphics, cam=args.cam).run()
    return 0


# ---------------------------------------------------------------- parser


def build_parser():
    parser = argparse.ArgumentParser(prog="minivgg", description="VGG8 hand-radiograph classifier (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"minivgg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    # Every command that computes takes --threads (see minivgg.threads).
    computing = argparse.ArgumentParser(add_help=False)
    computing.add_argument("--threads", type=int_at_least(1, 1024),
                           help="threads to compute with (default: every core this process may use)")
    computing.add_argument("--quiet", action="store_true",
                           help="no progress lines on stderr (they are only drawn when stderr is a terminal)")

    p = sub.add_parser("info", help="describe a model: layers, shapes, parameters")
    p.add_argument("--model", help="a model file (default: the bundled phantom model)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="predict the bundled phantom samples with the bundled model", parents=[computing])
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("predict", help="classify radiographs", parents=[computing])
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--batch-size", type=int_at_least(1, 4096), default=16)
    p.add_argument("--gradcam", metavar="DIR", help="also write a Grad-CAM PNG per image to DIR")
    p.add_argument("--shap", metavar="DIR", help="also write a Kernel-SHAP PNG per image to DIR (slower)")
    add_archive_arguments(p, chunk_size=64)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="Grad-CAM and Kernel-SHAP heatmaps as PNG files", parents=[computing])
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    p.add_argument("--method", choices=["gradcam", "shap", "both"], default="both")
    p.add_argument("--cam", choices=["gradcam", "hirescam"], default="gradcam",
                   help="the class-activation map: gradcam (the paper's, default) or hirescam (each position "
                        "weighed by its own gradient; on the bundled model it finds the lesions Grad-CAM misses)")
    p.add_argument("--out", default="explanations", help="output folder")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--target", help="class to explain (default: the predicted one)")
    d = SHAP_DEFAULTS
    p.add_argument("--regions", type=int_at_least(1, 1000), default=d["regions"],
                   help=f"SHAP regions (default {d['regions']}; superpixels and grid give exactly this many)")
    p.add_argument("--segmentation", choices=["superpixels", "grid"], default=d["segmentation"])
    p.add_argument("--background", choices=["merge", "keep"],
                   help="merge: the near-constant background is one region (default for superpixels); "
                        "keep: it is split like the rest")
    p.add_argument("--baseline", default=d["baseline"], type=_baseline,
                   help="hidden regions: mean, blur or a finite number (normalised input units)")
    p.add_argument("--budget", type=int_at_least(2, 10 ** 6), default=d["budget"],
                   help=f"most SHAP coalitions to evaluate (model calls; default {d['budget']})")
    p.add_argument("--tolerance", type=finite_float(0, 1), default=d["tolerance"],
                   help="stop once the largest SHAP standard error is at most this fraction of "
                        f"|f(x) - base| (default {d['tolerance']}; 0: spend the whole budget)")
    p.add_argument("--output", choices=["probability", "logit"], default=d["output"],
                   help="explain the class probability (default) or its log-odds (for a saturated model)")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--save-raw", action="store_true", help="also write the maps as .npy")
    add_archive_arguments(p, chunk_size=4)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("tui", help="the terminal app: open a radiograph, see probabilities and heatmaps", parents=[computing])
    p.add_argument("image", nargs="?", help="a radiograph to open at start")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--out", default="minivgg-output", help="folder where 'w' saves the heatmaps")
    p.add_argument("--graphics", choices=["auto", "halfcell"], default="auto",
                   help="auto: a terminal graphics protocol when there is one, else coloured half-blocks")
    p.add_argument("--cam", choices=["gradcam", "hirescam"], default="gradcam",
                   help="the class-activation map that 'c' computes (see explain --cam)")
    p.set_defaults(func=cmd_tui)

    from .phantoms import CLASS_NAMES, DIFFICULTIES
    p = sub.add_parser("phantoms", help="write synthetic hand radiographs (a folder data set) with lesion masks "
                                        "and healthy twins")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int_at_least(1, 10 ** 6), default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int_at_least(32, 4096), default=256, help="image side in pixels")
    p.add_argument("--difficulty", choices=list(DIFFICULTIES), default="medium",
                   help="how many joints are affected, how large and how strong the changes are "
                        "(the bundled model was trained on easy phantoms)")
    p.add_argument("--global-osteopenia", action="store_true",
                   help="RA hands also lose bone density everywhere: a confounder to teach with")
    p.add_argument("--shortcut", type=finite_float(0, 1, low_open=True), metavar="SHARE",
                   help="plant a side marker (a spurious cue) on this share of the --shortcut-class images")
    p.add_argument("--shortcut-class", choices=CLASS_NAMES, default="RA", help="the class that gets the marker")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("train", help="train VGG8 on a folder data set (ROOT/<class>/*.png)", parents=[computing])
    add_train_arguments(p)
    add_card_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("calibrate", help="fit an existing model's card, out-of-distribution detector and temperature",
                       parents=[computing],
                       description="Fit the model card's data, the out-of-distribution detector and the temperature "
                                   "of an existing model (trained before these existed, or elsewhere, e.g. PyTorch "
                                   "weights loaded with VGG8.load_state_dict and saved with save_model) on the folder "
                                   "data set it was trained on, split as its training run split it.")
    p.add_argument("--model", help="the model file (default: the bundled phantom model)")
    p.add_argument("--data", required=True, help="the folder data set the model was trained on")
    p.add_argument("--out", required=True, help="the model file to write (may be --model itself)")
    p.add_argument("--val-fraction", type=finite_float(0, 0.9, low_open=True), default=0.2,
                   help="the training run's validation split, used for the temperature and threshold (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="the training run's seed, which drew the split (default 0)")
    p.add_argument("--training-command", type=_card_text, help="how the model was trained, for the card (default: kept from its card)")
    add_card_arguments(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("evaluate", help="accuracy, sensitivity, specificity, precision, AUC with 95%% CIs",
                       parents=[computing])
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--data", required=True, help="folder data set with the model's class folders")
    p.add_argument("--out", default="evaluation", help="folder for metrics.json and the figures")
    p.add_argument("--positive", help="the positive class (default: the last class name)")
    p.add_argument("--bootstrap", type=int_at_least(1, 10 ** 6), default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)
    return parser


def add_archive_arguments(p, chunk_size):
    """Options for big runs: a resumable results file, and Dask."""
    from .results import KEYS
    p.add_argument("--results", metavar="FILE.jsonl",
                   help="append each result to this file; a rerun skips the images already in it")
    p.add_argument("--key", choices=KEYS, default="stat",
                   help="how --results recognises an image done before: stat (path, size, modification time; "
                        "default) or content (SHA-256 of the bytes)")
    p.add_argument("--dask", nargs="?", const="", metavar="ADDRESS",
                   help="run on Dask: a local cluster sized to this machine, or the scheduler at ADDRESS "
                        "(needs pip install 'minivgg[dask]')")
    p.add_argument("--chunk-size", type=int_at_least(1, 10 ** 6), default=chunk_size,
                   help=f"images per Dask task (default {chunk_size})")


def _baseline(text):
    if text in ("mean", "blur"):
        return text
    try:
        return str(finite_float()(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be mean, blur or a finite number, got {text!r}") from None


def add_train_arguments(p):
    """The training options, shared by ``minivgg train`` and ``python train.py``.

    Options that shape the weights default to None ("not given"): a fresh run then takes
    the defaults named in the help, a resumed run the checkpoint's values.
    """
    from .training import PRESETS
    p.add_argument("--data", required=True, help="folder data set: one sub-folder per class")
    p.add_argument("--out", default="runs/train", help="output folder (model.npz, checkpoint.npz, history)")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="small (default): a narrow VGG8 at 128 px for CPUs; bundled: small, trained in all eight "
                        "orientations (the bundled model's recipe); paper: the full VGG8 at 224 px")
    p.add_argument("--epochs", type=int_at_least(1, 10 ** 5))
    p.add_argument("--batch-size", type=int_at_least(1, 4096))
    p.add_argument("--lr", type=finite_float(0, 10, low_open=True), help="Adam learning rate (default: the preset's)")
    p.add_argument("--seed", type=int, help="seeds initialisation, split, shuffling, augmentation, dropout (default 0)")
    p.add_argument("--val-fraction", type=finite_float(0, 0.9),
                   help="stratified validation split (default 0.2; 0: none)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint.npz")
    p.add_argument("--no-wavelet", action="store_true", help="switch the sym8 wavelet step off")
    p.add_argument("--kfold", type=int_at_least(2, 100), help="run stratified k-fold cross-validation instead")
    p.add_argument("--positive", help="positive class for cross-validation metrics")


def add_card_arguments(p):
    """The model card's options, shared by ``train`` and ``calibrate``."""
    p.add_argument("--name", type=_card_text, help="the model's name in predictions and its card "
                                                   "(default for train: FOLDER-PRESET-seedSEED)")
    p.add_argument("--intended-use", type=_card_text, help="what the model may be used for, for its card")


def _card_text(text):
    from .modelcard import MAX_TEXT
    if not 0 < len(text) <= MAX_TEXT:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_TEXT} characters")
    return text


def main(argv=None):
    from .datasets import DatasetError
    from .files import OutputError
    from .imageio import ImageError
    from .modelfile import ModelFileError
    from .cluster import DaskMissing
    from .results import ResultsFileError
    from .training import ResumeError, TrainingError
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(args, "threads"):                 # the commands that compute
        from .compiled import announce_if_cold
        from .threads import set_threads
        set_threads(args.threads)
        announce_if_cold(training=args.command in ("train", "calibrate"))
    try:
        return args.func(args)
    except (UsageError, ResumeError, DaskMissing) as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return 2
    except NoInput as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_NOINPUT
    except ModelFileError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_NOINPUT if str(e).endswith((": no such file", ": symbolic link loop")) else os.EX_DATAERR
    except (DatasetError, ImageError, TrainingError, ResultsFileError) as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_DATAERR
    except OutputError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_CANTCREAT
    except KeyboardInterrupt:
        print("\nminivgg: interrupted (a training run can continue with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``minivgg predict DIR | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
