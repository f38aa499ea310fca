"""The model and sample images that ship with minivgg (``minivgg/data/``): see the README, "Bundled model".

A small VGG8 trained by this code on synthetic hand phantoms, for learning and for testing
the tools; not a model of real radiographs. ``python scripts/make_bundled_model.py``
rebuilds both.
"""

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "data"
BUNDLED_MODEL = BUNDLED_DIR / "model.npz"
BUNDLED_SAMPLES = BUNDLED_DIR / "samples"
