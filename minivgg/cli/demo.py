"""``minivgg demo``: the bundled model on the bundled samples, and what both are."""

from minivgg.cli import predict
from minivgg.cli.common import load
from minivgg.cli.parser import build_parser
from minivgg.deploy.bundled import BUNDLED_SAMPLES


def run(args):
    """Predict the bundled phantom samples with the bundled model, and say what both are."""
    model = load(None)
    print(f"bundled model: {model.name}, {model.network}")
    print(f"  trained on synthetic hand phantoms ({model.extra.get('trained_on', 'see README')})")
    if model.card:
        print(f"  intended use: {model.card['intended_use']}")
    test = model.extra.get("test_metrics")
    if test:
        print("  held-out phantoms: " + ", ".join(f"{k} {test[k]:.3f}" for k in
                                                ("accuracy", "sensitivity", "specificity", "precision", "auc")))
    print("  NOTE: phantoms are not patients; this model is for learning and testing, not diagnosis.\n")
    samples = sorted(BUNDLED_SAMPLES.rglob("*.png"))
    print(f"{len(samples)} bundled samples (true class = folder name):")
    return predict.run(build_parser().parse_args(["predict", str(BUNDLED_SAMPLES)]))
