"""Where the real radiographs are: used by tests and benchmarks alike (never copied into the repository).

``$MINIVGG_SHARED_DATA``, else ``../shared/data`` beside the repository, else
``/work/shared/data`` (a git worktree lives one folder deeper). Callers skip, with a
reason, when the folder is absent.
"""

import os
from pathlib import Path


def shared_data():
    """The folder of real radiographs (it may not exist)."""
    if os.environ.get("MINIVGG_SHARED_DATA"):
        return Path(os.environ["MINIVGG_SHARED_DATA"])
    beside = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")
