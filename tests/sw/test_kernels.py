"""Analytic kernels: closed forms against Monte Carlo, quadrature, limits, orientation."""

import math
import warnings

import numpy as np
import pytest
from scipy.special import erf

from tangentcore.errors import TangentcoreError
from tangentcore.sw.kernels import MLPKernel, custom_activation, erf_activation, sign_activation
from tangentcore.sw.surrogates import SURROGATE_NAMES, get_surrogate

MONTE_CARLO_SAMPLES = 10**6

# Covariances (a, b, c) of (u, v): unequal variances, positive and negative
# correlation, and a nearly collinear pair.
COVARIANCES = [(1.2, 0.7, 0.5), (0.4, 2.5, -0.6), (1.0, 1.0, 0.95)]


def gaussian_pairs(a, b, c, seed):
    """Draw MONTE_CARLO_SAMPLES samples of (u, v) with covariance [[a, c], [c, b]]."""
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal((2, MONTE_CARLO_SAMPLES))
    rho = c / math.sqrt(a * b)
    u = math.sqrt(a) * z1
    v = math.sqrt(b) * (rho * z1 + math.sqrt(1.0 - rho**2) * z2)
    return u, v


def assert_within_standard_errors(samples, expected, count=4):
    standard_error = samples.std() / math.sqrt(samples.size)
    assert abs(samples.mean() - expected) < count * standard_error, (samples.mean(), expected, standard_error)


def erf_derivative(m):
    return lambda u: (2.0 * m / math.sqrt(math.pi)) * np.exp(-((m * u) ** 2))


# covariance: see COVARIANCES; m: smooth to nearly a step.
@pytest.mark.parametrize("covariance", COVARIANCES)
@pytest.mark.parametrize("m", [0.5, 2.0, 8.0])
def test_erf_nngp_against_monte_carlo(covariance, m):
    u, v = gaussian_pairs(*covariance, seed=1)
    expected = erf_activation(m).nngp(*(np.array(t) for t in covariance))
    assert_within_standard_errors(erf(m * u) * erf(m * v), expected)


# covariance: see COVARIANCES.
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_sign_nngp_against_monte_carlo(covariance):
    u, v = gaussian_pairs(*covariance, seed=2)
    expected = sign_activation().nngp(*(np.array(t) for t in covariance))
    assert_within_standard_errors(np.where(u >= 0, 1.0, -1.0) * np.where(v >= 0, 1.0, -1.0), expected)


# covariance: see COVARIANCES; m: smooth to nearly a step.
@pytest.mark.parametrize("covariance", COVARIANCES)
@pytest.mark.parametrize("m", [0.5, 2.0, 8.0])
def test_erf_dot_sigma_against_monte_carlo(covariance, m):
    u, v = gaussian_pairs(*covariance, seed=3)
    expected = erf_activation(m).dot_sigma(*(np.array(t) for t in covariance))
    derivative = erf_derivative(m)
    assert_within_standard_errors(derivative(u) * derivative(v), expected)


