import numpy as np
import pytest

from minivgg import VGG8

TINY = dict(channels=(2, 3, 4, 4, 5, 5, 6, 6), hidden=8, image_size=32)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def tiny64():
    """A float64 VGG8 small enough for finite differences over every layer."""
    return VGG8(**TINY, dtype=np.float64, seed=3)


@pytest.fixture
def torch():
    """PyTorch, the reference oracle of some tests; only the tests that take it skip without it."""
    return pytest.importorskip("torch", reason="PyTorch is this test's reference oracle; pip install torch==2.13.0")
