"""Feedforward LIF networks trained with surrogate gradients through time (BPTT).

With ``qat=True`` (the default) the forward is the LIF arithmetic of
:mod:`tangentcore.sw.reference` computed in float32 on exact integers:
weights come from :class:`~tangentcore.sw.models.QuantDense`, thresholds are
rounded with a straight-through estimator, the leak ``v >> k`` is
``floor(v · 2^−k)`` (exact, and a floor for negatives too, like the
arithmetic shift), and the membrane saturates with ``clamp``. Every value
stays an integer below 2^24, so eval mode computes exactly what the exported
manifest computes. Gradients pass the floor and the rounding unchanged and
the spike through ``φ̃′((v − θ) / θ) / 2``; the reset uses the detached spike.

With ``qat=False`` the same network runs in floating point (float weights and
thresholds, leak ``v ← β v`` with ``β = 1 − 2^−k``, no saturation): the
network that quantization-aware training approximates, used to measure the
cost of QAT. It cannot be exported.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tangentcore.manifest import LIF_SCORE_OUTPUTS as LIF_OUTPUTS
from tangentcore.manifest import RESETS
from tangentcore.sw.models import QuantDense, round_ste
from tangentcore.sw.surrogates import Surrogate

__all__ = ["LIFMLP", "LIF_OUTPUTS", "RESETS", "default_threshold"]

# float32 represents every integer of magnitude up to 2^24 exactly.
FLOAT32_EXACT_BITS = 24


def default_threshold(n_in: int, max_weight: int, membrane_bits: int) -> int:
    """Return the initial threshold ``θ = ⌈w_max · √n_in / 2⌉``, clipped to the membrane range.

    With weights uniform over their levels and a quarter of the inputs
    spiking, this is about one standard deviation of the synaptic input.
    """
    return int(min(max(1, math.ceil(max_weight * math.sqrt(n_in) / 2)), (1 << (membrane_bits - 1)) - 1))


class _LIFRecurrence(torch.autograd.Function):
    """The membrane recursion of one LIF layer over all steps, with a hand-written BPTT backward.

    Forward, per step: leak, integrate, saturate (QAT only), fire, reset,
    on tensors without autograd. ``membrane_bits`` None selects the float
    network (``v ← β v + I``, no saturation). Backward runs the recursion in
    reverse: ``∂v_{t+1}/∂v′_t = 1 − 2^−k`` (the floor passes its gradient
    unchanged), saturation blocks the gradient where it clipped, the spike
    has ``∂s/∂v = φ̃′(u) / (2·scale)`` with ``u = (v − θ) / scale`` and
    ``scale = max(θ, 1)`` held constant, and the reset treats the spike as
    a constant. A max-membrane output passes its gradient to the first step
    that reached the maximum.

    Tensors are time-major for contiguous steps: ``synaptic`` is (T, batch, n)
    and the outputs are spikes (T, batch, n) of 0/1, the final membrane after
    reset and the maximum post-saturation, pre-reset membrane, both (batch, n).
    """

    @staticmethod
    def forward(ctx, synaptic, theta, surrogate, leak_shift, membrane_bits, reset):
        # Outputs that the loss does not use get None gradients, so backward skips their terms.
        ctx.set_materialize_grads(False)
        steps, batch, n = synaptic.shape
        leak_factor = 2.0 ** -leak_shift
        pre = torch.empty_like(synaptic)
        spikes = torch.empty_like(synaptic)
        v = torch.zeros(batch, n, dtype=synaptic.dtype)
        if membrane_bits is not None:
            low, high = -float(1 << (membrane_bits - 1)), float((1 << (membrane_bits - 1)) - 1)
        # Writing into preallocated outputs keeps each step at three to seven tensor operations.
        for t in range(steps):
            if membrane_bits is not None:
                torch.sub(v, torch.floor_(v * leak_factor), out=pre[t]).add_(synaptic[t])
                torch.clamp(pre[t], low, high, out=v)
            else:
                torch.add(synaptic[t], v, alpha=1.0 - leak_factor, out=pre[t])
                v = pre[t]
            torch.ge(v, theta, out=spikes[t])
            if reset == "subtract":
                v = torch.addcmul(v, spikes[t], theta, value=-1.0)
            else:
                v = v * (1.0 - spikes[t])
        membrane = pre.clamp(low, high) if membrane_bits is not None else pre
        ctx.save_for_backward(pre, spikes, theta)
        ctx.settings = (surrogate, leak_shift, membrane_bits, reset)
        return spikes, v, membrane.amax(dim=0)

    @staticmethod
    def backward(ctx, grad_spikes, grad_final, grad_max):
        pre, spikes, theta = ctx.saved_tensors
        surrogate, leak_shift, membrane_bits, reset = ctx.settings
        steps = pre.shape[0]
        if membrane_bits is not None:
            low, high = -float(1 << (membrane_bits - 1)), float((1 << (membrane_bits - 1)) - 1)
            membrane = pre.clamp(low, high)
            inside = ((pre >= low) & (pre <= high)).to(pre.dtype)
        else:
            membrane, inside = pre, None
        scale = theta.detach().clamp(min=1.0)
        if grad_spikes is not None:
            from_spikes = grad_spikes * (0.5 * surrogate.derivative((membrane - theta) / scale) / scale)
        else:
            from_spikes = torch.zeros_like(pre)
        local = from_spikes
        if grad_max is not None:
            first = membrane.argmax(dim=0, keepdim=True)
            local = from_spikes.scatter_add(0, first, grad_max.unsqueeze(0))
        keep = 1.0 - spikes if reset == "zero" else None
        decay = 1.0 - 2.0 ** -leak_shift
        # grad_pre[t] is ∂L/∂pre_t, which is also ∂L/∂(synaptic input at t).
        grad_pre = torch.empty_like(pre)
        grad_post = torch.empty_like(pre)
        grad_post[-1] = grad_final if grad_final is not None else 0.0
        grad_post[:-1] = 0.0
        last = steps - 1
        for t in reversed(range(steps)):
            if t == last:
                torch.add(local[t], grad_post[t] * keep[t] if keep is not None else grad_post[t],
                          out=grad_pre[t])
            elif keep is not None:
                torch.addcmul(local[t], grad_pre[t + 1], keep[t], value=decay, out=grad_pre[t])
            else:
                torch.add(local[t], grad_pre[t + 1], alpha=decay, out=grad_pre[t])
            if inside is not None:
                grad_pre[t].mul_(inside[t])
        grad_synaptic = grad_pre
        grad_theta = -from_spikes.sum(dim=(0, 1))
        if reset == "subtract":
            grad_post[:-1] = grad_pre[1:] * decay
            grad_theta = grad_theta - (grad_post * spikes).sum(dim=(0, 1))
        return grad_synaptic, grad_theta, None, None, None, None


class LIFMLP(nn.Module):
    """A feedforward network of LIF layers over ``time_steps`` steps.

    ``forward`` takes spike trains (batch, T, n_in) of 0/1 and returns the
    output layer's class scores (batch, n_classes) as float32: spike counts,
    final membranes or maximum membranes (``output``). :meth:`logits` scales
    them for the cross-entropy loss.
    """

    def __init__(self, sizes: list[int], *, time_steps: int, surrogate: Surrogate, weight_kind: str = "int",
                 weight_bits: int = 4, leak_shift: int = 3, reset: str = "subtract", membrane_bits: int = 12,
                 threshold: int | None = None, learn_threshold: bool = True, output: str = "spike_count",
                 qat: bool = True):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size, not {sizes!r}")
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {', '.join(RESETS)}, not {reset!r}")
        if output not in LIF_OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(LIF_OUTPUTS)}, not {output!r}")
        if not 2 <= membrane_bits <= FLOAT32_EXACT_BITS:
            raise ValueError(f"membrane_bits must be from 2 to {FLOAT32_EXACT_BITS} for exact float32, "
                             f"not {membrane_bits}")
        if not 0 <= leak_shift < membrane_bits:
            raise ValueError(f"leak_shift must be from 0 to membrane_bits - 1, not {leak_shift}")
        self.sizes = list(sizes)
        self.time_steps = time_steps
        self.surrogate = surrogate
        self.weight_kind = weight_kind
        self.weight_bits = weight_bits
        self.leak_shift = leak_shift
        self.reset = reset
        self.membrane_bits = membrane_bits
        self.output = output
        self.qat = qat
        self.learn_threshold = learn_threshold
        self.linears = nn.ModuleList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            dense = QuantDense(n_in, n_out, weight_kind=weight_kind, weight_bits=weight_bits)
            dense.init_latent_weight()
            self.linears.append(dense)
        if max(sizes[:-1]) * self.max_weight >= 1 << FLOAT32_EXACT_BITS:
            raise ValueError("fan-in times the largest weight must stay below 2^24 for exact float32 sums")
        initial = [threshold or default_threshold(n_in, self.max_weight, membrane_bits) for n_in in sizes[:-1]]
        if any(not 1 <= value <= self.membrane_max for value in initial):
            raise ValueError(f"threshold must be from 1 to {self.membrane_max}, not {threshold}")
        latent = [torch.full((n_out,), float(value)) for n_out, value in zip(sizes[1:], initial)]
        if learn_threshold:
            self.latent_thresholds = nn.ParameterList(nn.Parameter(value) for value in latent)
        else:
            for index, value in enumerate(latent):
                self.register_buffer(f"fixed_threshold{index}", value)
        # Spike counts lie in [0, T] and membranes around θ; the log scale sets the softmax temperature.
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(8.0)))

    @property
    def max_weight(self) -> int:
        return self.linears[0].max_weight

    @property
    def membrane_max(self) -> int:
        return (1 << (self.membrane_bits - 1)) - 1

    def _latent_threshold(self, index: int) -> torch.Tensor:
        if self.learn_threshold:
            return self.latent_thresholds[index]
        return getattr(self, f"fixed_threshold{index}")

    def threshold(self, index: int) -> torch.Tensor:
        """Return layer ``index``'s thresholds θ: integers with a straight-through gradient under QAT."""
        latent = self._latent_threshold(index)
        return round_ste(latent) if self.qat else latent

    def _weight(self, index: int) -> torch.Tensor:
        dense = self.linears[index]
        return dense.integer_weight() if self.qat else dense.linear.weight * dense.max_weight

    def _layer(self, index: int, spikes_in: torch.Tensor):
        """Run LIF layer ``index`` on time-major spikes (T, batch, n_in); return spikes (T, batch, n), v and max v."""
        synaptic = torch.nn.functional.linear(spikes_in, self._weight(index))
        membrane_bits = self.membrane_bits if self.qat else None
        return _LIFRecurrence.apply(synaptic, self.threshold(index), self.surrogate, self.leak_shift,
                                    membrane_bits, self.reset)

    def forward(self, x: torch.Tensor, *, return_hidden: bool = False):
        spikes = x.to(torch.float32).transpose(0, 1).contiguous()
        hidden = []
        last = len(self.linears) - 1
        for index in range(len(self.linears)):
            spikes, v, v_max = self._layer(index, spikes)
            if index < last:
                hidden.append(spikes.transpose(0, 1))
        if self.output == "spike_count":
            scores = spikes.sum(dim=0)
        elif self.output == "final_membrane":
            scores = v
        else:
            scores = v_max
        return (scores, hidden, spikes.transpose(0, 1)) if return_hidden else scores

    def logits(self, scores: torch.Tensor) -> torch.Tensor:
        """Scale scores for the cross-entropy loss; argmax is unchanged."""
        if self.output == "spike_count":
            norm = float(self.time_steps)
        else:
            norm = float(self._latent_threshold(len(self.linears) - 1).detach().mean().clamp(min=1.0))
        return scores * (self.log_logit_scale.exp() / norm)

    def clip_latent_weights(self) -> None:
        """Keep latent weights in [−1, 1] and latent thresholds in [1, membrane maximum]."""
        for linear in self.linears:
            linear.clip_latent_weight()
        if self.learn_threshold:
            with torch.no_grad():
                for latent in self.latent_thresholds:
                    latent.clamp_(1.0, float(self.membrane_max))

    def integer_weights(self) -> list[torch.Tensor]:
        """Return each layer's quantized weights as int8 tensors."""
        return [linear.export_weight() for linear in self.linears]

    def integer_thresholds(self) -> list[torch.Tensor]:
        """Return each layer's thresholds as int64 tensors."""
        with torch.no_grad():
            return [self.threshold(index).round().to(torch.int64) for index in range(len(self.linears))]
