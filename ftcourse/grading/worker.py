"""Autograde one submission inside a scratch course folder (run in a process of its own).

:mod:`ftcourse.grading` starts ``python autograde.py ROOT ASSIGNMENT STUDENT [CELL_TIMEOUT]`` for
each submission. This module imports nothing from ``ftcourse`` (importing the package loads
TensorFlow, seconds per submission); it runs nbgrader's autograde, reads the scores, removes the
hidden tests and their tracebacks from the graded notebook, writes the feedback, and saves the
outcome as ``ROOT/result.json``. Introduced in the instructor's guide (README).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path

SOURCE_DIRECTORY = "solutions"
CELL_TIMEOUT_S = 600
RESULT_FILE = "result.json"
HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
HIDDEN_PLACEHOLDER = "# (hidden tests run here when the notebook is graded)"
HIDDEN_FAILED = "A hidden test failed."
TRUSTED_CHECKS_FILE = "trusted_checks.py"
HANDOVER_MARK = "# Hand each graded part's result over as plain data (added by the grader)."
MAX_OUTPUT_CHARS = 20_000
PR_SET_CHILD_SUBREAPER = 36
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"(?:Cell In ?\[\d*\]|<ipython-input-[^>]*>), line (\d+)")


def nbgrader_api(root: Path, cell_timeout: int | None = None):
    """An NbGraderAPI for the scratch course at ``root`` (the course's config, then ours)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (root / "nbgrader_config.py").is_file():
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.source_directory = SOURCE_DIRECTORY
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    config.Exchange.root = str(root / "exchange")  # unused, but nbgrader wants it to exist
    (root / "exchange").mkdir(exist_ok=True)
    config.OverwriteCells.add_missing_cells = True
    # The instructor's trusted checks never reach a graded folder, whatever the course config.
    ignore = list(config.CourseDirectory.get("ignore", [".ipynb_checkpoints", "*.pyc",
                                                         "__pycache__", "feedback"]))
    config.CourseDirectory.ignore = [*ignore, TRUSTED_CHECKS_FILE]
    config.LimitOutput.max_lines = 1000
    config.LimitOutput.max_traceback = 100
    if cell_timeout is not None:
        config.Execute.timeout = cell_timeout
    elif "timeout" not in config.Execute:
        config.Execute.timeout = CELL_TIMEOUT_S
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config, log_level="WARN")


def autograde_here(root: Path, assignment: str, student: str, cell_timeout: int | None) -> dict:
    """Autograde, read the scores, clean the hidden tests and write the feedback."""
    api = nbgrader_api(root, cell_timeout)
    graded = api.autograde(assignment, student)
    if not graded["success"]:
        print(graded.get("error", ""), graded.get("log", ""))
        reason = explain_failure(graded.get("error", "") + graded.get("log", ""))
        return {"status": "failed", "reason": reason, "scores": {}}
    scores, manual = read_scores(api, assignment, student)
    timed_out = []
    for notebook in sorted((root / "autograded" / student / assignment).glob("*.ipynb")):
        timed_out += hide_hidden_tests(notebook)
    status, notes = "graded", []
    if timed_out:
        limit = api.coursedir.config.Execute.timeout
        status = "timeout"
        notes.append(f"{', '.join(timed_out)} ran longer than the {limit} s cell limit "
                     "(scored as it stands)")
    if manual:
        notes.append(f"needs manual grading: {', '.join(manual)}")
    feedback = api.generate_feedback(assignment, student)
    if not feedback["success"]:
        print(feedback.get("error", ""), feedback.get("log", ""))
        notes.append("the feedback could not be written (see logs/)")
    return {"status": status, "reason": "; ".join(notes), "scores": scores}


def explain_failure(text: str) -> str:
    """A one-line reason from nbgrader's error and log output."""
    if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
        return "the kernel died while running the notebook (a crash, os._exit or out of memory)"
    if "UnresponsiveKernelError" in text:
        return "the kernel stopped responding"
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"\w+(Error|Exception)\b", line)]
    return (errors or lines or ["nbgrader could not autograde the notebook"])[-1][:300]


