"""Size a sign MLP for a board from kernel predictions and the calibrated resource model.

The method (docs/sizing.md has the derivation, the assumptions and the
measured error):

1. **Ceiling.** The infinite-width SG-NTK of the configured architecture
   (depth, surrogate and its scale, input encoding) predicts, without
   training, the test accuracy of kernel regression on one-hot targets: the
   mean of the trained infinite network under MSE gradient flow. It bounds
   what finite, quantized networks of that architecture reach, and the same
   computation ranks architecture choices (:func:`rank_architectures`).
2. **Finite width and weight precision.** A finite network's kernel
   fluctuates around its limit with a spread of order ``1/√width``, so the
   accuracy of each weight precision follows ``a(w) = A − c/√w`` with
   ``A`` at most the ceiling. ``A`` and ``c`` are fitted to cheap
   measurements: short runs of the actual quantized architecture at the
   smallest widths, two seeds each. The fit's residual gives the
   uncertainty of every prediction.
3. **Cost.** Each (width, weights, folding) candidate is priced by
   :func:`tangentcore.hw.resources.load_model` (logic, block RAM, Fmax) and
   its cycles per inference come from the core's own timing model.
4. **Pick.** The cheapest candidate (logic cells, then block RAM) whose
   accuracy lower bound ``mean − z·std`` meets the target, that fits the
   device's logic budget and whose predicted Fmax clears the board clock
   with margin, and that meets the throughput target.

Every expensive step is a task of :class:`tangentcore.distributed.TaskRunner`
(dask.distributed, cached by content hash).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tangentcore.config import Config, config_from_dict
from tangentcore.errors import TangentcoreError

__all__ = ["WeightChoice", "parse_weight_choices", "parse_widths", "balanced_foldings", "WidthLaw", "fit_width_law",
           "SizingOptions", "Candidate", "pareto_front", "pick", "size", "rank_architectures"]

log = logging.getLogger(__name__)

# The kernel's σ_w and σ_b when the config does not vary them in the ranking.
SIGMA_W = 1.0
SIGMA_B = 0.1
RIDGE = 1e-6
# Targets of cycles per layer: each gives one balanced folding of the network.
DEFAULT_LAYER_CYCLES = (16, 64, 256, 1024)
DEFAULT_WIDTHS = (16, 32, 64, 128, 256)
DEFAULT_WEIGHTS = ("binary", "ternary", "int4")


@dataclass(frozen=True)
class WeightChoice:
    """One weight precision of the sweep: ``kind`` binary, ternary or int with ``bits``."""

    kind: str
    bits: int

    @property
    def label(self) -> str:
        return self.kind if self.kind in ("binary", "ternary") else f"int{self.bits}"


def parse_weight_choices(text: str) -> list[WeightChoice]:
    """Parse ``binary,ternary,int4``: comma-separated binary, ternary or intK with K from 2 to 8."""
    choices = []
    for part in (p.strip() for p in text.split(",")):
        if part == "binary":
            choices.append(WeightChoice("binary", 1))
        elif part == "ternary":
            choices.append(WeightChoice("ternary", 2))
        elif part.startswith("int") and part[3:].isdigit() and 2 <= int(part[3:]) <= 8:
            choices.append(WeightChoice("int", int(part[3:])))
        else:
            raise TangentcoreError(f"weights must be a comma-separated list of binary, ternary and int2 … int8; "
                                   f"{part!r} is none of them")
    if len(set(choices)) != len(choices):
        raise TangentcoreError(f"weights lists a precision twice: {text!r}")
    return choices


def parse_widths(text: str, option: str = "--widths") -> list[int]:
    """Parse a comma-separated list of positive hidden widths."""
    try:
        widths = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise TangentcoreError(f"{option} must be comma-separated positive integers such as 16,32,64, "
                               f"not {text!r}") from None
    if not widths or widths[0] < 2:
        raise TangentcoreError(f"{option} must list widths of at least 2, not {text!r}")
    return widths


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def balanced_foldings(shapes: list[tuple[int, int]], layer_cycles: int):
    """Return one Folding per layer ``(n_in, n_out)``: the fewest lanes ``PE·SIMD`` whose
    ``(n_out/PE)·(n_in/SIMD)`` is at most ``layer_cycles`` (FINN-style balancing), preferring wide SIMD."""
    from tangentcore.hw.layers import Folding

    foldings = []
    for n_in, n_out in shapes:
        options = [(pe * simd, -simd, pe, simd) for pe in _divisors(n_out) for simd in _divisors(n_in)
                   if (n_out // pe) * (n_in // simd) <= layer_cycles]
        _, _, pe, simd = min(options) if options else (0, 0, n_out, n_in)
        foldings.append(Folding(pe=pe, simd=simd))
    return foldings


# ---------------------------------------------------------------------------------------------------------------
# Tasks: module-level functions of JSON-able arguments, run on dask workers and cached by content hash.


def _worker_threads() -> None:
    import torch

    torch.set_num_threads(1)


def _variant(config: dict, width: int, weight_kind: str, weight_bits: int, **train_changes) -> Config:
    """Return the config of one candidate: every hidden layer ``width`` wide, the given weights, no baseline."""
    base = config_from_dict(config)
    return dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, hidden=(width,) * len(base.model.hidden), weight_kind=weight_kind,
                                  weight_bits=weight_bits),
        train=dataclasses.replace(base.train, baseline=False, **train_changes),
    )


def config_document(config: Config) -> dict:
    """Return ``config`` as plain JSON data (lists, not tuples), as tasks take it and hash it."""
    return json.loads(json.dumps(config.to_dict()))


def kernel_inputs(x: np.ndarray, encoding: str) -> np.ndarray:
    """Return the network's view of encoded inputs as floats: binary bits as ±1, unsigned integers as they are."""
    x = np.asarray(x, dtype=np.float64)
    return 2.0 * x - 1.0 if encoding == "binary" else x


