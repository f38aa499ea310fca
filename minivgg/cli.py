"""The ``minivgg`` command.

Exit codes (``os.EX_*``): 0 done; 2 a command line that cannot be carried out; 65 bad
data or a bad model (an unreadable image among others still lets the others through);
66 an input that does not exist or cannot be opened; 73 an output folder that cannot be
written; 130 interrupted. Every error is one line on stderr naming the file.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import __version__

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
    """Describe a model (default: the bundled one): layers, shapes, parameter count."""
    model = _load(args.model)
    s = model.image_size
    print(f"{args.model or BUNDLED_MODEL}")
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
    model = _load(None)
    extra = model.extra
    print(f"bundled model: {model}")
    print(f"  trained on synthetic hand phantoms ({extra.get('trained_on', 'see README')})")
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
    paths = write_phantoms(out, args.n, seed=args.seed, progress=_counter("phantoms"), size=args.size,
                           difficulty=args.difficulty, global_osteopenia=args.global_osteopenia,
                           shortcut_share=args.shortcut or 0.0, shortcut_class=args.shortcut_class)
    extra = ", side-marker masks in shortcut_masks" if args.shortcut else ""
    print(f"wrote {len(paths)} phantoms to {out / 'images'} (lesion masks in masks, healthy twins of the RA "
          f"images in twins{extra}; every draw in phantoms.json)")
    return 0


def _counter(what):
    tty = sys.stderr.isatty()

    def report(done, total):
        if tty or done == total:
            sys.stderr.write(f"\r{what}: {done}/{total}" + ("\n" if done == total else ""))
            sys.stderr.flush()
    return report


def cmd_train(args):
    """Train VGG8 on a folder data set (or run k-fold cross-validation with --kfold)."""
    from .training import cross_validate, train_command
    wavelet = False if args.no_wavelet else None
    if args.kfold:
        if args.resume:
            raise UsageError("--resume continues one training run; it cannot be combined with --kfold")
        result = cross_validate(args.data, args.out, k=args.kfold, preset=args.preset or "small", epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, seed=args.seed or 0, positive=args.positive,
                                wavelet=wavelet is None)
        for name, v in result["summary"].items():
            print(f"{name:12} {v['mean']:.3f} +- {v['sd']:.3f}")
        print(f"wrote {Path(args.out) / 'cv.json'}")
        return 0
    train_command(args.data, args.out, preset=args.preset, epochs=args.epochs, batch_size=args.batch_size,
                  lr=args.lr, seed=args.seed, val_fraction=args.val_fraction, resume=args.resume, wavelet=wavelet)
    print(f"wrote {Path(args.out) / 'model.npz'}, history.json, learning_curves.png")
    return 0


def cmd_evaluate(args):
    """Table 2's metrics with 95% bootstrap intervals, ROC curve and confusion matrix."""
    from .datasets import FolderDataset
    from .files import prepare_output_dir, write_json
    from .metrics import evaluate_predictions, plot_confusion, plot_roc
    from .predict import check_finite_output
    from .training import predict_dataset
    model = _load(args.model)
    positive = args.positive or model.class_names[-1]
    if positive not in model.class_names:
        raise UsageError(f"--positive {positive!r} is not one of the model's classes {model.class_names}")
    out = prepare_output_dir(args.out)
    dataset = FolderDataset(args.data, model.preprocessing, class_names=model.class_names)
    for line in dataset.broken:
        print(f"minivgg: skipped: {line}", file=sys.stderr)
    probs = check_finite_output(model, predict_dataset(model, dataset, np.arange(len(dataset))))
    result = evaluate_predictions(dataset.labels, probs, model.class_names, positive, n_boot=args.bootstrap,
                                  seed=args.seed)
    write_json(out / "metrics.json", result)
    plot_roc(result, out / "roc.png", title=f"ROC, {Path(args.data).name}")
    plot_confusion(result, out / "confusion_matrix.png", title=f"Confusion matrix, {Path(args.data).name}")
    print(f"{len(dataset)} images, positive class {positive}")
    for name in ("accuracy", "sensitivity", "specificity", "precision", "auc"):
        lo, hi = result["ci95"][name]
        print(f"{name:12} {result[name]:.3f}  (95% CI {lo:.3f}-{hi:.3f})")
    print(f"wrote {out / 'metrics.json'}, roc.png, confusion_matrix.png")
    return 65 if dataset.broken else 0


