"""Run each lesson top to bottom in a fresh kernel and print its wall time, CPU time and memory.

The figures in each lesson's header come from this script:

    FTCOURSE_PROFILE=ci python benchmarks/time_lessons.py            # every lesson, ci profile
    FTCOURSE_PROFILE=ci python benchmarks/time_lessons.py lessons/05_*.ipynb --repeats 3

CPU seconds and peak memory are the kernel's own (``getrusage`` of the finished kernel, in a
process of its own per run), so other work on the machine changes the wall time but hardly
the CPU time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_mb: float
    error: str = ""


def run_notebook(path: Path, timeout: int) -> Run:
    """Execute ``path`` in a fresh kernel (working folder: the notebook's own)."""
    notebook = nbformat.read(path, as_version=4)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    error = ""
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1][:120]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, after.ru_maxrss / 1024, error)


def measure(path: Path, timeout: int) -> Run:
    """``run_notebook`` in a new process, so that its peak memory is this notebook's alone."""
    output = subprocess.run([sys.executable, __file__, "--single", str(path),
                             "--timeout", str(timeout)], capture_output=True, text=True,
                            check=False).stdout
    try:
        return Run(**json.loads(output.strip().splitlines()[-1]))
    except (IndexError, ValueError, TypeError):
        return Run(0.0, 0.0, 0.0, f"the runner failed: {output[-200:]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "lessons").glob("*.ipynb")))
    parser.add_argument("--repeats", type=int, default=1, help="runs per notebook (medians)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--single", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        print(json.dumps(dataclasses.asdict(run_notebook(args.single, args.timeout))))
        return 0
    profile = os.environ.get("FTCOURSE_PROFILE", "full")
    print(f"profile {profile}, {os.cpu_count()} cores; command: python "
          f"{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    print(f"{'notebook':<44}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}  result")
    failed = 0
    for path in args.notebooks:
        runs = [measure(path.resolve(), args.timeout) for _ in range(args.repeats)]
        errors = [run.error for run in runs if run.error]
        failed += bool(errors)
        print(f"{path.name:<44}{statistics.median(r.wall_s for r in runs):>8.0f}"
              f"{statistics.median(r.cpu_s for r in runs):>8.0f}"
              f"{max(r.peak_mb for r in runs):>9.0f}  {errors[0] if errors else 'finished'}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
