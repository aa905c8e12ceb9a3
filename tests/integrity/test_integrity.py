"""Hostile submissions: `ftcourse grade` must not be fooled, stopped or turned against the course.

Threat model. A student controls every byte of the notebook they hand in, and nbgrader runs that
notebook's code in the same kernel as the tests that grade it. The corpus
(``tests/integrity/hostile_cases.py``, with the attacks' code in ``tests/integrity/cases/``:
attacks on the checks are built from problem set 02,
attacks on the grading machinery from a mini assignment without TensorFlow) covers a student
who:

- edits what nbgrader reads: test cells replaced by ``pass`` or deleted, ``points`` raised to 100,
  ``grade_id`` renamed;
- changes what the checks use: ``builtins``, ``math``, ``numpy``, ``keras`` and
  ``ftcourse.checks`` monkeypatched; objects that lie about equality or type; a fake model;
- changes how cells run: an IPython input transformer that blanks the tests, ``sys.settrace``
  jumping over them, tracebacks silenced so a failing test shows no error;
- reads what grading leaves within reach (the solutions, the gradebook) and uses it, detects
  grading through the environment, or writes into other students' work, the gradebook, the
  solutions, the grading code or ``site-packages`` (also from a process left running);
- stops the grader: endless loops, ``os._exit``, ``sys.exit``, ``SystemExit``, a segfault, 200 MB
  of output, memory exhaustion;
- hands in a file that is not a readable notebook, or no notebook at all.

Each assignment's honest reference solves part A and nothing else; it is graded in the same
batch. Every hostile case must score at most what its honest parts earn (most have none: zero),
each batch must finish, and the files outside each submission must be unchanged. The corpus is
two grading batches, one per course (the repository for problem set 02, a course made in the
test's folder for the mini assignment), with several workers and short time limits each.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import shutil
import site
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from hostile_cases import (
    ASSIGNMENT,
    CASES,
    MARKER,
    MINI,
    PROBE,
    TARGETS,
    Case,
    Kit,
    write_mini_assignment,
)

from ftcourse.grading import engine
from ftcourse.grading.batch import grade_submissions
from ftcourse.grading.course import read_parts
from ftcourse.grading.engine import prepare_template
from ftcourse.grading.options import GradingOptions

REPO = Path(__file__).resolve().parents[2]
# Each cell's time limit: ps02's first cell imports TensorFlow while the other test process
# keeps the cores busy; the mini assignment's cells take milliseconds (its limit is what the
# endless loops of its corpus wait for).
CELL_TIMEOUT_S = {ASSIGNMENT: 20, MINI: 5}
# The mini assignment's kernels need little CPU and its loops mostly wait for their limits:
# four at a time; ps02's import TensorFlow: two.
WORKERS = {ASSIGNMENT: 2, MINI: 4}
NOTEBOOK_TIMEOUT_S = 90


def engine_uses_sandbox() -> bool:
    """Whether the grading engine starts its kernels through ``ftcourse.grading.sandbox``."""
    return "write_kernelspec" in inspect.getsource(engine)


SANDBOXED = engine_uses_sandbox()


@dataclass
class Batch:
    rows: dict[str, dict[str, str]]
    seconds: float
    before: dict[str, str]
    after: dict[str, str]
    base: Path


def credited_parts(kit: Kit, solved: tuple[str, ...]) -> set[str]:
    """The test grade_ids that follow each solved solution cell, up to the next solution cell."""
    nb = nbformat.read(kit.exercise_path, as_version=4)
    credited, current = set(), False
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            current = meta["grade_id"] in solved
        elif meta.get("grade") and current:
            credited.add(meta["grade_id"])
    return credited


def watched_files(mini_course: Path) -> list[Path]:
    """Course files a kernel must never change: the assignments' sources and releases."""
    folders = [REPO / "solutions" / ASSIGNMENT, REPO / "exercises" / ASSIGNMENT,
               mini_course / "solutions", mini_course / "exercises"]
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


def fingerprints(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "gone"
            for p in paths}


def probe_paths(mini_course: Path) -> list[Path]:
    """Where the ``tamper_course`` case tries to create files."""
    paths = [REPO / "ftcourse" / f"{PROBE}.py", mini_course / f"{PROBE}.txt"]
    paths += [REPO / folder / name / f"{PROBE}.txt" for folder in ("solutions", "exercises")
              for name in (ASSIGNMENT, MINI)]
    return paths + [Path(p) / f"{PROBE}.pth" for p in site.getsitepackages()]


def make_mini_course(course: Path) -> Path:
    """A course holding the mini assignment, its trusted checks and its nbgrader release."""
    write_mini_assignment(course)
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    release = prepare_template(course, MINI, course / "generated" / MINI)
    (course / "exercises" / MINI).mkdir(parents=True)
    shutil.copy(release / "exercises" / MINI / f"{MINI}.ipynb", course / "exercises" / MINI)
    shutil.rmtree(course / "generated")
    return course


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test's marked folder: the mini course, the submissions, scratch and outputs."""
    return tmp_path_factory.mktemp(MARKER)


