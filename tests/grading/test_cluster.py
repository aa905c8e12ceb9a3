"""Grading on a Dask cluster: the same grades.csv as the local pool, no submission lost when a
worker dies mid-task, the trusted checks on the worker, a clear error when the scheduler cannot
be reached.

The clusters are real ``LocalCluster``s of worker processes; the course holds the tiny
assignment (statuses, feedback) and the mini one (trusted checks), both without TensorFlow."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
from tiny import CORRECT, COURSES, TINY, read_rows, tiny_with

from ftcourse.errors import CourseError
from ftcourse.grading import cluster
from ftcourse.grading.batch import grade_submissions
from ftcourse.grading.options import GradingOptions

MINI = "mini"
# Lets the in-kernel tests pass with a wrong answer; the trusted check, outside, sees it.
MINI_CHEAT = "def circle_area(radius):\n    return 0.0\nmath.isclose = lambda *a, **k: True"
SLOW = "import time\ntime.sleep(3)\n" + CORRECT["add"]
KILLED = "sam"  # whose grading loses its worker


@pytest.fixture(scope="module")
def course(tiny_course: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("course") / "course"
    shutil.copytree(tiny_course, course)
    shutil.copytree(COURSES / MINI / "solutions" / MINI, course / "solutions" / MINI)
    return course


@pytest.fixture(scope="module")
def lms(course: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good, partial (zipped), broken and slow submissions of the tiny assignment (the other
    statuses' cases are in test_engine)."""
    folder = tmp_path_factory.mktemp("lms")
    nbformat.write(tiny_with(course, **CORRECT), folder / f"alice_{TINY}.ipynb")
    with zipfile.ZipFile(folder / "carol.zip", "w") as zipped:
        zipped.writestr(f"carol/{TINY}.ipynb",
                        nbformat.writes(tiny_with(course, add=CORRECT["add"])))
    (folder / f"dave_{TINY}.ipynb").write_text('{"cells": [', encoding="utf-8")
    nbformat.write(tiny_with(course, add=SLOW, double=CORRECT["double"]),
                   folder / f"{KILLED}_{TINY}.ipynb")
    return folder


def mini_cheat(course: Path) -> nbformat.NotebookNode:
    mini = nbformat.read(course / "solutions" / MINI / f"{MINI}.ipynb", as_version=4)
    for cell in mini.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "part_a_area":
            cell.source = MINI_CHEAT
    return mini


def rows_without_times(output: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in read_rows(output / "grades.csv")]


def grades_now(pid: int, student: str) -> bool:
    """Whether the worker process ``pid`` is grading ``student`` with a kernel running: one
    task at a time, in a scratch course named ``<assignment>--<student>``."""
    family = psutil.Process(pid).children(recursive=True)
    commands, folders = [], []
    for process in family:
        with contextlib.suppress(psutil.Error):
            commands.append(" ".join(process.cmdline()))
            folders.append(process.cwd())
    return (any("ipykernel_launcher" in c for c in commands)
            and any(f"--{student}" in f for f in folders))


def kill_when_grading(client, student: str, killed: list[int], deadline_s: float = 120) -> None:
    """Kill (SIGKILL) the worker process that grades ``student`` once its kernel runs."""
    pids = client.run(os.getpid)
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        for worker, keys in client.processing().items():
            if (any(key.endswith(f"-{student}") for key in keys) and worker in pids
                    and grades_now(pids[worker], student)):
                os.kill(pids[worker], signal.SIGKILL)
                killed.append(pids[worker])
                return
        time.sleep(0.1)