# name: every surrogate family; covariance: see COVARIANCES.
@pytest.mark.parametrize("name", SURROGATE_NAMES)
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_erf_surrogate_dot_sigma_against_monte_carlo(name, covariance):
    # Checks the exact reduction of E[φ′(u) φ̃′(v)] to a 1-D Gaussian mean.
    m = 3.0
    surrogate = get_surrogate(name, 1.5)
    u, v = gaussian_pairs(*covariance, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = erf_activation(m).dot_sigma(*(np.array(t) for t in covariance), surrogate)
    assert_within_standard_errors(erf_derivative(m)(u) * surrogate.derivative(v), expected)


# name: every surrogate family; covariance: see COVARIANCES.
@pytest.mark.parametrize("name", SURROGATE_NAMES)
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_sign_surrogate_dot_sigma_against_monte_carlo(name, covariance):
    # 2δ(u) is replaced by the box 1{|u| < ε}/ε, whose bias is O(ε²) and far
    # below the Monte Carlo error at this sample count.
    epsilon = 0.01
    surrogate = get_surrogate(name, 1.5)
    u, v = gaussian_pairs(*covariance, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = sign_activation().dot_sigma(*(np.array(t) for t in covariance), surrogate)
    box = (np.abs(u) < epsilon) / epsilon
    assert_within_standard_errors(box * surrogate.derivative(v), expected)


# covariance: the two pairs of COVARIANCES that are not nearly collinear.
@pytest.mark.parametrize("covariance", COVARIANCES[:2])
def test_sign_ntk_dot_sigma_against_monte_carlo(covariance):
    # E[2δ(u) 2δ(v)] with both deltas replaced by boxes of half-width ε.
    epsilon = 0.03
    u, v = gaussian_pairs(*covariance, seed=6)
    expected = sign_activation().dot_sigma(*(np.array(t) for t in covariance))
    box = (np.abs(u) < epsilon) * (np.abs(v) < epsilon) / epsilon**2
    assert_within_standard_errors(box, expected)


def test_sign_is_limit_of_erf():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((7, 3))
    surrogate = get_surrogate("gaussian", 2.0)
    sign = MLPKernel(3, sign_activation(), surrogate, sigma_w=1.1, sigma_b=0.2)
    steep = MLPKernel(3, erf_activation(1e7), surrogate, sigma_w=1.1, sigma_b=0.2)
    np.testing.assert_allclose(sign.nngp(x), steep.nngp(x), rtol=1e-5)
    np.testing.assert_allclose(sign.sgntk(x), steep.sgntk(x), rtol=1e-5)
    y = rng.standard_normal((4, 3))
    naive_sign = MLPKernel(1, sign_activation(), sigma_w=1.1, sigma_b=0.2)
    naive_steep = MLPKernel(1, erf_activation(1e6), sigma_w=1.1, sigma_b=0.2)
    np.testing.assert_allclose(naive_sign.ntk(x, y), naive_steep.ntk(x, y), rtol=1e-5)


# depth: one to four hidden layers; m: scale of erf and of its derivative.
@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("m", [0.7, 5.0])
def test_ntk_equals_sgntk_for_true_derivative(depth, m):
    x = np.random.default_rng(8).standard_normal((9, 4))
    kernel = MLPKernel(depth, erf_activation(m), get_surrogate("gaussian", m), sigma_w=1.3, sigma_b=0.3)
    np.testing.assert_allclose(kernel.sgntk(x), kernel.ntk(x), rtol=1e-12)
    np.testing.assert_allclose(kernel.ntk(x), kernel.ntk(x).T, rtol=1e-12)


def test_custom_quadrature_matches_closed_forms():
    # erf(m·) with small m is smooth enough for 2-D Gauss–Hermite of order 100.
    m = 0.5
    custom = custom_activation(lambda u: erf(m * u), erf_derivative(m), name="erf(0.5·)", quadrature_order=100)
    surrogate = get_surrogate("gaussian", 0.8)
    x = np.random.default_rng(9).standard_normal((6, 3))
    closed = MLPKernel(2, erf_activation(m), surrogate, sigma_w=1.2, sigma_b=0.1)
    quadrature = MLPKernel(2, custom, surrogate, sigma_w=1.2, sigma_b=0.1)
    with pytest.warns(UserWarning, match="Gauss–Hermite"):
        nngp, sgntk = quadrature.kernels(x)
    np.testing.assert_allclose(nngp, closed.nngp(x), rtol=1e-8)
    np.testing.assert_allclose(sgntk, closed.sgntk(x), rtol=1e-8)


def test_naive_sign_ntk_diagonal_raises():
    x = np.random.default_rng(10).standard_normal((5, 3))
    kernel = MLPKernel(2, sign_activation())
    with pytest.raises(TangentcoreError, match="infinite on 5 input pair"):
        kernel.ntk(x)
    with pytest.raises(TangentcoreError, match="use sgntk"):
        kernel.ntk(x[:2], np.vstack([x[1], -x[3]]))
    # Many row blocks: the message counts the pairs of all of them.
    many = np.random.default_rng(10).standard_normal((300, 3))
    with pytest.raises(TangentcoreError, match="infinite on 300 input pair"):
        kernel.ntk(many)
    with pytest.raises(TangentcoreError, match="infinite on 1 input pair"):
        sign_activation().dot_sigma(np.array(1.0), np.array(1.0), np.array(1.0))


def test_naive_erf_ntk_diagonal_grows_linearly():
    # One hidden layer: Θ = Σ² + Σ¹ Σ̇², and only Σ̇² on the diagonal grows like m.
    x = np.array([[1.0, 0.0], [0.6, 0.8]])
    increments = []
    off_diagonal = []
    for m in [100.0, 1000.0]:
        kernel = MLPKernel(1, erf_activation(m))
        nngp, ntk = kernel.kernels(x, tangent="ntk")
        increments.append(ntk[0, 0] - nngp[0, 0])
        off_diagonal.append(ntk[0, 1])
    assert increments[1] / increments[0] == pytest.approx(10.0, rel=1e-3)
    assert off_diagonal[1] / off_diagonal[0] == pytest.approx(1.0, abs=1e-3)


def test_orientation_rows_true_columns_surrogate():
    # Depth 1: I(x, x′) = Σ²(x, x′) + Σ¹(x, x′) σ_w² E[φ′(u) φ̃′(v)] with u the
    # pre-activation of the row input x and v that of the column input x′.
    sigma_w, sigma_b, m = 1.0, 0.0, 2.0
    surrogate = get_surrogate("fast_sigmoid", 0.5)
    x_row = np.array([[2.0, 0.0]])
    x_column = np.array([[0.3, 0.3]])
    kernel = MLPKernel(1, erf_activation(m), surrogate, sigma_w=sigma_w, sigma_b=sigma_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analytic = kernel.sgntk(x_row, x_column)[0, 0]
        swapped = kernel.sgntk(x_column, x_row)[0, 0]

    a, b, c = 2.0, 0.09, 0.3  # Σ¹ = x·x′/n_0
    u, v = gaussian_pairs(a, b, c, seed=11)
    mixed = erf_derivative(m)(u) * surrogate.derivative(v)
    nngp = erf_activation(m).nngp(np.array(a), np.array(b), np.array(c))
    samples = nngp + c * sigma_w**2 * mixed
    assert_within_standard_errors(samples, analytic)
    assert abs(swapped - analytic) > 10 * samples.std() / math.sqrt(samples.size)


# activation: the two closed-form activations.
@pytest.mark.parametrize("activation", [sign_activation(), erf_activation(3.0)])
def test_blocks_match_full_matrix(activation):
    rng = np.random.default_rng(12)
    train = rng.standard_normal((40, 5))
    test = np.vstack([rng.standard_normal((7, 5)), train[:3]])
    kernel = MLPKernel(3, activation, get_surrogate("gaussian", 1.5), sigma_w=1.2, sigma_b=0.1)
    full = kernel.kernels(np.vstack([test, train]))
    block = kernel.kernels(test, train)
    np.testing.assert_allclose(block.nngp, full.nngp[:10, 10:], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(block.tangent, full.tangent[:10, 10:], rtol=1e-10, atol=1e-12)


def test_large_input_sets_use_several_blocks():
    # 3000 inputs span dozens of row blocks; spot-check rows against small calls.
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3000, 8))
    kernel = MLPKernel(2, sign_activation(), get_surrogate("gaussian", 1.0), sigma_b=0.1)
    nngp, sgntk = kernel.kernels(x)
    assert nngp.shape == (3000, 3000)
    rows = [0, 1234, 2999]
    np.testing.assert_allclose(kernel.sgntk(x[rows], x), sgntk[rows], rtol=1e-12)
    np.testing.assert_allclose(np.diag(nngp), 1.01, rtol=1e-12)


def test_sign_diagonal_stays_exact_with_depth():
    # arccos of a rounded cosine near 1 would lose half the digits per layer.
    x = np.random.default_rng(14).standard_normal((6, 3))
    nngp = MLPKernel(8, sign_activation(), sigma_w=1.0, sigma_b=0.5).nngp(x)
    np.testing.assert_allclose(np.diag(nngp), 1.25, rtol=1e-13)


# bad: each invalid argument with the word its message must contain.
@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(depth=0, activation=erf_activation()), "depth"),
        (dict(depth=2, activation=erf_activation(), sigma_w=-1.0), "sigma_w"),
        (dict(depth=2, activation=erf_activation(), sigma_b=float("nan")), "sigma_b"),
    ],
)
def test_invalid_configuration_raises(arguments, message):
    with pytest.raises(TangentcoreError, match=message):
        MLPKernel(**arguments)


