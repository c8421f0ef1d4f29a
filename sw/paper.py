"""Reproduce three experiments on the surrogate-gradient NTK, on CPU.

The experiments follow Eilers, Memmesheimer and Goedeke, "A generalized
neural tangent kernel for surrogate gradient learning" (NeurIPS 2024,
arXiv:2405.15539); the architectures, targets and sizes are this module's own
choices, stated in each function.

a. ``naive``: the NTK of ``erf(m·)`` as ``m`` grows. Off-diagonal entries
   converge to the sign limit; diagonal entries grow like ``m`` per hidden
   layer. The SG-NTK with a fixed surrogate stays finite.
b. ``empirical``: empirical against analytic NTK and SG-NTK of ``erf(m·)``
   networks of growing width, at initialization and after training.
c. ``sgl``: ensembles of sign networks trained with surrogate gradient
   learning against the SG-NTK Gaussian process and NNGP regression.

Each experiment writes PNG figures and a JSON file of the plotted numbers into
the output folder. ``tangentcore paper --quick`` runs a small version in
seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tangentcore.errors import TangentcoreError

from .empirical import NTKMLP, empirical_kernels, train_ensemble
from .kernels import MLPKernel, erf_activation, sign_activation
from .predict import gp_from_kernels, nngp_regression
from .surrogates import get_surrogate

__all__ = ["EXPERIMENTS", "add_parser", "run_paper"]

logger = logging.getLogger(__name__)

EXPERIMENTS = ("naive", "empirical", "sgl")

SIGMA_W = 1.0
SIGMA_B = 0.1

# Regression task of experiment c (and the training data of experiment b):
# inputs (cos α, sin α) on the unit circle, target y(α) below.
TRAIN_ANGLES = np.array([0.4, 1.3, 2.0, 3.3, 4.2, 5.5])


def target(angles: np.ndarray) -> np.ndarray:
    """Return the regression target ``sin 2α + ½ cos 3α`` on the unit circle."""
    return np.sin(2.0 * angles) + 0.5 * np.cos(3.0 * angles)


def circle(angles: np.ndarray) -> np.ndarray:
    """Return the inputs ``(cos α, sin α)``, one row per angle."""
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


# -- output ------------------------------------------------------------------


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename, so no half-written file remains."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temporary, 0o666 & ~umask)
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _save_json(path: Path, data: dict) -> None:
    def write(name):
        with open(name, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1, default=_to_builtin)
            stream.write("\n")

    _write_atomic(path, write)


def _save_figure(path: Path, figure) -> None:
    import matplotlib.pyplot as plt

    _write_atomic(path, lambda name: figure.savefig(name, format="png", dpi=120))
    plt.close(figure)


def _to_builtin(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- a. naive NTK --------------------------------------------------------------


def run_naive(out: Path, quick: bool) -> dict:
    """Experiment a: the naive NTK of erf(m·) diverges on the diagonal, the SG-NTK does not.

    One and two hidden layers, σ_w = 1, σ_b = 0.1, the gaussian surrogate of
    scale 1 for the SG-NTK, inputs on the unit circle, reference x₀ = (1, 0).
    """
    scales = np.logspace(0, 3, 7 if quick else 25)
    profile_scales = [1.0, 3.0, 10.0, 100.0, 1000.0]
    angles = np.linspace(0.0, 2.0 * np.pi, 73 if quick else 361)
    off_angle = 0.25 * np.pi
    reference = circle(np.array([0.0]))
    surrogate = get_surrogate("gaussian", 1.0)

    results = {"scales": scales, "off_diagonal_angle": off_angle, "depths": {}}
    for depth in (1, 2):
        rows = {"ntk_diagonal": [], "ntk_off_diagonal": [], "sgntk_diagonal": [], "sgntk_off_diagonal": []}
        for m in scales:
            kernel = MLPKernel(depth, erf_activation(m), surrogate, SIGMA_W, SIGMA_B)
            pair = circle(np.array([0.0, off_angle]))
            ntk = kernel.ntk(reference, pair)[0]
            sgntk = kernel.sgntk(reference, pair)[0]
            rows["ntk_diagonal"].append(ntk[0])
            rows["ntk_off_diagonal"].append(ntk[1])
            rows["sgntk_diagonal"].append(sgntk[0])
            rows["sgntk_off_diagonal"].append(sgntk[1])
        rows = {name: np.array(values) for name, values in rows.items()}

        sign = MLPKernel(depth, sign_activation(), surrogate, SIGMA_W, SIGMA_B)
        pair = circle(np.array([0.0, off_angle]))
        rows["sign_ntk_off_diagonal"] = sign.ntk(reference, pair[1:])[0, 0]
        rows["sign_sgntk_diagonal"], rows["sign_sgntk_off_diagonal"] = sign.sgntk(reference, pair)[0]
        # Slope of log Θ(x₀, x₀) against log m over the last decade of m.
        last_decade = scales >= scales[-1] / 10
        rows["diagonal_log_slope"] = np.polyfit(
            np.log(scales[last_decade]), np.log(rows["ntk_diagonal"][last_decade]), 1
        )[0]
        rows["diagonal_growth_ratio"] = rows["ntk_diagonal"][-1] / rows["ntk_diagonal"][0]
        rows["off_diagonal_relative_gap_to_sign"] = abs(
            rows["ntk_off_diagonal"][-1] / rows["sign_ntk_off_diagonal"] - 1
        )
        rows["sgntk_diagonal_relative_gap_to_sign"] = abs(
            rows["sgntk_diagonal"][-1] / rows["sign_sgntk_diagonal"] - 1
        )
        results["depths"][str(depth)] = rows

    kernel_profiles = {}
    for m in profile_scales:
        kernel = MLPKernel(1, erf_activation(m), surrogate, SIGMA_W, SIGMA_B)
        kernel_profiles[f"{m:g}"] = {
            "ntk": kernel.ntk(reference, circle(angles))[0],
            "sgntk": kernel.sgntk(reference, circle(angles))[0],
        }
    results["profiles"] = {"angles": angles, "scales": profile_scales, "kernels": kernel_profiles}

    _plot_naive(out, results)
    return results


def _plot_naive(out: Path, results: dict) -> None:
    plt = _pyplot()
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.3))
    profiles = results["profiles"]
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, len(profiles["scales"])))
    for color, m in zip(colors, profiles["scales"]):
        kernels = profiles["kernels"][f"{m:g}"]
        left.plot(profiles["angles"], kernels["ntk"], color=color,
                  label=f"m = {m:g}, Θ(x₀, x₀) = {kernels['ntk'][0]:.3g}")
        middle.plot(profiles["angles"], kernels["sgntk"], color=color, label=f"m = {m:g}")
    # A clipped linear axis: the peak at x′ = x₀ runs off it for large m.
    left.set_ylim(-8.0, 8.0)
    left.set(xlabel="angle α of x′", ylabel="Θ(x₀, x′)",
             title="naive NTK of erf(m·), 1 hidden layer: diverges at x′ = x₀")
    middle.set(xlabel="angle α of x′", ylabel="I(x₀, x′)", title="SG-NTK, gaussian surrogate m̃ = 1")
    left.legend(fontsize=7)
    middle.legend(fontsize=7)

    scales = results["scales"]
    for depth, style in (("1", "-"), ("2", "--")):
        rows = results["depths"][depth]
        right.loglog(scales, rows["ntk_diagonal"], "C0" + style, label=f"NTK diagonal, L = {depth}")
        right.loglog(scales, rows["ntk_off_diagonal"], "C1" + style, label=f"NTK off-diagonal, L = {depth}")
        right.loglog(scales, rows["sgntk_diagonal"], "C2" + style, label=f"SG-NTK diagonal, L = {depth}")
        right.axhline(rows["sign_ntk_off_diagonal"], color="C1", linestyle=":", linewidth=1)
        right.axhline(rows["sign_sgntk_diagonal"], color="C2", linestyle=":", linewidth=1)
    right.set(
        xlabel="m", ylabel="kernel entry",
        title=f"x₀ = (1, 0), off-diagonal x′ at α = {results['off_diagonal_angle']:.2f}; dotted: sign",
    )
    right.legend(fontsize=7)
    figure.tight_layout()
    _save_figure(out / "naive_ntk.png", figure)


# -- b. empirical vs analytic ----------------------------------------------------


def run_empirical(out: Path, quick: bool, seed: int) -> dict:
    """Experiment b: empirical kernels of finite erf(m·) networks approach the analytic ones.

    Two hidden layers of equal width, σ_w = 1, σ_b = 0.1, float64. Kernels on
    the six training inputs of the circle task. After initialization each
    network is trained twice with full-batch gradient descent: once with true
    gradients, compared with the NTK, and once with surrogate gradients
    (gaussian surrogate of scale 1), compared with the SG-NTK. The step size is
    1/λ_max of the analytic kernel. Training runs until the slowest mode of the
    analytic dynamics has decayed by e⁻⁸, or for at most ``max_steps`` steps.
    The error is ‖K_empirical − K‖_F / ‖K‖_F.
    """
    scales = [2.0] if quick else [2.0, 5.0, 20.0]
    widths = [10, 200] if quick else [10, 100, 500, 1000]
    networks = 3 if quick else 10
    max_steps = 30 if quick else 300
    surrogate = get_surrogate("gaussian", 1.0)
    x = torch.from_numpy(circle(TRAIN_ANGLES))
    y = torch.from_numpy(target(TRAIN_ANGLES))

    results = {"scales": scales, "widths": widths, "networks": networks, "steps": {}, "errors": {}}
    progress = tqdm(total=len(scales) * len(widths), desc="empirical kernels", unit="config")
    for m in scales:
        kernel = MLPKernel(2, erf_activation(m), surrogate, SIGMA_W, SIGMA_B)
        analytic = {"ntk": kernel.ntk(x.numpy()), "sgntk": kernel.sgntk(x.numpy())}
        # One step size per kernel: 1/λ_max keeps discrete training stable.
        learning_rates, steps = {}, {}
        for kind, matrix in analytic.items():
            eigenvalues = np.linalg.eigvals(matrix)
            learning_rates[kind] = 1.0 / np.max(np.abs(eigenvalues))
            steps[kind] = int(min(max_steps, math.ceil(8.0 / (learning_rates[kind] * np.min(eigenvalues.real)))))
        results["steps"][f"{m:g}"] = steps
        per_width = {}
        for width in widths:
            generator = torch.Generator().manual_seed(seed + 1000 * width + int(10 * m))
            models = [
                NTKMLP(2, [width, width], activation="erf", scale=m, surrogate=surrogate,
                       sigma_w=SIGMA_W, sigma_b=SIGMA_B, generator=generator)
                for _ in range(networks)
            ]
            gd = train_ensemble(models, x, y, learning_rate=learning_rates["ntk"], steps=steps["ntk"],
                                surrogate_backward=False)
            sgl = train_ensemble(models, x, y, learning_rate=learning_rates["sgntk"], steps=steps["sgntk"],
                                 surrogate_backward=True)
            errors = {"ntk_init": [], "sgntk_init": [], "ntk_trained": [], "sgntk_trained": []}
            for initial, trained_gd, trained_sgl in zip(models, gd, sgl):
                at_init = empirical_kernels(initial, x)
                errors["ntk_init"].append(_relative_error(at_init.ntk, analytic["ntk"]))
                errors["sgntk_init"].append(_relative_error(at_init.sgntk, analytic["sgntk"]))
                errors["ntk_trained"].append(_relative_error(empirical_kernels(trained_gd, x).ntk, analytic["ntk"]))
                errors["sgntk_trained"].append(
                    _relative_error(empirical_kernels(trained_sgl, x).sgntk, analytic["sgntk"])
                )
            per_width[str(width)] = {name: np.array(values) for name, values in errors.items()}
            progress.update()
        results["errors"][f"{m:g}"] = per_width
    progress.close()

    # Mean error ratio between the narrowest and the widest network.
    results["error_ratio_narrow_to_wide"] = {
        f"{m:g}": {
            name: float(np.mean(results["errors"][f"{m:g}"][str(widths[0])][name])
                        / np.mean(results["errors"][f"{m:g}"][str(widths[-1])][name]))
            for name in ("ntk_init", "sgntk_init", "ntk_trained", "sgntk_trained")
        }
        for m in scales
    }
    _plot_empirical(out, results)
    return results


def _relative_error(empirical: torch.Tensor, analytic: np.ndarray) -> float:
    return float(np.linalg.norm(empirical.numpy() - analytic) / np.linalg.norm(analytic))


def _plot_empirical(out: Path, results: dict) -> None:
    plt = _pyplot()
    scales, widths = results["scales"], np.array(results["widths"])
    figure, axes = plt.subplots(2, len(scales), figsize=(4.6 * len(scales), 7.5), squeeze=False)
    for column, m in enumerate(scales):
        per_width = results["errors"][f"{m:g}"]
        for row, kind in enumerate(("ntk", "sgntk")):
            axis = axes[row, column]
            for phase, marker in (("init", "o-"), ("trained", "s--")):
                values = np.array([per_width[str(w)][f"{kind}_{phase}"] for w in widths])
                label = "at initialization" if phase == "init" else f"after {results['steps'][f'{m:g}'][kind]} steps"
                axis.errorbar(widths, values.mean(axis=1), yerr=values.std(axis=1), fmt=marker, capsize=3,
                              label=label)
            anchor = np.array([per_width[str(w)][f"{kind}_init"] for w in widths]).mean(axis=1)[0]
            axis.loglog(widths, anchor * np.sqrt(widths[0] / widths), "k:", label="∝ 1/√width")
            name = "NTK (gradient descent)" if kind == "ntk" else "SG-NTK (surrogate gradients)"
            axis.set(xscale="log", yscale="log", xlabel="hidden width",
                     ylabel="‖K_emp − K‖_F / ‖K‖_F", title=f"{name}, erf({m:g}·)")
            axis.legend(fontsize=7)
    figure.suptitle(f"{results['networks']} networks per point (mean ± std), 2 hidden layers")
    figure.tight_layout()
    _save_figure(out / "empirical_vs_analytic.png", figure)


# -- c. SGL ensembles vs SG-NTK GP ---------------------------------------------------


def run_sgl(out: Path, quick: bool, networks: int, seed: int) -> dict:
    """Experiment c: sign networks trained with surrogate gradients against the SG-NTK GP.

    Two hidden layers of sign units, σ_w = 1, σ_b = 0.1, gaussian surrogate of
    scale 1; full-batch gradient descent on the six training points of the
    circle task. The GP is evaluated after the same number of discrete steps
    and at t = ∞; NNGP regression is the Bayesian posterior with Σ alone.
    """
    widths = [50] if quick else [500, 100, 20]
    surrogate = get_surrogate("gaussian", 1.0)
    kernel = MLPKernel(2, sign_activation(), surrogate, SIGMA_W, SIGMA_B)
    test_angles = np.linspace(0.0, 2.0 * np.pi, 61 if quick else 241)
    x_train, x_test = circle(TRAIN_ANGLES), circle(test_angles)
    y_train = target(TRAIN_ANGLES)

    train = kernel.kernels(x_train)
    test_train = kernel.kernels(x_test, x_train)
    nngp_test_test = kernel.nngp(x_test)
    eigenvalues = np.linalg.eigvals(train.tangent)
    learning_rate = 1.0 / np.max(np.abs(eigenvalues))
    # Enough steps for the slowest mode to decay by e^{-8}, capped for runtime.
    steps = int(min(4000, math.ceil(8.0 / (learning_rate * np.min(eigenvalues.real)))))
    blocks = (test_train.tangent, train.tangent, nngp_test_test, test_train.nngp, train.nngp, y_train)
    gp_steps = gp_from_kernels(*blocks, learning_rate=learning_rate, steps=steps)
    gp_final = gp_from_kernels(*blocks)
    nngp = nngp_regression(kernel, x_train, y_train, x_test)

    results = {
        "train_angles": TRAIN_ANGLES, "train_targets": y_train, "test_angles": test_angles,
        "learning_rate": learning_rate, "steps": steps, "networks": networks,
        "sgntk_gp": {"mean": gp_steps.mean, "std": gp_steps.std},
        "sgntk_gp_infinite_time": {"mean": gp_final.mean, "std": gp_final.std},
        "nngp_regression": {"mean": nngp.mean, "std": nngp.std},
        "widths": {},
    }
    x_train_t, x_test_t = torch.from_numpy(x_train), torch.from_numpy(x_test)
    for width in widths:
        generator = torch.Generator().manual_seed(seed + width)
        models = [
            NTKMLP(2, [width, width], activation="sign", surrogate=surrogate,
                   sigma_w=SIGMA_W, sigma_b=SIGMA_B, generator=generator)
            for _ in range(networks)
        ]
        with tqdm(total=steps, desc=f"SGL, width {width}, {networks} networks", unit="step") as progress:
            trained = train_ensemble(models, x_train_t, torch.from_numpy(y_train), learning_rate=learning_rate,
                                     steps=steps, callback=lambda _: progress.update())
        with torch.no_grad():
            outputs = np.stack([model(x_test_t)[:, 0].numpy() for model in trained])
            train_outputs = np.stack([model(x_train_t)[:, 0].numpy() for model in trained])
        mean, std = outputs.mean(axis=0), outputs.std(axis=0, ddof=1)
        results["widths"][str(width)] = {
            "ensemble_mean": mean,
            "ensemble_std": std,
            "examples": outputs[:5],
            "train_rmse": float(np.sqrt(np.mean((train_outputs - y_train) ** 2))),
            "mean_rmse_to_sgntk_gp": _rms(mean - gp_steps.mean),
            "mean_rmse_to_nngp": _rms(mean - nngp.mean),
            "std_ratio_to_sgntk_gp": float(np.mean(std) / np.mean(gp_steps.std)),
            # Share of test inputs where the ensemble mean is inside the
            # GP mean ± 2 standard errors of an ensemble mean of this size.
            "mean_within_2_standard_errors": float(
                np.mean(np.abs(mean - gp_steps.mean) < 2.0 * gp_steps.std / math.sqrt(networks))
            ),
        }
    _plot_sgl(out, results)
    return results


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2)))


def _plot_sgl(out: Path, results: dict) -> None:
    plt = _pyplot()
    widths = list(results["widths"])
    angles = results["test_angles"]
    gp, nngp = results["sgntk_gp"], results["nngp_regression"]
    figure, axes = plt.subplots(1, len(widths), figsize=(5.2 * len(widths), 4.4), squeeze=False, sharey=True)
    for axis, width in zip(axes[0], widths):
        ensemble = results["widths"][width]
        for example in ensemble["examples"]:
            axis.plot(angles, example, color="0.75", linewidth=0.6)
        axis.fill_between(angles, ensemble["ensemble_mean"] - 2 * ensemble["ensemble_std"],
                          ensemble["ensemble_mean"] + 2 * ensemble["ensemble_std"], color="C0", alpha=0.2,
                          label="networks: mean ± 2 std")
        axis.plot(angles, ensemble["ensemble_mean"], "C0", linewidth=2)
        axis.plot(angles, gp["mean"], "C3--", label="SG-NTK GP: mean ± 2σ")
        axis.plot(angles, gp["mean"] - 2 * gp["std"], "C3:", linewidth=1)
        axis.plot(angles, gp["mean"] + 2 * gp["std"], "C3:", linewidth=1)
        axis.plot(angles, nngp["mean"], "C2-.", label="NNGP regression mean")
        axis.plot(angles, target(angles), "k", linewidth=0.8, alpha=0.5, label="target")
        axis.plot(results["train_angles"], results["train_targets"], "ko", label="training points")
        axis.set(xlabel="angle α of the input (cos α, sin α)", ylabel="network output",
                 title=f"sign, width {width}, {results['networks']} networks")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    figure.suptitle(f"surrogate gradient learning, {results['steps']} steps of η = {results['learning_rate']:.3g}")
    figure.tight_layout()
    _save_figure(out / "sgl_vs_sgntk_gp.png", figure)


# -- command line ----------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``paper`` subcommand to an ``argparse`` subparsers object and return its parser."""
    parser = subparsers.add_parser(
        "paper",
        help="reproduce three SG-NTK experiments (naive NTK, empirical kernels, SGL ensembles)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--out", type=Path, default=Path("runs/paper"),
                        help="output folder for PNG figures and JSON numbers (default: runs/paper)")
    parser.add_argument("--quick", action="store_true", help="run a small version in seconds (for tests)")
    parser.add_argument("--networks", type=int, default=None,
                        help="networks per width in the SGL ensembles (default 100, 500 with --full, 20 with --quick)")
    parser.add_argument("--full", action="store_true", help="use 500 networks per width in the SGL ensembles")
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS),
                        help=f"comma-separated subset of {', '.join(EXPERIMENTS)} (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all network initializations (default 0)")
    parser.set_defaults(handler=run_paper)
    return parser


