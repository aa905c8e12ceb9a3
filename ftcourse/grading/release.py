"""Generate the students' `exercises/` from the instructor's `solutions/` with nbgrader.

nbgrader runs in a scratch copy of the course folder, so that its gradebook and logs never land
in the repository; only the generated notebooks are copied back. The output depends only on the
source notebooks: running it twice gives byte-identical files. Introduced in the instructor's
guide (README, "For instructors").
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from ftcourse.errors import CourseError

SOURCE_DIRECTORY = "solutions"
RELEASE_DIRECTORY = "exercises"
CONFIG_FILE = "nbgrader_config.py"


def find_source_assignments(course_dir: Path) -> list[str]:
    """Names of the folders in ``solutions/`` that hold at least one notebook."""
    source = Path(course_dir) / SOURCE_DIRECTORY
    if not source.is_dir():
        raise CourseError(f"No {SOURCE_DIRECTORY}/ folder in {course_dir}: run the command "
                          "from the course's root folder or pass --course-dir.")
    names = sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
    if not names:
        raise CourseError(f"No assignments in {source}: expected "
                          f"{SOURCE_DIRECTORY}/<assignment>/<notebook>.ipynb.")
    return names


def generate_release(course_dir: Path, out_dir: Path,
                     assignments: list[str] | None = None) -> list[Path]:
    """Write the student version of each assignment to ``out_dir/<assignment>/``.

    Returns the notebooks written. Raises ``CourseError`` with nbgrader's log when an
    assignment fails to generate (for example, a solution cell without its markers).
    """
    course_dir, out_dir = Path(course_dir).resolve(), Path(out_dir)
    names = assignments or find_source_assignments(course_dir)
    written = []
    with tempfile.TemporaryDirectory(prefix="ftcourse-release-") as scratch:
        root = Path(scratch)
        api = _nbgrader_api(course_dir, root)
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
    """Regenerate ``exercises/`` from ``solutions/`` for every assignment; return an exit code.

    Assignments removed from ``solutions/`` are removed from ``exercises/`` too.
    """
    course_dir = Path(course_dir).resolve()
    try:
        names = find_source_assignments(course_dir)
        release = course_dir / RELEASE_DIRECTORY
        for stale in sorted(p for p in release.glob("*") if p.is_dir() and p.name not in names):
            shutil.rmtree(stale)
        written = generate_release(course_dir, release, names)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for notebook in written:
        print(f"released {notebook.relative_to(course_dir)}")
    return 0


def _nbgrader_api(course_dir: Path, root: Path):
    """nbgrader's API for a scratch course at ``root`` that uses the course's config."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (course_dir / CONFIG_FILE).is_file():
        config.merge(PyFileConfigLoader(CONFIG_FILE, path=str(course_dir)).load_config())
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.source_directory = SOURCE_DIRECTORY
    config.CourseDirectory.release_directory = RELEASE_DIRECTORY
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    config.Exchange.root = str(root / "exchange")
    (root / "exchange").mkdir()
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config, log_level="WARN")
