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
    error: str = ""  # the first error (with ``allow_errors``: the first that is no failed check)
    failed_checks: list[str] = dataclasses.field(default_factory=list)  # AssertionErrors


def cell_errors(notebook: nbformat.NotebookNode) -> tuple[str, list[str]]:
    """The first error that is not an ``AssertionError``, and each failed assertion."""
    first, checks = "", []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            text = f"cell {index}: {output.ename}: {output.evalue}"[:160]
            if output.ename == "AssertionError":
                checks.append(text)
            elif not first:
                first = text
    return first, checks


def run_notebook(path: Path, timeout: int, kernel: str = "python3",
                 allow_errors: bool = False) -> Run:
    """Execute ``path`` in a fresh kernel (working folder: the notebook's own).

    ``allow_errors`` runs every cell even after one fails, and reports each failed
    assertion apart from the first other error.
    """
    notebook = nbformat.read(path, as_version=4)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    error, checks = "", []
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name=kernel, allow_errors=allow_errors,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1][:120]
    if allow_errors:
        error, checks = cell_errors(notebook)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, after.ru_maxrss / 1024, error, checks)


def measure(path: Path, timeout: int, python: str = sys.executable, kernel: str = "python3",
            allow_errors: bool = False, env: dict[str, str] | None = None) -> Run:
    """``run_notebook`` in a new process (of ``python``), so that its peak memory is this
    notebook's alone."""
    flags = ["--kernel", kernel] + (["--allow-errors"] if allow_errors else [])
    output = subprocess.run([python, __file__, "--single", str(path), "--timeout", str(timeout),
                             *flags], capture_output=True, text=True, check=False,
                            env=env).stdout
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
    parser.add_argument("--kernel", default="python3", help=argparse.SUPPRESS)
    parser.add_argument("--allow-errors", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        run = run_notebook(args.single, args.timeout, args.kernel, args.allow_errors)
        print(json.dumps(dataclasses.asdict(run)))
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
