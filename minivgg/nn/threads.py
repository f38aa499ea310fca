"""How many threads minivgg computes with: decided here, and nowhere else.

minivgg parallelises its own work. A layer splits its batch (or, for a single image, its
rows) into items, and :func:`parallel_for` hands the items to a pool of threads; every
BLAS product inside an item runs single-threaded, and the compiled kernels release
Python's GIL (``nogil=True``), so the items really run side by side.

Why not let the BLAS library (OpenBLAS) use its own threads? Its threads *spin* while
they wait for each other. When another process is busy on the same cores, a spinning
thread holds a core that the late thread needs, and everything waits: measured on a
2-core machine with other work running, the bundled model's forward pass took 46-206
ms per image with 2 OpenBLAS threads against 9 ms with 1. Threads that block instead of
spinning lose only the share of the machine that the other process takes. The same
holds inside one process: a terminal app's background workers, several explanations
and the reading ahead of image files (:func:`submit`) share one pool instead of
multiplying threads.

:func:`set_threads` is called by the command line (``--threads``) and may be called by
any program; until then the pool uses every core this process may run on
(``os.sched_getaffinity``).

Every thread that computes for minivgg flushes subnormal floats to zero while it does
(:mod:`minivgg.nn.denormals`): the pool's threads for good, a caller's thread during the call.
"""

import itertools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from minivgg.nn import denormals

_lock = threading.Lock()
_pool = None              # ThreadPoolExecutor, created on first use
_count = None             # threads in the pool
_blas_limited = None      # threadpoolctl's handle, kept so the limit stays in force
_in_pool = threading.local()
_caller_slot = threading.Lock()   # held by the one outside thread computing in parallel_for


def available_cores():
    """The number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:            # not on Linux
        return os.cpu_count() or 1


def set_threads(n=None):
    """Compute with ``n`` threads (default: :func:`available_cores`); returns the number in use.

    Also sets every BLAS library loaded in the process to one thread (see the module
    docstring). Safe to call again: the pool is replaced once running items finish.
    """
    global _pool, _count, _blas_limited
    n = available_cores() if n is None else int(n)
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    _load_blas()
    with _lock:
        if _count != n:
            old, _pool, _count = _pool, None, n
            if old is not None:
                old.shutdown(wait=True)
        _blas_limited = threadpool_limits(limits=1, user_api="blas")
    return n


def get_threads():
    """The number of threads :func:`parallel_for` uses (setting the default on first call)."""
    return _count if _count is not None else set_threads()


def _load_blas():
    # threadpoolctl limits the libraries already loaded: load NumPy's BLAS first.
    np.ones((2, 2)) @ np.ones((2, 2))


def _start_pool_thread():
    _in_pool.active = True
    denormals.flush_in_this_thread()
    # As in VGG8.forward: an overflowing model gives non-finite outputs, which callers
    # report by name (Classifier.check_finite), not a warning per kernel.
    # (NumPy's error state belongs to each thread.)
    np.seterr(over="ignore", invalid="ignore")


def submit(fn, *args):
    """Run ``fn(*args)`` on the pool and return its Future (work that overlaps the caller's, e.g. reading ahead).

    With one thread, or from a pool thread, ``fn`` runs at once and the Future is already
    done: a process given one core never runs two busy threads.
    """
    if get_threads() == 1 or getattr(_in_pool, "active", False):
        future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as e:                 # noqa: BLE001 - handed to the caller through the Future
            future.set_exception(e)
        return future
    return _get_pool().submit(fn, *args)


def _get_pool():
    global _pool
    with _lock:
        if _pool is None:
            # One thread fewer than _count: the caller of parallel_for computes too.
            _pool = ThreadPoolExecutor(max_workers=max(1, _count - 1), thread_name_prefix="minivgg",
                                       initializer=_start_pool_thread)
        return _pool


def parallel_for(n_items, fn):
    """Call ``fn(i)`` for every i in range(n_items), sharing the items among threads; returns the results in order.

    The calling thread computes too: it and the pool's threads take the next item from a
    shared counter until none is left (so a thread slowed down by another process simply
    takes fewer items), and it never sleeps while there is work, which at one image per
    call saves a thread wake-up per layer. Only one outside thread at a time joins in
    this way (the *caller slot*); the pool has one thread fewer than :func:`get_threads`,
    so at most that many threads compute however many threads call (a terminal app's
    workers, reading ahead). A caller that finds the slot taken hands all its items to
    the pool and waits.

    Items run serially when there is one thread or one item, and when called from inside
    an item (nested parallelism would only wait on itself). An exception in an item is
    raised here once every item has finished (the first item's, if several fail).
    """
    if get_threads() == 1 or n_items <= 1 or getattr(_in_pool, "active", False):
        with denormals.flushed():
            return [fn(i) for i in range(n_items)]
    results, errors = [None] * n_items, []
    next_item, finished = itertools.count(), itertools.count(1)
    all_done = threading.Event()

    def take_items():
        for i in iter(lambda: next(next_item), None):      # itertools.count is thread-safe
            if i >= n_items:
                return
            try:
                results[i] = fn(i)
            except Exception as e:              # noqa: BLE001 - raised below, once all items are done
                errors.append((i, e))
            if next(finished) == n_items:
                all_done.set()
    joins = _caller_slot.acquire(blocking=False)
    pool = _get_pool()
    for _ in range(min(n_items, get_threads()) - joins):
        # Not waited for: a helper that starts after the items are gone just returns.
        pool.submit(take_items)
    if joins:
        _in_pool.active = True                  # nested calls in this thread now run serially
        try:
            with denormals.flushed():
                take_items()
        finally:
            _in_pool.active = False
            _caller_slot.release()
    all_done.wait()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return results


def split(n, parts):
    """``parts`` contiguous ``(start, stop)`` ranges covering range(n) as evenly as possible (empty ones dropped)."""
    bounds = [n * p // parts for p in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
