"""``minivgg tui``: the terminal app (it needs an interactive terminal).

The app reads keys from stdin and Textual draws on stderr. Two redirections still leave
a terminal to work with, and are served:

* ``minivgg tui 2>log``: stdout is the terminal, so the app draws there (stderr points
  at it while the app runs, and at the log again afterwards);
* ``fd -e dcm | minivgg tui -``: the list is read from stdin, then the keys come from the
  controlling terminal (``/dev/tty``), as ``fzf`` does.

Without a terminal for the keys, or with neither stdout nor stderr on one, it says so in
one line (exit 2) and points to the commands that need none.
"""

import contextlib
import os
import sys
from pathlib import Path

from minivgg.cli.common import STDIN, input_files, load
from minivgg.deploy.bundled import BUNDLED_SAMPLES
from minivgg.errors import NoInput, UsageError
from minivgg.explain.settings import ExplainSettings
from minivgg.files import MISSING, input_problem

MIN_COLUMNS, MIN_ROWS = 20, 5     # below this nothing of the app can be read
HEADLESS = "use 'minivgg predict IMAGE' or 'minivgg explain IMAGE --out DIR'"


def run(args):
    """The Textual app (needs a terminal); several inputs, a folder or ``-`` open folder mode."""
    inputs = args.inputs
    folder_mode = len(inputs) > 1 or any(i == STDIN or Path(i).is_dir() for i in inputs)
    files = input_files(inputs) if folder_mode else []
    if STDIN in inputs:
        keys_from_terminal()
    # A closed stdin (``<&-``) is /dev/null by now (minivgg.cli.main), or None when run() is called directly.
    if sys.stdin is None or not sys.stdin.isatty():
        raise UsageError(f"the terminal app needs an interactive terminal to read keys from; without one {HEADLESS}")
    screen = drawing_fd()
    columns, rows = os.get_terminal_size(screen)
    if columns < MIN_COLUMNS or rows < MIN_ROWS:
        raise UsageError(f"the terminal is {columns}x{rows} characters; the app needs at least {MIN_COLUMNS}x"
                         f"{MIN_ROWS} (enlarge it, or use 'minivgg predict IMAGE')")
    image = None if folder_mode or not inputs else inputs[0]
    if image and input_problem(image) in MISSING:
        raise NoInput(f"{image}: {input_problem(image)}")
    from minivgg.tui.app import MiniVGGApp  # Textual loads only for this command
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    app = MiniVGGApp(load(args.model), image=image, files=files, out_dir=args.out, samples=samples,
                     graphics=args.graphics, settings=ExplainSettings(cam=args.cam))
    with drawing_on(screen):
        app.run()
    return 0


def keys_from_terminal():
    """Stdin held the list of files: read the keys from the controlling terminal instead."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        why = "the file list came on stdin, and there is no terminal to read keys from"
        raise UsageError(f"{why}; {HEADLESS}") from None
    os.dup2(fd, 0)
    os.close(fd)


def drawing_fd():
    """The file descriptor of the terminal to draw on: stderr's (Textual's own choice), else stdout's."""
    for stream in (sys.stderr, sys.stdout):
        if stream is not None and stream.isatty():
            return stream.fileno()
    raise UsageError(f"the terminal app draws on the terminal, but stdout and stderr are both redirected; {HEADLESS}")


@contextlib.contextmanager
def drawing_on(fd):
    """While the app runs, point stderr (where Textual draws) at ``fd``'s terminal; afterwards, at its file again."""
    if fd == 2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
