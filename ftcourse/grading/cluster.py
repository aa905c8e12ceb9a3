"""Grading on a Dask cluster (``ftcourse grade --scheduler ADDRESS`` or ``--cluster local:N``).

:func:`grade_on_cluster` is the engine's other pool: it submits one task per submission to a
``dask.distributed`` scheduler and gathers the results as they finish. Workers share nothing
with the instructor's machine but the network: a task carries its submission's notebooks as
bytes (:class:`Job`) and the assignment's prepared scratch course as a :class:`Bundle`, a tar
named by its SHA-256, sent once to each worker that needs it and unpacked once per worker
process. A worker grades with
the engine's own :func:`~ftcourse.grading.engine.grade_one` (the same confined kernel, the same
trusted verdicts; a worker that cannot isolate says so in the row's ``isolated`` column) and
returns the :class:`~ftcourse.grading.report.Result` with the feedback and logs as bytes, which
the client writes into the output folder.

Faults: when a worker dies mid-task, the scheduler runs the task again on another worker, up to
its ``distributed.scheduler.allowed-failures`` (1 on the clusters ``local:N`` starts); past that
the submission gets a ``failed`` row saying so. Every submission gets exactly one row. A
scheduler that cannot be reached is a :class:`~ftcourse.errors.CourseError` before anything is
graded.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ftcourse.cache import keras_home
from ftcourse.errors import CourseError
from ftcourse.grading.engine import Guard, Task, failed, grade_one, threads_per_worker
from ftcourse.grading.options import GradingOptions
from ftcourse.grading.report import Result
from ftcourse.grading.submissions import Submission

LOCAL_PREFIX = "local:"
PROFILE_ENV = "FTCOURSE_PROFILE"  # ftcourse.config's, which the grading side does not import
CONNECT_TIMEOUT_S = 10
INSTALL_HINT = 'pip install "ftcourse[cluster]" (or, in a checkout, pip install -e ".[cluster]")'
# Retries of a task whose worker died, on the clusters that `local:N` starts.
LOCAL_ALLOWED_FAILURES = 1
# Per worker process: the bundles unpacked so far, by digest.
_UNPACKED: dict[str, Path] = {}


@dataclass(frozen=True)
class Bundle:
    """A folder as a tar archive, named by the SHA-256 of its bytes."""

    digest: str
    data: bytes

    @classmethod
    def of(cls, folder: Path) -> Bundle:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        data = buffer.getvalue()
        return cls(hashlib.sha256(data).hexdigest(), data)

    def unpack(self, into: Path) -> Path:
        """The bundle's folder under ``into`` (unpacked on first use in this process)."""
        if self.digest not in _UNPACKED or not _UNPACKED[self.digest].is_dir():
            target = into / self.digest[:16]
            shutil.rmtree(target, ignore_errors=True)
            with tarfile.open(fileobj=io.BytesIO(self.data)) as tar:
                tar.extractall(target, filter="data")
            _UNPACKED[self.digest] = target
        return _UNPACKED[self.digest]


@dataclass(frozen=True)
class Job:
    """One submission's grading as plain data that travels to any worker.

    ``hide`` lists the instructor's paths that a kernel must not see, where they exist on the
    worker (a cluster on the instructor's own machine).
    """

    student: str
    assignment: str
    source: str
    notebooks: dict[str, bytes]
    options: GradingOptions
    expected: tuple[str, ...]
    points: dict[str, float]
    hide: tuple[str, ...]


def job_of(task: Task) -> Job:
    """The :class:`Job` for an engine :class:`~ftcourse.grading.engine.Task`."""
    s = task.submission
    hide = tuple(str(p) for p in task.guard.hide) if task.guard else ()
    # The workers grade in this machine's profile, not whatever their own shell has.
    options = dataclasses.replace(task.options, profile=task.options.profile
                                  or os.environ.get(PROFILE_ENV))
    return Job(s.student, s.assignment, s.source,
               {name: path.read_bytes() for name, path in s.notebooks.items()},
               options, task.expected, dict(task.points), hide)


