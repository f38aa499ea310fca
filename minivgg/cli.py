"""The ``minivgg`` command."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import __version__


def cmd_info(args):
    """Describe the paper's VGG8 (or a saved model): layers, shapes, parameter count."""
    from .model import VGG8
    from .modelfile import load_model
    model = load_model(args.model) if args.model else VGG8()
    s = model.image_size
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
        n = 1
        for d in shape[1:]:
            n *= d
        return (shape[0], n)
    if isinstance(layer, Dense):
        return (shape[0], layer.params["weight"].shape[0])
    return shape


BUNDLED_DIR = Path(__file__).parent / "data"
BUNDLED_MODEL = BUNDLED_DIR / "model.npz"
BUNDLED_SAMPLES = BUNDLED_DIR / "samples"


def _load(model_path):
    from .modelfile import load_model
    if model_path is None and not BUNDLED_MODEL.exists():
        raise NoInput(f"{BUNDLED_MODEL}: this installation has no bundled model; pass --model")
    return load_model(model_path or BUNDLED_MODEL)


def cmd_demo(args):
    """Predict the bundled phantom samples with the bundled model, and say what both are."""
    model = _load(None)
    extra = getattr(model, "extra", {})
    print(f"bundled model: {model}")
    print(f"  trained on synthetic hand phantoms ({extra.get('trained_on', 'see README')})")
    test = extra.get("test_metrics")
    if test:
        print("  held-out phantoms: " + ", ".join(f"{k} {test[k]:.3f}" for k in
                                                ("accuracy", "sensitivity", "specificity", "precision", "auc")))
    print("  NOTE: phantoms are not patients; this model is for learning and testing, not diagnosis.\n")
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    args = build_parser().parse_args(["predict", str(BUNDLED_SAMPLES)])
    print(f"{len(samples)} bundled samples (true class = folder name):")
    return cmd_predict(args)


def cmd_phantoms(args):
    """Write a folder data set of synthetic hand radiographs with lesion masks."""
    from .phantoms import write_phantoms
    progress = _counter("phantoms")
    paths = write_phantoms(args.out, args.n, seed=args.seed, size=args.size, progress=progress)
    print(f"wrote {len(paths)} phantoms to {Path(args.out) / 'images'} (masks in {Path(args.out) / 'masks'})")
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
    if args.kfold:
        result = cross_validate(args.data, args.out, k=args.kfold, preset=args.preset, epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, seed=args.seed, positive=args.positive,
                                wavelet=not args.no_wavelet)
        for name, v in result["summary"].items():
            print(f"{name:12} {v['mean']:.3f} +- {v['sd']:.3f}")
        print(f"wrote {Path(args.out) / 'cv.json'}")
        return 0
    train_command(args.data, args.out, preset=args.preset, epochs=args.epochs, batch_size=args.batch_size,
                  lr=args.lr, seed=args.seed, val_fraction=args.val_fraction, resume=args.resume,
                  wavelet=not args.no_wavelet)
    print(f"wrote {Path(args.out) / 'model.npz'}, history.json, learning_curves.png")
    return 0


def cmd_evaluate(args):
    """Table 2's metrics with 95% bootstrap intervals, ROC curve and confusion matrix."""
    from .datasets import FolderDataset
    from .metrics import evaluate_predictions, plot_confusion, plot_roc, write_json
    from .training import predict_dataset
    model = _load(args.model)
    dataset = FolderDataset(args.data, model.preprocessing, class_names=model.class_names)
    for line in dataset.broken:
        print(f"skipped: {line}", file=sys.stderr)
    positive = args.positive or model.class_names[-1]
    if positive not in model.class_names:
        raise UsageError(f"--positive {positive!r} is not one of the model's classes {model.class_names}")
    probs = predict_dataset(model, dataset, np.arange(len(dataset)))
    result = evaluate_predictions(dataset.labels, probs, model.class_names, positive, n_boot=args.bootstrap,
                                  seed=args.seed)
    out = Path(args.out)
    write_json(out / "metrics.json", result)
    plot_roc(result, out / "roc.png", title=f"ROC, {Path(args.data).name}")
    plot_confusion(result, out / "confusion_matrix.png", title=f"Confusion matrix, {Path(args.data).name}")
    print(f"{len(dataset)} images, positive class {positive}")
    for name in ("accuracy", "sensitivity", "specificity", "precision", "auc"):
        lo, hi = result["ci95"][name]
        print(f"{name:12} {result[name]:.3f}  (95% CI {lo:.3f}-{hi:.3f})")
    print(f"wrote {out / 'metrics.json'}, roc.png, confusion_matrix.png")
    return 0


