"""Grading a batch: autograding in isolation, feedback without hidden tests, trusted caps.

Most cases run in ONE batch per course (module-scoped fixtures), because every graded
submission starts a kernel. The error cases use the tiny assignment (``tests/courses/tiny``),
which grades in seconds; the real assignments in ``solutions/`` are graded as solution, exercise
and partial."""

from __future__ import annotations

import copy
import csv
import html
import re
import zipfile
from pathlib import Path

import nbformat
import pytest
from tiny import CORRECT, SECRET, SOLUTION_MARK, TINY, read_rows, tiny_with

from ftcourse.errors import CourseError
from ftcourse.grading import engine, feedback, verdicts
from ftcourse.grading.batch import grade_submissions
from ftcourse.grading.course import read_parts
from ftcourse.grading.engine import Result
from ftcourse.grading.options import GradingOptions
from ftcourse.grading.sandbox import isolation_available
from ftcourse.grading.submissions import Submission
from ftcourse.startup import unwanted_lines

REPO = Path(__file__).resolve().parents[2]


def test_grade_submissions_rejects_bad_input_before_grading(tiny_course: Path,
                                                            tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="does not exist"):
        grade_submissions(tmp_path / "nowhere", tiny_course,
                          GradingOptions(output=tmp_path / "out"))
    with pytest.raises(CourseError, match="Unknown assignment"):
        grade_submissions(tmp_path, tiny_course, GradingOptions(output=tmp_path / "out"),
                          assignment="ps99")

