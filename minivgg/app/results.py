"""A results file of JSON lines that a rerun resumes from (``predict`` / ``explain --results FILE.jsonl``).

Each finished image adds one line: its record (what ``--json`` prints) plus ``"key"``,
which says *which version* of the file the result is for:

* ``--key stat`` (default): the absolute path, size and modification time, cheap to
  compute for a million files;
* ``--key content``: the SHA-256 of the file's bytes, which survives copying the archive
  elsewhere but reads every file on each rerun.

A rerun reads the file, skips every image whose key has a successful record, and appends
the rest. Records of failures (``"error"``) are kept for the log but the image is tried
again. One process writes, with a single ``write`` of a whole line each time, so a killed
run leaves complete lines; a line cut short by a crash of the machine itself is found at
the end of the file, ignored and cut off before appending.
"""

import hashlib
import json
import os
from pathlib import Path

from minivgg.errors import ResultsFileError
from minivgg.files import OutputError

KEYS = ("stat", "content")



def file_key(path, kind="stat"):
    """The ``"key"`` of one input file (see the module docstring)."""
    path = Path(path)
    if kind == "content":
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return {"sha256": digest.hexdigest()}
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _key_id(key):
    return json.dumps(key, sort_keys=True)


class ResultsFile:
    """Append-only JSON-lines results, resumable.

    Parameters
    ----------
    path : the .jsonl file (created if missing; its folder must exist or be creatable)
    kind : "stat" or "content", how input files are identified

    Use :meth:`pending` to drop the files already done, then :meth:`append` each record.
    """

    def __init__(self, path, kind="stat"):
        if kind not in KEYS:
            raise ValueError(f"key must be one of {KEYS}, got {kind!r}")
        self.path, self.kind = Path(path), kind
        self.done = set()
        self.previous = 0                      # successful records already in the file
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._read_existing()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write the results file "
                              f"({(e.strerror or type(e).__name__).lower()})") from None

    def _read_existing(self):
        if not self.path.exists():
            return
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a folder, not a results file")
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):               # a line cut short by a crash: drop it
            with open(self.path, "r+b") as f:
                f.truncate(complete)
        for number, raw in enumerate(data[:complete].splitlines(), 1):
            try:
                record = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ResultsFileError(f"{self.path}: line {number} is not JSON; is this a minivgg results file?") \
                    from None
            if not isinstance(record, dict) or "file" not in record:
                raise ResultsFileError(f"{self.path}: line {number} is not a minivgg result (no \"file\")")
            if "error" not in record and isinstance(record.get("key"), dict):
                self.done.add(_key_id(record["key"]))
                self.previous += 1

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
        """Write ``record`` (with ``key``) as one line, in one write."""
        line = json.dumps({**record, "key": key} if key is not None else record, allow_nan=False) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        if key is not None and "error" not in record:
            self.done.add(_key_id(key))

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
