"""Twin phantoms: the twin, the masks, the random streams and every generator option."""

import json

import numpy as np
import pytest
from PIL import Image

from minivgg.cli import main
from minivgg.imaging.phantoms import DIFFICULTIES, PhantomSettings, make_phantom, write_phantoms

SMALL = 96


def ra(index, seed=4, **options):
    return make_phantom(seed, index, 1, PhantomSettings(size=SMALL, **options))


@pytest.mark.parametrize("index", range(1, 12, 2))
def test_twin_equals_its_image_outside_the_mask(index):
    p = ra(index)
    assert p.mask.any() and p.twin is not None
    np.testing.assert_array_equal(p.image[~p.mask], p.twin[~p.mask])
    assert (p.image[p.mask] != p.twin[p.mask]).all()              # and differs everywhere inside
    assert p.mask.mean() < 0.05                                    # local: a few joints, not the hand


def test_lesions_stay_near_the_affected_joints():
    """Narrowing grows the bone ends into the joint: nothing else moves, so no mask far from a joint."""
    for index in range(1, 20, 2):
        p = make_phantom(6, index, 1, PhantomSettings(size=128))
        rows, cols = np.nonzero(p.mask)
        points = np.stack([cols + 0.5, rows + 0.5], axis=1) / 128
        near = np.zeros(len(points), dtype=bool)
        for lesion in p.params["lesions"]:
            o = lesion["osteopenia"]
            near |= np.hypot(*(points - o["centre"]).T) < 1.4 * o["radius"] + 3 / 128
        assert near.all(), f"phantom {index}: mask pixels away from every affected joint"


def test_deterministic_and_the_twin_repeats_every_draw_but_the_lesions():
    a, b = ra(3), ra(3)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.twin, b.twin)
    assert a.params == b.params
    # Lesions have their own stream: other lesions (another difficulty), the same twin.
    hard = ra(3, difficulty="hard")
    np.testing.assert_array_equal(hard.twin, a.twin)
    assert not np.array_equal(hard.image, a.image)
    normal = make_phantom(4, 2, 0, PhantomSettings(size=SMALL))
    assert normal.twin is None and not normal.mask.any() and normal.params["lesions"] == []


def test_difficulty_sets_count_size_and_contrast():
    def stats(level):
        ps = [ra(i, difficulty=level) for i in range(1, 40, 2)]
        joints = [len(p.params["lesions"]) for p in ps]
        change = np.mean([np.abs(p.image - p.twin).sum() for p in ps])
        return joints, np.mean([p.mask.mean() for p in ps]), change
    easy, hard = stats("easy"), stats("hard")
    lo, hi = DIFFICULTIES["hard"].joints
    assert all(lo <= j <= hi for j in hard[0]) and min(easy[0]) >= DIFFICULTIES["easy"].joints[0]
    assert easy[1] > 2 * hard[1] and easy[2] > 3 * hard[2]
    with pytest.raises(ValueError, match="difficulty must be one of"):
        PhantomSettings(difficulty="brutal")


def test_global_osteopenia_is_a_confounder_the_twin_keeps():
    plain, confounded = ra(5), ra(5, global_osteopenia=True)
    bones = plain.image > 0.5
    assert confounded.image[bones].mean() < plain.image[bones].mean() - 0.02     # every bone darker
    assert confounded.twin[bones].mean() < plain.twin[bones].mean() - 0.02       # the twin too
    np.testing.assert_array_equal(confounded.image[~confounded.mask], confounded.twin[~confounded.mask])
    assert confounded.mask.mean() < 0.05 and confounded.params["global_osteopenia"] > 0
    normal = make_phantom(4, 4, 0, PhantomSettings(size=SMALL, global_osteopenia=True))
    np.testing.assert_array_equal(normal.image, make_phantom(4, 4, 0, PhantomSettings(size=SMALL)).image)


