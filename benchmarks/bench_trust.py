"""Can I trust this prediction? Out-of-distribution flags and calibration of a model, measured.

    python benchmarks/bench_trust.py [--model M] [--work /tmp/minivgg-trust] [--fresh-seeds 2 3] [--fresh-n 200]
                                     [--json]

For a model trained on phantoms (the bundled one by default; its training set is
``write_phantoms(dir, 1600, seed=0, difficulty="easy")``, split by
``stratified_split(labels, 0.2, 0)``: scripts/make_bundled_model.py), it

1. compares out-of-distribution scores, each flagging above the 99% quantile of its scores
   on the 320 validation images: the energy score (Liu et al. 2020), the maximum softmax
   probability (Hendrycks & Gimpel 2017), the Mahalanobis score on the penultimate dense
   features (``classifier.4``) and the Mahalanobis score on pooled conv features
   (``ood.FEATURE_LAYER``, the detector stored in the model file, as shipped). It prints the share
   flagged of: fresh phantoms (seeds not used in training), transformed phantoms, blank and
   noise images, matplotlib's sample pictures, and the real radiographs in
   ``../shared/data`` (or ``$MINIVGG_SHARED_DATA``) when present;
2. reports ECE (15 bins), NLL and Brier score of the fresh phantoms before and after the
   model's temperature;
3. counts the printed probabilities (``minivgg predict``'s text and JSON) that show 0 or 1
   while being more than 1e-6 away from it (the target is none).

The method was chosen on the phantom and synthetic columns; the real radiographs were
looked at only afterwards, so their column is a test of the choice, not part of it.
"""

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivgg import (
    BUNDLED_MODEL,  # noqa: E402
    load_model,  # noqa: E402
)
from minivgg.app.predict import format_probability  # noqa: E402
from minivgg.imaging.datasets import FolderDataset, stratified_split  # noqa: E402
from minivgg.imaging.imageio import load_image  # noqa: E402
from minivgg.imaging.phantoms import write_phantoms  # noqa: E402
from minivgg.imaging.preprocess import finish, preprocess  # noqa: E402
from minivgg.nn.loss import softmax  # noqa: E402
from minivgg.trust.calibration import calibration_report  # noqa: E402
from minivgg.trust.ood import FEATURE_LAYER, MahalanobisDetector, energy_score  # noqa: E402
from tests.shared_data import shared_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ("classifier.4", FEATURE_LAYER)


TRAINING_SET = dict(n=1600, seed=0)      # the bundled model's (scripts/make_bundled_model.py)
DIFFICULTY = "easy"


def phantom_set(work, n, seed):
    folder = Path(work) / f"phantoms-{DIFFICULTY}-{n}-seed{seed}"
    if not (folder / "images").is_dir():
        write_phantoms(folder, n, seed=seed, difficulty=DIFFICULTY)
    return folder / "images"


def run(model, x):
    """logits and the captured layers of model inputs ``x``."""
    logits, captured = model.infer(x, capture=CAPTURE)
    return {"logits": logits, **captured}


def sample_pictures(settings):
    """matplotlib's bundled sample pictures: a photograph, logos, an MRI slice, two elevation maps."""
    import matplotlib.cbook as cbook
    folder = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).parent
    grays = [load_image(folder / f) for f in ("grace_hopper.jpg", "logo2.png", "Minduka_Present_Blue_Pack.png")]
    with gzip.open(folder / "s1045.ima.gz") as f:
        grays.append(np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float32))
    grays.append(np.load(folder / "jacksboro_fault_dem.npz")["elevation"].astype(np.float32))
    grays.append(np.load(folder / "topobathy.npz")["topo"].astype(np.float32))
    return np.stack([preprocess((g - g.min()) / np.ptp(g), settings) for g in grays])


