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
OutputError              73  an output that cannot be created or written
=====================  ====  ===========================================================

The types also derive from the built-in exception that describes them best
(``ValueError``, ``OSError``, ``RuntimeError``), so code that catches those still works.
"""

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


class TrainingError(MinivggError, RuntimeError):
    """Training cannot go on (e.g. the loss is no longer finite)."""
    exit_code = os.EX_DATAERR


class OutputError(MinivggError, OSError):
    """An output folder or file that cannot be created or written."""
    exit_code = os.EX_CANTCREAT