def grade_killing_once(submissions: Path, course: Path, output: Path, workers: int,
                       allowed_failures: int) -> list[int]:
    """Grade on a fresh LocalCluster whose scheduler allows ``allowed_failures`` retries, and
    kill the worker that grades KILLED once; return the killed pids."""
    import dask
    from distributed import Client, LocalCluster

    killed: list[int] = []
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}), \
            LocalCluster(n_workers=workers, threads_per_worker=1,
                         dashboard_address=None) as dask_cluster, \
            Client(dask_cluster) as client:
        spy = threading.Thread(target=kill_when_grading, args=(client, KILLED, killed))
        spy.start()
        grade_submissions(submissions, course, GradingOptions(
            output=output, cell_timeout=5, scheduler=dask_cluster.scheduler_address,
            gradebook=False))
        spy.join()
    assert killed, f"{KILLED}'s worker was never seen grading"
    return killed


def test_a_cluster_grades_like_the_local_pool_and_survives_a_killed_worker(
        course: Path, lms: Path, tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    grade_submissions(lms, course, GradingOptions(output=local, workers=2, cell_timeout=5,
                                                  gradebook=False))
    grade_killing_once(lms, course, remote, workers=2, allowed_failures=1)
    assert rows_without_times(remote) == rows_without_times(local)
    rows = {(r["student"], r["assignment"]): r for r in rows_without_times(remote)}
    assert len(rows) == 4  # one row per submission, the killed one graded on its retry
    assert (rows[KILLED, TINY]["status"], rows[KILLED, TINY]["total"]) == ("graded", "5")
    assert sorted(p.name for p in (remote / "feedback").iterdir()) == sorted(
        p.name for p in (local / "feedback").iterdir())
    assert rows["carol", TINY]["total"] == "2" and rows["dave", TINY]["status"] == "invalid"


def test_a_task_whose_worker_dies_past_the_retries_gets_a_failed_row(
        course: Path, tmp_path: Path) -> None:
    """No retry allowed: the row says failed and why. (Dask counts a worker's death against
    every task queued on it too, so the submission is graded alone.)"""
    (tmp_path / "in").mkdir()
    nbformat.write(tiny_with(course, add=SLOW, double=CORRECT["double"]),
                   tmp_path / "in" / f"{KILLED}_{TINY}.ipynb")
    grade_killing_once(tmp_path / "in", course, tmp_path / "out", workers=1,
                       allowed_failures=0)
    [row] = read_rows(tmp_path / "out" / "grades.csv")
    assert (row["student"], row["status"]) == (KILLED, "failed")
    assert "every Dask worker that graded it died" in row["reason"]


def test_a_local_cluster_is_started_and_its_worker_runs_the_trusted_checks(
        course: Path, tmp_path: Path) -> None:
    nbformat.write(mini_cheat(course), tmp_path / f"mallory_{MINI}.ipynb")
    output = tmp_path / "out"
    assert grade_submissions(tmp_path, course, GradingOptions(output=output,
                                                              scheduler="local:1",
                                                              gradebook=False)) == 0
    [row] = read_rows(output / "grades.csv")
    assert (row["trusted"], row["test_part_a_area"], row["test_part_b_mean"]) == (
        "true", "0", "2")
    assert "after the trusted check" in row["notes"]


def test_an_unreachable_scheduler_stops_before_grading(course: Path, lms: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(CourseError, match=r"Could not reach the Dask scheduler.*nothing"):
        grade_submissions(lms, course, GradingOptions(output=tmp_path / "out",
                                                      scheduler="tcp://127.0.0.1:9"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(CourseError, match="local:N"):
        grade_submissions(lms, course, GradingOptions(output=tmp_path / "out",
                                                      scheduler="local:0"))


def test_a_bundle_unpacks_to_the_same_files(tmp_path: Path) -> None:
    (tmp_path / "course" / "sub").mkdir(parents=True)
    (tmp_path / "course" / "sub" / "a.txt").write_text("a")
    bundle = cluster.Bundle.of(tmp_path / "course")
    assert bundle == cluster.Bundle.of(tmp_path / "course")  # named by its content
    unpacked = bundle.unpack(tmp_path / "worker")
    assert (unpacked / "sub" / "a.txt").read_text() == "a"
    assert bundle.unpack(tmp_path / "elsewhere") == unpacked  # once per process
