"""Speed and memory of VGG8: minivgg against the identical PyTorch model, same machine, same run.

    python benchmarks/bench_vgg8.py                 # paper VGG8, 224x224, batch 16: a table
    python benchmarks/bench_vgg8.py --json          # one JSON object (keys below)
    python benchmarks/bench_vgg8.py --batch 8 --image-size 128 --iters 5

Each framework runs in its own subprocess so that its peak resident memory
(``ru_maxrss``: imports, weights, activations, optimiser state) is its own. Timings are
medians over ``--iters`` after one warm-up iteration (which also fills numba's cache).
PyTorch runs with ``torch.set_num_threads(2)``; it is skipped when not importable.

JSON keys: infer_ms_per_img, train_ms_per_img, peak_rss_mb, torch_infer_ms_per_img,
torch_train_ms_per_img, torch_peak_rss_mb, infer_ratio, train_ratio, rss_ratio
(ratios are minivgg / PyTorch: below 1 means minivgg is faster or smaller), plus
``layers``: per-layer forward/backward milliseconds per image for minivgg.
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
    return values[len(values) // 2]


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_minivgg(batch, size, iters):
    import numpy as np

    from minivgg import VGG8, Adam, Tape, softmax_cross_entropy

    model = VGG8(image_size=size, seed=0)
    opt = Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    y = rng.integers(0, 2, batch)

    drop_rng = np.random.default_rng(1)

    def infer():
        model.forward(x)

    def train_step():
        tape = Tape()
        logits = model.forward(x, train=True, tape=tape, rng=drop_rng)
        _, dlogits = softmax_cross_entropy(logits, y)
        opt.step(model.backward(dlogits, tape, need_input_grad=False)[1])

    infer_t, train_t = [], []
    for i in range(iters + 1):          # iteration 0 is the warm-up
        t = time.perf_counter(); infer(); dt = time.perf_counter() - t
        if i:
            infer_t.append(dt)
        t = time.perf_counter(); train_step(); dt = time.perf_counter() - t
        if i:
            train_t.append(dt)

    # Per-layer breakdown: one training pass driven layer by layer.
    layers, caches = [], []
    h = x
    for name, layer in model.layers:
        t = time.perf_counter(); h, cache = layer.forward(h, train=True, rng=drop_rng); dt = time.perf_counter() - t
        layers.append({"layer": name, "kind": repr(layer), "forward_ms": dt * 1000 / batch})
        caches.append(cache)
    _, g = softmax_cross_entropy(h, y)
    for i in reversed(range(len(layers))):
        layer = model.layers[i][1]
        t = time.perf_counter(); g, _ = layer.backward(g, caches[i], need_dx=i > 0); dt = time.perf_counter() - t
        layers[i]["backward_ms"] = dt * 1000 / batch
    return {"infer_ms_per_img": _median(infer_t) * 1000 / batch,
            "train_ms_per_img": _median(train_t) * 1000 / batch,
            "peak_rss_mb": _peak_rss_mb(), "layers": layers}


def run_torch(batch, size, iters):
    import numpy as np
    import torch

    from minivgg import VGG8
    from tests.torch_reference import torch_vgg8

    torch.set_num_threads(2)
    ours = VGG8(image_size=size, seed=0)
    model = torch_vgg8(ours)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    del ours
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

    infer_t, train_t = [], []
    for i in range(iters + 1):
        t = time.perf_counter(); infer(); dt = time.perf_counter() - t
        if i:
            infer_t.append(dt)
        t = time.perf_counter(); train_step(); dt = time.perf_counter() - t
        if i:
            train_t.append(dt)
    return {"torch_infer_ms_per_img": _median(infer_t) * 1000 / batch,
            "torch_train_ms_per_img": _median(train_t) * 1000 / batch,
            "torch_peak_rss_mb": _peak_rss_mb(), "torch_version": torch.__version__}


def _in_subprocess(worker, args):
    cmd = [sys.executable, __file__, "--worker", worker, "--batch", str(args.batch),
           "--image-size", str(args.image_size), "--iters", str(args.iters)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{worker} benchmark failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _torch_available():
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--worker", choices=["minivgg", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        run = run_minivgg if args.worker == "minivgg" else run_torch
        print(json.dumps(run(args.batch, args.image_size, args.iters)))
        return

    result = {"batch": args.batch, "image_size": args.image_size, "iters": args.iters,
              "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
              "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}
    result.update(_in_subprocess("minivgg", args))
    if not args.no_torch and _torch_available():
        result.update(_in_subprocess("torch", args))
        for key, ours, theirs in [("infer_ratio", "infer_ms_per_img", "torch_infer_ms_per_img"),
                                  ("train_ratio", "train_ms_per_img", "torch_train_ms_per_img"),
                                  ("rss_ratio", "peak_rss_mb", "torch_peak_rss_mb")]:
            result[key] = result[ours] / result[theirs]
    if args.json:
        print(json.dumps(result))
        return

    print(f"VGG8 {args.image_size}x{args.image_size}, batch {args.batch}, median of {args.iters} "
          f"(OPENBLAS_CORETYPE={result['OPENBLAS_CORETYPE']}, OPENBLAS_L2_SIZE={result['OPENBLAS_L2_SIZE']})")
    print(f"{'':22}{'minivgg':>12}{'pytorch':>12}{'ratio':>8}")
    for label, ours, theirs, ratio in [("inference ms/image", "infer_ms_per_img", "torch_infer_ms_per_img", "infer_ratio"),
                                       ("train step ms/image", "train_ms_per_img", "torch_train_ms_per_img", "train_ratio"),
                                       ("peak RSS MB", "peak_rss_mb", "torch_peak_rss_mb", "rss_ratio")]:
        print(f"{label:22}{result[ours]:12.1f}{result.get(theirs, float('nan')):12.1f}{result.get(ratio, float('nan')):8.2f}")
    print("\nper-layer time, minivgg (ms/image)")
    print(f"{'layer':16}{'kind':22}{'forward':>10}{'backward':>10}")
    for entry in result["layers"]:
        print(f"{entry['layer']:16}{entry['kind']:22}{entry['forward_ms']:10.2f}{entry['backward_ms']:10.2f}")


if __name__ == "__main__":
    main()
