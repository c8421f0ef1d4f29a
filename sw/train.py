"""Surrogate-gradient training of sign MLPs, seeded and deterministic on CPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tangentcore.config import Config
from tangentcore.sw.data import Dataset
from tangentcore.sw.models import SignMLP
from tangentcore.sw.surrogates import get_surrogate

__all__ = ["TrainResult", "train_sign_mlp", "evaluate_scores"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A trained model and its accuracies on the dataset's split."""

    model: SignMLP
    train_accuracy: float
    test_accuracy: float
    history: list[dict]


def evaluate_scores(model: SignMLP, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
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


def _accuracy(model: SignMLP, x: np.ndarray, y: np.ndarray) -> float:
    from tangentcore.sw.reference import argmax_lowest

    return float(np.mean(argmax_lowest(evaluate_scores(model, x)) == y))


def train_sign_mlp(config: Config, dataset: Dataset, *, progress: bool = True) -> TrainResult:
    """Train the sign MLP that ``config`` describes on ``dataset``."""
    torch.manual_seed(config.train.seed)
    generator = torch.Generator().manual_seed(config.train.seed)
    sizes = [dataset.n_features, *config.model.hidden, dataset.n_classes]
    surrogate = get_surrogate(config.model.surrogate, config.model.surrogate_scale)
    model = SignMLP(sizes, input_encoding=dataset.encoding, input_bits=dataset.input_bits, surrogate=surrogate)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.train.epochs)
    loss_fn = nn.CrossEntropyLoss()

    x_train = torch.as_tensor(dataset.x_train)
    y_train = torch.as_tensor(dataset.y_train)
    history = []
    epochs = tqdm(range(config.train.epochs), desc="train", unit="epoch", disable=not progress, leave=False)
    for epoch in epochs:
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), config.train.batch_size):
            index = order[start : start + config.train.batch_size]
            scores = model(x_train[index])
            loss = loss_fn(model.logits(scores), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.clip_latent_weights()
            total_loss += loss.item() * len(index)
        schedule.step()
        train_accuracy = _accuracy(model, dataset.x_train, dataset.y_train)
        record = {"epoch": epoch + 1, "loss": total_loss / len(order), "train_accuracy": train_accuracy}
        history.append(record)
        epochs.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{train_accuracy:.3f}")
        log.debug("epoch %d: loss %.4f, train accuracy %.4f", epoch + 1, record["loss"], train_accuracy)

    model.eval()
    return TrainResult(
        model=model,
        train_accuracy=_accuracy(model, dataset.x_train, dataset.y_train),
        test_accuracy=_accuracy(model, dataset.x_test, dataset.y_test),
        history=history,
    )
