"""Autograde one submission inside a scratch course folder, in a process of its own.

For each submission the engine (:mod:`ftcourse.grading.engine`) calls :func:`grade_in_fork` in
a fresh fork of the grading fork server (:mod:`ftcourse.grading.forkserver`, started with
:data:`PRELOAD`: nbgrader and nbconvert are imported once per batch, not once per submission).
The worker runs nbgrader's autograde (the student's kernel is started from the sandboxed
kernelspec the engine wrote), reads the scores, writes the feedback through the preprocessors of
:mod:`ftcourse.grading.feedback`, returns the outcome as plain data and kills whatever the
kernel left running. :func:`feedback_in_fork` only writes the feedback again, with the trusted
grading's notes on top. ``python -m ftcourse.grading.worker ROOT ASSIGNMENT STUDENT`` grades one
prepared folder by hand (its outcome in ``ROOT/result.json``). It never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcourse.grading.course import nbgrader_api
from ftcourse.grading.forkserver import kill_tree

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI

RESULT_FILE = "result.json"
PRELOAD = ("ftcourse.grading.worker:preload",)
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

    timed_out, unavailable = [], []
    for notebook in sorted((root / "autograded" / student / assignment).glob("*.ipynb")):
        graded_nb = nbformat.read(notebook, as_version=4)
        timed_out += feedback.timed_out_cells(graded_nb)
        unavailable += environment_errors(graded_nb)
    if unavailable:  # not the student's fault: never a silent zero
        return {"status": "failed", "scores": scores,
                "reason": f"the grading machine lacks what the notebook loads: {unavailable[0]}"
                + ("" if FETCH_HINT in unavailable[0] else f"; {FETCH_HINT}")}
    status, notes = "graded", []
    if timed_out:
        limit = api.coursedir.config.Execute.timeout
        status = "timeout"
        notes.append(f"{', '.join(timed_out)} ran longer than the {limit} s cell limit "
                     "(scored as it stands): raise --cell-timeout if the cell is only slow, "
                     "and grade it again")
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


# Errors that say the grading machine, not the submission, lacks weights or data.
ENVIRONMENT_ERRORS = ("DownloadError",)
FETCH_HINT = ("run `ftcourse fetch` on the grading machine (with a network) and grade again, or "
              "grade with --profile ci")


def environment_errors(nb: Any) -> list[str]:
    """One line per cell whose error says a download was needed: ``ftcourse``'s
    ``DownloadError``, or Keras' own "URL fetch failure" (an exercise's direct
    ``keras.applications`` call, offline)."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            name, value = output.get("ename", ""), output.get("evalue", "")
            if name in ENVIRONMENT_ERRORS:
                found.append(f"{name}: {value.splitlines()[0] if value else ''}"[:300])
            elif "URL fetch failure" in value:
                found.append(f"{value.splitlines()[0][:200]}; {FETCH_HINT}")
    return found


def explain_failure(text: str) -> str:
    """A one-line reason from nbgrader's error and log output."""
    if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
        return ("the kernel died while running the notebook (a crash, os._exit or out of "
                "memory): read its log in logs/; if it ran out of memory, raise --memory-mb")
    if "UnresponsiveKernelError" in text:
        return ("the kernel stopped responding: read its log in logs/, then grade it again "
                "(raise --cell-timeout if a cell is only slow)")
    if "Timeout waiting for IOPub output" in text:
        return ("a cell printed faster than the grader could read its output (nbclient: "
                "Timeout waiting for IOPub output): print less")
    if "SchemaTooNewError" in text or "use an newer version" in text:
        return ("its nbgrader metadata is from a newer nbgrader than the grader's (schema_version "
                "too new): ask the student to re-download the released notebook and copy their "
                "answers into it, or upgrade nbgrader on the grading machine")
    if "SchemaTooOldError" in text or "use an old version" in text:
        return ("its nbgrader metadata is in an old format (schema_version too old): run "
                "'nbgrader update' on the submission, or re-release and ask the student to "
                "re-download")
    if re.search(r"KeyError: ['\"]grade_id['\"]", text):
        return ("a graded or test cell lost its nbgrader grade_id (its cell metadata was edited): "
                "ask the student to copy their answers into a fresh download of the released "
                "notebook")
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"\w+(Error|Exception)\b", line)]
    last = (errors or lines or ["nbgrader could not autograde the notebook"])[-1][:300]
    return f"{last}: read its log in logs/ (nbgrader's own words), then grade it again"


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


def skip_slow_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax``, an optional checker of "iri" strings.

    Importing it compiles dozens of grammars (about 2 s, in every grading process; reported
    upstream as python-jsonschema/jsonschema#1392); nbformat's schema never uses that format.
    """
    if "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # `import` raises


def preload() -> None:
    """What the grading fork server imports once: nbformat, nbgrader and the feedback
    preprocessors, after :func:`skip_slow_optional_imports`."""
    skip_slow_optional_imports()
    import nbformat  # noqa: F401
    import nbgrader.api
    import nbgrader.apps  # noqa: F401

    from ftcourse.grading import feedback  # noqa: F401


def grade_in_fork(root: str, assignment: str, student: str, cell_timeout: int | None,
                  log: str) -> dict[str, Any]:
    """:func:`autograde_here` in a fork of the grading server: in ``root``, its output in
    ``log``, and whatever the kernel left running killed at the end."""
    _work_in(Path(root), Path(log))
    try:
        return autograde_and_reap(Path(root), assignment, student, cell_timeout)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def autograde_and_reap(root: Path, assignment: str, student: str,
                       cell_timeout: int | None) -> dict[str, Any]:
    """:func:`autograde_here`, then kill whatever the kernel left running (its orphans too)."""
    become_subreaper()
    try:
        return autograde_here(root, assignment, student, cell_timeout)
    finally:
        kill_tree(os.getpid(), include_root=False)


def feedback_in_fork(root: str, assignment: str, student: str, notes: list[str],
                     log: str) -> bool:
    """:func:`write_feedback` again, with the trusted grading's ``notes``, in a fork."""
    _work_in(Path(root), Path(log))
    try:
        return write_feedback(nbgrader_api(Path(root)), assignment, student, notes)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _work_in(root: Path, log: Path) -> None:
    """Work in ``root``, read nothing from stdin and append all output to ``log``."""
    os.chdir(root)
    nothing = os.open(os.devnull, os.O_RDONLY)
    if nothing != 0:
        os.dup2(nothing, 0)
        os.close(nothing)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ftcourse.grading.worker ROOT ASSIGNMENT STUDENT [--cell-timeout S]``: grade
    one prepared submission by hand; the outcome goes to ``ROOT/result.json``."""
    parser = argparse.ArgumentParser(prog="python -m ftcourse.grading.worker")
    parser.add_argument("root", type=Path)
    parser.add_argument("assignment")
    parser.add_argument("student")
    parser.add_argument("--cell-timeout", type=int)
    args = parser.parse_args(argv)
    skip_slow_optional_imports()
    outcome = autograde_and_reap(args.root, args.assignment, args.student, args.cell_timeout)
    (args.root / RESULT_FILE).write_text(json.dumps(outcome), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
