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
