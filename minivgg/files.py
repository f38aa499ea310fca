"""Files in and out: why an input cannot be read, output folders checked before any work, distinct output names.

Every command that writes files (train, evaluate, explain, predict --gradcam/--shap,
phantoms, the terminal app's save) calls :func:`prepare_output_dir` before it starts
working, so that an unusable ``--out`` (an existing file, a read-only folder,
``/proc/...``) fails at once with one line instead of after an hour of training.
"""

import errno
import json
import math
import os
import stat
import tempfile
from collections import Counter
from pathlib import Path

from minivgg.atomic import NAME_MAX, atomic_write, fit_name
from minivgg.errors import OutputError, describe, write_error

MISSING = ("no such file", "symbolic link loop")     # the problems of an input that is not there at all
# The longest stem an output name may have: room for the longest suffix an output adds
# (``_shap_stderr.npy``, 16 bytes) and a counter (``_12``) within NAME_MAX.
MAX_STEM_BYTES = NAME_MAX - 40

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode):
    """What a file with ``st_mode`` ``mode`` is, in words ("a FIFO (named pipe)"), or None for a regular file.

    Only regular files are read or written as files: reading a FIFO waits for a writer
    that may never come, and ``/dev/zero`` never ends.
    """
    return next((kind for test, kind in _KINDS if test(mode)), None)


class NotRegularFile(OSError):
    """Raised by :func:`open_regular` for a folder, FIFO, device or socket."""


def open_regular(path):
    """``path`` opened for reading (binary), or :class:`NotRegularFile` when it is not a regular file.

    Opening never waits: a FIFO is opened without blocking (``O_NONBLOCK``, which regular
    files ignore) and then refused, as is a device such as ``/dev/zero``, also through a
    symbolic link.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    kind = file_kind(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, f"is {kind}, not a regular file", str(path))
    return os.fdopen(fd, "rb")


def input_problem(path):
    """A one-line reason why the file ``path`` cannot be read, or None when it can.

    Tells apart what ``Path.exists()`` lumps together: a missing file, a symbolic-link
    loop, a folder, a FIFO or device, an empty file and a permission problem.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file"
    except OSError as e:
        return "symbolic link loop" if e.errno == errno.ELOOP else describe(e)
    kind = file_kind(st.st_mode)
    if kind:
        return "is a folder, not a file" if stat.S_ISDIR(st.st_mode) else f"is {kind}, not a regular file"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def prepare_output_dir(path):
    """Create ``path`` (and its parents) if needed and prove it is writable; returns it as a Path.

    Raises :class:`OutputError` with a one-line reason otherwise.
    """
    path = Path(path)
    try:
        kind = file_kind(os.stat(path).st_mode) or "an existing file"
    except OSError:
        kind = None                                  # missing (created below) or unreachable (reported below)
    if kind not in (None, "a folder"):
        raise OutputError(f"{path}: output folder is {kind}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".minivgg-write-test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise write_error(path, e, "cannot write to the output folder") from None
    return path


def distinct_stems(files):
    """``{path: stem}`` with a different stem for every distinct input, for naming its output files.

    A stem shared by several inputs (``A/img.png`` and ``B/img.png``) is prefixed with
    as many parent folder names as it takes to tell them apart (``A_img``, ``B_img``);
    names that still clash get a counter (``img_2``). A stem longer than
    :data:`MAX_STEM_BYTES` is shortened (:func:`minivgg.atomic.fit_name`), so that every
    output name fits the file system.
    """
    unique = list(dict.fromkeys(Path(f) for f in files))
    count = Counter(f.stem for f in unique)
    stems, taken = {}, set()
    for f in unique:
        name = f.stem
        if count[f.stem] > 1:
            group = [g.resolve(strict=False) for g in unique if g.stem == f.stem]
            mine = f.resolve(strict=False)
            for depth in range(1, max(len(g.parts) for g in group)):
                prefixes = [g.parent.parts[-depth:] for g in group]
                if prefixes.count(mine.parent.parts[-depth:]) == 1:
                    break
            name = "_".join([*mine.parent.parts[-depth:], f.stem]).lstrip("/_")
        base, k = fit_name(name, MAX_STEM_BYTES), 1
        name = base
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        stems[f] = name
        taken.add(name)
    return stems


def json_safe(obj):
    """``obj`` with every NaN or infinite float replaced by None (``null``): strict JSON has no NaN."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path, obj):
    """Write ``obj`` as indented JSON, NaN written as null, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(json_safe(obj), f, indent=2, allow_nan=False)
