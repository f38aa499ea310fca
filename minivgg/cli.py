"""The ``minivgg`` command."""

import argparse
import sys

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


def build_parser():
    parser = argparse.ArgumentParser(prog="minivgg", description="VGG8 hand-radiograph classifier (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"minivgg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="show the network's layers and shapes")
    p.add_argument("--model", help="a saved model file (default: the paper's VGG8, untrained)")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .modelfile import ModelFileError
    try:
        return args.func(args)
    except ModelFileError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return 66 if "no such file" in str(e) else 65
    except KeyboardInterrupt:
        print("minivgg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
