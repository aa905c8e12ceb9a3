"""Generate the students' `exercises/` from the instructor's `solutions/` with nbgrader.

nbgrader runs in a scratch copy of the course folder, so that its gradebook and logs never land
in the repository; only the generated notebooks are copied back. The output depends only on the
source notebooks: running it twice gives byte-identical files. See the README,
"For instructors".
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from nbgrader.preprocessors import ClearSolutions

from ftcourse.errors import CourseError
from ftcourse.grading.course import (
    RELEASE_DIRECTORY,
    SOURCE_DIRECTORY,
    find_assignments,
    nbgrader_api,
)

PART_ID = re.compile(r"^part_([a-z])_")


def part_title(grade_id: str) -> str:
    """"Part A" for the solution cell ``part_a_build_model``; "this part" for other names."""
    found = PART_ID.match(grade_id)
    return f"Part {found.group(1).upper()}" if found else "this part"


class PartStubs(ClearSolutions):
    """nbgrader's ``ClearSolutions``, with ``{part}`` in the stub replaced by the part the
    solution cell answers (:func:`part_title` of its grade_id), so that an unanswered part says
    which one it is. Configured by ``ClearSolutions.code_stub`` in ``nbgrader_config.py``."""

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> Any:
        part = part_title(cell.metadata.get("nbgrader", {}).get("grade_id", ""))
        general: dict[str, str] = dict(self.code_stub)  # type: ignore[has-type]
        self.code_stub = {lang: stub.replace("{part}", part) for lang, stub in general.items()}
        try:
            return super().preprocess_cell(cell, resources, cell_index)
        finally:
            self.code_stub = general


def generate_release(course_dir: Path, out_dir: Path,
                     assignments: list[str] | None = None) -> list[Path]:
    """Write the student version of each assignment to ``out_dir/<assignment>/``.

    Returns the notebooks written. Raises ``CourseError`` with nbgrader's log when an
    assignment fails to generate (for example, a solution cell without its markers).
    """
    course_dir, out_dir = Path(course_dir).resolve(), Path(out_dir)
    names = assignments or list(find_assignments(course_dir))
    written = []
    with tempfile.TemporaryDirectory(prefix="ftcourse-release-") as scratch:
        root = Path(scratch)
        api = nbgrader_api(root, config_dir=course_dir)
        for name in names:
            source = course_dir / SOURCE_DIRECTORY / name
            if not source.is_dir():
                raise CourseError(f"No assignment {name!r} in {course_dir / SOURCE_DIRECTORY}.")
            shutil.copytree(source, root / SOURCE_DIRECTORY / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise CourseError(f"nbgrader could not generate {name}:\n"
                                  f"{result.get('log', '')}{result.get('error', '')}")
            generated = root / RELEASE_DIRECTORY / name
            target = out_dir / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(generated, target)
            written.extend(sorted(target.rglob("*.ipynb")))
    return written


def release_all(course_dir: Path) -> int:
    """Regenerate ``exercises/`` from ``solutions/`` for every assignment; return 0.

    Assignments removed from ``solutions/`` are removed from ``exercises/`` too. Raises
    ``CourseError`` (exit status 2 from ``ftcourse release``) when the course cannot be released.
    """
    course_dir = Path(course_dir).resolve()
    names = list(find_assignments(course_dir))
    release = course_dir / RELEASE_DIRECTORY
    for stale in sorted(p for p in release.glob("*") if p.is_dir() and p.name not in names):
        shutil.rmtree(stale)
    for notebook in generate_release(course_dir, release, names):
        print(f"released {notebook.relative_to(course_dir)}")
    return 0
