"""Smoke test: the grading benchmark runs end to end in its --quick mode."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_grading.py"


def test_bench_grading_quick() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"1 notebook,  1 worker : +\d+\.\d s", done.stdout)
    assert re.search(r"speed-up with 2 workers: \d+\.\d\dx", done.stdout)
