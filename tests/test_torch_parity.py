"""minivgg against PyTorch on identical weights: logits, every gradient, optimiser steps."""

import numpy as np
import pytest

from minivgg import SGD, VGG8, Adam, Tape, softmax_cross_entropy
from tests.conftest import TINY


def paired(dtype=np.float64, seed=0, **config):
    from tests.torch_reference import torch_vgg8
    ours = VGG8(**{**TINY, **config}, dtype=dtype, seed=seed)
    return ours, torch_vgg8(ours)


def test_state_dict_names_and_shapes_match_torchvision_layout(torch):
    ours = VGG8()  # the paper's model
    from tests.torch_reference import torch_vgg8
    theirs = torch_vgg8(ours)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert ours.state_dict()[k].shape == tuple(v.shape)
    assert ours.state_dict()["classifier.0.weight"].shape == (512, 25088)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_logits_and_all_gradients_match(rng, torch, dtype, tol):
    ours, theirs = paired(dtype, channels=(4, 6, 8, 8, 8, 8, 8, 8), hidden=16, image_size=64)
    theirs.eval()
    x = rng.standard_normal((3, 3, 64, 64)).astype(dtype)
    y = np.array([0, 1, 1])
    weight = np.array([0.4, 1.6])

    tape = Tape()
    logits = ours.forward(x, tape=tape)
    loss, dlogits = softmax_cross_entropy(logits, y, weight)
    dx, grads = ours.backward(dlogits, tape)

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    lt = theirs(xt)
    loss_t = torch.nn.functional.cross_entropy(lt, torch.from_numpy(y), weight=torch.from_numpy(weight).to(lt.dtype))
    loss_t.backward()

    scale = np.abs(lt.detach().numpy()).max()
    np.testing.assert_allclose(logits, lt.detach().numpy(), rtol=tol, atol=tol * scale)
    assert loss == pytest.approx(loss_t.item(), rel=tol)
    g = xt.grad.numpy()
    np.testing.assert_allclose(dx, g, rtol=tol, atol=tol * np.abs(g).max())
    for name, p in theirs.named_parameters():
        ref = p.grad.numpy()
        np.testing.assert_allclose(grads[name], ref, rtol=tol, atol=tol * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("make_ours,make_theirs", [
    (lambda p: Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3),
     lambda torch, p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3)),
    (lambda p: SGD(p, lr=1e-2, momentum=0.9, dampening=0.1, weight_decay=1e-3),
     lambda torch, p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    (lambda p: SGD(p, lr=1e-2, momentum=0.9, nesterov=True),
     lambda torch, p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, nesterov=True)),
], ids=["adam", "sgd-momentum", "sgd-nesterov"])
def test_optimiser_steps_match(rng, torch, make_ours, make_theirs):
    ours, theirs = paired(np.float64, seed=5)
    theirs.eval()     # dropout off in both, so the two see the same function
    opt, opt_t = make_ours(ours.parameters()), make_theirs(torch, theirs.parameters())
    y = np.array([1, 0, 1, 1])
    for _ in range(5):
        x = rng.standard_normal((4, 3, 32, 32))
        tape = Tape()
        _, dlogits = softmax_cross_entropy(ours.forward(x, tape=tape), y)
        opt.step(ours.backward(dlogits, tape, need_input_grad=False)[1])
        opt_t.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt_t.step()
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.parameters()[name], p.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_paper_size_float32_forward_matches(rng, torch):
    ours, theirs = paired(np.float32, channels=(64, 128, 256, 256, 512, 512, 512, 512), hidden=512, image_size=224)
    theirs.eval()
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.forward(x), ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
