"""``minivgg evaluate``: Table 2's metrics with bootstrap intervals, ROC, confusion matrix, reliability."""

from pathlib import Path

import numpy as np

from minivgg.app.predict import assess_dataset
from minivgg.cli.common import load
from minivgg.errors import DatasetError, UsageError
from minivgg.files import prepare_output_dir, write_json
from minivgg.imaging.datasets import FolderDataset
from minivgg.progress import Progress
from minivgg.trust.calibration import calibration_report
from minivgg.trust.metrics import evaluate_predictions, plot_confusion, plot_reliability, plot_roc


def run(args):
    """Table 2's metrics with 95% bootstrap intervals, ROC curve and confusion matrix."""
    model = load(args.model)
    positive = args.positive or model.class_names[-1]
    if positive not in model.class_names:
        raise UsageError(f"--positive {positive!r} is not one of the model's classes {model.class_names}")
    out = prepare_output_dir(args.out)
    progress = Progress(quiet=args.quiet)
    dataset = FolderDataset(args.data, model.preprocessing, class_names=model.class_names,
                            progress=lambda done, total: progress.update("reading", done, total))
    for line in dataset.broken:
        progress.problem(f"minivgg: skipped: {line}")
    found = assess_dataset(model, dataset, np.arange(len(dataset)),
                           progress=lambda done, total: progress.update("predicting", done, total))
    result = evaluate_predictions(dataset.labels, found.probs, model.class_names, positive, n_boot=args.bootstrap,
                                  seed=args.seed)
    result["calibration"] = calibration_report(found.logits, dataset.labels, model.temperature)
    flagged = None if found.in_distribution is None else int((~found.in_distribution).sum())
    result["out_of_distribution"] = None if flagged is None else \
        {"flagged": flagged, "n": len(dataset), "share": flagged / len(dataset), "threshold": model.ood.threshold}
    write_json(out / "metrics.json", result)
    name = Path(args.data).name
    plot_roc(result, out / "roc.png", title=f"ROC, {name}")
    plot_confusion(result, out / "confusion_matrix.png", title=f"Confusion matrix, {name}")
    plot_reliability(found.logits, dataset.labels, model.temperature, out / "reliability.png",
                     title=f"Reliability, {name}")
    print(f"{len(dataset)} images, positive class {positive}")
    for metric in ("accuracy", "sensitivity", "specificity", "precision", "auc"):
        lo, hi = result["ci95"][metric]
        print(f"{metric:12} {result[metric]:.3f}  (95% CI {lo:.3f}-{hi:.3f})")
    c = result["calibration"]
    if model.calibration:
        print(f"calibration  temperature {c['temperature']:.4g}: ECE (15 bins) {c['ece_before']:.4f} -> "
              f"{c['ece_after']:.4f}, Brier {c['brier_before']:.4f} -> {c['brier_after']:.4f}")
    else:
        print(f"calibration  none (raw softmax): ECE (15 bins) {c['ece_before']:.4f}, Brier {c['brier_before']:.4f}")
    if flagged is None:
        print("out of distribution: not known (the model has no detector; fit one with: minivgg calibrate)")
    else:
        print(f"out of distribution: {flagged} of {len(dataset)} images ({flagged / len(dataset):.1%})")
    print(f"wrote {out / 'metrics.json'}, roc.png, confusion_matrix.png, reliability.png")
    return DatasetError.exit_code if dataset.broken else 0
