"""Write files atomically: readers see the old file or the complete new one, never half.

Also the limit every name written must keep: :data:`NAME_MAX` bytes, which :func:`fit_name`
enforces while keeping distinct names distinct.
"""

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from minivgg.errors import MinivggError, write_error

NAME_MAX = 255          # bytes in one file name: the limit of ext4, XFS, btrfs, APFS and NTFS
TEMP_EXTRA = 32         # what a temporary name adds to its file's name: ".", ".<pid>.<8 random>.tmp"


def fit_name(name, max_bytes=NAME_MAX):
    """``name``, or when it takes more than ``max_bytes`` bytes on disk, its beginning + ``~`` + a short hash.

    The hash is of the whole name, so two long names that start alike still get different
    short names. Lengths are counted in bytes as the file system stores them (UTF-8, and
    the raw bytes of names that are not UTF-8), and the cut never splits a character.

    >>> fit_name("a" * 300, 20)
    'aaaaaaaaa~9835fa6bf4'
    """
    encoded = os.fsencode(name)
    if len(encoded) <= max_bytes:
        return name
    tag = "~" + hashlib.sha256(encoded).hexdigest()[:10]
    keep = name[:max_bytes - len(tag)]
    while len(os.fsencode(keep)) > max_bytes - len(tag):
        keep = keep[:-1]
    return keep + tag


def _temp_prefix(path):
    """What every temporary file of ``path`` starts with: ``.<name>.`` (the name shortened to fit)."""
    return f".{fit_name(path.name, NAME_MAX - TEMP_EXTRA)}."


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
    prefix = _temp_prefix(path)
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
                continue
            pid = entry.name[len(prefix):].split(".", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success move it over ``path``.

    The rename is atomic on POSIX when both names are on one file system, which is why
    the temporary file lives in the destination folder. On any exception the temporary
    file is removed and ``path`` is left as it was; temporaries left by a killed earlier
    writer of the same file are removed first (:func:`remove_stale_temporaries`).

    An ``OSError`` while writing (a full disk, a folder in the way) is raised as the
    one-line error :func:`minivgg.errors.write_error` chooses, naming ``path``.

    Example
    -------
    >>> with atomic_write("weights.npz") as f:      # doctest: +SKIP
    ...     np.savez(f, w=w)
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        os.fchmod(fd, 0o644)      # mkstemp makes 0600 files; results are meant to be shared
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, MinivggError):
            raise write_error(path, e) from None
        raise
