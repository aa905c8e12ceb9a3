"""The fork server behind `verdicts.judge`: a fresh process per judge, time limits, crashes."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from ftcourse import forkjudge
from ftcourse.verdicts import judge

CHECKS = textwrap.dedent('''
    import os
    import time

    import ftcourse.checks
    from ftcourse.verdicts import TrustedPart

    def check_fresh(values):
        assert not hasattr(ftcourse.checks, "_judged_before"), "state left by an earlier judge"
        ftcourse.checks._judged_before = True

    def check_env(values):
        assert os.environ.get("FTCOURSE_JUDGE_MARK") == "given", "not the given environment"

    def check_slow(values):
        time.sleep(60)

    def check_crash(values):
        os._exit(3)

    PARTS = [TrustedPart(name, {}, check) for name, check in [
        ("fresh", check_fresh), ("env", check_env), ("slow", check_slow), ("crash", check_crash)]]
''')


@pytest.fixture
def checks_file(tmp_path: Path) -> Path:
    path = tmp_path / "trusted_checks.py"
    path.write_text(CHECKS)
    return path


def test_each_judge_starts_from_a_clean_process(checks_file: Path, tmp_path: Path) -> None:
    for _ in range(2):
        verdict = judge(checks_file, tmp_path, only=["fresh"])["fresh"]
        assert verdict.fraction == 1.0, verdict.reason


def test_the_judge_gets_the_environment_it_is_given(checks_file: Path, tmp_path: Path) -> None:
    given = judge(checks_file, tmp_path, only=["env"], env={"FTCOURSE_JUDGE_MARK": "given"})
    assert given["env"].fraction == 1.0, given["env"].reason
    assert judge(checks_file, tmp_path, only=["env"])["env"].fraction == 0.0


def test_a_slow_judge_is_stopped_at_its_time_limit(checks_file: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    verdict = judge(checks_file, tmp_path, only=["slow"], timeout_s=2)["slow"]
    assert time.monotonic() - started < 30
    assert verdict.fraction == 0.0 and "over 2 s" in verdict.reason


def test_a_crashed_judge_scores_zero_and_says_so(checks_file: Path, tmp_path: Path) -> None:
    verdict = judge(checks_file, tmp_path, only=["crash"])["crash"]
    assert verdict.fraction == 0.0 and "exit code 3" in verdict.reason


def test_a_dead_server_is_started_again(checks_file: Path, tmp_path: Path) -> None:
    judge(checks_file, tmp_path, only=["fresh"])
    forkjudge.SERVER._process.kill()
    forkjudge.SERVER._process.wait()
    assert judge(checks_file, tmp_path, only=["fresh"])["fresh"].fraction == 1.0
