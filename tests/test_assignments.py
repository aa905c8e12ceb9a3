"""The graded assignments: `exercises/` is nbgrader's release of `solutions/`, and it works.

Validation executes each released notebook in a kernel (in the `ci` profile, from conftest):
every test must fail on the students' stubs. That every test passes on the instructor's solution
is shown by grading it (``tests/grading/test_engine.py``, full marks through the whole pipeline).
"""

from __future__ import annotations

import json
import linecache
import os
import re
from pathlib import Path

import pytest
from nbconvert.filters import strip_ansi

from ftcourse.grading.course import RELEASE_DIRECTORY, SOURCE_DIRECTORY
from ftcourse.grading.release import generate_release

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = [
    "ps01_fine_tuning_basics",
    "ps02_frozen_mobilenetv2",
    "ps03_swap_architectures",
    "ps04_head_regularization",
    "ps05_learning_rates_unfreezing",
]
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS",
           "### END HIDDEN TESTS")


def notebook(folder: str, assignment: str) -> Path:
    return ROOT / folder / assignment / f"{assignment}.ipynb"


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def marked_lines(cell: dict, begin: str, end: str) -> list[str]:
    """The non-blank lines of a cell between ``begin`` and ``end`` markers."""
    lines, inside = [], False
    for line in source(cell).splitlines():
        if line.strip() in (begin, end):
            inside = line.strip() == begin
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def unmarked_lines(cell: dict) -> list[str]:
    """The stripped lines of a cell outside every pair of markers."""
    lines, inside = [], False
    for line in source(cell).splitlines():
        if line.strip() in MARKERS:
            inside = line.strip().startswith("### BEGIN")
        elif not inside:
            lines.append(line.strip())
    return lines


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release")
    generate_release(ROOT, out)
    return out


def test_every_assignment_has_a_solution_and_an_exercise() -> None:
    for folder in (SOURCE_DIRECTORY, RELEASE_DIRECTORY):
        assert sorted(p.name for p in (ROOT / folder).iterdir() if p.is_dir()) == ASSIGNMENTS


def test_committed_exercises_are_byte_identical_to_a_fresh_release(fresh_release: Path) -> None:
    generated = sorted(p.relative_to(fresh_release) for p in fresh_release.rglob("*")
                       if p.is_file())
    committed = sorted(p.relative_to(ROOT / RELEASE_DIRECTORY)
                       for p in (ROOT / RELEASE_DIRECTORY).rglob("*") if p.is_file())
    assert committed == generated
    stale = [str(p) for p in generated
             if (fresh_release / p).read_bytes() != (ROOT / RELEASE_DIRECTORY / p).read_bytes()]
    assert not stale, f"exercises/ is out of date, run `ftcourse release`: {stale}"


def test_release_is_deterministic(fresh_release: Path, tmp_path: Path) -> None:
    generate_release(ROOT, tmp_path, ["ps02_frozen_mobilenetv2"])
    name = "ps02_frozen_mobilenetv2/ps02_frozen_mobilenetv2.ipynb"
    assert (tmp_path / name).read_bytes() == (fresh_release / name).read_bytes()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_hold_no_solutions_nor_hidden_tests(assignment: str) -> None:
    released = cells(notebook(RELEASE_DIRECTORY, assignment))
    text = "\n".join(source(cell) for cell in released)
    for marker in MARKERS:
        assert marker not in text
    source_cells = cells(notebook(SOURCE_DIRECTORY, assignment))
    marked = {line for cell in source_cells for begin, end in (MARKERS[:2], MARKERS[2:])
              for line in marked_lines(cell, begin, end)}
    shown = {line for cell in source_cells for line in unmarked_lines(cell)}  # run cells too
    released_lines = {line.strip() for line in text.splitlines()}
    leaks = sorted(line for line in marked - shown if len(line) > 12 and line in released_lines)
    assert not leaks, f"{assignment} leaks solution or hidden-test lines: {leaks}"
    for cell in released:
        assert cell.get("outputs", []) == [] and cell.get("execution_count") is None


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_parts_follow_nbgrader_conventions(assignment: str) -> None:
    source_cells = cells(notebook(SOURCE_DIRECTORY, assignment))
    meta = [cell["metadata"].get("nbgrader", {}) for cell in source_cells]
    grade_ids = [m["grade_id"] for m in meta if m]
    assert len(grade_ids) == len(set(grade_ids))
    tests = [c for c, m in zip(source_cells, meta, strict=True) if m.get("grade")]
    solutions = [c for c, m in zip(source_cells, meta, strict=True) if m.get("solution")]
    assert 3 <= len(solutions) <= 5 and len(tests) >= len(solutions)
    for cell in tests:
        assert source(cell).startswith('"""Check that'), source(cell)[:60]
        assert "checks.check_" in source(cell).split("### BEGIN HIDDEN TESTS")[0]
        assert cell["metadata"]["nbgrader"]["locked"] and cell["metadata"]["nbgrader"]["points"]
    for cell in solutions:
        assert marked_lines(cell, *MARKERS[:2]), "a solution cell without its solution"
    released = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]
                for c in cells(notebook(RELEASE_DIRECTORY, assignment))
                if "nbgrader" in c["metadata"]}
    assert sorted(released) == sorted(grade_ids), "the release keeps every nbgrader cell"


