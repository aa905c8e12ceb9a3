"""Grading: finding submissions, autograding in isolation, feedback without hidden tests, reports.

Most cases run in ONE batch per assignment (module-scoped fixtures), because every graded
submission starts a kernel. The error cases use a tiny assignment built here, which grades in
seconds; the real assignments in ``solutions/`` are graded as solution, exercise and partial.
"""

from __future__ import annotations

import copy
import csv
import html
import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader_cells import nbgrader_meta, source_notebook

from ftcourse import autograde, grading
from ftcourse.errors import CourseError
from ftcourse.sandbox import isolation_available
from ftcourse.submissions import (
    collect_submissions,
    find_assignments,
    read_parts,
    split_flat_name,
    unpack_zip,
)

REPO = Path(__file__).resolve().parents[1]
TINY = "tiny"
SECRET = "SECRET_HIDDEN_CHECK"
SOLUTION_MARK = "SOLUTION_ONLY_LINE"


# --- A tiny nbgrader assignment ----------------------------------------------------------------


def tiny_source() -> nbformat.NotebookNode:
    """Two parts: ``add`` (a visible and a hidden check, 2 points) and ``double`` (hidden, 3)."""
    cells = [
        new_markdown_cell("# Tiny assignment"),
        new_code_cell("def add(a, b):\n    ### BEGIN SOLUTION\n"
                      f"    return a + b  # {SOLUTION_MARK}\n    ### END SOLUTION",
                      metadata=nbgrader_meta("add", solution=True)),
        new_code_cell('"""Check add."""\nassert add(1, 2) == 3, "add(1, 2) should be 3"\n'
                      f"### BEGIN HIDDEN TESTS\nassert add(-5, 5) == 0, '{SECRET} add'\n"
                      "### END HIDDEN TESTS", metadata=nbgrader_meta("test_add", points=2)),
        new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                      "    ### END SOLUTION", metadata=nbgrader_meta("double", solution=True)),
        new_code_cell(f'"""Check double."""\n### BEGIN HIDDEN TESTS\n'
                      f"assert double(4) == 8, '{SECRET} double'\n### END HIDDEN TESTS",
                      metadata=nbgrader_meta("test_double", points=3)),
    ]
    return source_notebook(cells)