def kernel_accuracy_task(*, config: dict, depth: int, surrogate: str, scale: float, sigma_w: float, sigma_b: float,
                         encoding: str, input_bits: int) -> dict:
    """Return the test accuracy of infinite-width SG-NTK regression on one-hot targets (the trained mean)."""
    from tangentcore.pipeline import load_config_dataset
    from tangentcore.sw.kernels import MLPKernel, sign_activation
    from tangentcore.sw.predict import kernel_regression
    from tangentcore.sw.surrogates import get_surrogate

    started = time.perf_counter()
    base = config_from_dict(config)
    data = dataclasses.replace(base.data, encoding=encoding, input_bits=input_bits, augment_shift=0)
    dataset = load_config_dataset(dataclasses.replace(base, data=data))
    x_train = kernel_inputs(dataset.x_train, encoding)
    x_test = kernel_inputs(dataset.x_test, encoding)
    targets = np.eye(dataset.n_classes)[dataset.y_train] - 1.0 / dataset.n_classes
    kernel = MLPKernel(depth, sign_activation(), get_surrogate(surrogate, scale), sigma_w, sigma_b)
    with warnings.catch_warnings():
        # Surrogates without a closed form warn that their Gaussian mean comes from a quadrature table.
        # Its error, about 1e-10, is far below what an accuracy can show.
        warnings.filterwarnings("ignore", message="surrogate .*quadrature", category=UserWarning)
        train = kernel.sgntk(x_train)
        test_train = kernel.sgntk(x_test, x_train)
    # Coarse encodings repeat images, which makes I(X, X) singular. A ridge of a millionth of the mean
    # diagonal keeps the solve defined.
    train[np.diag_indices_from(train)] += RIDGE * np.mean(np.diag(train))
    mean = kernel_regression(test_train, train, targets)
    return {"accuracy": float(np.mean(mean.argmax(axis=1) == dataset.y_test)),
            "seconds": round(time.perf_counter() - started, 3)}


def train_task(*, config: dict, width: int, weight_kind: str, weight_bits: int, seed: int, epochs: int) -> dict:
    """Train the quantized sign MLP at one width and weight precision; return its accuracies."""
    from tangentcore.pipeline import load_config_dataset
    from tangentcore.sw.train import train_model

    _worker_threads()
    started = time.perf_counter()
    variant = _variant(config, width, weight_kind, weight_bits, seed=seed, epochs=epochs)
    result = train_model(variant, load_config_dataset(variant), progress=False)
    return {"test_accuracy": result.test_accuracy, "train_accuracy": result.train_accuracy,
            "seconds": round(time.perf_counter() - started, 3)}


