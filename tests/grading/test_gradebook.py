"""Recording a batch's grades in the course's nbgrader gradebook, as formgrader and
``nbgrader export`` read them.

One tiny batch is graded by ``grade_submissions`` (module-scoped) in a copy of the tiny
course, whose gradebook did not exist, and recorded there by the engine; the other tests
start from a copy of that course and record :class:`Result` objects built here."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from tiny import CORRECT, TINY, read_rows, tiny_with

from ftcourse.errors import CourseError
from ftcourse.grading.batch import grade_submissions
from ftcourse.grading.course import find_assignments
from ftcourse.grading.gradebook import (
    answer_cells,
    gradebook_url,
    lowered_reasons,
    open_gradebook,
    record_grades,
)
from ftcourse.grading.options import GradingOptions
from ftcourse.grading.report import Result

LOWERED = ("test_add: 0 of 2 after the trusted check (the notebook's own tests gave 2): "
           "add(2, 3) returned 6; expected 5")


def from_row(row: dict[str, str], grade_ids: list[str]) -> Result:
    """The :class:`Result` a row of ``grades.csv`` was written from."""
    return Result(row["student"], row["assignment"], row["source"], row["status"],
                  row["reason"], {g: float(row[g]) for g in grade_ids if row.get(g)},
                  notes=row["notes"], trusted=row["trusted"] == "true")


@pytest.fixture(scope="module")
def recorded(tiny_course: Path, tmp_path_factory: pytest.TempPathFactory):
    """Grade alice (5), bob (untouched, 0), carol (only add, 2) and dave (not JSON), then
    record the results into a copy of the course."""
    folder = tmp_path_factory.mktemp("lms")
    nbformat.write(tiny_with(tiny_course, **CORRECT), folder / f"alice_{TINY}.ipynb")
    nbformat.write(tiny_with(tiny_course), folder / f"bob_{TINY}.ipynb")
    with zipfile.ZipFile(folder / "carol_attempt.zip", "w") as zipped:
        zipped.writestr(f"carol/{TINY}.ipynb",
                        nbformat.writes(tiny_with(tiny_course, add=CORRECT["add"])))
    (folder / f"dave_{TINY}.ipynb").write_text('{"cells": [', encoding="utf-8")
    output = tmp_path_factory.mktemp("graded")
    course = tmp_path_factory.mktemp("recorded") / "course"
    shutil.copytree(tiny_course, course)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the engine records, then prints the summary
        grade_submissions(folder, course, GradingOptions(output=output, workers=2,
                                                         cell_timeout=5))
    grade_ids = [p.grade_id for p in find_assignments(course)[TINY].parts]
    results = [from_row(row, grade_ids) for row in read_rows(output / "grades.csv")]
    return course, results, printed.getvalue()


def course_copy(recorded, tmp_path: Path) -> Path:
    course = tmp_path / "course"
    shutil.copytree(recorded[0], course)
    return course


def scores(course: Path) -> dict[str, dict[str, float]]:
    """Each student's score by test cell, as the gradebook holds them."""
    with open_gradebook(gradebook_url(course)) as gb:
        return {s.student.id: {g.name: g.score for nb in s.notebooks for g in nb.grades}
                for s in gb.assignment_submissions(TINY)}


