"""The course's layout as nbgrader sees it: folders, assignments, graded parts, nbgrader's API.

``solutions/<assignment>/<notebook>.ipynb`` is nbgrader's source (the instructor's notebooks,
with ``trusted_checks.py`` beside them), ``exercises/`` its release, ``nbgrader_config.py`` the
course's settings. Every other grading module takes these names from here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ftcourse.errors import CourseError

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

SOURCE_DIRECTORY = "solutions"
RELEASE_DIRECTORY = "exercises"
CONFIG_FILE = "nbgrader_config.py"
TRUSTED_CHECKS_FILE = "trusted_checks.py"
# JupyterLab settings of the course: nbgrader's Assignment List and Course List (which need
# nbgrader's exchange, unused here) switched off. `ftcourse lab` puts it on JUPYTER_CONFIG_PATH.
JUPYTER_CONFIG_DIRECTORY = "jupyter_config"
CELL_TIMEOUT_S = 600
# nbgrader's default ``CourseDirectory.ignore``, used when the course config sets none.
_NBGRADER_IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]


@dataclass(frozen=True)
class Part:
    """One autograded part of an assignment: its nbgrader ``grade_id`` and points."""

    grade_id: str
    points: float


@dataclass(frozen=True)
class Assignment:
    """An assignment in ``solutions/``: its notebooks (by name, in order) and graded parts."""

    name: str
    notebooks: tuple[str, ...]
    parts: tuple[Part, ...]

    @property
    def max_score(self) -> float:
        return sum(part.points for part in self.parts)


def find_assignments(course_dir: Path) -> dict[str, Assignment]:
    """Every assignment in ``course_dir/solutions`` (a folder holding at least one notebook),
    with its notebooks and graded parts; raises ``CourseError`` when there is none."""
    source = Path(course_dir) / SOURCE_DIRECTORY
    if not source.is_dir():
        raise CourseError(f"No {SOURCE_DIRECTORY}/ folder in {course_dir}: run the command from "
                          "the course's root folder or pass --course-dir.")
    assignments = {}
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        notebooks = sorted(folder.glob("*.ipynb"))
        if notebooks:
            parts = tuple(part for nb in notebooks for part in read_parts(nb))
            assignments[folder.name] = Assignment(folder.name, tuple(nb.stem for nb in notebooks),
                                                  parts)
    if not assignments:
        raise CourseError(f"No assignments in {source}: expected "
                          f"{SOURCE_DIRECTORY}/<assignment>/<notebook>.ipynb.")
    return assignments


def read_parts(notebook: Path) -> list[Part]:
    """The graded cells of an nbgrader source notebook, in order."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    parts = []
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            parts.append(Part(meta["grade_id"], float(meta.get("points", 0))))
    return parts


def course_config(course_dir: Path) -> Config:
    """The settings of ``course_dir/nbgrader_config.py`` (empty without one)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (Path(course_dir) / CONFIG_FILE).is_file():
        config.merge(PyFileConfigLoader(CONFIG_FILE, path=str(course_dir)).load_config())
    return config


def nbgrader_api(root: Path, config_dir: Path | None = None,
                 cell_timeout: int | None = None) -> NbGraderAPI:
    """nbgrader's API for a scratch course at ``root``, with the settings of
    ``config_dir/nbgrader_config.py`` (default: ``root``'s), then the grader's own.

    The grader's own: the folders above, a gradebook in ``root``, missing grade cells restored
    from the gradebook, long outputs cut, the trusted checks never copied into a generated or
    graded folder, and ``cell_timeout`` seconds per cell (default: the course's, else 600).
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    root = Path(root)
    config = course_config(Path(config_dir) if config_dir is not None else root)
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.source_directory = SOURCE_DIRECTORY
    config.CourseDirectory.release_directory = RELEASE_DIRECTORY
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    config.Exchange.root = str(root / "exchange")  # unused, but nbgrader wants it to exist
    (root / "exchange").mkdir(exist_ok=True)
    config.OverwriteCells.add_missing_cells = True
    ignore = list(config.CourseDirectory.get("ignore", _NBGRADER_IGNORE))
    config.CourseDirectory.ignore = [*ignore, TRUSTED_CHECKS_FILE]
    config.LimitOutput.max_lines = 1000
    config.LimitOutput.max_traceback = 100
    if cell_timeout is not None:
        config.Execute.timeout = cell_timeout
    elif "timeout" not in config.Execute:
        config.Execute.timeout = CELL_TIMEOUT_S
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config, log_level="WARN")


def jupyter_environment(course_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the course's Jupyter settings first
    on ``JUPYTER_CONFIG_PATH``."""
    env = dict(os.environ if base is None else base)
    folder = str((Path(course_dir) / JUPYTER_CONFIG_DIRECTORY).resolve())
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [folder, *[p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]])
    return env