def _expand_inputs(inputs):
    """Files as given; folders searched recursively for image files."""
    from .imageio import is_image_path
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and is_image_path(f))
        else:
            yield p


def _heatmap_writer(model, args):
    """For ``predict --gradcam DIR / --shap DIR``: a function writing the requested maps of one file."""
    if not (args.gradcam or args.shap):
        return None
    from explain import GradCAM, KernelSHAP
    from explain.render import gray_for_display
    cam, shap = GradCAM(model), KernelSHAP(model)

    def write(f, x, cls):
        gray = gray_for_display(x, model.preprocessing)
        name = model.class_names[cls]
        if args.gradcam:
            _write_gradcam(cam, f, x, cls, name, gray, Path(args.gradcam))
        if args.shap:
            _write_shap(shap, f, x, cls, name, gray, Path(args.shap))
    return write


def cmd_predict(args):
    """Predicted class and probabilities for each image."""
    from .imageio import ImageError
    from .predict import predict_files
    missing = [p for p in args.inputs if not Path(p).exists()]
    if missing:
        raise NoInput(f"{missing[0]}: no such file or folder")
    model = _load(args.model)
    files = list(_expand_inputs(args.inputs))
    heatmaps = _heatmap_writer(model, args)
    status = 0
    for n, (f, result, x) in enumerate(predict_files(model, files, args.batch_size), 1):
        if isinstance(result, ImageError):
            print(f"minivgg: error: {result}", file=sys.stderr)
            status = 65
            continue
        label = model.class_names[int(result.argmax())]
        if args.json:
            print(json.dumps({"file": str(f), "label": label,
                              "probabilities": {c: round(float(v), 6) for c, v in zip(model.class_names, result)}}))
        else:
            shown = "  ".join(f"{c} {v:.3f}" for c, v in zip(model.class_names, result))
            print(f"{f}: {label}  ({shown})")
        if heatmaps:
            heatmaps(f, x, int(result.argmax()))
        if len(files) > args.batch_size and sys.stderr.isatty():
            sys.stderr.write(f"\r{n}/{len(files)}" + ("\n" if n == len(files) else ""))
    sys.stdout.flush()
    return status


def _write_gradcam(cam, f, x, cls, name, gray, out):
    """Grad-CAM of image file ``f`` (model input ``x``) for class ``cls`` -> ``out/<stem>_gradcam.png``."""
    from explain.render import save_gradcam
    result = cam(x[None], cls)
    for warning in result.warnings:
        print(f"minivgg: note: {f}: {warning}", file=sys.stderr)
    save_gradcam(out / f"{f.stem}_gradcam.png", gray, result.normalized[0], title=f"Grad-CAM for {name}")
    return result.normalized[0]


def _write_shap(shap, f, x, cls, name, gray, out):
    """Kernel-SHAP of image file ``f`` for class ``cls`` -> ``out/<stem>_shap.png``."""
    from explain.render import save_shap
    result = shap(x, cls)
    save_shap(out / f"{f.stem}_shap.png", gray, result.pixel_map(), name,
              title=f"SHAP for {name}, {result.n_regions} regions")
    return result.pixel_map()


def cmd_explain(args):
    """Grad-CAM and/or Kernel-SHAP heatmaps for each image, as PNG files (and raw .npy maps)."""
    from explain import GradCAM, KernelSHAP
    from explain.render import gray_for_display, save_combined

    from .atomic import atomic_write
    from .imageio import ImageError
    from .predict import load_for_model
    missing = [p for p in args.inputs if not Path(p).exists()]
    if missing:
        raise NoInput(f"{missing[0]}: no such file or folder")
    model = _load(args.model)
    target = None
    if args.target is not None:
        if args.target not in model.class_names:
            raise UsageError(f"--target {args.target!r} is not one of the model's classes {model.class_names}")
        target = model.class_names.index(args.target)
    out = Path(args.out)
    try:
        baseline = args.baseline if args.baseline in ("mean", "blur") else float(args.baseline)
    except ValueError:
        raise UsageError(f"--baseline must be mean, blur or a number, got {args.baseline!r}") from None
    cam = GradCAM(model)
    shap = KernelSHAP(model, n_regions=args.regions, segmentation=args.segmentation, baseline=baseline,
                      budget=args.budget, seed=args.seed)
    status = 0
    for f in _expand_inputs(args.inputs):
        try:
            x = load_for_model(f, model)
        except ImageError as e:
            print(f"minivgg: error: {e}", file=sys.stderr)
            status = 65
            continue
        gray = gray_for_display(x, model.preprocessing)
        probs = model.predict_proba(x[None])[0]
        cls = int(probs.argmax()) if target is None else target
        name = model.class_names[cls]
        written = []
        cam_map = shap_map = None
        if args.method in ("gradcam", "both"):
            cam_map = _write_gradcam(cam, f, x, cls, name, gray, out)
            written.append(out / f"{f.stem}_gradcam.png")
        if args.method in ("shap", "both"):
            shap_map = _write_shap(shap, f, x, cls, name, gray, out)
            written.append(out / f"{f.stem}_shap.png")
        save_combined(out / f"{f.stem}_explain.png", gray, cam_map, shap_map, name, float(probs[cls]), title=f.name)
        written.append(out / f"{f.stem}_explain.png")
        if args.save_raw:
            for kind, m in (("gradcam", cam_map), ("shap", shap_map)):
                if m is not None:
                    with atomic_write(out / f"{f.stem}_{kind}.npy") as fh:
                        np.save(fh, m.astype(np.float32))
                    written.append(out / f"{f.stem}_{kind}.npy")
        print(f"{f}: {name} (p = {probs[cls]:.3f}) -> " + ", ".join(str(w) for w in written))
        sys.stdout.flush()
    return status


