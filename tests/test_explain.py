"""Grad-CAM and Kernel-SHAP against oracles: PyTorch autograd, brute-force Shapley values, axioms."""

from itertools import combinations
from math import factorial

import numpy as np
import pytest

from minivgg.explain import GradCAM, KernelSHAP, grid_regions, superpixels, upsample_bilinear
from minivgg.explain.kernelshap import explain_function
from minivgg import VGG8, softmax
from tests.conftest import TINY


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


@pytest.mark.parametrize("m", [3, 6, 10])
def test_kernelshap_equals_brute_force_when_budget_covers_all(m):
    game = random_game(m, m)
    phi, v0, v1, n, exact = explain_function(lambda z: game(z.astype(float)), m, budget=2 ** m)
    assert exact and n == 2 ** m - 2
    np.testing.assert_allclose(phi, brute_force_shapley(lambda z: game(z.astype(float)), m), atol=1e-9)


@pytest.mark.parametrize("budget", [20, 100, 400])
def test_efficiency_holds_exactly_when_sampling(budget):
    game = random_game(12, 0)
    phi, v0, v1, n, exact = explain_function(lambda z: game(z.astype(float)), 12, budget=budget, seed=1)
    assert not exact and n <= budget
    assert phi.sum() == pytest.approx(v1 - v0, abs=1e-10)


def test_symmetry_and_dummy():
    # Players 0 and 1 are interchangeable; player 5 never changes the value.
    def game(z):
        z = z.astype(float)
        return 2 * z[:, 0] * z[:, 1] + z[:, 0] + z[:, 1] + 0.5 * z[:, 2] * z[:, 3] + z[:, 4] ** 2
    for budget in (2 ** 6, 30):
        phi, *_ = explain_function(game, 6, budget=budget, seed=0)
        assert phi[0] == pytest.approx(phi[1], abs=1e-9)
        assert phi[5] == pytest.approx(0, abs=1e-9)


def test_error_shrinks_as_budget_grows():
    m = 14
    game = random_game(m, 3)
    exact, *_ = explain_function(lambda z: game(z.astype(float)), m, budget=2 ** m)
    errors = []
    for budget in (60, 600, 6000):
        runs = [explain_function(lambda z: game(z.astype(float)), m, budget=budget, seed=s)[0] for s in range(4)]
        errors.append(np.mean([np.abs(r - exact).max() for r in runs]))
    assert errors[0] > errors[1] > errors[2]


def test_kernelshap_on_the_model_is_exact_for_few_regions(rng):
    model = VGG8(**{**TINY, "image_size": 32}, dtype=np.float64, seed=2)
    image = rng.standard_normal((3, 32, 32))
    explainer = KernelSHAP(model, n_regions=6, segmentation="grid", baseline="blur", budget=100, batch_size=7)
    result = explainer(image, target=1)
    assert result.n_regions == 6 and result.exact and result.n_evaluations == 64
    assert result.values.sum() == pytest.approx(result.fx - result.base_value, abs=1e-12)

    def value(z):
        keep = z[:, result.regions].astype(bool)
        batch = np.where(keep[:, None], image[None], explainer.baseline_for(image)[None])
        return model.predict_proba(batch)[:, 1]
    np.testing.assert_allclose(result.values, brute_force_shapley(value, 6), atol=1e-10)
    assert result.pixel_map().shape == (32, 32)


def test_regions():
    g = grid_regions((224, 224), 49)
    assert g.max() + 1 == 49 and np.bincount(g.ravel()).min() == 32 * 32
    yy, xx = np.mgrid[0:64, 0:64]
    gray = ((xx - 20) ** 2 + (yy - 30) ** 2 < 200).astype(float)         # a disc
    sp = superpixels(gray, 20)
    n = sp.max() + 1
    assert 5 <= n <= 40 and set(np.unique(sp)) == set(range(n))
    # Superpixels follow the edge: almost no region straddles the disc's boundary.
    mixed = [k for k in range(n) if 0.1 < gray[sp == k].mean() < 0.9]
    assert len(mixed) <= 2


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


@pytest.mark.parametrize("layer,target", [(None, None), ("features.18", 0), ("features.13", 1)])
def test_gradcam_equals_pytorch_autograd(rng, torch, layer, target):
    from tests.torch_reference import torch_vgg8
    ours = VGG8(channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=16, image_size=64, dtype=np.float64, seed=1)
    theirs = torch_vgg8(ours).eval()
    x = rng.standard_normal((3, 3, 64, 64))
    result = GradCAM(ours, layer)(x, target)
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
    alpha = store["g"].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * store["a"]).sum(1, keepdim=True))
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
    from minivgg.explain.checks import mass_on_lesions, mask_for_model, pointing_game
    mask = np.zeros((20, 20), bool)
    mask[5:8, 5:8] = True
    sal = np.zeros((20, 20))
    sal[6, 6], sal[15, 15] = 2.0, 1.0
    assert pointing_game(sal, mask, tolerance=0)
    assert not pointing_game(-sal, mask, tolerance=0)
    share, area = mass_on_lesions(sal, mask)
    assert share == pytest.approx(2 / 3) and area == pytest.approx(9 / 400)
    assert mask_for_model(np.ones((50, 40), bool), {"resize": 36, "crop": 32}).shape == (32, 32)


def test_cascading_randomization_tells_a_model_blind_map_from_a_faithful_one(rng):
    from minivgg.explain.checks import cascading_randomization
    from minivgg.conv import conv3x3_forward
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
    ours, v0, v1, _, _ = explain_function(f, m, budget=2 ** m)
    ref = shap.KernelExplainer(f, np.zeros((1, m))).shap_values(np.ones((1, m)), nsamples=2 ** m, l1_reg=False)
    np.testing.assert_allclose(ours, np.asarray(ref).reshape(-1), atol=1e-6)
