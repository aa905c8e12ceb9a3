"""Trusted grading: verdicts computed outside the student's kernel cap nbgrader's scores.

The graded cases (solutions at full marks, a patched check caught) ride on the shared batch of
real assignments in ``test_grading.py``; these need no kernel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftcourse import grading, sandbox, verdicts
from ftcourse.errors import CourseError
from ftcourse.release import generate_release

REPO = Path(__file__).resolve().parents[1]
needs_assignments = pytest.mark.skipif(not list((REPO / "solutions").glob("*/*.ipynb")),
                                       reason="no assignments in solutions/ yet")
CHECKED = sorted(p.parent.name for p in (REPO / "solutions").glob("*/trusted_checks.py"))


@needs_assignments
def test_every_assignment_has_trusted_checks_for_each_part() -> None:
    from ftcourse.submissions import read_parts

    assert sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")) == CHECKED
    for name in CHECKED:
        folder = REPO / "solutions" / name
        parts = verdicts.load_trusted_parts(folder / verdicts.TRUSTED_CHECKS_FILE)
        notebook = next(folder.glob("*.ipynb"))
        assert [p.grade_id for p in parts] == [p.grade_id for p in read_parts(notebook)]


@needs_assignments
def test_trusted_checks_are_never_released(tmp_path: Path) -> None:
    assert not list((REPO / "exercises").rglob(verdicts.TRUSTED_CHECKS_FILE))
    generate_release(REPO, tmp_path, [CHECKED[0]])
    assert list(tmp_path.rglob("*.ipynb"))
    assert not list(tmp_path.rglob(verdicts.TRUSTED_CHECKS_FILE))


def test_probes_draw_fresh_values_into_the_handover_cell(tmp_path: Path) -> None:
    part = verdicts.TrustedPart("p", {"x": "json"}, lambda values: None,
                                probes={"y": ("json", "twice({n})")},
                                draw=lambda rng: {"n": rng.randint(0, 10**9)})
    first, second = verdicts.draw_values([part]), verdicts.draw_values([part])
    assert first != second
    namespace = {"x": 3, "twice": lambda n: 2 * n}
    exec(verdicts.export_source([part], tmp_path, first), namespace)
    assert (tmp_path / "y.json").read_text() == str(2 * first["p"]["n"])


def test_verdicts_only_lower_scores() -> None:
    result = grading.Result("s", "a", "src", "graded", scores={"p": 2.0, "q": 0.0, "r": 3.0})
    found = {"p": verdicts.Verdict(0.0, "wrong model"), "q": verdicts.Verdict(1.0, "ok"),
             "r": verdicts.Verdict(1.0, "ok")}
    notes = grading.apply_verdicts(result, found, {"p": 2, "q": 2, "r": 3})
    assert result.scores == {"p": 0.0, "q": 0.0, "r": 3.0}
    assert notes.startswith("p: 0 of 2") and "wrong model" in notes and "q:" not in notes


def test_artifacts_keep_only_plain_files(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "model.keras").write_bytes(b"zip")
    (outbox / "secret.npy").symlink_to("/etc/passwd")
    (outbox / "folder").mkdir()
    copied = grading.collect_artifacts(outbox, tmp_path / "copy")
    assert sorted(p.name for p in copied.iterdir()) == ["model.keras"]


def test_the_outbox_must_be_fresh_and_outside_scratch(tmp_path: Path) -> None:
    scratch, outbox = tmp_path / "scratch", tmp_path / "outbox"
    scratch.mkdir()
    outbox.mkdir()
    env = sandbox.write_kernelspec(tmp_path / "spec", scratch, [], outbox=outbox, isolate=True)
    spec = (tmp_path / "spec" / "kernels" / "python3" / "kernel.json").read_text()
    assert env["JUPYTER_PATH"].startswith(str(tmp_path / "spec")) and str(outbox) in spec
    assert sandbox.kernel_outbox(scratch, outbox, True) == scratch / sandbox.OUTBOX
    (outbox / "old.json").write_text("1")
    with pytest.raises(CourseError, match="empty folder"):
        sandbox.write_kernelspec(tmp_path / "spec", scratch, [], outbox=outbox)
    with pytest.raises(CourseError, match="inside scratch"):
        sandbox.write_kernelspec(tmp_path / "spec", scratch, [], outbox=scratch)
