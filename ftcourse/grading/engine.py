"""The instructor's grading: autograde every submission, write feedback, grades and a summary.

Each submission is graded by nbgrader in its own scratch course folder (its own copy of the
assignment and its own gradebook) by a separate process, so one submission cannot touch another's
files, a crash or an endless loop stops only that process, and several can run at once. Before
the feedback is written, hidden tests are removed from the graded notebook and the errors they
raised are replaced by a neutral message.

The kernel runs confined (:mod:`ftcourse.sandbox`). Where an assignment has
``solutions/<assignment>/trusted_checks.py``, nbgrader's in-kernel score is only an upper bound:
a hand-over cell appended to the notebook saves each part's results (and the student's functions
called on inputs drawn now) as plain data into a fresh outbox, and :mod:`ftcourse.verdicts`
judges them in a process that never runs student code. Each part scores the lower of the two.
Introduced in the instructor's guide (README).
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from ftcourse import autograde, sandbox, verdicts
from ftcourse.errors import CourseError
from ftcourse.submissions import (
    SOURCE_DIRECTORY,
    Assignment,
    Submission,
    collect_submissions,
    find_assignments,
    read_parts,
)

NOTEBOOK_TIMEOUT_S = 1800
MAX_ARTIFACTS_BYTES = 1024 * 2**20
WORKER = Path(autograde.__file__)
# Run the worker by path, so that the child does not import the ftcourse package (TensorFlow).
_TEMPLATES: dict[tuple[str, str], Path] = {}
_RUN_WORKER = ("import runpy, sys; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")


@dataclass
class Result:
    """The outcome of grading one submission (status ``graded`` or why it failed)."""

    student: str
    assignment: str
    source: str
    status: str
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    notes: str = ""
    isolated: bool | None = None
    trusted: bool = False

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def release_all(course_dir: Path) -> int:
    """Regenerate ``exercises/`` from ``solutions/`` (see :mod:`ftcourse.release`)."""
    from ftcourse.release import release_all as release

    return release(course_dir)


def grade_submissions(submissions: Path, assignment: str | None, course_dir: Path,
                      output: Path, workers: int = 1, timeout: float = NOTEBOOK_TIMEOUT_S,
                      cell_timeout: int | None = None, sandboxed: bool = True,
                      trusted: bool = True) -> int:
    """Grade a folder of submissions; return 0 if every one was graded, else 1.

    Writes ``output/grades.csv``, ``output/feedback/<student>/<notebook>.html``,
    ``output/scores_histogram.png`` and, for failures, ``output/logs/``. ``sandboxed`` runs each
    kernel confined (isolated where :func:`ftcourse.sandbox.isolation_available`); ``trusted``
    caps each part by the verdict of ``trusted_checks.py`` where the assignment has one.
    """
    if workers < 1:
        raise CourseError(f"--workers must be at least 1, not {workers}.")
    course_dir, output = Path(course_dir).resolve(), Path(output)
    assignments = find_assignments(course_dir)
    with (tempfile.TemporaryDirectory(prefix="ftcourse-grade-") as scratch,
          tempfile.TemporaryDirectory(prefix="ftcourse-kernels-") as kernels):
        work = Path(scratch)
        found = collect_submissions(Path(submissions), assignments, work / "unpacked", assignment)
        todo = [s for s in found if not s.status]
        results = [Result(s.student, s.assignment, s.source, s.status, s.reason)
                   for s in found if s.status]
        templates = {name: cached_template(course_dir, name)
                     for name in sorted({s.assignment for s in todo})}
        expected = {name: a.notebooks for name, a in assignments.items()}
        output.mkdir(parents=True, exist_ok=True)
        guard = None
        if sandboxed:
            hide = [work, output.resolve(), course_dir / SOURCE_DIRECTORY,
                    *{t.parent for t in templates.values()}]
            hide += [p for p in [course_dir / "gradebook.db"] if p.exists()]
            guard = Guard(Path(kernels), hide)
        points = {name: {p.grade_id: p.points for p in a.parts} for name, a in assignments.items()}
        results += grade_all(todo, templates, work, output, workers, timeout, cell_timeout,
                             expected, guard=guard, trusted=trusted, points=points)
    results.sort(key=lambda r: (r.assignment, r.student, r.source))
    write_grades_csv(results, assignments, output / "grades.csv")
    print(summary(results, assignments))
    if any(r.scores for r in results):
        save_histogram(results, assignments, output / "scores_histogram.png")
    print(f"Wrote {output / 'grades.csv'} and feedback in {output / 'feedback'}.")
    return 0 if all(r.status == "graded" for r in results) else 1


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
    for path in [*files, course_dir / "nbgrader_config.py"]:
        if path.is_file():
            digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prepare_template(course_dir: Path, assignment: str, template: Path) -> Path:
    """A scratch course folder holding one assignment and a gradebook that knows it."""
    shutil.copytree(course_dir / SOURCE_DIRECTORY / assignment,
                    template / SOURCE_DIRECTORY / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    config = course_dir / "nbgrader_config.py"
    if config.is_file():
        shutil.copy(config, template / "nbgrader_config.py")
    api = autograde.nbgrader_api(template)
    result = api.generate_assignment(assignment)
    if not result["success"]:
        raise CourseError(f"nbgrader could not generate {assignment} from {SOURCE_DIRECTORY}/; "
                          f"run `ftcourse release` to see why.\n{result.get('error', '')}")
    return template


@dataclass(frozen=True)
class Guard:
    """How kernels are confined: a root-only folder for their scratch and outboxes, and the
    paths they must not see."""

    kernels: Path
    hide: list[Path]


def grade_all(todo: list[Submission], templates: dict[str, Path], work: Path, output: Path,
              workers: int, timeout: float, cell_timeout: int | None,
              expected: dict[str, tuple[str, ...]] | None = None, guard: Guard | None = None,
              trusted: bool = True, points: dict[str, dict[str, float]] | None = None
              ) -> list[Result]:
    """Grade each submission in its own process, ``workers`` at a time, with a progress bar."""
    from tqdm.auto import tqdm

    results, expected, points = [], expected or {}, points or {}
    threads = threads_per_worker(workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(grade_one, s, templates[s.assignment], work / "runs", output,
                               timeout, cell_timeout, expected.get(s.assignment, ()),
                               guard=guard, trusted=trusted,
                               points=points.get(s.assignment, {}),
                               threads=threads): s
                   for s in todo}
        for future in tqdm(as_completed(futures), total=len(futures), desc="Grading",
                           unit="submission"):
            try:
                results.append(future.result())
            except Exception as error:  # keep grading the others; report this one
                s = futures[future]
                results.append(Result(s.student, s.assignment, s.source, "failed",
                                      f"the grader failed ({type(error).__name__}: {error})"))
    return results


def grade_one(submission: Submission, template: Path, runs: Path, output: Path,
              timeout: float, cell_timeout: int | None,
              expected: Iterable[str] = (), guard: Guard | None = None, trusted: bool = True,
              points: dict[str, float] | None = None, threads: int | None = None) -> Result:
    """Autograde one submission in a scratch copy of the course; never raises.

    ``threads`` caps TensorFlow's thread pools in its kernel and trusted checks.
    """
    started = time.monotonic()
    root = runs / f"{submission.assignment}--{submission.student}"
    shutil.copytree(template, root)
    target = root / "submitted" / submission.student / submission.assignment
    target.mkdir(parents=True)
    for name, path in submission.notebooks.items():
        shutil.copy(path, target / f"{name}.ipynb")
    result = Result(submission.student, submission.assignment, submission.source, "failed")
    env = _kernel_env(threads)
    kernel_dir = None
    if guard is not None:
        kernel_dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=guard.kernels))
        for sub in ("scratch", "outbox"):
            (kernel_dir / sub).mkdir()
        result.isolated = sandbox.isolation_available()
        env.update(sandbox.write_kernelspec(kernel_dir / "spec", kernel_dir / "scratch",
                                            guard.hide, outbox=kernel_dir / "outbox"))
    checks_file = template / SOURCE_DIRECTORY / submission.assignment / verdicts.TRUSTED_CHECKS_FILE
    parts, drawn = [], {}
    if trusted and checks_file.is_file():
        outbox = (kernel_dir or root) / "outbox"
        outbox.mkdir(exist_ok=True)
        inside = (sandbox.kernel_outbox(kernel_dir / "scratch", outbox, bool(result.isolated))
                  if kernel_dir else outbox)
        parts = verdicts.load_trusted_parts(checks_file)
        drawn = verdicts.draw_values(parts)
        result.trusted = True
        append_handover(template / SOURCE_DIRECTORY / submission.assignment, target, parts,
                        inside, drawn)
    command = [sys.executable, "-c", _RUN_WORKER, str(WORKER), str(root), submission.assignment,
               submission.student, str(cell_timeout or "")]
    log = root / "grading.log"
    with open(log, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   env=env, cwd=root, start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)
            process.wait()
            result.status = "timeout"
            result.reason = f"grading took longer than {timeout:g} s (an endless loop?)"
    outcome = root / autograde.RESULT_FILE
    if result.status != "timeout":
        if outcome.is_file():
            data = json.loads(outcome.read_text(encoding="utf-8"))
            result.status, result.reason = data["status"], data["reason"]
            result.scores = data["scores"]
        else:
            result.reason = f"the grading process stopped (exit code {process.returncode})"
    missing = sorted(set(expected) - set(submission.notebooks))
    if result.status == "graded" and missing:
        result.status = "incomplete"
        result.reason = f"missing {', '.join(m + '.ipynb' for m in missing)} (scored 0)"
    earned = [grade_id for grade_id, score in result.scores.items() if score > 0]
    if parts and earned:  # a verdict only ever lowers a score: judge the parts that scored
        artifacts = collect_artifacts((kernel_dir or root) / "outbox", root / "artifacts")
        found = verdicts.judge(checks_file, artifacts, drawn=drawn, env=env, only=earned)
        result.notes = apply_verdicts(result, found, points or {})
        if result.notes:
            note_feedback(root / "feedback" / submission.student / submission.assignment,
                          result.notes)
    _collect_outputs(root, submission, output, keep_log=result.status != "graded")
    result.seconds = time.monotonic() - started
    shutil.rmtree(root, ignore_errors=True)
    if kernel_dir is not None:
        shutil.rmtree(kernel_dir, ignore_errors=True)
    return result


def append_handover(source: Path, target: Path, parts: list[verdicts.TrustedPart],
                    inside: Path, drawn: dict) -> None:
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


def apply_verdicts(result: Result, found: dict[str, verdicts.Verdict],
                   points: dict[str, float]) -> str:
    """Cap each part by its trusted verdict; return notes on the parts that lost points."""
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
    return "; ".join(notes)


def note_feedback(folder: Path, notes: str) -> None:
    """Put the trusted grading notes at the top of each feedback page."""
    block = ('<div class="ftcourse-trusted" style="border:2px solid #c00;padding:8px;'
             'margin:8px"><p><b>Trusted grading changed your score:</b></p><ul>'
             + "".join(f"<li>{escape(note)}</li>" for note in notes.split("; "))
             + "</ul></div>")
    for page in folder.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        at = text.find(">", text.find("<body")) + 1 if "<body" in text else 0
        page.write_text(text[:at] + block + text[at:], encoding="utf-8")


def _kernel_env(threads: int | None = None) -> dict[str, str]:
    """The instructor's environment (``FTCOURSE_PROFILE`` included), with quiet, headless
    plotting and TensorFlow logs, and at most ``threads`` threads per TensorFlow pool unless
    the instructor set them."""
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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


def kill_tree(pid: int) -> None:
    """Kill a process and all its children (the kernel runs in a session of its own)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(family, timeout=10)


