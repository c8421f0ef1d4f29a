"""The text report and the plots of ``tangentcore size``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["format_report", "write_plots"]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _table(rows: list[list[str]], header: list[str], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
                *("| " + " | ".join(row) + " |" for row in rows)]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]


def _design_row(c, report) -> list[str]:
    misses = []
    if not c.fits:
        misses.append("too big")
    if not c.meets_timing:
        misses.append("clock")
    if not c.meets_accuracy:
        misses.append("accuracy")
    if not c.meets_throughput:
        misses.append("throughput")
    return [c.id + (" (pick)" if report.chosen is c else ""),
            f"{_pct(c.accuracy)} ± {100 * c.accuracy_std:.1f}", f"{_pct(c.accuracy - report.options['z'] * c.accuracy_std)}",
            f"{c.logic:,.0f}", f"{c.bram:.0f}", f"{c.fmax_mhz:.1f}", f"{c.cycles_per_inference:,}",
            f"{c.inferences_per_second:,.0f}", ", ".join(misses) or "–"]


def _count(value) -> str:
    return "–" if value is None else f"{value:,}"


def _build_status(build: dict) -> str:
    if build.get("ok"):
        return "ok"
    if build.get("timing_met") is False:
        return "missed timing"
    return "failed: " + build.get("error", "?").split(";")[0]


def _verified_row(c, report) -> list[str]:
    measured = c.measured or {}
    build = measured.get("build", {})
    cosim = measured.get("cosim", {})
    mismatches = sum(run["mismatches"] for run in cosim.values())
    vectors = sum(run["vectors"] for run in cosim.values())
    if c is report.chosen:
        role = "pick"
    elif c.logic < report.chosen.logic:
        role = "cheaper"
    else:
        role = "dearer"
    return [f"{c.id} ({role})",
            f"{_pct(c.accuracy)} / {_pct(measured.get('accuracy'))}",
            f"{100 * (measured.get('accuracy', np.nan) - c.accuracy):+.1f}",
            f"{c.logic:,.0f} / {_count(build.get('logic'))}",
            f"{c.bram:.0f} / {_count(build.get('bram'))}",
            f"{c.fmax_mhz:.1f} / {build.get('fmax_mhz') or '–'}",
            f"{c.inferences_per_second:,.0f} / {build.get('inferences_per_second') or 0:,.0f}",
            f"{mismatches} of {vectors} vectors",
            _build_status(build)]


def format_report(report, *, markdown: bool = False) -> str:
    """Return the sizing report as plain text (the CLI) or Markdown (``report.md``)."""
    options = report.options
    section = "## " if markdown else ""
    lines = [("# " if markdown else "") + f"Sizing {report.config['name']} for {options['board']}", ""]

    target = f"target accuracy {_pct(options['target_accuracy'])} (lower bound mean − {options['z']:g}·std)"
    if options["throughput"]:
        target += f", at least {options['throughput']:,.0f} inferences/s"
    lines.append(f"{target}; device {report.device['logic']:,} logic cells (budget "
                 f"{100 * options['logic_budget']:.0f} %), {report.device['bram']} block RAMs, "
                 f"clock {report.clock_mhz:g} MHz (+{100 * options['fmax_margin']:.0f} % margin)")
    lines.append(f"infinite-width SG-NTK ceiling of the configured architecture: {_pct(report.ceiling)}")
    lines.append("")

    if report.ranking:
        lines.append(section + "Architecture ranking (kernel only, no training)")
        rows = [[str(i + 1), entry["label"], _pct(entry["accuracy"])] for i, entry in enumerate(report.ranking)]
        lines += _table(rows, ["rank", "change to the config", "predicted accuracy"], markdown)
        lines.append("")

    lines.append(section + "Width law a(w) = A − c/√w, fitted per weight precision")
    rows = []
    for label, law in report.laws.items():
        points = [c for c in report.calibration if c["weights"] == label]
        measured = ", ".join(f"w{p['width']}: {_pct(p['test_accuracy'])}" for p in points)
        rows.append([label, _pct(law["asymptote"]) + (" (ceiling)" if law["capped"] else ""),
                     f"{100 * law['slope']:.1f}", f"{100 * law['residual_std']:.1f} points", measured])
    lines += _table(rows, ["weights", "A", "c (points·√width)", "residual", "calibration runs"], markdown)
    lines.append("")

    lines.append(section + "Pareto front (fitting designs, accuracy against logic and throughput)")
    header = ["design", "accuracy", "lower bound", "logic", "BRAM", "Fmax MHz", "cycles", "inf/s", "misses"]
    lines += _table([_design_row(c, report) for c in report.front], header, markdown)
    lines.append("")

    if report.chosen is None:
        lines.append("No candidate meets every target: lower --target-accuracy or --throughput, or widen --widths.")
    else:
        c = report.chosen
        folds = ":".join(f"{pe},{simd}" for pe, simd in c.foldings)
        lines.append(f"Pick: {c.id}: hidden width {c.width}, {c.weights.label} weights, fold {folds}; predicted "
                     f"{_pct(c.accuracy)} ± {100 * c.accuracy_std:.1f}, {c.logic:,.0f} logic cells, "
                     f"{c.fmax_mhz:.1f} MHz, {c.inferences_per_second:,.0f} inferences/s")

    if report.verified:
        lines.append("")
        lines.append(section + "Verified: predicted beside measured")
        header = ["design", "accuracy", "error (points)", "logic", "BRAM", "Fmax MHz", "inf/s",
                  "co-simulation mismatches", "build"]
        lines += _table([_verified_row(c, report) for c in report.verified], header, markdown)

    lines.append("")
    lines.append(f"tasks: {report.tasks.get('computed', 0)} computed, {report.tasks.get('cached', 0)} from the cache")
    return "\n".join(lines) + "\n"


def _identity(axis, values: list[float]) -> None:
    """Draw the line measured = predicted across the range of ``values`` on equal axes."""
    if values:
        low, high = min(values), max(values)
        pad = 0.1 * (high - low or 1.0)
        axis.plot([low - pad, high + pad], [low - pad, high + pad], "k--", linewidth=1,
                  label="measured = predicted")
        axis.set_xlim(low - pad, high + pad)
        axis.set_ylim(low - pad, high + pad)
        axis.set_aspect("equal")


def _label_points(axis, names: list[str], xs: list[float], ys: list[float]) -> None:
    for name, x, y in zip(names, xs, ys):
        axis.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)


def write_plots(report, out_dir: Path) -> list[Path]:
    """Write the sizing plots as PNG files into ``out_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tangentcore.fileio import write_atomic

    out_dir = Path(out_dir)
    paths = []

    def save(figure, name: str) -> None:
        import io

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        plt.close(figure)
        paths.append(write_atomic(out_dir / name, buffer.getvalue()))

    target = report.options["target_accuracy"]
    widths = sorted({c.width for c in report.candidates})
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for index, (label, law) in enumerate(report.laws.items()):
        colour = f"C{index}"
        predicted = {c.width: (c.accuracy, c.accuracy_std) for c in report.candidates if c.weights.label == label}
        mean = np.array([predicted[w][0] for w in widths])
        std = np.array([predicted[w][1] for w in widths])
        axis.plot(widths, 100 * mean, "-o", color=colour, label=f"{label} predicted")
        axis.fill_between(widths, 100 * (mean - std), 100 * (mean + std), color=colour, alpha=0.2)
        points = [c for c in report.calibration if c["weights"] == label]
        axis.plot([p["width"] for p in points], [100 * p["test_accuracy"] for p in points], "x", color=colour,
                  label=f"{label} calibration runs")
        verified = [c for c in report.verified if c.weights.label == label and c.measured]
        if verified:
            axis.plot([c.width for c in verified], [100 * c.measured["accuracy"] for c in verified], "*",
                      color=colour, markersize=12, markeredgecolor="black", label=f"{label} verified")
    axis.axhline(100 * report.ceiling, color="black", linestyle="--", linewidth=1, label="SG-NTK ceiling")
    axis.axhline(100 * target, color="red", linestyle=":", linewidth=1, label="target")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("hidden width")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"{report.config['name']}: predicted accuracy against width")
    axis.legend(fontsize=7, ncol=2)
    save(figure, "accuracy_vs_width.png")

    fitting = [c for c in report.candidates if c.fits and c.meets_timing]
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    if fitting:
        scatter = axis.scatter([c.logic for c in fitting], [100 * c.accuracy for c in fitting],
                               c=np.log10([c.inferences_per_second for c in fitting]), cmap="viridis", s=25)
        figure.colorbar(scatter, ax=axis, label="log10 inferences/s")
        axis.scatter([c.logic for c in report.front], [100 * c.accuracy for c in report.front], s=60,
                     facecolors="none", edgecolors="black", linewidths=0.8, label="Pareto front")
    if report.chosen is not None:
        axis.plot([report.chosen.logic], [100 * report.chosen.accuracy], "o", markersize=14, fillstyle="none",
                  color="red", label=f"pick {report.chosen.id}")
    axis.axhline(100 * target, color="red", linestyle=":", linewidth=1)
    axis.set_xlabel("predicted logic cells")
    axis.set_ylabel("predicted test accuracy (%)")
    axis.set_title(f"designs that fit {report.options['board']} (means; the pick is the cheapest\n"
                   f"whose mean − {report.options['z']:g}·std meets the target)", fontsize=9)
    axis.legend(fontsize=7)
    save(figure, "pareto.png")

    measured = [c for c in report.verified if c.measured]
    if measured:
        figure, axes = plt.subplots(1, 3, figsize=(12, 4), layout="constrained")
        predicted = [100 * c.accuracy for c in measured]
        actual = [100 * c.measured["accuracy"] for c in measured]
        axes[0].errorbar(predicted, actual, xerr=[100 * c.accuracy_std for c in measured], fmt="o")
        _identity(axes[0], predicted + actual + [100 * target])
        axes[0].axhline(100 * target, color="red", linestyle=":", linewidth=1, label="target")
        _label_points(axes[0], [c.id for c in measured], predicted, actual)
        axes[0].set_xlabel("predicted accuracy (%), ±1 std")
        axes[0].set_ylabel("measured accuracy (%)")
        axes[0].legend(fontsize=7)
        for axis, key, label in ((axes[1], "logic", "logic cells"), (axes[2], "fmax_mhz", "Fmax (MHz)")):
            built = [c for c in measured if c.measured["build"].get(key)]
            predicted = [c.logic if key == "logic" else c.fmax_mhz for c in built]
            actual = [c.measured["build"][key] for c in built]
            axis.plot(predicted, actual, "o")
            _identity(axis, predicted + actual + ([report.clock_mhz] if key == "fmax_mhz" else []))
            _label_points(axis, [c.id for c in built], predicted, actual)
            axis.set_xlabel(f"predicted {label}")
            axis.set_ylabel(f"measured {label}")
        axes[2].axhline(report.clock_mhz, color="red", linestyle=":", linewidth=1, label="board clock")
        axes[2].legend(fontsize=7)
        figure.suptitle("verified designs: predicted against measured")
        save(figure, "predicted_vs_measured.png")
    return paths
