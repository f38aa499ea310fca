"""The PyTorch twin of a minivgg VGG8, used as a reference oracle (never by the package)."""

import numpy as np
import torch
from torch import nn

from minivgg.nn.layers import Conv3x3, Dense, Dropout, Flatten, MaxPool2x2, ReLU


class TorchVGG8(nn.Module):
    """torchvision's VGG layout (``features``, ``classifier``) without the adaptive pool."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def torch_vgg8(model):
    """Build the PyTorch model equivalent to minivgg ``model`` and copy its weights in."""
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    features, classifier = [], []
    for name, layer in model.layers:
        target = features if name.startswith("features") else classifier
        if isinstance(layer, Conv3x3):
            k, c = layer.params["weight"].shape[:2]
            target.append(nn.Conv2d(c, k, 3, padding=1))
        elif isinstance(layer, Dense):
            o, d = layer.params["weight"].shape
            target.append(nn.Linear(d, o))
        elif isinstance(layer, ReLU):
            target.append(nn.ReLU())
        elif isinstance(layer, MaxPool2x2):
            target.append(nn.MaxPool2d(2, 2))
        elif isinstance(layer, Dropout):
            target.append(nn.Dropout(layer.p))
        elif not isinstance(layer, Flatten):
            raise TypeError(f"no torch twin for {layer!r}")
    net = TorchVGG8(features, classifier).to(dtype)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return net
