"""Write files atomically: readers see the old file or the complete new one, never half."""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success move it over ``path``.

    The rename is atomic on POSIX when both names are on one file system, which is why
    the temporary file lives in the destination folder. On any exception the temporary
    file is removed and ``path`` is left as it was.

    Example
    -------
    >>> with atomic_write("weights.npz") as f:      # doctest: +SKIP
    ...     np.savez(f, w=w)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