def validate(path: Path, invert: bool) -> dict:
    from nbgrader.validator import Validator
    from traitlets.config import Config

    assert os.environ.get("FTCOURSE_PROFILE") == "ci"
    config = Config()
    config.Execute.timeout = 300
    return Validator(config=config, invert=invert).validate(str(path))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_stubs_fail_every_test_saying_which_part(assignment: str) -> None:
    """Validated as released, every test cell fails, and its error names the unanswered part in
    one line (the stub's NotImplementedError or ``checks.require``), never a NameError. (That
    the untouched ps02 scores zero when graded is checked in tests/grading/test_engine.py.)"""
    path = notebook(RELEASE_DIRECTORY, assignment)
    tests = [c for c in cells(path) if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    failed = validate(path, invert=False).get("failed", [])
    assert len(failed) == len(tests), [item["source"][:200] for item in failed]
    for item in failed:
        last = [line for line in strip_ansi(item["raw_error"]).splitlines() if line.strip()][-1]
        assert re.match(r"(NotAnswered|NotImplementedError): Part [A-D] is not answered yet",
                        last), last


def test_stubs_and_require_name_the_part() -> None:
    from ftcourse import checks
    from ftcourse.grading.release import part_title

    assert part_title("part_b_binary_model") == "Part B"
    assert part_title("answers") == "this part"
    with pytest.raises(checks.NotAnswered, match=r"^Part B is not answered yet: model, x is"):
        checks.require({"y": 1}, "model", "x", "y", part="Part B")
    checks.require({"model": None}, "model", part="Part B")  # defined: nothing happens
    namespace: dict = {}
    # As IPython runs a cell: its source in linecache, where inspect finds it.
    linecache.cache["<cell>"] = (len(STUBBED), None, STUBBED.splitlines(True), "<cell>")
    exec(compile(STUBBED, "<cell>", "exec"), namespace)
    with pytest.raises(checks.NotAnswered, match="build still raises NotImplementedError"):
        checks.require(namespace, "build", part="Part A")
    # An answer written above a stub left in place works, so it is never called unanswered.
    checks.require(namespace, "answered_above_the_stub", part="Part A")


STUBBED = '''
def build(n):
    """Return n."""
    # YOUR CODE HERE: Part A (replace these two lines with your answer)
    raise NotImplementedError("Part A is not answered yet: write it in its cell")


def answered_above_the_stub(n):
    return n
    raise NotImplementedError("Part A is not answered yet: write it in its cell")
'''


def test_a_passing_test_cell_says_what_passed(capsys: pytest.CaptureFixture) -> None:
    from ftcourse import checks

    checks.passed("Part A", "the base is frozen")
    assert capsys.readouterr().out == "Part A passed: the base is frozen\n"
    for assignment in ASSIGNMENTS:
        for cell in cells(notebook(SOURCE_DIRECTORY, assignment)):
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                assert "checks.passed(" in source(cell).split("### END HIDDEN TESTS")[-1]
