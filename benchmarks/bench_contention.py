"""Kernel-SHAP as the terminal app runs it (in a worker thread), under two thread policies.

    python benchmarks/bench_contention.py [--rounds 3] [--budget 2000] [--busy]

* ``openblas``: one compute thread, with OpenBLAS's own 2 threads inside every product
  (what a NumPy program gets by default);
* ``pool``: minivgg's pool of 2 threads with every BLAS single-threaded
  (:mod:`minivgg.nn.threads`, what minivgg does).

Each policy runs in a fresh process, alternating, ``--rounds`` times; ``--busy`` starts
one busy process (a Python spin loop) beside them, the neighbour a shared server has.
Prints the seconds of each run.
"""

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one_run(policy, budget):
    """Seconds of one Kernel-SHAP call (bundled model, an RA sample) in a worker thread."""
    from threadpoolctl import threadpool_limits

    from minivgg import BUNDLED_MODEL, BUNDLED_SAMPLES, load_model
    from minivgg.explain import KernelSHAP
    from minivgg.nn import threads
    model = load_model(BUNDLED_MODEL)
    x = model.read(sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0])
    if policy == "openblas":
        threads.set_threads(1)
        threadpool_limits(2, user_api="blas")
    else:
        threads.set_threads(2)
    KernelSHAP(model, budget=20)(x, 1)                                   # warm: kernels, caches
    took = {}

    def work():
        started = time.perf_counter()
        KernelSHAP(model, budget=budget, tolerance=None)(x, 1)
        took["s"] = time.perf_counter() - started
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return took["s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--busy", action="store_true", help="one busy process beside the runs")
    parser.add_argument("--policy", choices=["openblas", "pool"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.policy:
        print(one_run(args.policy, args.budget))
        return
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        for r in range(args.rounds):
            for policy in ("openblas", "pool") if r % 2 == 0 else ("pool", "openblas"):
                out = subprocess.run([sys.executable, __file__, "--policy", policy, "--budget", str(args.budget)],
                                     capture_output=True, text=True, check=True).stdout
                print(f"round {r + 1} {policy:8} {float(out):6.1f} s", flush=True)
    finally:
        if busy:
            busy.kill()


if __name__ == "__main__":
    main()
