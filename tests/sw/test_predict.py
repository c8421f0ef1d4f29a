"""Predictions of trained infinite-width networks from the kernels."""

import math

import numpy as np
import pytest
from scipy.linalg import cho_factor, cho_solve

from tangentcore.errors import TangentcoreError
from tangentcore.sw.kernels import MLPKernel, erf_activation, sign_activation
from tangentcore.sw.predict import gp_from_kernels, kernel_regression, nngp_regression, trained_network_gp
from tangentcore.sw.surrogates import get_surrogate


def circle(angles):
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


@pytest.fixture
def problem():
    rng = np.random.default_rng(21)
    x_train = circle(np.array([0.3, 1.4, 2.2, 3.9, 5.0]))
    y_train = np.stack([np.sin(2 * np.arctan2(x_train[:, 1], x_train[:, 0])), rng.standard_normal(5)], axis=1)
    x_test = circle(np.linspace(0.0, 2 * np.pi, 17, endpoint=False) + 0.05)
    kernel = MLPKernel(2, sign_activation(), get_surrogate("gaussian", 2.0), sigma_w=1.0, sigma_b=0.2)
    return kernel, x_train, y_train, x_test


def test_trained_mean_interpolates_training_targets(problem):
    kernel, x_train, y_train, _ = problem
    prediction = trained_network_gp(kernel, x_train, y_train, x_train)
    assert prediction.mean.shape == (5, 2)
    np.testing.assert_allclose(prediction.mean, y_train, atol=1e-9)
    np.testing.assert_allclose(prediction.covariance, 0.0, atol=1e-9)


def test_finite_time_tends_to_infinite_time(problem):
    kernel, x_train, y_train, x_test = problem
    final = trained_network_gp(kernel, x_train, y_train, x_test)
    gaps = []
    for time in [1.0, 10.0, 1000.0]:
        prediction = trained_network_gp(kernel, x_train, y_train, x_test, time=time)
        gaps.append(np.max(np.abs(prediction.mean - final.mean)))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-8


def test_time_zero_is_the_prior(problem):
    kernel, x_train, y_train, x_test = problem
    prediction = trained_network_gp(kernel, x_train, y_train, x_test, time=0.0)
    np.testing.assert_allclose(prediction.mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(prediction.covariance, kernel.nngp(x_test), atol=1e-12)


def test_discrete_steps_approach_gradient_flow(problem):
    # (1 − ηK)^s → exp(−η s K) as η → 0 with η s fixed.
    kernel, x_train, y_train, x_test = problem
    flow = trained_network_gp(kernel, x_train, y_train, x_test, learning_rate=1e-3, time=2000.0)
    steps = trained_network_gp(kernel, x_train, y_train, x_test, learning_rate=1e-3, steps=2000)
    np.testing.assert_allclose(steps.mean, flow.mean, atol=1e-3)


def test_symmetric_case_matches_cholesky():
    # With the NTK (symmetric) the LU route must agree with a Cholesky solve.
    x_train = circle(np.array([0.1, 1.0, 2.0, 4.0]))
    x_test = circle(np.array([0.5, 3.0]))
    y_train = np.array([1.0, -0.5, 0.25, 2.0])
    kernel = MLPKernel(2, erf_activation(2.0), sigma_b=0.1)
    train = kernel.ntk(x_train)
    mean = kernel_regression(kernel.ntk(x_test, x_train), train, y_train)
    reference = kernel.ntk(x_test, x_train) @ cho_solve(cho_factor(train), y_train)
    np.testing.assert_allclose(mean, reference, rtol=1e-10)


def test_sgntk_is_asymmetric_and_solved(problem):
    kernel, x_train, y_train, x_test = problem
    train = MLPKernel(2, erf_activation(4.0), get_surrogate("arctan", 1.0), sigma_b=0.2).sgntk(x_train * [1.0, 2.0])
    assert np.max(np.abs(train - train.T)) > 1e-3
    mean = kernel_regression(train, train, y_train)
    np.testing.assert_allclose(mean, y_train, atol=1e-9)


def test_nngp_regression_interpolates(problem):
    kernel, x_train, y_train, x_test = problem
    posterior = nngp_regression(kernel, x_train, y_train, np.vstack([x_train, x_test]))
    np.testing.assert_allclose(posterior.mean[:5], y_train, atol=1e-9)
    assert np.all(posterior.std[:5] < 1e-6)
    assert np.all(posterior.std[5:] > 1e-3)


def test_bad_shapes_raise(problem):
    kernel, x_train, y_train, x_test = problem
    k = kernel.sgntk(x_train)
    with pytest.raises(TangentcoreError, match="y_train must have 5 rows"):
        kernel_regression(k, k, y_train[:3])
    with pytest.raises(TangentcoreError, match="square"):
        kernel_regression(k, k[:, :3], y_train)
    with pytest.raises(TangentcoreError, match="nngp_test_test must have shape"):
        gp_from_kernels(k, k, np.eye(2), k, k, y_train)
    with pytest.raises(TangentcoreError, match="learning_rate"):
        trained_network_gp(kernel, x_train, y_train, x_test, learning_rate=-1.0)
    with pytest.raises(TangentcoreError, match="time must be"):
        trained_network_gp(kernel, x_train, y_train, x_test, time=-math.inf)


def test_divergent_learning_rate_warns(problem):
    kernel, x_train, y_train, x_test = problem
    with pytest.warns(UserWarning, match="diverge"):
        trained_network_gp(kernel, x_train, y_train, x_test, learning_rate=10.0, steps=3)
