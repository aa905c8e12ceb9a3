"""The student handout holds the lessons, the exercises and the helpers, and no secret."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from ftcourse.errors import CourseError
from ftcourse.grading.handout import leaks, secret_lines, write_handout

REPO = Path(__file__).resolve().parents[2]
# A hidden test of ps02 (solutions/), never released.
HIDDEN_LINE = "assert trainable == 1280 * num_classes + num_classes, ("


@pytest.fixture(scope="module")
def handout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_handout(REPO, tmp_path_factory.mktemp("handout") / "course")


def test_the_handout_holds_what_students_use(handout: Path) -> None:
    assert sorted(p.name for p in handout.iterdir()) == [
        "README.md", "exercises", "ftcourse", "jupyter_config", "lessons", "pyproject.toml"]
    for folder in ("lessons", "exercises"):
        shipped = sorted(p.relative_to(handout) for p in (handout / folder).rglob("*.ipynb"))
        assert shipped == sorted(p.relative_to(REPO) for p in (REPO / folder).rglob("*.ipynb"))
    assert "pip install ." in (handout / "README.md").read_text(encoding="utf-8")


def test_the_handout_holds_no_solution_hidden_test_or_trusted_check(handout: Path) -> None:
    secrets = secret_lines(REPO)
    assert HIDDEN_LINE in secrets and len(secrets) > 50
    assert not list(handout.rglob("trusted_checks.py")) and not list(handout.rglob("solutions"))
    shipped = "\n".join(p.read_text(encoding="utf-8") for p in handout.rglob("*")
                        if p.is_file() and p.suffix in (".ipynb", ".md"))
    assert HIDDEN_LINE not in shipped
    assert leaks(handout, secrets) == []


def test_the_handout_installs(handout: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--quiet", "-w", str(tmp_path), str(handout)], check=True, timeout=300)
    wheel = next(tmp_path.glob("ftcourse-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ftcourse/checks.py" in names and "ftcourse/grading/engine.py" in names


def test_a_solution_line_in_the_exercises_stops_the_handout(tmp_path: Path) -> None:
    course = tmp_path / "course"
    for name in ("lessons", "exercises", "solutions", "ftcourse", "jupyter_config"):
        shutil.copytree(REPO / name, course / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", course)
    exercise = course / "exercises" / "ps02_frozen_mobilenetv2" / "ps02_frozen_mobilenetv2.ipynb"
    nb = nbformat.read(exercise, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(HIDDEN_LINE + "\n    'message')"))
    nbformat.write(nb, exercise)
    with pytest.raises(CourseError, match="would show solution or hidden-test lines") as error:
        write_handout(course, tmp_path / "out")
    assert HIDDEN_LINE in str(error.value) and "ps02_frozen_mobilenetv2" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(CourseError, match="not empty"):
        write_handout(REPO, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