def _collect_outputs(root: Path, submission: Submission, output: Path, keep_log: bool) -> None:
    feedback = root / "feedback" / submission.student / submission.assignment
    for html in sorted(feedback.glob("*.html")):
        destination = output / "feedback" / submission.student
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy(html, destination / html.name)
    if keep_log and (root / "grading.log").is_file():
        (output / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "grading.log",
                    output / "logs" / f"{submission.student}--{submission.assignment}.log")


# --- Report -------------------------------------------------------------------------------------


def part_columns(results: Iterable[Result], assignments: dict[str, Assignment]) -> list[str]:
    """The grade_ids of every assignment in the results, in notebook order, without repeats."""
    names = {r.assignment for r in results}
    columns: list[str] = []
    for name in sorted(names & set(assignments)):
        columns += [p.grade_id for p in assignments[name].parts if p.grade_id not in columns]
    return columns


def write_grades_csv(results: list[Result], assignments: dict[str, Assignment],
                     path: Path) -> Path:
    """One row per submission: scores by grade_id, total, max, status, reason and the seconds
    its grading took (0 for one that was never run)."""
    columns = part_columns(results, assignments)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", *columns, "total", "max", "status", "reason",
                         "source", "isolated", "trusted", "notes", "seconds"])
        for r in results:
            known = assignments.get(r.assignment)
            cells = [_number(r.scores[c]) if c in r.scores else "" for c in columns]
            writer.writerow([r.student, r.assignment, *cells, _number(r.total),
                             _number(known.max_score) if known else "", r.status, r.reason,
                             r.source, "" if r.isolated is None else str(r.isolated).lower(),
                             str(r.trusted).lower(), r.notes, f"{r.seconds:.1f}"])
    return path


