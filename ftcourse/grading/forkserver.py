"""Fresh processes without the import cost: a server imports some modules once, then forks.

Some work must run in a fresh process each time (so that nothing one task made can reach the
next, or the caller), yet needs modules that take seconds to import (Keras: about 8 s of CPU).
The server (``python -I -m ftcourse.grading.forkserver MODULE...``, one per :class:`Server`,
started on first use) imports those modules (or, for ``module:function``, calls that function
once), then forks one child per request; each child calls one function, hands its JSON result
to the server through a pipe and exits. A child that runs out of time is killed with every
process it started. Requests and
answers are JSON lines on the server's stdin and stdout: pipes that only the caller, the server
and its children hold. A request names its function as ``"package.module:function"``; the
server knows nothing of what the functions do.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
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
from typing import Any

GRACE_S = 30


class Stopped(Exception):
    """A forked call ran out of time (``over``) or stopped without a result."""

    def __init__(self, why: str, over: bool = False) -> None:
        super().__init__(why)
        self.over = over


class Server:
    """A handle on a fork server that preloads ``preload``: thread-safe, started again if it
    died."""

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self.preload = preload
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[Future[dict[str, Any]], subprocess.Popen[str]]] = {}
        self._ids = itertools.count()

    def call(self, function: str, args: Sequence[Any], env: Mapping[str, str] | None,
             timeout_s: float) -> Any:
        """``function(*args)`` (``"module:name"``, JSON arguments and result), computed in a
        fresh fork with the environment ``env`` (default: the server's); raises
        :class:`Stopped` when it runs past ``timeout_s`` or dies."""
        answer: Future[dict[str, Any]] = Future()
        request: dict[str, Any] = {"id": next(self._ids), "function": function, "args": list(args),
                   "timeout_s": timeout_s, "env": None if env is None else dict(env)}
        try:
            with self._lock:  # the reader thread answers only once the request is registered
                self._waiting[request["id"]] = (answer, self._send(json.dumps(request)))
            result = answer.result(timeout=timeout_s + GRACE_S)  # the server enforces timeout_s
        except OSError as error:
            raise Stopped(f"the fork server could not be reached ({error})") from None
        except FutureTimeout:
            raise Stopped(f"no result after {timeout_s:g} s") from None
        finally:
            with self._lock:
                self._waiting.pop(request["id"], None)
        if "stopped" in result:
            raise Stopped(result["stopped"], over=result.get("over", False))
        return result["result"]

    def _send(self, line: str) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-m", "ftcourse.grading.forkserver", *self.preload],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True)
            atexit.register(_stop, self._process)
            threading.Thread(target=self._read, args=(self._process,), daemon=True).start()
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._process

    def _read(self, process: subprocess.Popen[str]) -> None:
        """Hand each answer to the thread waiting for it; when the server ends, fail the rest."""
        assert process.stdout is not None
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
            future.set_result({"stopped": f"the fork server stopped ({process.returncode})"})


def _stop(process: subprocess.Popen[str]) -> None:
    """Close the server's stdin: it exits when its children are done."""
    if process.poll() is None and process.stdin is not None:
        process.stdin.close()


# --- The server process --------------------------------------------------------------------------


def _child(request: dict[str, Any], sender: Connection, inherited: tuple[int, ...]) -> None:
    """In the fork: the server's pipes closed, the request's environment, no console output,
    then the call."""
    module, _, name = request["function"].partition(":")
    function = getattr(importlib.import_module(module), name)
    for fd in inherited:
        os.close(fd)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    if request["env"] is not None:
        os.environ.clear()
        os.environ.update(request["env"])
    sender.send_bytes(json.dumps({"result": function(*request["args"])}).encode())


class _Running:
    """A child at work: its process, the end of its pipe, its deadline and what it sent."""

    def __init__(self, request: dict[str, Any], context: Any,
                 inherited: tuple[int, ...]) -> None:
        self.id, self.timeout_s = request["id"], request["timeout_s"]
        self.receiver, sender = context.Pipe(duplex=False)
        self.listening = True
        self.process = context.Process(target=_child, args=(request, sender, inherited),
                                       daemon=True)
        self.process.start()
        self.sentinel = self.process.sentinel
        sender.close()
        self.deadline = time.monotonic() + self.timeout_s
        self.sent: dict[str, Any] | None = None

    def receive(self) -> None:
        """Take the result the child sent (nothing if it closed its pipe without one)."""
        self.listening = False
        with contextlib.suppress(EOFError, OSError, ValueError):
            self.sent = json.loads(self.receiver.recv_bytes())

    def answer(self, over: bool) -> dict[str, Any]:
        family = _descendants(self.process.pid) if over else []
        if over:
            self.process.kill()
        self.process.join()  # the child is reaped here, then what it started
        _kill_all(family)
        if self.listening and self.receiver.poll(0):
            self.receive()
        self.receiver.close()
        exitcode = self.process.exitcode
        self.process.close()  # a long batch must not run out of file descriptors
        if self.sent is not None:
            return {"id": self.id, "result": self.sent["result"]}
        why = (f"over {self.timeout_s:g} s" if over
               else f"the process stopped with exit code {exitcode}")
        return {"id": self.id, "stopped": why, "over": over}


def kill_tree(pid: int, include_root: bool = True) -> None:
    """Kill the process ``pid`` (unless ``include_root`` is false) and all its descendants,
    adopted orphans included, and wait for them."""
    import psutil

    family = _descendants(pid)
    if include_root:
        with contextlib.suppress(psutil.NoSuchProcess):
            family.append(psutil.Process(pid))
    _kill_all(family)


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _kill_all(processes: list[Any]) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


def serve(preload: Sequence[str], requests: int = 0, answers: int = 1) -> None:
    """Import ``preload`` (call each ``module:function``); read requests until ``requests`` (a
    file descriptor) closes; fork a child per request; write one answer line per request to
    ``answers``."""
    for name in preload:
        module, _, function = name.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()
    context = multiprocessing.get_context("fork")
    running: list[_Running] = []
    pending, reading = b"", True
    while reading or running:
        watched: list[Any] = [requests] if reading else []
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
