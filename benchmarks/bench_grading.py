"""How long `ftcourse grade` takes: one exercise notebook, then N copies with 1 and 2 workers.

Run from the course root, in the `ci` profile:

    FTCOURSE_PROFILE=ci python benchmarks/bench_grading.py --copies 4 --repeats 3

It grades the untouched exercise notebook of an assignment (an empty submission runs every cell
and every test, like a real one), and prints the median seconds over the repeats, the seconds per
notebook and the speed-up from the second worker. ``--quick`` grades a two-cell assignment built
on the spot, once: a smoke test of this script, not a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from ftcourse.grading import GradingOptions, grade_submissions

QUICK = "quick"


def quick_course(root: Path) -> Path:
    """A course with one tiny assignment and its exercise (a solution cell and a test)."""
    solution = new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION",
                             metadata={"nbgrader": {"grade": False, "solution": True,
                                                    "locked": False, "grade_id": "answer",
                                                    "schema_version": 3}})
    test = new_code_cell("assert answer == 42",
                         metadata={"nbgrader": {"grade": True, "solution": False, "locked": True,
                                                "points": 1, "grade_id": "test_answer",
                                                "schema_version": 3}})
    notebook = new_notebook(cells=[solution, test], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    for folder in ("solutions", "exercises"):
        (root / folder / QUICK).mkdir(parents=True)
        nbformat.write(notebook, root / folder / QUICK / f"{QUICK}.ipynb")
    exercise = root / "exercises" / QUICK / f"{QUICK}.ipynb"
    nb = nbformat.read(exercise, as_version=4)
    nb.cells[0].source = "answer = None"
    nbformat.write(nb, exercise)
    return root


def find_exercise(course_dir: Path, assignment: str | None) -> Path:
    """The exercise notebook to grade: the assignment's, or the first one in exercises/."""
    pattern = f"{assignment}/*.ipynb" if assignment else "*/*.ipynb"
    found = sorted((course_dir / "exercises").glob(pattern))
    if not found:
        sys.exit(f"No exercise notebook matches exercises/{pattern} in {course_dir}: run "
                 "`ftcourse release` first, or pass --quick.")
    return found[0]


def time_batch(exercise: Path, course_dir: Path, copies: int, workers: int,
               scheduler: str | None = None) -> float:
    """Seconds to grade ``copies`` copies of the exercise (a flat folder, one per student),
    in the local pool of ``workers`` or on the Dask cluster at ``scheduler``."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "submissions"
        folder.mkdir()
        for index in range(copies):
            (folder / f"student{index:02d}_{exercise.name}").write_bytes(exercise.read_bytes())
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            options = GradingOptions(output=Path(scratch) / "out", workers=workers,
                                     gradebook=False, scheduler=scheduler)
            code = grade_submissions(folder, course_dir, options,
                                     assignment=exercise.parent.name)
        seconds = time.perf_counter() - started
    if code != 0:
        sys.exit(f"Grading failed (exit code {code}); run `ftcourse grade` on the notebook to "
                 "see why.")
    return seconds


def median_seconds(exercise: Path, course_dir: Path, copies: int, workers: int,
                   repeats: int) -> float:
    return statistics.median(time_batch(exercise, course_dir, copies, workers)
                             for _ in range(repeats))


def run(exercise: Path, course_dir: Path, copies: int, repeats: int) -> dict[str, float]:
    """Measure and print; return the medians (seconds) by case."""
    print(f"Grading {exercise.relative_to(course_dir)}: median of {repeats} repeat(s)")
    single = median_seconds(exercise, course_dir, 1, 1, repeats)
    print(f"  1 notebook,  1 worker : {single:6.1f} s")
    batch = {}
    for workers in (1, 2):
        batch[workers] = median_seconds(exercise, course_dir, copies, workers, repeats)
        print(f"  {copies} notebooks, {workers} worker(s): {batch[workers]:6.1f} s "
              f"({batch[workers] / copies:5.1f} s per notebook)")
    speedup = batch[1] / batch[2]
    print(f"  speed-up with 2 workers: {speedup:.2f}x")
    return {"single": single, "workers_1": batch[1], "workers_2": batch[2], "speedup": speedup}


def add_batch_arguments(parser: argparse.ArgumentParser, copies: int, quick_help: str) -> None:
    """The options every grading benchmark takes: which exercise, how many copies, repeats."""
    parser.add_argument("--course-dir", type=Path, default=Path("."))
    parser.add_argument("--assignment", help="default: the first one in exercises/")
    parser.add_argument("--copies", "-n", type=int, default=copies,
                        help="notebooks in the batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=quick_help)


@contextlib.contextmanager
def exercise_to_grade(args: argparse.Namespace) -> Iterator[tuple[Path, Path]]:
    """The exercise and its course: the tiny built-in assignment in a temporary folder
    (``--quick``), else ``--assignment``'s in ``--course-dir``."""
    if args.quick:
        with tempfile.TemporaryDirectory() as scratch:
            course = quick_course(Path(scratch))
            yield find_exercise(course, QUICK), course
        return
    course = args.course_dir.resolve()
    yield find_exercise(course, args.assignment), course


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_batch_arguments(parser, copies=4,
                        quick_help="a tiny built-in assignment, 2 copies, once (a smoke test)")
    args = parser.parse_args(argv)
    with exercise_to_grade(args) as (exercise, course):
        if args.quick:
            run(exercise, course, copies=2, repeats=1)
        else:
            run(exercise, course, args.copies, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
