"""Surrogate-gradient training of sign MLPs and LIF networks, seeded and deterministic on CPU.

Training resumes from checkpoints: after every epoch :func:`train_model`
writes the model, optimizer and scheduler state dicts, the epoch, the batch
order generator's state and the history (``torch.save``, read back with
``weights_only=True``), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tangentcore.config import Config
from tangentcore.errors import TangentcoreError
from tangentcore.fileio import write_atomic
from tangentcore.sw.data import Dataset
from tangentcore.sw.models import SignMLP
from tangentcore.sw.reference import argmax_lowest
from tangentcore.sw.spiking import LIFMLP
from tangentcore.sw.surrogates import get_surrogate

__all__ = ["TrainResult", "build_model", "train_model", "train_sign_mlp", "train_baseline", "evaluate_scores",
           "ReLUMLP"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A trained model and its accuracies on the dataset's split."""

    model: SignMLP | LIFMLP
    train_accuracy: float
    test_accuracy: float
    history: list[dict]


def build_model(config: Config, dataset: Dataset, *, qat: bool = True) -> SignMLP | LIFMLP:
    """Build the untrained model ``config.model`` describes, sized for ``dataset``."""
    model_config = config.model
    sizes = [dataset.n_features, *model_config.hidden, dataset.n_classes]
    surrogate = get_surrogate(model_config.surrogate, model_config.surrogate_scale)
    if model_config.kind == "sign_mlp":
        return SignMLP(sizes, input_encoding=dataset.encoding, input_bits=dataset.input_bits, surrogate=surrogate,
                       weight_kind=model_config.weight_kind, weight_bits=model_config.weight_bits)
    return LIFMLP(sizes, time_steps=dataset.time_steps, surrogate=surrogate, weight_kind=model_config.weight_kind,
                  weight_bits=model_config.weight_bits, leak_shift=model_config.leak_shift,
                  reset=model_config.reset, membrane_bits=model_config.membrane_bits,
                  threshold=model_config.threshold or None, learn_threshold=model_config.learn_threshold,
                  output=model_config.output, qat=qat)


def evaluate_scores(model: SignMLP | LIFMLP, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Return the eval-mode integer class scores (n, n_classes) int64 of encoded inputs."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(x[start : start + batch_size])
            outputs.append(model(batch))
    scores = torch.cat(outputs).numpy()
    integer = np.rint(scores).astype(np.int64)
    if not np.array_equal(integer, scores):
        raise RuntimeError("eval-mode scores are not integers; the model no longer computes exact integer arithmetic")
    return integer


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(argmax_lowest(evaluate_scores(model, x)) == y))


def _save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def _load_checkpoint(path: Path, config: Config) -> dict:
    try:
        state = torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise TangentcoreError(f"checkpoint not found: {path}; train without --resume first") from None
    except (RuntimeError, EOFError, ValueError) as error:
        raise TangentcoreError(f"checkpoint {path} cannot be read: {error}") from None
    if state.get("config") != _checkpoint_config(config):
        raise TangentcoreError(f"checkpoint {path} was written for another config; train again without --resume "
                               "or restore the config it was written with")
    return state


def _checkpoint_config(config: Config) -> dict:
    """Return the parts of the config a checkpoint depends on (everything but the hardware)."""
    raw = config.to_dict()
    return {key: raw[key] for key in ("name", "data", "model", "train")}