def read_scores(api, assignment: str, student: str) -> tuple[dict[str, float], list[str]]:
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


def hidden_lines(source: str) -> set[int]:
    """1-based line numbers of a cell's hidden-test regions (delimiters included)."""
    hidden, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if HIDDEN_BEGIN in line:
            inside = True
        if inside:
            hidden.add(number)
        if HIDDEN_END in line:
            inside = False
    return hidden


def strip_hidden(source: str) -> str:
    """The cell source with each hidden-test region replaced by one placeholder comment."""
    kept, inside = [], False
    for line in source.splitlines():
        if HIDDEN_BEGIN in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(indent + HIDDEN_PLACEHOLDER)
        elif HIDDEN_END in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def neutral_error(output: dict, hidden: set[int]) -> dict:
    """An error output that shows a visible check's message but nothing of a hidden test."""
    traceback = _ANSI.sub("", "\n".join(output.get("traceback", [])))
    lines = {int(n) for n in _CELL_LINE.findall(traceback)}
    if lines and not lines & hidden:
        text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".rstrip(": ")
    elif output.get("ename") in (None, "AssertionError"):
        text = HIDDEN_FAILED
    else:
        text = f"{HIDDEN_FAILED} ({output['ename']})"
    return {"output_type": "error", "ename": output.get("ename", "Error"), "evalue": text,
            "traceback": [text]}


def hide_hidden_tests(notebook: Path) -> list[str]:
    """Strip hidden tests and their tracebacks from a graded notebook, in place.

    Returns the grade_ids (or cell numbers) of cells that ran past the cell time limit.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.startswith(HANDOVER_MARK)]
    timed_out = []
    for index, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        cap_outputs(cell)
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}")
            timed_out.append(grade_id)
        hidden = hidden_lines(cell.source)
        if not hidden:
            continue
        cell.outputs = [nbformat.from_dict(neutral_error(o, hidden))
                        if o.get("output_type") == "error" else o for o in cell.outputs]
        cell.source = strip_hidden(cell.source)
    nbformat.write(nb, notebook)
    return timed_out


def cap_outputs(cell, limit: int = MAX_OUTPUT_CHARS) -> None:
    """Cut each text output of a cell to ``limit`` characters (one line can be huge)."""
    for output in cell.get("outputs", []):
        texts = [("text", output)] if "text" in output else []
        texts += [(key, output["data"]) for key in output.get("data", {})
                  if key.startswith("text/")]
        for key, holder in texts:
            text = holder[key] if isinstance(holder[key], str) else "".join(holder[key])
            if len(text) > limit:
                holder[key] = text[:limit] + "\n... output cut by the grader ..."


def become_subreaper() -> None:
    """Adopt every orphan of the kernel, so that killing this process tree reaches them all."""
    import ctypes

    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_children() -> None:
    """Kill whatever the kernel left running (adopted orphans included)."""
    import psutil

    family = psutil.Process().children(recursive=True)
    for process in family:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(family, timeout=10)


def skip_slow_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax``, an optional checker of "iri" strings.

    Importing it compiles dozens of grammars (about 2 s, in every grading process; reported
    upstream as python-jsonschema/jsonschema#1392); nbformat's schema never uses that format.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # None: `import` raises ImportError


def main(argv: list[str] | None = None) -> int:
    """``python autograde.py ROOT ASSIGNMENT STUDENT [CELL_TIMEOUT]``: grade one submission."""
    root, assignment, student, *rest = argv or sys.argv[1:]
    cell_timeout = int(rest[0]) if rest and rest[0] else None
    skip_slow_optional_imports()
    become_subreaper()
    try:
        outcome = autograde_here(Path(root), assignment, student, cell_timeout)
    finally:
        kill_children()
    (Path(root) / RESULT_FILE).write_text(json.dumps(outcome), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
