"""The thread pool: results in order, errors surfaced, no nested waiting, the same numbers with 1 or more threads."""

import threading
import time

import numpy as np
import pytest

from minivgg import VGG8, Adam, Tape, softmax_cross_entropy
from minivgg.nn import threads


def test_parallel_for_keeps_order_and_shares_items_with_the_pool(restore_threads):
    threads.set_threads(2)
    names = []

    def item(i):
        names.append(threading.current_thread().name)
        time.sleep(0.01)                      # long enough for the pool's thread to wake and take some
        return i * i
    assert threads.parallel_for(7, item) == [i * i for i in range(7)]
    me = threading.current_thread().name
    assert me in names and any(n.startswith("minivgg") for n in names)      # the caller computes too
    threads.set_threads(1)
    names.clear()
    assert threads.parallel_for(3, item) == [0, 1, 4] and set(names) == {me}


@pytest.mark.parametrize("n_threads", [2, 3])
def test_many_callers_never_compute_on_more_threads_than_set(restore_threads, n_threads):
    """Four threads calling parallel_for at once (a terminal app's workers): at most n_threads items run at a time."""
    threads.set_threads(n_threads)
    lock, running, most = threading.Lock(), [0], [0]

    def item(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002)
        with lock:
            running[0] -= 1
        return i

    def caller():
        for _ in range(5):
            assert threads.parallel_for(6, item) == list(range(6))
    callers = [threading.Thread(target=caller) for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert most[0] == n_threads


def test_errors_are_raised_and_nested_calls_run_inline(restore_threads):
    threads.set_threads(2)

    def boom(i):
        if i == 2:
            raise ValueError("item 2")
        return threads.parallel_for(3, lambda j: j)        # nested: runs in the pool thread itself
    with pytest.raises(ValueError, match="item 2"):
        threads.parallel_for(4, boom)
    assert threads.parallel_for(2, boom) == [[0, 1, 2], [0, 1, 2]]
    with pytest.raises(ValueError, match="at least 1"):
        threads.set_threads(0)


def test_split_covers_the_range():
    for n, parts in ((10, 3), (2, 5), (0, 2), (7, 7)):
        ranges = threads.split(n, parts)
        assert [i for a, b in ranges for i in range(a, b)] == list(range(n))
        assert all(b > a for a, b in ranges) and len(ranges) <= parts


def test_blas_runs_single_threaded_under_the_pool(restore_threads):
    from threadpoolctl import threadpool_info
    threads.set_threads(2)
    assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")


@pytest.mark.parametrize("batch", [1, 5])
def test_one_or_two_threads_compute_the_same_network(restore_threads, batch):
    """Forward, backward and an Adam step agree (to float round-off) whatever the thread count, batch 1 included."""
    x = np.random.default_rng(0).standard_normal((batch, 3, 64, 64))
    results = []
    for n in (1, 2):
        threads.set_threads(n)
        model = VGG8(channels=(8, 16, 16, 16, 32, 32, 32, 32), hidden=16, image_size=64, dtype=np.float64, seed=1)
        tape = Tape()
        logits = model.forward(x, tape=tape)
        _, d = softmax_cross_entropy(logits, np.arange(batch) % 2)
        dx, grads = model.backward(d, tape)
        Adam(model.parameters(), lr=1e-2).step(grads)
        results.append((logits, dx, model.state_dict()))
    (l1, dx1, s1), (l2, dx2, s2) = results
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-10, atol=1e-14)
    for k in s1:       # Adam's first step is about lr * sign(g): absolute agreement, on the scale of lr
        np.testing.assert_allclose(s1[k], s2[k], rtol=0, atol=1e-9, err_msg=k)


def test_submit_reads_ahead_on_the_pool_or_at_once_with_one_thread(restore_threads):
    threads.set_threads(2)
    future = threads.submit(lambda: threading.current_thread().name)
    assert future.result().startswith("minivgg")
    threads.set_threads(1)
    future = threads.submit(lambda: threading.current_thread().name)
    assert future.done() and future.result() == threading.current_thread().name
    failed = threads.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.result()


def test_a_training_step_leaves_no_kernel_cold(restore_threads):
    """After one training step every kernel the CLI's "compiling kernels" message counts is cached on disk."""
    from minivgg.nn import compiled
    threads.set_threads(2)
    model = VGG8(channels=(8, 16, 16, 16, 32, 32, 32, 32), hidden=16, image_size=64, seed=1)
    tape = Tape()
    logits = model.forward(np.zeros((2, 3, 64, 64), np.float32), train=True, tape=tape, rng=np.random.default_rng(0))
    _, d = softmax_cross_entropy(logits, np.array([0, 1]))
    Adam(model.parameters()).step(model.backward(d, tape, need_input_grad=False)[1])
    assert not compiled.cache_is_cold(training=True)
    assert not compiled.cache_is_cold(training=False)
