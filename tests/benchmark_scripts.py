"""Import a script of ``benchmarks/`` as a module, for the tests of that script."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def imported(name: str) -> Iterator[ModuleType]:
    """``benchmarks/<name>.py`` imported as ``name`` (for a ``yield from`` fixture); removed
    from ``sys.modules`` afterwards."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
