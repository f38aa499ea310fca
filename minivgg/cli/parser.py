"""The ``minivgg`` command line: every command's options, and where its work is done.

Each command's work lives in a module of its own (``minivgg.cli.predict`` ...), named by
``command_module`` and imported only when that command runs, so ``minivgg --help`` loads
none of them.
"""

import argparse
import sys

import numpy as np

from minivgg.app.results import KEYS
from minivgg.explain.settings import BASELINES, CAMS, METHODS, OUTPUTS, SEGMENTATIONS, ExplainSettings
from minivgg.imaging.phantoms import CLASS_NAMES, DIFFICULTIES
from minivgg.training.train import PRESETS
from minivgg.trust.modelcard import MAX_TEXT
from minivgg.version import __version__

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


# ---------------------------------------------------------------- the parser


# Two or three typical command lines per command, shown at the end of its --help.
EXAMPLES = {
    "minivgg": ["minivgg demo                                    # the bundled model on its samples",
                "minivgg predict scans/ --json > results.jsonl   # every image under scans/",
                "minivgg tui scans/                              # browse a folder in the terminal app",
                "minivgg COMMAND --help                          # a command's options and examples"],
    "info": ["minivgg info", "minivgg info --model runs/small/model.npz"],
    "demo": ["minivgg demo", "minivgg demo --threads 2"],
    "predict": ["minivgg predict image.png folder/",
                "ls *.png | minivgg predict - --json              # file names from stdin",
                "minivgg predict /archive --results archive.jsonl --quiet > /dev/null"],
    "explain": ["minivgg explain image.png --out maps/",
                "fd -e dcm | minivgg explain - --method gradcam --out maps/",
                "minivgg explain folder/ --method shap --budget 2000 --save-raw --out maps/"],
    "tui": ["minivgg tui                                     # open images with o (file) or g (samples)",
            "minivgg tui scans/                              # folder mode: n/p walk the list",
            "fd -e dcm | minivgg tui -                       # the list from stdin"],
    "phantoms": ["minivgg phantoms --out phantoms --n 400 --seed 0",
                 "minivgg phantoms --out shortcut --shortcut 0.8 --difficulty easy"],
    "train": ["minivgg train --data phantoms/images --out runs/small --preset small",
              "minivgg train --data phantoms/images --out runs/small --resume",
              "minivgg train --data DIR --kfold 5 --positive RA --out runs/cv"],
    "calibrate": ["minivgg calibrate --model old.npz --data DIR --out new.npz"],
    "evaluate": ["minivgg evaluate --model runs/small/model.npz --data held_out/ --out evaluation/",
                 "minivgg evaluate --data held_out/ --bootstrap 5000 --seed 1"],
}


INPUTS_HELP = ("image files, folders (searched recursively, DICOM also without a suffix) or - (file names on stdin, "
               "one per line or NUL-separated); each image is taken once however it is named")


class Parser(argparse.ArgumentParser):
    """The top-level parser: ``minivgg`` alone prints the help (the commands and examples) and exits 0."""

    def parse_known_args(self, args=None, namespace=None):
        if not (sys.argv[1:] if args is None else args):
            self.print_help()
            self.exit(0)
        return super().parse_known_args(args, namespace)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, but the examples at the end are printed as written (one command per line, aligned)."""

    def _fill_text(self, text, width, indent):
        if text.startswith(EXAMPLES_TITLE):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


EXAMPLES_TITLE = "examples:"


def examples(name):
    """The epilog of ``name``'s help: its :data:`EXAMPLES`, indented."""
    return EXAMPLES_TITLE + "\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])


def add_command(sub, name, **kwargs):
    """The sub-parser of command ``name``, its help ending with its examples."""
    return sub.add_parser(name, epilog=examples(name), formatter_class=HelpFormatter, **kwargs)


