"""CI runs exactly the test command the README gives."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest_command(text: str) -> str:
    commands = re.findall(r"^.*FTCOURSE_PROFILE=ci python -m pytest.*$", text, re.MULTILINE)
    assert len(commands) == 1, commands
    return commands[0].split("&&")[-1].strip()


def test_ci_runs_the_readme_test_command() -> None:
    readme = _pytest_command((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = _pytest_command((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert ci == readme


def test_ci_installs_the_test_extra_in_a_fresh_venv() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv" in script
    assert 'pip install -e ".[test]"' in script


def test_ci_builds_the_ci_bases_before_the_tests() -> None:
    for text in ((ROOT / "README.md").read_text(encoding="utf-8"),
                 (ROOT / ".ci" / "run").read_text(encoding="utf-8")):
        fetch = text.index("ftcourse fetch --profile ci")
        assert fetch < text.index("FTCOURSE_PROFILE=ci python -m pytest")
