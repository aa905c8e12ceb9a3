"""Generate the students' `exercises/` from the instructor's `solutions/` with nbgrader.

nbgrader runs in a scratch copy of the course folder, so that its gradebook and logs never land
in the repository; only the generated notebooks are copied back. The output depends only on the
source notebooks: running it twice gives byte-identical files. See the README,
"For instructors".
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ftcourse.errors import CourseError
from ftcourse.grading.course import (
    RELEASE_DIRECTORY,
    SOURCE_DIRECTORY,
    find_assignments,
    nbgrader_api,
)


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
