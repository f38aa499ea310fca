"""The screen of ``l``: what each conv block of the network sees of the image on screen."""

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Label

from minivgg.nn.layers import MaxPool2x2
from minivgg.tui.dialog import Dialog
from minivgg.tui.pictures import to_pil

TILES = 8                      # feature maps shown per block, in two rows


class LayersScreen(Dialog):
    """The feature maps after each conv block's last ReLU: the first 8 channels, each scaled to [0, 1]."""

    BINDINGS = [Binding("escape,l", "dismiss", "Close")]

    def __init__(self, model, x, picture_class):
        super().__init__()
        self.model, self.x, self.picture_class = model, x, picture_class

    def block_outputs(self):
        """{layer name: (C, h, w)} for the ReLU that ends each block (the layer before each pool)."""
        layers = self.model.layers
        ends = [layers[i][0] for i in range(len(layers) - 1) if isinstance(layers[i + 1][1], MaxPool2x2)]
        _, outputs = self.model.infer(self.x[None], capture=ends)
        return {n: outputs[n][0] for n in ends}

    def body(self) -> ComposeResult:
        with VerticalScroll(id="layers"):
            yield Label("What each conv block sees: 8 feature maps per block (bright = strong response)")
            for i, (name, maps) in enumerate(self.block_outputs().items(), 1):
                yield Label(f"block {i} ({name}): {maps.shape[0]} channels of {maps.shape[1]}x{maps.shape[2]}")
                yield self.picture_class(to_pil(tile_grid(maps)), classes="layer-grid")


def tile_grid(maps):
    """The first 8 of ``maps`` (C, h, w), each scaled to [0, 1], as a 2 x 4 grid (2h, 4w); missing ones black."""
    tiles = []
    for m in maps[:TILES]:
        lo, hi = float(m.min()), float(m.max())
        tiles.append((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))
    tiles += [np.zeros_like(maps[0])] * (TILES - len(tiles))
    half = TILES // 2
    return np.concatenate([np.concatenate(tiles[:half], 1), np.concatenate(tiles[half:], 1)], 0)
