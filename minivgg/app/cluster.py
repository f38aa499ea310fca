"""Predict and explain a whole archive on a Dask cluster: ``minivgg predict --dask [ADDRESS]``.

Dask's distributed scheduler (pure Python; local, SSH, SLURM or Kubernetes clusters; a
live dashboard) runs the same per-file code as the local path, on many processes or
machines:

* Without an address, a ``LocalCluster`` sized to this machine: one worker process per
  core, one thread each, and each worker's arithmetic pinned to one thread
  (:mod:`minivgg.nn.threads` and the BLAS environment variables), so that processes times
  threads never exceed the cores.
* With an address (``tcp://host:8786``), the client connects to a running scheduler
  (``dask scheduler`` and ``dask worker``, ``dask ssh``, or dask-jobqueue on SLURM/PBS;
  see ``docs/scaling.md``).
* The files go out in chunks, one task per chunk. A worker process loads the model once
  (:func:`worker_model`, a cache per process keyed by the file's path, size and
  modification time) and compiles or loads its kernels once.
* Records come back as each chunk finishes, in the local path's format
  (:func:`minivgg.app.predict.prediction_record`); the caller prints them and appends them to
  the results file (:mod:`minivgg.app.results`), so a killed run loses only the chunks in flight.

On a real cluster every worker must read the model file and the images at the same paths
(a shared file system) and run the same minivgg. Dask moves tasks and results between
processes with pickle, so use it only on a cluster you trust; model files are still read
as always (``allow_pickle=False``).
"""

import contextlib
import logging
import os
import signal
import sys
import threading

from minivgg.app.pipeline import explain_files
from minivgg.app.predict import batch_limit, error_record, predict_files, prediction_record
from minivgg.deploy.modelfile import load_model
from minivgg.errors import ClusterUnavailable, DaskMissing, ImageError
from minivgg.nn.threads import available_cores, set_threads

PINNED_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "NUMBA_NUM_THREADS")}
CONNECT_SECONDS = 5          # how long to try reaching a scheduler before saying it cannot be reached


def _distributed():
    try:
        import dask.distributed
    except ImportError:
        raise DaskMissing("--dask needs the optional Dask packages: pip install 'minivgg[dask]'") from None
    return dask.distributed


def start_client(address=None, stream=None):
    """A Dask client: connected to ``address``, or to a new LocalCluster sized to this machine.

    Prints the dashboard's address on ``stream`` (stderr). Returns ``(client, close)``.
    Raises :class:`~minivgg.errors.ClusterUnavailable` when no scheduler answers at
    ``address`` within :data:`CONNECT_SECONDS`.
    """
    distributed = _distributed()
    stream = stream or sys.stderr
    if address:
        try:
            client = distributed.Client(address, timeout=CONNECT_SECONDS)
        except (OSError, ValueError, TypeError) as e:     # refused, timed out, or not an address at all
            raise ClusterUnavailable(f"--dask {address}: cannot reach a Dask scheduler there "
                                     f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        cluster = None
    else:
        with _workers_ignore_ctrl_c():
            # The workers' logs are for the dashboard, not the terminal: warnings (each task cancelled
            # by Ctrl-C) and errors alike ("failed to communicate with scheduler during heartbeat" when
            # Ctrl-C closes the scheduler first). A task's own failure reaches minivgg as its exception.
            cluster = distributed.LocalCluster(n_workers=available_cores(), threads_per_worker=1, processes=True,
                                               dashboard_address=":0", env=PINNED_ENV,
                                               silence_logs=logging.CRITICAL)
        client = distributed.Client(cluster)
    # A Ctrl-C that lands while the client waits on its event loop makes distributed's own
    # cancel callback fail ("cannot access free variable 'future'"), which tornado logs as a
    # 12-line traceback after minivgg's one-line "interrupted". Errors that matter reach
    # minivgg as exceptions and are reported by it; tornado's log of callbacks is not for the terminal
    # while minivgg's client runs (close() gives the log its level back).
    tornado_log = logging.getLogger("tornado.application")
    tornado_level = tornado_log.level
    tornado_log.setLevel(logging.CRITICAL)
    where = f"scheduler {address}" if address else f"local cluster of {len(client.scheduler_info()['workers'])} workers"
    stream.write(f"minivgg: Dask {where}; dashboard: {client.dashboard_link}\n")
    stream.flush()

    def close():
        try:
            client.close()
            if cluster is not None:
                cluster.close()
        finally:
            tornado_log.setLevel(tornado_level)
    return client, close


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Start the local cluster's processes with Ctrl-C (SIGINT) ignored.

    Ctrl-C in a terminal is sent to every process of the foreground group: each worker would
    die printing its own tracebacks (70 lines for two workers). Ignored signals stay ignored
    in the processes started meanwhile, so only this process sees Ctrl-C; it then closes the
    cluster, which stops the workers cleanly. Signal handlers can only be changed on the main
    thread; elsewhere the workers start as they would.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


# ------------------------------------------------------------------ on the workers

_models = {}
_models_lock = threading.Lock()


def worker_model(path):
    """The model at ``path``, loaded once per worker process (and again only when the file changes)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    with _models_lock:
        if key not in _models:
            set_threads(1)                       # one worker per core: no threads within a worker
            _models.clear()
            _models[key] = load_model(path).freeze()
        return _models[key]


def predict_chunk(files, model_path, batch_size):
    """Records of one chunk of files (runs on a worker): predictions, or errors for unreadable files."""
    model = worker_model(model_path)
    batch_size = min(batch_size, batch_limit(model))   # without the note: on a worker it would print raw
    return [error_record(f, found) if isinstance(found, ImageError) else prediction_record(model, f, found)
            for f, found, _ in predict_files(model, files, batch_size)]


def explain_chunk(job, model_path, out, settings):
    """Records of explaining one chunk ``job`` of (file, output stem) on a worker, pictures written to ``out``.

    ``settings`` is the :class:`~minivgg.explain.settings.ExplainSettings` of the command,
    sent as it is; the work is :func:`minivgg.app.pipeline.explain_files`, as in one process.
    """
    return list(explain_files(worker_model(model_path), job, out, settings))


# ------------------------------------------------------------------ on the client


def chunked(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_chunks(client, task, chunks, *args):
    """Submit ``task(chunk, *args)`` for every chunk; yield each chunk's records as it finishes.

    Leaving the loop early (an error, Ctrl-C) cancels the chunks not yet done.
    """
    distributed = _distributed()
    futures = [client.submit(task, chunk, *args, pure=False) for chunk in chunks]
    try:
        for future in distributed.as_completed(futures):
            records = future.result()
            future.release()
            yield from records
    finally:
        client.cancel([f for f in futures if not f.done()])

