"""Training runs: determinism, checkpoint resume, the ReLU baseline and exact export of trained models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tangentcore.config import config_from_dict
from tangentcore.errors import TangentcoreError
from tangentcore.pipeline import load_config_dataset
from tangentcore.sw import reference
from tangentcore.sw.export import export_model
from tangentcore.sw.train import evaluate_scores, train_baseline, train_model

TINY_LIF = {
    "name": "tiny_lif",
    "data": {"encoding": "rate", "time_steps": 4},
    "model": {"kind": "lif_mlp", "hidden": [12], "weight_kind": "int", "weight_bits": 3, "membrane_bits": 8},
    "train": {"epochs": 2, "batch_size": 128},
}
TINY_SIGN = {
    "name": "tiny_sign",
    "model": {"hidden": [16, 12], "weight_kind": "ternary", "weight_bits": 2},
    "train": {"epochs": 2, "batch_size": 128},
}


@pytest.fixture(scope="module")
def lif_dataset():
    return load_config_dataset(config_from_dict(TINY_LIF))


def _state(model) -> dict[str, np.ndarray]:
    return {key: value.detach().numpy().copy() for key, value in model.state_dict().items()}


def test_training_is_deterministic(lif_dataset):
    config = config_from_dict(TINY_LIF)
    first = train_model(config, lif_dataset, progress=False)
    second = train_model(config, lif_dataset, progress=False)
    assert first.history == second.history
    for key, value in _state(first.model).items():
        np.testing.assert_array_equal(value, _state(second.model)[key])


def test_resume_equals_uninterrupted(tmp_path, lif_dataset):
    config = config_from_dict(TINY_LIF)
    straight = train_model(config, lif_dataset, progress=False)
    train_model(config, lif_dataset, progress=False, checkpoint=tmp_path / "checkpoint.pt", stop_after_epoch=1)
    resumed = train_model(config, lif_dataset, progress=False, checkpoint=tmp_path / "checkpoint.pt", resume=True)
    assert resumed.history == straight.history
    for key, value in _state(straight.model).items():
        np.testing.assert_array_equal(value, _state(resumed.model)[key])


def test_resume_rejects_other_config(tmp_path, lif_dataset):
    config = config_from_dict(TINY_LIF)
    train_model(config, lif_dataset, progress=False, checkpoint=tmp_path / "checkpoint.pt", stop_after_epoch=1)
    other = config_from_dict({**TINY_LIF, "train": {**TINY_LIF["train"], "learning_rate": 0.5}})
    with pytest.raises(TangentcoreError, match="was written for another config"):
        train_model(other, lif_dataset, progress=False, checkpoint=tmp_path / "checkpoint.pt", resume=True)


def test_resume_without_checkpoint(tmp_path, lif_dataset):
    with pytest.raises(TangentcoreError, match="checkpoint not found"):
        train_model(config_from_dict(TINY_LIF), lif_dataset, progress=False, checkpoint=tmp_path / "none.pt",
                    resume=True)


def test_checkpoint_loads_weights_only(tmp_path, lif_dataset):
    train_model(config_from_dict(TINY_LIF), lif_dataset, progress=False, checkpoint=tmp_path / "checkpoint.pt",
                stop_after_epoch=1)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    assert set(state) >= {"model", "optimizer", "scheduler", "generator", "history"}


# the model config of a short training run
@pytest.mark.parametrize("raw", [TINY_LIF, TINY_SIGN], ids=["lif", "sign"])
def test_trained_model_exports_exactly(raw):
    config = config_from_dict(raw)
    dataset = load_config_dataset(config)
    result = train_model(config, dataset, progress=False)
    manifest = export_model(result.model, name=config.name)
    expected = reference.forward(manifest, dataset.x_test)
    np.testing.assert_array_equal(evaluate_scores(result.model, dataset.x_test), expected["scores"])
    model_hidden = result.model(torch.as_tensor(dataset.x_test), return_hidden=True)[1]
    for layer_out, reference_out in zip(model_hidden, expected["hidden"]):
        values = layer_out.detach().numpy()
        bits = (values + 1) / 2 if raw is TINY_SIGN else values
        np.testing.assert_array_equal(bits.astype(np.uint8), reference_out)
    assert result.test_accuracy > 0.2


def test_baseline_trains(lif_dataset):
    metrics = train_baseline(config_from_dict(TINY_LIF), lif_dataset, progress=False)
    assert metrics["test_accuracy"] > 0.2
