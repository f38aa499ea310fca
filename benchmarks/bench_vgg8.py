"""Speed and memory of VGG8: minivgg against the identical PyTorch model, interleaved round by round.

    python benchmarks/bench_vgg8.py                 # paper VGG8, 224x224, batch 16: a table
    python benchmarks/bench_vgg8.py --json          # one JSON object (keys below)
    python benchmarks/bench_vgg8.py --batch 1 --rounds 7
    python benchmarks/bench_vgg8.py --no-torch      # minivgg alone, with its per-layer table

This machine may be shared, and two frameworks timed one after the other measure the
neighbours as much as the code (the same code gave ratios of 0.62 and 1.65 minutes
apart). So each framework lives in its own worker process (so that its peak resident
memory is its own, and neither library's threads spin beside the other's), and the two
are timed *alternately*: in every round each worker runs one inference and one training
step, and the order of the two workers flips from round to round. A round's ratio is
minivgg's time over PyTorch's in that round; the report is the median of the per-round
ratios, with their minimum and maximum as the spread.

minivgg's inference runs on a frozen model (``VGG8.freeze``: kernel transforms computed once),
as ``minivgg predict`` and ``explain`` serve it; its training step on a second, unfrozen one.
PyTorch runs in its default (eager) mode.

Both workers use 2 threads (``--threads``): minivgg through :mod:`minivgg.nn.threads`,
PyTorch through ``torch.set_num_threads``; both flush subnormal floats to zero
(:mod:`minivgg.nn.denormals`, ``torch.set_flush_denormal``). The first round is a warm-up (numba's cache,
first-touch page faults) and is not counted.

JSON keys: infer_ms_per_img, train_ms_per_img, peak_rss_mb, torch_infer_ms_per_img,
torch_train_ms_per_img, torch_peak_rss_mb (medians over rounds; RSS is each worker's
peak), infer_ratio, train_ratio, rss_ratio (minivgg / PyTorch: below 1 means minivgg is
faster or smaller; the time ratios are medians of per-round ratios), rounds,
infer_ratio_spread and train_ratio_spread ([min, max] of the per-round ratios),
per_round_ms_per_img (every round's time, per framework and operation),
OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE (as found in the environment), threads, and
``layers`` and ``torch_layers``: per-layer forward/backward milliseconds per image (each layer
called on its own, median of 3 passes; PyTorch's backward per module by ``torch.autograd.grad``).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the two workers


def minivgg_worker(batch, size, threads):
    """Returns (infer, train_step, layers): two timed callables and a per-layer profiler."""
    import numpy as np

    from minivgg import VGG8, Adam, Tape, softmax_cross_entropy
    from minivgg.nn.threads import set_threads

    set_threads(threads)
    model = VGG8(image_size=size, seed=0)
    served = VGG8(image_size=size, seed=0).freeze()      # inference as the commands serve it (VGG8.freeze)
    opt = Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    y = rng.integers(0, 2, batch)
    drop_rng = np.random.default_rng(1)

    def infer():
        served.forward(x)

    spent = {}

    def train_step():
        # As minivgg.training.train does: the last step's gradients lend their memory to this one.
        tape = Tape(reuse=spent)
        logits = model.forward(x, train=True, tape=tape, rng=drop_rng)
        _, dlogits = softmax_cross_entropy(logits, y)
        grads = model.backward(dlogits, tape, need_input_grad=False)[1]
        opt.step(grads)
        spent.update(grads)

    def layers():
        """Training passes driven layer by layer: each layer's forward and backward ms per image (median of 3).

        Each layer is called on its own, so the model's two fusions (a convolution applying
        its ReLU, ReLU + pool backward in one pass) are not in these figures.
        """
        times = []
        for _ in range(3):
            rows, caches, h = [], [], x
            for name, layer in model.layers:
                t = time.perf_counter()
                h, cache = layer.forward(h, train=True, rng=drop_rng)
                rows.append([name, repr(layer), time.perf_counter() - t])
                caches.append(cache)
            _, g = softmax_cross_entropy(h, y)
            for i in reversed(range(len(rows))):
                t = time.perf_counter()
                g, _ = model.layers[i][1].backward(g, caches[i], need_dx=i > 0)
                rows[i].append(time.perf_counter() - t)
            times.append(rows)
        return _layer_table(times, batch)
    return infer, train_step, layers


def torch_worker(batch, size, threads):
    import numpy as np
    import torch

    from minivgg import VGG8
    from tests.torch_reference import torch_vgg8

    torch.set_num_threads(threads)
    # As minivgg does (minivgg.nn.denormals): the benchmark fits one fixed batch, its loss soon
    # nears 0 and its gradients turn subnormal, which made single PyTorch rounds 30x slower.
    torch.set_flush_denormal(True)
    model = torch_vgg8(VGG8(image_size=size, seed=0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 2, batch))

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)

    def train_step():
        model.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    def layers():
        """The same per-layer table for PyTorch: each module's forward, and its backward by autograd.grad."""
        model.train()
        modules = [(f"features.{i}", m) for i, m in enumerate(model.features)] + [("flatten", torch.nn.Flatten())]
        modules += [(f"classifier.{i}", m) for i, m in enumerate(model.classifier)]
        times = []
        for _ in range(3):
            rows, records, h = [], [], x
            for name, module in modules:
                inp = h.detach().requires_grad_(name != "features.0")
                t = time.perf_counter()
                h = module(inp)
                rows.append([name, type(module).__name__, time.perf_counter() - t])
                records.append((inp, h))
            g = torch.autograd.grad(torch.nn.functional.cross_entropy(h, y), h)[0]
            for i in reversed(range(len(rows))):
                inp, out = records[i]
                wrt = ([inp] if inp.requires_grad else []) + list(modules[i][1].parameters())
                t = time.perf_counter()
                got = torch.autograd.grad(out, wrt, g) if wrt else ()
                rows[i].append(time.perf_counter() - t)
                g = got[0] if inp.requires_grad else g
            times.append(rows)
        return _layer_table(times, batch)
    return infer, train_step, layers


