"""Sign-activation and LIF networks trained with surrogate gradients.

The training forward is the integer arithmetic of :mod:`tangentcore.sw.reference`
computed in float32. Weights come from Brevitas quantizers and are rescaled to
exact integers (:class:`QuantDense`), so every ``acc`` is an exact integer
because every partial sum stays below 2^24. Thresholds are rounded to
integers with a straight-through estimator. Eval mode therefore computes exactly what
the exported integer model computes. Gradients flow through the surrogate
derivative from :mod:`tangentcore.sw.surrogates`.
"""

from __future__ import annotations

import math

import torch
from brevitas import nn as qnn
from brevitas.core.scaling import ScalingImplType
from brevitas.quant import Int8WeightPerTensorFloat, SignedBinaryWeightPerTensorConst, SignedTernaryWeightPerTensorConst
from torch import nn

from tangentcore.sw.surrogates import Surrogate

__all__ = [
    "SignMLP",
    "QuantDense",
    "surrogate_sign",
    "surrogate_heaviside",
    "round_ste",
    "BinaryWeightUnitScale",
    "TernaryWeightUnitScale",
    "weight_quantizer",
]


class BinaryWeightUnitScale(SignedBinaryWeightPerTensorConst):
    """Brevitas binary weight quantizer with scale 1, so quantized weights are exactly ±1."""

    scaling_const = 1.0


class TernaryWeightUnitScale(SignedTernaryWeightPerTensorConst):
    """Brevitas ternary weight quantizer with scale 1: weights in {−1, 0, +1}, zero where ``|w| < 0.5``."""

    scaling_const = 1.0