def _number(value: float) -> str:
    return f"{value:g}"


def summary(results: list[Result], assignments: dict[str, Assignment]) -> str:
    """Per assignment and part: mean, median, full marks; then every failure by name.

    Submissions with scores count, including those with a cell that timed out.
    """
    lines = []
    for name in sorted({r.assignment for r in results} & set(assignments)):
        graded = [r for r in results if r.assignment == name and r.scores]
        lines.append(f"\n{name}: {len(graded)} scored")
        if not graded:
            continue
        lines.append(f"  {'part':<32} {'mean':>6} {'median':>7} {'full marks':>11}")
        assignment = assignments[name]
        rows = [(p.grade_id, p.points, [r.scores.get(p.grade_id, 0.0) for r in graded])
                for p in assignment.parts]
        rows.append(("total", assignment.max_score, [r.total for r in graded]))
        for label, points, values in rows:
            full = sum(v >= points for v in values)
            lines.append(f"  {label + f' ({points:g})':<32} {statistics.mean(values):>6.2f} "
                         f"{statistics.median(values):>7.2f} {f'{full}/{len(values)}':>11}")
    failed = [r for r in results if r.status != "graded"]
    if failed:
        lines.append(f"\n{len(failed)} submission(s) need attention:")
        lines += [f"  {r.source} ({r.student}, {r.assignment or '?'}): {r.status}: {r.reason}"
                  for r in failed]
    return "\n".join(lines)


def save_histogram(results: list[Result], assignments: dict[str, Assignment],
                   path: Path) -> Path:
    """A histogram of total scores, one panel per assignment (a Figure, no pyplot)."""
    from matplotlib.figure import Figure

    names = sorted({r.assignment for r in results if r.scores} & set(assignments))
    figure = Figure(figsize=(6, 2.6 * len(names)), layout="constrained")
    for axes, name in zip(figure.subplots(len(names), 1, squeeze=False)[:, 0], names,
                          strict=True):
        totals = [r.total for r in results if r.assignment == name and r.scores]
        top = assignments[name].max_score
        axes.hist(totals, bins=min(20, max(5, int(top) + 1)), range=(0, max(top, 1)),
                  color="tab:blue", edgecolor="white")
        axes.set(title=f"{name} ({len(totals)} scored)", xlabel=f"total score (of {top:g})",
                 ylabel="students")
        axes.yaxis.get_major_locator().set_params(integer=True)
    figure.savefig(path, dpi=100)
    return path
