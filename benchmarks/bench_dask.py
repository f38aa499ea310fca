"""Does Dask cost anything? Throughput of ``predict --dask`` (LocalCluster) against the best single process.

    python benchmarks/bench_dask.py                 # 1000 phantoms, bundled model, 3 rounds: a table
    python benchmarks/bench_dask.py --json          # one JSON object
    python benchmarks/bench_dask.py --n 200 --rounds 2

The same files are predicted in each round by (a) one process, in-process, with every
core in minivgg's own thread pool (the local path of ``minivgg predict``), for each
batch size in ``--batch-sizes`` (the best one is the reference), and (b) a LocalCluster
sized by ``minivgg.app.cluster.start_client`` (one worker process per core, one thread each),
started once and warmed. The two alternate within each round, in alternating order, so
that a busy neighbour slows both. Throughput is images per second; the ratio is Dask's
over the best single process (the target: at least 0.9).

For ``docs/scaling.md`` it also measures, on one worker core: the cost per image of
predict, Grad-CAM and Kernel-SHAP (default settings), and the peak resident memory of
the Dask workers (after all the rounds).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivgg import BUNDLED_MODEL  # noqa: E402
from minivgg.app.cluster import chunked, predict_chunk, run_chunks, start_client  # noqa: E402
from minivgg.app.predict import predict_files  # noqa: E402
from minivgg.deploy.modelfile import load_model  # noqa: E402
from minivgg.imaging.phantoms import write_phantoms  # noqa: E402


def single_process(model, files, batch_size):
    started = time.perf_counter()
    for _ in predict_files(model, files, batch_size):
        pass
    return len(files) / (time.perf_counter() - started)


def on_dask(client, files, chunk_size, batch_size):
    started = time.perf_counter()
    for _ in run_chunks(client, predict_chunk, chunked(files, chunk_size), str(BUNDLED_MODEL), batch_size):
        pass
    return len(files) / (time.perf_counter() - started)


def _peak_rss_mb():
    """This process's peak resident memory in MB (run inside each Dask worker)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_costs(files):
    """Per-image seconds of predict, Grad-CAM and SHAP on one thread, and the process's peak RSS (MB)."""
    from minivgg.explain import GradCAM, KernelSHAP
    from minivgg.nn.threads import set_threads
    set_threads(1)
    model = load_model(BUNDLED_MODEL)
    sample = files[:64]
    predict_s = 1 / single_process(model, sample, 16)
    xs = [model.read(f) for f in files[:4]]
    cam, shap = GradCAM(model), KernelSHAP(model)
    cam(xs[0][None])
    started = time.perf_counter()
    for x in xs:
        cam(x[None])
    gradcam_s = (time.perf_counter() - started) / len(xs)
    started = time.perf_counter()
    for x in xs[:2]:
        shap(x)
    shap_s = (time.perf_counter() - started) / 2
    return {"predict_s_per_image": predict_s, "gradcam_s_per_image": gradcam_s, "shap_s_per_image": shap_s,
            "cost_process_peak_rss_mb": _peak_rss_mb()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_phantoms(tmp, args.n, seed=99, size=256)
        files = sorted(Path(tmp, "images").rglob("*.png"))
        model = load_model(BUNDLED_MODEL)
        client, close = start_client(stream=sys.stderr)
        try:
            on_dask(client, files[:64], args.chunk_size, 16)                # warm: model loads, kernels
            single_process(model, files[:64], 16)
            local = {b: [] for b in args.batch_sizes}
            dask, ratios = [], []
            for r in range(args.rounds):
                runs = [("local", b) for b in args.batch_sizes] + [("dask", None)]
                for kind, b in (runs if r % 2 == 0 else runs[::-1]):
                    if kind == "local":
                        local[b].append(single_process(model, files, b))
                    else:
                        dask.append(on_dask(client, files, args.chunk_size, 16))
                ratios.append(dask[-1] / max(local[b][-1] for b in args.batch_sizes))
            workers = len(client.scheduler_info()["workers"])
            worker_rss = client.run(_peak_rss_mb)            # {worker address: MB}, after all the rounds
        finally:
            close()
        costs = worker_costs(files)
    best = max(args.batch_sizes, key=lambda b: statistics.median(local[b]))
    result = {"n": args.n, "rounds": args.rounds, "workers": workers, "chunk_size": args.chunk_size,
              "single_process_images_per_s": {str(b): statistics.median(v) for b, v in local.items()},
              "best_single_process_batch_size": best, "dask_images_per_s": statistics.median(dask),
              "throughput_ratio": statistics.median(ratios), "throughput_ratio_spread": [min(ratios), max(ratios)],
              "dask_worker_peak_rss_mb": max(worker_rss.values()), **costs}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.n} phantoms, {args.rounds} interleaved rounds, LocalCluster of {workers} workers x 1 thread")
    for b, v in local.items():
        print(f"single process, batch {b:3}: {statistics.median(v):7.1f} images/s")
    print(f"Dask LocalCluster:         {result['dask_images_per_s']:7.1f} images/s")
    print(f"ratio (Dask / best single process): {result['throughput_ratio']:.2f} "
          f"(rounds {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.9)")
    print(f"one core: predict {costs['predict_s_per_image'] * 1000:.1f} ms/image, Grad-CAM "
          f"{costs['gradcam_s_per_image'] * 1000:.1f} ms/image, SHAP {costs['shap_s_per_image']:.2f} s/image; "
          f"peak RSS of a Dask worker {result['dask_worker_peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