def verify_task(*, config: dict, design: dict, board: str, simulators: list[str], out_dir: str) -> dict:
    """Train, export, generate, co-simulate and build one design; return what was measured.

    A design that does not fit or misses timing is reported with the
    build's message, not raised, so that the other designs still finish.
    """
    from tangentcore.hw.build import build_board
    from tangentcore.hw.generate import generate_core
    from tangentcore.hw.layers import Folding
    from tangentcore.hw.network import Network
    from tangentcore.pipeline import train_and_export
    from tangentcore.sim.runner import run_cosim, simulator_missing
    from tangentcore.sw import reference

    _worker_threads()
    variant = dataclasses.replace(_variant(config, design["width"], design["weight_kind"], design["weight_bits"]),
                                  name=design["id"])
    folder = Path(out_dir) / design["id"]
    started = time.perf_counter()
    dataset, manifest, _, train_seconds = train_and_export(variant, folder, progress=False)
    expected = reference.forward(manifest, dataset.x_test)
    measured = {"accuracy": float(np.mean(expected["predictions"] == dataset.y_test)),
                "train_seconds": round(train_seconds, 1), "folder": str(folder)}
    foldings = [Folding(pe=pe, simd=simd) for pe, simd in design["foldings"]]
    core = generate_core(manifest, folder / "core", foldings=foldings)
    measured["cycles_per_inference"] = core.description["initiation_interval_cycles"]
    measured["cosim"] = {}
    for simulator in simulators:
        missing = simulator_missing(simulator)
        if missing:
            raise TangentcoreError(f"--verify needs {simulator}: {missing}")
        result = run_cosim(core, manifest, dataset.x_test, simulator, folder / "cosim", seed=variant.data.seed)
        measured["cosim"][simulator] = {"vectors": result.vectors, "mismatches": result.mismatches}
    network = Network.from_manifest(manifest, foldings)
    try:
        build = build_board(network, design=design["id"], board=board, out_root=folder / "bitstreams",
                            cycles_per_inference=network.initiation_interval_cycles)
        summary = build.summary
        measured["build"] = {"ok": True, **_build_numbers(summary)}
    except TangentcoreError as error:
        measured["build"] = {"ok": False, "error": str(error)}
        summary_path = folder / "bitstreams" / design["id"] / board / "summary.json"
        if summary_path.is_file():  # built, but missed timing
            measured["build"].update(_build_numbers(json.loads(summary_path.read_text())))
    measured["seconds"] = round(time.perf_counter() - started, 1)
    return measured


def _build_numbers(summary: dict) -> dict:
    utilization = summary["utilization"]
    logic = utilization.get("lc", utilization.get("lut", {})).get("used")
    fmax = min((entry["achieved_mhz"] for entry in summary["fmax"].values()), default=None)
    return {"logic": logic, "bram": utilization.get("ebr", {}).get("used"), "ff": utilization.get("ff", {}).get("used"),
            "fmax_mhz": fmax, "timing_met": summary["timing_met"],
            "inferences_per_second": summary["inferences_per_second"], "bitstream": summary["bitstream"]}


# ---------------------------------------------------------------------------------------------------------------
# The finite-width law.


@dataclass(frozen=True)
class WidthLaw:
    """``a(w) = ceiling_fit − slope/√w`` with a prediction standard deviation from the fit's residual."""

    asymptote: float
    slope: float
    residual_std: float
    # (X^T X)^-1 of the features [1, −1/√w] of the calibration points, for the standard deviation of the fit.
    covariance_factor: tuple[tuple[float, float], tuple[float, float]]
    capped: bool

    def predict(self, width: int) -> tuple[float, float]:
        """Return the predicted accuracy at ``width`` and its standard deviation."""
        features = np.array([1.0, -1.0 / math.sqrt(width)])
        mean = self.asymptote + self.slope * features[1]
        spread = float(features @ np.array(self.covariance_factor) @ features)
        std = self.residual_std * math.sqrt(1.0 + spread)
        return float(np.clip(mean, 0.0, 1.0)), std


