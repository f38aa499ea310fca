"""Adam and SGD against NumPy transcriptions of the update rules in PyTorch's documentation (no torch needed)."""

import numpy as np
import pytest

from minivgg import SGD, Adam


def documented_adam(theta, grads, lr, betas, eps, weight_decay):
    """torch.optim.Adam's algorithm box (amsgrad=False, maximize=False), step by step, in float64."""
    beta1, beta2 = betas
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if weight_decay:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def documented_sgd(theta, grads, lr, momentum, dampening, weight_decay, nesterov):
    """torch.optim.SGD's algorithm box (maximize=False), step by step, in float64."""
    b = None
    for t, g in enumerate(grads, start=1):
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
    return theta


@pytest.mark.parametrize("settings", [dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
                                      dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)])
def test_adam_matches_the_documented_update(rng, settings):
    theta0 = rng.standard_normal((7, 5))
    grads = [rng.standard_normal((7, 5)) for _ in range(6)]
    params = {"w": theta0.copy()}
    opt = Adam(params, **settings)
    for g in grads:
        opt.step({"w": g})
    np.testing.assert_allclose(params["w"], documented_adam(theta0, grads, **settings), rtol=1e-12, atol=1e-14)
    assert opt.t == len(grads)


def test_adam_in_float32_computes_in_float32(rng):
    """float32 parameters are updated in float32 arithmetic (as PyTorch does): within float32 round-off
    of the float64 update, and not equal to it rounded (which float64 arithmetic would give)."""
    settings = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    theta0 = rng.standard_normal(4096)
    grads = [rng.standard_normal(4096) for _ in range(4)]
    params = {"w": theta0.astype(np.float32)}
    opt = Adam(params, **settings)
    for g in grads:
        opt.step({"w": g.astype(np.float32)})
    assert params["w"].dtype == np.float32 and opt.m["w"].dtype == np.float32
    reference = documented_adam(theta0.astype(np.float32).astype(np.float64),
                                [g.astype(np.float32).astype(np.float64) for g in grads], **settings)
    np.testing.assert_allclose(params["w"], reference, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(params["w"], reference.astype(np.float32))


@pytest.mark.parametrize("settings", [dict(lr=1e-2, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
                                      dict(lr=1e-2, momentum=0.9, dampening=0.1, weight_decay=1e-3, nesterov=False),
                                      dict(lr=5e-3, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True)])
def test_sgd_matches_the_documented_update(rng, settings):
    theta0 = rng.standard_normal(11)
    grads = [rng.standard_normal(11) for _ in range(5)]
    params = {"w": theta0.copy()}
    opt = SGD(params, **settings)
    for g in grads:
        opt.step({"w": g})
    np.testing.assert_allclose(params["w"], documented_sgd(theta0, grads, **settings), rtol=1e-12, atol=1e-14)


def test_optimiser_state_round_trips(rng):
    params = {"w": rng.standard_normal(4)}
    opt = Adam(params, lr=1e-2)
    opt.step({"w": np.ones(4)})
    clone_params = {"w": params["w"].copy()}
    clone = Adam(clone_params, lr=1e-2)
    clone.load_state_dict(opt.state_dict())
    for _ in range(3):
        g = rng.standard_normal(4)
        opt.step({"w": g})
        clone.step({"w": g})
    np.testing.assert_array_equal(params["w"], clone_params["w"])
