"""Autograde one submission inside a scratch course folder, in a process of its own.

The engine (:mod:`ftcourse.grading.engine`) starts ``python -m ftcourse.grading.worker ROOT
ASSIGNMENT STUDENT [--cell-timeout S]`` for each submission. The worker runs nbgrader's autograde
(the student's kernel is started from the sandboxed kernelspec the engine wrote), reads the
scores, writes the feedback through the preprocessors of :mod:`ftcourse.grading.feedback`, saves
the outcome as ``ROOT/result.json`` and kills whatever the kernel left running. With ``--notes
FILE`` it only writes the feedback again, with the trusted grading's notes (a JSON list) on top.
It never imports TensorFlow (``import ftcourse`` loads nothing heavy), and imports nbgrader and
nbconvert only after :func:`skip_slow_optional_imports`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcourse.grading.course import nbgrader_api

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI

RESULT_FILE = "result.json"
PR_SET_CHILD_SUBREAPER = 36
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def autograde_here(root: Path, assignment: str, student: str,
                   cell_timeout: int | None) -> dict[str, Any]:
    """Autograde, read the scores and write the feedback; the outcome as plain data."""
    api = nbgrader_api(root, cell_timeout=cell_timeout)
    graded = api.autograde(assignment, student)
    if not graded["success"]:
        print(graded.get("error", ""), graded.get("log", ""))
        reason = explain_failure(graded.get("error", "") + graded.get("log", ""))
        return {"status": "failed", "reason": reason, "scores": {}}
    scores, manual = read_scores(api, assignment, student)
    import nbformat

    from ftcourse.grading import feedback

    timed_out = []
    for notebook in sorted((root / "autograded" / student / assignment).glob("*.ipynb")):
        timed_out += feedback.timed_out_cells(nbformat.read(notebook, as_version=4))
    status, notes = "graded", []
    if timed_out:
        limit = api.coursedir.config.Execute.timeout
        status = "timeout"
        notes.append(f"{', '.join(timed_out)} ran longer than the {limit} s cell limit "
                     "(scored as it stands)")
    if manual:
        notes.append(f"needs manual grading: {', '.join(manual)}")
    if not write_feedback(api, assignment, student):
        notes.append("the feedback could not be written (see logs/)")
    return {"status": status, "reason": "; ".join(notes), "scores": scores}


def write_feedback(api: NbGraderAPI, assignment: str, student: str,
                   notes: Sequence[str] = ()) -> bool:
    """nbgrader's feedback, through the chain of :func:`feedback.preprocessors`."""
    from ftcourse.grading import feedback

    api.config.GenerateFeedback.preprocessors = feedback.preprocessors()
    api.config.TrustedNotes.notes = list(notes)
    done = api.generate_feedback(assignment, student, force=True)
    if not done["success"]:
        print(done.get("error", ""), done.get("log", ""))
    return bool(done["success"])


def explain_failure(text: str) -> str:
    """A one-line reason from nbgrader's error and log output."""
    if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
        return "the kernel died while running the notebook (a crash, os._exit or out of memory)"
    if "UnresponsiveKernelError" in text:
        return "the kernel stopped responding"
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"\w+(Error|Exception)\b", line)]
    return (errors or lines or ["nbgrader could not autograde the notebook"])[-1][:300]


def read_scores(api: NbGraderAPI, assignment: str, student: str
                ) -> tuple[dict[str, float], list[str]]:
    """Each part's score by grade_id (in notebook order), and the parts left for a person."""
    from nbgrader.api import Gradebook

    scores, manual = {}, []
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in sorted(notebook.grades, key=lambda g: g.cell.id):
                scores[grade.name] = float(grade.score or 0.0)
                if grade.needs_manual_grade:
                    manual.append(grade.name)
    return scores, manual


def become_subreaper() -> None:
    """Adopt every orphan of the kernel, so that killing this process tree reaches them all."""
    import ctypes

    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_tree(pid: int, include_root: bool = True) -> None:
    """Kill the process ``pid`` (unless ``include_root`` is false) and all its descendants,
    adopted orphans included, and wait for them."""
    import psutil

    try:
        root = psutil.Process(pid)
        family = [*root.children(recursive=True), *([root] if include_root else [])]
    except psutil.NoSuchProcess:
        return
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(family, timeout=10)


def skip_slow_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax``, an optional checker of "iri" strings.

    Importing it compiles dozens of grammars (about 2 s, in every grading process; reported
    upstream as python-jsonschema/jsonschema#1392); nbformat's schema never uses that format.
    """
    if "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # `import` raises


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ftcourse.grading.worker ROOT ASSIGNMENT STUDENT [--cell-timeout S]
    [--notes FILE]``: grade one submission (or, with ``--notes``, rewrite its feedback)."""
    parser = argparse.ArgumentParser(prog="python -m ftcourse.grading.worker")
    parser.add_argument("root", type=Path)
    parser.add_argument("assignment")
    parser.add_argument("student")
    parser.add_argument("--cell-timeout", type=int)
    parser.add_argument("--notes", type=Path)
    args = parser.parse_args(argv)
    skip_slow_optional_imports()
    if args.notes is not None:
        notes = json.loads(args.notes.read_text(encoding="utf-8"))
        ok = write_feedback(nbgrader_api(args.root), args.assignment, args.student, notes)
        return 0 if ok else 1
    become_subreaper()
    try:
        outcome = autograde_here(args.root, args.assignment, args.student, args.cell_timeout)
    finally:
        kill_tree(os.getpid(), include_root=False)
    (args.root / RESULT_FILE).write_text(json.dumps(outcome), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
