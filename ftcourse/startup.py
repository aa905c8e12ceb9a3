"""Start TensorFlow without the C++ notices it prints to stderr on every start.

Importing TensorFlow 2.21 writes a dozen lines through Abseil logging before any log level
applies (``TF_CPP_MIN_LOG_LEVEL`` no longer silences them): "All log messages before
absl::InitializeLog() ...", oneDNN and CPU-instruction notices, "Could not find cuda drivers",
and on a machine without an NVIDIA driver a ``failed call to cuInit`` error. A learner reads
red as "broken". :func:`import_tensorflow` imports TensorFlow and starts its devices while the
process's stderr goes to a file, then writes back every line that is not one of those notices:
errors and anything unexpected still show.

Introduced in lesson 01: the first cell of every notebook calls it before ``import keras``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

# An Abseil INFO or WARNING line ("I0000 00:00:1796190515.586064 6597 port.cc:153] ...").
_NOTICE = re.compile(r"^[IW]\d{4} \d\d:\d\d:\d\d")
_NOTICE_TEXT = ("All log messages before absl::InitializeLog() is called",
                "To enable the following instructions:")
_CUINIT = "failed call to cuInit"
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


# What a learner should never see in a cell's output: a TensorFlow log line, from C++ (any level)
# or from Python ("WARNING:tensorflow:... retracing"), or a Python warning ("UserWarning: ...").
_UNWANTED = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|"
                       r"To enable the following instructions|^[A-Z]+:(tensorflow|absl):|"
                       r"\b[A-Z]\w*Warning: ")


def unwanted_lines(text: str) -> list[str]:
    """The lines of a cell's output that are TensorFlow log lines or Python warnings."""
    return [line for line in text.splitlines() if _UNWANTED.search(line)]


def is_startup_notice(line: str, driver_present: bool | None = None) -> bool:
    """Whether ``line`` is one of TensorFlow's start-up notices (never an error, except the
    CUDA probe's on a machine that has no NVIDIA driver to find)."""
    if _NOTICE.match(line) or any(text in line for text in _NOTICE_TEXT):
        return True
    if driver_present is None:
        driver_present = NVIDIA_DRIVER.exists()
    return _CUINIT in line and not driver_present


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[str], bool]) -> Iterator[None]:
    """Send what the process writes to file descriptor 2 to a file; on exit, write back
    (to ``sys.stderr``) the lines for which ``drop`` is false."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not drop(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def import_tensorflow() -> ModuleType:
    """Import TensorFlow and list its devices (which probes CUDA), without the start-up
    notices; return the module. Harmless when TensorFlow is already imported."""
    driver_present = NVIDIA_DRIVER.exists()
    with filtered_stderr(functools.partial(is_startup_notice, driver_present=driver_present)):
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
