"""``minivgg calibrate``: fit an existing model's card, out-of-distribution detector and temperature."""

from minivgg.deploy.bundled import BUNDLED_MODEL
from minivgg.progress import Progress
from minivgg.training.calibrate import calibrate_command
from minivgg.trust.modelcard import card_lines


def run(args):
    """Fit an existing model's card, out-of-distribution detector and temperature on its training folder."""
    model = calibrate_command(args.model or BUNDLED_MODEL, args.data, args.out, val_fraction=args.val_fraction,
                              seed=args.seed, name=args.name, intended_use=args.intended_use,
                              training_command=args.training_command, progress=Progress(quiet=args.quiet))
    for label, text in card_lines(model):
        if label in ("name", "calibration", "out of distribution", "validation metrics"):
            print(f"  {label + ':':21}{text}")
    print(f"wrote {args.out}")
    return 0
