"""The tiny assignment (``tests/courses/tiny``): two parts, ``add`` (a visible and a hidden
check, 2 points) and ``double`` (hidden, 3), in a course without TensorFlow."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat

COURSES = Path(__file__).resolve().parents[1] / "courses"
TINY = "tiny"
SECRET = "SECRET_HIDDEN_CHECK"
SOLUTION_MARK = "SOLUTION_ONLY_LINE"


def tiny_with(course: Path, **answers: str) -> nbformat.NotebookNode:
    """The tiny exercise with some solution cells (by grade_id) replaced by ``answers``."""
    nb = nbformat.read(course / "exercises" / TINY / f"{TINY}.ipynb", as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb

def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))

CORRECT = {"add": "def add(a, b):\n    return a + b",
           "double": "def double(x):\n    return x + x"}
