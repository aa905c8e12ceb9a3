"""The package's layout: each grading module imports only the modules listed before it, and
nothing of the students' helpers: only the two modules both sides share, ``ftcourse.errors``
and ``ftcourse.cache``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ftcourse" / "grading"
# The order of ftcourse/grading/__init__.py's docstring: a module may import those before it.
LAYERS = ["course", "sandbox", "forkserver", "verdicts", "options", "submissions", "release",
          "handout", "feedback", "worker", "report", "gradebook", "engine", "cluster", "batch"]


def imported(module: str) -> set[str]:
    """The ``ftcourse`` modules that ``ftcourse/grading/<module>.py`` imports (at any depth)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftcourse"):
            if node.module == "ftcourse.grading":
                names |= {f"ftcourse.grading.{alias.name}" for alias in node.names}
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("ftcourse")}
    return names


def test_every_module_is_in_a_layer() -> None:
    found = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert found == set(LAYERS)


@pytest.mark.parametrize("module", LAYERS)
def test_a_module_imports_only_modules_below_it(module: str) -> None:
    below = {f"ftcourse.grading.{name}" for name in LAYERS[: LAYERS.index(module)]}
    allowed = below | {"ftcourse.errors", "ftcourse.cache"}
    assert imported(module) - allowed == set()
