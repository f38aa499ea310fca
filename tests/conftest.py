
import numpy as np
import pytest

from minivgg import VGG8
from tests.shared_data import shared_data  # noqa: F401 - tests import it from here

TINY = dict(channels=(2, 3, 4, 4, 5, 5, 6, 6), hidden=8, image_size=32)

SHARED_DATA = shared_data()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def restore_threads():
    """Lets a test call minivgg.nn.threads.set_threads; the thread count before it is put back afterwards."""
    from minivgg.nn import threads
    before = threads.get_threads()
    yield
    threads.set_threads(before)


@pytest.fixture
def tiny64():
    """A float64 VGG8 small enough for finite differences over every layer."""
    return VGG8(**TINY, dtype=np.float64, seed=3)


@pytest.fixture
def torch():
    """PyTorch, the reference oracle of some tests; only the tests that take it skip without it."""
    return pytest.importorskip("torch", reason="PyTorch is this test's reference oracle; pip install torch==2.13.0")


def run_cli(argv, capsys):
    """(exit code, stdout, stderr) of ``minivgg argv`` run in-process; argparse's usage errors included.

    Fails the test if anything printed a traceback.
    """
    from minivgg.cli import main
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