def fit_width_law(widths, accuracies, ceiling: float, test_images: int) -> WidthLaw:
    """Fit ``a(w) = A − c/√w`` to measured accuracies with ``c ≥ 0`` and ``A ≤ ceiling``.

    The residual standard deviation is floored at the binomial standard
    deviation of an accuracy measured on ``test_images`` images, since no fit
    can be surer than its measurements.
    """
    widths = np.asarray(widths, dtype=np.float64)
    accuracies = np.asarray(accuracies, dtype=np.float64)
    if len(set(widths.tolist())) < 2:
        raise TangentcoreError("the width law needs measurements at two or more widths; pass more --calibration-widths")
    features = np.stack([np.ones_like(widths), -1.0 / np.sqrt(widths)], axis=1)
    (asymptote, slope), *_ = np.linalg.lstsq(features, accuracies, rcond=None)
    capped = False
    if slope < 0:  # accuracy falling with width: keep the mean, no width effect
        asymptote, slope = float(np.mean(accuracies)), 0.0
    if asymptote > ceiling:
        capped = True
        asymptote = ceiling
        slope = max(0.0, float(np.sum((asymptote - accuracies) * (-features[:, 1])) / np.sum(features[:, 1] ** 2)))
    residual = accuracies - features @ np.array([asymptote, slope])
    dof = max(1, len(accuracies) - 2)
    p = float(np.clip(np.mean(accuracies), 0.0, 1.0))
    floor = math.sqrt(max(p * (1 - p), 1e-4) / test_images)
    residual_std = max(math.sqrt(float(residual @ residual) / dof), floor)
    factor = np.linalg.pinv(features.T @ features)
    return WidthLaw(float(asymptote), float(slope), residual_std, tuple(map(tuple, factor.tolist())), capped)


# ---------------------------------------------------------------------------------------------------------------
# Candidates, the Pareto front and the pick.


@dataclass(frozen=True)
class SizingOptions:
    """The sweep of ``tangentcore size`` and the targets a design must meet."""

    target_accuracy: float
    board: str
    throughput: float = 0.0  # inferences per second; 0: no target
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    weights: tuple[WeightChoice, ...] = tuple(parse_weight_choices(",".join(DEFAULT_WEIGHTS)))
    layer_cycles: tuple[int, ...] = DEFAULT_LAYER_CYCLES
    calibration_widths: tuple[int, ...] = ()  # empty: the three smallest sweep widths
    calibration_seeds: int = 2
    calibration_epochs: int = 0  # 0: the config's epochs
    z: float = 1.0  # the accuracy lower bound is mean − z·std
    logic_budget: float = 0.85  # fraction of the device's logic cells the prediction may use
    fmax_margin: float = 0.10  # predicted Fmax must exceed the board clock by this fraction
    rank: bool = True

    def __post_init__(self):
        if not 0 < self.target_accuracy < 1:
            raise TangentcoreError(f"target accuracy must be a fraction strictly between 0 and 1 (such as 0.95), "
                                   f"not {self.target_accuracy!r}")
        if self.throughput < 0:
            raise TangentcoreError(f"throughput must be ≥ 0 inferences per second, not {self.throughput!r}")
        if not 0 < self.logic_budget <= 1:
            raise TangentcoreError(f"logic budget must lie in (0, 1], not {self.logic_budget!r}")
        if self.calibration_seeds < 1:
            raise TangentcoreError(f"calibration seeds must be at least 1, not {self.calibration_seeds!r}")

    @property
    def calibration(self) -> tuple[int, ...]:
        return self.calibration_widths or tuple(sorted(self.widths)[:3])


