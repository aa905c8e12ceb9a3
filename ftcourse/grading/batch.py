"""A batch: ``ftcourse grade``'s whole run, from a folder of submissions to the report.

:func:`grade_submissions` finds the submissions (:mod:`~ftcourse.grading.submissions`), turns
each into an :class:`~ftcourse.grading.engine.Task`, hands the tasks to a pool (the engine's
local processes, or a Dask cluster: :mod:`~ftcourse.grading.cluster`), writes the report
(:mod:`~ftcourse.grading.report`) and records the grades in the course's gradebook
(:mod:`~ftcourse.grading.gradebook`).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ftcourse.errors import CourseError
from ftcourse.grading import cluster, engine, gradebook, report
from ftcourse.grading.course import SOURCE_DIRECTORY, Assignment, find_assignments
from ftcourse.grading.options import GradingOptions
from ftcourse.grading.report import Result
from ftcourse.grading.submissions import collect_submissions

# The course's own nbgrader folders and gradebook: other students' work and grades.
COURSE_PRIVATE = ("gradebook.db", "autograded", "submitted", "feedback")


def grade_submissions(submissions: Path, course_dir: Path,
                      options: GradingOptions | None = None,
                      assignment: str | None = None) -> int:
    """Grade a folder of submissions (of ``assignment`` only, if given); return 0 if every one
    was graded, else 1. Raises ``CourseError`` on bad input, before grading anything.

    Writes ``grades.csv``, ``feedback/<student>/<notebook>.html``, ``scores_histogram.png``
    and, for failures, ``logs/`` into ``options.output``; then, with ``options.gradebook``,
    the final scores into the course's ``gradebook.db`` (:mod:`~ftcourse.grading.gradebook`;
    a gradebook that cannot be written is reported and makes the status 1).
    """
    options = options or GradingOptions()
    course_dir, output = Path(course_dir).resolve(), Path(options.output)
    assignments = find_assignments(course_dir)
    with (pool(options) as grade_tasks,
          tempfile.TemporaryDirectory(prefix="ftcourse-grade-") as scratch,
          tempfile.TemporaryDirectory(prefix="ftcourse-kernels-") as kernels):
        work = Path(scratch)
        found = collect_submissions(Path(submissions), assignments, work / "unpacked", assignment)
        todo = [s for s in found if not s.status]
        results = [Result(s.student, s.assignment, s.source, s.status, s.reason)
                   for s in found if s.status]
        templates = {name: engine.cached_template(course_dir, name)
                     for name in sorted({s.assignment for s in todo})}
        output.mkdir(parents=True, exist_ok=True)
        guard = None
        if options.sandboxed:
            hide = hidden_paths(course_dir, Path(submissions), [work, output, *{
                t.parent for t in templates.values()}], options.keras_cache)
            guard = engine.Guard(Path(kernels), hide)
        threads = engine.threads_per_worker(options.workers)
        tasks = [engine.Task(s, templates[s.assignment], work / "runs", options,
                             assignments[s.assignment].notebooks,
                             {p.grade_id: p.points for p in assignments[s.assignment].parts},
                             guard, threads) for s in todo]
        try:
            results += grade_tasks(tasks)
        except BaseException:  # interrupted: the staged notebooks hold the hidden tests
            shutil.rmtree(output / engine.STAGED_AUTOGRADED, ignore_errors=True)
            raise
    results.sort(key=lambda r: (r.assignment, r.student, r.source))
    report.write_report(results, assignments, output)
    recorded = not options.gradebook or record(course_dir, results, assignments, output)
    return 0 if recorded and all(r.status == "graded" for r in results) else 1


def hidden_paths(course_dir: Path, submissions: Path, scratch: list[Path],
                 keras_cache: Path) -> tuple[Path, ...]:
    """What no kernel may see: the grader's ``scratch`` folders, the course's sources, gradebook
    and nbgrader folders, and the folder of submissions (every student's work), unless what
    the kernel runs on lies inside it (this Python, the ``ftcourse`` package, the Keras
    cache)."""
    hide = [p.resolve() for p in scratch] + [course_dir / SOURCE_DIRECTORY]
    hide += [p for p in (course_dir / name for name in COURSE_PRIVATE) if p.exists()]
    submissions = submissions.resolve()
    needed = [Path(sys.prefix), Path(__file__).parents[1], keras_cache]
    if not any(p.resolve().is_relative_to(submissions) for p in needed):
        hide.append(submissions)
    return tuple(hide)


def record(course_dir: Path, results: list[Result], assignments: dict[str, Assignment],
           output: Path) -> bool:
    """Record the grades in the course's gradebook and move the autograded notebooks of the
    recorded ones into its ``autograded/`` (formgrader shows a notebook only with it); say
    why not and return ``False`` when the gradebook cannot be written."""
    staged = output / engine.STAGED_AUTOGRADED
    try:
        print(gradebook.record_grades(course_dir, results, assignments))
        gradebook.install_autograded(staged, course_dir, results)
        return True
    except CourseError as error:  # grades.csv is written: nothing is lost
        print(f"The gradebook was not updated: {error}", file=sys.stderr)
        return False
    finally:
        shutil.rmtree(staged, ignore_errors=True)


@contextlib.contextmanager
def pool(options: GradingOptions) -> Iterator[Callable[[list[engine.Task]], list[Result]]]:
    """What grades a list of tasks: the engine's local pool of ``options.workers`` processes,
    or the Dask cluster at ``options.scheduler`` (Dask is imported only then), connected
    before anything is graded."""
    if options.scheduler is None:
        yield functools.partial(engine.grade_all, workers=options.workers)
        return
    with cluster.connect(options.scheduler) as client:
        yield functools.partial(cluster.grade_on_cluster, client,
                                output=Path(options.output))
