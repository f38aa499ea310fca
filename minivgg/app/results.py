"""A results file of JSON lines that a rerun resumes from (``predict`` / ``explain --results FILE.jsonl``).

Each finished image adds one line: its record (what ``--json`` prints) plus ``"key"``,
which says *which version* of the file the result is for:

* ``--key stat`` (default): the absolute path, size and modification time, cheap to
  compute for a million files;
* ``--key content``: the SHA-256 of the file's bytes, which survives copying the archive
  elsewhere but reads every file on each rerun.

A rerun reads the file, skips every image whose key has a successful record, and appends
the rest. Records of failures (``"error"``) are kept for the log but the image is tried
again.

Three rules keep every record, and every file that is not a results file, safe:

* **Only our own files are touched.** Before anything is written, every line is checked
  to be a minivgg record (JSON, with ``"file"``), a line at a time and at most
  :data:`MAX_RECORD_BYTES` long, so a model file or a photo given as ``--results`` by
  mistake is refused unchanged, and ``/dev/zero``, a FIFO or a folder are refused
  before they are read at all.
* **One run per file.** A run holds an advisory lock (``flock``) on ``.<name>.lock``
  beside the file while it works; a second run is refused with the first one's process
  id, or with ``--wait`` waits for it. The operating system drops the lock when its
  process ends, however it ends, so a killed run leaves no stale lock.
* **Whole lines.** Each record is appended with one ``write`` of a whole line, so a
  killed run leaves complete lines; a line cut short by a crash of the machine itself
  (or a full disk) is found at the end of the file, and cut off before appending.
"""

import fcntl
import hashlib
import json
import os
from pathlib import Path

from minivgg.atomic import NAME_MAX, fit_name
from minivgg.errors import OutputError, ResultsFileBusy, ResultsFileError, describe, write_error
from minivgg.files import file_kind, open_regular

KEYS = ("stat", "content")
MAX_RECORD_BYTES = 1 << 20      # a record is a few kB (30 kB for a model of 1000 classes); longer is not ours
CUT_RECORD = b'{"file": '       # how every record line starts (json.dumps of a dict whose first key is "file")


def file_key(path, kind="stat"):
    """The ``"key"`` of one input file (see the module docstring).

    Raises ``OSError`` for a file that cannot be read, and for anything but a regular file
    (:func:`minivgg.files.open_regular`): hashing a FIFO would wait forever, ``/dev/zero``
    would never end.
    """
    path = Path(path)
    if kind == "content":
        digest = hashlib.sha256()
        with open_regular(path) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return {"sha256": digest.hexdigest()}
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _key_id(key):
    return json.dumps(key, sort_keys=True)