@pytest.fixture(scope="module")
def tiny_course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course folder with ``solutions/tiny/tiny.ipynb`` and its nbgrader release."""
    course = tmp_path_factory.mktemp("course")
    (course / "solutions" / TINY).mkdir(parents=True)
    nbformat.write(tiny_source(), course / "solutions" / TINY / f"{TINY}.ipynb")
    template = grading.prepare_template(course, TINY, tmp_path_factory.mktemp("tpl") / TINY)
    (course / "exercises" / TINY).mkdir(parents=True)
    (course / "exercises" / TINY / f"{TINY}.ipynb").write_bytes(
        (template / "release" / TINY / f"{TINY}.ipynb").read_bytes())
    return course


def tiny_with(course: Path, **answers: str) -> nbformat.NotebookNode:
    """The tiny exercise with some solution cells (by grade_id) replaced by ``answers``."""
    nb = nbformat.read(course / "exercises" / TINY / f"{TINY}.ipynb", as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


CORRECT = {"add": "def add(a, b):\n    return a + b",
           "double": "def double(x):\n    return x + x"}


# --- Finding submissions (no grading) ----------------------------------------------------------


def test_split_flat_name_takes_the_longest_notebook_name() -> None:
    owner = {"ps02": "a", "ps02_frozen_mobilenetv2": "b"}
    assert split_flat_name("jo_ann_ps02_frozen_mobilenetv2", owner) == (
        "jo_ann", "ps02_frozen_mobilenetv2")
    assert split_flat_name("kim_ps02-2", owner) == ("kim", "ps02")
    assert split_flat_name("kim_report", owner) == ("kim_report", None)


def test_unpack_zip_refuses_traversal_and_keeps_only_notebooks(tmp_path: Path) -> None:
    archive = tmp_path / "sam.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../evil.ipynb", "{}")
        zipped.writestr("work/tiny.ipynb", "{}")
        zipped.writestr("__MACOSX/work/._tiny.ipynb", "junk")
        zipped.writestr("notes.txt", "hello")
    out = tmp_path / "out"
    found = unpack_zip(archive, out)
    assert [p.relative_to(out).as_posix() for p in found] == ["tiny.ipynb"]
    assert not list(tmp_path.parent.rglob("evil.ipynb"))


def test_unpack_zip_caps_the_unpacked_size(tmp_path: Path, monkeypatch) -> None:
    from ftcourse import submissions

    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", 100)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("tiny.ipynb", "x" * 10_000)
    with pytest.raises(CourseError, match="too large"):
        unpack_zip(archive, tmp_path / "out")


def test_collect_recognises_nbgrader_layout(tiny_course: Path, tmp_path: Path) -> None:
    nb_dir = tmp_path / "export" / "submitted" / "ana" / TINY
    nb_dir.mkdir(parents=True)
    nbformat.write(tiny_with(tiny_course), nb_dir / f"{TINY}.ipynb")
    (tmp_path / "export" / "submitted" / "ben" / TINY).mkdir(parents=True)
    assignments = find_assignments(tiny_course)
    for given in (tmp_path / "export", tmp_path / "export" / "submitted"):
        found = collect_submissions(given, assignments, tmp_path / "unpacked")
        assert [(s.student, s.assignment, s.status) for s in found] == [
            ("ana", TINY, ""), ("ben", TINY, "missing")]


def test_collect_rejects_bad_input(tiny_course: Path, tmp_path: Path) -> None:
    assignments = find_assignments(tiny_course)
    with pytest.raises(CourseError, match="does not exist"):
        collect_submissions(tmp_path / "nowhere", assignments, tmp_path / "u")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CourseError, match="No notebooks found"):
        collect_submissions(tmp_path / "empty", assignments, tmp_path / "u")
    with pytest.raises(CourseError, match="Unknown assignment 'ps99'"):
        collect_submissions(tmp_path / "empty", assignments, tmp_path / "u", only="ps99")
    with pytest.raises(CourseError, match="No solutions/ folder"):
        find_assignments(tmp_path)


def test_grade_submissions_rejects_bad_input_before_grading(tiny_course: Path,
                                                            tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="does not exist"):
        grading.grade_submissions(tmp_path / "nowhere", None, tiny_course, tmp_path / "out")
    with pytest.raises(CourseError, match="Unknown assignment"):
        grading.grade_submissions(tmp_path, "ps99", tiny_course, tmp_path / "out")


def test_hidden_regions_are_stripped_and_their_errors_neutralised() -> None:
    source = "assert f(1) == 2, 'visible'\n### BEGIN HIDDEN TESTS\nassert f(2) == 4, 'x'\n" \
             "### END HIDDEN TESTS"
    hidden = autograde.hidden_lines(source)
    assert hidden == {2, 3, 4}
    assert "f(2)" not in autograde.strip_hidden(source)
    hidden_error = {"output_type": "error", "ename": "AssertionError", "evalue": "x",
                    "traceback": ["\x1b[31mCell In[3], line 3\x1b[0m", "assert f(2) == 4"]}
    assert autograde.neutral_error(hidden_error, hidden)["traceback"] == [
        autograde.HIDDEN_FAILED]
    visible_error = dict(hidden_error, evalue="visible", traceback=["Cell In[3], line 1"])
    assert autograde.neutral_error(visible_error, hidden)["evalue"] == (
        "AssertionError: visible")


# --- One batch of tiny submissions, good and broken --------------------------------------------


@pytest.fixture(scope="module")
def tiny_batch(tiny_course: Path, tmp_path_factory: pytest.TempPathFactory):
    """Grade a flat LMS-style folder with good and broken submissions, two at a time."""
    folder = tmp_path_factory.mktemp("lms")
    nbformat.write(tiny_with(tiny_course, **CORRECT), folder / f"alice_{TINY}.ipynb")
    nbformat.write(tiny_with(tiny_course), folder / f"bob_smith_{TINY}.ipynb")
    with zipfile.ZipFile(folder / "carol_12345_attempt.zip", "w") as zipped:
        zipped.writestr(f"carol/{TINY}.ipynb",
                        nbformat.writes(tiny_with(tiny_course, add=CORRECT["add"])))
    (folder / f"dave_{TINY}.ipynb").write_text('{"cells": [', encoding="utf-8")
    (folder / f"erin_{TINY}.ipynb").write_bytes(b"")
    (folder / f"frank_{TINY}.ipynb").write_text('{"hello": "world"}', encoding="utf-8")
    with zipfile.ZipFile(folder / "gina.zip", "w") as zipped:
        zipped.writestr("homework/other.ipynb", "{}")
    nbformat.write(tiny_with(tiny_course, add="import os\nos._exit(1)"),
                   folder / f"hank_{TINY}.ipynb")
    nbformat.write(tiny_with(tiny_course, add="import time\nwhile True:\n    time.sleep(0.1)",
                             double=CORRECT["double"]),
                   folder / f"ivan_{TINY}.ipynb")
    output = tmp_path_factory.mktemp("graded")
    code = grading.grade_submissions(folder, None, tiny_course, output, workers=2,
                                     cell_timeout=5)
    with open(output / "grades.csv", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return code, rows, output


def test_batch_grades_the_good_and_names_each_broken_one(tiny_batch) -> None:
    code, rows, _ = tiny_batch
    assert code == 1
    assert sorted(rows) == ["alice", "bob_smith", "carol", "dave", "erin", "frank", "gina",
                            "hank", "ivan"]
    expected = {"alice": ("graded", "5"), "bob_smith": ("graded", "0"),
                "carol": ("graded", "2"), "dave": ("invalid", "0"), "erin": ("invalid", "0"),
                "frank": ("invalid", "0"), "gina": ("missing", "0"), "hank": ("failed", "0"),
                "ivan": ("timeout", "3")}
    assert {name: (row["status"], row["total"]) for name, row in rows.items()} == expected
    assert "not valid JSON" in rows["dave"]["reason"]
    assert "empty" in rows["erin"]["reason"]
    assert "not a Jupyter notebook" in rows["frank"]["reason"]
    assert "other.ipynb" in rows["gina"]["reason"]
    assert "kernel died" in rows["hank"]["reason"]
    assert "cell limit" in rows["ivan"]["reason"]
    assert rows["carol"]["test_add"] == "2" and rows["carol"]["test_double"] == "0"
    assert all(row["max"] == "5" for row in rows.values())


def test_batch_writes_feedback_summary_and_histogram(tiny_batch, capsys) -> None:
    _, rows, output = tiny_batch
    graded = sorted(name for name, row in rows.items() if row["status"] in ("graded", "timeout"))
    assert sorted(p.name for p in (output / "feedback").iterdir()) == graded
    assert (output / "scores_histogram.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (output / "logs").iterdir()) == [
        f"hank--{TINY}.log", f"ivan--{TINY}.log"]


def visible_text(page: str) -> str:
    """The text of an HTML page as a reader sees it (tags dropped, entities decoded)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_feedback_shows_no_hidden_tests_and_no_solutions(tiny_batch) -> None:
    _, _, output = tiny_batch
    for student in ("bob_smith", "carol", "ivan"):
        page = visible_text((output / "feedback" / student / f"{TINY}.html").read_text())
        assert "Check add." in page  # the visible test is there
        assert SECRET not in page and "add(-5, 5)" not in page and "double(4)" not in page
        assert SOLUTION_MARK not in page
    carol = visible_text((output / "feedback" / "carol" / f"{TINY}.html").read_text())
    assert autograde.HIDDEN_FAILED in carol


