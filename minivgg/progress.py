"""Progress reports on stderr: a line redrawn in place, with an ETA, when stderr is a terminal.

When stderr is piped or redirected (a log file, a CI run, ``2>&1 | tee``) the redrawn
line would only fill the log with carriage returns, so :meth:`Progress.update` writes
nothing there; :meth:`Progress.line` (a finished epoch) always writes. ``quiet=True`` (the
commands' ``--quiet``) silences both. :meth:`Progress.problem` (an unreadable file) is
never silenced.

Results go to stdout, often the same terminal: :meth:`Progress.clear` erases the line
being drawn before anything else is printed (the commands call it before each result),
so a result never shares a screen line with the progress text; the next
:meth:`~Progress.update` draws the line again under it. A redirected stdout gets the
results alone, as it always did.
"""

import sys
import time

CLEAR_LINE = "\r\033[K"        # back to the line's start, erase to its end


class Progress:
    """Report work as it happens.

    Parameters
    ----------
    stream : file, default ``sys.stderr`` (looked up when created, so tests can capture it)
    quiet : bool, write nothing at all
    """

    def __init__(self, stream=None, quiet=False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self._label, self._started = None, 0.0
        self._drawn = False        # a progress line is on screen, unfinished

    def update(self, label, done, total, detail=""):
        """Redraw ``label [#####     ] done/total detail ETA 12s``.

        The ETA counts from the first update of ``label``.
        """
        if not self.live or total <= 0:
            return
        now = time.perf_counter()
        if label != self._label:
            self._label, self._started = label, now
        eta = (now - self._started) / done * (total - done) if done else float("nan")
        bar = "#" * int(24 * done / total)
        shown = f"ETA {eta:4.0f}s" if done < total else "done    "
        self.stream.write(f"\r{label} [{bar:<24}] {done}/{total} {detail} {shown} ")
        self._drawn = True
        if done >= total:
            self.stream.write("\n")
            self._label, self._drawn = None, False
        self.stream.flush()

    def clear(self):
        """Erase the progress line being drawn, so that what is printed next (on stdout too) starts a clean line."""
        if self._drawn:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._drawn = False

    def line(self, text):
        """Write one line (clearing a progress line being drawn), unless quiet."""
        if not self.quiet:
            self.problem(text)

    def problem(self, text):
        """Write one line about something that went wrong, even when quiet."""
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()
