"""Surrogate derivatives for the sign (Heaviside) nonlinearity.

One registry serves training (the backward pass of the sign activation) and
the kernels (the mixed derivative term of the SG-NTK), so the function that
training uses is exactly the function the kernels integrate.

Normalization: every surrogate is the derivative of an odd function that rises
from -1 to +1, so it integrates to 2 over the real line, the weight of the
distributional derivative ``2 δ(u)`` of ``sign``. The scale ``m`` sets the
peak height (about ``m``) and the width (about ``1/m``); as ``m → ∞`` each
surrogate tends to ``2 δ(u)``.

=============  =====================================  ==========================
name           surrogate derivative ``φ̃′(u)``          antiderivative (−1 → +1)
=============  =====================================  ==========================
gaussian       ``(2m/√π) exp(−m² u²)``                  ``erf(m u)``
fast_sigmoid   ``m / (1 + m|u|)²``                      ``m u / (1 + m|u|)``
arctan         ``m / (1 + (π m u / 2)²)``               ``(2/π) arctan(π m u / 2)``
triangle       ``m · max(0, 1 − m|u|/2)``               piecewise quadratic
sigmoid        ``m · sech²(m u)``                       ``tanh(m u) = 2σ(2mu) − 1``
=============  =====================================  ==========================

The derivative and antiderivative functions accept NumPy arrays and PyTorch
tensors alike and return the same kind.

Every family is ``φ̃′_m(u) = m · g(m u)`` for a fixed shape ``g`` (the scale-1
surrogate), so the Gaussian expectation that the kernels need,
``E[φ̃′(v)]`` for ``v ~ N(0, s²)``, depends only on ``τ = m s``:
``E[φ̃′(v)] = F(τ) = E[g(τ z)]`` with ``z ~ N(0, 1)``. ``F`` has a closed form
for gaussian, arctan and triangle and is tabulated by quadrature for
fast_sigmoid and sigmoid (see :meth:`Surrogate.gaussian_mean`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import warnings

import numpy as np
from scipy import special
from scipy.interpolate import CubicSpline

__all__ = ["Surrogate", "SURROGATE_NAMES", "get_surrogate"]


def _namespace(u: Any):
    """Return the array module (``numpy`` or ``torch``) that owns ``u``."""
    if type(u).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _gaussian(u, m: float, xp):
    return (2.0 * m / math.sqrt(math.pi)) * xp.exp(-(m * u) ** 2)


def _fast_sigmoid(u, m: float, xp):
    return m / (1.0 + m * xp.abs(u)) ** 2


def _arctan(u, m: float, xp):
    return m / (1.0 + (0.5 * math.pi * m * u) ** 2)


def _triangle(u, m: float, xp):
    return m * xp.clip(1.0 - 0.5 * m * xp.abs(u), 0.0, None)


def _sigmoid(u, m: float, xp):
    # m·sech²(m u) written with exp(−2|m u|) so that large |u| does not overflow cosh.
    decay = xp.exp(-2.0 * m * xp.abs(u))
    return 4.0 * m * decay / (1.0 + decay) ** 2


_DERIVATIVES: dict[str, Callable] = {
    "gaussian": _gaussian,
    "fast_sigmoid": _fast_sigmoid,
    "arctan": _arctan,
    "triangle": _triangle,
    "sigmoid": _sigmoid,
}

SURROGATE_NAMES: tuple[str, ...] = tuple(_DERIVATIVES)


def _erf(u, xp):
    return xp.erf(u) if xp is not np else special.erf(u)


def _triangle_antiderivative(w, xp):
    clipped = xp.clip(xp.abs(w), 0.0, 2.0)
    return xp.sign(w) * (clipped - 0.25 * clipped**2)


# Odd antiderivatives rising from -1 to +1; each is the forward function whose
# derivative the surrogate is (erf(m·) for the gaussian one, and so on).
_ANTIDERIVATIVES: dict[str, Callable] = {
    "gaussian": lambda u, m, xp: _erf(m * u, xp),
    "fast_sigmoid": lambda u, m, xp: m * u / (1.0 + m * xp.abs(u)),
    "arctan": lambda u, m, xp: (2.0 / math.pi) * xp.arctan(0.5 * math.pi * m * u),
    "triangle": lambda u, m, xp: _triangle_antiderivative(m * u, xp),
    "sigmoid": lambda u, m, xp: xp.tanh(m * u),
}


# Closed forms of F(τ) = E[g(τ z)], z ~ N(0, 1), for the scale-1 shapes g.
# Each takes a float64 array τ ≥ 0 that it may overwrite and is exact at
# τ = 0, where F(0) = g(0).


def _gaussian_mean_gaussian(tau):
    # g(w) = (2/√π) exp(−w²):  E[exp(−τ² z²)] = 1/√(1 + 2τ²). Computed in
    # place, overwriting τ, because the kernel recursion calls this on
    # matrices of several million pairs.
    result = np.square(tau, out=tau)
    result *= 2.0
    result += 1.0
    np.sqrt(result, out=result)
    np.divide(2.0 / math.sqrt(math.pi), result, out=result)
    return result


def _gaussian_mean_arctan(tau):
    # g(w) = 1/(1 + k² z²) with k = πτ/2:
    # E[1/(1 + k² z²)] = √(π/2)/k · erfcx(1/(√2 k)), which tends to 1 as k → 0.
    k = 0.5 * math.pi * tau
    safe_k = np.where(k > 0, k, 1.0)
    value = math.sqrt(0.5 * math.pi) / safe_k * special.erfcx(1.0 / (math.sqrt(2.0) * safe_k))
    return np.where(k > 0, value, 1.0)


def _gaussian_mean_triangle(tau):
    # g(w) = max(0, 1 − |w|/2) vanishes beyond |z| = t = 2/τ, so
    # E[g(τ z)] = 2 [Φ(t) − 1/2 − (ϕ(0) − ϕ(t))/t] with ϕ, Φ the standard normal
    # density and distribution; ϕ(0) − ϕ(t) = −ϕ(0)·expm1(−t²/2) avoids cancellation.
    safe_tau = np.where(tau > 0, tau, 1.0)
    t = 2.0 / safe_tau
    density_at_zero = 1.0 / math.sqrt(2.0 * math.pi)
    value = special.erf(t / math.sqrt(2.0)) + 2.0 * density_at_zero * np.expm1(-0.5 * t**2) / t
    return np.where(tau > 0, value, 1.0)


_CLOSED_GAUSSIAN_MEANS: dict[str, Callable] = {
    "gaussian": _gaussian_mean_gaussian,
    "arctan": _gaussian_mean_arctan,
    "triangle": _gaussian_mean_triangle,
}

# Points |w| where a shape g is not smooth, other than w = 0; quadrature panels
# end there.
_KINKS: dict[str, tuple[float, ...]] = {"triangle": (2.0,)}

# Tabulation range and density of F(τ); outside it F is extended exactly at
# τ = 0 and by its asymptote 2ϕ(0)/τ (the surrogate's mass 2 times the density
# at zero) for large τ.
_TABLE_TAU_MIN = 1e-5
_TABLE_TAU_MAX = 1e9
_TABLE_POINTS_PER_DECADE = 200
_TABLE_PANELS = 48
_TABLE_NODES_PER_PANEL = 20
_Z_MAX = 12.0  # ϕ(12) ≈ 5e-33: the Gaussian tail beyond is negligible in float64

_tables: dict[str, CubicSpline] = {}


def _quadrature_gaussian_mean(name: str, tau: np.ndarray) -> np.ndarray:
    """Integrate F(τ) = 2∫₀^∞ ϕ(z) g(τ z) dz by composite Gauss–Legendre.

    The panels are geometric from 1e-4·min(1, 1/τ) to 12, so they resolve both
    the Gaussian (scale 1) and the surrogate (scale 1/τ). Kinks of g start new
    panels. On the shapes with closed forms it agrees to about 1e-13.
    """
    shape = _DERIVATIVES[name]
    tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    z_low = 1e-4 * np.minimum(1.0, 1.0 / tau)
    log_edges = np.linspace(0.0, 1.0, _TABLE_PANELS + 1)
    edges = z_low[:, None] * (_Z_MAX / z_low[:, None]) ** log_edges[None, :]
    kinks = [np.clip(w / tau, 0.0, _Z_MAX) for w in _KINKS.get(name, ())]
    edges = np.sort(np.concatenate([np.zeros((tau.size, 1)), edges, *[k[:, None] for k in kinks]], axis=1), axis=1)

    nodes, weights = np.polynomial.legendre.leggauss(_TABLE_NODES_PER_PANEL)
    left, right = edges[:, :-1, None], edges[:, 1:, None]
    z = 0.5 * (right - left) * nodes + 0.5 * (right + left)
    w = 0.5 * (right - left) * weights
    density = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    integrand = density * shape(tau[:, None, None] * z, 1.0, np)
    return 2.0 * np.sum(w * integrand, axis=(1, 2))


def _table(name: str) -> CubicSpline:
    """Return a cubic spline of log F against log τ, built once per family."""
    if name not in _tables:
        decades = math.log10(_TABLE_TAU_MAX / _TABLE_TAU_MIN)
        tau = np.logspace(
            math.log10(_TABLE_TAU_MIN),
            math.log10(_TABLE_TAU_MAX),
            int(round(decades * _TABLE_POINTS_PER_DECADE)) + 1,
        )
        values = _quadrature_gaussian_mean(name, tau)
        _tables[name] = CubicSpline(np.log(tau), np.log(values))
    return _tables[name]


def _tabulated_gaussian_mean(name: str, tau: np.ndarray) -> np.ndarray:
    spline = _table(name)
    value_at_zero = float(_DERIVATIVES[name](np.zeros(1), 1.0, np)[0])
    value_at_min = math.exp(float(spline(math.log(_TABLE_TAU_MIN))))
    value_at_max = math.exp(float(spline(math.log(_TABLE_TAU_MAX))))

    inside = np.clip(tau, _TABLE_TAU_MIN, _TABLE_TAU_MAX)
    result = np.exp(spline(np.log(inside)))
    # Below the table F is interpolated linearly from F(0) = g(0), an O(τ_min²)
    # error; above it F follows the asymptote 2ϕ(0)/τ through the last entry.
    small = tau < _TABLE_TAU_MIN
    result = np.where(small, value_at_zero + (value_at_min - value_at_zero) * tau / _TABLE_TAU_MIN, result)
    large = tau > _TABLE_TAU_MAX
    safe_tau = np.where(large, tau, 1.0)
    return np.where(large, value_at_max * _TABLE_TAU_MAX / safe_tau, result)


@dataclass(frozen=True)
class Surrogate:
    """A surrogate derivative of ``sign``: a family name and its scale ``m``."""

    name: str
    scale: float = 1.0

    def __post_init__(self):
        if self.name not in _DERIVATIVES:
            raise ValueError(
                f"unknown surrogate {self.name!r}; choose one of {', '.join(SURROGATE_NAMES)}"
            )
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"surrogate scale must be a positive finite number, not {self.scale!r}")

    def derivative(self, u):
        """Evaluate ``φ̃′(u)`` elementwise on a NumPy array or a PyTorch tensor."""
        return _DERIVATIVES[self.name](u, self.scale, _namespace(u))

    def antiderivative(self, u):
        """Evaluate the odd function that rises from −1 to +1 and has ``φ̃′`` as derivative."""
        return _ANTIDERIVATIVES[self.name](u, self.scale, _namespace(u))

    @property
    def has_closed_gaussian_mean(self) -> bool:
        """Whether :meth:`gaussian_mean` is a closed form (else a tabulated quadrature)."""
        return self.name in _CLOSED_GAUSSIAN_MEANS

    def gaussian_mean(self, variance, *, method: str = "auto") -> np.ndarray:
        """Return ``E[φ̃′(v)]`` for ``v ~ N(0, variance)``, elementwise, in float64.

        ``method`` is ``"auto"`` (closed form where one exists, else
        quadrature), ``"closed"`` or ``"quadrature"``. The quadrature is a
        composite Gauss–Legendre integral tabulated once per family on
        ``τ = m·√variance`` from 1e-5 to 1e9 and interpolated by a cubic
        spline in log–log coordinates. Against the closed forms it agrees to
        about 1e-10 relative (the tests require 1e-8). It warns that it is an
        approximation.
        """
        if method not in ("auto", "closed", "quadrature"):
            raise ValueError(f"method must be 'auto', 'closed' or 'quadrature', not {method!r}")
        if method == "closed" and not self.has_closed_gaussian_mean:
            raise ValueError(
                f"surrogate {self.name!r} has no closed-form Gaussian mean; use method='quadrature' or 'auto'"
            )
        variance = np.asarray(variance, dtype=np.float64)
        if np.any(variance < 0) or not np.all(np.isfinite(variance)):
            raise ValueError("variance must be finite and non-negative; got a negative or non-finite entry")
        return self._gaussian_mean(variance, quadrature=(method == "quadrature"))

    def _gaussian_mean(self, variance: np.ndarray, quadrature: bool = False) -> np.ndarray:
        """Compute :meth:`gaussian_mean` without validating ``variance`` (for the kernel recursion)."""
        tau = np.asarray(np.sqrt(variance))
        tau *= self.scale
        if self.has_closed_gaussian_mean and not quadrature:
            result = _CLOSED_GAUSSIAN_MEANS[self.name](tau)
        else:
            warnings.warn(
                f"surrogate {self.name!r}: Gaussian mean from a tabulated Gauss–Legendre quadrature "
                f"({_TABLE_PANELS}×{_TABLE_NODES_PER_PANEL} nodes, cubic spline with "
                f"{_TABLE_POINTS_PER_DECADE} points per decade), relative error about 1e-10",
                stacklevel=3,
            )
            result = _tabulated_gaussian_mean(self.name, tau)
        result *= self.scale
        return result


def get_surrogate(name: str, scale: float = 1.0) -> Surrogate:
    """Return the surrogate ``name`` with scale ``scale``; raise ValueError for unknown names."""
    return Surrogate(name, float(scale))
