"""The compiled kernels: numba compiles them on first use and caches the machine code on disk.

The first run of a fresh installation therefore spends a few seconds compiling before it
computes anything (measured: :data:`FIRST_COMPILE_SECONDS`); later runs load the cache.
:func:`announce_if_cold` says so on stderr, once, instead of leaving the terminal silent.
"""

import os
import sys

# Measured on a 2-core machine: cold predict 3 s, cold training step 5 s (README, "First run").
FIRST_COMPILE_SECONDS = 5


def kernels(training=False):
    """The numba-compiled functions every forward pass uses (and, with ``training``, every training step).

    Kernels that only some shapes need (e.g. ``col2im3x3``, for small maps, or the dense layer's
    kernel for small batches) are compiled
    when first met, without a message: they take a second or two.
    """
    from minivgg.nn import activation, conv, denormals, optim, pool, winograd
    forward = [conv.im2col3x3, winograd.input_transform, winograd.output_transform, winograd._filter_transform,
               conv.add_bias, activation._relu_forward_flat, pool._maxpool_forward_planes]
    if denormals.X86:
        forward += [denormals.get_mxcsr, denormals.set_mxcsr]
    if not training:
        return forward
    return forward + [activation._relu_backward_flat_inplace, pool._maxpool_backward_planes,
                      winograd.gradient_transform, winograd._weight_output_transform, optim._adam_update]


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
