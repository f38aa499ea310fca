"""The ``minivgg`` command: parse the command line, run the command's module, turn errors into exit codes.

Exit codes: 0 done; otherwise the ``exit_code`` of the error (:mod:`minivgg.errors`): 2 a
command line that cannot be carried out; 65 bad data or a bad model (an unreadable image
among others still lets the others through); 66 an input that does not exist; 69 no Dask
scheduler at ``--dask ADDRESS``; 73 an output that cannot be written; 74 a write that
failed (a full disk, ``> /dev/full``, standard output closed); 75 a results file in use
by another run; and 130 interrupted, 141 the output pipe closed. Every error is one line
on stderr naming the file, with the control characters of names written out
(:func:`minivgg.text.printable`).
"""

import contextlib
import gc
import importlib
import os
import sys
import warnings

from minivgg.cli.parser import build_parser
from minivgg.deploy.bundled import BUNDLED_MODEL, BUNDLED_SAMPLES
from minivgg.errors import IOFailure, MinivggError, Note, describe
from minivgg.nn.allocator import keep_freed_memory
from minivgg.nn.compiled import announce_if_cold
from minivgg.nn.threads import set_threads
from minivgg.text import printable

__all__ = ["main", "command", "build_parser", "BUNDLED_MODEL", "BUNDLED_SAMPLES"]


def command():
    """The ``minivgg`` console script (and ``python -m minivgg.cli``): :func:`main` in a process that ends with it.

    Twice it moves every object there is out of the garbage collector's sight
    (``gc.freeze()``). First, what the imports made, which lives as long as the process: the
    collections during the command no longer go through it (0.05 s of a command that
    explains one image). Then, as the process ends: Python's last act would be a full
    collection of everything NumPy, numba, SciPy and matplotlib made, 0.2 s, while the
    operating system takes the memory back anyway. minivgg does not wait on that collection:
    its files are closed by their with-blocks, its record generators (and the Dask cluster
    they hold) by :func:`minivgg.cli.common.report_records`, and exit handlers still run; only
    clean-up left to the collector, in objects caught in reference cycles, would not run. (Not
    in :func:`main`: a program that calls it goes on, and would keep its garbage frozen.)

    It also asks malloc to keep the memory that the network's calls free for the next calls
    (:func:`minivgg.nn.allocator.keep_freed_memory`: Kernel-SHAP 15-20% faster), a choice for
    the command's own process, not for every program that imports minivgg.
    """
    keep_freed_memory()
    gc.freeze()
    code = main()
    gc.freeze()
    return code


def main(argv=None):
    """Run ``minivgg ARGS`` (``argv``: the arguments, default ``sys.argv[1:]``); returns the exit code."""
    closed = _reopen_closed_streams()
    if "stdout" in closed:
        # Whatever the command printed would be lost without a word; a script must not read that as success.
        print("minivgg: error: standard output is closed; send it to a file or to /dev/null", file=sys.stderr)
        return IOFailure.exit_code
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(args, "threads"):                 # the commands that compute
        set_threads(args.threads)
        announce_if_cold(training=args.command in ("train", "calibrate"))
    try:
        with _notes_as_lines():
            code = importlib.import_module(f"minivgg.cli.{args.command_module}").run(args)
            sys.stdout.flush()                   # a full disk under ``> FILE`` shows here, not at exit
        return code
    except MinivggError as e:
        print(f"minivgg: error: {printable(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        again = ("rerun the same command to continue from its --results file" if getattr(args, "results", None)
                 else "a training run can continue with --resume" if args.command == "train" else "")
        print(f"\nminivgg: interrupted{f' ({again})' if again else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``minivgg predict DIR | head``): stop quietly, as Unix tools do.
        _discard_stdout()
        return 141
    except OSError as e:
        # Files are written through minivgg.atomic and the results file, whose errors name the file;
        # what is left is a path the system refused, or, without a name, standard output (``> /dev/full``).
        problem = (f"{printable(e.filename)}: {describe(e)}" if e.filename
                   else f"standard output: cannot write ({describe(e)})")
        print(f"minivgg: error: {problem}", file=sys.stderr)
        _discard_stdout()
        return IOFailure.exit_code


def _reopen_closed_streams():
    """Put /dev/null on each of file descriptors 0, 1, 2 that was closed (``<&-``, ``>&-``); their names.

    Otherwise the next file minivgg opens would get the lowest free number, 1 say, and
    anything printed, or any child process (a Dask worker) writing to its standard output,
    would write into that file: a results file or a picture.
    """
    closed = []
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)       # takes the lowest free number: fd (those below it are open by now)
            closed.append(name)
        if getattr(sys, name) is None:           # Python sets a stream it found closed at start to None
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))
    return closed


def _discard_stdout():
    """Point standard output at /dev/null, so that Python's flush at exit fails no more (and prints nothing)."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@contextlib.contextmanager
def _notes_as_lines():
    """Show :class:`~minivgg.errors.Note` warnings (about inputs that were still used) as ``minivgg: note: ...``."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, Note):
            print(f"minivgg: note: {printable(message)}", file=sys.stderr, flush=True)
        else:
            shown(message, category, filename, lineno, file, line)
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown
