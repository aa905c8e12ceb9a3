"""The ``ftcourse`` command: doctor, fetch, and its usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from ftcourse import cli
from ftcourse.data import FLOWERS_SHA256
from ftcourse.models import ARCHITECTURES


def test_the_console_script_is_installed() -> None:
    result = subprocess.run(["ftcourse", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "doctor" in result.stdout and "grade" in result.stdout


def test_doctor_runs_and_shows_the_cache(keras_home: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (keras_home / "models").mkdir()
    (keras_home / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(
        b"")
    (keras_home / "datasets" / "flower_photos").mkdir(parents=True)
    monkeypatch.setenv("FTCOURSE_PROFILE", "ci")
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    import keras
    import tensorflow as tf

    assert f"TensorFlow {tf.__version__}" in out and f"Keras {keras.__version__}" in out
    assert "nbgrader" in out and "Devices: CPU" in out
    assert "Profile: ci" in out
    assert f"Keras cache: {keras_home}" in out
    assert "weights:  vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in out
    assert "datasets: flower_photos" in out


def test_doctor_with_an_empty_cache(keras_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "none (run `ftcourse fetch`)" in out and "datasets: none" in out


def test_fetch_flowers_from_a_mirror(keras_home: Path, flowers_archive: tuple[Path, str],
                                     offline: list[str], capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    archive, sha256 = flowers_archive
    code = cli.main(["fetch", "--only", "flowers", "--flowers-url", archive.as_uri(),
                     "--flowers-sha256", sha256])
    out = capsys.readouterr().out
    assert code == 0, out
    folder = keras_home / "datasets" / "flower_photos" / "flower_photos"
    assert sorted(p.name for p in folder.iterdir()) == ["daisy", "roses", "tulips"]
    assert f"ready in {folder}" in out and "Done." in out
    assert offline == [archive.as_uri()]
    assert cli.main(["doctor"]) == 0
    assert "datasets: flower_photos" in capsys.readouterr().out


def test_fetch_a_mirror_with_a_different_file_fails(
        keras_home: Path, flowers_archive: tuple[Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    archive, _ = flowers_archive
    assert cli.main(["fetch", "--only", "flowers", "--flowers-url", archive.as_uri()]) == 1
    captured = capsys.readouterr()
    assert FLOWERS_SHA256 in captured.err and "1 download(s) failed" in captured.out


def test_fetch_weights_offline(keras_home: Path, offline: list[str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    assert cli.main(["fetch", "--only", "weights"]) == 1
    assert time.perf_counter() - start < 60
    captured = capsys.readouterr()
    for name in ARCHITECTURES:
        assert f"Fetching ImageNet weights for {name}" in captured.out
        assert f"failed: Could not download the ImageNet weights of {name}" in captured.err
    # MobileNetV2 at the full profile's 160 and at 224 (the README's example); one file each
    # for the others.
    attempts = len(ARCHITECTURES) + 1
    assert "mobilenet_v2 (160x160)" in captured.out and "mobilenet_v2 (224x224)" in captured.out
    assert "Weights asked for: mobilenet_v2 at 160, 224; resnet50 (one file" in captured.out
    assert captured.err.count("ftcourse fetch") == attempts
    assert f"{attempts} download(s) failed" in captured.out
    assert len(offline) == attempts


def test_weight_sizes_to_fetch() -> None:
    from ftcourse.cli import weight_sizes_to_fetch

    mobilenet = frozenset({96, 128, 160, 192, 224})
    assert weight_sizes_to_fetch(mobilenet, 224, [224, 160, 160]) == [160, 224]
    assert weight_sizes_to_fetch(mobilenet, 224, [100, 96]) == [96, 224]
    assert weight_sizes_to_fetch(None, 224, [224, 160]) == [160]


def test_fetch_weights_uses_a_size_mobilenet_has(keras_home: Path, offline: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fetch", "--only", "weights", "--image-size", "100"]) == 1
    out = capsys.readouterr().out
    assert "mobilenet_v2 (224x224)" in out and "vgg16 (100x100)" in out
    assert "1.0_224_no_top" in offline[0]


@pytest.mark.parametrize(("argv", "message"), [
    ([], "the following arguments are required: command"),
    (["bake"], "invalid choice: 'bake'"),
    (["fetch", "--only", "cifar10"], "invalid choice: 'cifar10'"),
    (["fetch", "--image-size", "big"], "invalid int value: 'big'"),
])
def test_bad_usage(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_course_errors_exit_with_status_2(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FTCOURSE_PROFILE", "nope")
    assert cli.main(["doctor"]) == 2
    assert "error: Unknown course profile 'nope'" in capsys.readouterr().err


def test_cli_grade_passes_the_time_limits(tmp_path: Path, monkeypatch) -> None:
    from ftcourse.grading import batch

    seen = {}
    monkeypatch.setattr(batch, "grade_submissions",
                        lambda *a, **k: seen.update(options=a[2], **k) or 0)
    assert cli.main(["grade", str(tmp_path), "--timeout", "30", "--cell-timeout", "7"]) == 0
    assert (seen["options"].timeout, seen["options"].cell_timeout) == (30, 7)


def test_grade_reaches_every_sandbox_knob(tmp_path: Path, monkeypatch) -> None:
    from ftcourse.grading import batch

    seen = {}
    monkeypatch.setattr(batch, "grade_submissions", lambda *a, **k: seen.update(options=a[2]) or 0)
    assert cli.main(["grade", str(tmp_path), "--memory-mb", "0", "--cpu-seconds", "60",
                     "--isolate", "off", "--keras-cache", str(tmp_path), "--no-trusted",
                     "--profile", "full", "--workers", "3", "--output", str(tmp_path)]) == 0
    options = seen["options"]
    assert (options.limits.memory_mb, options.limits.cpu_seconds, options.isolate) == (
        None, 60, False)
    assert (options.keras_cache, options.trusted, options.profile, options.workers) == (
        tmp_path, False, "full", 3)


def test_grade_on_a_cluster_by_address_or_local_size(tmp_path: Path, monkeypatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ftcourse.grading import batch

    seen: list = []
    monkeypatch.setattr(batch, "grade_submissions", lambda *a, **k: seen.append(a[2]) or 0)
    assert cli.main(["grade", str(tmp_path), "--scheduler", "tcp://10.0.0.1:8786"]) == 0
    assert cli.main(["grade", str(tmp_path), "--cluster", "local:3"]) == 0
    assert cli.main(["grade", str(tmp_path)]) == 0
    assert [options.scheduler for options in seen] == ["tcp://10.0.0.1:8786", "local:3", None]
    with pytest.raises(SystemExit):
        cli.main(["grade", str(tmp_path), "--cluster", "local:3", "--scheduler", "tcp://x:1"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_grade_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["grade", "--help"])
    text = capsys.readouterr().out
    parser = cli.build_parser()
    grade = parser._subparsers._group_actions[0].choices["grade"]  # type: ignore[union-attr]
    for action in grade._actions:
        assert action.help, action.dest
    assert "Exit status" in text


@pytest.mark.parametrize("argv", [
    ["grade", "nowhere", "--course-dir", "{empty}"],
    ["grade", "{empty}", "--workers", "0"],
    ["release", "--course-dir", "{empty}"],
])
def test_course_errors_exit_2_from_every_command(argv: list[str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([arg.format(empty=tmp_path) for arg in argv]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_lab_puts_the_course_settings_first(tmp_path: Path) -> None:
    from ftcourse.cli import build_parser
    from ftcourse.grading.course import jupyter_environment

    args = build_parser().parse_args(["lab", "--course-dir", str(tmp_path), "--", "--port", "1"])
    assert args.jupyter_args == ["--", "--port", "1"]
    env = jupyter_environment(tmp_path, {"JUPYTER_CONFIG_PATH": "/etc/mine"})
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [
        str(tmp_path.resolve() / "jupyter_config"), "/etc/mine"]
    repo = Path(__file__).resolve().parents[1] / "jupyter_config"
    page = json.loads((repo / "labconfig" / "page_config.json").read_text(encoding="utf-8"))
    assert page["disabledExtensions"]["@jupyter/nbgrader:assignment-list"] is True