def test_shortcut_marker_on_a_share_of_one_class_with_its_own_mask():
    settings = PhantomSettings(size=SMALL, shortcut_share=0.5, shortcut_class="RA")
    phantoms = [make_phantom(8, i, i % 2, settings) for i in range(40)]
    marked = [p for p in phantoms if p.shortcut_mask is not None]
    assert all(p.label == 1 for p in marked) and 5 <= len(marked) <= 15        # about half of the 20 RA
    for p in marked:
        rows, cols = np.nonzero(p.shortcut_mask)
        corner = p.params["marker"]["corner"]
        assert (rows < SMALL / 2).all() == corner.startswith("top")
        assert (cols < SMALL / 2).all() == corner.endswith("left")
        assert p.shortcut_mask.mean() < 0.03 and not (p.shortcut_mask & p.mask).any()
        np.testing.assert_array_equal(p.image[~p.mask], p.twin[~p.mask])      # the twin has the marker too
        clean = make_phantom(8, p.params["index"], 1, PhantomSettings(size=SMALL))
        np.testing.assert_array_equal(p.image[~p.shortcut_mask], clean.image[~p.shortcut_mask])
    every = PhantomSettings(size=SMALL, shortcut_share=1.0, shortcut_class="Normal")
    assert all((make_phantom(8, i, i % 2, every).shortcut_mask is not None) == (i % 2 == 0) for i in range(6))
    with pytest.raises(ValueError, match="shortcut_share"):
        PhantomSettings(shortcut_share=1.5)


def _png(path):
    return np.asarray(Image.open(path))


def test_written_layout_masks_from_the_saved_images_and_every_draw_recorded(tmp_path):
    write_phantoms(tmp_path, 6, seed=3, size=64, shortcut_share=1.0, difficulty="easy")
    for name in ("ra_00001", "ra_00003", "ra_00005"):
        image = _png(tmp_path / "images" / "RA" / f"{name}.png")
        twin = _png(tmp_path / "twins" / "RA" / f"{name}.png")
        mask = _png(tmp_path / "masks" / "RA" / f"{name}.png")
        np.testing.assert_array_equal(mask == 255, image != twin)
        assert (tmp_path / "shortcut_masks" / "RA" / f"{name}.png").exists()
    assert not (tmp_path / "twins" / "Normal").exists() and not (tmp_path / "shortcut_masks" / "Normal").exists()
    assert not _png(tmp_path / "masks" / "Normal" / "normal_00000.png").any()
    record = json.loads((tmp_path / "phantoms.json").read_text())
    assert record["settings"] == {"size": 64, "difficulty": "easy", "global_osteopenia": False,
                                  "shortcut_share": 1.0, "shortcut_class": "RA"}
    images = record["images"]
    assert [r["file"] for r in images][:2] == ["Normal/normal_00000.png", "RA/ra_00001.png"]
    first_ra = images[1]
    assert {"hand", "exposure", "lesions", "marker", "streams", "global_osteopenia"} <= set(first_ra)
    assert first_ra["lesions"][0]["erosions"] and first_ra["marker"]["letter"] in "LR"
    again = make_phantom(3, 1, 1, PhantomSettings(size=64, shortcut_share=1.0, difficulty="easy"))
    assert json.loads(json.dumps(again.params)) == {k: v for k, v in first_ra.items() if k != "file"}


def test_phantoms_command_options(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["phantoms", "--out", str(out), "--n", "4", "--size", "48", "--difficulty", "hard",
                 "--global-osteopenia", "--shortcut", "1", "--shortcut-class", "Normal"]) == 0
    assert "healthy twins" in capsys.readouterr().out
    settings = json.loads((out / "phantoms.json").read_text())["settings"]
    assert settings == {"size": 48, "difficulty": "hard", "global_osteopenia": True, "shortcut_share": 1.0,
                        "shortcut_class": "Normal"}
    assert len(list((out / "shortcut_masks" / "Normal").glob("*.png"))) == 2
    assert len(list((out / "twins" / "RA").glob("*.png"))) == 2
    for bad in (["--shortcut", "0"], ["--shortcut", "1.5"], ["--difficulty", "brutal"]):
        with pytest.raises(SystemExit) as e:
            main(["phantoms", "--out", str(tmp_path / "q"), *bad])
        assert e.value.code == 2