def collect(model, work, fresh_seeds, fresh_n=200):
    """Model outputs of every image set, by name."""
    s = model.preprocessing
    train = FolderDataset(phantom_set(work, **TRAINING_SET), s, class_names=model.class_names)
    train_idx, val_idx = stratified_split(train.labels, 0.2, 0)
    sets = {}
    for name, idx in (("train", train_idx), ("validation", val_idx)):
        sets[name] = {**run(model, train.batch(idx)[0]), "labels": train.labels[idx]}
    for seed in fresh_seeds:
        ds = FolderDataset(phantom_set(work, fresh_n, seed), s, class_names=model.class_names)
        sets[f"fresh seed {seed}"] = {**run(model, ds.batch(np.arange(len(ds)))[0]), "labels": ds.labels}
    first = FolderDataset(phantom_set(work, fresh_n, fresh_seeds[0]), s, class_names=model.class_names).images[:60]
    for name, change in (("rotated 90", lambda a: np.rot90(a)), ("rotated 180", lambda a: np.rot90(a, 2)),
                         ("mirrored", lambda a: a[:, ::-1]), ("inverted", lambda a: 1 - a)):
        sets[name] = run(model, np.stack([finish(np.ascontiguousarray(change(a)), s) for a in first]))
    rng = np.random.default_rng(5)
    blank = [np.full((256, 256), v, np.float32) for v in (0, 0.25, 0.5, 0.75, 1)]
    noise = [rng.random((256, 256), dtype=np.float32) for _ in range(5)]
    noise += [np.clip(rng.normal(0.3, 0.1, (256, 256)), 0, 1).astype(np.float32) for _ in range(5)]
    sets["blank"] = run(model, np.stack([preprocess(a, s) for a in blank]))
    sets["noise"] = run(model, np.stack([preprocess(a, s) for a in noise]))
    sets["sample pictures"] = run(model, sample_pictures(s))
    real = shared_data()
    for name, folder in (("real wrists", real / "ramw600-wrist-sample"), ("real children", real / "pediatric-hands")):
        files = sorted(folder.rglob("*.png"))
        if files:
            sets[name] = run(model, np.stack([preprocess(load_image(f), s) for f in files]))
    return sets


def compare_scores(model, sets):
    """Share flagged per set and method, each method thresholded at the 99% validation quantile."""
    train = sets["train"]
    penultimate = MahalanobisDetector.fit(train["classifier.4"], train["labels"], model.num_classes, "classifier.4")
    methods = {
        "energy (Liu 2020)": lambda d: energy_score(d["logits"]),
        "max softmax (Hendrycks 2017)": lambda d: -softmax(d["logits"]).max(axis=1),
        "Mahalanobis, classifier.4": lambda d: penultimate.score(d["classifier.4"]),
    }
    if model.ood is not None:
        methods[f"Mahalanobis, pooled {FEATURE_LAYER} (shipped)"] = lambda d: model.ood.score(d[FEATURE_LAYER])
    table = {}
    for method, score in methods.items():
        if "shipped" in method:
            threshold = model.ood.threshold
        else:
            threshold = float(np.quantile(score(sets["validation"]), 0.99))
        table[method] = {name: float((score(d) > threshold).mean()) for name, d in sets.items()
                         if name not in ("train", "validation")}
    return table


def printed_extremes(probs):
    """How many probabilities print (text and JSON) as 0 or 1 while more than 1e-6 away from it."""
    p = probs.ravel()
    text = np.array([float(format_probability(v)) for v in p])
    rounded = np.round(p, 6)                             # what predict --json writes
    bad = lambda shown: int((((shown == 0) | (shown == 1)) & (np.abs(shown - p) > 1e-6)).sum())  # noqa: E731
    return {"text": bad(text), "json": bad(rounded), "probabilities": int(p.size)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--work", default="/tmp/minivgg-trust", help="where the phantoms are drawn (kept for reruns)")
    parser.add_argument("--fresh-seeds", type=int, nargs="+", default=[2, 3], help="phantom seeds not used in training")
    parser.add_argument("--fresh-n", type=int, default=200, help="phantoms per fresh seed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = load_model(args.model)
    sets = collect(model, args.work, args.fresh_seeds, args.fresh_n)
    table = compare_scores(model, sets)
    calibration = {name: calibration_report(d["logits"], d["labels"], model.temperature)
                   for name, d in sets.items() if name.startswith("fresh")}
    extremes = printed_extremes(np.concatenate([model.softmax(d["logits"]) for d in sets.values()]))
    sizes = {name: len(d["logits"]) for name, d in sets.items()}
    if args.json:
        print(json.dumps({"model": args.model, "sizes": sizes, "flagged": table, "calibration": calibration,
                          "printed_extremes": extremes}, indent=1))
        return
    names = [n for n in sets if n not in ("train", "validation")]
    print(f"model {args.model}; share flagged out of distribution (threshold: 99% quantile of "
          f"{sizes['validation']} validation phantoms)")
    print(f"{'method':44}" + "".join(f"{n[:13]:>14}" for n in names))
    print(f"{'(images)':44}" + "".join(f"{sizes[n]:>14}" for n in names))
    for method, row in table.items():
        print(f"{method:44}" + "".join(f"{row[n]:>14.3f}" for n in names))
    print(f"\ncalibration on fresh phantoms (temperature {model.temperature:.4g} from the model file)")
    for name, c in calibration.items():
        print(f"  {name} ({c['n']}): ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f}, "
              f"NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}, "
              f"Brier {c['brier_before']:.4f} -> {c['brier_after']:.4f}")
    print(f"\nprobabilities printed as 0 or 1 while more than 1e-6 away: text {extremes['text']}, "
          f"JSON {extremes['json']} (of {extremes['probabilities']})")


if __name__ == "__main__":
    main()
