"""Find the students' notebooks in a folder of submissions and unpack them safely.

Two layouts are recognised:

* nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb`` (give ``submitted/`` or the
  folder that holds it);
* a flat folder as exported from a learning-management system: ``<student>_<notebook>.ipynb``,
  ``<student>.zip`` or ``<student>_<anything>.zip`` holding the notebook(s).

Notebooks are matched to assignments by file name (the names in ``solutions/<assignment>/``).
Every input shows up in the result, with a status when it cannot be graded, so that nothing is
lost. See the README, "For instructors".
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ftcourse.errors import CourseError
from ftcourse.grading.course import SOURCE_DIRECTORY, Assignment

MAX_NOTEBOOK_BYTES = 50 * 2**20
MAX_ZIP_BYTES = 200 * 2**20
_SKIPPED_NAMES = ("__MACOSX", ".ipynb_checkpoints")


@dataclass
class Submission:
    """One student's work on one assignment, or an input that could not be matched.

    ``status`` is empty while the submission can be graded; otherwise it says why not
    (``invalid``, ``missing``, ``unmatched``, ``duplicate``) and ``reason`` explains.
    """

    student: str
    assignment: str
    source: str
    notebooks: dict[str, Path] = field(default_factory=dict)
    status: str = ""
    reason: str = ""

    def fail(self, status: str, reason: str) -> None:
        if not self.status:
            self.status, self.reason = status, reason


def check_notebook(path: Path) -> str:
    """Why the file is not a readable Jupyter notebook, or ``""`` when it is one."""
    import nbformat

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return "the file is empty"
    if size > MAX_NOTEBOOK_BYTES:
        return f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "not a Jupyter notebook (the file is not text)"
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error})"
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:
        summary = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return f"not a Jupyter notebook ({type(error).__name__}: {summary})"
    return ""


def collect_submissions(folder: Path, assignments: dict[str, Assignment], unpack_dir: Path,
                        only: str | None = None) -> list[Submission]:
    """Every submission in ``folder`` (either layout), with zips unpacked into ``unpack_dir``."""
    folder = Path(folder)
    if not folder.exists():
        raise CourseError(f"The submissions folder {folder} does not exist: check the path.")
    if only is not None and only not in assignments:
        raise CourseError(f"Unknown assignment {only!r}; the course has {sorted(assignments)} "
                          f"(folders in {SOURCE_DIRECTORY}/).")
    if folder.is_file():
        raise CourseError(f"{folder} is a file: pass the folder that holds the submissions.")
    submitted = _submitted_root(folder, assignments)
    if submitted is not None:
        found = _collect_nbgrader(submitted, assignments, only)
    else:
        found = _collect_flat(folder, assignments, Path(unpack_dir), only)
    if not found:
        raise CourseError(
            f"No notebooks found in {folder}. Expected submitted/<student>/<assignment>/"
            "<notebook>.ipynb, or files named <student>_<notebook>.ipynb or <student>.zip, "
            f"for the notebooks {sorted(nb for a in assignments.values() for nb in a.notebooks)}.")
    for submission in found:
        _check_complete(submission, assignments)
    return found


def _submitted_root(folder: Path, assignments: dict[str, Assignment]) -> Path | None:
    """The ``submitted/`` folder when ``folder`` uses nbgrader's layout, else None."""
    if (folder / "submitted").is_dir():
        return folder / "submitted"
    for student in _entries(folder):
        if student.is_dir() and any(p.is_dir() and p.name in assignments
                                    for p in _entries(student)):
            return folder
    return None


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith(".") and p.name not in _SKIPPED_NAMES)


def _collect_nbgrader(submitted: Path, assignments: dict[str, Assignment],
                      only: str | None) -> list[Submission]:
    found = []
    for student_dir in (p for p in _entries(submitted) if p.is_dir()):
        for work in (p for p in _entries(student_dir) if p.is_dir()):
            if only is not None and work.name != only:
                continue
            submission = Submission(safe_student_id(student_dir.name), work.name,
                                    str(work.relative_to(submitted)))
            if work.name not in assignments:
                submission.fail("unmatched", f"no assignment named {work.name!r} in "
                                f"{SOURCE_DIRECTORY}/: rename the folder to an assignment's "
                                "name and grade again")
            else:
                for notebook in work.glob("*.ipynb"):
                    if notebook.stem in assignments[work.name].notebooks:
                        submission.notebooks[notebook.stem] = notebook
            found.append(submission)
    return found


