"""TensorFlow's start-up notices are dropped; errors and anything unexpected still show."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ftcourse.startup import filtered_stderr, is_startup_notice, unwanted_lines

NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796190515.586064    6597 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796190515.586493    6597 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow",
]
CUINIT = ("E0000 00:00:1796190520.130794    6597 cuda_platform.cc:52] failed call to cuInit: "
          "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
ERROR = "E0000 00:00:1796190520.130794    6597 op_kernel.cc:1] something really failed"


@pytest.mark.parametrize("line", NOTICES)
def test_notices_are_recognised(line: str) -> None:
    assert is_startup_notice(line, driver_present=False)
    assert is_startup_notice(line, driver_present=True)


def test_errors_are_kept_and_the_cuda_probe_only_without_a_driver() -> None:
    assert not is_startup_notice(ERROR, driver_present=False)
    assert not is_startup_notice("Traceback (most recent call last):", driver_present=False)
    assert is_startup_notice(CUINIT, driver_present=False)
    assert not is_startup_notice(CUINIT, driver_present=True)  # a GPU machine that failed


def test_filtered_stderr_writes_back_what_is_not_dropped(capfd: pytest.CaptureFixture) -> None:
    with filtered_stderr(lambda line: "drop" in line):
        os.write(2, b"drop me\nkeep me\n")
        os.write(2, b"drop this one too\n")
    assert capfd.readouterr().err == "keep me\n"


def test_importing_tensorflow_prints_nothing_to_stderr() -> None:
    """In a fresh process (the first import is where the notices come from)."""
    code = ("import ftcourse; tf = ftcourse.import_tensorflow(); import keras; "
            "print(tf.__version__, keras.__version__)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    assert done.stdout.strip()
    assert done.stderr == ""


@pytest.mark.parametrize("line", [
    *NOTICES, CUINIT, ERROR,
    "WARNING:tensorflow:5 out of the last 5 calls to <function f> triggered tf.function retracing",
    "/x/keras/src/trainers/trainer.py:1: UserWarning: `shuffle=True` was passed, but is ignored",
])
def test_unwanted_lines_are_found(line: str) -> None:
    assert unwanted_lines(f"Epoch 1/2\n{line}\naccuracy 0.9") == [line]


def test_ordinary_output_is_not_unwanted() -> None:
    assert unwanted_lines("val accuracy 0.81\nWarning signs: none\nIn 0000 steps") == []
