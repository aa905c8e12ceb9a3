"""Checking image files once: verdicts cached by path, size and time, checked again on change."""

from __future__ import annotations

from pathlib import Path

import pytest
from image_files import make_image_folder

from ftcourse import image_check
from ftcourse.data import scan_image_folder


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files Pillow really decodes (the real check, wrapped to note each call)."""
    seen: list[Path] = []
    real = image_check.is_readable_image

    def noted(path: Path) -> bool:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(image_check, "is_readable_image", noted)
    return seen


def test_an_unchanged_folder_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             checks: list[Path]) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = make_image_folder(tmp_path / "photos", {"cats": 3, "dogs": 2})
    (folder / "dogs" / "broken.jpg").write_bytes(b"not an image")
    first = scan_image_folder(folder)
    assert len(checks) == 6 and [p.name for p in first.skipped] == ["broken.jpg"]
    second = scan_image_folder(folder)
    assert len(checks) == 6  # nothing decoded again
    assert (second.paths, second.skipped) == (first.paths, first.skipped)
    assert sorted(p.name for p in (tmp_path / "keras" / image_check.CACHE_FOLDER).iterdir()) \
        == sorted(image_check.cache_file(folder / name).name for name in ("cats", "dogs"))


def test_a_changed_file_is_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         checks: list[Path]) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = make_image_folder(tmp_path / "photos", {"cats": 2, "dogs": 2})
    scan_image_folder(folder)
    damaged = Path(scan_image_folder(folder).paths[0])
    damaged.write_bytes(damaged.read_bytes()[:20])  # truncated: another size
    checks.clear()
    scan = scan_image_folder(folder)
    assert checks == [damaged] and scan.skipped == [damaged]


def test_an_unwritable_cache_checks_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               checks: list[Path]) -> None:
    (tmp_path / "file").write_text("a file where the cache folder would go")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "file"))
    folder = make_image_folder(tmp_path / "photos", {"cats": 2, "dogs": 1})
    assert len(scan_image_folder(folder).paths) == 3
    assert len(scan_image_folder(folder).paths) == 3 and len(checks) == 6
