"""Grading one submission, and the local pool that grades many on this machine.

:func:`grade_one` is a plain function of plain data (a :class:`Task`) that returns a
:class:`Result` and never raises, whichever pool runs it: :func:`grade_all` (``workers``
threads, each driving a grading process) or a Dask worker (:mod:`~ftcourse.grading.cluster`).

Each submission is graded by nbgrader in its own scratch course folder (its own copy of the
assignment and its own gradebook) by a separate process (:mod:`~ftcourse.grading.worker`), so one
submission cannot touch another's files, a crash or an endless loop stops only that process, and
several can run at once (each process is a fork of one server that imported nbgrader once).
The kernel runs confined (:mod:`~ftcourse.grading.sandbox`). Where an
assignment has ``solutions/<assignment>/trusted_checks.py``, nbgrader's in-kernel score is only
an upper bound: a hand-over cell appended to the notebook saves each part's results (and the
student's functions called on inputs drawn now) as plain data into a fresh outbox, and
:mod:`~ftcourse.grading.verdicts` judges them in a process that never runs student code. Each
part scores the lower of the two.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftcourse.errors import CourseError
from ftcourse.grading import forkserver, sandbox, verdicts, worker
from ftcourse.grading.course import (
    CONFIG_FILE,
    SOURCE_DIRECTORY,
    TRUSTED_CHECKS_FILE,
    nbgrader_api,
    read_parts,
)
from ftcourse.grading.options import GradingOptions
from ftcourse.grading.report import Result
from ftcourse.grading.submissions import Submission

MAX_ARTIFACTS_BYTES = 1024 * 2**20
# Where grade_one leaves the autograded notebooks (hidden tests included) for the batch to move
# into the course's autograded/ folder, which formgrader reads.
STAGED_AUTOGRADED = ".autograded"
FEEDBACK_TIMEOUT_S = 600
# Forks one grading process per submission, with nbgrader imported once.
WORKERS = forkserver.Server(preload=worker.PRELOAD)
_TEMPLATES: dict[tuple[str, str], Path] = {}


@dataclass(frozen=True)
class Guard:
    """How kernels are confined: a root-only folder for their scratch and outboxes, and the
    paths they must not see."""

    kernels: Path
    hide: tuple[Path, ...]


@dataclass(frozen=True)
class Task:
    """Everything :func:`grade_one` needs to grade one submission, as plain data.

    ``template`` is the assignment's scratch course (:func:`cached_template`), ``runs`` the
    folder for this submission's scratch copy of it, ``expected`` the assignment's notebooks,
    ``points`` each part's points, ``threads`` the cap on TensorFlow's thread pools.
    """

    submission: Submission
    template: Path
    runs: Path
    options: GradingOptions
    expected: tuple[str, ...] = ()
    points: Mapping[str, float] = field(default_factory=dict)
    guard: Guard | None = None
    threads: int | None = None


def grade_all(tasks: list[Task], workers: int) -> list[Result]:
    """Grade each task, ``workers`` at a time, with a progress bar."""
    from tqdm.auto import tqdm

    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(grade_one, task): task for task in tasks}
        for future in tqdm(as_completed(futures), total=len(futures), desc="Grading",
                           unit="submission"):
            try:
                results.append(future.result())
            except Exception as error:  # keep grading the others; report this one
                results.append(failed(futures[future], f"the grader failed "
                                      f"({type(error).__name__}: {error}), not the "
                                      "submission: fix the cause, then grade it again"))
    return results


def failed(task: Task, reason: str) -> Result:
    """The ``failed`` row of a task that returned no result, saying ``reason``."""
    s = task.submission
    return Result(s.student, s.assignment, s.source, "failed", reason)


def cached_template(course_dir: Path, assignment: str) -> Path:
    """The scratch template of an assignment, made once per process for the same sources.

    Making one creates a gradebook, which takes nbgrader several seconds.
    """
    key = (assignment, _fingerprint(course_dir, assignment))
    if key not in _TEMPLATES or not _TEMPLATES[key].is_dir():
        home = Path(tempfile.mkdtemp(prefix="ftcourse-template-"))
        atexit.register(shutil.rmtree, home, True)
        _TEMPLATES[key] = prepare_template(course_dir, assignment, home / assignment)
    return _TEMPLATES[key]


def _fingerprint(course_dir: Path, assignment: str) -> str:
    digest = hashlib.sha256()
    files = sorted((course_dir / SOURCE_DIRECTORY / assignment).rglob("*"))
    for path in [*files, course_dir / CONFIG_FILE]:
        if path.is_file():
            digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prepare_template(course_dir: Path, assignment: str, template: Path) -> Path:
    """A scratch course folder holding one assignment and a gradebook that knows it."""
    shutil.copytree(course_dir / SOURCE_DIRECTORY / assignment,
                    template / SOURCE_DIRECTORY / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    config = course_dir / CONFIG_FILE
    if config.is_file():
        shutil.copy(config, template / CONFIG_FILE)
    result = nbgrader_api(template).generate_assignment(assignment)
    if not result["success"]:
        raise CourseError(f"nbgrader could not generate {assignment} from {SOURCE_DIRECTORY}/; "
                          f"run `ftcourse release` to see why.\n{result.get('error', '')}")
    return template


def grade_one(task: Task) -> Result:
    """Autograde one submission in a scratch copy of the course; never raises."""
    started = time.monotonic()
    submission, template, options = task.submission, task.template, task.options
    root = task.runs / f"{submission.assignment}--{submission.student}"
    shutil.copytree(template, root)
    target = root / "submitted" / submission.student / submission.assignment
    target.mkdir(parents=True)
    for name, path in submission.notebooks.items():
        shutil.copy(path, target / f"{name}.ipynb")
    result = Result(submission.student, submission.assignment, submission.source, "failed")
    env = kernel_env(task.threads, options.profile)
    kernel_dir = None
    if task.guard is not None:
        kernel_dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=task.guard.kernels))
        for sub in ("scratch", "outbox"):
            (kernel_dir / sub).mkdir()
        result.isolated = (sandbox.isolation_available() if options.isolate is None
                           else options.isolate)
        env.update(sandbox.write_kernelspec(
            kernel_dir / "spec", kernel_dir / "scratch", task.guard.hide, limits=options.limits,
            keras_cache=options.keras_cache, isolate=result.isolated,
            outbox=kernel_dir / "outbox"))
    source = template / SOURCE_DIRECTORY / submission.assignment
    checks_file = source / TRUSTED_CHECKS_FILE
    parts: list[verdicts.TrustedPart] = []
    drawn: dict[str, dict[str, Any]] = {}
    if options.trusted and checks_file.is_file():
        outbox = (kernel_dir or root) / "outbox"
        outbox.mkdir(exist_ok=True)
        inside = (sandbox.kernel_outbox(kernel_dir / "scratch", outbox, bool(result.isolated))
                  if kernel_dir else outbox)
        parts = verdicts.load_trusted_parts(checks_file)
        drawn = verdicts.draw_values(parts)
        result.trusted = True
        append_handover(source, target, parts, inside, drawn)
    autograde(result, root, options, env)
    missing = sorted(set(task.expected) - set(submission.notebooks))
    if result.status == "graded" and missing:
        result.status = "incomplete"
        result.reason = (f"missing {', '.join(m + '.ipynb' for m in missing)} (scored 0): ask "
                         "the student for it and grade again")
    earned = [grade_id for grade_id, score in result.scores.items() if score > 0]
    if parts and earned:  # a verdict only ever lowers a score: judge the parts that scored
        artifacts = collect_artifacts((kernel_dir or root) / "outbox", root / "artifacts")
        found = verdicts.judge(checks_file, artifacts, timeout_s=options.judge_timeout,
                               drawn=drawn, env=env, only=earned)
        notes = apply_verdicts(result, found, task.points)
        result.notes = "; ".join(notes)
        if notes:
            rewrite_feedback(root, submission, notes, env)
    _collect_outputs(root, submission, options.output, keep_log=result.status != "graded",
                     keep_autograded=options.gradebook)
    result.seconds = time.monotonic() - started
    shutil.rmtree(root, ignore_errors=True)
    if kernel_dir is not None:
        shutil.rmtree(kernel_dir, ignore_errors=True)
    return result


def autograde(result: Result, root: Path, options: GradingOptions,
              env: Mapping[str, str]) -> None:
    """Autograde ``root`` in a fork of the grading server (:mod:`~ftcourse.grading.worker`)
    and fill ``result`` with its outcome."""
    try:
        outcome = WORKERS.call(
            "ftcourse.grading.worker:grade_in_fork",
            [str(root), result.assignment, result.student, options.cell_timeout,
             str(root / "grading.log")], env, timeout_s=options.timeout)
    except forkserver.Stopped as stopped:
        if stopped.over:
            result.status = "timeout"
            result.reason = (f"grading took longer than {options.timeout:g} s (an endless "
                             "loop?): read its log in logs/, and raise --timeout if the "
                             "notebook is only slow")
        else:
            result.reason = (f"the grading process stopped ({stopped}): read its log in "
                             "logs/, then grade it again")
        return
    result.status, result.reason = outcome["status"], outcome["reason"]
    result.scores = outcome["scores"]


def append_handover(source: Path, target: Path, parts: list[verdicts.TrustedPart],
                    inside: Path, drawn: Mapping[str, Mapping[str, Any]]) -> None:
    """Append the hand-over cell to each submitted notebook, for the parts it holds."""
    import nbformat

    for notebook in sorted(target.glob("*.ipynb")):
        ids = {p.grade_id for p in read_parts(source / notebook.name)} if (
            source / notebook.name).is_file() else set()
        mine = [part for part in parts if part.grade_id in ids]
        if not mine:
            continue
        nb = nbformat.read(notebook, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(verdicts.export_source(mine, inside, drawn)))
        nbformat.write(nb, notebook)


def collect_artifacts(outbox: Path, destination: Path) -> Path:
    """Copy the plain files a kernel left in its outbox into a folder only the grader writes.

    Links, folders and anything past the size budget are left behind, so a process the kernel
    left running cannot change what is judged.
    """
    destination.mkdir(parents=True, exist_ok=True)
    budget = MAX_ARTIFACTS_BYTES
    if not outbox.is_dir():
        return destination
    for entry in sorted(os.scandir(outbox), key=lambda e: e.name):
        if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
            continue
        size = entry.stat(follow_symlinks=False).st_size
        if size > min(budget, verdicts.MAX_ARTIFACT_BYTES):
            continue
        budget -= size
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(entry.path, flags), "rb") as source, \
                open(destination / entry.name, "wb") as copy:
            shutil.copyfileobj(source, copy)
    return destination


def apply_verdicts(result: Result, found: Mapping[str, verdicts.Verdict],
                   points: Mapping[str, float]) -> list[str]:
    """Cap each part by its trusted verdict; return a note on each part that lost points."""
    notes = []
    for grade_id, score in list(result.scores.items()):
        verdict = found.get(grade_id)
        if verdict is None:
            continue
        full = points.get(grade_id, score)
        final = min(score, verdict.fraction * full)
        if final < score:
            result.scores[grade_id] = final
            notes.append(f"{grade_id}: {final:g} of {full:g} after the trusted check "
                         f"(the notebook's own tests gave {score:g}): {verdict.reason}")
    return notes


def rewrite_feedback(root: Path, submission: Submission, notes: list[str],
                     env: Mapping[str, str]) -> None:
    """Write the feedback again, in a fork of the grading server like the first time, with the
    trusted grading's notes at the top (:class:`~ftcourse.grading.feedback.TrustedNotes`)."""
    with contextlib.suppress(forkserver.Stopped):
        WORKERS.call("ftcourse.grading.worker:feedback_in_fork",
                     [str(root), submission.assignment, submission.student, notes,
                      str(root / "grading.log")], env, timeout_s=FEEDBACK_TIMEOUT_S)