def weight_quantizer(weight_kind: str, weight_bits: int):
    """Return the Brevitas weight quantizer of a manifest weight kind.

    Int weights use a narrow-range quantizer with the constant range 1, so a
    latent weight in ``[−1, 1]`` maps to ``n / (2^(k−1) − 1)`` with integer
    ``n`` in ``[−(2^(k−1) − 1), 2^(k−1) − 1]``. The range is symmetric, so
    negating a row at export stays in range.
    """
    if weight_kind == "binary":
        return BinaryWeightUnitScale
    if weight_kind == "ternary":
        return TernaryWeightUnitScale
    if weight_kind != "int" or not 2 <= weight_bits <= 8:
        raise ValueError(f"weights must be binary, ternary or int with 2 to 8 bits, not {weight_kind} {weight_bits}")
    return type(f"Int{weight_bits}WeightUnitRange", (Int8WeightPerTensorFloat,), {
        "scaling_impl_type": ScalingImplType.CONST,
        "scaling_const": 1.0,
        "bit_width": weight_bits,
    })


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer (halves to even) with the identity as gradient."""
    return x + (torch.round(x) - x).detach()


class QuantDense(nn.Module):
    """A bias-free linear layer whose forward uses exact integer weights from a Brevitas quantizer.

    :meth:`integer_weight` is the quantized weight rescaled by ``max_weight``
    and rounded with a straight-through estimator, so its values are exact
    integers in float32 and gradients reach the latent float weight.
    """

    def __init__(self, n_in: int, n_out: int, *, weight_kind: str, weight_bits: int):
        super().__init__()
        self.weight_kind = weight_kind
        self.weight_bits = weight_bits
        self.max_weight = 1 if weight_kind != "int" else (1 << (weight_bits - 1)) - 1
        self.linear = qnn.QuantLinear(n_in, n_out, bias=False,
                                      weight_quant=weight_quantizer(weight_kind, weight_bits))

    def init_latent_weight(self) -> None:
        """Draw the latent float weight uniformly from [−1, 1] (from torch's global generator)."""
        nn.init.uniform_(self.linear.weight, -1.0, 1.0)

    def integer_weight(self) -> torch.Tensor:
        """Return the (n_out, n_in) float32 weights, exact integers, with a straight-through gradient."""
        value = self.linear.quant_weight().value
        if self.max_weight == 1:
            return value
        return round_ste(value * self.max_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.integer_weight())

    def clip_latent_weight(self) -> None:
        """Keep the latent float weight in [−1, 1] so every quantization level stays reachable."""
        with torch.no_grad():
            self.linear.weight.clamp_(-1.0, 1.0)

    def export_weight(self) -> torch.Tensor:
        """Return the integer weights as an int8 tensor."""
        with torch.no_grad():
            return self.integer_weight().round().to(torch.int8)


class _SurrogateSign(torch.autograd.Function):
    """``sign`` forward (or a given exact output), the surrogate derivative backward."""

    @staticmethod
    def forward(ctx, z, surrogate: Surrogate, exact):
        ctx.save_for_backward(z)
        ctx.surrogate = surrogate
        if exact is not None:
            return exact.to(z.dtype)
        return torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))

    @staticmethod
    def backward(ctx, grad_output):
        (z,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(z), None, None


def surrogate_sign(z: torch.Tensor, surrogate: Surrogate, exact: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``sign(z)`` in ``{−1, +1}`` (``sign(0) = +1``) with gradient ``φ̃′(z)``.

    When ``exact`` (values ±1) is given, the forward returns it instead: the
    integer comparison decides the output and ``z`` only carries the gradient.
    """
    return _SurrogateSign.apply(z, surrogate, exact)


class _SurrogateHeaviside(torch.autograd.Function):
    """Heaviside ``u ≥ 0`` forward, half the surrogate derivative backward (``H = (sign + 1) / 2``)."""

    @staticmethod
    def forward(ctx, u, surrogate: Surrogate):
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (u,) = ctx.saved_tensors
        return grad_output * (0.5 * ctx.surrogate.derivative(u)), None


def surrogate_heaviside(u: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Return ``u ≥ 0`` as 0.0/1.0 with gradient ``φ̃′(u) / 2``, the derivative of ``(sign + 1) / 2``."""
    return _SurrogateHeaviside.apply(u, surrogate)


def fold_thresholds(gain: torch.Tensor, bias: torch.Tensor, normalization: float, acc_min: int, acc_max: int):
    """Fold ``gain · acc / s − bias ≥ 0`` into integer thresholds ``T`` and flips.

    For ``gain > 0`` the condition is ``acc ≥ ⌈bias·s/gain⌉``; for ``gain < 0``
    it is ``acc ≤ bias·s/gain``, that is ``−acc ≥ ⌈bias·s/|gain|⌉``, so
    ``flip`` marks the neurons whose weights export negated. A zero gain makes the output constant: ``T`` is
    the accumulator minimum (always 1) when ``bias ≤ 0``, else one past the
    maximum (always 0). ``T`` is clipped to ``[acc_min, acc_max + 1]``, which
    changes no output because ``flip · acc`` stays in ``[acc_min, acc_max]``
    (the range is symmetric for the symmetric weight quantizers used here). Returns float tensors holding
    integers, and a bool tensor.
    """
    flip = gain < 0
    magnitude = torch.where(gain == 0, torch.ones_like(gain), gain.abs())
    threshold = torch.ceil(bias * normalization / magnitude)
    constant = torch.where(bias <= 0, torch.full_like(bias, float(acc_min)), torch.full_like(bias, float(acc_max + 1)))
    threshold = torch.where(gain == 0, constant, threshold)
    return threshold.clamp(acc_min, acc_max + 1), flip


class SignMLP(nn.Module):
    """An MLP with binary, ternary or k-bit integer weights, integer thresholds and sign activations.

    ``forward`` takes encoded inputs (bits or unsigned integers, as a float
    tensor) and returns the integer class scores ``acc`` of the output layer
    as float32. :meth:`logits` scales them for the cross-entropy loss.

    Each hidden neuron has a gain ``g`` and a bias ``b`` (the affine part of
    a batch norm): its pre-activation is ``z = g · acc / s − b`` with the
    positive layer normalization ``s = √n_in · x_max · w_max``. The forward
    output is the folded integer comparison of :func:`fold_thresholds`,
    exactly as exported, and ``z`` carries the surrogate gradient.
    """

    def __init__(self, sizes: list[int], *, input_encoding: str, input_bits: int, surrogate: Surrogate,
                 weight_kind: str = "binary", weight_bits: int = 1):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size, not {sizes!r}")
        self.sizes = list(sizes)
        self.input_encoding = input_encoding
        self.input_bits = input_bits
        self.surrogate = surrogate
        self.weight_kind = weight_kind
        self.weight_bits = weight_bits
        self.linears = nn.ModuleList(
            QuantDense(n_in, n_out, weight_kind=weight_kind, weight_bits=weight_bits)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        )
        for linear in self.linears:
            linear.init_latent_weight()
        self.gains = nn.ParameterList(nn.Parameter(torch.ones(n)) for n in sizes[1:-1])
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in sizes[1:-1])
        # The output scores are integers up to ±n_hidden·w_max; the log scale sets the softmax temperature.
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(4.0)))

    @property
    def input_max(self) -> int:
        return 1 if self.input_encoding == "binary" else (1 << self.input_bits) - 1

    @property
    def max_weight(self) -> int:
        return self.linears[0].max_weight

    def input_values(self, x: torch.Tensor) -> torch.Tensor:
        """Map encoded inputs to the integers the arithmetic uses: bits to ±1, uint unchanged."""
        x = x.to(torch.float32)
        if self.input_encoding == "binary":
            return 2.0 * x - 1.0
        return x

    def normalization(self, index: int) -> float:
        """Return layer ``index``'s positive normalization ``s = √n_in · x_max · w_max`` of ``acc``."""
        return math.sqrt(self.sizes[index]) * (self.input_max if index == 0 else 1) * self.max_weight

    def acc_bound(self, index: int) -> int:
        """Return the largest ``|acc|`` of layer ``index`` (symmetric weights, so the range is symmetric)."""
        return self.sizes[index] * (self.input_max if index == 0 else 1) * self.max_weight

    def folded_thresholds(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return each hidden layer's ``(T, flip)`` from :func:`fold_thresholds`, without gradient."""
        folded = []
        for index, (gain, bias) in enumerate(zip(self.gains, self.biases)):
            bound = self.acc_bound(index)
            folded.append(fold_thresholds(gain.detach(), bias.detach(), self.normalization(index), -bound, bound))
        return folded

    def forward(self, x: torch.Tensor, *, return_hidden: bool = False):
        a = self.input_values(x)
        hidden = []
        folded = self.folded_thresholds()
        for index, linear in enumerate(self.linears):
            acc = linear(a)
            if index == len(self.linears) - 1:
                return (acc, hidden) if return_hidden else acc
            threshold, flip = folded[index]
            signed_acc = torch.where(flip, -acc, acc)
            exact = torch.where(signed_acc >= threshold, 1.0, -1.0)
            z = self.gains[index] * acc / self.normalization(index) - self.biases[index]
            a = surrogate_sign(z, self.surrogate, exact)
            hidden.append(a)
        raise AssertionError("unreachable: the loop returns at the output layer")

    def logits(self, scores: torch.Tensor) -> torch.Tensor:
        """Scale integer scores for the cross-entropy loss; argmax is unchanged."""
        return scores * (self.log_logit_scale.exp() / (math.sqrt(self.sizes[-2]) * self.max_weight))

    def clip_latent_weights(self) -> None:
        """Keep latent float weights in [−1, 1] so a sign flip stays reachable (standard for BNNs)."""
        for linear in self.linears:
            linear.clip_latent_weight()

    def integer_weights(self) -> list[torch.Tensor]:
        """Return each layer's quantized weights as int8 tensors, before any flip."""
        return [linear.export_weight() for linear in self.linears]