def test_a_stuck_notebook_is_stopped_with_its_kernel(tiny_course: Path, tmp_path: Path) -> None:
    """The per-notebook wall-clock limit kills the grading process and the kernel."""
    import psutil

    folder = tmp_path / "lms"
    folder.mkdir()
    stuck = tiny_with(tiny_course, add="import time\nwhile True:\n    time.sleep(0.1)")
    nbformat.write(stuck, folder / f"zoe_{TINY}.ipynb")
    before = {p.pid for p in psutil.process_iter()}  # other kernels may be running
    code = grading.grade_submissions(folder, TINY, tiny_course, tmp_path / "out",
                                     timeout=12, cell_timeout=600)
    assert code == 1
    rows = read_rows(tmp_path / "out" / "grades.csv")
    assert (rows[0]["student"], rows[0]["status"]) == ("zoe", "timeout")
    assert "12 s" in rows[0]["reason"]
    assert [p for p in psutil.process_iter() if p.pid not in before and _runs_in(p, "zoe")] == []


def _runs_in(process, student: str) -> bool:
    """Whether a process works in a scratch folder of ``student`` (other kernels may run)."""
    import psutil

    try:
        return f"--{student}" in process.cwd()
    except psutil.Error:
        return False


def test_cli_grade_passes_the_time_limits(tiny_course: Path, tmp_path: Path,
                                          monkeypatch) -> None:
    from ftcourse import cli

    seen = {}
    monkeypatch.setattr(grading, "grade_submissions", lambda *a, **k: seen.update(k) or 0)
    assert cli.main(["grade", str(tmp_path), "--timeout", "30", "--cell-timeout", "7"]) == 0
    assert (seen["timeout"], seen["cell_timeout"]) == (30, 7)