@dataclass
class Candidate:
    """One design of the sweep with its predictions."""

    width: int
    weights: WeightChoice
    layer_cycles: int
    foldings: list[tuple[int, int]]
    accuracy: float
    accuracy_std: float
    logic: float
    bram: float
    fmax_mhz: float
    cycles_per_inference: int
    inferences_per_second: float
    fits: bool
    meets_timing: bool
    meets_accuracy: bool = False
    meets_throughput: bool = True
    dsp: float = 0.0
    measured: dict | None = None

    @property
    def id(self) -> str:
        return f"w{self.width}-{self.weights.label}-c{self.layer_cycles}"

    @property
    def feasible(self) -> bool:
        return self.fits and self.meets_timing and self.meets_accuracy and self.meets_throughput

    def to_json(self) -> dict:
        return {"id": self.id, "width": self.width, "weights": self.weights.label, "weight_kind": self.weights.kind,
                "weight_bits": self.weights.bits, "layer_cycles": self.layer_cycles, "foldings": self.foldings,
                "predicted": {"accuracy": self.accuracy, "accuracy_std": self.accuracy_std, "logic": self.logic,
                              "bram": self.bram, "dsp": self.dsp, "fmax_mhz": self.fmax_mhz,
                              "cycles_per_inference": self.cycles_per_inference,
                              "inferences_per_second": self.inferences_per_second},
                "fits": self.fits, "meets_timing": self.meets_timing, "meets_accuracy": self.meets_accuracy,
                "meets_throughput": self.meets_throughput, "feasible": self.feasible, "measured": self.measured}


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """Return the candidates that fit and that no other fitting candidate beats in accuracy, logic and
    throughput at once, ordered by logic."""
    fitting = [c for c in candidates if c.fits and c.meets_timing]

    def dominates(a: Candidate, b: Candidate) -> bool:
        no_worse = a.accuracy >= b.accuracy and a.logic <= b.logic and a.inferences_per_second >= b.inferences_per_second
        better = a.accuracy > b.accuracy or a.logic < b.logic or a.inferences_per_second > b.inferences_per_second
        return no_worse and better

    front = [c for c in fitting if not any(dominates(other, c) for other in fitting)]
    return sorted(front, key=lambda c: (c.logic, -c.accuracy))


def pick(candidates: list[Candidate]) -> Candidate | None:
    """Return the cheapest feasible candidate: fewest logic cells, then block RAM, then most accurate."""
    feasible = [c for c in candidates if c.feasible]
    return min(feasible, key=lambda c: (c.logic, c.bram, -c.accuracy)) if feasible else None


def _neighbours(front: list[Candidate], chosen: Candidate) -> list[Candidate]:
    """Return the designs next to ``chosen`` on the front: the next cheaper and the next dearer one."""
    others = [c for c in front if c is not chosen]
    cheaper = [c for c in others if c.logic <= chosen.logic]
    dearer = [c for c in others if c.logic > chosen.logic]
    neighbours = []
    if cheaper:
        neighbours.append(cheaper[-1])
    if dearer:
        neighbours.append(dearer[0])
    return neighbours


# ---------------------------------------------------------------------------------------------------------------
# Architecture ranking from the kernel alone.


def _architecture_variants(config: Config) -> list[dict]:
    """Vary one choice of the configured architecture at a time: surrogate family and scale, depth,
    σ_w, σ_b and the input encoding."""
    from tangentcore.sw.surrogates import SURROGATE_NAMES

    model, data = config.model, config.data
    base = {"depth": len(model.hidden), "surrogate": model.surrogate, "scale": model.surrogate_scale,
            "sigma_w": SIGMA_W, "sigma_b": SIGMA_B, "encoding": data.encoding, "input_bits": data.input_bits}
    variants = [("configured", base)]
    for name in SURROGATE_NAMES:
        if name != model.surrogate:
            variants.append((f"surrogate {name}", {**base, "surrogate": name}))
    for scale in (0.25, 0.5, 2.0, 4.0):
        variants.append((f"surrogate scale {scale:g}", {**base, "scale": model.surrogate_scale * scale}))
    for depth in (1, 2, 3):
        if depth != base["depth"]:
            variants.append((f"depth {depth}", {**base, "depth": depth}))
    for sigma_w in (0.5, 2.0):
        variants.append((f"sigma_w {sigma_w:g}", {**base, "sigma_w": sigma_w}))
    for sigma_b in (0.0, 0.5, 1.0):
        variants.append((f"sigma_b {sigma_b:g}", {**base, "sigma_b": sigma_b}))
    encodings = [("binary", 1)] + [("uint", bits) for bits in (2, 4, 8)]
    for encoding, bits in encodings:
        if (encoding, bits) != (data.encoding, data.input_bits if data.encoding == "uint" else 1):
            label = "inputs binary" if encoding == "binary" else f"inputs uint{bits}"
            variants.append((label, {**base, "encoding": encoding, "input_bits": bits}))
    return [{"label": label, **params} for label, params in variants]


