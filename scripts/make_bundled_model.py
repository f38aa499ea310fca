"""Rebuild the model and samples shipped in ``minivgg/data/`` (see the README, "Bundled model").

    python scripts/make_bundled_model.py [--work /tmp/minivgg-bundle] [--stage1 MODEL]

1. ``minivgg phantoms``: twin phantoms, local lesions only, no marker:
   * stage 1's training folder: 1600 easy ones (seed 0);
   * stage 2's: 1200 easy (seed 0) and 1200 medium (seed 10), the command's default
     difficulty, in one folder (file names prefixed with the difficulty);
   * held out: 200 easy (seed 1) and 200 medium (seed 11).
2. Stage 1, the second bundled model's recipe: the small network from random weights,
   40 epochs on the easy folder, each hand in one of its eight orientations, half of them
   with regions hidden by the image mean. (On easy and medium phantoms at once, with blur
   and sharpening, the network was still at chance after 20 epochs: it first has to find
   the lesions where they are large.) ``--stage1 MODEL`` skips it and starts from that
   model file instead (the second bundled model is stage 1's result).
3. Stage 2: ``minivgg train --preset bundled --init STAGE1`` on the mixed folder for 25
   epochs (480 images for validation): orientations, half of the hands blurred or
   sharpened (so that sharpness is no class cue), half with regions hidden by air (the
   fill of Kernel-SHAP's default baseline). Training also fits the out-of-distribution
   detector, the temperature and the model card, and the explanation card on the
   validation twins (how often each map points at the lesion).
4. Evaluation on the held-out phantoms, per difficulty: Table 2's metrics, the twin swap,
   and the share of healthy phantoms called "RA" once blurred (sigma 2 pixels); they go
   into the model file and its card.
5. The model and six easy held-out samples (three per class) are copied into ``minivgg/data/``.

Everything is seeded, so the result is the same on a machine with the same BLAS. The wall
and CPU time of the whole run are printed at the end.
"""

import argparse
import resource
import shutil
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from minivgg.deploy.modelfile import load_model, save_model
from minivgg.explain.checks import twin_swap
from minivgg.explain.gradcam import default_layer
from minivgg.files import write_json
from minivgg.imaging.datasets import FolderDataset, stratified_split
from minivgg.imaging.imageio import load_image
from minivgg.imaging.phantoms import write_phantoms
from minivgg.imaging.preprocess import preprocess
from minivgg.progress import Progress
from minivgg.training.train import PRESETS, fit, load_folder, predict_dataset, train_command
from minivgg.trust.metrics import evaluate_predictions

DATA = Path(__file__).resolve().parents[1] / "minivgg" / "data"
# (difficulty, seed, images) of each folder.
STAGE1 = (("easy", 0, 1600),)
STAGE2 = (("easy", 0, 1200), ("medium", 10, 1200))
TEST = (("easy", 1, 200), ("medium", 11, 200))
# Stage 1 is the second bundled model's recipe: occlusion by the image mean, no blur.
STAGE1_PRESET = {**PRESETS["bundled"], "augmentation": {"strategy": "none", "orientation": True, "occlusion": 0.5,
                                                        "fill": "mean"}}
STAGE2_EPOCHS = 25
BLUR_SIGMA = 2.0
INTENDED_USE = "teaching and testing; trained on synthetic phantoms; not for diagnosis"


def merged_phantoms(out, sets):
    """Write each ``(difficulty, seed, n)`` of ``sets`` with ``minivgg phantoms`` and merge them into one folder
    data set at ``out`` (images, masks, twins), each file's name prefixed with its difficulty."""
    for difficulty, seed, n in sets:
        part = out.parent / f"{out.name}-{difficulty}"
        write_phantoms(part, n, seed=seed, difficulty=difficulty)
        for kind in ("images", "masks", "twins"):
            for path in sorted((part / kind).glob("*/*.png")):
                target = out / kind / path.parent.name / f"{difficulty}_{path.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)


