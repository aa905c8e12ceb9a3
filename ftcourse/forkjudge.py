"""Fresh judging processes without the import cost: a server imports Keras once, then forks.

:func:`ftcourse.verdicts.judge` runs the trusted checks of each submission in a fresh process, so
that nothing one submission made can reach the grader or another submission's verdicts. That
process needs Keras, whose import costs about 8 s of CPU. The server started here
(``python -m ftcourse.forkjudge``, one per grading process, started on first use) imports Keras
and the checks, never loads a submission's files, and forks one child per request; each child
judges one submission and exits. Requests are JSON lines on the server's stdin; the server
writes each request's verdicts, or why there are none, to the file the request names.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

PRELOAD = ("keras", "ftcourse.checks")
POLL_S = 0.05


class JudgeStopped(Exception):
    """A judging process ran out of time or stopped without verdicts."""


class Server:
    """The grader's handle on its fork server (thread-safe; restarted if it died)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def judge(self, task: tuple, env: Mapping[str, str] | None, timeout_s: float) -> dict:
        """Run ``verdicts.verdicts_of(*task)`` in a fresh fork with ``env``; its result."""
        with tempfile.TemporaryDirectory(prefix="ftcourse-verdicts-") as folder:
            result = Path(folder) / "result.json"
            request = {"task": list(task), "env": None if env is None else dict(env),
                       "timeout_s": timeout_s, "result": str(result)}
            server = self._send(json.dumps(request))
            deadline = time.monotonic() + timeout_s + 30  # the server enforces timeout_s
            while not result.exists():
                if server.poll() is not None:
                    raise JudgeStopped(f"the judging server stopped ({server.returncode})")
                if time.monotonic() > deadline:
                    raise JudgeStopped(f"no verdict after {timeout_s:g} s")
                time.sleep(POLL_S)
            answer = json.loads(result.read_text(encoding="utf-8"))
        if "stopped" in answer:
            raise JudgeStopped(answer["stopped"])
        return answer["verdicts"]

    def _send(self, line: str) -> subprocess.Popen:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "ftcourse.forkjudge"], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
                atexit.register(_stop, self._process)
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
            return self._process


SERVER = Server()


def _stop(process: subprocess.Popen) -> None:
    """Close the server's stdin (it exits when its children are done)."""
    if process.poll() is None and process.stdin is not None:
        process.stdin.close()


# --- The server process --------------------------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    """In the fork: the request's environment, no console output, the verdicts."""
    from ftcourse.verdicts import verdicts_of

    if request["env"] is not None:
        os.environ.clear()
        os.environ.update(request["env"])
    verdicts = verdicts_of(*request["task"])
    _write(request["result"], {"verdicts": verdicts})


def _write(path: str, answer: dict) -> None:
    """Write atomically: the grader reads the file as soon as it exists."""
    partial = f"{path}.partial"
    Path(partial).write_text(json.dumps(answer), encoding="utf-8")
    os.replace(partial, path)


def serve() -> None:
    """Read requests from stdin until it closes; fork a child per request; make sure each
    request gets an answer (the verdicts, or why the child stopped)."""
    for name in PRELOAD:
        __import__(name)
    fork = multiprocessing.get_context("fork")
    running: dict[int, tuple[multiprocessing.Process, dict, float]] = {}
    pending, stdin_open = b"", True
    while stdin_open or running:
        sentinels = list(running)
        ready = wait([0, *sentinels] if stdin_open else sentinels, timeout=1.0)
        if stdin_open and 0 in ready:
            chunk = os.read(0, 1 << 16)
            stdin_open = bool(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in filter(None, lines):
                request = json.loads(line)
                process = fork.Process(target=_child, args=(request,), daemon=True)
                process.start()
                running[process.sentinel] = (process, request,
                                             time.monotonic() + request["timeout_s"])
        for sentinel, (process, request, deadline) in list(running.items()):
            if sentinel in ready or time.monotonic() > deadline:
                _finish(process, request, over=sentinel not in ready)
                del running[sentinel]


def _finish(process: multiprocessing.Process, request: dict, over: bool) -> None:
    if over:
        process.kill()
    process.join()
    result = Path(request["result"])
    if result.exists() or not result.parent.is_dir():  # answered, or the grader gave up
        return
    why = (f"over {request['timeout_s']:g} s" if over
           else f"the process stopped with exit code {process.exitcode}")
    with contextlib.suppress(OSError):
        _write(str(result), {"stopped": why})


if __name__ == "__main__":
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    serve()