@pytest.fixture(scope="module")
def kits(base: Path) -> dict[str, Kit]:
    """ps02 in the repository itself; the mini assignment in a course in the marked folder."""
    courses = {ASSIGNMENT: REPO, MINI: make_mini_course(base)}
    return {name: Kit(courses[name], target) for name, target in TARGETS.items()}


@pytest.fixture(scope="module")
def batch(kits: dict[str, Kit], base: Path):
    """Grade each assignment's cases in one batch; scratch folders live in the marked folder."""
    scratch = base / "scratch"
    scratch.mkdir()
    folders = {name: base / f"submissions-{name}" for name in kits}
    for case in CASES:
        folders[case.assignment].mkdir(exist_ok=True)
        if SANDBOXED or not case.memory:
            case.write(folders[case.assignment], kits[case.assignment])
    watched = sorted(p for f in folders.values() for p in f.iterdir()) + watched_files(base)
    before = fingerprints(watched)
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    started = time.monotonic()
    try:
        for name, kit in kits.items():
            options = GradingOptions(output=base / "out" / name, workers=WORKERS[name],
                                     timeout=NOTEBOOK_TIMEOUT_S,
                                     cell_timeout=CELL_TIMEOUT_S[name], gradebook=False)
            grade_submissions(folders[name], kit.course, options, assignment=name)
    finally:
        tempfile.tempdir = saved
    seconds = time.monotonic() - started
    print(f"\nintegrity corpus: {len(before)} files, graded in {seconds:.0f} s")
    rows = {}
    for name in kits:
        with open(base / "out" / name / "grades.csv", encoding="utf-8") as handle:
            rows.update({row["student"]: row for row in csv.DictReader(handle)})
    yield Batch(rows, seconds, before, fingerprints(watched), base)
    for probe in probe_paths(base):
        probe.unlink(missing_ok=True)


def limits(batch: Batch, kit: Kit, case: Case) -> dict[str, float]:
    """The most each part may score: what the honest reference earned for the same parts."""
    credited = credited_parts(kit, case.solved)
    honest = batch.rows[kit.target.reference]
    parts = [p.grade_id for p in read_parts(kit.solution_path)]
    return {part: float(honest[part] or 0) if part in credited else 0.0 for part in parts}


@pytest.mark.parametrize("assignment", sorted(TARGETS))
def test_honest_reference_earns_its_parts(batch: Batch, kits: dict[str, Kit],
                                          assignment: str) -> None:
    kit = kits[assignment]
    row = batch.rows[kit.target.reference]
    credited = credited_parts(kit, kit.target.honest)
    assert credited and row["status"] == "graded", row["reason"]
    for part in read_parts(kit.solution_path):
        expected = part.points if part.grade_id in credited else 0.0
        assert float(row[part.grade_id]) == expected, part.grade_id


REFERENCES = {target.reference for target in TARGETS.values()}


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in REFERENCES],
                         ids=lambda c: c.name)
def test_hostile_case_scores_no_more_than_its_honest_parts(batch: Batch, kits: dict[str, Kit],
                                                         case: Case) -> None:
    if case.memory and not SANDBOXED:
        pytest.skip("the engine does not run kernels in ftcourse.grading.sandbox: a memory attack "
                    "would meet no limit on this shared machine")
    assert case.name in batch.rows, f"no row for {case.name} in grades.csv"
    row = batch.rows[case.name]
    if case.statuses:
        assert row["status"] in case.statuses, row["reason"]
    allowed = limits(batch, kits[case.assignment], case)
    scores = {part: float(row[part] or 0) for part in allowed}
    over = {part: (score, allowed[part]) for part, score in scores.items()
            if score > allowed[part]}
    assert over == {}, f"scored more than the honest parts (score, allowed): {row['reason']}"
    assert float(row["total"]) <= sum(allowed.values())


def test_every_submission_has_a_row_and_the_batch_finished(batch: Batch) -> None:
    expected = {c.name for c in CASES if SANDBOXED or not c.memory}
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
    assert set(batch.rows) == expected
    assert batch.seconds < len(expected) * NOTEBOOK_TIMEOUT_S


def test_files_outside_each_submission_are_unchanged(batch: Batch) -> None:
    changed = [path for path, digest in batch.before.items() if batch.after[path] != digest]
    assert changed == []


def test_no_probe_or_tampered_file_was_written(batch: Batch) -> None:
    probes = [str(p) for p in probe_paths(batch.base) if p.exists()]
    probes += [str(p) for p in (REPO / "ftcourse").glob(f"{PROBE}*")]
    output = batch.base / "out"
    tampered = [str(p) for p in output.rglob("*") if p.is_file()
                and p.stat().st_size == len(b"tampered") and p.read_bytes() == b"tampered"]
    assert probes + tampered == []
