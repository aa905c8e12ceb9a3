"""Finding the students' notebooks in a folder of submissions (no grading)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import pytest
from tiny import TINY, tiny_with

from ftcourse.errors import CourseError
from ftcourse.grading.course import find_assignments
from ftcourse.grading.submissions import collect_submissions, split_flat_name, unpack_zip


def test_split_flat_name_takes_the_longest_notebook_name() -> None:
    owner = {"ps02": "a", "ps02_frozen_mobilenetv2": "b"}
    assert split_flat_name("jo_ann_ps02_frozen_mobilenetv2", owner) == (
        "jo_ann", "ps02_frozen_mobilenetv2")
    assert split_flat_name("kim_ps02-2", owner) == ("kim", "ps02")
    assert split_flat_name("kim_report", owner) == ("kim_report", None)

def test_unpack_zip_refuses_traversal_and_keeps_only_notebooks(tmp_path: Path) -> None:
    archive = tmp_path / "sam.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../evil.ipynb", "{}")
        zipped.writestr("work/tiny.ipynb", "{}")
        zipped.writestr("__MACOSX/work/._tiny.ipynb", "junk")
        zipped.writestr("notes.txt", "hello")
    out = tmp_path / "out"
    found = unpack_zip(archive, out)
    assert [p.relative_to(out).as_posix() for p in found] == ["tiny.ipynb"]
    assert not list(tmp_path.parent.rglob("evil.ipynb"))

def test_unpack_zip_caps_the_unpacked_size(tmp_path: Path, monkeypatch) -> None:
    from ftcourse.grading import submissions

    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", 100)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("tiny.ipynb", "x" * 10_000)
    with pytest.raises(CourseError, match="too large"):
        unpack_zip(archive, tmp_path / "out")

def test_collect_recognises_nbgrader_layout(tiny_course: Path, tmp_path: Path) -> None:
    nb_dir = tmp_path / "export" / "submitted" / "ana" / TINY
    nb_dir.mkdir(parents=True)
    nbformat.write(tiny_with(tiny_course), nb_dir / f"{TINY}.ipynb")
    (tmp_path / "export" / "submitted" / "ben" / TINY).mkdir(parents=True)
    assignments = find_assignments(tiny_course)
    for given in (tmp_path / "export", tmp_path / "export" / "submitted"):
        found = collect_submissions(given, assignments, tmp_path / "unpacked")
        assert [(s.student, s.assignment, s.status) for s in found] == [
            ("ana", TINY, ""), ("ben", TINY, "missing")]

def test_collect_rejects_bad_input(tiny_course: Path, tmp_path: Path) -> None:
    assignments = find_assignments(tiny_course)
    with pytest.raises(CourseError, match="does not exist"):
        collect_submissions(tmp_path / "nowhere", assignments, tmp_path / "u")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CourseError, match="No notebooks found"):
        collect_submissions(tmp_path / "empty", assignments, tmp_path / "u")
    with pytest.raises(CourseError, match="Unknown assignment 'ps99'"):
        collect_submissions(tmp_path / "empty", assignments, tmp_path / "u", only="ps99")
