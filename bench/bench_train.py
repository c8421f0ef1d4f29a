"""Training throughput of a 64-128-10 LIF network against snnTorch 1.0.0 running the same network.

The network: 64 rate-coded digits pixels, 128 LIF neurons, 10 LIF outputs
scored by spike counts over T = 16 steps, leak β = 1 − 2^−3 = 0.875, reset by
subtraction, threshold 1 for the float networks, fast-sigmoid surrogate,
cross-entropy on spike counts, Adam, batch 128. Three trainers run in this
process on the same data, alternating, and the script prints samples/s of
each and the ratios against snnTorch:

- tangentcore without QAT: float weights and thresholds (``LIFMLP(qat=False)``),
- tangentcore with QAT: 4-bit integer weights, integer thresholds, shift
  leak and 12-bit saturating membranes, exactly what is exported,
- snnTorch: ``nn.Linear`` + ``snn.Leaky``, stepped one time step at a time
  through both layers, as snnTorch's tutorials write the loop.

snnTorch is a benchmark-only dependency: ``pip install snntorch==1.0.0``.

Usage: ``python bench/bench_train.py [--epochs N] [--repeats N] [--threads N]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
from torch import nn

from tangentcore.sw.data import load_dataset
from tangentcore.sw.spiking import LIFMLP
from tangentcore.sw.surrogates import get_surrogate

TIME_STEPS = 16
BATCH = 128
SIZES = [64, 128, 10]
LEAK_SHIFT = 3


class SnnTorchNet(nn.Module):
    """The same 64-128-10 LIF network written with snnTorch's Leaky neurons."""

    def __init__(self):
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        beta = 1.0 - 2.0 ** -LEAK_SHIFT
        spike_grad = surrogate.fast_sigmoid(slope=2.0)
        self.fc1 = nn.Linear(SIZES[0], SIZES[1], bias=False)
        self.lif1 = snn.Leaky(beta=beta, spike_grad=spike_grad, reset_mechanism="subtract")
        self.fc2 = nn.Linear(SIZES[1], SIZES[2], bias=False)
        self.lif2 = snn.Leaky(beta=beta, spike_grad=spike_grad, reset_mechanism="subtract")

    def forward(self, x):
        mem1 = self.lif1.reset_mem()
        mem2 = self.lif2.reset_mem()
        counts = 0
        for t in range(x.shape[1]):
            spk1, mem1 = self.lif1(self.fc1(x[:, t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            counts = counts + spk2
        return counts

    def logits(self, counts):
        return counts * (8.0 / TIME_STEPS)


def _tangentcore(qat: bool) -> LIFMLP:
    options = {"weight_kind": "int", "weight_bits": 4, "membrane_bits": 12} if qat else {"threshold": 1}
    return LIFMLP(SIZES, time_steps=TIME_STEPS, surrogate=get_surrogate("fast_sigmoid", 2.0),
                  leak_shift=LEAK_SHIFT, reset="subtract", qat=qat, **options)


def _epoch_seconds(model, x: torch.Tensor, y: torch.Tensor, epochs: int) -> float:
    """Return the wall time of ``epochs`` training epochs (forward, backward, Adam step)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(order), BATCH):
            index = order[start : start + BATCH]
            loss = loss_fn(model.logits(model(x[index])), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per trainer; the median counts (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    dataset = load_dataset("digits", encoding="rate", input_bits=1, threshold=-1, test_fraction=0.2, seed=0,
                           time_steps=TIME_STEPS)
    x = torch.as_tensor(dataset.x_train, dtype=torch.float32)
    y = torch.as_tensor(dataset.y_train)
    samples = len(x) * args.epochs
    trainers = {
        "tangentcore, no QAT": lambda: _tangentcore(qat=False),
        "tangentcore, QAT": lambda: _tangentcore(qat=True),
        "snnTorch 1.0.0": SnnTorchNet,
    }
    for build in trainers.values():
        _epoch_seconds(build(), x[:BATCH * 2], y[:BATCH * 2], 1)  # warm-up
    times = {name: [] for name in trainers}
    for _ in range(args.repeats):
        for name, build in trainers.items():
            times[name].append(_epoch_seconds(build(), x, y, args.epochs))

    import snntorch

    print(f"torch {torch.__version__}, snntorch {snntorch.__version__}, {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}")
    print(f"{len(x)} samples x {args.epochs} epochs, batch {BATCH}, T = {TIME_STEPS}, network {SIZES}, "
          f"median of {args.repeats}")
    rates = {name: samples / statistics.median(values) for name, values in times.items()}
    baseline = rates["snnTorch 1.0.0"]
    for name, rate in rates.items():
        print(f"  {name:22s} {rate:8.0f} samples/s  {rate / baseline:5.2f}x snnTorch")


if __name__ == "__main__":
    main()
