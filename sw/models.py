"""Sign-activation networks trained with surrogate gradients.

The training forward is the integer arithmetic of :mod:`tangentcore.sw.reference`
computed in float32: binary weights come from Brevitas with a unit scale, so
``acc`` is an exact integer (every partial sum stays far below 2^24), and
the thresholds are rounded to integers with a straight-through estimator.
The sign is taken of ``(acc − T) / s`` with a positive normalization ``s``,
which cannot change a sign, so eval mode computes exactly what the exported
integer model computes. Gradients flow through the surrogate derivative from
:mod:`tangentcore.sw.surrogates`.
"""

from __future__ import annotations

import math

import torch
from brevitas import nn as qnn
from brevitas.quant import SignedBinaryWeightPerTensorConst
from torch import nn

from tangentcore.sw.surrogates import Surrogate

__all__ = ["SignMLP", "surrogate_sign", "BinaryWeightUnitScale"]


class BinaryWeightUnitScale(SignedBinaryWeightPerTensorConst):
    """Brevitas binary weight quantizer with scale 1, so quantized weights are exactly ±1."""

    scaling_const = 1.0


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


def fold_thresholds(gain: torch.Tensor, bias: torch.Tensor, normalization: float, acc_min: int, acc_max: int):
    """Fold ``gain · acc / s − bias ≥ 0`` into integer thresholds ``T`` and flips.

    For ``gain > 0`` the condition is ``acc ≥ ⌈bias·s/gain⌉``; for ``gain < 0``
    it is ``acc ≤ bias·s/gain``, that is ``−acc ≥ ⌈bias·s/|gain|⌉``, so
    ``flip`` marks the neurons whose weights export negated. A zero gain makes the output constant: ``T`` is
    the accumulator minimum (always 1) when ``bias ≤ 0``, else one past the
    maximum (always 0). ``T`` is clipped to ``[acc_min, acc_max + 1]``, which
    changes no output because ``flip · acc`` stays in ``[acc_min, acc_max]``
    (the range is symmetric for binary weights). Returns float tensors holding
    integers, and a bool tensor.
    """
    flip = gain < 0
    magnitude = torch.where(gain == 0, torch.ones_like(gain), gain.abs())
    threshold = torch.ceil(bias * normalization / magnitude)
    constant = torch.where(bias <= 0, torch.full_like(bias, float(acc_min)), torch.full_like(bias, float(acc_max + 1)))
    threshold = torch.where(gain == 0, constant, threshold)
    return threshold.clamp(acc_min, acc_max + 1), flip


class SignMLP(nn.Module):
    """An MLP with binary weights, integer thresholds and sign activations.

    ``forward`` takes encoded inputs (bits or unsigned integers, as a float
    tensor) and returns the integer class scores ``acc`` of the output layer
    as float32. :meth:`logits` scales them for the cross-entropy loss.

    Each hidden neuron has a gain ``g`` and a bias ``b`` (the affine part of
    a batch norm): its pre-activation is ``z = g · acc / s − b`` with the
    positive layer normalization ``s = √n_in · x_max``. The forward output is
    the folded integer comparison of :func:`fold_thresholds`, exactly as
    exported, and ``z`` carries the surrogate gradient.
    """

    def __init__(self, sizes: list[int], *, input_encoding: str, input_bits: int, surrogate: Surrogate):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size, not {sizes!r}")
        self.sizes = list(sizes)
        self.input_encoding = input_encoding
        self.input_bits = input_bits
        self.surrogate = surrogate
        self.linears = nn.ModuleList(
            qnn.QuantLinear(n_in, n_out, bias=False, weight_quant=BinaryWeightUnitScale)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        )
        for linear in self.linears:
            nn.init.uniform_(linear.weight, -1.0, 1.0)
        self.gains = nn.ParameterList(nn.Parameter(torch.ones(n)) for n in sizes[1:-1])
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in sizes[1:-1])
        # The output scores are integers up to ±n_hidden; the log scale sets the softmax temperature.
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(4.0)))

    @property
    def input_max(self) -> int:
        return 1 if self.input_encoding == "binary" else (1 << self.input_bits) - 1

    def input_values(self, x: torch.Tensor) -> torch.Tensor:
        """Map encoded inputs to the integers the arithmetic uses: bits to ±1, uint unchanged."""
        x = x.to(torch.float32)
        if self.input_encoding == "binary":
            return 2.0 * x - 1.0
        return x

    def normalization(self, index: int) -> float:
        """Return layer ``index``'s positive normalization ``s = √n_in · x_max`` of ``acc``."""
        return math.sqrt(self.sizes[index]) * (self.input_max if index == 0 else 1)

    def acc_bound(self, index: int) -> int:
        """Return the largest ``|acc|`` of layer ``index`` (binary weights, so the range is symmetric)."""
        return self.sizes[index] * (self.input_max if index == 0 else 1)

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
        return scores * (self.log_logit_scale.exp() / math.sqrt(self.sizes[-2]))

    def clip_latent_weights(self) -> None:
        """Keep latent float weights in [−1, 1] so a sign flip stays reachable (standard for BNNs)."""
        with torch.no_grad():
            for linear in self.linears:
                linear.weight.clamp_(-1.0, 1.0)

    def integer_weights(self) -> list[torch.Tensor]:
        """Return each layer's quantized weights as int8 tensors in {−1, +1}, before any flip."""
        return [linear.quant_weight().int().to(torch.int8) for linear in self.linears]
