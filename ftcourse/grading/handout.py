"""The student bundle: what students get (``ftcourse handout DIR``), and nothing they must not see.

The repository holds ``solutions/`` (the instructor's answers, hidden tests and trusted checks):
hand out the bundle, never the repository. The bundle holds the lessons, the released
exercises, the ``ftcourse`` helper package with the ``pyproject.toml`` that installs it, and a
README that says how. Before writing anything, it checks that no line of a solution or of a
hidden test reaches it (say, from an ``exercises/`` edited by hand instead of released).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ftcourse.errors import CourseError
from ftcourse.grading.course import (
    JUPYTER_CONFIG_DIRECTORY,
    RELEASE_DIRECTORY,
    SOURCE_DIRECTORY,
    TRUSTED_CHECKS_FILE,
)

COPIED = ("lessons", RELEASE_DIRECTORY, "ftcourse", "pyproject.toml", JUPYTER_CONFIG_DIRECTORY)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
MARKS = ("SOLUTION", "HIDDEN TESTS")
README = """# Fine-tuning pre-trained image models: the course

`lessons/` teaches, in order; `exercises/` holds the graded problem sets. Each exercise checks
itself: run its test cells, or click **Validate** in JupyterLab.

## Install (once)

```bash
python3 -m venv .venv && . .venv/bin/activate
pip install .            # the ftcourse helpers and everything the notebooks import
ftcourse lab             # JupyterLab with the course's settings; open lessons/01_*.ipynb
```

The notebooks download ImageNet weights and the flower photos into `~/.keras` on first use
(`ftcourse fetch` does it ahead of time; `ftcourse doctor` shows what is there). Without a
network, set `FTCOURSE_PROFILE=ci` before starting JupyterLab: a small offline version of the
course (bases pre-trained here on handwritten digits, built once, a few minutes of CPU).

Hand in each exercise notebook as your instructor says (the file, or a zip of its folder).
"""


def secret_lines(course_dir: Path) -> set[str]:
    """Distinctive lines of the solutions and hidden tests that students never see: the lines
    between nbgrader's ``BEGIN``/``END`` marks of ``solutions/`` that appear neither outside
    the marks (what nbgrader releases) nor in a lesson (the lessons teach some of the same code
    on purpose). Computed from the sources alone, so a hand-edited ``exercises/`` cannot hide
    a leak."""
    import nbformat

    course_dir = Path(course_dir)
    marked: set[str] = set()
    public: set[str] = set()
    for notebook in sorted((course_dir / SOURCE_DIRECTORY).glob("*/*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                if any(f"BEGIN {mark}" in line or f"END {mark}" in line for mark in MARKS):
                    inside = any(f"BEGIN {mark}" in line for mark in MARKS)
                elif len(line.strip()) > 12:
                    (marked if inside else public).add(line.strip())
    public |= {line.strip() for notebook in sorted((course_dir / "lessons").glob("*.ipynb"))
               for cell in nbformat.read(notebook, as_version=4).cells
               for line in cell.source.splitlines()}
    return marked - public


def leaks(folder: Path, secrets: set[str]) -> list[str]:
    """``path: line`` for each secret line found in a notebook or text file under ``folder``,
    and each file of the instructor's (``solutions/``, trusted checks) found there.

    The helper package's sources are not searched: students install that package in any case,
    and some helpers share lines with the solutions of the parts they demonstrate.
    """
    found = []
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if path.name == TRUSTED_CHECKS_FILE or SOURCE_DIRECTORY in relative.parts:
            found.append(f"{relative}: an instructor's file")
            continue
        if relative.parts[0] == "ftcourse":
            continue
        lines = {line.strip() for line in _text(path).splitlines()}
        found += [f"{relative}: {line}" for line in sorted(lines & secrets)]
    return found


def _text(path: Path) -> str:
    """A file's text; for a notebook, its cells' sources and text outputs."""
    import nbformat

    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8", errors="replace")
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # not a readable notebook: search its raw text
        return path.read_text(encoding="utf-8", errors="replace")
    texts = [cell.source for cell in cells]
    texts += [str(output.get("text", "")) for cell in cells for output in cell.get("outputs", [])]
    return "\n".join(texts)


def write_handout(course_dir: Path, target: Path) -> Path:
    """Write the student bundle of the course at ``course_dir`` into the new folder ``target``.

    Raises ``CourseError`` when ``target`` is not empty or a solution line would leak.
    """
    course_dir, target = Path(course_dir).resolve(), Path(target)
    if target.exists() and any(target.iterdir()):
        raise CourseError(f"{target} is not empty: choose a new folder for the handout.")
    missing = [name for name in COPIED if not (course_dir / name).exists()]
    if missing:
        raise CourseError(f"{course_dir} has no {', '.join(missing)}: is it the course folder?")
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in COPIED:
            source = course_dir / name
            if source.is_dir():
                shutil.copytree(source, staging / name, ignore=IGNORED)
            else:
                shutil.copy(source, staging / name)
        (staging / "README.md").write_text(README, encoding="utf-8")
        found = leaks(staging, secret_lines(course_dir))
        if found:
            raise CourseError("The handout would show solution or hidden-test lines; run "
                              "`ftcourse release` and try again:\n" + "\n".join(found[:10]))
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(staging.iterdir()):
            entry.rename(target / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
