"""The ``minivgg`` command: parse the command line, run the command's module, turn errors into exit codes.

Exit codes: 0 done; otherwise the ``exit_code`` of the error (:mod:`minivgg.errors`): 2 a
command line that cannot be carried out; 65 bad data or a bad model (an unreadable image
among others still lets the others through); 66 an input that does not exist; 73 an
output that cannot be written; and 130 interrupted, 141 the output pipe closed. Every
error is one line on stderr naming the file.
"""

import importlib
import os
import sys

from minivgg.cli.parser import build_parser
from minivgg.deploy.bundled import BUNDLED_MODEL, BUNDLED_SAMPLES
from minivgg.errors import MinivggError
from minivgg.nn.compiled import announce_if_cold
from minivgg.nn.threads import set_threads

__all__ = ["main", "build_parser", "BUNDLED_MODEL", "BUNDLED_SAMPLES"]


def main(argv=None):
    """Run ``minivgg ARGS`` (``argv``: the arguments, default ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(args, "threads"):                 # the commands that compute
        set_threads(args.threads)
        announce_if_cold(training=args.command in ("train", "calibrate"))
    try:
        return importlib.import_module(f"minivgg.cli.{args.command_module}").run(args)
    except MinivggError as e:
        print(f"minivgg: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\nminivgg: interrupted (a training run can continue with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``minivgg predict DIR | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