def rank_architectures(config: Config, runner, *, vary: bool = True) -> list[dict]:
    """Return the architecture variants with their predicted (infinite-width) accuracy, best first.

    With ``vary`` False the list has only the configured architecture, whose accuracy is the ceiling.
    """
    variants = _architecture_variants(config)
    if not vary:
        variants = variants[:1]
    document = config_document(config)
    results = runner.map(kernel_accuracy_task,
                         [{"config": document, **{k: v for k, v in variant.items() if k != "label"}}
                          for variant in variants], description="kernel ranking")
    ranked = [{**variant, "accuracy": result["accuracy"]} for variant, result in zip(variants, results)]
    return sorted(ranked, key=lambda entry: (-entry["accuracy"], entry["label"] != "configured"))


# ---------------------------------------------------------------------------------------------------------------
# The sweep.


@dataclass
class SizingReport:
    """Everything ``tangentcore size`` found, as written to ``report.json``."""

    config: dict
    options: dict
    ceiling: float
    ranking: list[dict]
    calibration: list[dict]
    laws: dict[str, dict]
    candidates: list[Candidate]
    front: list[Candidate]
    chosen: Candidate | None
    verified: list[Candidate] = field(default_factory=list)
    device: dict = field(default_factory=dict)
    clock_mhz: float = 0.0
    tasks: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"config": self.config, "options": self.options, "ceiling": self.ceiling, "ranking": self.ranking,
                "calibration": self.calibration, "laws": self.laws, "device": self.device,
                "clock_mhz": self.clock_mhz, "tasks": self.tasks,
                "candidates": [c.to_json() for c in self.candidates],
                "pareto_front": [c.id for c in self.front],
                "pick": self.chosen.id if self.chosen else None,
                "verified": [c.to_json() for c in self.verified]}


def _check_config(config: Config) -> None:
    if config.model.kind != "sign_mlp":
        raise TangentcoreError(f"size works on sign_mlp configs; {config.name!r} has model.kind "
                               f"{config.model.kind!r}. The SG-NTK here has no time dimension, so LIF networks "
                               f"are not sized yet")


def _price(config: Config, dataset_shape: tuple[int, int], options: SizingOptions, model,
           accuracy: dict[tuple[int, str], tuple[float, float]]) -> list[Candidate]:
    """Price every (width, weights, folding) candidate with the resource model and the core's timing."""
    from tangentcore.hw.network import core_cycles
    from tangentcore.manifest import random_manifest

    n_in, n_classes = dataset_shape
    data = config.data
    encoding, input_bits = (data.encoding, data.input_bits) if data.encoding == "uint" else ("binary", 1)
    clock = model.clock_mhz
    candidates = []
    rng = np.random.default_rng(0)
    for width in options.widths:
        sizes = [n_in, *([width] * len(config.model.hidden)), n_classes]
        shapes = list(zip(sizes[:-1], sizes[1:]))
        for weights in options.weights:
            manifest = random_manifest(rng, sizes, weight_kind=weights.kind, weight_bits=weights.bits,
                                       encoding=encoding, bits=input_bits, name="candidate")
            mean, std = accuracy[(width, weights.label)]
            seen = set()
            for layer_cycles in options.layer_cycles:
                foldings = balanced_foldings(shapes, layer_cycles)
                key = tuple((f.pe, f.simd) for f in foldings)
                if key in seen:  # two cycle targets gave the same folding
                    continue
                seen.add(key)
                estimate = model.estimate(manifest, foldings)
                _, cycles = core_cycles(manifest, foldings)
                candidate = Candidate(
                    width=width, weights=weights, layer_cycles=layer_cycles, foldings=[list(p) for p in key],
                    accuracy=mean, accuracy_std=std, logic=float(estimate.logic), bram=float(estimate.bram),
                    fmax_mhz=float(estimate.fmax_mhz), cycles_per_inference=cycles,
                    inferences_per_second=clock * 1e6 / cycles,
                    fits=(estimate.logic <= options.logic_budget * model.device["logic"]
                          and estimate.bram <= model.device["bram"] and estimate.dsp <= model.device["dsp"]),
                    meets_timing=estimate.fmax_mhz >= clock * (1 + options.fmax_margin), dsp=float(estimate.dsp))
                candidate.meets_accuracy = mean - options.z * std >= options.target_accuracy
                candidate.meets_throughput = candidate.inferences_per_second >= options.throughput
                candidates.append(candidate)
    return candidates


