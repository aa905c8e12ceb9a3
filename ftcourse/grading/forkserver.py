"""Fresh judging processes without the import cost: a server imports Keras once, then forks.

:func:`ftcourse.verdicts.judge` runs the trusted checks of each submission in a fresh process, so
that nothing one submission made can reach the grader or another submission's verdicts. That
process needs Keras, whose import costs about 8 s of CPU. The server started here
(``python -m ftcourse.forkjudge``, one per grading process, started on first use) imports Keras
and the checks, never loads a submission's files, and forks one child per request; each child
judges one submission, hands its verdicts to the server through a pipe and exits. Requests and
answers are JSON lines on the server's stdin and stdout: pipes that only the grader, the server
and its children hold, so no file a kernel could reach carries a verdict.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any

PRELOAD = ("keras", "ftcourse.checks")
MAX_REASON_CHARS = 2000
GRACE_S = 30


class JudgeStopped(Exception):
    """A judging process ran out of time or stopped without verdicts."""


class Server:
    """The grader's handle on its fork server: thread-safe, started again if it died."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        self.preload = preload
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[Future, subprocess.Popen]] = {}
        self._ids = itertools.count()

    def judge(self, task: tuple, env: Mapping[str, str] | None, timeout_s: float) -> dict:
        """``verdicts.verdicts_of(*task)``, computed in a fresh fork with ``env``."""
        answer: Future = Future()
        request = {"id": next(self._ids), "task": list(task), "timeout_s": timeout_s,
                   "env": None if env is None else dict(env)}
        try:
            with self._lock:  # the reader thread answers only once the request is registered
                self._waiting[request["id"]] = (answer, self._send(json.dumps(request)))
            result = answer.result(timeout=timeout_s + GRACE_S)  # the server enforces timeout_s
        except OSError as error:
            raise JudgeStopped(f"the judging server could not be reached ({error})") from None
        except FutureTimeout:
            raise JudgeStopped(f"no verdict after {timeout_s:g} s") from None
        finally:
            with self._lock:
                self._waiting.pop(request["id"], None)
        if "stopped" in result:
            raise JudgeStopped(result["stopped"])
        return result["verdicts"]

    def _send(self, line: str) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ftcourse.forkjudge", *self.preload], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            atexit.register(_stop, self._process)
            threading.Thread(target=self._read, args=(self._process,), daemon=True).start()
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._process

    def _read(self, process: subprocess.Popen) -> None:
        """Hand each answer to the thread waiting for it; when the server ends, fail the rest."""
        for line in process.stdout:
            answer = json.loads(line)
            with self._lock:
                future, _ = self._waiting.get(answer.pop("id"), (None, None))
            if future is not None and not future.done():
                future.set_result(answer)
        process.wait()
        with self._lock:
            stranded = [f for f, owner in self._waiting.values()
                        if owner is process and not f.done()]
        for future in stranded:
            future.set_result({"stopped": f"the judging server stopped ({process.returncode})"})


SERVER = Server()


def _stop(process: subprocess.Popen) -> None:
    """Close the server's stdin: it exits when its children are done."""
    if process.poll() is None and process.stdin is not None:
        process.stdin.close()


# --- The server process --------------------------------------------------------------------------


def _child(request: dict[str, Any], sender: Connection, inherited: tuple[int, ...]) -> None:
    """In the fork: the server's pipes closed, the request's environment, no console output,
    then the verdicts."""
    from ftcourse.verdicts import verdicts_of

    for fd in inherited:
        os.close(fd)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    if request["env"] is not None:
        os.environ.clear()
        os.environ.update(request["env"])
    verdicts = verdicts_of(*request["task"])
    for verdict in verdicts.values():
        verdict[1] = verdict[1][:MAX_REASON_CHARS]
    sender.send_bytes(json.dumps(verdicts).encode())


class _Running:
    """A child at work: its process, the end of its pipe, its deadline and what it sent."""

    def __init__(self, request: dict, context: BaseContext, inherited: tuple[int, ...]) -> None:
        self.id, self.timeout_s = request["id"], request["timeout_s"]
        self.receiver, sender = context.Pipe(duplex=False)
        self.listening = True
        self.process = context.Process(target=_child, args=(request, sender, inherited),
                                       daemon=True)
        self.process.start()
        self.sentinel = self.process.sentinel
        sender.close()
        self.deadline = time.monotonic() + self.timeout_s
        self.verdicts: dict | None = None

    def receive(self) -> None:
        """Take the verdicts the child sent (nothing if it closed its pipe without them)."""
        self.listening = False
        with contextlib.suppress(EOFError, OSError, ValueError):
            self.verdicts = json.loads(self.receiver.recv_bytes())

    def answer(self, over: bool) -> dict:
        if over:
            self.process.kill()
        self.process.join()
        if self.listening and self.receiver.poll(0):
            self.receive()
        self.receiver.close()
        exitcode = self.process.exitcode
        self.process.close()  # a long batch must not run out of file descriptors
        if self.verdicts is not None:
            return {"id": self.id, "verdicts": self.verdicts}
        why = (f"over {self.timeout_s:g} s" if over
               else f"the process stopped with exit code {exitcode}")
        return {"id": self.id, "stopped": why}


def serve(preload: Sequence[str], requests: int = 0, answers: int = 1) -> None:
    """Import ``preload``; read requests until ``requests`` (a file descriptor) closes; fork a
    child per request; write one answer line per request to ``answers``."""
    for name in preload:
        __import__(name)
    context = multiprocessing.get_context("fork")
    running: list[_Running] = []
    pending, reading = b"", True
    while reading or running:
        watched = [requests] if reading else []
        watched += [r.receiver for r in running if r.listening]
        ready = set(wait(watched + [r.sentinel for r in running], timeout=1.0))
        if requests in ready:
            chunk = os.read(requests, 1 << 16)
            reading = bool(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            running += [_Running(json.loads(line), context, (requests, answers))
                        for line in lines if line.strip()]
        for child in list(running):
            if child.receiver in ready:
                child.receive()
            over = time.monotonic() > child.deadline
            if child.sentinel in ready or over:
                os.write(answers, (json.dumps(child.answer(over)) + "\n").encode())
                running.remove(child)


if __name__ == "__main__":
    # Answers go to a copy of stdout; whatever an import prints goes nowhere.
    answers_fd = os.dup(1)
    quiet_fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet_fd, 1)
    os.dup2(quiet_fd, 2)
    serve(sys.argv[1:], 0, answers_fd)