def _layer_table(times, batch):
    """[{layer, kind, forward_ms, backward_ms}] per image, medians over the passes in ``times``."""
    table = []
    for i, (name, kind, _, _) in enumerate(times[0]):
        forward = _median([rows[i][2] for rows in times]) * 1000 / batch
        backward = _median([rows[i][3] for rows in times]) * 1000 / batch
        table.append({"layer": name, "kind": kind, "forward_ms": forward, "backward_ms": backward})
    return table


def serve(kind, batch, size, threads):
    """Worker process: build the model, then time one operation per line read from stdin."""
    infer, train_step, layers = (minivgg_worker if kind == "minivgg" else torch_worker)(batch, size, threads)
    ops = {"infer": infer, "train": train_step}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        op = line.strip()
        if op == "quit":
            break
        if op == "layers":
            print(json.dumps({"layers": layers()}), flush=True)
            continue
        if op == "rss":
            print(json.dumps({"peak_rss_mb": _peak_rss_mb()}), flush=True)
            continue
        t = time.perf_counter()
        ops[op]()
        print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)


class Worker:
    def __init__(self, kind, args):
        cmd = [sys.executable, __file__, "--worker", kind, "--batch", str(args.batch),
               "--image-size", str(args.image_size), "--threads", str(args.threads)]
        self.kind = kind
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.read()

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.kind} worker failed (see its error above)")
        return json.loads(line)

    def ask(self, op):
        self.proc.stdin.write(op + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def _torch_available():
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def measure(args):
    ours = Worker("minivgg", args)
    theirs = Worker("torch", args) if not args.no_torch and _torch_available() else None
    times = {(w, op): [] for w in ("minivgg", "torch") for op in ("infer", "train")}
    ratios = {"infer": [], "train": []}
    for r in range(args.rounds + 1):                     # round 0 is the warm-up
        workers = [ours, theirs] if r % 2 == 0 else [theirs, ours]
        for op in ("infer", "train"):
            got = {w.kind: w.ask(op)["seconds"] for w in workers if w is not None}
            if r == 0:
                continue
            for kind, seconds in got.items():
                times[(kind, op)].append(seconds * 1000 / args.batch)
            if theirs is not None:
                ratios[op].append(got["minivgg"] / got["torch"])
    result = {"batch": args.batch, "image_size": args.image_size, "rounds": args.rounds, "threads": args.threads,
              "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
              "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
              "infer_ms_per_img": _median(times[("minivgg", "infer")]),
              "train_ms_per_img": _median(times[("minivgg", "train")]),
              "peak_rss_mb": ours.ask("rss")["peak_rss_mb"], "layers": ours.ask("layers")["layers"],
              "per_round_ms_per_img": {f"{kind}_{op}": [round(t, 2) for t in ts]
                                       for (kind, op), ts in times.items() if ts}}
    if theirs is not None:
        result.update(torch_infer_ms_per_img=_median(times[("torch", "infer")]),
                      torch_train_ms_per_img=_median(times[("torch", "train")]),
                      torch_peak_rss_mb=theirs.ask("rss")["peak_rss_mb"],
                      torch_layers=theirs.ask("layers")["layers"])
        result.update(infer_ratio=_median(ratios["infer"]), train_ratio=_median(ratios["train"]),
                      rss_ratio=result["peak_rss_mb"] / result["torch_peak_rss_mb"],
                      infer_ratio_spread=[min(ratios["infer"]), max(ratios["infer"])],
                      train_ratio_spread=[min(ratios["train"]), max(ratios["train"])])
        theirs.close()
    ours.close()
    return result


def print_table(result):
    nan = float("nan")
    print(f"VGG8 {result['image_size']}x{result['image_size']}, batch {result['batch']}, {result['threads']} threads, "
          f"{result['rounds']} interleaved rounds (OPENBLAS_CORETYPE={result['OPENBLAS_CORETYPE']}, "
          f"OPENBLAS_L2_SIZE={result['OPENBLAS_L2_SIZE']})")
    print(f"{'':22}{'minivgg':>10}{'pytorch':>10}{'ratio':>8}   spread (min-max of rounds)")
    for label, ours, theirs, ratio in [
            ("inference ms/image", "infer_ms_per_img", "torch_infer_ms_per_img", "infer_ratio"),
            ("train step ms/image", "train_ms_per_img", "torch_train_ms_per_img", "train_ratio"),
                                       ("peak RSS MB", "peak_rss_mb", "torch_peak_rss_mb", "rss_ratio")]:
        spread = result.get(ratio + "_spread")
        shown = f"   {spread[0]:.2f}-{spread[1]:.2f}" if spread else ""
        print(f"{label:22}{result[ours]:10.1f}{result.get(theirs, nan):10.1f}{result.get(ratio, nan):8.2f}{shown}")
    print("\nper-layer time, ms/image (each layer on its own; median of 3 passes)")
    theirs = {entry["layer"]: entry for entry in result.get("torch_layers", [])}
    print(f"{'layer':16}{'kind':22}{'forward':>10}{'backward':>10}{'pytorch f':>11}{'pytorch b':>11}")
    for entry in result["layers"]:
        other = theirs.get(entry["layer"], {})
        print(f"{entry['layer']:16}{entry['kind']:22}{entry['forward_ms']:10.2f}{entry['backward_ms']:10.2f}"
              f"{other.get('forward_ms', nan):11.2f}{other.get('backward_ms', nan):11.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--worker", choices=["minivgg", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve(args.worker, args.batch, args.image_size, args.threads)
        return
    result = measure(args)
    print(json.dumps(result)) if args.json else print_table(result)


if __name__ == "__main__":
    main()
