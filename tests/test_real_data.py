"""The pipeline on real radiographs from ../shared/data (never copied into the repository)."""

import numpy as np
import pytest

from minivgg.imaging.datasets import FolderDataset
from minivgg.imaging.imageio import load_image
from minivgg.imaging.preprocess import preprocess, preprocessing_settings
from tests.conftest import shared_data

SHARED = shared_data()
WRIST = SHARED / "ramw600-wrist-sample"
HANDS = SHARED / "pediatric-hands"
pytestmark = pytest.mark.skipif(not WRIST.is_dir() or not HANDS.is_dir(),
                                reason=f"real radiographs not present at {SHARED} (a user's fresh clone)")


def test_wrist_sample_is_a_two_class_folder_dataset():
    ds = FolderDataset(WRIST, preprocessing_settings(64))
    assert ds.class_names == ["erosive", "non_erosive"]
    assert ds.class_counts().tolist() == [38, 12] and not ds.broken
    x, y = ds.batch([0, 49])
    assert x.shape == (2, 3, 64, 64) and np.isfinite(x).all() and y.tolist() == [0, 1]


def test_pediatric_hands_of_all_sizes_and_modes_preprocess():
    settings = preprocessing_settings(224)
    files = sorted(HANDS.glob("*.png"))
    assert len(files) == 20
    for f in files:
        gray = load_image(f)
        assert gray.ndim == 2 and 0 <= gray.min() and gray.max() <= 1 and gray.std() > 0.02, f.name
        x = preprocess(gray, settings)
        assert x.shape == (3, 224, 224) and np.isfinite(x).all()
