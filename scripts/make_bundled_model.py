"""Rebuild the model and samples shipped in ``minivgg/data/`` (see the README, "Bundled model").

    python scripts/make_bundled_model.py [--work /tmp/minivgg-bundle]

1. ``minivgg phantoms``: 1600 twin phantoms to train on (seed 0) and 200 held-out ones
   (seed 1), difficulty easy, local lesions only, no marker;
2. ``minivgg train --preset bundled --seed 0`` on the 1600 (320 of them for validation):
   the small network, trained on hands in all eight orientations;
   training also fits the out-of-distribution detector, the temperature (on the 320
   validation phantoms) and the model card;
3. evaluation on the 200 held-out phantoms, and the twin swap on their RA half; the
   metrics go into the model file and its card;
4. the model and six held-out samples (three per class) are copied into ``minivgg/data/``.

Everything is seeded, so the result is the same on a machine with the same BLAS. The wall
and CPU time of the whole run are printed at the end.
"""

import argparse
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from minivgg.deploy.modelfile import load_model, save_model
from minivgg.explain.checks import twin_swap
from minivgg.explain.gradcam import default_layer
from minivgg.files import write_json
from minivgg.imaging.datasets import FolderDataset
from minivgg.imaging.imageio import load_image
from minivgg.imaging.phantoms import write_phantoms
from minivgg.training.train import predict_dataset, train_command
from minivgg.trust.metrics import evaluate_predictions

DATA = Path(__file__).resolve().parents[1] / "minivgg" / "data"
N_TRAIN, N_TEST = 1600, 200
# The easy phantoms: on medium ones the network was still at chance after 12 epochs.
DIFFICULTY = "easy"
INTENDED_USE = "teaching and testing; trained on synthetic phantoms; not for diagnosis"


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/minivgg-bundle", help="scratch folder")
    work = Path(parser.parse_args().work)
    started = time.perf_counter()
    write_phantoms(work / "train", N_TRAIN, seed=0, difficulty=DIFFICULTY)
    write_phantoms(work / "test", N_TEST, seed=1, difficulty=DIFFICULTY)
    train_command(work / "train" / "images", work / "run", preset="bundled", seed=0, name="minivgg-phantom-bundled",
                  intended_use=INTENDED_USE, command="python scripts/make_bundled_model.py")
    model = load_model(work / "run" / "model.npz")
    test = FolderDataset(work / "test" / "images", model.preprocessing, class_names=model.class_names)
    probs = predict_dataset(model, test, np.arange(len(test)))
    metrics = evaluate_predictions(test.labels, probs, model.class_names, "RA", n_boot=1000, seed=0)
    sick = sorted((work / "test" / "images" / "RA").glob("*.png"))
    swap = twin_swap(model, [load_image(p) for p in sick], [load_image(work / "test" / "twins" / "RA" / p.name)
                                                            for p in sick],
                     [load_image(work / "test" / "masks" / "RA" / p.name) > 0.5 for p in sick],
                     model.class_names.index("RA"))
    metrics["twin_swap_flip_rate"] = swap["flip_rate"]
    write_json(work / "test_metrics.json", metrics)
    keep = {k: metrics[k] for k in ("accuracy", "sensitivity", "specificity", "precision", "auc", "ci95", "n",
                                    "twin_swap_flip_rate")}
    model.extra = {**model.extra, "test_metrics": keep, "gradcam_layer": default_layer(model),
                   "trained_on": f"{N_TRAIN} twin phantoms (seed 0, difficulty easy); "
                                 f"tested on {N_TEST} (seed 1)",
                   "reproduce": "python scripts/make_bundled_model.py"}
    model.card["metrics"]["test"] = {k: v for k, v in keep.items() if k != "ci95"}
    DATA.mkdir(exist_ok=True)
    save_model(model, DATA / "model.npz")
    samples = DATA / "samples"
    shutil.rmtree(samples, ignore_errors=True)
    for cls in model.class_names:
        (samples / cls).mkdir(parents=True)
        for path in sorted((work / "test" / "images" / cls).glob("*.png"))[:3]:
            shutil.copy(path, samples / cls / path.name)
    print({k: round(v, 3) for k, v in keep.items() if isinstance(v, float)})
    print(f"wall {time.perf_counter() - started:.0f} s, CPU {cpu_seconds():.0f} s (this process, all threads)")


if __name__ == "__main__":
    main()