def run_paper(args: argparse.Namespace) -> dict:
    """Run the selected experiments, write their figures and JSON into ``args.out`` and return a summary."""
    selected = [name.strip() for name in args.experiments.split(",") if name.strip()]
    unknown = [name for name in selected if name not in EXPERIMENTS]
    if unknown or not selected:
        raise TangentcoreError(
            f"unknown experiment(s) {unknown or selected!r}; choose from {', '.join(EXPERIMENTS)}"
        )
    if args.networks is not None and args.networks < 2:
        raise TangentcoreError(f"--networks must be at least 2 to estimate a spread, not {args.networks}")
    if args.networks is not None:
        networks = args.networks
    elif args.quick:
        networks = 20
    else:
        networks = 500 if args.full else 100
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TangentcoreError(f"cannot create output folder {str(out)!r}: {error}; choose another --out") from error

    torch.manual_seed(args.seed)
    summary = {
        "quick": args.quick,
        "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "torch_threads": torch.get_num_threads()},
        "seconds": {},
    }
    started = time.perf_counter()
    for name in selected:
        logger.info("experiment %s: started", name)
        begin = time.perf_counter()
        if name == "naive":
            results = run_naive(out, args.quick)
        elif name == "empirical":
            results = run_empirical(out, args.quick, args.seed)
        else:
            results = run_sgl(out, args.quick, networks, args.seed)
        elapsed = time.perf_counter() - begin
        summary["seconds"][name] = elapsed
        results["seconds"] = elapsed
        _save_json(out / f"{name}.json", results)
        logger.info("experiment %s: finished in %.1f s, wrote %s", name, elapsed, out / f"{name}.json")
    summary["seconds"]["total"] = time.perf_counter() - started
    _save_json(out / "summary.json", summary)
    logger.info("paper experiments finished in %.1f s; outputs in %s", summary["seconds"]["total"], out)
    return summary