def cmd_tui(args):
    """The Textual app (needs a terminal)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        print("minivgg: error: the terminal app needs an interactive terminal; without one use "
              "'minivgg predict IMAGE' or 'minivgg explain IMAGE --out DIR'", file=sys.stderr)
        return 2
    if args.image and not Path(args.image).exists():
        raise NoInput(f"{args.image}: no such file")
    from tui.app import MiniVGGApp
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    MiniVGGApp(_load(args.model), image=args.image, out_dir=args.out, samples=samples,
               graphics=args.graphics).run()
    return 0


class UsageError(ValueError):
    """A command line that cannot be carried out (exit 2)."""


class NoInput(ValueError):
    """An input that does not exist (exit 66)."""


def build_parser():
    parser = argparse.ArgumentParser(prog="minivgg", description="VGG8 hand-radiograph classifier (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"minivgg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="show the network's layers and shapes")
    p.add_argument("--model", help="a saved model file (default: the paper's VGG8, untrained)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="predict the bundled phantom samples with the bundled model")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("predict", help="classify radiographs")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--gradcam", metavar="DIR", help="also write a Grad-CAM PNG per image to DIR")
    p.add_argument("--shap", metavar="DIR", help="also write a Kernel-SHAP PNG per image to DIR (slower)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="Grad-CAM and Kernel-SHAP heatmaps as PNG files")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    p.add_argument("--method", choices=["gradcam", "shap", "both"], default="both")
    p.add_argument("--out", default="explanations", help="output folder")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--target", help="class to explain (default: the predicted one)")
    p.add_argument("--regions", type=int, default=50, help="SHAP regions aimed at")
    p.add_argument("--segmentation", choices=["superpixels", "grid"], default="superpixels")
    p.add_argument("--baseline", default="mean", help="hidden regions: mean, blur or a number")
    p.add_argument("--budget", type=int, default=1000, help="SHAP coalitions (model calls)")
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

    p = sub.add_parser("phantoms", help="write synthetic hand radiographs (a folder data set) with lesion masks")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="image side in pixels")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("train", help="train VGG8 on a folder data set (ROOT/<class>/*.png)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, sensitivity, specificity, precision, AUC with 95%% CIs")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--data", required=True, help="folder data set with the model's class folders")
    p.add_argument("--out", default="evaluation", help="folder for metrics.json and the figures")
    p.add_argument("--positive", help="the positive class (default: the last class name)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)
    return parser


def add_train_arguments(p):
    """The training options, shared by ``minivgg train`` and ``python train.py``."""
    from .training import PRESETS
    p.add_argument("--data", required=True, help="folder data set: one sub-folder per class")
    p.add_argument("--out", default="runs/train", help="output folder (model.npz, checkpoint.npz, history)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small",
                   help="small: a narrow VGG8 at 128 px for CPUs; paper: the full VGG8 at 224 px")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2, help="stratified validation split (0: none)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--no-wavelet", action="store_true", help="switch the sym8 wavelet step off")
    p.add_argument("--kfold", type=int, help="run stratified k-fold cross-validation instead")
    p.add_argument("--positive", help="positive class for cross-validation metrics")


def main(argv=None):
    from .datasets import DatasetError
    from .imageio import ImageError
    from .modelfile import ModelFileError
    from .training import TrainingError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return 2
    except NoInput as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return 66
    except ModelFileError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return 66 if "no such file" in str(e) else 65
    except (DatasetError, ImageError, TrainingError) as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return 65
    except KeyboardInterrupt:
        print("\nminivgg: interrupted (a training run can continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
