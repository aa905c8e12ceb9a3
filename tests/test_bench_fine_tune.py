"""Smoke test of benchmarks/bench_fine_tune.py: it runs, measures, and prints every figure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType

import pytest
from benchmark_scripts import imported
from printed import ratio_within_rounding


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    yield from imported("bench_fine_tune")


def test_quick_run_prints_figures_and_verdicts(bench: ModuleType, capsys) -> None:
    """Check that --quick times both ways, and that they end with the same weights."""
    assert bench.main(["--quick"]) == 0
    output = capsys.readouterr().out
    naive = float(re.search(r"^naive  model.fit.*?(\d+\.\d+) s", output, re.M).group(1))
    fast = float(re.search(r"^fast   on cached.*?(\d+\.\d+) s", output, re.M).group(1))
    ratio = float(re.search(r"^naive / fast\s+(\d+\.\d+)x.*(MET|MISSED)", output, re.M).group(1))
    assert naive > 0 and fast > 0
    assert ratio_within_rounding(ratio, naive, fast), (ratio, naive, fast)
    share = float(re.search(r"top 20 layers = (\d+\.\d)% of the base", output).group(1))
    assert 19.0 < share < 20.0  # MobileNetV2's top 20 layers by MAC count, at any input size
    same = re.search(r"largest difference (\S+) \(phase 2 moved them by up to (\S+)\)", output)
    assert float(same.group(1)) < float(same.group(2)) / 100


def test_bad_arguments_give_a_clear_error(bench: ModuleType, capsys) -> None:
    assert bench.main(["--archs", "alexnet"]) == 1
    assert "--archs must name some of" in capsys.readouterr().err
