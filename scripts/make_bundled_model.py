"""Rebuild the model and samples shipped in ``minivgg/data/`` (about 6 minutes on 2 cores).

    python scripts/make_bundled_model.py [--work /tmp/minivgg-bundle]

1. ``minivgg phantoms``: 400 training phantoms (seed 0) and 200 held-out ones (seed 1);
2. ``minivgg train --preset small --seed 0`` on the 400 (80 of them for validation); this
   also fits the out-of-distribution detector, the temperature and the model card;
3. evaluation on the 200 held-out phantoms; the metrics go into the model file;
4. the model (its card with the test metrics too) and six held-out samples (three per
   class) are copied into ``minivgg/data/``.

Everything is seeded, so the result is the same on a machine with the same BLAS.
"""

import argparse
import shutil
from pathlib import Path

import numpy as np

from minivgg.datasets import FolderDataset
from minivgg.files import write_json
from minivgg.metrics import evaluate_predictions
from minivgg.modelfile import load_model, save_model
from minivgg.phantoms import write_phantoms
from minivgg.training import predict_dataset, train_command

DATA = Path(__file__).resolve().parents[1] / "minivgg" / "data"
INTENDED_USE = "teaching and testing; trained on synthetic phantoms; not for diagnosis"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/minivgg-bundle", help="scratch folder")
    work = Path(parser.parse_args().work)
    write_phantoms(work / "train", 400, seed=0)
    write_phantoms(work / "test", 200, seed=1)
    train_command(work / "train" / "images", work / "run", preset="small", seed=0, name="minivgg-phantom-small",
                  intended_use=INTENDED_USE, command="python scripts/make_bundled_model.py")
    model = load_model(work / "run" / "model.npz")
    test = FolderDataset(work / "test" / "images", model.preprocessing, class_names=model.class_names)
    probs = predict_dataset(model, test, np.arange(len(test)))
    metrics = evaluate_predictions(test.labels, probs, model.class_names, "RA", n_boot=1000, seed=0)
    write_json(work / "test_metrics.json", metrics)
    DATA.mkdir(exist_ok=True)
    keep = {k: metrics[k] for k in ("accuracy", "sensitivity", "specificity", "precision", "auc", "ci95", "n")}
    model.extra = {**model.extra, "test_metrics": keep, "trained_on": "400 phantoms, seed 0; tested on 200, seed 1",
                   "reproduce": "python scripts/make_bundled_model.py"}
    model.card["metrics"]["test"] = {k: v for k, v in keep.items() if k != "ci95"}
    save_model(model, DATA / "model.npz")
    samples = DATA / "samples"
    shutil.rmtree(samples, ignore_errors=True)
    for cls in model.class_names:
        (samples / cls).mkdir(parents=True)
        for path in sorted((work / "test" / "images" / cls).glob("*.png"))[:3]:
            shutil.copy(path, samples / cls / path.name)
    print({k: round(v, 3) for k, v in keep.items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
