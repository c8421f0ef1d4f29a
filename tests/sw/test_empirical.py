"""Finite NTK-parametrized networks: surrogate backward, empirical kernels, training."""

import numpy as np
import pytest
import torch

from tangentcore.errors import TangentcoreError
from tangentcore.sw.empirical import NTKMLP, SurrogateActivation, empirical_kernels, train_ensemble
from tangentcore.sw.kernels import MLPKernel, erf_activation
from tangentcore.sw.surrogates import get_surrogate


def circle(angles, radius=1.0):
    return torch.tensor(radius * np.stack([np.cos(angles), np.sin(angles)], axis=1))


def mean_relative_error(width, activation_scale, surrogate, x1, x2, seeds, kind):
    analytic_kernel = MLPKernel(2, erf_activation(activation_scale), surrogate, sigma_w=1.2, sigma_b=0.1)
    analytic = getattr(analytic_kernel, kind)(x1.numpy(), x2.numpy())
    errors = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        model = NTKMLP(
            2, [width, width], activation="erf", scale=activation_scale, surrogate=surrogate,
            sigma_w=1.2, sigma_b=0.1, generator=generator,
        )
        empirical = getattr(empirical_kernels(model, x1, x2), kind).numpy()
        errors.append(np.linalg.norm(empirical - analytic) / np.linalg.norm(analytic))
    return float(np.mean(errors))


# name: a smooth and a kinked surrogate.
@pytest.mark.parametrize("name", ["gaussian", "triangle"])
def test_surrogate_backward_uses_registry(name):
    surrogate = get_surrogate(name, 2.0)
    u = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64, requires_grad=True)
    output = SurrogateActivation.apply(u, "sign", 1.0, surrogate)
    output.sum().backward()
    torch.testing.assert_close(u.grad, surrogate.derivative(u.detach()))
    at_zero = SurrogateActivation.apply(torch.zeros(1, dtype=torch.float64), "sign", 1.0, surrogate)
    assert at_zero.item() == 1.0


def test_true_derivative_gives_equal_kernels():
    # erf(m·) with the gaussian surrogate of the same m: J̃ = J exactly.
    surrogate = get_surrogate("gaussian", 3.0)
    model = NTKMLP(2, [30, 20], activation="erf", scale=3.0, surrogate=surrogate,
                   generator=torch.Generator().manual_seed(1))
    x = circle(np.linspace(0.0, 6.0, 7))
    kernels = empirical_kernels(model, x)
    torch.testing.assert_close(kernels.sgntk, kernels.ntk, rtol=1e-12, atol=1e-12)


# kind: the NTK and the SG-NTK.
@pytest.mark.parametrize("kind", ["ntk", "sgntk"])
def test_empirical_converges_to_analytic(kind):
    # Statistical test with fixed seeds: the error falls like 1/√width, so
    # ten times the width should cut the mean error by about 3; require 1.7.
    surrogate = get_surrogate("arctan", 1.0)
    x = circle(np.linspace(0.0, 2 * np.pi, 6, endpoint=False))
    narrow = mean_relative_error(80, 2.0, surrogate, x, x, range(6), kind)
    wide = mean_relative_error(800, 2.0, surrogate, x, x, range(6), kind)
    assert wide < narrow / 1.7
    assert wide < 0.1


def test_sgntk_orientation_matches_analytic():
    # Inputs of different norms and a surrogate far from φ′ make I clearly
    # asymmetric; the empirical J(x1) J̃(x2)ᵀ must match I(x1, x2), not I(x2, x1)ᵀ.
    surrogate = get_surrogate("gaussian", 0.4)
    x1 = circle(np.array([0.2, 1.7, 3.0]), radius=2.5)
    x2 = circle(np.array([0.4, 2.9, 4.4, 5.5]), radius=0.4)
    analytic_kernel = MLPKernel(2, erf_activation(2.0), surrogate, sigma_w=1.2, sigma_b=0.1)
    analytic = analytic_kernel.sgntk(x1.numpy(), x2.numpy())
    swapped = analytic_kernel.sgntk(x2.numpy(), x1.numpy()).T
    assert np.linalg.norm(analytic - swapped) > 0.3 * np.linalg.norm(analytic)

    error = mean_relative_error(1000, 2.0, surrogate, x1, x2, range(4), "sgntk")
    error_swapped = np.linalg.norm(analytic - swapped) / np.linalg.norm(analytic)
    assert error < error_swapped / 3


def test_ensemble_training_matches_single_training():
    surrogate = get_surrogate("fast_sigmoid", 2.0)
    generator = torch.Generator().manual_seed(2)
    models = [NTKMLP(2, [16, 16], activation="sign", surrogate=surrogate, sigma_b=0.1, generator=generator)
              for _ in range(3)]
    x = circle(np.array([0.0, 1.0, 2.5, 4.0]))
    y = torch.tensor([0.5, -1.0, 1.0, 0.0], dtype=torch.float64)
    trained = train_ensemble(models, x, y, learning_rate=0.05, steps=30)

    single = NTKMLP(2, [16, 16], activation="sign", surrogate=surrogate, sigma_b=0.1)
    single.load_state_dict(models[1].state_dict())
    optimizer = torch.optim.SGD(single.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        loss = 0.5 * torch.sum((single(x)[:, 0] - y) ** 2)
        loss.backward()
        optimizer.step()
    for name, parameter in single.named_parameters():
        torch.testing.assert_close(dict(trained[1].named_parameters())[name], parameter)
    before = torch.sum((models[0](x)[:, 0] - y) ** 2)
    after = torch.sum((trained[0](x)[:, 0] - y) ** 2)
    assert after < 0.5 * before


def test_invalid_networks_raise():
    with pytest.raises(TangentcoreError, match="at least one hidden layer"):
        NTKMLP(2, [])
    with pytest.raises(TangentcoreError, match="activation must be"):
        NTKMLP(2, [4], activation="relu")
    with pytest.raises(TangentcoreError, match="needs a surrogate"):
        NTKMLP(2, [4], activation="sign")
    with pytest.raises(TangentcoreError, match="surrogate_backward=True"):
        NTKMLP(2, [4])(torch.zeros(1, 2, dtype=torch.float64), surrogate_backward=True)