def test_invalid_inputs_raise():
    kernel = MLPKernel(1, sign_activation())
    with pytest.raises(TangentcoreError, match="2-D array"):
        kernel.nngp(np.ones(3))
    with pytest.raises(TangentcoreError, match="same input dimension"):
        kernel.nngp(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(TangentcoreError, match="all-zero input row"):
        kernel.nngp(np.zeros((1, 3)))
    with pytest.raises(TangentcoreError, match="NaN"):
        kernel.nngp(np.array([[np.nan, 1.0]]))
    with pytest.raises(TangentcoreError, match="scale"):
        erf_activation(0.0)


# covariance: see COVARIANCES; scales: activation m and surrogate m̃.
@pytest.mark.parametrize("covariance", COVARIANCES)
@pytest.mark.parametrize("scales", [(0.5, 2.0), (3.0, 1.0), (20.0, 0.3)])
def test_gaussian_surrogate_closed_forms(covariance, scales):
    # The reductions must reproduce the two closed forms for a gaussian φ̃′.
    a, b, c = (np.array(t) for t in covariance)
    m, m_tilde = scales
    surrogate = get_surrogate("gaussian", m_tilde)
    erf_expected = (4 * m * m_tilde / math.pi) / np.sqrt(
        (1 + 2 * m**2 * a) * (1 + 2 * m_tilde**2 * b) - 4 * m**2 * m_tilde**2 * c**2
    )
    sign_expected = (2 * math.sqrt(2) * m_tilde / math.pi) / np.sqrt(a + 2 * m_tilde**2 * (a * b - c**2))
    assert erf_activation(m).dot_sigma(a, b, c, surrogate) == pytest.approx(erf_expected, rel=1e-12)
    assert sign_activation().dot_sigma(a, b, c, surrogate) == pytest.approx(sign_expected, rel=1e-12)