def kernel_env(threads: int | None = None, profile: str | None = None) -> dict[str, str]:
    """The instructor's environment (``FTCOURSE_PROFILE`` included, or ``profile``), with
    quiet, headless plotting and TensorFlow logs, and at most ``threads`` threads per
    TensorFlow pool unless the instructor set them."""
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if profile is not None:
        env["FTCOURSE_PROFILE"] = profile
    if threads:
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            env.setdefault(name, str(threads))
    return env


def threads_per_worker(workers: int) -> int:
    """The CPU cores this process may use, shared among ``workers`` (at least one each).

    Several kernels that each start a thread per core spend their time switching threads.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // workers)


def _collect_outputs(root: Path, submission: Submission, output: Path, keep_log: bool,
                     keep_autograded: bool) -> None:
    """Copy the feedback, the log (``keep_log``) and the autograded notebooks
    (``keep_autograded``, into ``output/STAGED_AUTOGRADED``) out of the scratch course."""
    if keep_autograded:
        graded = root / "autograded" / submission.student / submission.assignment
        staged = output / STAGED_AUTOGRADED / submission.student / submission.assignment
        for notebook in sorted(graded.glob("*.ipynb")):
            staged.mkdir(parents=True, exist_ok=True)
            shutil.copy(notebook, staged / notebook.name)
    feedback = root / "feedback" / submission.student / submission.assignment
    for html in sorted(feedback.glob("*.html")):
        destination = output / "feedback" / submission.student
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy(html, destination / html.name)
    if keep_log and (root / "grading.log").is_file():
        (output / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "grading.log",
                    output / "logs" / f"{submission.student}--{submission.assignment}.log")
