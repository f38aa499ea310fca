"""Every error minivgg reports to a user, and the exit code each one ends a command with.

Each type carries its own ``exit_code`` (``os.EX_*`` where one fits), so the command line
maps an error to its code by type alone (:func:`minivgg.cli.main`), never by its text.
The message of each names the file or option and the problem, in one line.

=====================  ====  ===========================================================
type                   code  meaning
=====================  ====  ===========================================================
UsageError                2  a command line that cannot be carried out
ResumeError               2  ``--resume`` with settings other than the checkpoint's
DaskMissing               2  ``--dask`` without the optional Dask packages
NoInput                  66  an input that does not exist or cannot be opened
ModelFileMissing         66  a model file that does not exist
ImageError               65  a file that is not a readable image
ModelFileError           65  a model or checkpoint file that fails its checks
DatasetError             65  a data folder that cannot be used
TrainingError            65  training cannot go on (e.g. a non-finite loss)
ResultsFileError         65  a results file that cannot be used
ClusterUnavailable       69  ``--dask ADDRESS`` where no scheduler answers
OutputError              73  an output that cannot be created or written
IOFailure                74  a write that failed: a full disk, ``/dev/full``, an I/O error
ResultsFileBusy          75  a results file another run is using (try again, or ``--wait``)
=====================  ====  ===========================================================

:func:`write_error` picks the type for an ``OSError`` met while writing a file.
Notes about an input that was still used (corrupt EXIF data, say) are :class:`Note`
warnings, which the command line prints as one ``minivgg: note:`` line.

The types also derive from the built-in exception that describes them best
(``ValueError``, ``OSError``, ``RuntimeError``), so code that catches those still works.
"""

import errno
import os


class MinivggError(Exception):
    """The root of minivgg's errors: one line naming the file and the problem, and an exit code."""
    exit_code = 1


class UsageError(MinivggError, ValueError):
    """A command line that cannot be carried out."""
    exit_code = 2


class ResumeError(UsageError):
    """``--resume`` asked for settings that differ from the checkpoint's."""


class DaskMissing(UsageError):
    """``--dask`` without the optional Dask packages installed."""


class NoInput(MinivggError, ValueError):
    """An input that does not exist or cannot be opened."""
    exit_code = os.EX_NOINPUT


class DataError(MinivggError, ValueError):
    """Bad data or a bad model (exit 65); the subclasses say which."""
    exit_code = os.EX_DATAERR


class ImageError(DataError):
    """An input that is not a readable image."""


class ModelFileError(DataError):
    """A model or checkpoint file that cannot be read, or a model that is unusable on its inputs."""


class ModelFileMissing(ModelFileError):
    """A model file that does not exist (or is a symbolic-link loop)."""
    exit_code = os.EX_NOINPUT


class DatasetError(DataError):
    """A data folder that cannot be used."""


class ResultsFileError(DataError):
    """A results file that cannot be used."""


class ResultsFileBusy(ResultsFileError):
    """A results file that another running minivgg holds (it is locked: :mod:`minivgg.app.results`)."""
    exit_code = os.EX_TEMPFAIL


class ClusterUnavailable(MinivggError, ConnectionError):
    """``--dask ADDRESS`` where no Dask scheduler answers."""
    exit_code = os.EX_UNAVAILABLE


class TrainingError(MinivggError, RuntimeError):
    """Training cannot go on (e.g. the loss is no longer finite)."""
    exit_code = os.EX_DATAERR


class OutputError(MinivggError, OSError):
    """An output folder or file that cannot be created or written."""
    exit_code = os.EX_CANTCREAT


class IOFailure(MinivggError, OSError):
    """A write that failed after it started: a full disk or quota, ``/dev/full``, a file too large, an I/O error."""
    exit_code = os.EX_IOERR


# A write failing with these means the data did not fit or the device failed (74), not that
# the output could not be created (73).
IO_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def describe(error):
    """An ``OSError``'s reason as a message shows it: ``no space left on device``."""
    return (error.strerror or str(error) or type(error).__name__).lower()


def write_error(path, error, doing="cannot write"):
    """The error to raise for ``error`` (an ``OSError``) met while writing ``path``.

    :class:`IOFailure` (74) for a full disk or a failing device, :class:`OutputError` (73)
    for anything else (permission, a folder in the way, a name too long ...).
    """
    kind = IOFailure if error.errno in IO_FAILURES else OutputError
    return kind(f"{path}: {doing} ({describe(error)})")


class Note(UserWarning):
    """Something about an input that the user should know although it was used (a ``warnings`` category)."""
