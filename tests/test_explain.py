"""Grad-CAM and Kernel-SHAP against oracles: PyTorch autograd, brute-force Shapley values, axioms."""

from collections import Counter
from itertools import combinations
from math import factorial

import numpy as np
import pytest

from minivgg import VGG8, softmax
from minivgg.deploy import Classifier
from minivgg.explain import (
    GradCAM,
    KernelSHAP,
    PairSampler,
    explain_function,
    grid_regions,
    shapley_rounds,
    superpixels,
    upsample_bilinear,
)
from tests.conftest import SHARED_DATA, TINY


def brute_force_shapley(value_fn, m):
    """phi_i = sum_{S without i} |S|! (m-|S|-1)! / m! * (v(S + i) - v(S)), by enumeration."""
    phi = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            for s in combinations(others, size):
                z = np.zeros((2, m), np.uint8)
                z[:, list(s)] = 1
                z[1, i] = 1
                v = value_fn(z)
                phi[i] += factorial(size) * factorial(m - size - 1) / factorial(m) * (v[1] - v[0])
    return phi


def random_game(m, seed):
    """A non-additive set function with pairwise and triple interactions."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=m), rng.normal(size=(m, m)), rng.normal()
    return lambda z: z @ a + np.einsum("bi,ij,bj->b", z, b, z) * 0.3 + c * z[:, 0] * z[:, 1] * z[:, 2]


def exact_game(game, m):
    """(f, phi): a set function on 0/1 rows and its exact Shapley values."""
    f = lambda z: game(np.asarray(z, dtype=float))            # noqa: E731
    return f, brute_force_shapley(f, m)


@pytest.mark.parametrize("m", [3, 6, 10])
def test_kernelshap_equals_brute_force_when_budget_covers_all(m):
    f, phi = exact_game(random_game(m, m), m)
    result = explain_function(f, m, budget=2 ** m)
    assert result.exact and result.n_evaluations == 2 ** m
    np.testing.assert_allclose(result.values, phi, atol=1e-9)
    assert not result.stderr.any()                                  # exact: no error to report
    # Stopping by tolerance, or drawing in rounds, changes nothing once every coalition is in.
    rounds = list(shapley_rounds(f, m, budget=2 ** m, tolerance=1e-12))
    np.testing.assert_allclose(rounds[-1].values, phi, atol=1e-9)


@pytest.mark.parametrize("budget", [20, 100, 400])
def test_budget_is_spent_on_distinct_coalitions_and_efficiency_holds(budget):
    game = random_game(12, 0)
    seen = []

    def f(z):
        seen.extend(map(bytes, z))
        return game(z.astype(float))
    result = explain_function(f, 12, budget=budget, seed=1)
    assert not result.exact and result.n_evaluations == budget + 2 == len(seen)
    assert len(set(seen)) == len(seen)                              # every call a distinct coalition
    assert result.values.sum() == pytest.approx(result.fx - result.base_value, abs=1e-10)


@pytest.mark.parametrize("m", [5, 6])
def test_pair_sampler_enumerates_each_coalition_once_in_rounds(m):
    sampler = PairSampler(m, np.random.default_rng(0))
    blocks = [sampler.draw(k)[0] for k in (3, 1, 7, 100)]
    z = np.concatenate(blocks)
    both = np.concatenate([z, 1 - z])
    assert sampler.pairs_left == 0 and len(both) == 2 ** m - 2
    assert len({bytes(row) for row in both}) == 2 ** m - 2 and 0 < both.sum(axis=1).min()
    assert both.sum(axis=1).max() < m


def test_pair_sampler_allocation_is_the_same_in_rounds_and_at_once():
    one = PairSampler(14, np.random.default_rng(3))
    split = PairSampler(14, np.random.default_rng(3))
    z_one, s_one = one.draw(300)
    parts = [split.draw(k) for k in (16, 16, 40, 228)]
    np.testing.assert_array_equal(one.drawn, split.drawn)
    # Leverage allocation: every coalition size gets the same share until a size runs out.
    assert np.ptp(one.drawn[1:-1] / 2) <= 1 and one.drawn[0] == 14              # size 1 is all 14 pairs
    # The pairs themselves do not depend on the rounds either (one random stream per size).
    assert {bytes(row) for row in z_one} == {bytes(row) for z, _ in parts for row in z}


def test_pair_sampler_draws_uniformly_within_a_size():
    counts = Counter()
    for seed in range(600):
        sampler = PairSampler(6, np.random.default_rng(seed), allocation="kernel")
        z, stratum = sampler.draw(4)
        counts.update(bytes(row) for row, k in zip(z, stratum) if k == 1)       # pairs of sizes 2 and 4
    assert len(counts) == 15                                        # C(6, 2) pairs, each drawn
    freq = np.array(list(counts.values()), float)
    expected = freq.sum() / 15
    assert ((freq - expected) ** 2 / expected).sum() < 36.1         # chi-square, 14 dof, p = 0.001


def saturated_game(m, seed):
    """A sigmoid of a weighted count, like a classifier near p = 1: strong size effects and interactions."""
    a = np.random.default_rng(seed).normal(size=m)
    return lambda z: 1 / (1 + np.exp(-(np.asarray(z, dtype=float) @ a * 2 - 1)))


@pytest.mark.parametrize("game", [random_game(10, 5), saturated_game(10, 1)])
def test_standard_errors_cover_the_exact_values(game):
    f, phi = exact_game(game, 10)
    coverage = [np.mean(np.abs(r.values - phi) <= 2 * r.stderr)
                for budget in (100, 400) for r in (explain_function(f, 10, budget, seed=s) for s in range(10))]
    assert np.mean(coverage) >= 0.85


def test_standard_errors_shrink_like_one_over_root_n():
    game = random_game(16, 5)
    f = lambda z: game(np.asarray(z, dtype=float))                  # noqa: E731
    mean_se = {(b, flag): np.mean([explain_function(f, 16, b, seed=s, interactions=flag).stderr.mean()
                                   for s in range(4)]) for b in (200, 800) for flag in (False, True)}
    assert 1.6 < mean_se[200, False] / mean_se[800, False] < 3.2     # 4x the calls: about sqrt(4) = 2
    assert mean_se[200, True] / mean_se[800, True] > 1.6             # the richer fit shrinks it at least as fast


def test_tolerance_stops_early_and_rounds_rise():
    m = 10
    f, phi = exact_game(random_game(m, 2), m)
    rounds = list(shapley_rounds(f, m, budget=800, seed=0, tolerance=0.1))
    calls = [r.n_evaluations for r in rounds]
    assert calls == sorted(calls) and len(set(calls)) == len(calls)
    last = rounds[-1]
    assert last.n_evaluations < 802 and last.band.max() <= 0.1 * last.scale
    assert all(r.band.max() > 0.1 * r.scale for r in rounds[:-1] if r.n_evaluations >= 4 * m)
    # What it claims holds: every value within 10% of the scale of the exact one.
    assert np.abs(last.values - phi).max() <= 0.1 * last.scale
    assert explain_function(f, m, budget=800, seed=0, tolerance=1e-9).n_evaluations == 802
    covered = explain_function(f, m, budget=2 ** m, seed=0, tolerance=0.5)   # a budget for every coalition
    assert covered.exact and np.allclose(covered.values, phi) and covered.n_evaluations == 2 ** m


def test_rounds_are_sized_to_meet_the_tolerance():
    """After a round that leaves the band ``ratio`` times the tolerance, the next draws what the 1/sqrt(pairs) law
    says is missing (plus 5%), between 16 pairs (and the first check) and half of what has been drawn."""
    from minivgg.explain.shapley import next_round
    assert next_round(500, 1.1, -436) == int(np.ceil(500 * (1.1 ** 2 - 1) * 1.05))      # 111 pairs
    assert next_round(500, 3.0, -436) == 250                        # far off: at most half of what is drawn
    assert next_round(500, 1.001, -436) == 16                        # nearly there: the smallest round
    assert next_round(32, 40.0, 32) == 32                            # the first check (2m = 64 pairs) is reached
    assert next_round(300, np.inf, -236) == 150                      # no scale yet: half


def test_modelling_interactions_beats_plain_kernel_shap():
    """Size terms and three-way interactions cut the error on a game that has them (the module's claim)."""
    m = 12
    f, phi = exact_game(saturated_game(m, 1), m)
    err = {flag: np.mean([np.linalg.norm(explain_function(f, m, 300, seed=s, interactions=flag).values - phi)
                          for s in range(6)]) for flag in (True, False)}
    assert err[True] < 0.75 * err[False]


def sigmoid_game(m):
    """A saturating game (as a probability is) with one pairwise interaction."""
    w = np.linspace(-1, 2, m)
    return lambda z: 1 / (1 + np.exp(-(z @ w - 3 + 0.8 * z[:, 1] * z[:, 4])))


def test_no_player_is_favoured_by_its_label():
    """Relabelling the players moves no error onto player 0 (an even m: the middle size's pairs all hold it).

    The same game, with its player 3 put at index 0 and at index 5: its mean error over
    seeds is the same. Before the middle stratum lost its size term (shapley.size_terms),
    the two differed by t = -4.5.
    """
    m, k, game = 10, 3, sigmoid_game(10)
    errors = []
    for position in (0, 5):
        order = [j for j in range(m) if j != k]
        order.insert(position, k)                          # index ``position`` holds the game's player k
        back = np.argsort(order)
        f, phi = exact_game(lambda z, back=back: game(z[:, back]), m)
        errors.append([explain_function(f, m, budget=300, seed=s).values[position] - phi[position]
                       for s in range(80)])
    a, b = np.array(errors)
    t = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(t) < 2.5


def test_the_simultaneous_band_holds_every_value_at_once():
    """The band (Bonferroni, 95%) covers all m exact values together in most runs; +-2 SE does not."""
    f, phi = exact_game(sigmoid_game(12), 12)
    runs = [explain_function(f, 12, budget=300, seed=s) for s in range(30)]
    together = np.mean([np.all(np.abs(r.values - phi) <= r.band) for r in runs])
    two_se = np.mean([np.all(np.abs(r.values - phi) <= 2 * r.stderr) for r in runs])
    assert runs[0].band_z == pytest.approx(2.87, abs=0.01) and together >= 0.85 and together > two_se


def test_player_zero_keeps_its_error_bar_near_full_enumeration():
    """960 of the 1022 coalitions: player 0's +-2 SE bars cover its exact value as often as the others' (they
    covered it 0 times in 40 while the middle stratum had a size term)."""
    f, phi = exact_game(sigmoid_game(10), 10)
    covered = np.array([np.abs(r.values - phi) <= 2 * r.stderr
                        for r in (explain_function(f, 10, budget=960, seed=s) for s in range(40))])
    assert covered[:, 0].mean() >= 0.85 and covered[:, 1:].mean() >= 0.85


def test_symmetry_and_dummy():
    # Players 0 and 1 are interchangeable; player 5 never changes the value.
    def game(z):
        z = z.astype(float)
        return 2 * z[:, 0] * z[:, 1] + z[:, 0] + z[:, 1] + 0.5 * z[:, 2] * z[:, 3] + z[:, 4] ** 2
    exact = explain_function(game, 6, budget=2 ** 6)
    assert exact.values[0] == pytest.approx(exact.values[1], abs=1e-12)
    assert exact.values[5] == pytest.approx(0, abs=1e-12)
    sampled = explain_function(game, 6, budget=30, seed=0)          # within the stated error
    assert abs(sampled.values[0] - sampled.values[1]) <= 3 * np.hypot(*sampled.stderr[:2]) + 1e-12
    assert abs(sampled.values[5]) <= 3 * sampled.stderr[5] + 1e-12


def test_error_shrinks_as_budget_grows():
    m = 12
    game = random_game(m, 3)
    exact = explain_function(lambda z: game(z.astype(float)), m, budget=2 ** m).values
    errors = []
    for budget in (40, 300, 1200):
        runs = [explain_function(lambda z: game(z.astype(float)), m, budget=budget, seed=s).values for s in range(4)]
        errors.append(np.mean([np.abs(r - exact).max() for r in runs]))
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("output", ["probability", "logit"])
def test_kernelshap_on_the_model_is_exact_for_few_regions(rng, output):
    model = VGG8(**{**TINY, "image_size": 32}, dtype=np.float64, seed=2)
    image = rng.standard_normal((3, 32, 32))
    explainer = KernelSHAP(model, n_regions=6, segmentation="grid", merge_background=False, baseline="blur",
                           budget=100, batch_size=7, output=output)
    result = explainer(image, target=1)
    assert result.n_regions == 6 and result.exact and result.n_evaluations == 64 and not result.stderr.any()
    assert result.values.sum() == pytest.approx(result.fx - result.base_value, abs=1e-12)

    def value(z):
        keep = z[:, result.regions].astype(bool)
        p = model.predict_proba(np.where(keep[:, None], image[None], explainer.baseline_for(image)[None]))[:, 1]
        return p if output == "probability" else np.log(p / (1 - p))
    np.testing.assert_allclose(result.values, brute_force_shapley(value, 6), atol=1e-9)
    assert result.pixel_map().shape == (32, 32) and result.summary()["n_evaluations"] == 64


def test_coalition_images_match_their_naive_twin(rng):
    """The kernel that builds a batch of masked images writes exactly what ``np.where`` gives, C-contiguous."""
    from minivgg.explain.kernelshap import coalition_images, coalition_images_naive
    image = rng.standard_normal((3, 20, 24)).astype(np.float32)
    background = rng.standard_normal((3, 20, 24)).astype(np.float32)
    regions = rng.integers(0, 7, (20, 24))
    z = rng.integers(0, 2, (5, 7)).astype(np.uint8)
    out = np.full((5, 3, 20, 24), np.nan, np.float32)
    coalition_images(image, background, regions, z, out)
    np.testing.assert_array_equal(out, coalition_images_naive(image, background, regions, z))
    assert not coalition_images_naive(image, background, regions, z).flags.c_contiguous   # why the kernel exists


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_block_of_coalitions_matches_its_naive_twin(rng, dtype):
    """Copied where a window is all kept or all hidden, computed where it mixes: equal bit for bit to the network's
    first block of the coalition images themselves, at the image's edges and for every mix of regions."""
    from minivgg.explain.first_block import FirstBlock, first_block_naive, window_owner
    from minivgg.explain.kernelshap import coalition_images_naive
    model = VGG8(**{**TINY, "channels": (5, *TINY["channels"][1:])}, dtype=dtype, seed=3)
    image = rng.standard_normal((3, 32, 32)).astype(dtype)
    background = rng.standard_normal((3, 32, 32)).astype(dtype)
    for regions in (grid_regions((32, 32), 9), rng.integers(0, 7, (32, 32)),
                    superpixels(rng.random((32, 32)), 12)):
        regions = np.ascontiguousarray(regions, dtype=np.int64)
        m = int(regions.max()) + 1
        z = np.vstack([np.zeros(m), np.ones(m), rng.integers(0, 2, (10, m))]).astype(np.uint8)
        block = FirstBlock.of(model, image, background, regions)
        out = np.full((len(z), *block.shape), np.nan, dtype)
        block(z, out)
        images = coalition_images_naive(image, background, regions, z)
        np.testing.assert_array_equal(out, first_block_naive(model, images))
        owner = window_owner(regions)                   # brute force: the labels in each 4x4 window
        for r, j in np.ndindex(owner.shape):
            labels = np.unique(regions[max(2 * r - 1, 0):2 * r + 3, max(2 * j - 1, 0):2 * j + 3])
            assert owner[r, j] == (labels[0] if len(labels) == 1 else -1)
    logits = model.infer(np.stack([image, background]))            # the network goes on from the block
    np.testing.assert_array_equal(model.infer(np.stack([block.kept, block.hidden]), start=block.start), logits)
    with pytest.raises(ValueError, match="begins a step"):
        model.infer(out, start="features.1")


def test_kernelshap_on_the_first_block_equals_kernelshap_on_whole_images(rng):
    """The same pairs drawn, the same values to the last bit: the shortcut changes the cost, not the estimate."""
    model = VGG8(**{**TINY, "image_size": 32}, seed=2)
    image = rng.standard_normal((3, 32, 32)).astype(np.float32)
    explainer = KernelSHAP(model, n_regions=10, budget=200, tolerance=0.3, seed=4)
    result = explainer(image, target=1)
    background = explainer.baseline_for(image)

    def value(z):
        keep = z[:, result.regions].astype(bool)[:, None]
        return model.predict_proba(np.where(keep, image[None], background[None]).astype(np.float32))[:, 1]
    whole = explain_function(value, result.n_regions, budget=200, seed=4, tolerance=0.3)
    np.testing.assert_array_equal(result.values, whole.values)
    assert result.n_evaluations == whole.n_evaluations


def test_kernelshap_progress_rises_and_rounds_end_at_the_call():
    model = VGG8(**{**TINY, "image_size": 32}, seed=2)
    image = np.random.default_rng(0).standard_normal((3, 32, 32)).astype(np.float32)
    explainer = KernelSHAP(model, n_regions=9, segmentation="grid", merge_background=False, budget=300,
                           tolerance=None, batch_size=16)
    seen = []
    rounds = list(explainer.rounds(image, 1, progress=lambda done, total: seen.append((done, total))))
    done = [d for d, _ in seen]
    assert done == sorted(done) and {t for _, t in seen} == {302} and done[-1] == 302
    assert len(rounds) > 2 and rounds[-1].n_evaluations == 302 and rounds[-1].budget == 302
    np.testing.assert_allclose(explainer(image, 1).values, rounds[-1].values, atol=1e-12)
    stopped = []
    early = KernelSHAP(model, n_regions=9, segmentation="grid", merge_background=False, budget=300,
                       tolerance=10.0)(image, 1, progress=lambda d, t: stopped.append((d, t)))
    assert early.n_evaluations < 302 and stopped[-1] == (early.n_evaluations, early.n_evaluations)


class ConstantModel:
    """A stand-in whose class-1 probability is fixed: SHAP has nothing to find."""
    dtype, image_size, num_classes, class_names = np.float64, 16, 2, ["a", "b"]

    def __init__(self, p1):
        self.p1 = p1

    def predict_proba(self, x, batch_size=32):
        return np.tile([1 - self.p1, self.p1], (len(x), 1)) + 1e-9 * x[:, 0, :1, 0]


def test_saturated_and_empty_results_say_so():
    image = np.random.default_rng(0).standard_normal((3, 16, 16))
    shap = KernelSHAP(ConstantModel(0.9999), n_regions=4, segmentation="grid", merge_background=False, budget=14)
    result = shap(image, target=1)
    assert not result.measurable and len(result.warnings) == 2
    assert "saturated" in result.warnings[0] and "--output logit" in result.warnings[0]
    assert "no measurable effect" in result.warnings[1]


def test_logit_output_is_the_log_odds_of_the_calibrated_probability(rng):
    """output="logit" explains log(p / (1 - p)) of the very probability predict_proba reports (temperature included)."""
    model = Classifier(VGG8(**TINY, seed=0), calibration={"temperature": 0.5})
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    p = model.predict_proba(x)[:, 1]
    got = KernelSHAP(model, output="logit").output_of(x, 1)
    np.testing.assert_allclose(got, np.log(p / (1 - p)), rtol=1e-6, atol=1e-9)


def test_grid_segmentation_keeps_its_cells_by_default():
    explainer = KernelSHAP(VGG8(**TINY, seed=0), n_regions=4, segmentation="grid")
    assert len(np.unique(explainer.regions_for(np.zeros((3, 32, 32), np.float32)))) == 4


def test_kernelshap_rejects_bad_settings():
    model = VGG8(**TINY, seed=0)
    for kwargs, needle in ((dict(tolerance=-1), "tolerance"), (dict(output="odds"), "output"),
                           (dict(segmentation="grid", merge_background=True),
                            "merge_background applies to superpixels"),
                           (dict(allocation="random"), "allocation")):
        with pytest.raises(ValueError, match=needle):
            KernelSHAP(model, **kwargs)


def test_regions():
    g = grid_regions((224, 224), 49)
    assert g.max() + 1 == 49 and np.bincount(g.ravel()).min() == 32 * 32
    for n in (7, 13, 50):                                   # a grid has exactly the count asked for
        assert np.array_equal(np.unique(grid_regions((128, 96), n)), np.arange(n))
    yy, xx = np.mgrid[0:64, 0:64]
    gray = ((xx - 20) ** 2 + (yy - 30) ** 2 < 200).astype(float)         # a disc
    sp = superpixels(gray, 20)
    n = sp.max() + 1
    assert n == 20 and set(np.unique(sp)) == set(range(n))
    # Superpixels follow the edge: almost no region straddles the disc's boundary.
    mixed = [k for k in range(n) if 0.1 < gray[sp == k].mean() < 0.9]
    assert len(mixed) <= 2


def test_region_image_operations_equal_scipys():
    from scipy import ndimage

    from minivgg.explain.regions import connected_pieces, gaussian_blur, smooth_along_axes
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(1, 50, 2)                        # down to single rows, columns and pixels
        mask = rng.random((h, w)) < rng.random()
        pieces, count = connected_pieces(mask)
        expected, expected_count = ndimage.label(mask)
        assert count == expected_count and np.array_equal(pieces, expected)     # the same numbers, in scan order
        image = rng.random((h, w))
        np.testing.assert_allclose(gaussian_blur(image, 1.0), ndimage.gaussian_filter(image, 1.0), atol=1e-12)
        np.testing.assert_allclose(gaussian_blur(image, 2.5), ndimage.gaussian_filter(image, 2.5), atol=1e-12)
        np.testing.assert_allclose(smooth_along_axes(image, np.full(5, 1 / 5)), ndimage.uniform_filter(image, 5),
                                   atol=1e-12)
    spiral = np.zeros((9, 9), bool)                          # one piece whose runs meet late: a U and a spiral
    spiral[0, :] = spiral[:, 8] = spiral[8, :] = spiral[2:, 0] = spiral[2, :7] = spiral[2:7, 6] = True
    assert np.array_equal(connected_pieces(spiral)[0], ndimage.label(spiral)[0])


def sample_images():
    """Preprocessed gray images in [0, 1]: two bundled phantoms and, when present, two real radiographs."""
    from minivgg.cli import BUNDLED_SAMPLES
    from minivgg.imaging.imageio import load_image
    from minivgg.imaging.preprocess import preprocess, preprocessing_settings
    files = sorted(BUNDLED_SAMPLES.rglob("*.png"))[::3]
    files += sorted((SHARED_DATA / "ramw600-wrist-sample" / "erosive").glob("*.png"))[:1]
    files += sorted((SHARED_DATA / "pediatric-hands").glob("*.png"))[:1]
    for f in files:
        gray = preprocess(load_image(f), preprocessing_settings(128)).mean(axis=0)
        yield f.name, (gray - gray.min()) / np.ptp(gray)


@pytest.mark.parametrize("n", [7, 9, 21, 48])
def test_superpixels_come_out_at_the_count_asked_for(n):
    for name, gray in sample_images():
        for merge in (False, True):
            labels = superpixels(gray, n, merge_background=merge)
            assert np.array_equal(np.unique(labels), np.arange(n)), (name, n, merge)


def test_background_merges_into_one_region():
    from minivgg.explain import background_mask
    name, gray = next(sample_images())                       # a phantom: a hand on flat dark air
    air = background_mask(gray)
    assert 0.3 < air.mean() < 0.95
    labels = superpixels(gray, 12, merge_background=True)
    assert np.all(labels[air] == 11) and not np.any(labels[~air] == 11)
    assert not background_mask(np.random.default_rng(0).random((64, 64))).any()     # no flat border: none


def test_upsampling_matches_half_pixel_convention():
    low = np.arange(4.0).reshape(1, 2, 2)
    up = upsample_bilinear(low, 4)
    np.testing.assert_allclose(up[0, 0], [0, 0.25, 0.75, 1])
    np.testing.assert_allclose(upsample_bilinear(np.ones((1, 3, 3)), 8), 1)


def test_gradcam_reports_empty_maps(rng):
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    dead = VGG8(**TINY, seed=0)
    dead["features.18"].params["weight"][...] = 0
    dead["features.18"].params["bias"][...] = -1          # the last ReLU outputs 0 everywhere
    result = GradCAM(dead, layer="features.19")(x)
    assert result.empty.all() and not result.normalized.any()
    assert len(result.warnings) == 2 and "zero everywhere" in result.warnings[0]
    live = next(r for r in (GradCAM(VGG8(**TINY, seed=s), "features.19")(x) for s in range(20)) if not r.empty.any())
    assert live.raw.shape == (2, 32, 32) and live.layer == "features.19" and not live.warnings
    np.testing.assert_allclose(live.normalized.reshape(2, -1).max(axis=1), 1)
    with pytest.raises(KeyError, match="no layer named"):
        GradCAM(dead, layer="features.99")
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 2\)"):
        GradCAM(dead)(x, target=5)
    with pytest.raises(ValueError, match="method must be one of gradcam, hirescam"):
        GradCAM(dead, method="gradcam++")


