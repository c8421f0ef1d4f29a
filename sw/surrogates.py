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

The derivative functions accept NumPy arrays and PyTorch tensors alike and
return the same kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

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
    return m / xp.cosh(m * u) ** 2


_DERIVATIVES: dict[str, Callable] = {
    "gaussian": _gaussian,
    "fast_sigmoid": _fast_sigmoid,
    "arctan": _arctan,
    "triangle": _triangle,
    "sigmoid": _sigmoid,
}

SURROGATE_NAMES: tuple[str, ...] = tuple(_DERIVATIVES)


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


def get_surrogate(name: str, scale: float = 1.0) -> Surrogate:
    """Return the surrogate ``name`` with scale ``scale``; raise ValueError for unknown names."""
    return Surrogate(name, float(scale))