# What a notebook shows when the grading machine lacks the weights it loads (offline).
OFFLINE_CELL = ("from ftcourse.errors import DownloadError, OFFLINE_HINT\n"
                "raise DownloadError(f'No MobileNetV2 weights. {OFFLINE_HINT}')")


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
    nbformat.write(tiny_with(tiny_course, add=OFFLINE_CELL, double=CORRECT["double"]),
                   folder / f"kim_{TINY}.ipynb")
    output = tmp_path_factory.mktemp("graded")
    code = grade_submissions(folder, tiny_course,
                             GradingOptions(output=output, workers=2, cell_timeout=5,
                                            gradebook=False))
    with open(output / "grades.csv", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return code, rows, output

def test_batch_grades_the_good_and_names_each_broken_one(tiny_batch) -> None:
    code, rows, _ = tiny_batch
    assert code == 1
    assert sorted(rows) == ["alice", "bob_smith", "carol", "dave", "erin", "frank", "gina",
                            "hank", "ivan", "kim"]
    expected = {"alice": ("graded", "5"), "bob_smith": ("graded", "0"),
                "carol": ("graded", "2"), "dave": ("invalid", "0"), "erin": ("invalid", "0"),
                "frank": ("invalid", "0"), "gina": ("missing", "0"), "hank": ("failed", "0"),
                "ivan": ("timeout", "3"), "kim": ("failed", "3")}
    assert {name: (row["status"], row["total"]) for name, row in rows.items()} == expected
    assert "not valid JSON" in rows["dave"]["reason"]
    assert "empty" in rows["erin"]["reason"]
    assert "not a Jupyter notebook" in rows["frank"]["reason"]
    assert "other.ipynb" in rows["gina"]["reason"]
    assert "kernel died" in rows["hank"]["reason"]
    # An environment failure is never a silent zero: failed, with the reason and its fix.
    assert "lacks what the notebook loads" in rows["kim"]["reason"]
    assert "ftcourse fetch" in rows["kim"]["reason"]
    assert "cell limit" in rows["ivan"]["reason"]
    assert rows["carol"]["test_add"] == "2" and rows["carol"]["test_double"] == "0"
    assert all(row["max"] == "5" for row in rows.values())

# What a reason tells the instructor to do, one of these in each.
ACTIONS = ("ask the student", "grade again", "grade it again", "raise --", "rename")


def test_every_reason_says_what_to_do(tiny_batch) -> None:
    _, rows, _ = tiny_batch
    for name, row in rows.items():
        if row["status"] != "graded":
            assert any(action in row["reason"] for action in ACTIONS), (name, row["reason"])


def test_a_task_the_grader_cannot_run_is_a_failed_row_that_says_what_to_do(
        tmp_path: Path) -> None:
    # A template that vanished (say, a /tmp cleaner) makes grade_one raise: each such task is
    # reported, and the batch goes on.
    tasks = [engine.Task(Submission(student, TINY, f"{student}.ipynb"), tmp_path / "gone",
                         tmp_path / "runs", GradingOptions(output=tmp_path / "out"))
             for student in ("ann", "ben")]
    results = engine.grade_all(tasks, workers=2)
    assert sorted(r.student for r in results) == ["ann", "ben"]
    for result in results:
        assert result.status == "failed"
        assert "the grader failed (FileNotFoundError" in result.reason
        assert any(action in result.reason for action in ACTIONS), result.reason


def test_batch_writes_feedback_summary_and_histogram(tiny_batch, capsys) -> None:
    _, rows, output = tiny_batch
    graded = sorted(name for name, row in rows.items() if row["status"] in ("graded", "timeout"))
    assert sorted(p.name for p in (output / "feedback").iterdir()) == graded
    assert (output / "scores_histogram.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (output / "logs").iterdir()) == [
        f"hank--{TINY}.log", f"ivan--{TINY}.log", f"kim--{TINY}.log"]

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
    assert feedback.HideHiddenTests.message.default_value in carol

# A submission that looks for notebooks in its working folder, the grader's scratch folders and
# the folder of submissions (readable only without isolation) and prints every one it finds.
SPY = ("import glob, os, tempfile\n"
       "found = glob.glob('**/*.ipynb', recursive=True)\n"
       "found += glob.glob({scratch!r} + '/ftcourse-grade-*/**/*.ipynb', recursive=True)\n"
       "found += glob.glob({submissions!r} + '/*.ipynb')\n"
       "for path in sorted(found):\n"
       "    print('FOUND', path)\n"
       "    print(open(path).read())\n"
       "print('SEARCHED', len(found))\n" + CORRECT["add"])


@pytest.mark.parametrize("isolate", [
    pytest.param(True, marks=pytest.mark.skipif(not isolation_available(),
                                                reason="isolation needs root and mounts")),
    False])
def test_no_hidden_test_reaches_a_spying_submission(tiny_course: Path, tmp_path: Path,
                                                    isolate: bool) -> None:
    """Isolated, the kernel finds no notebook at all (not even the submissions); without
    isolation it can read the autograded copy, and the feedback shows none of its hidden
    lines."""
    import tempfile

    spy = SPY.format(scratch=tempfile.gettempdir(), submissions=str(tmp_path))
    nbformat.write(tiny_with(tiny_course, add=spy, double=CORRECT["double"]),
                   tmp_path / f"mallory_{TINY}.ipynb")
    output = tmp_path / "out"
    grade_submissions(tmp_path, tiny_course, GradingOptions(output=output, isolate=isolate,
                                                                   gradebook=False))
    assert read_rows(output / "grades.csv")[0]["total"] == "5"
    page = visible_text((output / "feedback" / "mallory" / f"{TINY}.html").read_text())
    assert "SEARCHED" in page and SECRET not in page and "double(4)" not in page
    if isolate:
        assert "SEARCHED 0" in page
    else:  # the second wall was needed
        assert "FOUND" in page and feedback.RedactHiddenEchoes.message.default_value in page

def test_a_stuck_notebook_is_stopped_with_its_kernel(tiny_course: Path, tmp_path: Path) -> None:
    """The per-notebook wall-clock limit kills the grading process and the kernel."""
    import psutil

    folder = tmp_path / "lms"
    folder.mkdir()
    stuck = tiny_with(tiny_course, add="import time\nwhile True:\n    time.sleep(0.1)")
    nbformat.write(stuck, folder / f"zoe_{TINY}.ipynb")
    before = {p.pid for p in psutil.process_iter()}  # other kernels may be running
    code = grade_submissions(folder, tiny_course, GradingOptions(
        output=tmp_path / "out", timeout=12, cell_timeout=600, gradebook=False),
        assignment=TINY)
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
    exact to the part, is graded by ``tests/integrity/test_integrity.py`` (its honest
    reference solves part A only); that every test fails on each untouched exercise is checked
    without the pipeline in ``tests/test_assignments.py``.)
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
    code = grade_submissions(submitted.parent, REPO, GradingOptions(output=output, workers=2,
                                                                             gradebook=False))
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
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.parent.name)
def test_solved_exercises_show_no_tensorflow_log_or_warning(real_batch, solution: Path) -> None:
    """What the student sees when the solved notebook runs (its feedback shows every output)."""
    _, _, output = real_batch
    page = visible_text((output / "feedback" / "solved" / f"{solution.stem}.html")
                        .read_text(encoding="utf-8"))
    assert "Epoch" in page or "trainable" in page  # outputs are there
    assert unwanted_lines("\n".join(line.strip() for line in page.splitlines())) == []

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
    assert verdicts.HANDOVER_MARK not in page

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

