"""Predictions of infinitely wide networks trained with (surrogate) gradient descent.

Training on squared error ``L = ½ Σ_i |f(x_i) − y_i|²`` with learning rate
``η`` moves the network function as ``ḟ(x) = −η K(x, X) (f(X) − Y)``, with
``K`` the NTK Θ for gradient descent or the SG-NTK ``I(x, X) = J(x) J̃(X)ᵀ``
for surrogate gradient learning (rows true Jacobian, columns quasi-Jacobian;
see :mod:`tangentcore.sw.kernels`). At infinite width ``K`` stays constant,
so after training time ``t``::

    f_t(x) = f_0(x) + A_t(x) (Y − f_0(X)),   A_t(x) = K(x, X) K(X, X)⁻¹ (1 − D_t)

with ``D_t = exp(−η t K(X, X))`` for gradient flow or ``(1 − η K(X, X))^s``
after ``s`` discrete steps, and ``D_∞ = 0``. Because ``f_0`` is a centred
Gaussian process with the NNGP kernel Σ, ``f_t`` is Gaussian with mean
``A_t(x) Y`` and covariance::

    Σ(x, x′) − A_t(x) Σ(X, x′) − Σ(x, X) A_t(x′)ᵀ + A_t(x) Σ(X, X) A_t(x′)ᵀ

``K(X, X)`` is not symmetric for the SG-NTK, so it is only ever solved by LU
(``numpy.linalg.solve``), never factored by Cholesky. Each output column of
``Y`` trains independently with the same kernel, so the covariance is shared.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm

from tangentcore.errors import TangentcoreError

from .kernels import MLPKernel

__all__ = [
    "GaussianPrediction",
    "gp_from_kernels",
    "kernel_regression",
    "nngp_regression",
    "trained_network_gp",
]

# Above this condition number of K(X, X) the solve loses most digits.
_CONDITION_WARNING = 1e12


@dataclass(frozen=True)
class GaussianPrediction:
    """Mean ``(n_test, outputs)`` and covariance ``(n_test, n_test)`` of a Gaussian prediction."""

    mean: np.ndarray
    covariance: np.ndarray

    @property
    def std(self) -> np.ndarray:
        """Standard deviation per test input (negative rounding residue clipped to 0)."""
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))


def kernel_regression(k_test_train: np.ndarray, k_train_train: np.ndarray, y_train: np.ndarray) -> np.ndarray:
    """Return ``K(x, X) K(X, X)⁻¹ Y``, the kernel-regression mean, by LU solve."""
    k_test_train, k_train_train, y_train, squeeze = _check_blocks(k_test_train, k_train_train, y_train)
    weights = _solve_right(k_test_train, k_train_train)
    mean = weights @ y_train
    return mean[:, 0] if squeeze else mean


def gp_from_kernels(
    tangent_test_train: np.ndarray,
    tangent_train_train: np.ndarray,
    nngp_test_test: np.ndarray,
    nngp_test_train: np.ndarray,
    nngp_train_train: np.ndarray,
    y_train: np.ndarray,
    *,
    learning_rate: float = 1.0,
    time: float = math.inf,
    steps: int | None = None,
) -> GaussianPrediction:
    """Return the Gaussian distribution of the trained network on the test inputs.

    ``tangent_*`` are blocks of the NTK or SG-NTK (rows test or train inputs
    with the true Jacobian, columns train inputs with the quasi-Jacobian).
    ``nngp_*`` are blocks of the NNGP kernel. Training runs for gradient-flow
    ``time`` (default ∞) or, if ``steps`` is given, that many discrete
    gradient steps of size ``learning_rate``.
    """
    tangent_test_train, tangent_train_train, y_train, squeeze = _check_blocks(
        tangent_test_train, tangent_train_train, y_train
    )
    n_test, n_train = tangent_test_train.shape
    for name, block, shape in [
        ("nngp_test_test", nngp_test_test, (n_test, n_test)),
        ("nngp_test_train", nngp_test_train, (n_test, n_train)),
        ("nngp_train_train", nngp_train_train, (n_train, n_train)),
    ]:
        if np.shape(block) != shape:
            raise TangentcoreError(f"{name} must have shape {shape}, not {np.shape(block)}")

    progress = np.eye(n_train) - _training_decay(tangent_train_train, learning_rate, time, steps)
    # A = K(x, X) K(X, X)⁻¹ (1 − D). K⁻¹ and D commute, so K⁻¹(1 − D) is one solve.
    weights = tangent_test_train @ np.linalg.solve(tangent_train_train, progress)

    mean = weights @ y_train
    cross = weights @ nngp_test_train.T
    covariance = nngp_test_test - cross - cross.T + weights @ nngp_train_train @ weights.T
    covariance = 0.5 * (covariance + covariance.T)
    return GaussianPrediction(mean[:, 0] if squeeze else mean, covariance)


def trained_network_gp(
    kernel: MLPKernel,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    tangent: str = "sgntk",
    learning_rate: float = 1.0,
    time: float = math.inf,
    steps: int | None = None,
) -> GaussianPrediction:
    """Return the Gaussian distribution of infinitely wide networks trained on ``(x_train, y_train)``.

    ``tangent`` is ``"sgntk"`` (surrogate gradient learning with
    ``kernel.surrogate``) or ``"ntk"`` (plain gradient descent).
    """
    train = kernel.kernels(x_train, tangent=tangent)
    test_train = kernel.kernels(x_test, x_train, tangent=tangent)
    nngp_test_test = kernel.nngp(x_test)
    return gp_from_kernels(
        test_train.tangent,
        train.tangent,
        nngp_test_test,
        test_train.nngp,
        train.nngp,
        y_train,
        learning_rate=learning_rate,
        time=time,
        steps=steps,
    )


def nngp_regression(
    kernel: MLPKernel,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    noise_variance: float = 0.0,
) -> GaussianPrediction:
    """Return the Bayesian GP posterior with the NNGP kernel Σ (training only the readout, in the limit).

    ``noise_variance`` is added to the diagonal of Σ(X, X); 0 interpolates.
    """
    if not (math.isfinite(noise_variance) and noise_variance >= 0):
        raise TangentcoreError(f"noise_variance must be a finite number ≥ 0, not {noise_variance!r}")
    train = kernel.nngp(x_train) + noise_variance * np.eye(len(x_train))
    test_train = kernel.nngp(x_test, x_train)
    test_test = kernel.nngp(x_test)
    test_train, train, y_train, squeeze = _check_blocks(test_train, train, y_train)
    weights = _solve_right(test_train, train)
    mean = weights @ y_train
    covariance = test_test - weights @ test_train.T
    covariance = 0.5 * (covariance + covariance.T)
    return GaussianPrediction(mean[:, 0] if squeeze else mean, covariance)


def _check_blocks(k_test_train, k_train_train, y_train):
    k_test_train = np.asarray(k_test_train, dtype=np.float64)
    k_train_train = np.asarray(k_train_train, dtype=np.float64)
    y_train = np.asarray(y_train, dtype=np.float64)
    squeeze = y_train.ndim == 1
    if squeeze:
        y_train = y_train[:, None]
    n_train = k_train_train.shape[0] if k_train_train.ndim == 2 else -1
    if k_train_train.ndim != 2 or k_train_train.shape[1] != n_train:
        raise TangentcoreError(f"the train-train kernel must be square, not shape {k_train_train.shape}")
    if k_test_train.ndim != 2 or k_test_train.shape[1] != n_train:
        raise TangentcoreError(
            f"the test-train kernel must have shape (n_test, {n_train}), not {k_test_train.shape}"
        )
    if y_train.ndim != 2 or y_train.shape[0] != n_train:
        raise TangentcoreError(f"y_train must have {n_train} rows (one per training input), not shape {y_train.shape}")
    condition = np.linalg.cond(k_train_train)
    if not condition < _CONDITION_WARNING:
        warnings.warn(
            f"the train-train kernel has condition number {condition:.3g}; predictions may lose most digits "
            "(duplicate training inputs or a kernel close to rank-deficient)",
            stacklevel=3,
        )
    return k_test_train, k_train_train, y_train, squeeze


def _solve_right(k_test_train, k_train_train):
    """Return ``K(x, X) K(X, X)⁻¹`` by an LU solve of the transposed system."""
    return np.linalg.solve(k_train_train.T, k_test_train.T).T


def _training_decay(kernel, learning_rate, time, steps):
    """Return ``D = exp(−η t K)`` (gradient flow) or ``(1 − η K)^steps`` (discrete steps)."""
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise TangentcoreError(f"learning_rate must be a positive finite number, not {learning_rate!r}")
    eigenvalues = np.linalg.eigvals(kernel)
    if steps is not None:
        if not (isinstance(steps, (int, np.integer)) and steps >= 0):
            raise TangentcoreError(f"steps must be an integer ≥ 0, not {steps!r}")
        radius = np.max(np.abs(1.0 - learning_rate * eigenvalues))
        if radius > 1.0:
            warnings.warn(
                f"learning_rate {learning_rate:g} makes discrete training diverge: the spectral radius of "
                f"1 − ηK(X, X) is {radius:.4g} > 1; use learning_rate < 2/λ_max ≈ {2 / np.max(np.abs(eigenvalues)):.3g}",
                stacklevel=3,
            )
        return np.linalg.matrix_power(np.eye(len(kernel)) - learning_rate * kernel, int(steps))

    if not (time >= 0):
        raise TangentcoreError(f"time must be ≥ 0 (math.inf for the end of training), not {time!r}")
    if np.min(eigenvalues.real) <= 0:
        warnings.warn(
            f"K(X, X) has an eigenvalue with real part {np.min(eigenvalues.real):.3g} ≤ 0, so gradient flow "
            "does not converge on the training set; the t = ∞ prediction is not its limit",
            stacklevel=3,
        )
    if math.isinf(time):
        return np.zeros_like(kernel)
    return expm(-learning_rate * time * kernel)