def _explainers(model, args):
    from .explain import GradCAM, KernelSHAP
    baseline = args.baseline if args.baseline in ("mean", "blur") else float(args.baseline)
    return GradCAM(model), KernelSHAP(model, n_regions=args.regions, segmentation=args.segmentation,
                                      baseline=baseline, budget=args.budget, seed=args.seed)


def cmd_predict(args):
    """Predicted class and probabilities for each image."""
    from .explain.render import save_explanation
    from .files import distinct_stems, prepare_output_dir
    from .imageio import ImageError
    from .predict import predict_files
    from .preprocess import to_display
    files = _input_files(args.inputs)
    model = _load(args.model)
    heatmap_dirs = [(kind, prepare_output_dir(d)) for kind, d in (("gradcam", args.gradcam), ("shap", args.shap)) if d]
    if heatmap_dirs:
        cam, shap = _explainers(model, argparse.Namespace(baseline="mean", regions=50, segmentation="superpixels",
                                                          budget=1000, seed=0))
        stems = distinct_stems(files)
    status = 0
    for n, (f, result, x) in enumerate(predict_files(model, files, args.batch_size), 1):
        if isinstance(result, ImageError):
            print(f"minivgg: error: {result}", file=sys.stderr)
            status = 65
            continue
        cls = int(result.argmax())
        label = model.class_names[cls]
        if args.json:
            print(json.dumps({"file": str(f), "label": label,
                              "probabilities": {c: round(float(v), 6) for c, v in zip(model.class_names, result)}}))
        else:
            shown = "  ".join(f"{c} {v:.3f}" for c, v in zip(model.class_names, result))
            print(f"{f}: {label}  ({shown})")
        for kind, folder in heatmap_dirs:
            maps = {"cam": _gradcam_map(cam, f, x, cls)} if kind == "gradcam" else {"shap_map": shap(x, cls).pixel_map()}
            save_explanation(folder, stems[f], to_display(x, model.preprocessing), label, float(result[cls]),
                             combined=False, **maps)
        if len(files) > args.batch_size and sys.stderr.isatty():
            sys.stderr.write(f"\r{n}/{len(files)}" + ("\n" if n == len(files) else ""))
    sys.stdout.flush()
    return status


def _gradcam_map(cam, f, x, cls):
    """The normalised Grad-CAM map of one model input, with a note on stderr when it is empty."""
    result = cam(x[None], cls)
    for warning in result.warnings:
        print(f"minivgg: note: {f}: {warning}", file=sys.stderr)
    return result.normalized[0]


def cmd_explain(args):
    """Grad-CAM and/or Kernel-SHAP heatmaps for each image, as PNG files (and raw .npy maps)."""
    from .explain.render import save_explanation
    from .files import distinct_stems, prepare_output_dir
    from .imageio import ImageError
    from .predict import check_finite_output, load_for_model
    from .preprocess import to_display
    files = _input_files(args.inputs)
    model = _load(args.model)
    target = _target_index(model, args.target)
    out = prepare_output_dir(args.out)
    cam, shap = _explainers(model, args)
    stems = distinct_stems(files)
    status = 0
    for f in files:
        try:
            x = load_for_model(f, model)
        except ImageError as e:
            print(f"minivgg: error: {e}", file=sys.stderr)
            status = 65
            continue
        probs = check_finite_output(model, model.predict_proba(x[None]))[0]
        cls = int(probs.argmax()) if target is None else target
        name = model.class_names[cls]
        cam_map = _gradcam_map(cam, f, x, cls) if args.method in ("gradcam", "both") else None
        shap_map = shap(x, cls).pixel_map() if args.method in ("shap", "both") else None
        written = save_explanation(out, stems[f], to_display(x, model.preprocessing), name, float(probs[cls]),
                                   cam=cam_map, shap_map=shap_map, raw=args.save_raw, title=f.name)
        print(f"{f}: {name} (p = {probs[cls]:.3f}) -> " + ", ".join(str(w) for w in written))
        sys.stdout.flush()
    return status


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
               graphics=args.graphics).run()
    return 0