def test_kernels_share_the_cores_among_workers(monkeypatch) -> None:
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the instructor's own setting wins
    env = engine.kernel_env(threads=2)
    assert (env["TF_NUM_INTRAOP_THREADS"], env["OMP_NUM_THREADS"]) == ("2", "3")
    assert "TF_NUM_INTRAOP_THREADS" not in engine.kernel_env()
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert [engine.threads_per_worker(w) for w in (1, 2, 3, 8)] == [4, 2, 1, 1]


def test_verdicts_only_lower_scores() -> None:
    result = Result("s", "a", "src", "graded", scores={"p": 2.0, "q": 0.0, "r": 3.0})
    found = {"p": verdicts.Verdict(0.0, "wrong model"), "q": verdicts.Verdict(1.0, "ok"),
             "r": verdicts.Verdict(1.0, "ok")}
    notes = engine.apply_verdicts(result, found, {"p": 2, "q": 2, "r": 3})
    assert result.scores == {"p": 0.0, "q": 0.0, "r": 3.0}
    assert len(notes) == 1 and notes[0].startswith("p: 0 of 2") and "wrong model" in notes[0]


def test_artifacts_keep_only_plain_files(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "model.keras").write_bytes(b"zip")
    (outbox / "secret.npy").symlink_to("/etc/passwd")
    (outbox / "folder").mkdir()
    copied = engine.collect_artifacts(outbox, tmp_path / "copy")
    assert sorted(p.name for p in copied.iterdir()) == ["model.keras"]


def test_the_submissions_folder_is_hidden_unless_the_kernel_runs_from_it(tmp_path: Path) -> None:
    import sys

    import ftcourse
    from ftcourse.grading.batch import hidden_paths

    course = tmp_path / "course"
    hidden = hidden_paths(course, tmp_path / "in", [tmp_path / "work"], tmp_path / "keras")
    assert (tmp_path / "in").resolve() in hidden and course / "solutions" in hidden
    for inside in (Path(sys.prefix), Path(ftcourse.__file__).parent):
        assert inside.resolve().parent not in hidden_paths(
            course, inside.resolve().parent, [], tmp_path / "keras")
    assert tmp_path.resolve() not in hidden_paths(course, tmp_path, [], tmp_path / "keras")


def test_an_interrupted_batch_leaves_no_hidden_tests_in_the_output(
        tiny_course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The autograded notebooks wait in the output until the gradebook is written; an
    interruption (Ctrl-C) removes them."""
    import contextlib

    from ftcourse.grading import batch

    output = tmp_path / "out"

    def interrupted(tasks: list) -> list:
        staged = output / engine.STAGED_AUTOGRADED / "alice" / TINY
        staged.mkdir(parents=True)
        (staged / f"{TINY}.ipynb").write_text(SECRET)
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def pool(options: GradingOptions):
        yield interrupted

    monkeypatch.setattr(batch, "pool", pool)
    nbformat.write(tiny_with(tiny_course, **CORRECT), tmp_path / f"alice_{TINY}.ipynb")
    with pytest.raises(KeyboardInterrupt):
        grade_submissions(tmp_path, tiny_course, GradingOptions(output=output))
    assert not (output / engine.STAGED_AUTOGRADED).exists()
