"""``minivgg tui``: the terminal app (it needs an interactive terminal)."""

import sys

from minivgg.cli.common import load
from minivgg.deploy.bundled import BUNDLED_SAMPLES
from minivgg.errors import NoInput, UsageError
from minivgg.explain.settings import ExplainSettings
from minivgg.files import MISSING, input_problem


def run(args):
    """The Textual app (needs a terminal)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("the terminal app needs an interactive terminal; without one use "
                         "'minivgg predict IMAGE' or 'minivgg explain IMAGE --out DIR'")
    if args.image and input_problem(args.image) in MISSING:
        raise NoInput(f"{args.image}: {input_problem(args.image)}")
    from minivgg.tui.app import MiniVGGApp  # Textual loads only for this command
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    MiniVGGApp(load(args.model), image=args.image, out_dir=args.out, samples=samples, graphics=args.graphics,
               settings=ExplainSettings(cam=args.cam)).run()
    return 0
