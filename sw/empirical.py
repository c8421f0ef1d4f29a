"""Finite NTK-parametrized MLPs in PyTorch and their empirical NTK and SG-NTK.

:class:`NTKMLP` is the network whose infinite-width kernels
:class:`tangentcore.sw.kernels.MLPKernel` computes::

    h¹ = σ_w/√n_0 · W¹ x + σ_b b¹,   h^{l+1} = σ_w/√n_l · W^{l+1} φ(h^l) + σ_b b^{l+1}

with standard-normal ``W`` and ``b``. Its forward pass always uses the true
activation φ. The backward pass uses either the true derivative φ′ (for sign
that is 0 almost everywhere) or a surrogate derivative φ̃′ from
:mod:`tangentcore.sw.surrogates`, through one custom autograd function, so the
surrogate enters only the quasi-Jacobian ``J̃``.

The empirical kernels use per-example Jacobians from ``torch.func``
(``vmap`` over ``jacrev``): ``NTK = J(x) J(x′)ᵀ`` and
``SG-NTK = J(x) J̃(x′)ᵀ``, with the same orientation as the analytic ``I``:
rows true Jacobian, columns quasi-Jacobian.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from tangentcore.errors import TangentcoreError

from .surrogates import Surrogate

__all__ = ["EmpiricalKernels", "NTKMLP", "empirical_kernels", "train_ensemble"]

ACTIVATIONS = ("erf", "sign")


def _activation_forward(u: torch.Tensor, activation: str, scale: float) -> torch.Tensor:
    if activation == "erf":
        return torch.erf(scale * u)
    # sign(0) = +1, as in the integer semantics of the exported networks.
    return torch.where(u >= 0, 1.0, -1.0).to(u.dtype)


class SurrogateActivation(torch.autograd.Function):
    """φ in the forward pass, ``grad · φ̃′(u)`` in the backward pass."""

    generate_vmap_rule = True

    @staticmethod
    def forward(u, activation, scale, surrogate):
        return _activation_forward(u, activation, scale)

    @staticmethod
    def setup_context(ctx, inputs, output):
        u, _, _, surrogate = inputs
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx, grad_output):
        (u,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(u), None, None, None


class NTKMLP(nn.Module):
    """An MLP in the NTK parametrization with erf(m·) or sign hidden activations.

    ``hidden_widths`` lists ``n_1 … n_L``. ``surrogate`` (optional) is the
    surrogate derivative that the backward pass uses when
    ``surrogate_backward`` is true (the default whenever a surrogate is set).
    Parameters are drawn from ``generator`` (seed it for reproducibility).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_widths: Sequence[int],
        output_dim: int = 1,
        *,
        activation: str = "erf",
        scale: float = 1.0,
        surrogate: Surrogate | None = None,
        sigma_w: float = 1.0,
        sigma_b: float = 0.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        widths = [input_dim, *hidden_widths, output_dim]
        if not all(isinstance(n, int) and n >= 1 for n in widths) or not hidden_widths:
            raise TangentcoreError(
                f"widths must be positive integers with at least one hidden layer, not {widths!r}"
            )
        if activation not in ACTIVATIONS:
            raise TangentcoreError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise TangentcoreError(f"scale must be a positive finite number, not {scale!r}")
        if activation == "sign" and surrogate is None:
            raise TangentcoreError("a sign network needs a surrogate to train; pass surrogate=get_surrogate(...)")
        self.widths = tuple(widths)
        self.activation = activation
        self.scale = float(scale)
        self.surrogate = surrogate
        self.sigma_w = float(sigma_w)
        self.sigma_b = float(sigma_b)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(n_out, n_in, generator=generator, dtype=dtype))
            for n_in, n_out in zip(widths[:-1], widths[1:])
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.randn(n_out, generator=generator, dtype=dtype)) for n_out in widths[1:]
        )

    def phi(self, u: torch.Tensor, surrogate_backward: bool) -> torch.Tensor:
        """Apply the activation, with the surrogate derivative in the backward pass if requested."""
        if surrogate_backward:
            return SurrogateActivation.apply(u, self.activation, self.scale, self.surrogate)
        if self.activation == "erf":
            return torch.erf(self.scale * u)
        return _activation_forward(u, self.activation, self.scale)

    def forward(self, x: torch.Tensor, surrogate_backward: bool | None = None) -> torch.Tensor:
        """Map inputs ``(batch, n_0)`` to outputs ``(batch, output_dim)``."""
        if surrogate_backward is None:
            surrogate_backward = self.surrogate is not None
        if surrogate_backward and self.surrogate is None:
            raise TangentcoreError("surrogate_backward=True needs a network built with surrogate=")
        return self.forward_with(x, list(self.weights), list(self.biases), surrogate_backward)

    def forward_with(self, x, weights, biases, surrogate_backward: bool, trace: list | None = None) -> torch.Tensor:
        """Run the forward pass with the given parameters instead of the module's own.

        Weights of shape ``(E, n_out, n_in)`` and biases ``(E, n_out)`` run an
        ensemble of ``E`` networks at once and return ``(E, batch, outputs)``.
        If ``trace`` is a list, each layer appends its input and pre-activation.
        """
        h = x
        for layer, (weight, bias) in enumerate(zip(weights, biases)):
            if layer > 0:
                h = self.phi(h, surrogate_backward)
            layer_input = h
            h = (self.sigma_w / math.sqrt(weight.shape[-1])) * torch.matmul(h, weight.transpose(-1, -2))
            h = h + self.sigma_b * bias.unsqueeze(-2)
            if trace is not None:
                trace.append((layer_input, h))
        return h


