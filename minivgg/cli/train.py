"""``minivgg train`` (and ``python train.py``): train VGG8 on a folder data set, or cross-validate."""

import shlex
from pathlib import Path

from minivgg.errors import UsageError
from minivgg.progress import Progress
from minivgg.training.train import cross_validate, train_command


def run(args):
    """Train VGG8 on a folder data set (or run k-fold cross-validation with --kfold)."""
    wavelet = False if args.no_wavelet else None
    if args.kfold:
        if args.resume or args.init:
            raise UsageError("--kfold trains every fold from scratch; it cannot be combined with --resume or --init")
        result = cross_validate(args.data, args.out, k=args.kfold, preset=args.preset or "small", epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, seed=args.seed or 0, positive=args.positive,
                                wavelet=wavelet is None, progress=Progress(quiet=args.quiet))
        for name, v in result["summary"].items():
            print(f"{name:12} {v['mean']:.3f} +- {v['sd']:.3f}")
        print(f"wrote {Path(args.out) / 'cv.json'}")
        return 0
    train_command(args.data, args.out, preset=args.preset, epochs=args.epochs, batch_size=args.batch_size,
                  lr=args.lr, seed=args.seed, val_fraction=args.val_fraction, resume=args.resume, wavelet=wavelet,
                  name=args.name, intended_use=args.intended_use, command=shlex.join(["minivgg", *args.argv]),
                  progress=Progress(quiet=args.quiet), init=args.init)
    print(f"wrote {Path(args.out) / 'model.npz'}, history.json, learning_curves.png")
    return 0
