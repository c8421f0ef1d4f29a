"""The main job: train, export, generate and co-simulate one configuration."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tangentcore.config import Config, parse_fold
from tangentcore.errors import TangentcoreError
from tangentcore.fileio import write_atomic
from tangentcore.manifest import Manifest, save_manifest

log = logging.getLogger(__name__)

__all__ = ["RunSummary", "run_pipeline", "train_and_export", "load_config_dataset", "format_summary"]


@dataclass
class RunSummary:
    """Everything ``tangentcore run`` reports."""

    name: str
    topology: list[int]
    encoding: str
    input_bits: int
    test_vectors: int
    train_seconds: float
    accuracy: dict[str, float]
    torch_vs_reference_mismatches: int
    outputs_per_vector: int
    simulators: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    latency_cycles: int = 0
    initiation_interval_cycles: int = 0
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def mismatches(self) -> int:
        return self.torch_vs_reference_mismatches + sum(s["mismatches"] for s in self.simulators.values())

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and all(s["latency_ok"] for s in self.simulators.values())

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "topology": self.topology,
            "encoding": self.encoding,
            "input_bits": self.input_bits,
            "test_vectors": self.test_vectors,
            "train_seconds": round(self.train_seconds, 3),
            "accuracy": self.accuracy,
            "torch_vs_reference_mismatches": self.torch_vs_reference_mismatches,
            "outputs_per_vector": self.outputs_per_vector,
            "simulators": self.simulators,
            "skipped": self.skipped,
            "latency_cycles": self.latency_cycles,
            "initiation_interval_cycles": self.initiation_interval_cycles,
            "mismatches": self.mismatches,
            "ok": self.ok,
            "artifacts": self.artifacts,
        }


def load_config_dataset(config: Config):
    """Load and encode the dataset that ``config.data`` describes."""
    from tangentcore.sw.data import load_dataset

    data = config.data
    return load_dataset(data.dataset, encoding=data.encoding, input_bits=data.input_bits,
                        threshold=data.threshold, test_fraction=data.test_fraction, seed=data.seed,
                        time_steps=data.time_steps, path=data.path, labels_path=data.labels_path,
                        test_path=data.test_path, test_labels_path=data.test_labels_path,
                        pixel_max=data.pixel_max, augment_shift=data.augment_shift)


def train_and_export(config: Config, out_dir: Path, *, progress: bool = True, resume: bool = False):
    """Train the configured model, check torch eval against the reference, and save the manifest.

    Writes ``checkpoint.pt`` after every epoch (``resume`` continues from
    it), then ``manifest/`` and ``metrics.json``. Raises TangentcoreError if
    the exported manifest disagrees with the trained model on any test score.
    Returns ``(dataset, manifest, torch_scores, train_seconds)``.
    """
    from tangentcore.sw import reference
    from tangentcore.sw.export import export_model
    from tangentcore.sw.train import evaluate_scores, train_baseline, train_model

    out_dir = Path(out_dir)
    dataset = load_config_dataset(config)
    log.info("training %s on %d %s images", config.name, len(dataset.x_train), dataset.name)
    started = time.perf_counter()
    result = train_model(config, dataset, progress=progress, checkpoint=out_dir / "checkpoint.pt", resume=resume)
    train_seconds = time.perf_counter() - started
    metrics = {"train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy}
    if config.train.baseline:
        metrics["baseline"] = train_baseline(config, dataset, progress=progress)
    manifest = export_model(result.model, name=config.name, provenance={"config": config.to_dict(), "metrics": metrics})
    torch_scores = evaluate_scores(result.model, dataset.x_test)
    mismatches = int(np.sum(torch_scores != reference.forward(manifest, dataset.x_test)["scores"]))
    if mismatches:
        raise TangentcoreError(f"{config.name}: the exported manifest disagrees with the trained model on "
                               f"{mismatches} test scores; this is a bug in tangentcore, please report it")
    save_manifest(manifest, out_dir / "manifest")
    write_atomic(out_dir / "metrics.json", json.dumps({
        "history": result.history, **metrics, "train_seconds": round(train_seconds, 3),
        "test_images": len(dataset.x_test), "torch_vs_reference_mismatches": mismatches,
    }, indent=2) + "\n")
    return dataset, manifest, torch_scores, train_seconds


def run_pipeline(config: Config, out_dir: str | Path, *, simulators: tuple[str, ...] | None = None,
                 progress: bool = True) -> RunSummary:
    """Train, export, generate and co-simulate ``config``; write ``summary.json`` into ``out_dir``."""
    from tangentcore.hw.generate import generate_core
    from tangentcore.sim.runner import run_cosim, simulator_missing
    from tangentcore.sw import reference

    out_dir = Path(out_dir)
    simulators = tuple(simulators if simulators is not None else config.hardware.simulators)
    dataset, manifest, torch_scores, train_seconds = train_and_export(config, out_dir, progress=progress)

    expected = reference.forward(manifest, dataset.x_test)
    torch_mismatches = int(np.sum(torch_scores != expected["scores"]))
    torch_labels = reference.argmax_lowest(torch_scores)
    torch_mismatches += int(np.sum(torch_labels != expected["predictions"]))
    accuracy = {
        "torch": float(np.mean(torch_labels == dataset.y_test)),
        "reference": float(np.mean(expected["predictions"] == dataset.y_test)),
    }

    core = generate_core(manifest, out_dir / "core", fold=parse_fold(config.hardware.fold))
    log.info("generated %s (latency %d cycles)", core.verilog, core.description["latency_cycles"])

    limit = config.data.cosim_limit or len(dataset.x_test)
    x_cosim, y_cosim = dataset.x_test[:limit], dataset.y_test[:limit]
    summary = RunSummary(
        name=config.name,
        topology=[manifest.input.size, *[layer.out_features for layer in manifest.layers]],
        encoding=manifest.input.encoding,
        input_bits=manifest.input.bits,
        test_vectors=len(dataset.x_test),
        train_seconds=train_seconds,
        accuracy=accuracy,
        torch_vs_reference_mismatches=torch_mismatches,
        outputs_per_vector=manifest.n_classes + 1,
        latency_cycles=core.description["latency_cycles"],
        initiation_interval_cycles=core.description["initiation_interval_cycles"],
        artifacts={"manifest": str(out_dir / "manifest"), "core": str(out_dir / "core"),
                   "cosim": str(out_dir / "cosim")},
    )
    for simulator in simulators:
        missing = simulator_missing(simulator)
        if missing:
            log.warning("skipping %s: %s", simulator, missing)
            summary.skipped[simulator] = missing
            continue
        result = run_cosim(core, manifest, x_cosim, simulator, out_dir / "cosim", seed=config.data.seed)
        summary.accuracy[simulator] = float(np.mean(np.asarray(result.labels) == y_cosim))
        summary.simulators[simulator] = {
            "vectors": result.vectors,
            "mismatches": result.mismatches,
            "first_mismatches": result.first_mismatches,
            "measured_latency_cycles": result.measured_latency_cycles,
            "latency_ok": result.measured_latency_cycles == result.model_latency_cycles,
            "stream_cycles": result.stream_cycles,
            "build_seconds": round(result.build_seconds, 3),
            "simulate_seconds": round(result.simulate_seconds, 3),
            "log": str(result.log_path),
        }
    write_atomic(out_dir / "summary.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def format_summary(summary: RunSummary) -> str:
    """Return the short human summary that ``tangentcore run`` prints."""
    topology = "-".join(str(n) for n in summary.topology)
    if summary.encoding == "spikes":
        network, inputs = "LIF network", "spike-train"
    else:
        network, inputs = "sign MLP", "binary" if summary.encoding == "binary" else f"{summary.input_bits}-bit"
    lines = [f"{summary.name}: {topology} {network}, {inputs} inputs, trained in {summary.train_seconds:.1f} s"]
    accuracy = ", ".join(f"{name} {_percent(value)}" for name, value in summary.accuracy.items())
    lines.append(f"  test accuracy ({summary.test_vectors} images): {accuracy}")
    compared = summary.test_vectors * summary.outputs_per_vector
    lines.append(f"  torch eval vs reference: {summary.torch_vs_reference_mismatches} mismatching outputs of {compared}")
    for name, result in summary.simulators.items():
        outputs = result["vectors"] * summary.outputs_per_vector
        line = (f"  {name}: {result['mismatches']} mismatching outputs of {outputs} "
                f"({result['vectors']} vectors; build {result['build_seconds']:.1f} s, "
                f"simulation {result['simulate_seconds']:.1f} s)")
        lines.append(line)
        if result["first_mismatches"]:
            first = result["first_mismatches"][0]
            lines.append(f"    first mismatch: vector {first['sample']} {first['output']}: "
                         f"expected {first['expected']}, got {first['actual']} (cycle {first['cycle']})")
        if not result["latency_ok"]:
            lines.append(f"    measured latency {result['measured_latency_cycles']} cycles, "
                         f"model {summary.latency_cycles}")
    for name, reason in summary.skipped.items():
        lines.append(f"  {name}: skipped: {reason}")
    lines.append(f"  cycles per inference: latency {summary.latency_cycles}, "
                 f"initiation interval {summary.initiation_interval_cycles}")
    lines.append(f"  artifacts: {summary.artifacts['manifest']}, {summary.artifacts['core']}, "
                 f"{summary.artifacts['cosim']}")
    lines.append("  result: " + ("bit-exact" if summary.ok else f"FAILED: {summary.mismatches} mismatching outputs"))
    return "\n".join(lines)