def train_model(config: Config, dataset: Dataset, *, progress: bool = True, checkpoint: str | Path | None = None,
                resume: bool = False, stop_after_epoch: int | None = None) -> TrainResult:
    """Train the model ``config`` describes on ``dataset``.

    With ``checkpoint`` the state is saved there after every epoch, and
    ``resume`` continues from it. ``stop_after_epoch`` ends the run early
    (after that many epochs in total), as an interruption would.
    """
    torch.manual_seed(config.train.seed)
    generator = torch.Generator().manual_seed(config.train.seed)
    model = build_model(config, dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.train.epochs)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict] = []
    start_epoch = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if resume:
        if checkpoint is None:
            raise TangentcoreError("resume needs a checkpoint path")
        state = _load_checkpoint(checkpoint, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        log.info("resuming %s from %s after epoch %d", config.name, checkpoint, start_epoch)

    y_train = torch.as_tensor(dataset.y_train)
    last_epoch = config.train.epochs if stop_after_epoch is None else min(stop_after_epoch, config.train.epochs)
    epochs = tqdm(range(start_epoch, last_epoch), desc=f"train {config.name}", unit="epoch",
                  disable=not progress, leave=False)
    for epoch in epochs:
        model.train()
        x_train = torch.as_tensor(dataset.train_inputs(epoch))
        order = torch.randperm(len(x_train), generator=generator)
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), config.train.batch_size):
            index = order[start : start + config.train.batch_size]
            logits = model.logits(model(x_train[index]))
            loss = loss_fn(logits, y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.clip_latent_weights()
            total_loss += loss.item() * len(index)
            correct += int((logits.detach().argmax(dim=1) == y_train[index]).sum())
        schedule.step()
        record = {"epoch": epoch + 1, "loss": total_loss / len(order), "train_accuracy": correct / len(order)}
        history.append(record)
        epochs.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['train_accuracy']:.3f}")
        log.debug("epoch %d: loss %.4f, running train accuracy %.4f", epoch + 1, record["loss"],
                  record["train_accuracy"])
        if checkpoint is not None:
            _save_checkpoint(checkpoint, {
                "config": _checkpoint_config(config),
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(),
                "generator": generator.get_state(),
                "history": history,
            })

    model.eval()
    return TrainResult(
        model=model,
        train_accuracy=_accuracy(model, dataset.x_train, dataset.y_train),
        test_accuracy=_accuracy(model, dataset.x_test, dataset.y_test),
        history=history,
    )


def train_sign_mlp(config: Config, dataset: Dataset, *, progress: bool = True) -> TrainResult:
    """Train the sign MLP that ``config`` describes on ``dataset`` (see :func:`train_model`)."""
    return train_model(config, dataset, progress=progress)


class ReLUMLP(nn.Module):
    """The differentiable baseline: the same topology with float weights and ReLU activations."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _baseline_inputs(dataset: Dataset, x: np.ndarray) -> torch.Tensor:
    """Return float inputs for the baseline: spike rates over time for spike trains, else values in [0, 1]."""
    x = torch.as_tensor(x, dtype=torch.float32)
    if dataset.is_spiking:
        return x.mean(dim=1)
    if dataset.encoding == "uint":
        return x / ((1 << dataset.input_bits) - 1)
    return x


def train_baseline(config: Config, dataset: Dataset, *, progress: bool = True) -> dict:
    """Train the ReLU baseline on the same encoded data and schedule; return its accuracies."""
    torch.manual_seed(config.train.seed)
    generator = torch.Generator().manual_seed(config.train.seed)
    model = ReLUMLP([dataset.n_features, *config.model.hidden, dataset.n_classes])
    optimizer = torch.optim.Adam(model.parameters(), lr=min(config.train.learning_rate, 1e-3))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.train.epochs)
    loss_fn = nn.CrossEntropyLoss()
    x_train = _baseline_inputs(dataset, dataset.x_train)
    y_train = torch.as_tensor(dataset.y_train)
    for _ in tqdm(range(config.train.epochs), desc="baseline", unit="epoch", disable=not progress, leave=False):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), config.train.batch_size):
            index = order[start : start + config.train.batch_size]
            loss = loss_fn(model(x_train[index]), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        train_predictions = model(x_train).argmax(dim=1).numpy()
        test_predictions = model(_baseline_inputs(dataset, dataset.x_test)).argmax(dim=1).numpy()
    return {
        "train_accuracy": float(np.mean(train_predictions == dataset.y_train)),
        "test_accuracy": float(np.mean(test_predictions == dataset.y_test)),
    }
