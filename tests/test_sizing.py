"""Sizing: weight choices, balanced foldings, the width law, the Pareto front and the pick."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.sizing import (
    Candidate,
    SizingOptions,
    WeightChoice,
    balanced_foldings,
    fit_width_law,
    kernel_inputs,
    pareto_front,
    parse_weight_choices,
    parse_widths,
    pick,
)


def test_weight_choices_parse_and_label():
    choices = parse_weight_choices("binary, ternary,int4,int8")
    assert choices == [WeightChoice("binary", 1), WeightChoice("ternary", 2), WeightChoice("int", 4),
                       WeightChoice("int", 8)]
    assert [c.label for c in choices] == ["binary", "ternary", "int4", "int8"]


# a typo, a width out of range, a repeat
@pytest.mark.parametrize("text, message", [("binray", "binray"), ("int9", "int9"), ("int1", "int1"),
                                           ("binary,binary", "twice")])
def test_bad_weight_choices_name_the_value(text, message):
    with pytest.raises(TangentcoreError, match=message):
        parse_weight_choices(text)


def test_widths_parse_sorted_and_reject_bad_values():
    assert parse_widths("64,16,32,16") == [16, 32, 64]
    for text in ("16,x", "1,4", ""):
        with pytest.raises(TangentcoreError, match="--widths"):
            parse_widths(text)


# layer shapes (n_in, n_out), including a prime fan-out
@pytest.mark.parametrize("shapes", [[(64, 64), (64, 10)], [(784, 96), (96, 10)], [(60, 7), (7, 3)]])
# cycles-per-layer targets from fully parallel to deeply folded
@pytest.mark.parametrize("target", [1, 16, 64, 1024])
def test_balanced_foldings_use_fewest_lanes(shapes, target):
    for (n_in, n_out), folding in zip(shapes, balanced_foldings(shapes, target)):
        assert n_out % folding.pe == 0
        assert n_in % folding.simd == 0
        assert (n_out // folding.pe) * (n_in // folding.simd) <= target
        # No other divisor pair reaches the target with fewer lanes.
        fewest = min(pe * simd for pe, simd in itertools.product(range(1, n_out + 1), range(1, n_in + 1))
                     if n_out % pe == 0 and n_in % simd == 0 and (n_out // pe) * (n_in // simd) <= target)
        assert folding.pe * folding.simd == fewest


def test_width_law_recovers_exact_data():
    widths = [16, 16, 32, 32, 64, 64]
    accuracies = [0.95 - 0.4 / math.sqrt(w) for w in widths]
    law = fit_width_law(widths, accuracies, ceiling=0.99, test_images=360)
    assert law.asymptote == pytest.approx(0.95)
    assert law.slope == pytest.approx(0.4)
    assert not law.capped
    mean, std = law.predict(256)
    assert mean == pytest.approx(0.95 - 0.4 / 16)
    # Exact data leaves only the binomial floor of a 360-image measurement.
    assert law.residual_std == pytest.approx(math.sqrt(np.mean(accuracies) * (1 - np.mean(accuracies)) / 360))
    assert std > law.residual_std  # extrapolation adds the fit's own uncertainty


def test_width_law_is_capped_by_the_kernel_ceiling():
    widths = [16, 32, 64]
    accuracies = [0.99 - 0.5 / math.sqrt(w) for w in widths]
    law = fit_width_law(widths, accuracies, ceiling=0.97, test_images=1000)
    assert law.capped and law.asymptote == 0.97
    assert law.predict(10**6)[0] <= 0.97


def test_width_law_without_width_gain_predicts_the_mean():
    law = fit_width_law([16, 32, 64], [0.96, 0.95, 0.94], ceiling=0.99, test_images=360)
    assert law.slope == 0
    assert law.predict(128)[0] == pytest.approx(0.95)


def test_width_law_needs_two_widths():
    with pytest.raises(TangentcoreError, match="two or more widths"):
        fit_width_law([32, 32], [0.9, 0.91], ceiling=0.99, test_images=360)


def _candidate(name, accuracy, logic, rate, *, fits=True, timing=True, meets=True):
    c = Candidate(width=int(logic), weights=WeightChoice("binary", 1), layer_cycles=1, foldings=[[1, 1]],
                  accuracy=accuracy, accuracy_std=0.01, logic=logic, bram=0, fmax_mhz=30, cycles_per_inference=10,
                  inferences_per_second=rate, fits=fits, meets_timing=timing, meets_accuracy=meets)
    c.name = name
    return c


def test_pareto_front_drops_dominated_and_misfitting_designs():
    a = _candidate("a", 0.90, 100, 1e5)
    b = _candidate("b", 0.95, 200, 1e5)
    dominated = _candidate("dominated", 0.94, 250, 1e5)  # b is better in every way
    fast = _candidate("fast", 0.94, 300, 1e6)  # less accurate than b but faster, so it stays
    too_big = _candidate("too big", 0.99, 50, 1e7, fits=False)
    front = pareto_front([a, b, dominated, fast, too_big])
    assert [c.name for c in front] == ["a", "b", "fast"]


def test_pick_is_the_cheapest_feasible_design():
    cheap_but_inaccurate = _candidate("cheap", 0.90, 100, 1e5, meets=False)
    good = _candidate("good", 0.95, 200, 1e5)
    dearer = _candidate("dearer", 0.97, 300, 1e5)
    assert pick([cheap_but_inaccurate, dearer, good]).name == "good"
    assert pick([cheap_but_inaccurate]) is None


def test_options_reject_bad_targets():
    for value in (0.0, 1.0, 95.0, -0.5):
        with pytest.raises(TangentcoreError, match="target accuracy"):
            SizingOptions(target_accuracy=value, board="icebreaker")
    with pytest.raises(TangentcoreError, match="throughput"):
        SizingOptions(target_accuracy=0.9, board="icebreaker", throughput=-1)
    assert SizingOptions(target_accuracy=0.9, board="icebreaker", widths=(8, 4, 16, 32)).calibration == (4, 8, 16)


def test_kernel_inputs_map_bits_to_signs():
    bits = np.array([[0, 1, 1]], dtype=np.uint8)
    assert kernel_inputs(bits, "binary").tolist() == [[-1.0, 1.0, 1.0]]
    assert kernel_inputs(bits * 7, "uint").tolist() == [[0.0, 7.0, 7.0]]


def _small_config(tmp_path):
    from tangentcore.config import load_config

    path = tmp_path / "small.toml"
    path.write_text('name = "small"\n[model]\nhidden = [16]\n[train]\nepochs = 5\n')
    return load_config(path)


def _check_report(report, out_dir):
    import json

    document = json.loads((out_dir / "report.json").read_text())
    assert document["pick"] == (report.chosen.id if report.chosen else None)
    assert set(document["pareto_front"]) == {c.id for c in report.front}
    for name in ("report.md", "accuracy_vs_width.png", "pareto.png"):
        assert (out_dir / name).stat().st_size > 0
    # No design on the front is beaten in accuracy, logic and throughput at once by a fitting design.
    fitting = [c for c in report.candidates if c.fits and c.meets_timing]
    for c in report.front:
        beaten = [o for o in fitting if o.accuracy > c.accuracy and o.logic < c.logic
                  and o.inferences_per_second > c.inferences_per_second]
        assert beaten == []
    return document


def test_size_picks_cheapest_feasible(tmp_path):
    from tangentcore.distributed import TaskRunner
    from tangentcore.sizing import size

    config = _small_config(tmp_path)
    options = SizingOptions(target_accuracy=0.5, board="icebreaker", widths=(8, 16, 32),
                            weights=(WeightChoice("binary", 1), WeightChoice("int", 4)), layer_cycles=(64, 1024),
                            calibration_seeds=1, rank=False)
    with TaskRunner(workers=2, cache_dir=tmp_path / "cache", progress=False) as runner:
        report = size(config, options, runner, tmp_path / "out")
        # two weight precisions × three calibration widths, plus the kernel ceiling
        assert runner.computed == 7
    assert 0.5 < report.ceiling <= 1
    assert {(c.width, c.weights.label) for c in report.candidates} == {(w, p) for w in (8, 16, 32)
                                                                       for p in ("binary", "int4")}
    chosen = report.chosen
    assert chosen.feasible and chosen.accuracy - chosen.accuracy_std >= 0.5
    assert chosen.logic == min(c.logic for c in report.candidates if c.feasible)
    _check_report(report, tmp_path / "out")


@pytest.mark.icarus
def test_size_verify_trains_cosimulates_and_builds_the_pick(tmp_path):
    from tangentcore.distributed import TaskRunner
    from tangentcore.hw.build import toolchain_missing
    from tangentcore.sim.runner import simulator_missing
    from tangentcore.sizing import size

    for missing in (simulator_missing("icarus"), toolchain_missing("icebreaker")):
        if missing:
            pytest.skip(missing)
    config = _small_config(tmp_path)
    options = SizingOptions(target_accuracy=0.3, board="icebreaker", widths=(16,), calibration_widths=(8, 16),
                            weights=(WeightChoice("binary", 1),), layer_cycles=(1024,), calibration_seeds=1,
                            rank=False)
    with TaskRunner(workers=2, cache_dir=tmp_path / "cache", progress=False) as runner:
        report = size(config, options, runner, tmp_path / "out", verify=True, simulators=("icarus",))
    assert report.verified == [report.chosen]
    measured = report.chosen.measured
    assert measured["cosim"]["icarus"] == {"vectors": 360, "mismatches": 0}
    assert measured["build"]["ok"] and measured["build"]["logic"] > 0
    assert 0 < measured["accuracy"] <= 1
    assert measured["cycles_per_inference"] == report.chosen.cycles_per_inference
    document = _check_report(report, tmp_path / "out")
    assert document["verified"][0]["measured"]["build"]["timing_met"]
    assert (tmp_path / "out" / "predicted_vs_measured.png").stat().st_size > 0
