"""Record a batch's final scores in the course's nbgrader gradebook (``gradebook.db``), so that
formgrader shows them and ``nbgrader export`` writes the CSV an LMS imports.

Each test cell's score is its final score, as the cell's ``auto_score``: the automatic grade,
lowered where the trusted check lowered it, which a grader's ``manual_score`` in formgrader
still overrides. nbgrader keeps comments on answer cells only, not on test cells, so the reason
a trusted check lowered a part is the ``auto_comment`` of the answer cell that its test checks
(the nearest one above the test), where formgrader shows it under the answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ftcourse.errors import CourseError
from ftcourse.grading.course import (
    SOURCE_DIRECTORY,
    Assignment,
    course_config,
    nbgrader_api,
)
from ftcourse.grading.report import Result

# The statuses that are grades: ``incomplete`` scored 0 for each missing notebook.
RECORDED = ("graded", "incomplete")


def record_grades(course_dir: Path, results: Sequence[Result],
                  assignments: Mapping[str, Assignment]) -> str:
    """Write each recorded result's final per-part scores into the course's gradebook; return
    a one-paragraph summary for the instructor.

    Only ``graded`` and ``incomplete`` results are grades: any other result leaves whatever
    the gradebook holds for that student untouched. An assignment the gradebook does not know,
    or knows with other test cells, is generated into it first (the students' ``exercises/``
    are left as they are). Raises ``CourseError`` when the gradebook cannot be written.
    """
    course_dir = Path(course_dir).resolve()
    url = gradebook_url(course_dir)
    course_id = course_config(course_dir).CourseDirectory.get("course_id", "")
    recorded = [r for r in results if r.status in RECORDED and r.assignment in assignments]
    skipped = [r for r in results if r.status not in RECORDED or r.assignment not in assignments]
    names = sorted({r.assignment for r in recorded})
    for name in names:
        with open_gradebook(url, course_id) as gb:
            known = _knows(gb, assignments[name])
        if not known:
            generate_into(course_dir, name, url)
    if not names:  # nothing to record: no gradebook made
        return _summary(recorded, skipped, url, course_dir)
    with open_gradebook(url, course_id) as gb:
        for name in names:
            answers = {nb: answer_cells(course_dir / SOURCE_DIRECTORY / name / f"{nb}.ipynb")
                       for nb in assignments[name].notebooks}
            for result in (r for r in recorded if r.assignment == name):
                _record(gb, result, answers)
    return _summary(recorded, skipped, url, course_dir)


def install_autograded(staged: Path, course_dir: Path, results: Sequence[Result]) -> None:
    """Move each recorded result's autograded notebooks from ``staged/<student>/<assignment>``
    into ``course_dir/autograded/`` (nbgrader's layout), replacing an earlier grading's."""
    for result in (r for r in results if r.status in RECORDED):
        source = staged / result.student / result.assignment
        if not source.is_dir():
            continue
        target = course_dir / "autograded" / result.student / result.assignment
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)


def gradebook_url(course_dir: Path) -> str:
    """The gradebook nbgrader's commands use in ``course_dir``: the course's
    ``CourseDirectory.db_url`` (a relative SQLite path taken from ``course_dir``), else
    ``sqlite:///<course_dir>/gradebook.db``."""
    from sqlalchemy.engine import make_url

    configured = course_config(course_dir).CourseDirectory.get("db_url")
    url = make_url(configured or f"sqlite:///{Path(course_dir) / 'gradebook.db'}")
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:" \
            and not os.path.isabs(url.database):
        url = url.set(database=str(Path(course_dir) / url.database))
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def open_gradebook(url: str, course_id: str = "") -> Iterator[Any]:
    """nbgrader's ``Gradebook`` at ``url``, closed on exit; a database error (a locked or
    damaged file) is a ``CourseError`` that names the file and the fix."""
    from nbgrader.api import Gradebook, InvalidEntry
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with Gradebook(url, course_id) as gb:
            yield gb
    except (SQLAlchemyError, InvalidEntry) as error:
        detail = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise CourseError(
            f"Could not write the gradebook {_where(url)} ({detail}). If formgrader or another "
            "nbgrader command is using it, stop it and grade again; if the file is damaged, "
            "move it aside and grade again (a new gradebook is made, with this batch's grades)."
        ) from None


def generate_into(course_dir: Path, assignment: str, url: str) -> None:
    """Run nbgrader's ``generate_assignment`` for ``assignment`` with the gradebook at ``url``,
    in a scratch copy of its sources, so that the course's release is left as it is."""
    with tempfile.TemporaryDirectory(prefix="ftcourse-gradebook-") as scratch:
        root = Path(scratch)
        shutil.copytree(course_dir / SOURCE_DIRECTORY / assignment,
                        root / SOURCE_DIRECTORY / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        api = nbgrader_api(root, config_dir=course_dir)
        api.coursedir.db_url = url
        result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        found = re.findall(r"^\s*(?:\w+\.)*(\w+(?:Error|Exception): .+)$",
                           f"{result.get('log', '')}\n{result.get('error', '')}", flags=re.M)
        why = next((f" ({f})" for f in found if not f.startswith("NbGraderException")), "")
        raise CourseError(
            f"nbgrader could not add {assignment} to the gradebook {_where(url)}{why}. If "
            "the gradebook holds grades of an earlier version with other cells, nbgrader "
            "cannot change it: move the gradebook aside, or remove those submissions in "
            "formgrader, and grade again.")


def answer_cells(notebook: Path) -> dict[str, str]:
    """For each test cell of a source notebook (by grade_id), the answer cell it checks: the
    nearest one above it (else below); a graded answer cell is its own."""
    cells = [c.get("metadata", {}).get("nbgrader", {})
             for c in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]]
    answers: dict[str, str | None] = {}
    last = None
    for meta in cells:
        if meta.get("solution"):
            last = meta["grade_id"]
        if meta.get("grade"):
            answers[meta["grade_id"]] = last
    below = [m["grade_id"] for m in cells if m.get("solution")]
    return {test: answer or (below[0] if below else test) for test, answer in answers.items()}


def lowered_reasons(notes: str, grade_ids: Iterable[str]) -> dict[str, str]:
    """The notes of a result (``"; "``-joined ``"<grade_id>: ..."``) by the grade_id each
    starts with; notes about no known part are left out."""
    ids = sorted(grade_ids, key=len, reverse=True)
    if not notes or not ids:
        return {}
    starts = list(re.finditer(rf"(?:^|; )({'|'.join(map(re.escape, ids))}): ", notes))
    ends = [m.start() for m in starts[1:]] + [len(notes)]
    return {m.group(1): notes[m.start(1):end] for m, end in zip(starts, ends, strict=True)}


def _knows(gb: Any, assignment: Assignment) -> bool:
    """Whether the gradebook has ``assignment`` with its notebooks and test cells' points."""
    from nbgrader.api import MissingEntry

    try:
        found = gb.find_assignment(assignment.name)
    except MissingEntry:
        return False
    cells = {(c.name, c.max_score) for nb in found.notebooks for c in nb.grade_cells}
    return ({nb.name for nb in found.notebooks} == set(assignment.notebooks)
            and cells == {(p.grade_id, p.points) for p in assignment.parts})


def _record(gb: Any, result: Result, answers: Mapping[str, Mapping[str, str]]) -> None:
    """Fill (or refill) ``result``'s submission: each test cell's final score, and on each
    answer cell the reasons its tests were lowered (or none)."""
    from nbgrader.api import GradeCell, MissingEntry, SolutionCell

    gb.update_or_create_student(result.student)
    try:
        submission = gb.find_submission(result.assignment, result.student)
    except MissingEntry:
        with gb.db.no_autoflush:  # else SQLAlchemy 2 warns while nbgrader builds it
            submission = gb.add_submission(result.assignment, result.student)
    reasons = lowered_reasons(result.notes, result.scores)
    for notebook in submission.notebooks:
        mine = answers.get(notebook.name, {})
        comments: dict[str, list[str]] = {}
        for grade_id, reason in reasons.items():
            if grade_id in mine:
                comments.setdefault(mine[grade_id], []).append(reason)
        by_hand = {c.name for c in notebook.notebook.solution_cells}
        for grade in notebook.grades:
            if not isinstance(grade.cell, GradeCell):
                continue  # a task cell is graded by a person
            grade.auto_score = result.scores.get(grade.cell.name, 0.0)
            # As nbgrader's autograder: a written answer, or a grader's earlier score, is
            # left for a person to review.
            grade.needs_manual_grade = (grade.cell.name in by_hand
                                        or grade.cell.cell_type == "markdown"
                                        or grade.manual_score is not None)
        for comment in notebook.comments:
            if isinstance(comment.cell, SolutionCell):
                found = comments.get(comment.cell.name)
                comment.auto_comment = "\n".join(found) if found else None
    gb.db.commit()


def _summary(recorded: Sequence[Result], skipped: Sequence[Result], url: str,
             course_dir: Path) -> str:
    per = Counter(r.assignment for r in recorded)
    counts = ", ".join(f"{name}: {n}" for name, n in sorted(per.items()))
    incomplete = sum(r.status == "incomplete" for r in recorded)
    text = (f"Recorded {len(recorded)} grade(s) in the gradebook {_where(url)}"
            f"{f' ({counts})' if counts else ''}")
    if incomplete:
        text += f", {incomplete} of them incomplete (each missing notebook scored 0)"
    text += (f"; formgrader shows them, and `nbgrader export` run in {course_dir} writes "
             "them as a CSV for the LMS.")
    if skipped:
        statuses = ", ".join(f"{n} {status or '?'}"
                             for status, n in sorted(Counter(r.status for r in skipped).items()))
        text += (f" {len(skipped)} submission(s) were not recorded ({statuses}): they are not "
                 "grades, and are listed with their reasons in ftcourse's grades.csv; a grade "
                 "recorded for them before is left as it was (without one, `nbgrader export` "
                 "gives 0 or leaves the student out).")
    return text


def _where(url: str) -> str:
    """The gradebook's file (an SQLite URL) or its URL, without a password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)
