"""Fixtures of the grading tests: the tiny course, copied from ``tests/courses/tiny``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny import COURSES, TINY

from ftcourse.grading.engine import prepare_template


@pytest.fixture(scope="session")
def tiny_course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny course, with ``exercises/tiny/tiny.ipynb``, its nbgrader release."""
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(COURSES / TINY, course, dirs_exist_ok=True)
    template = prepare_template(course, TINY, tmp_path_factory.mktemp("tpl") / TINY)
    (course / "exercises" / TINY).mkdir(parents=True)
    (course / "exercises" / TINY / f"{TINY}.ipynb").write_bytes(
        (template / "exercises" / TINY / f"{TINY}.ipynb").read_bytes())
    return course
