"""The first run of a fresh installation says that it compiles, once; later runs are quiet and quick."""

import os
import subprocess
import sys
import time

from minivgg.cli import BUNDLED_SAMPLES


def test_cold_kernel_cache_is_announced_once(tmp_path):
    sample = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}      # an empty cache: a fresh install
    command = [sys.executable, "-m", "minivgg.cli", "predict", str(sample)]
    started = time.perf_counter()
    cold = subprocess.run(command, env=env, capture_output=True, text=True)
    cold_seconds = time.perf_counter() - started
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count("compiling kernels (first run only") == 1
    warm = subprocess.run(command, env=env, capture_output=True, text=True)
    assert warm.returncode == 0 and "compiling" not in warm.stderr and warm.stdout == cold.stdout
    assert cold_seconds < 120          # the measured figure (README) is far below; this only catches a hang


def test_a_served_model_compiles_every_kernel_the_cold_check_looks_for(tmp_path):
    """The check names only kernels that serving compiles: after one frozen pass of the paper's model
    (224 px: maps of 112 down to 14 pixels) with an empty cache, nothing is left cold, so the next
    command says nothing. (The bundled model: the test above.)"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    code = ("import numpy as np; from minivgg import VGG8; from minivgg.nn.compiled import cache_is_cold; "
            "VGG8(image_size=224).freeze().predict_proba(np.zeros((1, 3, 224, 224), np.float32)); "
            "print(cache_is_cold())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
