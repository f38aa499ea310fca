"""Write files atomically: readers see the old file or the complete new one, never half."""

import contextlib
import os
import tempfile
from pathlib import Path


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(path):
    """Delete temporary files of earlier writes to ``path`` whose writer has died (e.g. ``kill -9``).

    A temporary file is named ``.<name>.<pid>.<random>.tmp``; one whose process no longer
    exists can never be completed. Files of live writers are left alone.
    """
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success move it over ``path``.

    The rename is atomic on POSIX when both names are on one file system, which is why
    the temporary file lives in the destination folder. On any exception the temporary
    file is removed and ``path`` is left as it was; temporaries left by a killed earlier
    writer of the same file are removed first (:func:`remove_stale_temporaries`).

    Example
    -------
    >>> with atomic_write("weights.npz") as f:      # doctest: +SKIP
    ...     np.savez(f, w=w)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)      # mkstemp makes 0600 files; results are meant to be shared
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