# ---------------------------------------------------------------- parser


def build_parser():
    parser = argparse.ArgumentParser(prog="minivgg", description="VGG8 hand-radiograph classifier (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"minivgg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a model: layers, shapes, parameters")
    p.add_argument("--model", help="a model file (default: the bundled phantom model)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="predict the bundled phantom samples with the bundled model")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("predict", help="classify radiographs")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--batch-size", type=int_at_least(1, 4096), default=16)
    p.add_argument("--gradcam", metavar="DIR", help="also write a Grad-CAM PNG per image to DIR")
    p.add_argument("--shap", metavar="DIR", help="also write a Kernel-SHAP PNG per image to DIR (slower)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="Grad-CAM and Kernel-SHAP heatmaps as PNG files")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    p.add_argument("--method", choices=["gradcam", "shap", "both"], default="both")
    p.add_argument("--out", default="explanations", help="output folder")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--target", help="class to explain (default: the predicted one)")
    p.add_argument("--regions", type=int_at_least(1, 1000), default=50, help="SHAP regions aimed at")
    p.add_argument("--segmentation", choices=["superpixels", "grid"], default="superpixels")
    p.add_argument("--baseline", default="mean", type=_baseline,
                   help="hidden regions: mean, blur or a finite number (normalised input units)")
    p.add_argument("--budget", type=int_at_least(2, 10 ** 6), default=1000, help="SHAP coalitions (model calls)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-raw", action="store_true", help="also write the maps as .npy")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("tui", help="the terminal app: open a radiograph, see probabilities and heatmaps")
    p.add_argument("image", nargs="?", help="a radiograph to open at start")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--out", default="minivgg-output", help="folder where 'w' saves the heatmaps")
    p.add_argument("--graphics", choices=["auto", "halfcell"], default="auto",
                   help="auto: a terminal graphics protocol when there is one, else coloured half-blocks")
    p.set_defaults(func=cmd_tui)

    from .phantoms import CLASS_NAMES, DIFFICULTIES
    p = sub.add_parser("phantoms", help="write synthetic hand radiographs (a folder data set) with lesion masks "
                                        "and healthy twins")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int_at_least(1, 10 ** 6), default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int_at_least(32, 4096), default=256, help="image side in pixels")
    p.add_argument("--difficulty", choices=list(DIFFICULTIES), default="medium",
                   help="how many joints are affected, how large and how strong the changes are")
    p.add_argument("--global-osteopenia", action="store_true",
                   help="RA hands also lose bone density everywhere: a confounder to teach with")
    p.add_argument("--shortcut", type=finite_float(0, 1, low_open=True), metavar="SHARE",
                   help="plant a side marker (a spurious cue) on this share of the --shortcut-class images")
    p.add_argument("--shortcut-class", choices=CLASS_NAMES, default="RA", help="the class that gets the marker")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("train", help="train VGG8 on a folder data set (ROOT/<class>/*.png)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, sensitivity, specificity, precision, AUC with 95%% CIs")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--data", required=True, help="folder data set with the model's class folders")
    p.add_argument("--out", default="evaluation", help="folder for metrics.json and the figures")
    p.add_argument("--positive", help="the positive class (default: the last class name)")
    p.add_argument("--bootstrap", type=int_at_least(1, 10 ** 6), default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)
    return parser


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


def main(argv=None):
    from .datasets import DatasetError
    from .files import OutputError
    from .imageio import ImageError
    from .modelfile import ModelFileError
    from .training import ResumeError, TrainingError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ResumeError) as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return 2
    except NoInput as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_NOINPUT
    except ModelFileError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_NOINPUT if str(e).endswith((": no such file", ": symbolic link loop")) else os.EX_DATAERR
    except (DatasetError, ImageError, TrainingError) as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_DATAERR
    except OutputError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return os.EX_CANTCREAT
    except KeyboardInterrupt:
        print("\nminivgg: interrupted (a training run can continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
