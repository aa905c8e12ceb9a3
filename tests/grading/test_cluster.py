"""Grading on a Dask cluster: the same grades.csv as the local pool, no submission lost when a
worker dies mid-task, a clear error when the scheduler cannot be reached.

The cluster is a real ``LocalCluster`` of worker processes; the course holds the tiny
assignment (statuses, feedback) and the mini one (trusted checks), both without TensorFlow."""

from __future__ import annotations

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
    """Good, partial (zipped), broken and slow submissions of the tiny assignment, and one
    that cheats the mini one's in-kernel tests (the statuses' own cases are in test_engine)."""
    folder = tmp_path_factory.mktemp("lms")
    nbformat.write(tiny_with(course, **CORRECT), folder / f"alice_{TINY}.ipynb")
    with zipfile.ZipFile(folder / "carol.zip", "w") as zipped:
        zipped.writestr(f"carol/{TINY}.ipynb",
                        nbformat.writes(tiny_with(course, add=CORRECT["add"])))
    (folder / f"dave_{TINY}.ipynb").write_text('{"cells": [', encoding="utf-8")
    nbformat.write(tiny_with(course, add=SLOW, double=CORRECT["double"]),
                   folder / f"{KILLED}_{TINY}.ipynb")
    mini = nbformat.read(course / "solutions" / MINI / f"{MINI}.ipynb", as_version=4)
    for cell in mini.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "part_a_area":
            cell.source = MINI_CHEAT
    nbformat.write(mini, folder / f"mallory_{MINI}.ipynb")
    return folder


def rows_without_times(output: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in read_rows(output / "grades.csv")]


def kill_when_grading(client, student: str, killed: list[int], deadline_s: float = 120) -> None:
    """Kill (SIGKILL) the worker process that grades ``student`` once its kernel runs."""
    pids = client.run(os.getpid)
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        for worker, keys in client.processing().items():
            if any(key.endswith(f"-{student}") for key in keys) and worker in pids:
                kernels = [p for p in psutil.Process(pids[worker]).children(recursive=True)
                           if "ipykernel_launcher" in " ".join(p.cmdline())]
                if kernels:
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(pids[worker])
                    return
        time.sleep(0.1)


def test_a_cluster_grades_like_the_local_pool_and_survives_a_killed_worker(
        course: Path, lms: Path, tmp_path: Path) -> None:
    import dask
    from distributed import Client, LocalCluster

    local = tmp_path / "local"
    grade_submissions(lms, course, GradingOptions(output=local, workers=2, cell_timeout=5,
                                                  gradebook=False))
    killed: list[int] = []
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            LocalCluster(n_workers=2, threads_per_worker=1,
                         dashboard_address=None) as dask_cluster, \
            Client(dask_cluster) as client:
        spy = threading.Thread(target=kill_when_grading, args=(client, KILLED, killed))
        spy.start()
        remote = tmp_path / "remote"
        grade_submissions(lms, course, GradingOptions(
            output=remote, cell_timeout=5, scheduler=dask_cluster.scheduler_address,
            gradebook=False))
        spy.join()
    assert killed, f"{KILLED}'s worker was never seen grading"
    assert rows_without_times(remote) == rows_without_times(local)
    rows = {(r["student"], r["assignment"]): r for r in rows_without_times(remote)}
    assert len(rows) == 5  # one row per submission, the killed one graded on its retry
    assert (rows[KILLED, TINY]["status"], rows[KILLED, TINY]["total"]) == ("graded", "5")
    assert (rows["mallory", MINI]["trusted"], rows["mallory", MINI]["test_part_a_area"],
            rows["mallory", MINI]["test_part_b_mean"]) == ("true", "0", "2")
    assert sorted(p.name for p in (remote / "feedback").iterdir()) == sorted(
        p.name for p in (local / "feedback").iterdir())
    assert rows["carol", TINY]["total"] == "2" and rows["dave", TINY]["status"] == "invalid"


def test_a_local_cluster_is_started_for_the_run(course: Path, tmp_path: Path) -> None:
    nbformat.write(tiny_with(course, **CORRECT), tmp_path / f"alice_{TINY}.ipynb")
    output = tmp_path / "out"
    assert grade_submissions(tmp_path, course, GradingOptions(output=output,
                                                              scheduler="local:1",
                                                              gradebook=False)) == 0
    assert read_rows(output / "grades.csv")[0]["total"] == "5"


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