@pytest.mark.parametrize("layer,target,method", [(None, None, "gradcam"), ("features.18", 0, "gradcam"),
                                                 ("features.13", 1, "gradcam"), (None, None, "hirescam"),
                                                 ("features.13", 1, "hirescam")])
def test_gradcam_equals_pytorch_autograd(rng, torch, layer, target, method):
    from tests.torch_reference import torch_vgg8
    ours = VGG8(channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=16, image_size=64, dtype=np.float64, seed=1)
    theirs = torch_vgg8(ours).eval()
    x = rng.standard_normal((3, 3, 64, 64))
    result = GradCAM(ours, layer, method)(x, target)
    assert result.method == method
    name = result.layer
    module = dict(theirs.named_modules())[name]
    store = {}

    def keep_activation_and_gradient(mod, inp, out):
        store["a"] = out
        out.register_hook(lambda g: store.update(g=g))
    module.register_forward_hook(keep_activation_and_gradient)
    logits = theirs(torch.from_numpy(x))
    tgt = logits.argmax(1) if target is None else torch.full((3,), target)
    logits.gather(1, tgt[:, None]).sum().backward()
    weight = store["g"].mean(dim=(2, 3), keepdim=True) if method == "gradcam" else store["g"]
    cam = torch.relu((weight * store["a"]).sum(1, keepdim=True))
    up = torch.nn.functional.interpolate(cam, size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_array_equal(result.target, tgt.numpy())
    np.testing.assert_allclose(result.low_res, cam[:, 0].detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.raw, up.detach().numpy(), rtol=1e-10, atol=1e-12)


class PatchModel:
    """A stand-in model whose class-1 logit is 10 x the mean of the top-left 8x8 patch."""
    dtype = np.float64

    def predict_proba(self, x, batch_size=32):
        score = 10 * x[:, :, :8, :8].mean(axis=(1, 2, 3))
        return softmax(np.stack([np.zeros_like(score), score], axis=1))


def test_deletion_and_insertion_reward_a_faithful_map():
    from minivgg.explain.checks import deletion_insertion
    image = np.zeros((3, 32, 32))
    image[:, :8, :8] = 1.0
    right = np.zeros((32, 32))
    right[:8, :8] = 1
    good = deletion_insertion(PatchModel(), image, right, target=1)
    bad = deletion_insertion(PatchModel(), image, -right, target=1)
    assert good["deletion"] < bad["deletion"] and good["insertion"] > bad["insertion"]
    assert 0 <= good["deletion"] <= 1 and 0 <= good["insertion"] <= 1


def test_pointing_game_and_mass():
    from minivgg.explain.checks import mask_for_model, mass_on_lesions, pointing_game
    mask = np.zeros((20, 20), bool)
    mask[5:8, 5:8] = True
    sal = np.zeros((20, 20))
    sal[6, 6], sal[15, 15] = 2.0, 1.0
    assert pointing_game(sal, mask, tolerance=0)
    assert not pointing_game(-sal, mask, tolerance=0)
    assert not pointing_game(np.zeros((20, 20)), np.ones((20, 20), bool), tolerance=0)    # a flat map points nowhere
    share, area = mass_on_lesions(sal, mask)
    assert share == pytest.approx(2 / 3) and area == pytest.approx(9 / 400)
    assert mask_for_model(np.ones((50, 40), bool), {"resize": 36, "crop": 32}).shape == (32, 32)


def test_cascading_randomization_tells_a_model_blind_map_from_a_faithful_one(rng):
    from minivgg.explain.checks import cascading_randomization
    from minivgg.nn.conv import conv3x3_forward
    model = VGG8(channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=16, image_size=64, seed=1)
    before = model.state_dict()
    image = rng.standard_normal((3, 64, 64)).astype(np.float32)

    def edges(m, x, t):                              # looks only at the image: fails the sanity check
        return np.hypot(*np.gradient(x.mean(axis=0)))

    def first_layer(m, x, t):                        # depends on the first conv's weights only
        layer = m["features.0"]
        return conv3x3_forward(x[None], layer.params["weight"], layer.params["bias"])[0].max(axis=0)

    blind = cascading_randomization(model, edges, image, target=1)
    assert [name for name, _ in blind][:3] == ["classifier.6", "classifier.3", "classifier.0"]
    assert len(blind) == 11 and all(rho == pytest.approx(1) for _, rho in blind)
    faithful = dict(cascading_randomization(model, first_layer, image, target=1))
    assert all(faithful[name] == pytest.approx(1) for name in faithful if name != "features.0")
    assert abs(faithful["features.0"]) < 0.5             # randomised away once its own layer is
    rows = cascading_randomization(model, lambda m, x, t: GradCAM(m)(x[None], t).raw[0], image, target=1)
    assert len(rows) == 11 and all(np.isnan(rho) or -1 <= rho <= 1 for _, rho in rows)
    for k, v in model.state_dict().items():          # the model itself is untouched
        np.testing.assert_array_equal(v, before[k])


def test_agrees_with_shap_kernel_explainer():
    shap = pytest.importorskip("shap", reason="shap is an optional reference")
    m = 8
    game = random_game(m, 7)
    f = lambda z: game(np.asarray(z, dtype=float))           # noqa: E731
    ours = explain_function(f, m, budget=2 ** m).values
    ref = shap.KernelExplainer(f, np.zeros((1, m))).shap_values(np.ones((1, m)), nsamples=2 ** m, l1_reg=False)
    np.testing.assert_allclose(ours, np.asarray(ref).reshape(-1), atol=1e-6)


# ------------------------------------------------------------------ pictures


def make_result(values, stderr, n=32):
    """A SHAPResult over a 2 x 2 grid of an n x n image."""
    from minivgg.explain import SHAPResult
    values = np.asarray(values, float)
    return SHAPResult(values=values, stderr=np.asarray(stderr, float), base_value=0.2, fx=0.2 + values.sum(),
                      n_evaluations=130, exact=False, regions=grid_regions((n, n), 4), target=1, budget=202)


def test_gradcam_overlay_keeps_the_radiograph_and_shows_weak_evidence():
    from minivgg.explain.render import CAM_MAX_WEIGHT, CAM_MIN_WEIGHT, _cam_colormap, gradcam_overlay
    gray = np.random.default_rng(0).random((32, 32))
    rgb = np.repeat(gray[..., None], 3, 2)
    np.testing.assert_allclose(gradcam_overlay(gray, np.zeros_like(gray)), rgb)       # no evidence: unchanged
    full = gradcam_overlay(gray, np.ones_like(gray))          # the strongest map: the radiograph still shows
    heat = np.array(_cam_colormap()(1.0)[:3])
    np.testing.assert_allclose(full, (1 - CAM_MAX_WEIGHT) * rgb + CAM_MAX_WEIGHT * heat)
    weak = gradcam_overlay(gray, np.full_like(gray, 0.05))    # weak evidence is drawn, not hidden
    assert np.abs(weak - rgb).max() > 0.1 and CAM_MIN_WEIGHT >= 0.2
    # The peak is a dark, saturated colour, visible on white bone (not pale yellow).
    assert heat @ [0.299, 0.587, 0.114] < 0.5 and heat.max() - heat.min() > 0.5
    signed = gradcam_overlay(np.full((4, 4), 0.5), np.array([[-1.0] * 4, [1.0] * 4, [0.0] * 4, [0.5] * 4]))
    assert signed[0, 0, 2] > signed[0, 0, 0] and signed[1, 0, 0] > signed[1, 0, 2]      # against blue, for red
    np.testing.assert_allclose(signed[2], 0.5)


def test_shap_picture_fades_what_is_within_noise_and_says_when_nothing_is_measurable():
    from minivgg.explain.render import shap_caption, shap_overlay, shap_panel
    gray = np.full((32, 32), 0.5)
    result = make_result([0.1, -0.1, 0.01, 0.0], [0.01] * 4)
    assert result.significant.tolist() == [True, True, False, False]
    sure = make_result(result.values, [0.0] * 4)                  # the same values, all significant
    change, full = (np.abs(shap_overlay(gray, r) - 0.5).sum(axis=2) for r in (result, sure))
    np.testing.assert_allclose(change[result.regions < 2], full[result.regions < 2])
    np.testing.assert_allclose(change[result.regions == 2], 0.25 * full[result.regions == 2])   # faded, not hidden
    assert change[result.regions == 2].min() > 0
    assert "130 model calls" in shap_caption(result) and "largest stderr 0.01" in shap_caption(result)
    flat = make_result([3e-7, -2e-7, 1e-7, 0.0], [0.0] * 4)        # below 1e-6 of the probability's range
    assert not flat.measurable and "no measurable effect" in flat.warnings[-1]
    np.testing.assert_array_equal(shap_overlay(gray, flat), np.repeat(gray[..., None], 3, 2))
    assert "no measurable effect" in shap_panel(gray, flat, "SHAP").texts
    assert "contribution to probability" not in shap_panel(gray, flat, "SHAP").texts     # no scale for noise


def test_combined_figure_has_three_maps_of_one_size_drawn_pixel_for_pixel():
    from PIL import Image

    from minivgg.explain.render import combined_figure, gradcam_overlay, shap_overlay
    gray = np.random.default_rng(0).random((32, 32))
    shap = make_result([0.1, -0.1, 0.01, 0.0], [0.01] * 4)
    picture = combined_figure(gray, cam=gray, shap=shap, class_name="RA", probability=0.9, title="hand.png")
    assert len(picture.maps) == 3
    sizes = {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in picture.maps}
    assert len(sizes) == 1 and sizes.pop()[0] >= 300
    # Each map shows its overlay, each of the 32 x 32 pixels enlarged to a square of 10 or 11 equal pixels.
    for box, rgb in zip(picture.maps, (np.repeat(gray[..., None], 3, 2), gradcam_overlay(gray, gray),
                                       shap_overlay(gray, shap))):
        side = box[2] - box[0]
        expected = Image.fromarray(np.round(rgb * 255).astype(np.uint8)).resize((side, side), Image.Resampling.NEAREST)
        np.testing.assert_array_equal(np.asarray(picture.image.crop(box)), np.asarray(expected))
    assert "Grad-CAM, scaled to its maximum" in picture.texts and "contribution to probability" in picture.texts
    assert "hand.png  predicted: RA (p = 0.900)" in picture.texts


def test_colour_bar_is_level_with_its_map_and_its_ticks_are_round_values():
    import doctest

    from minivgg.explain import render
    gray = np.random.default_rng(0).random((32, 32))
    for panel in (render.cam_panel(gray, gray), render.cam_panel(gray, gray - 0.5, "HiResCAM"),
                  render.shap_panel(gray, make_result([0.1, -0.1, 0.01, 0.0], [0.01] * 4), "SHAP")):
        x0, y0, x1, y1 = panel.maps[0]
        edge = np.asarray(panel.image)[y0 - 20:y1 + 3, x1 + render.BAR_GAP].sum(axis=1) == 0   # the bar's black left
        assert (np.flatnonzero(edge) + y0 - 20).tolist() == list(range(y0, y1))                # side, by the map
    rng = np.random.default_rng(1)
    spans = [tuple(sorted(rng.normal(0, 10.0 ** rng.integers(-6, 4), 2))) for _ in range(200)]
    for lo, hi in [(-0.13, 0.13), (0, 1), (-1e-12, 1e-12)] + spans:
        ticks = render._ticks(lo, hi)
        values, labels = [v for v, _ in ticks], [label for _, label in ticks]
        assert 2 <= len(ticks) <= 7 and lo - 1e-9 * (hi - lo) <= min(values) and max(values) <= hi + 1e-9 * (hi - lo)
        assert len(set(labels)) == len(labels), labels                             # enough decimals to tell apart
        step = np.diff(values)
        np.testing.assert_allclose(step, step[0])
    assert [label for _, label in render._ticks(0, 1)] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert doctest.testmod(render).failed == 0


def test_diverging_colours_are_matplotlibs_rdbu_r():
    from matplotlib import colormaps

    from minivgg.explain.render import diverging_colours
    t = np.concatenate([np.linspace(-0.5, 1.5, 4001), [0, 0.5, 1, 255 / 256, 1 / 256]])
    np.testing.assert_allclose(diverging_colours(t), colormaps["RdBu_r"](t)[:, :3], atol=1e-12)


def test_a_stamp_with_nothing_to_draw_or_a_field_without_value_still_saves(tmp_path):
    from PIL import Image

    from minivgg.explain.render import save_explanation
    gray = np.random.default_rng(0).random((32, 32))
    for i, stamp in enumerate(({"Software": "minivgg"}, {"Model": ""}, {"Model": "m", "Source": None}, {})):
        written = save_explanation(tmp_path / str(i), "img", gray, "RA", 0.9, cam=gray, stamp=stamp)
        text = Image.open(written[0]).text
        assert {k: v for k, v in text.items() if k in stamp} == {k: v for k, v in stamp.items() if v is not None}


def test_maps_enlarged_less_than_three_times_are_filtered_and_more_are_drawn_pixel_for_pixel():
    from minivgg.explain.render import MAP_SIDE, _map
    stripes = np.zeros((128, 128, 3))
    stripes[:, ::2] = 1                                     # one-pixel stripes: pixel for pixel they stay 0 or 255
    assert MAP_SIDE / 128 < 3
    drawn = np.asarray(_map(stripes).image)
    assert drawn.shape == (MAP_SIDE, MAP_SIDE, 3) and ((drawn > 5) & (drawn < 250)).mean() > 0.5   # filtered
    small = np.asarray(_map(stripes[:32, :32]).image)                                             # 10.3 times
    assert set(np.unique(small)) == {0, 255}


def test_pictures_saved_from_several_threads_at_once_are_the_same(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from minivgg.explain.render import save_explanation
    gray = np.random.default_rng(0).random((32, 32))
    shap = make_result([0.1, -0.1, 0.01, 0.0], [0.01] * 4)

    def save(i):
        return save_explanation(tmp_path / str(i), "img", gray, "RA", 0.9, cam=gray, shap=shap, stamp={"Model": "m"})

    serial = [p.read_bytes() for p in save("serial")]
    with ThreadPoolExecutor(4) as pool:
        for written in pool.map(save, range(8)):
            assert [p.read_bytes() for p in written] == serial


def test_raw_files_carry_the_standard_errors(tmp_path):
    import json

    from minivgg.explain.render import save_explanation
    result = make_result([0.1, -0.1, 0.01, 0.0], [0.01, 0.02, np.inf, 0.0])
    written = save_explanation(tmp_path, "img", np.zeros((32, 32)), "RA", 0.9, shap=result, raw=True)
    assert {p.name for p in written} == {"img_shap.png", "img_explain.png", "img_shap.npy", "img_shap_stderr.npy",
                                         "img_shap.json"}
    np.testing.assert_array_equal(np.load(tmp_path / "img_shap_stderr.npy"), result.stderr_map().astype(np.float32))
    record = json.loads((tmp_path / "img_shap.json").read_text())
    assert record["n_evaluations"] == 130 and record["class"] == "RA" and record["regions"][2]["stderr"] is None
    assert [r["value"] for r in record["regions"]] == pytest.approx([0.1, -0.1, 0.01, 0.0])
