"""The fork server behind `verdicts.judge`: a fresh process per call, its environment, time
limits, crashes and a server that died. These tests use a server that preloads nothing (fast);
`tests/grading/test_verdicts.py` and the grading tests use the judge's own."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftcourse.grading.forkserver import Server, Stopped

VERDICTS_OF = "ftcourse.grading.verdicts:verdicts_of"


def judge(server: Server, task: tuple, env: dict[str, str] | None, timeout_s: float) -> dict:
    """The verdicts of ``task``, computed by a call in a fresh fork."""
    return server.call(VERDICTS_OF, task, env, timeout_s)

CHECKS = textwrap.dedent('''
    import json
    import os
    import time

    from ftcourse.grading import TrustedPart

    def check_fresh(values):
        assert not hasattr(json, "judged_before"), "state left by an earlier judge"
        json.judged_before = True

    def check_env(values):
        assert os.environ.get("FTCOURSE_JUDGE_MARK") == "given", "not the given environment"

    def check_slow(values):
        time.sleep(60)

    def check_crash(values):
        os._exit(3)

    def check_wordy(values):
        raise AssertionError("x" * 100_000)

    PARTS = [TrustedPart(name, {}, check) for name, check in [
        ("fresh", check_fresh), ("env", check_env), ("slow", check_slow),
        ("crash", check_crash), ("wordy", check_wordy)]]
''')


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield (server := Server(preload=()))
    if server._process is not None:
        server._process.kill()


@pytest.fixture
def task(tmp_path: Path):
    checks = tmp_path / "trusted_checks.py"
    checks.write_text(CHECKS)
    return lambda *parts: (str(checks), str(tmp_path), {}, list(parts))


def test_the_server_calls_any_function_in_a_fork(server: Server) -> None:
    import os

    assert server.call("os:getpid", [], None, 60) != os.getpid()
    assert server.call("json:dumps", [[1, "a"]], None, 60) == '[1, "a"]'


def test_each_judge_starts_from_a_clean_process(server: Server, task) -> None:
    for _ in range(2):
        assert judge(server, task("fresh"), None, 60) == {
            "fresh": [1.0, "passed the trusted checks"]}


def test_the_judge_gets_the_environment_it_is_given(server: Server, task) -> None:
    given = judge(server, task("env"), {"FTCOURSE_JUDGE_MARK": "given"}, 60)
    assert given["env"][0] == 1.0, given
    assert judge(server, task("env"), {}, 60)["env"][0] == 0.0


def test_several_judges_at_once_each_get_their_own_answer(server: Server, task) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda part: judge(server, task(part), None, 60),
                                ["fresh", "env", "fresh", "env"]))
    assert [sorted(a) for a in answers] == [["fresh"], ["env"], ["fresh"], ["env"]]


def test_a_long_reason_is_cut(server: Server, task) -> None:
    reason = judge(server, task("wordy"), None, 60)["wordy"][1]
    assert 1000 < len(reason) <= 2000


def test_a_slow_judge_is_stopped_at_its_time_limit(server: Server, task) -> None:
    started = time.monotonic()
    with pytest.raises(Stopped, match="over 2 s"):
        judge(server, task("slow"), None, 2)
    assert time.monotonic() - started < 30


def test_a_crashed_judge_says_so(server: Server, task) -> None:
    with pytest.raises(Stopped, match="exit code 3"):
        judge(server, task("crash"), None, 60)


def test_a_dead_server_is_started_again(server: Server, task) -> None:
    judge(server, task("fresh"), None, 60)
    server._process.kill()
    server._process.wait()
    assert judge(server, task("fresh"), None, 60)["fresh"][0] == 1.0


def test_verdicts_judge_turns_a_stopped_judge_into_zeros(tmp_path: Path, monkeypatch) -> None:
    from ftcourse.grading import verdicts

    checks = tmp_path / "trusted_checks.py"
    checks.write_text(CHECKS)
    monkeypatch.setattr(verdicts, "SERVER", Server(preload=()))
    found = verdicts.judge(checks, tmp_path, only=["crash"])
    assert set(found) == {"crash"}  # the grader never loads the checks itself
    assert found["crash"] == verdicts.Verdict(
        0.0, "the trusted checks did not finish (the process stopped with exit code 3)")
    verdicts.SERVER._process.kill()


def test_a_server_that_cannot_be_reached_stops_the_judge(task, monkeypatch) -> None:
    unreachable = Server(preload=())

    def broken_pipe(line: str) -> None:
        raise BrokenPipeError("the pipe is closed")

    monkeypatch.setattr(unreachable, "_send", broken_pipe)
    with pytest.raises(Stopped, match="could not be reached"):
        judge(unreachable, task("fresh"), None, 60)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_the_server_keeps_no_files_open_per_judge(server: Server, task) -> None:
    judge(server, task("fresh"), None, 60)
    open_files = Path(f"/proc/{server._process.pid}/fd")
    before = len(list(open_files.iterdir()))
    for _ in range(20):
        judge(server, task("fresh"), None, 60)
    assert len(list(open_files.iterdir())) <= before