def stage1(work):
    """Train the second bundled model's recipe on the easy folder; returns its model file."""
    merged_phantoms(work / "stage1", STAGE1)
    progress = Progress()
    dataset = load_folder(work / "stage1" / "images", "bundled", True, progress)
    train_idx, val_idx = stratified_split(dataset.labels, 0.2, 0)
    fit(dataset, train_idx, val_idx, work / "run1", STAGE1_PRESET, seed=0, progress=progress)
    return work / "run1" / "model.npz"


def held_out_metrics(model, folder):
    """Table 2's metrics, the twin swap and the blur check on one held-out phantom folder."""
    test = FolderDataset(folder / "images", model.preprocessing, class_names=model.class_names)
    probs = predict_dataset(model, test, np.arange(len(test)))
    metrics = evaluate_predictions(test.labels, probs, model.class_names, "RA", n_boot=1000, seed=0)
    ra = model.class_names.index("RA")
    sick = sorted((folder / "images" / "RA").glob("*.png"))
    swap = twin_swap(model, [load_image(p) for p in sick], [load_image(folder / "twins" / "RA" / p.name)
                                                            for p in sick],
                     [load_image(folder / "masks" / "RA" / p.name) > 0.5 for p in sick], ra)
    healthy = [load_image(p) for p in sorted((folder / "images" / "Normal").glob("*.png"))]
    blurred = np.stack([preprocess(ndimage.gaussian_filter(g, BLUR_SIGMA), model.preprocessing) for g in healthy])
    keep = {k: metrics[k] for k in ("accuracy", "sensitivity", "specificity", "precision", "auc", "n")}
    keep["twin_swap_flip_rate"] = swap["flip_rate"]
    keep["blurred_normal_called_ra"] = float(np.mean(model.predict_proba(blurred)[:, ra] > 0.5))
    return keep, metrics


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/minivgg-bundle", help="scratch folder")
    parser.add_argument("--stage1", help="a stage-1 model file to start stage 2 from (skips stage 1)")
    args = parser.parse_args()
    work = Path(args.work)
    started = time.perf_counter()
    start = Path(args.stage1) if args.stage1 else stage1(work)
    merged_phantoms(work / "train", STAGE2)
    merged_phantoms(work / "test", TEST)
    train_command(work / "train" / "images", work / "run", preset="bundled", seed=0, epochs=STAGE2_EPOCHS,
                  name="minivgg-phantom-bundled", intended_use=INTENDED_USE, init=start,
                  command="python scripts/make_bundled_model.py")
    model = load_model(work / "run" / "model.npz")
    tests, full = {}, {}
    for difficulty, _, _ in TEST:
        tests[difficulty], full[difficulty] = held_out_metrics(model, work / f"test-{difficulty}")
    write_json(work / "test_metrics.json", full)
    model.extra = {**model.extra, "test_metrics": tests["easy"], "test_metrics_medium": tests["medium"],
                   "gradcam_layer": default_layer(model),
                   "trained_on": "stage 1: 1600 easy twin phantoms (seed 0); stage 2: 1200 easy (seed 0) and 1200 "
                                 "medium (seed 10); tested on 200 easy (seed 1) and 200 medium (seed 11)",
                   "reproduce": "python scripts/make_bundled_model.py"}
    for difficulty, keep in tests.items():
        model.card["metrics"][f"test_{difficulty}"] = keep
    DATA.mkdir(exist_ok=True)
    save_model(model, DATA / "model.npz")
    samples = DATA / "samples"
    shutil.rmtree(samples, ignore_errors=True)
    for cls in model.class_names:
        (samples / cls).mkdir(parents=True)
        for path in sorted((work / "test-easy" / "images" / cls).glob("*.png"))[:3]:
            shutil.copy(path, samples / cls / path.name)
    for difficulty, keep in tests.items():
        print(difficulty, {k: round(v, 3) for k, v in keep.items() if isinstance(v, float)})
    print(f"wall {time.perf_counter() - started:.0f} s, CPU {cpu_seconds():.0f} s (this process, all threads)")


if __name__ == "__main__":
    main()
