"""Subnormal floats are flushed to zero inside minivgg's computations, and only there (minivgg.nn.denormals)."""

import threading
import time

import numpy as np
import pytest

from minivgg.nn import conv, denormals, threads

pytestmark = pytest.mark.skipif(not denormals.X86, reason="flushing subnormals is done (and needed) on x86 only")

TINY32 = np.finfo(np.float32).tiny          # the smallest normal float32; below it, subnormal


def halve(value):
    """value / 2 in float32 arithmetic (a subnormal result unless the thread flushes it)."""
    return np.float32(value) * np.float32(0.5)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_minivgg_work_flushes_and_the_callers_thread_is_left_as_it_was(n_threads, restore_threads):
    threads.set_threads(n_threads)
    assert 0 < halve(TINY32) < TINY32                          # IEEE arithmetic in the test's thread
    inside = threads.parallel_for(3, lambda i: halve(TINY32))   # pool threads, or inline with 1 thread
    assert inside == [0.0, 0.0, 0.0]
    with denormals.flushed():
        assert halve(TINY32) == 0
    assert 0 < halve(TINY32) < TINY32                          # restored after the call
    seen = []
    worker = threading.Thread(target=lambda: seen.append(halve(TINY32)))
    worker.start()
    worker.join()
    assert 0 < seen[0] < TINY32                                 # other threads never touched


@pytest.mark.parametrize("n_threads", [1, 2])
def test_subnormal_gradients_do_not_slow_the_backward_pass(rng, n_threads, restore_threads):
    """Without the flush, this conv backward took 13x (2 threads) to 55x (1 thread) longer on subnormal gradients."""
    threads.set_threads(n_threads)
    x = rng.standard_normal((1, 32, 56, 56)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    subnormal = dout * np.float32(1e-39)
    assert 0 < np.abs(subnormal).max() < TINY32

    def best_of_three(d):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            dx, dw, db = conv.conv3x3_backward(d, x, w)
            times.append(time.perf_counter() - start)
        return min(times), dx
    conv.conv3x3_backward(dout, x, w)                            # compiled and warm
    normal, _ = best_of_three(dout)
    slow, dx = best_of_three(subnormal)
    assert slow < 5 * normal + 0.005, f"{slow * 1e3:.1f} ms against {normal * 1e3:.1f} ms"
    assert not dx.any()                                          # subnormal inputs read as zero
