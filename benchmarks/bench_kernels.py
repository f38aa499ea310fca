"""Which convolution algorithm is fastest for which layer: the measurements behind ``conv.algorithm_for``.

    python benchmarks/bench_kernels.py          # the paper's layers at batch 1 and 16, the bundled model's at 32
    python benchmarks/bench_kernels.py --json
    python benchmarks/bench_kernels.py --sets bundled32 --rounds 9

For every layer shape (batch N, C -> K channels, side S) it times the forward pass, ``dx``
and ``dW`` of each algorithm that applies: the direct loop (forward only, few channels),
im2col, Winograd F(2x2, 3x3) and F(4x4, 3x3). The algorithms are timed *in turn within
each round* (this machine is shared: a neighbour's burst then slows all of them in that
round, not one), and the table gives each one's median over rounds, in ms per call, with
the algorithm the dispatch rule picks and the fastest one measured. The error of F(4x4,
3x3) is in ``tests/test_kernels.py``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivgg.nn import conv, winograd  # noqa: E402
from minivgg.nn.winograd4 import F4  # noqa: E402

PAPER = [(64, 128, 112), (128, 256, 56), (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 14)]
BUNDLED = [(16, 32, 64), (32, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 128, 8)]
SETS = {"paper1": (1, [(3, 64, 224)] + PAPER), "paper16": (16, [(3, 64, 224)] + PAPER),
        "bundled32": (32, [(3, 16, 128)] + BUNDLED), "tiny": (2, [(3, 8, 16), (8, 8, 16)])}   # tiny: for the tests


def algorithms(C):
    """name -> (forward, dx, dW) callables of (x, w, b, dout); None where an algorithm has no such pass."""
    found = {"im2col": (lambda x, w, b, d: conv.conv3x3_forward_im2col(x, w, b, True),
                        lambda x, w, b, d: conv.conv3x3_input_grad_im2col(d, w),
                        lambda x, w, b, d: conv.conv3x3_weight_grad_im2col(d, x))}
    if C < conv.WINOGRAD_MIN_CHANNELS:
        found["direct"] = (lambda x, w, b, d: conv.conv3x3_forward_direct(x, w, b, True), None, None)
    for scheme in (winograd.F2, F4):
        found[scheme.name] = (lambda x, w, b, d, s=scheme: winograd.conv3x3_forward(x, w, b, True, s),
                              lambda x, w, b, d, s=scheme: winograd.conv3x3_input_grad(d, w, s),
                              lambda x, w, b, d, s=scheme: winograd.conv3x3_weight_grad(d, x, s))
    return found


def picked(x, rule=conv.algorithm_for):
    chosen = rule(x)
    return chosen if isinstance(chosen, str) else chosen.name


def measure(sets, rounds):
    rng = np.random.default_rng(0)
    rows = []
    for name in sets:
        N, layers = SETS[name]
        for C, K, S in layers:
            x = np.maximum(rng.standard_normal((N, C, S, S), dtype=np.float32), 0)
            w = (rng.standard_normal((K, C, 3, 3)) * np.sqrt(2 / (9 * C))).astype(np.float32)
            b = np.zeros(K, np.float32)
            dout = rng.standard_normal((N, K, S, S), dtype=np.float32)
            found = algorithms(C)
            times = {(a, p): [] for a, passes in found.items() for p, f in enumerate(passes) if f is not None}
            for r in range(rounds + 1):                          # round 0 warms up (numba's cache, pages)
                for (a, p) in times:
                    t = time.perf_counter()
                    found[a][p](x, w, b, dout)
                    if r:
                        times[(a, p)].append((time.perf_counter() - t) * 1000)
            ms = {f"{a}/{('forward', 'dx', 'dW')[p]}": float(np.median(v)) for (a, p), v in times.items()}
            fastest = {p: min((v, k.split("/")[0]) for k, v in ms.items() if k.endswith(p))[1]
                       for p in ("forward", "dx", "dW")}
            rows.append({"set": name, "N": N, "C": C, "K": K, "S": S, "ms": ms, "fastest": fastest,
                         "picked_forward": picked(x), "picked_dx": picked(dout),
                         "picked_dW": picked(x, conv.weight_grad_algorithm_for)})
    return rows


def print_table(rows):
    names = ["direct", "im2col", winograd.F2.name, F4.name]
    print("median ms per call over rounds (forward / dx / dW); 'picked': conv.algorithm_for's choice "
          "(dW: conv.weight_grad_algorithm_for's)")
    print(f"{'set':10}{'layer':>20}  " + "".join(f"{n:>24}" for n in names)
          + "   picked (fwd, dx, dW)   fastest (fwd, dx, dW)")
    for r in rows:
        cells = []
        for n in names:
            vals = [r["ms"].get(f"{n}/{p}") for p in ("forward", "dx", "dW")]
            cells.append(" / ".join("-" if v is None else f"{v:.1f}" for v in vals) if any(vals) else "")
        layer = f"{r['N']}x{r['C']}->{r['K']} {r['S']}px"
        print(f"{r['set']:10}{layer:>20}  " + "".join(f"{c:>24}" for c in cells) +
              f"   {r['picked_forward']}, {r['picked_dx']}, {r['picked_dW']}   " + ", ".join(r["fastest"].values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["paper1", "paper16", "bundled32"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.sets, args.rounds)
    print(json.dumps(rows)) if args.json else print_table(rows)


if __name__ == "__main__":
    main()
