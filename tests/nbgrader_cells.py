"""nbgrader source notebooks for the small assignments the tests build."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_notebook


def nbgrader_meta(grade_id: str, *, solution: bool = False,
                  points: float | None = None) -> dict:
    """A cell's nbgrader metadata: a solution cell, a graded test (``points``) or locked."""
    meta = {"grade": points is not None, "solution": solution, "locked": not solution,
            "grade_id": grade_id, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook(cells: list) -> nbformat.NotebookNode:
    """A Python notebook of ``cells``, with the clean metadata the course's notebooks have."""
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
