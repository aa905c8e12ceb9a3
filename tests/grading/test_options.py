"""GradingOptions: one typed object for every knob of a grading run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ftcourse.cache import keras_home
from ftcourse.errors import CourseError
from ftcourse.grading.options import GradingOptions


def test_the_defaults_grade_safely() -> None:
    options = GradingOptions()
    assert (options.workers, options.sandboxed, options.trusted, options.isolate) == (
        1, True, True, None)
    assert options.limits.memory_mb == 4096
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers = 2  # type: ignore[misc]


def test_the_keras_cache_is_keras_home_or_dot_keras(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_home() == tmp_path == GradingOptions().keras_cache
    monkeypatch.delenv("KERAS_HOME")
    assert keras_home() == Path.home() / ".keras"


@pytest.mark.parametrize(("knob", "message"), [
    ({"workers": 0}, "--workers must be at least 1"),
    ({"timeout": 0}, "--timeout must be positive"),
    ({"cell_timeout": 0}, "--cell-timeout must be at least 1"),
    ({"profile": "fast"}, "--profile must be one of ci, full"),
])
def test_bad_values_are_course_errors(knob: dict, message: str) -> None:
    with pytest.raises(CourseError, match=message):
        GradingOptions(**knob)