# --- The real assignments ----------------------------------------------------------------------

SOLUTIONS = sorted((REPO / "solutions").glob("*/*.ipynb"))
needs_assignments = pytest.mark.skipif(not SOLUTIONS, reason="no assignments in solutions/ yet")


def solution_parts(notebook: Path) -> dict[str, list[str]]:
    """For each solution cell (grade_id), the source in solutions/."""
    nb = nbformat.read(notebook, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


CHEAT_ASSIGNMENT = "ps02_frozen_mobilenetv2"
CHEAT_SOLUTION = REPO / "solutions" / CHEAT_ASSIGNMENT / f"{CHEAT_ASSIGNMENT}.ipynb"
CHEAT = ("\nchecks.check_base_frozen = lambda *a, **k: None"
         "\nchecks.count_params = lambda weights: 1280 * 5 + 5")


def cheating(solution: Path) -> nbformat.NotebookNode:
    """ps02 solved with a trainable base, and the checks that would notice it patched."""
    nb = nbformat.read(solution, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "part_a_build_model":
            cell.source = cell.source.replace("base_model.trainable = False",
                                              "base_model.trainable = True") + CHEAT
    return nb


@pytest.fixture(scope="module")
def real_batch(tmp_path_factory: pytest.TempPathFactory):
    """Every real assignment solved, in nbgrader layout; for ps02 also the untouched exercise
    and a submission that fools nbgrader's tests by patching the checks. (Each graded
    submission costs tens of CPU seconds: the batch is kept to these. Partial credit on ps02,
    exact to the part, is graded by ``tests/test_integrity.py`` (its honest reference solves
    part A only); that every test fails on each untouched exercise is checked without the
    pipeline in ``tests/test_assignments.py``.)
    """
    submitted = tmp_path_factory.mktemp("real") / "submitted"
    for solution in SOLUTIONS:
        assignment = solution.parent.name
        exercise = REPO / "exercises" / assignment / solution.name
        entries = [("solved", nbformat.read(solution, as_version=4))]
        if assignment == CHEAT_ASSIGNMENT:
            entries += [("untouched", nbformat.read(exercise, as_version=4)),
                        ("cheater", cheating(solution))]
        for student, nb in entries:
            target = submitted / student / assignment
            target.mkdir(parents=True, exist_ok=True)
            nbformat.write(copy.deepcopy(nb), target / solution.name)
    output = submitted.parent / "out"
    code = grading.grade_submissions(submitted.parent, None, REPO, output, workers=2)
    with open(output / "grades.csv", encoding="utf-8") as handle:
        rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(handle)}
    return code, rows, output


@needs_assignments
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.parent.name)
def test_solutions_get_full_marks(real_batch, solution: Path) -> None:
    _, rows, _ = real_batch
    row = rows[("solved", solution.parent.name)]
    total = sum(part.points for part in read_parts(solution))
    assert (row["status"], float(row["total"])) == ("graded", total), row["reason"] + row["notes"]
    assert row["trusted"] == "true" and row["notes"] == ""


@needs_assignments
def test_an_untouched_exercise_scores_zero(real_batch) -> None:
    _, rows, _ = real_batch
    row = rows[("untouched", CHEAT_ASSIGNMENT)]
    assert row["status"] == "graded", row["reason"]
    assert float(row["total"]) == 0.0