def export(course: Path, tmp_path: Path) -> dict[str, dict[str, str]]:
    """The rows of ``nbgrader export``, run in the course, by student."""
    target = tmp_path / "export.csv"
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(target)],
                   cwd=course, check=True, capture_output=True, timeout=120)
    with open(target, encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_nbgrader_export_gives_each_recorded_grade(recorded, tmp_path: Path) -> None:
    course, results, summary = recorded
    statuses = {r.student: (r.status, r.total) for r in results}
    assert statuses == {"alice": ("graded", 5), "bob": ("graded", 0), "carol": ("graded", 2),
                        "dave": ("invalid", 0)}
    rows = export(course, tmp_path)
    assert sorted(rows) == ["alice", "bob", "carol"]  # dave's file was no grade
    assert {s: float(row["score"]) for s, row in rows.items()} == {
        "alice": 5.0, "bob": 0.0, "carol": 2.0}
    assert {row["max_score"] for row in rows.values()} == {"5.0"}
    assert scores(course)["carol"] == {"test_add": 2.0, "test_double": 0.0}
    with open_gradebook(gradebook_url(course)) as gb:
        assert not any(s.needs_manual_grade for s in gb.assignment_submissions(TINY))
    assert "Recorded 3 grade(s)" in summary and "1 submission(s) were not recorded" in summary
    assert "1 invalid" in summary and "grades.csv" in summary


def test_recording_leaves_the_release_as_it_is(recorded, tiny_course: Path) -> None:
    course = recorded[0]
    exercise = Path("exercises") / TINY / f"{TINY}.ipynb"
    assert (course / exercise).read_bytes() == (tiny_course / exercise).read_bytes()
    assert sorted(p.name for p in course.iterdir()) == ["autograded", "exercises",
                                                         "gradebook.db", "solutions"]


def test_a_lowered_part_scores_the_lower_with_its_reason_on_the_answer(
        recorded, tmp_path: Path) -> None:
    course = course_copy(recorded, tmp_path)
    lowered = Result("lee", TINY, f"lee_{TINY}.ipynb", "graded",
                     scores={"test_add": 0.0, "test_double": 3.0}, notes=LOWERED, trusted=True)
    record_grades(course, [lowered], find_assignments(course))
    assert scores(course)["lee"] == {"test_add": 0.0, "test_double": 3.0}
    with open_gradebook(gradebook_url(course)) as gb:
        assert gb.find_comment("add", TINY, TINY, "lee").auto_comment == LOWERED
        assert gb.find_comment("double", TINY, TINY, "lee").auto_comment is None
        assert not gb.find_submission(TINY, "lee").needs_manual_grade


def test_what_is_no_grade_is_not_recorded_and_keeps_an_earlier_grade(
        recorded, tmp_path: Path) -> None:
    course = course_copy(recorded, tmp_path)
    results = [Result("alice", TINY, f"alice_{TINY}.ipynb", "failed", "the kernel died",
                      {"test_add": 0.0, "test_double": 0.0}),
               Result("zed", TINY, f"zed_{TINY}.ipynb", "timeout", "too long",
                      {"test_add": 2.0}),
               Result("yan", "", "yan.zip", "unmatched", "no notebook of any assignment")]
    summary = record_grades(course, results, find_assignments(course))
    assert scores(course) == scores(recorded[0])
    assert scores(course)["alice"] == {"test_add": 2.0, "test_double": 3.0}
    with open_gradebook(gradebook_url(course)) as gb:
        assert sorted(s.id for s in gb.students) == ["alice", "bob", "carol"]
    assert "Recorded 0 grade(s)" in summary
    assert "3 submission(s) were not recorded (1 failed, 1 timeout, 1 unmatched)" in summary
    assert "grades.csv" in summary


def test_recording_again_replaces_the_scores(recorded, tmp_path: Path) -> None:
    course = course_copy(recorded, tmp_path)
    assignments = find_assignments(course)
    lowered = Result("alice", TINY, f"alice_{TINY}.ipynb", "graded",
                     scores={"test_add": 0.0, "test_double": 3.0}, notes=LOWERED)
    record_grades(course, [lowered], assignments)
    assert scores(course)["alice"] == {"test_add": 0.0, "test_double": 3.0}
    again = Result("alice", TINY, f"alice_{TINY}.ipynb", "incomplete", "missing",
                   scores={"test_add": 2.0})
    summary = record_grades(course, [again], assignments)
    assert scores(course)["alice"] == {"test_add": 2.0, "test_double": 0.0}
    with open_gradebook(gradebook_url(course)) as gb:
        assert [s.student.id for s in gb.assignment_submissions(TINY)].count("alice") == 1
        assert gb.find_comment("add", TINY, TINY, "alice").auto_comment is None
    assert "1 of them incomplete" in summary


def test_a_damaged_gradebook_is_a_course_error(recorded, tmp_path: Path) -> None:
    course = course_copy(recorded, tmp_path)
    (course / "gradebook.db").write_bytes(b"not a database at all " * 200)
    result = Result("alice", TINY, f"alice_{TINY}.ipynb", "graded", scores={"test_add": 2.0})
    with pytest.raises(CourseError, match="gradebook") as raised:
        record_grades(course, [result], find_assignments(course))
    message = str(raised.value)
    assert str(course / "gradebook.db") in message and "move it aside" in message
    assert "Traceback" not in message and "sqlalche.me" not in message


def test_no_grade_to_record_makes_no_gradebook(tiny_course: Path, tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(tiny_course, course)
    failed = Result("alice", TINY, f"alice_{TINY}.ipynb", "failed", "the kernel died")
    summary = record_grades(course, [failed], find_assignments(course))
    assert not (course / "gradebook.db").exists()
    assert "Recorded 0 grade(s)" in summary and "1 failed" in summary


def test_a_configured_db_url_is_the_gradebook(tmp_path: Path) -> None:
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.db_url = 'sqlite:///grades/book.db'\n")
    assert gradebook_url(tmp_path) == f"sqlite:///{tmp_path / 'grades' / 'book.db'}"
    assert gradebook_url(tmp_path / "none") == f"sqlite:///{tmp_path / 'none' / 'gradebook.db'}"


def test_notes_are_split_by_part_and_tests_find_their_answer(tiny_course: Path) -> None:
    notes = f"{LOWERED}; test_double: 1 of 3 after the trusted check: x; y; other: z"
    found = lowered_reasons(notes, ["test_add", "test_double"])
    assert found == {"test_add": LOWERED,
                     "test_double": "test_double: 1 of 3 after the trusted check: x; y; other: z"}
    assert lowered_reasons("", ["test_add"]) == {}
    source = tiny_course / "solutions" / TINY / f"{TINY}.ipynb"
    assert answer_cells(source) == {"test_add": "add", "test_double": "double"}


def test_changed_cells_of_a_graded_assignment_are_a_course_error(recorded,
                                                                  tmp_path: Path) -> None:
    course = course_copy(recorded, tmp_path)
    source = course / "solutions" / TINY / f"{TINY}.ipynb"
    nb = nbformat.read(source, as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                not in ("double", "test_double")]
    nbformat.write(nb, source)
    result = Result("alice", TINY, f"alice_{TINY}.ipynb", "graded", scores={"test_add": 2.0})
    with pytest.raises(CourseError, match="move the gradebook aside") as raised:
        record_grades(course, [result], find_assignments(course))
    assert "Cannot add or remove cells" in str(raised.value)
    assert "Traceback" not in str(raised.value)
    assert scores(course)["alice"] == {"test_add": 2.0, "test_double": 3.0}


def test_formgrader_lists_the_autograded_notebooks(recorded, tmp_path: Path) -> None:
    """formgrader lists a notebook's submissions only where ``autograded/`` holds it."""
    from ftcourse.grading.course import nbgrader_api

    course = course_copy(recorded, tmp_path)
    assert sorted(p.name for p in (course / "autograded").iterdir()) == ["alice", "bob", "carol"]
    listed = nbgrader_api(course).get_notebook_submissions(TINY, TINY)
    assert {s["student"]: s["score"] for s in listed} == {"alice": 5.0, "bob": 0.0, "carol": 2.0}
