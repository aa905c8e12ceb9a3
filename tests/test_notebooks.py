"""Hygiene of every committed notebook: no outputs, clean metadata, the lesson skeleton."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    path for folder in ("lessons", "solutions", "exercises")
    for path in (ROOT / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in path.parts
)  # fmt: skip
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))
ALLOWED_METADATA = {"kernelspec", "language_info"}
KEEP_OUTPUT_MARK = "# NBVAL_CHECK_OUTPUT"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def test_the_course_has_six_lessons() -> None:
    assert len(LESSONS) == 6, _ids(LESSONS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_outputs_or_execution_counts(path: Path) -> None:
    for index, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        kept = KEEP_OUTPUT_MARK in "".join(cell["source"])
        assert kept or not cell["outputs"], f"cell {index} has outputs: clear them"
        assert cell["execution_count"] is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_clean_metadata(path: Path) -> None:
    notebook = _load(path)
    assert set(notebook["metadata"]) <= ALLOWED_METADATA, sorted(notebook["metadata"])
    for index, cell in enumerate(notebook["cells"]):
        # deletable/editable: nbgrader locks read-only cells in the released notebooks.
        extra = set(cell.get("metadata", {})) - {"nbgrader", "tags", "deletable", "editable"}
        assert not extra, f"cell {index} carries metadata {sorted(extra)}"


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_skeleton(path: Path) -> None:
    cells = _load(path)["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    titles = [line for text in markdown for line in text.splitlines() if line.startswith("# ")]
    assert len(titles) == 1, f"expected one H1 title, found {titles}"
    assert any("## Setup" in text for text in markdown)
    assert any("## Summary" in text for text in markdown)
    assert any("ftcourse.setup(" in text for text in code)
    assert any("CPU" in text and "GPU" in text for text in markdown[:2]), "say how long it takes"
