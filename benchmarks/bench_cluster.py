"""Grading on a Dask cluster vs the local pool: the same N copies, the same number of workers.

Run from the course root, in the `ci` profile:

    FTCOURSE_PROFILE=ci python benchmarks/bench_cluster.py --copies 8 --workers 2 --repeats 3

It starts one ``LocalCluster`` of ``--workers`` one-thread worker processes (its start-up is
timed apart), warms both ways with one batch each (the grading servers' imports), then grades
the batch with each way in turn, ``--repeats`` times, and prints the medians, their ratio and
the cluster's overhead per task: (cluster - local) x workers / copies. From the local pool's
seconds per submission and that overhead it projects the throughput of M machines with
``--workers`` workers each: a projection, assuming a scheduler that keeps up and the course's
bundle sent once per worker, not a measurement. ``--quick`` grades the two-cell assignment of
``bench_grading.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench_grading import add_batch_arguments, exercise_to_grade, time_batch

MACHINES = (1, 2, 4, 8, 16)


def run(exercise: Path, course_dir: Path, copies: int, workers: int,
        repeats: int) -> dict[str, float]:
    """Measure and print; return the medians (seconds), the ratio and the overhead."""
    import dask
    from distributed import Client, LocalCluster

    print(f"Grading {copies} copies of {exercise.name} with {workers} workers: "
          f"median of {repeats} repeat(s), each way once before to warm up")
    started = time.perf_counter()
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                         silence_logs=40) as cluster, Client(cluster):
        print(f"  LocalCluster start      : {time.perf_counter() - started:6.1f} s")
        address = cluster.scheduler_address
        ways = {"local pool": None, "LocalCluster": address}
        for scheduler in ways.values():
            time_batch(exercise, course_dir, copies, workers, scheduler)
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(repeats):  # alternate, so that both see the same machine noise
            for name, scheduler in ways.items():
                seconds[name].append(time_batch(exercise, course_dir, copies, workers,
                                                scheduler))
    local, remote = (statistics.median(seconds[name]) for name in ways)
    overhead = (remote - local) * workers / copies
    per_submission = local * workers / copies
    print(f"  local pool              : {local:6.1f} s ({per_submission:5.2f} s per submission "
          "and worker)")
    print(f"  LocalCluster            : {remote:6.1f} s")
    print(f"  cluster / local         : {remote / local:6.2f}x; overhead {overhead:+.2f} s "
          "per task")
    print(f"Projected (not measured): {workers} workers per machine, "
          f"{per_submission:.2f} s + {max(overhead, 0):.2f} s overhead per submission")
    for machines in MACHINES:
        rate = machines * workers * 3600 / (per_submission + max(overhead, 0))
        print(f"  {machines:3d} machine(s): {rate:8.0f} submissions per hour")
    return {"local": local, "cluster": remote, "ratio": remote / local, "overhead": overhead}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_batch_arguments(parser, copies=8, quick_help="the two-cell assignment of "
                        "bench_grading.py")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with exercise_to_grade(args) as (exercise, course):
        run(exercise, course, args.copies, args.workers, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
