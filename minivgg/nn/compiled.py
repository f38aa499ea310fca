"""The compiled kernels: numba compiles them on first use and caches the machine code on disk.

The first run of a fresh installation therefore spends a few seconds compiling before it
computes anything (measured: :data:`FIRST_COMPILE_SECONDS`); later runs load the cache.
:func:`announce_if_cold` says so on stderr, once, instead of leaving the terminal silent.

Where the cache goes: numba tries ``NUMBA_CACHE_DIR``, then ``__pycache__`` beside the
sources, then a folder under ``~/.cache``; when none can be written (a read-only
container, a site-wide install, no HOME), every kernel module would fail at import with
"cannot cache function ... no locator available". :func:`ensure_cache_folder`, run
when :mod:`minivgg.nn` is imported and so before any kernel is declared, then points
numba at a private temporary folder instead, with one notice.
"""

import os
import stat
import sys
import tempfile

# Measured on a 2-core machine: cold predict 3 s, cold training step 5 s (README, "First run").
FIRST_COMPILE_SECONDS = 5


def kernels(training=False):
    """The numba-compiled functions every command's forward pass uses (and, with ``training``, every
    training step).

    A command serves a frozen model (``VGG8.freeze``: each convolution's kernel transform kept) without
    a tape, so every convolution followed by a pool pools in its pass: the first layer's direct loop,
    and F(4x4, 3x3)'s pooled output transform (a frozen model takes that scheme on every map whose side
    is a multiple of 4, as the bundled and the paper's model have from their second block on); the
    convolutions not followed by a pool use its plain output transform. Kernels that only some shapes
    or models need (e.g. F(2x2, 3x3) for the paper model's 14x14 maps, ``im2col3x3`` for small maps of
    a model that is not frozen, or the dense layer's kernel for small batches) are compiled when first
    met, without a message: they take a second or two.
    """
    from minivgg.nn import activation, conv, denormals, optim, pool, winograd, winograd4
    forward = [conv.direct_relu_maxpool_rows, activation._relu_forward_flat, winograd4.F4.input_transform,
               winograd4.F4.output_transform, winograd4.F4.pooled_output_transform, winograd4.F4.filter_rows]
    if denormals.X86:
        forward += [denormals.get_mxcsr, denormals.set_mxcsr]
    if not training:
        return forward
    # A training step's forward pass keeps every layer's output: the direct loop, the output transforms
    # and the pools run alone.
    step = [conv.direct_rows, pool._maxpool_forward_planes, activation._relu_backward_flat_inplace,
            pool._maxpool_backward_planes, optim._adam_update]
    for scheme in (winograd.F2, winograd4.F4):
        step += [scheme.output_transform, scheme.gradient_transform, scheme.weight_output_transform]
    return forward + step


def cache_is_cold(training=False):
    """True when one of those kernels has no cache index on disk yet (it will be compiled on first use)."""
    return any(not os.path.exists(k._cache._cache_file._index_path) for k in kernels(training))


def announce_if_cold(training=False, stream=None):
    """Print one line on stderr when kernels will be compiled now; returns whether they will."""
    cold = cache_is_cold(training)
    if cold:
        stream = stream or sys.stderr
        stream.write(f"minivgg: compiling kernels (first run only, about {FIRST_COMPILE_SECONDS} s)\n")
        stream.flush()
    return cold


def _probe():
    return 0


def ensure_cache_folder(stream=None):
    """Give numba a writable kernel cache: its own choice, else a private temporary folder (one notice).

    Declaring a cached function is what fails without a writable location, so declaring
    one here (in this folder, beside the kernels) tells whether the kernels will fail.
    Returns the temporary folder chosen, or None when numba's own choice works.
    """
    import numba
    try:
        numba.njit(cache=True)(_probe)
        return None
    except RuntimeError:                 # "cannot cache function '_probe': no locator available for file ..."
        pass
    folder = _private_temporary_folder()
    os.environ["NUMBA_CACHE_DIR"] = folder      # for processes started from this one (Dask workers)
    numba.config.CACHE_DIR = folder             # numba read the variable when it was imported
    stream = stream or sys.stderr
    if stream is not None:
        stream.write(f"minivgg: note: no writable place for numba's kernel cache (NUMBA_CACHE_DIR, the package's "
                     f"__pycache__, ~/.cache); caching in {folder} (set NUMBA_CACHE_DIR to keep it elsewhere)\n")
        stream.flush()
    return folder


def _private_temporary_folder():
    """``<temp>/minivgg-numba-<uid>``, reused between runs when it is this user's own and private.

    The cache holds machine code that numba loads and runs: a folder someone else created,
    or can write to, could hand this process their code. Then a fresh folder is made instead.
    """
    folder = os.path.join(tempfile.gettempdir(), f"minivgg-numba-{os.getuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return tempfile.mkdtemp(prefix="minivgg-numba-")
    st = os.lstat(folder)
    if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return folder
    return tempfile.mkdtemp(prefix="minivgg-numba-")