class EmpiricalKernels(NamedTuple):
    """Empirical NTK ``J(x1) J(x2)ᵀ`` and SG-NTK ``J(x1) J̃(x2)ᵀ``.

    Shapes are ``(n1, n2)`` for one output, else ``(n1, n2, outputs, outputs)``.
    """

    ntk: torch.Tensor
    sgntk: torch.Tensor | None


def jacobian(model: NTKMLP, x: torch.Tensor, *, surrogate_backward: bool, chunk_size: int | None = None):
    """Return the per-example Jacobian of the outputs, shape ``(n, outputs, parameters)``."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def single(params, example):
        return functional_call(model, params, (example[None],), {"surrogate_backward": surrogate_backward})[0]

    per_parameter = vmap(jacrev(single), in_dims=(None, 0), chunk_size=chunk_size)(params, x)
    n, outputs = x.shape[0], model.widths[-1]
    return torch.cat([j.reshape(n, outputs, -1) for j in per_parameter.values()], dim=2)


def empirical_kernels(
    model: NTKMLP,
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
) -> EmpiricalKernels:
    """Return the empirical NTK and, if the model has a surrogate, the SG-NTK.

    Rows use the true Jacobian of ``x1``; the SG-NTK's columns use the
    quasi-Jacobian of ``x2`` (default ``x1``).
    """
    x2 = x1 if x2 is None else x2
    true1 = jacobian(model, x1, surrogate_backward=False, chunk_size=chunk_size)
    true2 = true1 if x2 is x1 else jacobian(model, x2, surrogate_backward=False, chunk_size=chunk_size)
    ntk = torch.einsum("iap,jbp->ijab", true1, true2)
    sgntk = None
    if model.surrogate is not None:
        quasi2 = jacobian(model, x2, surrogate_backward=True, chunk_size=chunk_size)
        sgntk = torch.einsum("iap,jbp->ijab", true1, quasi2)
    if model.widths[-1] == 1:
        ntk = ntk[..., 0, 0]
        sgntk = None if sgntk is None else sgntk[..., 0, 0]
    return EmpiricalKernels(ntk, sgntk)


def train_ensemble(
    models: Sequence[NTKMLP],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    learning_rate: float,
    steps: int,
    surrogate_backward: bool | None = None,
    callback=None,
) -> list[NTKMLP]:
    """Train copies of ``models`` with full-batch gradient descent on ``½ Σ |f(x) − y|²``.

    All models must share one architecture; they are trained together with
    batched matrix products. ``surrogate_backward`` selects surrogate gradient
    learning (default: whenever the models have a surrogate). ``callback``
    (optional) is called with the step index after every step. Returns
    trained copies; the inputs are left unchanged.
    """
    if not models:
        raise TangentcoreError("train_ensemble needs at least one model")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise TangentcoreError(f"learning_rate must be a positive finite number, not {learning_rate!r}")
    if not (isinstance(steps, int) and steps >= 0):
        raise TangentcoreError(f"steps must be an integer ≥ 0, not {steps!r}")
    template = models[0]
    if any(model.widths != template.widths for model in models):
        raise TangentcoreError("train_ensemble needs models of one architecture; got different widths")
    if surrogate_backward is None:
        surrogate_backward = template.surrogate is not None
    y = y.reshape(1, x.shape[0], -1)

    # Stack every parameter along a leading ensemble axis. The summed loss
    # separates over networks, so one backward pass yields every network's
    # own gradient. Autograd (with the surrogate) only propagates the errors
    # δ = ∂L/∂h to the pre-activations h; each weight then takes its step
    # −η (σ_w/√n) δᵀ·input in place with one batched product, so the large
    # weight gradients are never stored (the training is memory-bound).
    weights = [torch.stack([m.weights[i].detach() for m in models]) for i in range(len(template.weights))]
    biases = [torch.stack([m.biases[i].detach() for m in models]) for i in range(len(template.biases))]
    inputs = x.detach().expand(len(models), *x.shape).requires_grad_()
    for step in range(steps):
        trace: list = []
        output = template.forward_with(inputs, weights, biases, surrogate_backward, trace)
        loss = 0.5 * torch.sum((output - y) ** 2)
        errors = torch.autograd.grad(loss, [pre_activation for _, pre_activation in trace])
        with torch.no_grad():
            for (layer_input, _), error, weight, bias in zip(trace, errors, weights, biases):
                step_size = learning_rate * template.sigma_w / math.sqrt(weight.shape[-1])
                weight.baddbmm_(error.transpose(1, 2), layer_input.detach(), alpha=-step_size)
                bias.sub_(error.sum(dim=1), alpha=learning_rate * template.sigma_b)
        if callback is not None:
            callback(step)

    trained = []
    for index in range(len(models)):
        model = copy.deepcopy(template)
        with torch.no_grad():
            for layer in range(len(weights)):
                model.weights[layer].copy_(weights[layer][index])
                model.biases[layer].copy_(biases[layer][index])
        trained.append(model)
    return trained