def _collect_flat(folder: Path, assignments: dict[str, Assignment], unpack_dir: Path,
                  only: str | None) -> list[Submission]:
    owner = {nb: a.name for a in assignments.values() for nb in a.notebooks}
    unknown = only or (next(iter(assignments)) if len(assignments) == 1 else "")
    by_key: dict[tuple[str, str], Submission] = {}
    loose: list[Submission] = []

    def add(student: str, notebook: str, path: Path, source: str) -> None:
        if only is not None and owner[notebook] != only:
            return
        key = (student, owner[notebook])
        submission = by_key.setdefault(key, Submission(student, owner[notebook], source))
        if notebook in submission.notebooks:
            loose.append(Submission(student, owner[notebook], source, status="duplicate",
                                    reason=f"{student} handed in {notebook}.ipynb more than "
                                    f"once; graded {submission.source}: remove the copy that "
                                    "should not count and grade again"))
            return
        if source not in submission.source.split(", "):
            submission.source = f"{submission.source}, {source}"
        submission.notebooks[notebook] = path

    for path in (p for p in _entries(folder) if p.is_file()):
        if path.suffix == ".ipynb":
            student, notebook = split_flat_name(path.stem, owner)
            if notebook is None:
                loose.append(Submission(student, unknown, path.name, status="unmatched",
                                        reason="the file name does not end in a notebook name "
                                        f"of the course ({', '.join(sorted(owner))}): rename it "
                                        "<student>_<notebook>.ipynb and grade again"))
            else:
                add(student, notebook, path, path.name)
        elif path.suffix == ".zip":
            student = zip_student(path.stem, owner, assignments)
            try:
                notebooks = unpack_zip(path, unpack_dir / path.stem)
            except (zipfile.BadZipFile, CourseError) as error:
                loose.append(Submission(student, unknown, path.name, status="invalid",
                                        reason=f"cannot unpack the zip file ({error}): ask "
                                        "the student to hand it in again"))
                continue
            matched = [nb for nb in notebooks if nb.stem in owner]
            for unpacked in matched:
                add(student, unpacked.stem, unpacked, path.name)
            if not matched:
                names = ", ".join(nb.name for nb in notebooks) or "no notebooks"
                loose.append(Submission(student, unknown, path.name, status="missing",
                                        reason=f"the zip holds no notebook of the course "
                                        f"(found: {names}): ask the student to hand in the "
                                        "released notebook, named as released"))
        else:
            loose.append(Submission(path.stem.split("_")[0], unknown, path.name,
                                    status="unmatched", reason="not a .ipynb or .zip file: "
                                    "ask for the notebook itself (or a .zip of it)"))
    return sorted(by_key.values(), key=lambda s: (s.assignment, s.student)) + loose


def split_flat_name(stem: str, owner: dict[str, str]) -> tuple[str, str | None]:
    """Split ``<student>_<notebook>`` (an LMS may add ``-1`` for a resubmission).

    >>> split_flat_name("ana_ps02_frozen", {"ps02_frozen": "ps02"})
    ('ana', 'ps02_frozen')
    """
    for notebook in sorted(owner, key=len, reverse=True):
        match = re.fullmatch(rf"(.+?)_{re.escape(notebook)}(-\d+)?", stem)
        if match:
            return safe_student_id(match.group(1)), notebook
    return safe_student_id(stem), None


def zip_student(stem: str, owner: dict[str, str], assignments: dict[str, Assignment]) -> str:
    """The student of ``<student>.zip`` or ``<student>_<anything>.zip``."""
    for name in sorted([*owner, *assignments], key=len, reverse=True):
        if stem.endswith("_" + name):
            return safe_student_id(stem[: -len(name) - 1])
    return safe_student_id(stem.split("_")[0])


def safe_student_id(name: str) -> str:
    """A student id safe as a folder name: letters, digits, ``.``, ``-`` and ``_`` only."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return cleaned or "unknown"


def unpack_zip(archive: Path, destination: Path) -> list[Path]:
    """Extract the ``.ipynb`` files of a zip, flattened (no paths kept, so no traversal).

    Raises CourseError when the zip is larger than allowed once unpacked.
    """
    destination.mkdir(parents=True, exist_ok=True)
    extracted: list[Path] = []
    total = 0
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            parts = Path(member.filename).parts
            if member.is_dir() or not member.filename.endswith(".ipynb") or any(
                    part in _SKIPPED_NAMES or part.startswith(".") for part in parts):
                continue
            with zipped.open(member) as stream:
                data = stream.read(MAX_NOTEBOOK_BYTES + 1)
            total += len(data)
            if len(data) > MAX_NOTEBOOK_BYTES or total > MAX_ZIP_BYTES:
                raise CourseError(f"{member.filename} is too large once unpacked")
            target = destination / Path(member.filename).name
            if target.exists():
                raise CourseError(f"it holds two notebooks named {target.name}")
            target.write_bytes(data)
            extracted.append(target)
    return extracted


def _check_complete(submission: Submission, assignments: dict[str, Assignment]) -> None:
    """Mark unreadable or missing notebooks (a submission with some notebooks is still graded)."""
    if submission.status:
        return
    for name, path in submission.notebooks.items():
        problem = check_notebook(path)
        if problem:
            submission.fail("invalid", f"{name}.ipynb: {problem}: ask the student to hand in "
                            "the notebook again, saved from JupyterLab")
            return
    expected = assignments[submission.assignment].notebooks
    missing = [nb for nb in expected if nb not in submission.notebooks]
    if len(missing) == len(expected):
        submission.fail("missing", f"no {' or '.join(nb + '.ipynb' for nb in missing)} in the "
                        "submission: ask the student to hand it in")
