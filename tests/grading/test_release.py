"""Releasing exercises/: the trusted checks never leave solutions/."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftcourse.grading.course import TRUSTED_CHECKS_FILE
from ftcourse.grading.release import generate_release

REPO = Path(__file__).resolve().parents[2]

needs_assignments = pytest.mark.skipif(not list((REPO / "solutions").glob("*/*.ipynb")),
                                       reason="no assignments in solutions/ yet")

CHECKED = sorted(p.parent.name for p in (REPO / "solutions").glob("*/trusted_checks.py"))

@needs_assignments
def test_trusted_checks_are_never_released(tmp_path: Path) -> None:
    assert not list((REPO / "exercises").rglob(TRUSTED_CHECKS_FILE))
    generate_release(REPO, tmp_path, [CHECKED[0]])
    assert list(tmp_path.rglob("*.ipynb"))
    assert not list(tmp_path.rglob(TRUSTED_CHECKS_FILE))
