"""Hostile submissions: `ftcourse grade` must not be fooled, stopped or turned against the course.

Threat model. A student controls every byte of the notebook they hand in, and nbgrader runs that
notebook's code in the same kernel as the tests that grade it. The corpus (built from problem set
02 by ``tests/hostile_cases.py``) covers a student who:

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

The honest reference solves part A and nothing else; it is graded in the same batch. Every
hostile case must score at most what its honest parts earn (most have none: zero), the batch
must finish, and the files outside each submission must be unchanged. The whole corpus is ONE
grading batch (two workers, short time limits).
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import site
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from hostile_cases import ASSIGNMENT, CASES, MARKER, PROBE, Case, Kit

from ftcourse import autograde, grading
from ftcourse.submissions import read_parts

REPO = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 20
NOTEBOOK_TIMEOUT_S = 90


def engine_uses_sandbox() -> bool:
    """Whether the grading engine starts its kernels through ``ftcourse.sandbox``."""
    source = inspect.getsource(grading) + inspect.getsource(autograde)
    return "write_kernelspec" in source


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


def watched_files() -> list[Path]:
    """Course files a kernel must never change: the assignment's sources and release."""
    folders = [REPO / "solutions" / ASSIGNMENT, REPO / "exercises" / ASSIGNMENT]
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


def fingerprints(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "gone"
            for p in paths}


def probe_paths() -> list[Path]:
    """Where the ``tamper_course`` case tries to create files."""
    package = REPO / "ftcourse"
    paths = [package / f"{PROBE}.py", REPO / "solutions" / ASSIGNMENT / f"{PROBE}.txt",
             REPO / "exercises" / ASSIGNMENT / f"{PROBE}.txt"]
    return paths + [Path(p) / f"{PROBE}.pth" for p in site.getsitepackages()]


@pytest.fixture(scope="module")
def kit() -> Kit:
    return Kit(REPO)


@pytest.fixture(scope="module")
def batch(kit: Kit, tmp_path_factory: pytest.TempPathFactory):
    """Grade every case in one batch; the scratch folders live in the test's marked folder."""
    base = tmp_path_factory.mktemp(MARKER)
    submissions, scratch = base / "submissions", base / "scratch"
    submissions.mkdir()
    scratch.mkdir()
    for case in CASES:
        if SANDBOXED or not case.memory:
            case.write(submissions, kit)
    watched = sorted(submissions.iterdir()) + watched_files()
    before = fingerprints(watched)
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    started = time.monotonic()
    try:
        grading.grade_submissions(submissions, ASSIGNMENT, REPO, base / "out", workers=2,
                                  timeout=NOTEBOOK_TIMEOUT_S, cell_timeout=CELL_TIMEOUT_S)
    finally:
        tempfile.tempdir = saved
    seconds = time.monotonic() - started
    print(f"\nintegrity corpus: {len(before)} files, graded in {seconds:.0f} s")
    with open(base / "out" / "grades.csv", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    yield Batch(rows, seconds, before, fingerprints(watched), base)
    for probe in probe_paths():
        probe.unlink(missing_ok=True)


def limits(batch: Batch, kit: Kit, case: Case) -> dict[str, float]:
    """The most each part may score: what the honest reference earned for the same parts."""
    credited = credited_parts(kit, case.solved)
    honest = batch.rows["honest"]
    parts = [p.grade_id for p in read_parts(kit.solution_path)]
    return {part: float(honest[part] or 0) if part in credited else 0.0 for part in parts}


def test_honest_reference_earns_its_parts(batch: Batch, kit: Kit) -> None:
    row = batch.rows["honest"]
    credited = credited_parts(kit, ("part_a_build_model",))
    assert credited and row["status"] == "graded", row["reason"]
    for part in read_parts(kit.solution_path):
        expected = part.points if part.grade_id in credited else 0.0
        assert float(row[part.grade_id]) == expected, part.grade_id


@pytest.mark.parametrize("case", [c for c in CASES if c.name != "honest"], ids=lambda c: c.name)
def test_hostile_case_scores_no_more_than_its_honest_parts(batch: Batch, kit: Kit,
                                                         case: Case) -> None:
    if case.memory and not SANDBOXED:
        pytest.skip("the engine does not run kernels in ftcourse.sandbox yet: a memory attack "
                    "would meet no limit on this shared machine")
    assert case.name in batch.rows, f"no row for {case.name} in grades.csv"
    row = batch.rows[case.name]
    if case.statuses:
        assert row["status"] in case.statuses, row["reason"]
    allowed = limits(batch, kit, case)
    scores = {part: float(row[part] or 0) for part in allowed}
    over = {part: (score, allowed[part]) for part, score in scores.items()
            if score > allowed[part]}
    assert over == {}, f"scored more than the honest parts (score, allowed): {row['reason']}"
    assert float(row["total"]) <= sum(allowed.values())


def test_every_submission_has_a_row_and_the_batch_finished(batch: Batch) -> None:
    expected = {c.name for c in CASES if SANDBOXED or not c.memory}
    assert set(batch.rows) == expected
    assert batch.seconds < len(expected) * NOTEBOOK_TIMEOUT_S


def test_files_outside_each_submission_are_unchanged(batch: Batch) -> None:
    changed = [path for path, digest in batch.before.items() if batch.after[path] != digest]
    assert changed == []


def test_no_probe_or_tampered_file_was_written(batch: Batch) -> None:
    probes = [str(p) for p in probe_paths() if p.exists()]
    probes += [str(p) for p in (REPO / "ftcourse").glob(f"{PROBE}*")]
    output = batch.base / "out"
    tampered = [str(p) for p in output.rglob("*") if p.is_file()
                and p.stat().st_size == len(b"tampered") and p.read_bytes() == b"tampered"]
    assert probes + tampered == []
