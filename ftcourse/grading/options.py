"""Every knob of a grading run, in one typed object that travels from ``ftcourse grade`` to each
submission's grading."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ftcourse.cache import keras_home
from ftcourse.errors import CourseError
from ftcourse.grading.sandbox import SandboxLimits

NOTEBOOK_TIMEOUT_S = 1800.0
JUDGE_TIMEOUT_S = 300.0
PROFILES = ("ci", "full")


@dataclass(frozen=True)
class GradingOptions:
    """How to grade a batch of submissions.

    ``output``: where ``grades.csv``, ``feedback/``, ``logs/`` and the histogram go.
    ``workers``: submissions graded at once. ``timeout``: seconds per submission (its kernel is
    killed after that). ``cell_timeout``: seconds per cell (default: ``nbgrader_config.py``'s,
    else 600). ``profile``: ``FTCOURSE_PROFILE`` for the kernels and trusted checks (default:
    the grader's own). ``sandboxed``: start each kernel through :mod:`ftcourse.grading.sandbox`;
    ``isolate``: ``None`` isolates where :func:`~ftcourse.grading.sandbox.isolation_available`,
    ``True`` insists, ``False`` applies limits and a clean environment only. ``limits``: the
    kernel's resource limits. ``keras_cache``: the Keras cache whose weights the kernel may
    read. ``trusted``: cap each part by ``trusted_checks.py`` where the assignment has one;
    ``judge_timeout``: seconds for those checks per submission. ``scheduler``: grade on the
    Dask cluster at this address (``tcp://HOST:8786``), or on a ``LocalCluster`` of N worker
    processes started for the run (``local:N``); ``None`` grades in the local pool of
    ``workers`` processes. ``gradebook``: record the final scores in the course's nbgrader
    ``gradebook.db`` after the batch.
    """

    output: Path = Path("grading-output")
    workers: int = 1
    timeout: float = NOTEBOOK_TIMEOUT_S
    cell_timeout: int | None = None
    profile: str | None = None
    sandboxed: bool = True
    isolate: bool | None = None
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    keras_cache: Path = field(default_factory=keras_home)
    trusted: bool = True
    judge_timeout: float = JUDGE_TIMEOUT_S
    scheduler: str | None = None
    gradebook: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise CourseError(f"--workers must be at least 1, not {self.workers}.")
        if self.timeout <= 0:
            raise CourseError(f"--timeout must be positive, not {self.timeout:g}.")
        if self.cell_timeout is not None and self.cell_timeout < 1:
            raise CourseError(f"--cell-timeout must be at least 1, not {self.cell_timeout}.")
        if self.profile is not None and self.profile not in PROFILES:
            raise CourseError(f"--profile must be one of {', '.join(PROFILES)}, "
                              f"not {self.profile!r}.")
