"""``minivgg tui``: the terminal app (it needs an interactive terminal)."""

import os
import sys

from minivgg.cli.common import load
from minivgg.deploy.bundled import BUNDLED_SAMPLES
from minivgg.errors import NoInput, UsageError
from minivgg.explain.settings import ExplainSettings
from minivgg.files import MISSING, input_problem

MIN_COLUMNS, MIN_ROWS = 20, 5     # below this nothing of the app can be read


def run(args):
    """The Textual app (needs a terminal)."""
    # A closed stdin (``<&-``) is /dev/null by now (minivgg.cli.main), or None when run() is called directly.
    if not all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stderr)):
        raise UsageError("the terminal app needs an interactive terminal; without one use "
                         "'minivgg predict IMAGE' or 'minivgg explain IMAGE --out DIR'")
    columns, rows = os.get_terminal_size(sys.stderr.fileno())      # Textual draws on stderr
    if columns < MIN_COLUMNS or rows < MIN_ROWS:
        raise UsageError(f"the terminal is {columns}x{rows} characters; the app needs at least {MIN_COLUMNS}x"
                         f"{MIN_ROWS} (enlarge it, or use 'minivgg predict IMAGE')")
    if args.image and input_problem(args.image) in MISSING:
        raise NoInput(f"{args.image}: {input_problem(args.image)}")
    from minivgg.tui.app import MiniVGGApp  # Textual loads only for this command
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    MiniVGGApp(load(args.model), image=args.image, out_dir=args.out, samples=samples, graphics=args.graphics,
               settings=ExplainSettings(cam=args.cam)).run()
    return 0
