"""Smoke test of benchmarks/bench_frozen_base.py: it runs, measures, and prints every figure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType

import pytest
from benchmark_scripts import imported
from printed import ratio_within_rounding


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    yield from imported("bench_frozen_base")


def _seconds(output: str, label: str) -> float:
    match = re.search(rf"^{re.escape(label)}.*?(\d+\.\d+) s", output, re.MULTILINE)
    assert match, f"no timing line starting {label!r} in:\n{output}"
    return float(match.group(1))


def test_quick_run_prints_figures_and_verdicts(bench: ModuleType, capsys) -> None:
    """Check that --quick measures the three ways and prints each ratio with its verdict."""
    assert bench.main(["--quick"]) == 0
    output = capsys.readouterr().out
    naive = _seconds(output, "naive  model.fit")
    fast = _seconds(output, "fast   extract_features + lr_sweep")
    floor = _seconds(output, "floor  one forward pass")
    assert naive > 0 and fast > 0 and floor > 0
    assert _seconds(output, "       the same, a second model built alike") > 0
    for label in ("naive / fast", r"fast / floor \(warm\)", r"fast / floor \(cold\)",
                  r"fast / floor \(alike\)", r"extraction / floor \(first\)",
                  r"extraction / floor \(alike\)", "val accuracy, mean over the rates"):
        assert re.search(rf"^{label}.*(MET|MISSED)", output, re.MULTILINE), label
    # One repeat: the ratio of the printed medians is the printed ratio.
    ratio = float(re.search(r"^naive / fast\s+(\d+\.\d+)x", output, re.MULTILINE).group(1))
    assert ratio_within_rounding(ratio, naive, fast, ratio_step=0.1), (ratio, naive, fast)
    once = re.search(r"^Paid once per structure .*?pass (\d+\.\d+) s; .*?first call "
                     r"(\d+\.\d+) s, its second (\d+\.\d+) s", output, re.MULTILINE)
    assert once, output
    assert all(float(seconds) > 0 for seconds in once.groups())
    # The random base must give usable features, or the accuracy comparison means nothing.
    scales = re.search(r"Feature scale .*?: (\S+) with .*?, (\S+) after", output)
    assert float(scales.group(1)) < 1e-6, "the uncalibrated random base should be degenerate"
    assert float(scales.group(2)) > 1e-2, "calibrating BatchNorm should give usable features"


def test_bad_arguments_give_a_clear_error(bench: ModuleType, capsys) -> None:
    """Check that an impossible --samples is refused with a message and a nonzero status."""
    assert bench.main(["--samples", "5000"]) == 1
    assert "--samples must be between" in capsys.readouterr().err
