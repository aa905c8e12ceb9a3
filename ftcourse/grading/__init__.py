"""The instructor's side: ``ftcourse release``, ``ftcourse handout`` and ``ftcourse grade``.

One concept per module, each importing only the modules listed before it:

- :mod:`~ftcourse.grading.course`: the course's layout (``solutions/``, ``exercises/``,
  assignments and their graded parts) and the one nbgrader API builder;
- :mod:`~ftcourse.grading.sandbox`: the confined kernel (``python -m ftcourse.grading.sandbox``);
- :mod:`~ftcourse.grading.forkserver`: fresh forked processes after a one-time import;
- :mod:`~ftcourse.grading.verdicts`: trusted checks (:class:`TrustedPart`, :class:`Probe`), the
  hand-over cell, and the judge that runs the checks outside the student's kernel;
- :mod:`~ftcourse.grading.options`: :class:`GradingOptions`, every knob of a grading run;
- :mod:`~ftcourse.grading.submissions`: finding and unpacking the students' notebooks;
- :mod:`~ftcourse.grading.release`: generating ``exercises/`` from ``solutions/`` (each stub
  naming its part);
- :mod:`~ftcourse.grading.handout`: the student bundle (``ftcourse handout DIR``), checked for
  solution and hidden-test lines;
- :mod:`~ftcourse.grading.feedback`: the preprocessors that clean a graded notebook for the
  student (hidden tests, their tracebacks, the hand-over cell);
- :mod:`~ftcourse.grading.worker`: what runs beside the kernel, one process per submission
  (a fork of a server that imported nbgrader once, see ``forkserver``);
- :mod:`~ftcourse.grading.report`: each submission's :class:`Result`, ``grades.csv``, the
  summary and the histogram;
- :mod:`~ftcourse.grading.gradebook`: the final scores recorded in the course's nbgrader
  gradebook, for formgrader and ``nbgrader export``;
- :mod:`~ftcourse.grading.engine`: grading one submission as a plain function, and the local
  pool of processes;
- :mod:`~ftcourse.grading.cluster`: the same function on a Dask cluster, each task carrying its
  files (Dask is imported only for ``--scheduler``/``--cluster``);
- :mod:`~ftcourse.grading.batch`: ``ftcourse grade``'s whole run, from the submissions to the
  report and the gradebook.

The engine uses nothing of the students' helpers: only :mod:`ftcourse.errors` and
:mod:`ftcourse.cache` (where Keras keeps its files), which both sides share, and never imports
TensorFlow itself (the trusted checks do, in their own process). The names below load on first
use, so that the worker and the sandbox launcher start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftcourse.grading.batch import grade_submissions as grade_submissions
    from ftcourse.grading.options import GradingOptions as GradingOptions
    from ftcourse.grading.release import release_all as release_all
    from ftcourse.grading.report import Result as Result
    from ftcourse.grading.sandbox import SandboxLimits as SandboxLimits
    from ftcourse.grading.verdicts import Probe as Probe
    from ftcourse.grading.verdicts import TrustedPart as TrustedPart
    from ftcourse.grading.verdicts import Verdict as Verdict

_EXPORTS = {
    "batch": ("grade_submissions",),
    "options": ("GradingOptions",),
    "release": ("release_all",),
    "report": ("Result",),
    "sandbox": ("SandboxLimits",),
    "verdicts": ("Probe", "TrustedPart", "Verdict"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    """Import an exported name the first time it is used."""
    if name in _HOME:
        value = getattr(importlib.import_module(f"ftcourse.grading.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ftcourse.grading' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
