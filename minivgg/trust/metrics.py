"""The paper's metrics (Table 2) with bootstrap confidence intervals, ROC curves and plots.

For a binary problem with a chosen positive class (RA)::

    accuracy    = (TP + TN) / (TP + TN + FP + FN)
    sensitivity = TP / (TP + FN)          (recall, true-positive rate)
    specificity = TN / (TN + FP)
    precision   = TP / (TP + FP)
    AUC         = P(score of a random positive > score of a random negative), ties count 1/2
                  (the Mann-Whitney statistic, equal to the area under the ROC curve)

A ratio whose denominator is zero is reported as NaN (``null`` in JSON), not 0.
"""

import numpy as np

from minivgg.atomic import atomic_write
from minivgg.nn.loss import softmax
from minivgg.trust.calibration import expected_calibration_error, reliability_bins


def _ratio(a, b):
    return float(a / b) if b else float("nan")


def confusion_matrix(y_true, y_pred, n_classes):
    """``cm[i, j]`` = number of samples of true class ``i`` predicted as ``j``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def auc_score(y_pos, scores):
    """Area under the ROC curve from binary labels (1 = positive) and scores, via ranks."""
    y_pos = np.asarray(y_pos).astype(bool)
    n_pos, n_neg = int(y_pos.sum()), int((~y_pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata
    ranks = rankdata(scores)             # average ranks: ties count one half
    return float((ranks[y_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(y_pos, scores):
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    y_pos = np.asarray(y_pos).astype(bool)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    s, y = np.asarray(scores)[order], y_pos[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(~y)[last_of_tie]
    tpr = np.r_[0, tp / max(y.sum(), 1)]
    fpr = np.r_[0, fp / max((~y).sum(), 1)]
    return fpr, tpr


def binary_metrics(y_true, prob_pos, positive, threshold=0.5):
    """Table 2's metrics for labels ``y_true`` and positive-class probabilities ``prob_pos``."""
    y_pos = np.asarray(y_true) == positive
    pred_pos = np.asarray(prob_pos) >= threshold
    tp, tn = int((y_pos & pred_pos).sum()), int((~y_pos & ~pred_pos).sum())
    fp, fn = int((~y_pos & pred_pos).sum()), int((y_pos & ~pred_pos).sum())
    return {"accuracy": _ratio(tp + tn, len(y_pos)), "sensitivity": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp), "precision": _ratio(tp, tp + fp),
            "auc": auc_score(y_pos, prob_pos), "tp": tp, "tn": tn, "fp": fp, "fn": fn}


METRIC_NAMES = ("accuracy", "sensitivity", "specificity", "precision", "auc")


def bootstrap_ci(y_true, prob_pos, positive, n_boot=1000, seed=0, level=0.95):
    """Percentile bootstrap intervals for each metric: ``{name: [low, high]}``.

    Resamples cases with replacement; resamples where a metric is undefined (e.g. no
    positives drawn) are left out of that metric's interval.
    """
    y_true, prob_pos = np.asarray(y_true), np.asarray(prob_pos)
    rng = np.random.default_rng(seed)
    draws = {m: [] for m in METRIC_NAMES}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_true), len(y_true))
        m = binary_metrics(y_true[idx], prob_pos[idx], positive)
        for name in METRIC_NAMES:
            if np.isfinite(m[name]):
                draws[name].append(m[name])
    alpha = (1 - level) / 2
    return {name: ([float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))] if v else [float("nan")] * 2)
            for name, v in draws.items()}


def evaluate_predictions(y_true, probs, class_names, positive, n_boot=1000, seed=0):
    """Everything ``minivgg evaluate`` reports for one set of predictions (JSON-able)."""
    probs = np.asarray(probs)
    pos = class_names.index(positive)
    result = binary_metrics(y_true, probs[:, pos], pos)
    result["ci95"] = bootstrap_ci(y_true, probs[:, pos], pos, n_boot, seed)
    result["confusion_matrix"] = confusion_matrix(y_true, probs.argmax(axis=1), len(class_names)).tolist()
    fpr, tpr = roc_curve(np.asarray(y_true) == pos, probs[:, pos])
    result["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    result.update(n=int(len(y_true)), positive=positive, class_names=list(class_names))
    return result


def summarise_folds(fold_results):
    """Mean and sample standard deviation of each metric over cross-validation folds."""
    out = {}
    for name in METRIC_NAMES:
        v = np.array([r[name] for r in fold_results], dtype=float)
        v = v[np.isfinite(v)]
        out[name] = {"mean": float(v.mean()) if v.size else float("nan"),
                     "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan")}
    return out


# ---------------------------------------------------------------- figures (Figures 4 and 5)

def _figure():
    import matplotlib
    matplotlib.use("Agg")            # headless: never needs a display
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path):
    plt = _figure()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_roc(result, path, title="ROC"):
    """Figure 5 A/C: the ROC curve with its AUC."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(result["roc"]["fpr"], result["roc"]["tpr"], lw=2, label=f"AUC = {result['auc']:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set(xlabel="1 - specificity (false-positive rate)", ylabel="sensitivity (true-positive rate)",
           title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    _save_figure(fig, path)


def plot_confusion(result, path, title="Confusion matrix"):
    """Figure 5 B/D: the confusion matrix with counts."""
    plt = _figure()
    cm = np.array(result["confusion_matrix"])
    names = result["class_names"]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=14)
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title=title)
    _save_figure(fig, path)


def plot_learning_curves(history, path):
    """Figure 4: loss and accuracy per epoch, training and validation."""
    plt = _figure()
    epochs = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        a1.plot(epochs, [h.get(key, np.nan) for h in history], marker=".", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        a2.plot(epochs, [h.get(key, np.nan) for h in history], marker=".", label=label)
    a1.set(xlabel="epoch", ylabel="loss", title="Loss")
    a2.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    from matplotlib.ticker import MaxNLocator
    for ax in (a1, a2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))      # epochs are whole numbers
    a1.legend()
    a2.legend()
    _save_figure(fig, path)


def plot_reliability(logits, labels, temperature, path, title="Reliability"):
    """Reliability diagram before (T = 1) and after temperature scaling: accuracy per confidence bin.

    A calibrated model's bars reach the diagonal; bars below it mean over-confidence. The
    numbers above the bars are the images per bin; the titles give the ECE (15 bins).
    """
    plt = _figure()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, (when, t) in zip(axes, (("before", 1.0), (f"after, T = {temperature:.3g}", temperature))):
        probs = softmax(np.asarray(logits, dtype=np.float64) / t)
        bins = reliability_bins(probs, labels)
        edges, full = bins["edges"], bins["count"] > 0
        ax.bar(edges[:-1][full], bins["accuracy"][full], width=np.diff(edges)[full], align="edge",
               edgecolor="black", color="#4c72b0", label="accuracy")
        ax.plot(bins["confidence"][full], bins["confidence"][full], "o", color="#dd8452", label="mean confidence")
        for left, width, acc, n in zip(edges[:-1][full], np.diff(edges)[full], bins["accuracy"][full],
                                       bins["count"][full]):
            ax.text(left + width / 2, acc + 0.01, str(n), ha="center", va="bottom", fontsize=7)
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="confidence (top-class probability)",
               title=f"{when}: ECE {expected_calibration_error(probs, labels):.4f}")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left")
    fig.suptitle(title)
    _save_figure(fig, path)
