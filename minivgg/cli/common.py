"""What several commands share: the model to load, the input files, a results file, Dask, the records loop."""

import os
import sys
from pathlib import Path

from minivgg.app.cluster import chunked, run_chunks, start_client
from minivgg.app.predict import error_record, predict_files, prediction_record
from minivgg.app.results import ResultsFile
from minivgg.deploy.bundled import BUNDLED_MODEL
from minivgg.deploy.modelfile import load_model
from minivgg.errors import ImageError, NoInput
from minivgg.files import MISSING, input_problem
from minivgg.imaging.imageio import IMAGE_SUFFIXES, find_images
from minivgg.text import printable


def load(model_path):
    """The :class:`~minivgg.deploy.Classifier` in ``model_path``, or the bundled one when it is None, frozen
    (:meth:`~minivgg.deploy.Classifier.freeze`): a command only serves it."""
    if model_path is None and not BUNDLED_MODEL.exists():
        raise NoInput(f"{BUNDLED_MODEL}: this installation has no bundled model; pass --model")
    return load_model(model_path or BUNDLED_MODEL).freeze()


def model_path(args):
    """The model file's absolute path (Dask workers load it themselves)."""
    return str(Path(args.model or BUNDLED_MODEL).resolve())


STDIN = "-"                      # the input that stands for file names read from stdin


def input_files(inputs):
    """The image files named by ``inputs``: files as given, folders searched recursively, ``-`` names from stdin.

    Each image is listed once however it is named (``minivgg predict dicoms/**/*`` names
    folders and the files in them): a file is recognised by its resolved path, and the
    first spelling is kept; a folder inside one searched already is not searched again.
    Raises :class:`~minivgg.errors.NoInput` for an argument that does not exist or cannot
    be opened, and for a folder without image files.
    """
    files, seen, searched = [], set(), []
    for item in expand_stdin(inputs):
        p = Path(item)
        if p.is_dir():
            real = Path(os.path.realpath(p))
            if any(real.is_relative_to(done) for done in searched):
                continue
            searched.append(real)
            found = find_images(p)
            if not found:
                raise NoInput(f"{p}: no images in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))} "
                              f"and DICOM files without a suffix)")
        else:
            problem = input_problem(p)
            if problem in MISSING:
                raise NoInput(f"{p}: {'no such file or folder' if problem == 'no such file' else problem}")
            found = [p]              # other problems are the image reader's to report, per file
        for f in found:
            real = os.path.realpath(f)
            if real not in seen:
                seen.add(real)
                files.append(f)
    return files


def expand_stdin(inputs):
    """``inputs`` with each ``-`` replaced by the file names on stdin (read once).

    Names are one per line (``ls``, ``fd``), or NUL-separated when the input holds a NUL
    (``fd -0``, ``find -print0``: names with newlines); empty names are skipped. Bytes
    that are not UTF-8 are kept as the file system's own (:func:`os.fsdecode`).
    """
    names = None
    for item in inputs:
        if item != STDIN:
            yield item
            continue
        if names is None:
            if sys.stdin.isatty():
                print("minivgg: reading file names from the terminal, one per line; end with Ctrl+D",
                      file=sys.stderr)
            data = sys.stdin.buffer.read()
            lines = b"\0" not in data
            names = [os.fsdecode(n.removesuffix(b"\r") if lines else n) for n in data.split(b"\n" if lines else b"\0")]
            names = [n for n in names if n]
            if not names:
                raise NoInput(f"{STDIN}: no file names on stdin")
            yield from names


def resume(args, files, progress):
    """The results file (or None), the files still to do, and their keys (see :mod:`minivgg.app.results`)."""
    if not args.results:
        return None, files, {}
    results = ResultsFile(args.results, args.key, wait=args.wait, on_wait=progress.line)
    todo, keys = results.pending(files)
    if len(todo) < len(files):
        progress.line(f"minivgg: {args.results}: {len(files) - len(todo)} of {len(files)} images already done; "
                      f"{len(todo)} to go")
    return results, todo, keys


def local_records(model, files, batch_size, heatmaps=None):
    """The records of ``files``, predicted in this process; ``heatmaps(file, x, found)`` draws maps when given."""
    for f, found, x in predict_files(model, files, batch_size):
        if isinstance(found, ImageError):
            yield error_record(f, found)
            continue
        record = prediction_record(model, f, found)
        if heatmaps:
            heatmaps(f, x, found)
        yield record


def dask_records(args, items, task, *task_args):
    """The records of ``items``, computed on Dask as ``task(chunk, *task_args)`` per chunk of --chunk-size items."""
    client, close = start_client(args.dask or None)
    try:
        yield from run_chunks(client, task, chunked(items, args.chunk_size), *task_args)
    finally:
        close()


def report_records(records, results, keys, progress, label, total, show):
    """Take each record as it arrives: append it to the results file, report an error or ``show`` it.

    ``records``: a generator of records (:func:`local_records`, :func:`dask_records`,
    :func:`minivgg.app.pipeline.explain_files`), closed however this ends, so that its own clean-up
    (a Dask cluster's shutdown) runs now, not whenever the garbage collector meets it.
    Returns the exit status: 65 when some image could not be read, else 0.
    """
    status = 0
    try:
        for n, record in enumerate(records, 1):
            if results is not None:
                results.append(record, keys.get(Path(record["file"])))
            if "error" in record:
                progress.problem(f"minivgg: error: {printable(record['error'])}")
                status = ImageError.exit_code
            else:
                progress.clear()         # a result never shares a terminal line with the progress text
                show(record)
            progress.update(label, n, total)
    finally:
        records.close()
        if results is not None:
            results.close()
    return status