class ResultsFile:
    """Append-only JSON-lines results, resumable, used by one run at a time.

    Parameters
    ----------
    path : the .jsonl file (created if missing; its folder must exist or be creatable)
    kind : "stat" or "content", how input files are identified
    wait : when another run holds the file, wait for it to finish (else raise
        :class:`~minivgg.errors.ResultsFileBusy`)
    on_wait : callable(str), told once (one line) when the run starts waiting

    Use :meth:`pending` to drop the files already done, then :meth:`append` each record,
    then :meth:`close` (or use it as a context manager), which lets the next run in.
    """

    def __init__(self, path, kind="stat", wait=False, on_wait=None):
        if kind not in KEYS:
            raise ValueError(f"key must be one of {KEYS}, got {kind!r}")
        self.path, self.kind = Path(path), kind
        self.done = set()
        self.previous = 0                      # successful records already in the file
        self._fd = self._lock_fd = None
        exists = self._check_kind()
        if exists:
            self._read()                       # a foreign file is refused before anything is created beside it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(self.path.parent, e, "cannot create the folder of the results file") from None
        self._lock(wait, on_wait)
        try:
            if exists:
                self._resume()
            self._fd = self._open_for_appending()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ checks before writing

    def _check_kind(self):
        """True when the file exists; raises for a folder, FIFO, device or socket (nothing is opened)."""
        try:
            kind = file_kind(os.stat(self.path).st_mode)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise OutputError(f"{self.path}: cannot use as the results file ({describe(e)})") from None
        if kind:
            raise OutputError(f"{self.path}: is {kind}, not a results file")
        return True

    def _refuse(self, problem):
        raise ResultsFileError(f"{self.path}: {problem}; not a minivgg results file, so it is left as it is")

    def _read(self):
        """Check the file's lines; returns ``(records, bytes of complete lines, cut)``.

        ``cut`` is True when the file ends in a record cut short (no newline, not valid
        JSON, and starting as every record does). Anything else that is not a record
        raises :class:`~minivgg.errors.ResultsFileError`; no line longer than
        :data:`MAX_RECORD_BYTES` is ever read whole.
        """
        records, complete = [], 0
        try:
            with open_regular(self.path) as f:
                while raw := f.readline(MAX_RECORD_BYTES + 1):
                    number = len(records) + 1
                    if len(raw) > MAX_RECORD_BYTES:
                        self._refuse(f"line {number} is longer than {MAX_RECORD_BYTES:,} bytes")
                    if not raw.endswith(b"\n"):             # the last line, without its newline
                        if raw.startswith(CUT_RECORD) and _json(raw) is None:
                            return records, complete, True
                        self._refuse(f"its last line (line {number}) is not a record cut short")
                    record = _json(raw)
                    if record is None:
                        self._refuse(f"line {number} is not JSON")
                    if not isinstance(record, dict) or "file" not in record:
                        self._refuse(f'line {number} is not a minivgg result (no "file")')
                    records.append(record)
                    complete += len(raw)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot read the results file ({describe(e)})") from None
        return records, complete, False

    def _resume(self):
        """Read the file again under the lock (another run may have written meanwhile), note the keys done,
        and cut off a record cut short."""
        records, complete, cut = self._read()
        for record in records:
            if "error" not in record and isinstance(record.get("key"), dict):
                self.done.add(_key_id(record["key"]))
                self.previous += 1
        if cut:
            try:
                os.truncate(self.path, complete)
            except OSError as e:
                raise write_error(self.path, e, "cannot cut the record cut short at its end") from None

    # ------------------------------------------------------------------ the lock

    def _lock(self, wait, on_wait):
        """Hold the lock file beside the results file, or raise ResultsFileBusy naming the process holding it."""
        lock = self.path.with_name(f".{fit_name(self.path.name, NAME_MAX - 6)}.lock")
        try:
            self._lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise write_error(lock, e, "cannot create the lock file of the results file") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 32, 0).decode("ascii", "replace").strip()
            who = f"process {holder}" if holder.isdigit() else "another process"
            if not wait:
                self.close()
                raise ResultsFileBusy(f"{self.path}: in use by {who} (another minivgg run); wait for it to end "
                                      f"with --wait, or use another results file") from None
            if on_wait:
                on_wait(f"minivgg: {self.path}: in use by {who}; waiting for it to end")
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)    # who holds it, for the next run's message

    def _open_for_appending(self):
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise write_error(self.path, e, "cannot write the results file") from None
        kind = file_kind(os.fstat(fd).st_mode)     # replaced by something else since it was checked
        if kind:
            os.close(fd)
            raise OutputError(f"{self.path}: is {kind}, not a results file")
        return fd

    # ------------------------------------------------------------------ use

    def key(self, path):
        return file_key(path, self.kind)

    def pending(self, files):
        """``(files still to do, their keys)``: every file whose key has no successful record."""
        todo, keys = [], {}
        for f in files:
            try:
                key = self.key(f)
            except OSError:
                todo.append(f)                 # unreadable: let the image reader report it
                continue
            if _key_id(key) not in self.done:
                todo.append(f)
                keys[f] = key
        return todo, keys

    def append(self, record, key=None):
        """Write ``record`` (with ``key``) as one line, in one write.

        A full disk raises :class:`~minivgg.errors.IOFailure`; what was written of the line
        is cut off by the next run.
        """
        line = json.dumps({**record, "key": key} if key is not None else record, allow_nan=False) + "\n"
        data = line.encode("ascii")                # json.dumps escapes everything else
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as e:
            raise write_error(self.path, e, "cannot append to the results file") from None
        if key is not None and "error" not in record:
            self.done.add(_key_id(key))

    def close(self):
        """Close the file and let the next run in (the lock file stays: removing it could let two runs in)."""
        for name in ("_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _json(raw):
    """The JSON value of one line, or None when it is not JSON (nor UTF-8)."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