def run_job(job: Job, bundle: Bundle) -> tuple[Result, dict[str, bytes]]:
    """On a worker: grade ``job`` in scratch folders of this process; return the result and
    the files written for it (feedback, logs) by path relative to the output folder."""
    base = _worker_folder("ftcourse-worker-")
    template = bundle.unpack(base) / job.assignment
    with tempfile.TemporaryDirectory(dir=base) as scratch:
        work = Path(scratch)
        (work / "in").mkdir()
        for name, data in job.notebooks.items():
            (work / "in" / f"{name}.ipynb").write_bytes(data)
        notebooks = {name: work / "in" / f"{name}.ipynb" for name in job.notebooks}
        cache = job.options.keras_cache if job.options.keras_cache.is_dir() else keras_home()
        options = dataclasses.replace(job.options, output=work / "out", keras_cache=cache)
        guard = None
        if options.sandboxed:  # kernels live outside the hidden folders, as in local grading
            hide = [base, *(Path(p) for p in job.hide if Path(p).exists())]
            guard = Guard(_worker_folder("ftcourse-kernels-"), tuple(hide))
        task = Task(Submission(job.student, job.assignment, job.source, notebooks), template,
                    work / "runs", options, job.expected, job.points, guard,
                    threads_per_worker(_worker_threads()))
        result = grade_one(task)
        files = {path.relative_to(options.output).as_posix(): path.read_bytes()
                 for path in sorted(options.output.rglob("*")) if path.is_file()}
    return result, files


def grade_on_cluster(client: Any, tasks: list[Task], output: Path) -> list[Result]:
    """Grade each task on the cluster of ``client`` (see :func:`connect`), with a progress
    bar; write each task's files into ``output``."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    # A task that returns the bundle, rather than scattered data: the scheduler holds it and
    # makes it again if every worker that had it dies.
    bundles = {template: client.submit(_held, Bundle.of(template.parent), pure=False,
                                       key=f"bundle-{template.name}")
               for template in {t.template for t in tasks}}
    futures = {client.submit(run_job, job_of(t), bundles[t.template], pure=False,
                             key=f"grade-{i}-{t.submission.student}"): t
               for i, t in enumerate(tasks)}
    results = []
    for future in tqdm(as_completed(futures), total=len(futures), desc="Grading",
                       unit="submission"):
        results.append(_gathered(future, futures[future], output))
    return results


def _held(bundle: Bundle) -> Bundle:
    return bundle


def _gathered(future: Any, task: Task, output: Path) -> Result:
    """The task's result, its files written into ``output``; a ``failed`` row if it failed."""
    from distributed import KilledWorker

    try:
        result, files = future.result()
    except KilledWorker:
        return failed(task, "every Dask worker that graded it died (out of memory, killed?): "
                      "check the workers' logs and memory, then grade it again")
    except Exception as error:  # one task's failure never stops the batch
        return failed(task, f"the Dask task failed ({type(error).__name__}: {error}): check "
                      "that the workers run the same ftcourse as this machine, then grade it "
                      "again")
    for name, data in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            continue  # a worker writes only inside the output folder
        (output / relative).parent.mkdir(parents=True, exist_ok=True)
        (output / relative).write_bytes(data)
    return result


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address``; ``local:N`` starts a ``LocalCluster`` of N
    one-thread worker processes for the duration. Raises ``CourseError`` when Dask is missing
    or the scheduler cannot be reached."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise CourseError(f"Grading on a cluster needs Dask: {INSTALL_HINT}.") from None
    if address.startswith(LOCAL_PREFIX):
        workers = _local_size(address)
        with dask.config.set({"distributed.scheduler.allowed-failures": LOCAL_ALLOWED_FAILURES}), \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as error:
        raise CourseError(
            f"Could not reach the Dask scheduler at {address} ({error}). Start it with "
            "`dask scheduler` and check the address (tcp://HOST:8786) and the firewall; "
            "nothing was graded.") from None
    with client:
        yield client


def _local_size(address: str) -> int:
    count = address.removeprefix(LOCAL_PREFIX)
    if not count.isdigit() or int(count) < 1:
        raise CourseError(f"--cluster {address!r}: give local:N with N the number of worker "
                          "processes, e.g. local:4.")
    return int(count)


@functools.cache
def _worker_folder(prefix: str) -> Path:
    """A folder of this worker process that only its user can enter, removed when the
    process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _worker_threads() -> int:
    """How many tasks this Dask worker runs at once (1 outside a worker)."""
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return 1
