"""minivgg against PyTorch on identical weights: logits, every gradient, optimiser steps."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is the reference oracle here; pip install torch==2.13.0")

from minivgg import SGD, VGG8, Adam, softmax_cross_entropy  # noqa: E402
from tests.conftest import TINY  # noqa: E402
from tests.torch_reference import torch_vgg8  # noqa: E402


def paired(dtype=np.float64, seed=0, **config):
    ours = VGG8(**{**TINY, **config}, dtype=dtype, seed=seed)
    return ours, torch_vgg8(ours)


def test_state_dict_names_and_shapes_match_torchvision_layout():
    ours = VGG8()  # the paper's model
    theirs = torch_vgg8(ours)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert ours.state_dict()[k].shape == tuple(v.shape)
    assert ours.state_dict()["classifier.0.weight"].shape == (512, 25088)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_logits_and_all_gradients_match(rng, dtype, tol):
    ours, theirs = paired(dtype, channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=16, image_size=64)
    theirs.eval()
    x = rng.standard_normal((3, 3, 64, 64)).astype(dtype)
    y = np.array([0, 1, 1])
    weight = np.array([0.4, 1.6])

    logits = ours.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, y, weight)
    dx = ours.backward(dlogits)

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    lt = theirs(xt)
    loss_t = torch.nn.functional.cross_entropy(lt, torch.from_numpy(y), weight=torch.from_numpy(weight).to(lt.dtype))
    loss_t.backward()

    scale = np.abs(lt.detach().numpy()).max()
    np.testing.assert_allclose(logits, lt.detach().numpy(), rtol=tol, atol=tol * scale)
    assert loss == pytest.approx(loss_t.item(), rel=tol)
    g = xt.grad.numpy()
    np.testing.assert_allclose(dx, g, rtol=tol, atol=tol * np.abs(g).max())
    grads = ours.grads()
    for name, p in theirs.named_parameters():
        ref = p.grad.numpy()
        np.testing.assert_allclose(grads[name], ref, rtol=tol, atol=tol * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("make_ours,make_theirs", [
    (lambda p: Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3),
     lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3)),
    (lambda p: SGD(p, lr=1e-2, momentum=0.9, dampening=0.1, weight_decay=1e-3),
     lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    (lambda p: SGD(p, lr=1e-2, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, nesterov=True)),
], ids=["adam", "sgd-momentum", "sgd-nesterov"])
def test_optimiser_steps_match(rng, make_ours, make_theirs):
    ours, theirs = paired(np.float64, seed=5)
    theirs.eval()     # dropout off in both, so the two see the same function
    opt, opt_t = make_ours(ours.parameters()), make_theirs(theirs.parameters())
    y = np.array([1, 0, 1, 1])
    for step in range(5):
        x = rng.standard_normal((4, 3, 32, 32))
        _, dlogits = softmax_cross_entropy(ours.forward(x), y)
        ours.backward(dlogits, need_input_grad=False)
        opt.step(ours.grads())
        opt_t.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt_t.step()
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.parameters()[name], p.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_paper_size_float32_forward_matches(rng):
    ours, theirs = paired(np.float32, channels=(64, 128, 256, 256, 512, 512, 512, 512), hidden=512, image_size=224)
    theirs.eval()
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.forward(x, keep=False), ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