def build_parser():
    parser = Parser(prog="minivgg", description="VGG8 hand-radiograph classifier (NumPy + numba).",
                    epilog=examples("minivgg"), formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"minivgg {__version__}")
    # The commands' parsers are plain ones: "minivgg predict" alone is a usage error, not a help page.
    sub = parser.add_subparsers(dest="command", required=True, parser_class=argparse.ArgumentParser)
    # Every command that computes takes --threads (see minivgg.nn.threads).
    computing = argparse.ArgumentParser(add_help=False)
    computing.add_argument("--threads", type=int_at_least(1, 1024),
                           help="threads to compute with (default: every core this process may use)")
    computing.add_argument("--quiet", action="store_true",
                           help="no progress lines on stderr (they are only drawn when stderr is a terminal)")

    p = add_command(sub, "info", help="describe a model: layers, shapes, parameters")
    p.add_argument("--model", help="a model file (default: the bundled phantom model)")
    p.set_defaults(command_module="info")

    p = add_command(sub, "demo", help="predict the bundled phantom samples with the bundled model", parents=[computing])
    p.set_defaults(command_module="demo")

    p = add_command(sub, "predict", help="classify radiographs", parents=[computing])
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR|-", help=INPUTS_HELP)
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--batch-size", type=int_at_least(1, 4096), default=16)
    p.add_argument("--gradcam", metavar="DIR", help="also write a Grad-CAM PNG per image to DIR")
    p.add_argument("--shap", metavar="DIR", help="also write a Kernel-SHAP PNG per image to DIR (slower)")
    add_archive_arguments(p, chunk_size=64)
    p.set_defaults(command_module="predict")

    p = add_command(sub, "explain", help="Grad-CAM and Kernel-SHAP heatmaps as PNG files", parents=[computing])
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR|-", help=INPUTS_HELP)
    d = ExplainSettings()                 # the defaults, from their one place
    p.add_argument("--method", choices=METHODS, default=d.method)
    p.add_argument("--cam", choices=CAMS, default=d.cam,
                   help="the class-activation map: hirescam (default: each position weighed by its own "
                        "gradient; on the bundled model it points at the lesions) or gradcam (the paper's; on the "
                        "bundled model its channel weights erase the lesions: README, Explanations)")
    p.add_argument("--signed", action="store_true",
                   help="keep the class-activation map's evidence against the class, in a second colour")
    p.add_argument("--out", default="explanations", help="output folder")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--target", help="class to explain (default: the predicted one)")
    p.add_argument("--regions", type=int_at_least(1, 1000), default=d.regions,
                   help=f"SHAP regions (default {d.regions}; superpixels and grid give exactly this many)")
    p.add_argument("--segmentation", choices=SEGMENTATIONS, default=d.segmentation)
    p.add_argument("--background", choices=["merge", "keep"],
                   help="merge: the near-constant background is one region (default for superpixels); "
                        "keep: it is split like the rest")
    p.add_argument("--baseline", default=d.baseline, type=_baseline,
                   help="what hidden regions become: air (default: the image's darkest value), mean, blur (a "
                        "class cue for many models: warned) or a finite number (normalised input units)")
    p.add_argument("--budget", type=int_at_least(2, 10 ** 6), default=d.budget,
                   help=f"most SHAP coalitions to evaluate (model calls; default {d.budget})")
    p.add_argument("--tolerance", type=finite_float(0, 1), default=d.tolerance,
                   help="stop once every SHAP value is known to within this fraction of the map's scale, all "
                        f"regions at once (95%%; default {d.tolerance}; 0: spend the whole budget)")
    p.add_argument("--output", choices=OUTPUTS, default=d.output,
                   help="explain the class probability (default) or its log-odds (for a saturated model)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--save-raw", action="store_true", help="also write the maps as .npy")
    add_archive_arguments(p, chunk_size=4)
    p.set_defaults(command_module="explain")

    p = add_command(sub, "tui", help="the terminal app: open a radiograph, see probabilities and heatmaps",
                       parents=[computing])
    p.add_argument("inputs", nargs="*", metavar="IMAGE|DIR|-",
                   help="a radiograph to open at start; a folder, several files or - (names on stdin): folder mode")
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--out", default="minivgg-output", help="folder where 'w' saves the heatmaps")
    p.add_argument("--graphics", choices=["auto", "halfcell"], default="auto",
                   help="auto: a terminal graphics protocol when there is one, else coloured half-blocks")
    p.add_argument("--cam", choices=CAMS, default=ExplainSettings().cam,
                   help="the class-activation map that 'c' computes (see explain --cam)")
    p.set_defaults(command_module="tui")

    p = add_command(sub, "phantoms", help="write synthetic hand radiographs (a folder data set) with lesion masks "
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
    p.set_defaults(command_module="phantoms")

    p = add_command(sub, "train", help="train VGG8 on a folder data set (ROOT/<class>/*.png)", parents=[computing])
    add_train_arguments(p)
    add_card_arguments(p)
    p.set_defaults(command_module="train")

    p = add_command(sub, "calibrate", help="fit an existing model's card, out-of-distribution detector and temperature",
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
    p.add_argument("--training-command", type=_card_text,
                   help="how the model was trained, for the card (default: kept from its card)")
    add_card_arguments(p)
    p.set_defaults(command_module="calibrate")

    p = add_command(sub, "evaluate", help="accuracy, sensitivity, specificity, precision, AUC with 95%% CIs",
                       parents=[computing])
    p.add_argument("--model", help="model file (default: the bundled phantom model)")
    p.add_argument("--data", required=True, help="folder data set with the model's class folders")
    p.add_argument("--out", default="evaluation", help="folder for metrics.json and the figures")
    p.add_argument("--positive", help="the positive class (default: the last class name)")
    p.add_argument("--bootstrap", type=int_at_least(1, 10 ** 6), default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(command_module="evaluate")
    return parser


def add_archive_arguments(p, chunk_size):
    """Options for big runs: a resumable results file, and Dask."""
    p.add_argument("--results", metavar="FILE.jsonl",
                   help="append each result to this file; a rerun skips the images already in it")
    p.add_argument("--key", choices=KEYS, default="stat",
                   help="how --results recognises an image done before: stat (path, size, modification time; "
                        "default) or content (SHA-256 of the bytes)")
    p.add_argument("--wait", action="store_true",
                   help="when another run is using the --results file, wait for it to end (default: stop at once)")
    p.add_argument("--dask", nargs="?", const="", metavar="ADDRESS",
                   help="run on Dask: a local cluster sized to this machine, or the scheduler at ADDRESS "
                        "(needs pip install 'minivgg[dask]')")
    p.add_argument("--chunk-size", type=int_at_least(1, 10 ** 6), default=chunk_size,
                   help=f"images per Dask task (default {chunk_size})")


def _baseline(text):
    if text in BASELINES:
        return text
    try:
        return finite_float()(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be air, mean, blur or a finite number, got {text!r}") from None


def add_train_arguments(p):
    """The training options, shared by ``minivgg train`` and ``python train.py``.

    Options that shape the weights default to None ("not given"): a fresh run then takes
    the defaults named in the help, a resumed run the checkpoint's values.
    """
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
    p.add_argument("--init", metavar="MODEL", help="start from this model file's weights (fine-tuning; the same "
                                                   "architecture as the preset) instead of random ones")
    p.add_argument("--no-wavelet", action="store_true", help="switch the sym8 wavelet step off")
    p.add_argument("--kfold", type=int_at_least(2, 100), help="run stratified k-fold cross-validation instead")
    p.add_argument("--positive", help="positive class for cross-validation metrics")


def add_card_arguments(p):
    """The model card's options, shared by ``train`` and ``calibrate``."""
    p.add_argument("--name", type=_card_text, help="the model's name in predictions and its card "
                                                   "(default for train: FOLDER-PRESET-seedSEED)")
    p.add_argument("--intended-use", type=_card_text, help="what the model may be used for, for its card")


def _card_text(text):
    if not 0 < len(text) <= MAX_TEXT:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_TEXT} characters")
    return text
