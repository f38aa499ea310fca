"""``minivgg info``: a model's card, then its layers and their output shapes."""

from minivgg.cli.common import load
from minivgg.deploy.bundled import BUNDLED_MODEL
from minivgg.nn.model import vgg8_layout
from minivgg.text import printable
from minivgg.trust.modelcard import card_lines


def run(args):
    """Describe a model (default: the bundled one): its card, then layers, shapes, parameter count."""
    model = load(args.model)
    print(f"{args.model or BUNDLED_MODEL}")
    for label, text in card_lines(model):
        print(f"  {label + ':':21}{printable(text)}")                 # the card's texts come from the file
    print(model.network)
    print(f"classes: {', '.join(map(printable, model.class_names))}")
    print(f"{'layer':16}{'kind':24}{'output shape':>22}")
    for spec in vgg8_layout(**model.config):
        print(f"{spec.name:16}{model[spec.name]!r:24}{str((1, *spec.shape)):>22}")
    print(f"parameters: {model.num_parameters():,}")
    return 0