@needs_assignments
def test_real_feedback_of_an_untouched_exercise_shows_no_solution(real_batch) -> None:
    _, _, output = real_batch
    page = visible_text((output / "feedback" / "untouched" / f"{CHEAT_SOLUTION.stem}.html")
                        .read_text(encoding="utf-8"))
    shown = released_text(CHEAT_SOLUTION)
    secret_lines = [line for kind in ("SOLUTION", "HIDDEN TESTS")
                    for line in marked_lines(CHEAT_SOLUTION, kind) if line not in shown]
    assert secret_lines
    assert [line for line in secret_lines if line in page] == []


@needs_assignments
def test_a_patched_check_gets_the_trusted_zero(real_batch) -> None:
    _, rows, output = real_batch
    row = rows[("cheater", CHEAT_ASSIGNMENT)]
    assert row["status"] == "graded" and row["trusted"] == "true", row["reason"]
    assert row["isolated"] == str(isolation_available()).lower()
    assert row["test_part_a_frozen_head"] == "0"
    assert "test_part_a_frozen_head: 0 of 2" in row["notes"] and "trainable" in row["notes"]
    page = visible_text((output / "feedback" / "cheater" / f"{CHEAT_ASSIGNMENT}.html")
                        .read_text(encoding="utf-8"))
    assert "Trusted grading changed your score" in page and "test_part_a_frozen_head" in page
    assert autograde.HANDOVER_MARK not in page


def marked_lines(solution: Path, kind: str) -> list[str]:
    """Distinctive lines between ``### BEGIN <kind>`` and ``### END <kind>`` in a source."""
    lines = []
    for cell in nbformat.read(solution, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if f"BEGIN {kind}" in line or f"END {kind}" in line:
                inside = f"BEGIN {kind}" in line
            elif inside and len(line.strip()) > 12:
                lines.append(line.strip())
    return lines


def released_text(solution: Path) -> str:
    """Every cell of the released exercise of a source notebook, as one string."""
    exercise = REPO / "exercises" / solution.parent.name / solution.name
    return "\n".join(c.source for c in nbformat.read(exercise, as_version=4).cells)


def test_release_all_is_reexported(monkeypatch) -> None:
    import types

    fake = types.ModuleType("ftcourse.release")
    fake.release_all = lambda course_dir: 7
    monkeypatch.setitem(sys.modules, "ftcourse.release", fake)
    assert grading.release_all(Path(".")) == 7


def test_grades_csv_keeps_every_row(tmp_path: Path) -> None:
    from ftcourse.submissions import Assignment, Part

    assignments = {"a": Assignment("a", ("a",), (Part("p1", 1), Part("p2", 2)))}
    results = [grading.Result("x", "a", "x_a.ipynb", "graded", scores={"p1": 1, "p2": 2},
                              seconds=12.345),
               grading.Result("y", "a", "y_a.ipynb", "invalid", "the file is empty")]
    path = grading.write_grades_csv(results, assignments, tmp_path / "grades.csv")
    rows = read_rows(path)
    assert [(r["student"], r["p1"], r["total"], r["max"], r["status"]) for r in rows] == [
        ("x", "1", "3", "3", "graded"), ("y", "", "0", "3", "invalid")]
    assert [r["seconds"] for r in rows] == ["12.3", "0.0"]
    text = grading.summary(results, assignments)
    assert "1 submission(s) need attention" in text and "y_a.ipynb" in text
    assert json.dumps(text)


def test_the_grading_process_skips_the_slow_optional_iri_checker() -> None:
    """Without ``rfc3987_syntax`` nbformat still validates notebooks, and rejects bad ones."""
    script = textwrap.dedent("""
        import sys
        from ftcourse import autograde
        autograde.skip_slow_optional_imports()
        import nbformat
        assert sys.modules.get("rfc3987_syntax") is None
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
        nbformat.validate(nb)
        nb.cells[0].execution_count = "not a number"
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError:
            print("still validates")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "still validates" in done.stdout


def test_kernels_share_the_cores_among_workers(monkeypatch) -> None:
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the instructor's own setting wins
    env = grading._kernel_env(threads=2)
    assert (env["TF_NUM_INTRAOP_THREADS"], env["OMP_NUM_THREADS"]) == ("2", "3")
    assert "TF_NUM_INTRAOP_THREADS" not in grading._kernel_env()
    monkeypatch.setattr(grading.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert [grading.threads_per_worker(w) for w in (1, 2, 3, 8)] == [4, 2, 1, 1]
