"""Analytic infinite-width kernels of MLPs: NNGP Σ, NTK Θ and SG-NTK I.

The network is in the NTK parametrization, with widths ``n_0 … n_L`` for the
input and the ``L`` hidden layers and one output unit (every output unit of a
wider output layer has the same kernel)::

    h¹(x)     = σ_w/√n_0 · W¹ x + σ_b b¹
    h^{l+1}   = σ_w/√n_l · W^{l+1} φ(h^l) + σ_b b^{l+1},    f(x) = h^{L+1}(x)

with all entries of ``W`` and ``b`` standard normal at initialization. In the
limit of infinite hidden widths, with ``(u, v)`` centred Gaussian with
covariance ``[[Σ^l(x,x), Σ^l(x,x′)], [Σ^l(x,x′), Σ^l(x′,x′)]]``::

    Σ¹(x,x′)       = σ_w² x·x′/n_0 + σ_b²
    Σ^{l+1}(x,x′)  = σ_w² E[φ(u) φ(v)] + σ_b²          (nngp)
    Σ̇^{l+1}(x,x′)  = σ_w² E[φ′(u) ψ(v)]                 (dot_sigma)
    K¹ = Σ¹,   K^{l+1} = Σ^{l+1} + K^l · Σ̇^{l+1}

``ψ = φ′`` gives the NTK ``Θ = K^{L+1}``. ``ψ = φ̃′``, a
surrogate derivative, gives the surrogate-gradient NTK ``I = K^{L+1}`` of
Eilers, Memmesheimer and Goedeke, "A generalized neural tangent kernel for
surrogate gradient learning" (NeurIPS 2024, arXiv:2405.15539).

Orientation of I: ``I(x, x′) = J(x) J̃(x′)ᵀ``. The row argument ``x`` enters
through the true Jacobian ``J``, which uses φ′ and is the ``u`` above. The
column argument ``x′`` enters through the quasi-Jacobian ``J̃``, computed by
backpropagation with φ̃′, and is the ``v`` above. Surrogate gradient learning with squared error moves the
network function as ``ḟ(x) = −η I(x, X) (f(X) − Y)``, so predictions use
``I(x_test, X_train)``. ``I`` is not symmetric unless ``φ̃′ = φ′``.

Activations (:func:`erf_activation`, :func:`sign_activation`,
:func:`custom_activation`) each provide the same parts: the function, the
NNGP expectation, its diagonal and the mixed derivative expectation. All
Gaussian expectations of ``erf(m·)``, ``sign`` and the five registered
surrogates are closed forms or reduce exactly to a one-dimensional integral
of the surrogate (see :meth:`Activation.dot_sigma`). Custom activations use
two-dimensional Gauss–Hermite quadrature and warn.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from tangentcore.errors import TangentcoreError

from .surrogates import Surrogate

__all__ = [
    "Activation",
    "Kernels",
    "MLPKernel",
    "custom_activation",
    "erf_activation",
    "sign_activation",
]

# Pairs whose angle has sin θ at or below this count as collinear (ρ = ±1),
# where the naive NTK of sign is infinite.
_COLLINEAR_TOLERANCE = 1e-12

# Pairs with |cos θ| above 1 − this get θ from distances instead of arccos.
_NEAR_COLLINEAR = 1e-6

# Pairs per block of the recursion: 2**16 float64 values are 512 KiB, so the
# temporaries of a block stay small and their memory is reused by the next.
_BLOCK_ELEMENTS = 2**16

# Upper bound on the elements of one Gauss–Hermite evaluation (pairs × nodes²),
# so that custom activations stay within memory on several thousand inputs.
_QUADRATURE_CHUNK_ELEMENTS = 2**22


@dataclass(frozen=True)
class Activation:
    """An activation φ with the Gaussian expectations its kernels need.

    ``kind`` is ``"erf"`` (``φ(u) = erf(m u)``, ``m = scale``), ``"sign"``
    (``φ(u) = sign(u)``, ``sign(0) = +1``, with distributional derivative
    ``2δ(u)``) or ``"custom"`` (``function`` and ``derivative`` given as
    NumPy callables, expectations by Gauss–Hermite quadrature of
    ``quadrature_order`` nodes per dimension).
    """

    kind: str
    scale: float = 1.0
    function: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    derivative: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    name: str = ""
    quadrature_order: int = 40

    def __post_init__(self):
        if self.kind not in ("erf", "sign", "custom"):
            raise TangentcoreError(f"activation kind must be 'erf', 'sign' or 'custom', not {self.kind!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise TangentcoreError(f"activation scale must be a positive finite number, not {self.scale!r}")
        if self.kind == "custom" and self.function is None:
            raise TangentcoreError("a custom activation needs function=; pass a NumPy callable φ(u)")
        if self.quadrature_order < 2:
            raise TangentcoreError(f"quadrature_order must be at least 2, not {self.quadrature_order!r}")

    @property
    def label(self) -> str:
        """A short name such as ``erf(5·)`` or ``sign`` for plots and messages."""
        if self.kind == "erf":
            return f"erf({self.scale:g}·)"
        return self.name or self.kind

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Evaluate φ elementwise on a NumPy array."""
        if self.kind == "erf":
            from scipy.special import erf

            return erf(self.scale * u)
        if self.kind == "sign":
            return np.where(u >= 0, 1.0, -1.0)
        return self.function(u)

    # -- NNGP ---------------------------------------------------------------

    def nngp(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Return ``E[φ(u) φ(v)]`` for ``(u, v)`` with variances ``a``, ``b`` and covariance ``c``.

        erf: ``(2/π) arcsin(2m²c / √((1 + 2m²a)(1 + 2m²b)))``, a standard
        Gaussian integral (tested against Monte Carlo).
        sign (the limit m → ∞): ``(2/π) arcsin(c / √(ab))``.
        """
        if self.kind == "erf":
            m2 = self.scale**2
            argument = 2.0 * m2 * c / np.sqrt((1.0 + 2.0 * m2 * a) * (1.0 + 2.0 * m2 * b))
            return (2.0 / math.pi) * np.arcsin(np.clip(argument, -1.0, 1.0))
        if self.kind == "sign":
            return _sign_nngp(_angle(a, b, c))
        return _gauss_hermite_2d(self.function, self.function, a, b, c, self.quadrature_order, self.label)

    def nngp_diag(self, a: np.ndarray) -> np.ndarray:
        """Return ``E[φ(u)²]`` for ``u ~ N(0, a)``."""
        if self.kind == "erf":
            m2a = 2.0 * self.scale**2 * a
            return (2.0 / math.pi) * np.arcsin(m2a / (1.0 + m2a))
        if self.kind == "sign":
            return np.ones_like(a)
        return _gauss_hermite_1d(lambda u: self.function(u) ** 2, a, self.quadrature_order, self.label)

    # -- mixed derivative term ----------------------------------------------

    def dot_sigma(
        self,
        a: np.ndarray,
        b: np.ndarray,
        c: np.ndarray,
        surrogate: Surrogate | None = None,
    ) -> np.ndarray:
        """Return ``E[φ′(u) ψ(v)]``: ``ψ = φ′`` if ``surrogate`` is None (NTK), else ``ψ = φ̃′``.

        ``u`` belongs to the row input (true Jacobian), ``v`` to the column
        input (quasi-Jacobian).

        True derivatives: for erf, ``φ′(u) = (2m/√π) exp(−m²u²)`` and
        ``E[φ′(u) φ′(v)] = (4m²/π) / √(1 + 2m²(a + b) + 4m⁴(ab − c²))``
        (a Gaussian integral, ``det(1 + DΣ)^{-1/2}``). For sign,
        ``E[2δ(u) 2δ(v)] = 4 p(0, 0) = (2/π) / √(ab − c²)``, which is infinite
        where ``c² = ab``, in particular on the diagonal, so that case raises.

        Surrogates: φ′ of erf is a Gaussian in ``u``, and that of sign is
        ``2δ(u)``, so conditioning on ``u`` reduces the integral exactly to
        ``E[φ′(u)] · E[φ̃′(v′)]`` with ``v′ ~ N(0, b′)``:

        - erf: ``E[φ′(u)] = (2m/√π)/√(1 + 2m²a)``,
          ``b′ = (b + 2m²(ab − c²)) / (1 + 2m²a)``;
        - sign: ``E[2δ(u)] = 2/√(2πa)``, ``b′ = b − c²/a`` (the variance of
          ``v`` given ``u = 0``; the erf case tends to it as m → ∞).

        ``E[φ̃′(v′)]`` is :meth:`Surrogate.gaussian_mean`: closed for the
        gaussian, arctan and triangle surrogates, a tabulated quadrature for
        the others. Custom activations use 2-D Gauss–Hermite quadrature.
        """
        if self.kind == "custom":
            if self.derivative is None:
                raise TangentcoreError(
                    f"activation {self.label!r} has no derivative; pass derivative= to custom_activation"
                )
            partner = self.derivative if surrogate is None else surrogate.derivative
            return _gauss_hermite_2d(self.derivative, partner, a, b, c, self.quadrature_order, self.label)

        if self.kind == "sign":
            try:
                return _sign_dot_sigma(a, b, np.sin(_angle(a, b, c)), surrogate)
            except _InfiniteSignNTK as infinite:
                raise infinite.to_error() from None

        m2 = self.scale**2
        gap = np.maximum(a * b - c**2, 0.0)
        if surrogate is None:
            return (4.0 * m2 / math.pi) / np.sqrt(1.0 + 2.0 * m2 * (a + b) + 4.0 * m2**2 * gap)
        mean_derivative = (2.0 * self.scale / math.sqrt(math.pi)) / np.sqrt(1.0 + 2.0 * m2 * a)
        conditional_variance = (b + 2.0 * m2 * gap) / (1.0 + 2.0 * m2 * a)
        return mean_derivative * surrogate._gaussian_mean(conditional_variance)


def erf_activation(scale: float = 1.0) -> Activation:
    """Return ``φ(u) = erf(scale·u)``; its derivative is the gaussian surrogate of the same scale."""
    return Activation("erf", float(scale))


def sign_activation() -> Activation:
    """Return ``φ(u) = sign(u)`` with ``sign(0) = +1`` and derivative ``2δ(u)``."""
    return Activation("sign")


def custom_activation(
    function: Callable[[np.ndarray], np.ndarray],
    derivative: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    name: str = "custom",
    quadrature_order: int = 40,
) -> Activation:
    """Return an activation whose expectations come from Gauss–Hermite quadrature.

    ``function`` and ``derivative`` map NumPy arrays elementwise. The error of
    the quadrature depends on the smoothness of the integrand: kinks (ReLU)
    and jumps converge slowly in ``quadrature_order``.
    """
    return Activation("custom", 1.0, function, derivative, name, int(quadrature_order))


def _correlation(a, b, c):
    return np.clip(c / np.sqrt(a * b), -1.0, 1.0)


# The sign kernels depend on the pair only through the angle θ = arccos ρ
# between u and v. The recursion for sign carries θ itself: arccos loses half
# the digits near ρ = ±1 (an error δ in ρ becomes √(2δ) in θ), and that loss
# compounds layer after layer on near-collinear pairs and on the diagonal.


def _angle(a, b, c):
    """Return θ = arccos(c/√(ab)) (for callers that only have a, b, c)."""
    return np.arccos(_correlation(a, b, c))


def _angle_from_cosine_gaps(one_minus_cos, one_plus_cos):
    """Return θ from 1 − cos θ and 1 + cos θ, accurate near 0 and π."""
    return 2.0 * np.arctan2(np.sqrt(np.maximum(one_minus_cos, 0.0)), np.sqrt(np.maximum(one_plus_cos, 0.0)))


def _sign_nngp(theta):
    # E[sign(u) sign(v)] = 1 − 2 P(sign u ≠ sign v) = 1 − 2θ/π = (2/π) arcsin ρ.
    result = theta * (-2.0 / math.pi)
    result += 1.0
    return result


def _sign_dot_sigma(a, b, sin_theta, surrogate):
    """Return E[φ′(u) ψ(v)] for sign from the variances and sin θ of (u, v)."""
    if surrogate is None:
        # E[2δ(u) 2δ(v)] = 4 p(0, 0) = (2/π)/√(ab − c²), and ab − c² = ab sin²θ.
        collinear = sin_theta <= _COLLINEAR_TOLERANCE
        if np.any(collinear):
            raise _InfiniteSignNTK(int(np.count_nonzero(collinear)))
        return (2.0 / math.pi) / (np.sqrt(a * b) * sin_theta)
    # E[2δ(u) φ̃′(v)] = 2/√(2πa) · E[φ̃′(v) | u = 0], and v | u = 0 has variance
    # b − c²/a = b sin²θ.
    conditional_variance = np.square(sin_theta)
    conditional_variance *= b
    result = surrogate._gaussian_mean(conditional_variance)
    result *= np.sqrt(2.0 / (math.pi * a))
    return result


class _InfiniteSignNTK(Exception):
    """Raised inside the recursion with the number of pairs where the sign NTK is infinite."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count

    def to_error(self) -> TangentcoreError:
        return TangentcoreError(
            f"the NTK of sign is infinite on {self.count} input pair(s) with |Σ(x,x′)| = √(Σ(x,x)Σ(x′,x′)), "
            "such as x = x′ (the diagonal), because E[2δ(u)·2δ(v)] diverges there; "
            "use sgntk() with a surrogate, or erf_activation(m) with finite m"
        )


def _warn_quadrature(label: str, order: int, dimensions: int) -> None:
    warnings.warn(
        f"activation {label!r}: Gaussian expectation by {dimensions}-D Gauss–Hermite quadrature "
        f"of order {order}; accuracy depends on the smoothness of the activation",
        stacklevel=4,
    )


def _gauss_hermite_1d(function, a, order, label):
    _warn_quadrature(label, order, 1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    weights = weights / math.sqrt(2.0 * math.pi)
    a = np.asarray(a, dtype=np.float64)
    values = function(np.sqrt(a)[..., None] * nodes)
    return np.sum(values * weights, axis=-1)


def _gauss_hermite_2d(first, second, a, b, c, order, label):
    """Return ``E[first(u) second(v)]`` by tensor-product Gauss–Hermite quadrature.

    With ``u = √a z₁`` and ``v = √b (ρ z₁ + √(1 − ρ²) z₂)``, ``z`` standard
    normal, evaluated in chunks of pairs to bound memory.
    """
    _warn_quadrature(label, order, 2)
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    weights = weights / math.sqrt(2.0 * math.pi)
    weight_grid = np.outer(weights, weights).ravel()
    z1 = np.repeat(nodes, order)
    z2 = np.tile(nodes, order)

    a, b, c = np.broadcast_arrays(*(np.asarray(t, dtype=np.float64) for t in (a, b, c)))
    shape = a.shape
    a, b, c = a.ravel(), b.ravel(), c.ravel()
    rho = _correlation(a, b, c)
    result = np.empty(a.size)
    chunk = max(1, _QUADRATURE_CHUNK_ELEMENTS // (order * order))
    for start in range(0, a.size, chunk):
        part = slice(start, start + chunk)
        u = np.sqrt(a[part])[:, None] * z1
        v = np.sqrt(b[part])[:, None] * (rho[part, None] * z1 + np.sqrt(1.0 - rho[part, None] ** 2) * z2)
        result[part] = (first(u) * second(v)) @ weight_grid
    return result.reshape(shape)


class Kernels(NamedTuple):
    """Kernel blocks of one pair of input sets, each of shape ``(n1, n2)``.

    ``nngp`` is Σ^{L+1}, the covariance of the output at initialization;
    ``tangent`` is the NTK Θ (no surrogate) or the SG-NTK I.
    """

    nngp: np.ndarray
    tangent: np.ndarray


@dataclass(frozen=True)
class MLPKernel:
    """The analytic kernels of an MLP with ``depth`` hidden layers.

    ``surrogate`` is the surrogate derivative used for the quasi-Jacobian
    (None: the true derivative, so :meth:`sgntk` equals :meth:`ntk`).
    All methods take inputs of shape ``(n, n_0)`` and return float64 arrays.
    """

    depth: int
    activation: Activation
    surrogate: Surrogate | None = None
    sigma_w: float = 1.0
    sigma_b: float = 0.0

    def __post_init__(self):
        if isinstance(self.depth, bool) or not (isinstance(self.depth, numbers.Integral) and self.depth >= 1):
            raise TangentcoreError(f"depth (hidden layers) must be an integer ≥ 1, not {self.depth!r}")
        if not (math.isfinite(self.sigma_w) and self.sigma_w > 0):
            raise TangentcoreError(f"sigma_w must be a positive finite number, not {self.sigma_w!r}")
        if not (math.isfinite(self.sigma_b) and self.sigma_b >= 0):
            raise TangentcoreError(f"sigma_b must be a finite number ≥ 0, not {self.sigma_b!r}")

    def nngp(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """Return the NNGP kernel Σ^{L+1}(x1, x2), the output covariance at initialization."""
        return self._recursion(x1, x2, tangent=None).nngp

    def ntk(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """Return the NTK Θ(x1, x2) = J(x1) J(x2)ᵀ, ignoring ``surrogate``.

        Raises TangentcoreError for sign activations wherever Θ is infinite.
        """
        return self._recursion(x1, x2, tangent="ntk").tangent

    def sgntk(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """Return the SG-NTK I(x1, x2) = J(x1) J̃(x2)ᵀ: rows true Jacobian, columns quasi-Jacobian."""
        return self._recursion(x1, x2, tangent="sgntk").tangent

    def kernels(self, x1: np.ndarray, x2: np.ndarray | None = None, *, tangent: str = "sgntk") -> Kernels:
        """Return the NNGP kernel and the NTK or SG-NTK (``tangent``) from one pass of the recursion."""
        if tangent not in ("ntk", "sgntk"):
            raise TangentcoreError(f"tangent must be 'ntk' or 'sgntk', not {tangent!r}")
        return self._recursion(x1, x2, tangent=tangent)

    def _recursion(self, x1, x2, tangent: str | None) -> Kernels:
        x1 = _as_inputs(x1, "x1")
        x2 = x1 if x2 is None else _as_inputs(x2, "x2")
        if x2.shape[1] != x1.shape[1]:
            raise TangentcoreError(
                f"x1 and x2 must have the same input dimension, not {x1.shape[1]} and {x2.shape[1]}"
            )
        surrogate = self.surrogate if tangent == "sgntk" else None
        symmetric = x2 is x1

        # The per-input variances Σ^l(x, x) of every layer are computed once
        # per input set. The pair blocks below need only them and the n1 × n2
        # cross terms, so a test-versus-train block never computes the
        # train-versus-train block.
        variances1 = self._variances(x1)
        variances2 = variances1 if symmetric else self._variances(x2)
        # One multithreaded BLAS product for the layer-1 cross terms: for sign
        # the cosines of the unit vectors x̂ along x̃ = (σ_w x/√n_0, σ_b), else
        # Σ¹ itself. The blocks overwrite it with Σ^{L+1}.
        if self.activation.kind == "sign":
            units1 = _augment(x1, self.sigma_w, self.sigma_b)
            units2 = units1 if symmetric else _augment(x2, self.sigma_w, self.sigma_b)
            nngp = units1 @ units2.T
        else:
            nngp = x1 @ x2.T
            nngp *= self.sigma_w**2 / x1.shape[1]
            nngp += self.sigma_b**2
        n1, n2 = nngp.shape
        kernel = np.empty((n1, n2)) if tangent else None

        def compute_rows(rows: slice) -> None:
            # Row blocks keep the temporaries small (no page faults on fresh
            # n1 × n2 arrays) and let NumPy, which releases the GIL, use all cores.
            row_variances = [v[rows] for v in variances1]
            if self.activation.kind == "sign":
                block = self._sign_block(
                    nngp[rows], units1[rows], units2, row_variances, variances2, tangent, surrogate
                )
            else:
                diagonal = (np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)) if symmetric else None
                block = self._block(nngp[rows], row_variances, variances2, tangent, surrogate, diagonal)
            nngp[rows] = block.nngp
            if tangent:
                kernel[rows] = block.tangent

        rows_per_block = max(1, _BLOCK_ELEMENTS // n2)
        blocks = [slice(start, min(start + rows_per_block, n1)) for start in range(0, n1, rows_per_block)]
        infinite_pairs = 0
        if len(blocks) == 1:
            try:
                compute_rows(blocks[0])
            except _InfiniteSignNTK as infinite:
                infinite_pairs = infinite.count
        else:
            with ThreadPoolExecutor(max_workers=min(len(blocks), os.cpu_count() or 1)) as pool:
                for future in [pool.submit(compute_rows, rows) for rows in blocks]:
                    try:
                        future.result()
                    except _InfiniteSignNTK as infinite:
                        infinite_pairs += infinite.count
        if infinite_pairs:
            raise _InfiniteSignNTK(infinite_pairs).to_error()
        return Kernels(nngp, kernel)

    def _variances(self, x: np.ndarray) -> list[np.ndarray]:
        """Return ``[Σ¹(x,x), …, Σ^{L+1}(x,x)]``, one array over the inputs per layer."""
        w2, b2 = self.sigma_w**2, self.sigma_b**2
        variance = w2 * np.einsum("ij,ij->i", x, x) / x.shape[1] + b2
        if self.activation.kind == "sign" and np.any(variance == 0):
            raise TangentcoreError(
                "an all-zero input row with sigma_b = 0 has layer-1 variance 0, where sign(h) is undefined; "
                "drop such rows or use sigma_b > 0"
            )
        variances = [variance]
        for _ in range(self.depth):
            variances.append(w2 * self.activation.nngp_diag(variances[-1]) + b2)
        return variances

    def _block(self, sigma, row_variances, column_variances, tangent, surrogate, diagonal) -> Kernels:
        """Run the recursion on one block of pairs for erf and custom activations.

        ``diagonal`` indexes the entries of the block that pair an input with
        itself (symmetric case); they are pinned to the per-input variances
        so that rounding in the cross terms cannot push |ρ| above 1 deeper in.
        """
        w2, b2 = self.sigma_w**2, self.sigma_b**2
        kernel = sigma.copy() if tangent else None
        for layer in range(self.depth):
            a = row_variances[layer][:, None]
            b = column_variances[layer][None, :]
            if tangent:
                dot_sigma = self.activation.dot_sigma(a, b, sigma, surrogate)
                dot_sigma *= w2
            sigma = self.activation.nngp(a, b, sigma)
            sigma *= w2
            sigma += b2
            if diagonal is not None:
                sigma[diagonal] = row_variances[layer + 1]
            if tangent:
                kernel *= dot_sigma
                kernel += sigma
        return Kernels(sigma, kernel)

    def _sign_block(self, cosine, units1, units2, row_variances, column_variances, tangent, surrogate) -> Kernels:
        """Run the recursion on one block of pairs for sign, in terms of the angle θ of (u, v).

        ``cosine`` is the block of layer-1 cosines x̂·x̂′; ``units1`` and
        ``units2`` are the unit vectors of its rows and columns.
        """
        w2, b2 = self.sigma_w**2, self.sigma_b**2

        # Near ρ = ±1, arccos loses half the digits, so those pairs get
        # θ = 2 atan2(|x̂ − x̂′|, |x̂ + x̂′|), exact for equal inputs.
        cosine = cosine.copy()
        np.clip(cosine, -1.0, 1.0, out=cosine)
        theta = np.arccos(cosine)
        near = np.nonzero(np.abs(cosine) > 1.0 - _NEAR_COLLINEAR)
        if near[0].size:
            difference = np.linalg.norm(units1[near[0]] - units2[near[1]], axis=1)
            total = np.linalg.norm(units1[near[0]] + units2[near[1]], axis=1)
            theta[near] = 2.0 * np.arctan2(difference, total)
        sin_theta = np.sin(theta)

        sigma = cosine
        sigma *= np.sqrt(row_variances[0])[:, None] * np.sqrt(column_variances[0])[None, :]
        kernel = sigma.copy() if tangent else None
        # After a sign layer every input has variance q = σ_w² + σ_b².
        variance = w2 + b2
        for layer in range(self.depth):
            if tangent:
                a = row_variances[layer][:, None]
                b = column_variances[layer][None, :]
                dot_sigma = _sign_dot_sigma(a, b, sin_theta, surrogate)
                dot_sigma *= w2
            sigma = _sign_nngp(theta)
            sigma *= w2
            sigma += b2
            if tangent:
                kernel *= dot_sigma
                kernel += sigma
            if layer + 1 < self.depth:
                # 1 ∓ cos θ′ = (q ∓ Σ′)/q, written without cancellation; then
                # sin θ′ = √((1 − cos θ′)(1 + cos θ′)).
                one_minus_cos = theta * (w2 * 2.0 / (math.pi * variance))
                one_plus_cos = theta * (-2.0 * w2 / (math.pi * variance))
                one_plus_cos += 2.0 * (w2 + b2) / variance
                theta = _angle_from_cosine_gaps(one_minus_cos, one_plus_cos)
                np.multiply(one_minus_cos, one_plus_cos, out=sin_theta)
                np.sqrt(sin_theta, out=sin_theta)
        return Kernels(sigma, kernel)


def _augment(x, sigma_w, sigma_b):
    """Return the unit vectors along (σ_w x/√n_0, σ_b), one row per input."""
    augmented = np.hstack([sigma_w * x / math.sqrt(x.shape[1]), np.full((x.shape[0], 1), sigma_b)])
    return augmented / np.linalg.norm(augmented, axis=1, keepdims=True)


def _as_inputs(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise TangentcoreError(f"{name} must be a non-empty 2-D array (inputs × features), not shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise TangentcoreError(f"{name} contains NaN or infinite entries; clean the inputs first")
    return x
