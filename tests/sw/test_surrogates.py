"""Surrogate registry: normalization, antiderivatives and Gaussian means."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate

from tangentcore.sw.surrogates import SURROGATE_NAMES, get_surrogate

MONTE_CARLO_SAMPLES = 10**6


# name: every registered family; scale: narrow, unit and wide surrogates.
@pytest.mark.parametrize("name", SURROGATE_NAMES)
@pytest.mark.parametrize("scale", [0.5, 1.0, 7.0])
def test_derivative_integrates_to_two(name, scale):
    surrogate = get_surrogate(name, scale)
    # The kinks sit at u = 0 and, for the triangle, at the support edge ±2/m.
    breaks = [-2.0 / scale, 0.0, 2.0 / scale]
    pieces = [(-np.inf, breaks[0]), (breaks[0], breaks[1]), (breaks[1], breaks[2]), (breaks[2], np.inf)]
    total = sum(
        integrate.quad(lambda u: float(surrogate.derivative(np.array(u))), lo, hi, epsabs=1e-13, limit=200)[0]
        for lo, hi in pieces
    )
    assert total == pytest.approx(2.0, abs=1e-8)


# name: every registered family.
@pytest.mark.parametrize("name", SURROGATE_NAMES)
def test_antiderivative_matches_derivative(name):
    surrogate = get_surrogate(name, 3.0)
    u = np.linspace(-2.0, 2.0, 4001)
    slope = np.gradient(surrogate.antiderivative(u), u)
    interior = slice(1, -1)
    assert np.max(np.abs(slope[interior] - surrogate.derivative(u)[interior])) < 2e-2
    assert surrogate.antiderivative(np.array([-1e6, 1e6])) == pytest.approx([-1.0, 1.0], abs=1e-5)
    assert surrogate.antiderivative(np.zeros(1))[0] == 0.0


# name: every registered family.
@pytest.mark.parametrize("name", SURROGATE_NAMES)
def test_torch_and_numpy_agree(name):
    surrogate = get_surrogate(name, 2.5)
    u = np.linspace(-3.0, 3.0, 61)
    from_torch = surrogate.derivative(torch.from_numpy(u)).numpy()
    np.testing.assert_allclose(from_torch, surrogate.derivative(u), rtol=1e-12, atol=1e-14)
    from_torch = surrogate.antiderivative(torch.from_numpy(u)).numpy()
    np.testing.assert_allclose(from_torch, surrogate.antiderivative(u), rtol=1e-12, atol=1e-14)


def test_sigmoid_far_tail_is_finite():
    surrogate = get_surrogate("sigmoid", 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = surrogate.derivative(np.array([-1e4, 1e4]))
    assert np.all(values == 0.0)


# name: every registered family; variance: below, near and above the surrogate width.
@pytest.mark.parametrize("name", SURROGATE_NAMES)
@pytest.mark.parametrize("variance", [0.01, 0.7, 30.0])
def test_gaussian_mean_against_monte_carlo(name, variance):
    surrogate = get_surrogate(name, 2.0)
    rng = np.random.default_rng(20240515)
    samples = surrogate.derivative(math.sqrt(variance) * rng.standard_normal(MONTE_CARLO_SAMPLES))
    standard_error = samples.std() / math.sqrt(samples.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = surrogate.gaussian_mean(variance)
    assert abs(samples.mean() - expected) < 4 * standard_error


# name: the families with closed forms; tau: the full range of the table and beyond it.
@pytest.mark.parametrize("name", ["gaussian", "arctan", "triangle"])
def test_quadrature_matches_closed_forms(name):
    surrogate = get_surrogate(name, 1.0)
    tau = np.concatenate([[0.0, 3e-6], np.logspace(-4, 8, 2401), [3e9]])
    with pytest.warns(UserWarning, match="quadrature"):
        quadrature = surrogate.gaussian_mean(tau**2, method="quadrature")
    closed = surrogate.gaussian_mean(tau**2, method="closed")
    np.testing.assert_allclose(quadrature, closed, rtol=1e-8, atol=0)


def test_gaussian_mean_limits():
    # As the variance vanishes the mean is φ̃′(0); as it grows it is 2·N(0; 0, s²).
    for name in SURROGATE_NAMES:
        surrogate = get_surrogate(name, 3.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            at_zero, far = surrogate.gaussian_mean(np.array([0.0, 1e12]))
        assert at_zero == pytest.approx(float(surrogate.derivative(np.zeros(1))[0]), rel=1e-12)
        assert far == pytest.approx(2.0 / math.sqrt(2.0 * math.pi * 1e12), rel=1e-4)


def test_gaussian_mean_rejects_bad_input():
    surrogate = get_surrogate("gaussian", 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        surrogate.gaussian_mean(np.array([-1.0]))
    with pytest.raises(ValueError, match="no closed-form"):
        get_surrogate("sigmoid").gaussian_mean(1.0, method="closed")
    with pytest.raises(ValueError, match="method must be"):
        surrogate.gaussian_mean(1.0, method="exact")