def size(config: Config, options: SizingOptions, runner, out_dir: str | Path, *, verify: bool = False,
         simulators: tuple[str, ...] = ("verilator",)) -> SizingReport:
    """Run the sizing sweep for ``config`` and write ``report.json``, ``report.md`` and the plots into ``out_dir``."""
    from tangentcore.fileio import write_atomic
    from tangentcore.hw.resources import load_model
    from tangentcore.pipeline import load_config_dataset

    _check_config(config)
    out_dir = Path(out_dir)
    model = load_model(options.board)
    dataset = load_config_dataset(config)
    document = config_document(config)

    log.info("kernel ceiling and architecture ranking")
    ranking = rank_architectures(config, runner, vary=options.rank)
    ceiling = next(entry["accuracy"] for entry in ranking if entry["label"] == "configured")
    if not options.rank:
        ranking = []

    epochs = options.calibration_epochs or config.train.epochs
    runs = [{"config": document, "width": width, "weight_kind": weights.kind, "weight_bits": weights.bits,
             "seed": config.train.seed + offset, "epochs": epochs}
            for weights in options.weights for width in options.calibration
            for offset in range(options.calibration_seeds)]
    results = runner.map(train_task, runs, description="calibration runs")
    calibration = [{"width": run["width"], "weights": WeightChoice(run["weight_kind"], run["weight_bits"]).label,
                    "seed": run["seed"], "test_accuracy": result["test_accuracy"], "seconds": result["seconds"]}
                   for run, result in zip(runs, results)]

    laws, accuracy = {}, {}
    for weights in options.weights:
        points = [c for c in calibration if c["weights"] == weights.label]
        law = fit_width_law([p["width"] for p in points], [p["test_accuracy"] for p in points], ceiling,
                            len(dataset.x_test))
        laws[weights.label] = dataclasses.asdict(law)
        for width in options.widths:
            accuracy[(width, weights.label)] = law.predict(width)

    candidates = _price(config, (dataset.n_features, dataset.n_classes), options, model, accuracy)
    front = pareto_front(candidates)
    chosen = pick(candidates)
    report = SizingReport(config=document, options=_options_json(options), ceiling=ceiling, ranking=ranking,
                          calibration=calibration, laws=laws, candidates=candidates, front=front, chosen=chosen,
                          device=dict(model.device), clock_mhz=model.clock_mhz)

    if verify and chosen is None:
        log.warning("no candidate meets every target, so there is nothing to verify")
    elif verify:
        report.verified = [chosen, *_neighbours(front, chosen)]
        measured = runner.map(
            verify_task,
            [{"config": document, "design": {"id": c.id, "width": c.width, "weight_kind": c.weights.kind,
                                             "weight_bits": c.weights.bits, "foldings": c.foldings},
              "board": options.board, "simulators": list(simulators), "out_dir": str(out_dir / "designs")}
             for c in report.verified],
            description="verify designs", unkeyed=("out_dir",))
        for candidate, result in zip(report.verified, measured):
            candidate.measured = result

    report.tasks = {"computed": runner.computed, "cached": runner.cache_hits}
    from tangentcore.sizing_report import format_report, write_plots

    plots = write_plots(report, out_dir)
    write_atomic(out_dir / "report.json", json.dumps({**report.to_json(), "plots": [str(p) for p in plots]},
                                                     indent=2) + "\n")
    write_atomic(out_dir / "report.md", format_report(report, markdown=True))
    return report


def _options_json(options: SizingOptions) -> dict:
    document = dataclasses.asdict(options)
    document["weights"] = [w.label for w in options.weights]
    document["calibration_widths"] = list(options.calibration)
    return document
