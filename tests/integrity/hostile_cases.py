"""The hostile submissions of ``tests/test_integrity.py``.

Each case is a function that writes one submission file for a student named after the case, for
one of two assignments:

- problem set 02 (:data:`ASSIGNMENT`), for attacks on what its checks see: Keras, NumPy,
  ``ftcourse.checks`` and the kernel's view of the tests;
- a mini assignment (:data:`MINI`, ``tests/courses/mini``), which imports no
  TensorFlow, for attacks on the grading machinery itself (edited metadata, stolen solutions,
  endless loops, exits, crashes, floods, memory, writes outside the submission). It has trusted
  checks too, so both layers of defence face these attacks, at a fifth of the time per kernel.

Notebooks start from the released exercise; ``solved`` solution cells get the instructor's code
(the honest part of a case), the target's ``wrong`` answers run but are wrong, and the hostile
code, kept as real Python files in ``tests/integrity/cases/`` (see its README), is added in
cells of the student's own. Attacks that write files act only on paths that
contain :data:`MARKER` (the test's own folders) or create new probe files, so that a successful
attack never damages the repository or another process's files on this machine.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ASSIGNMENT = "ps02_frozen_mobilenetv2"
MINI = "mini"
MINI_COURSE = Path(__file__).resolve().parents[1] / "courses" / MINI
MARKER = "ftcourse-integrity"
PROBE = "integrity_probe_tamper_course"
SETUP = "setup"

CASES_DIR = Path(__file__).resolve().parent / "cases"
# Names the cells of cases/ may use, set on the cell's first lines.
CONSTANTS = {"MARKER": MARKER, "PROBE": PROBE, "ASSIGNMENTS": (ASSIGNMENT, MINI)}


def attack(*names: str, **values: object) -> str:
    """The source of one cell: the files ``cases/<name>.py`` in order, after the constants
    (:data:`CONSTANTS` and ``values``) that they name."""
    sources = [(CASES_DIR / f"{name}.py").read_text(encoding="utf-8") for name in names]
    text = "\n".join(sources)
    given = {**CONSTANTS, **values}
    header = [f"{name} = {value!r}" for name, value in given.items()
              if re.search(rf"\b{name}\b", text)]
    return "\n".join([*header, text])


def cells(name: str) -> dict[str, str]:
    """The solution cells of ``cases/<name>.py``, by the grade_id of each ``# %%`` line."""
    text = (CASES_DIR / f"{name}.py").read_text(encoding="utf-8")
    found = {}
    for block in re.split(r"^# %% ", text, flags=re.MULTILINE)[1:]:
        grade_id, _, source = block.partition("\n")
        found[grade_id.strip()] = source.strip()
    return found


@dataclass(frozen=True)
class Target:
    """What the cases need to know of an assignment: the parts the honest reference solves
    (and the student who hands it in), runnable wrong answers, and a function to hang."""

    assignment: str
    honest: tuple[str, ...]
    reference: str
    wrong: dict[str, str]
    loop_part: str
    loop_header: str


PS02 = Target(ASSIGNMENT, ("part_a_build_model",), "honest", cells("wrong_ps02"),
              "part_a_build_model",
              "def build_frozen_classifier(num_classes, image_size, weights):")


@dataclass(frozen=True)
class Case:
    """One hostile submission: how to write it, for which assignment, which parts are
    honestly solved, and for files that cannot be graded, the statuses the grader may give."""

    name: str
    write: Callable[[Path, Kit], None]
    solved: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    memory: bool = False
    assignment: str = ASSIGNMENT


class Kit:
    """The released exercise and the instructor's solution sources of an assignment."""

    def __init__(self, course: Path, target: Target) -> None:
        self.course, self.target = course, target
        self.exercise_path = course / "exercises" / self.assignment / f"{self.assignment}.ipynb"
        self.solution_path = course / "solutions" / self.assignment / f"{self.assignment}.ipynb"
        solution = nbformat.read(self.solution_path, as_version=4)
        self.solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
                          if c.metadata.get("nbgrader", {}).get("solution")}

    def notebook(self, solved: tuple[str, ...] = (), wrong: bool = True,
                 **sources: str) -> nbformat.NotebookNode:
        """The exercise with ``solved`` cells solved, the rest wrong (or left as released),
        and any solution cell's source replaced by ``sources[grade_id]``."""
        nb = nbformat.read(self.exercise_path, as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in sources:
                cell.source = sources[grade_id]
            elif grade_id in solved:
                cell.source = self.solutions[grade_id]
            elif grade_id in self.target.wrong and wrong:
                cell.source = self.target.wrong[grade_id]
        return nb

    @property
    def assignment(self) -> str:
        return self.target.assignment

    def save(self, folder: Path, student: str, nb: nbformat.NotebookNode) -> None:
        nbformat.write(nb, folder / f"{student}_{self.assignment}.ipynb")


# --- The mini assignment (no TensorFlow) -------------------------------------------------------


MINI_TARGET = Target(
    MINI, ("part_a_area",), "honest_mini", cells("wrong_mini"), "part_a_area",
    "def circle_area(radius):")


def write_mini_assignment(course: Path) -> Path:
    """The mini assignment's source notebook and trusted checks (``tests/courses/mini``) in
    ``course/solutions/``."""
    folder = course / "solutions" / MINI
    shutil.copytree(MINI_COURSE / "solutions" / MINI, folder)
    return folder


def after(nb: nbformat.NotebookNode, grade_id: str, source: str,
          index: int | None = None) -> nbformat.NotebookNode:
    """Insert a cell of the student's own after the cell ``grade_id`` (or at ``index``)."""
    if index is None:
        index = next(i for i, c in enumerate(nb.cells)
                     if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id) + 1
    nb.cells.insert(index, new_code_cell(source))
    return nb


def grade_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


# --- Cases -------------------------------------------------------------------------------------

def honest(folder: Path, kit: Kit) -> None:
    """The reference: the target's honest parts solved, the rest left as released."""
    kit.save(folder, kit.target.reference, kit.notebook(kit.target.honest, wrong=False))


def wrong_answers(folder: Path, kit: Kit) -> None:
    kit.save(folder, "wrong_answers", kit.notebook())


def test_cells_pass(folder: Path, kit: Kit) -> None:
    nb = kit.notebook()
    for cell in grade_cells(nb):
        cell.source = "pass"
    kit.save(folder, "test_cells_pass", nb)


def points_inflated(folder: Path, kit: Kit) -> None:
    nb = kit.notebook(kit.target.honest)
    for cell in grade_cells(nb):
        cell.metadata["nbgrader"]["points"] = 100
        cell.source = "pass"
    kit.save(folder, "points_inflated", nb)


def grade_ids_renamed(folder: Path, kit: Kit) -> None:
    nb = kit.notebook()
    for number, cell in enumerate(grade_cells(nb)):
        cell.metadata["nbgrader"].update(grade_id=f"my_part_{number}", points=100)
        cell.source = "pass"
    kit.save(folder, "grade_ids_renamed", nb)


def test_cells_deleted(folder: Path, kit: Kit) -> None:
    nb = kit.notebook()
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    kit.save(folder, "test_cells_deleted", nb)


def added(name: str, *pieces: str, **values: object) -> Callable[[Path, Kit], None]:
    """A case that adds one cell after the setup cell: ``cases/<piece>.py`` for each piece
    (default: the case's own file)."""
    def write(folder: Path, kit: Kit) -> None:
        kit.save(folder, name, after(kit.notebook(), SETUP, attack(*(pieces or (name,)),
                                                                   **values)))
    write.__name__ = name
    return write


def always_equal(folder: Path, kit: Kit) -> None:
    nb = after(kit.notebook(), SETUP, attack("yes"))
    model_cell = next(i for i, c in enumerate(nb.cells) if c.source.startswith("model = "))
    after(nb, "", attack("always_equal"), index=model_cell + 1)
    kit.save(folder, "always_equal", nb)


def fake_model(folder: Path, kit: Kit) -> None:
    nb = kit.notebook(**cells("fake_model_answers"))
    kit.save(folder, "fake_model", after(nb, SETUP, attack("yes", "fake_model")))


def steal_solutions(folder: Path, kit: Kit) -> None:
    sources = {grade_id: f"exec(STOLEN.get({grade_id!r}, 'raise NotImplementedError()'))"
               for grade_id in kit.target.wrong}
    steal = attack("steal_solutions", TARGET_PART=kit.target.honest[0])
    kit.save(folder, "steal_solutions", after(kit.notebook(**sources), SETUP, steal))


def indented(source: str) -> str:
    return "\n".join("    " + line for line in source.splitlines())


def loop_in_function(folder: Path, kit: Kit) -> None:
    body = indented(attack("endless"))
    nb = kit.notebook(**{kit.target.loop_part: f"{kit.target.loop_header}\n{body}"})
    kit.save(folder, "loop_in_function", nb)


def raise_system_exit(folder: Path, kit: Kit) -> None:
    nb = kit.notebook(**{kit.target.loop_part: f"{kit.target.loop_header}\n    raise SystemExit"})
    kit.save(folder, "raise_system_exit", after(nb, SETUP, attack("raise_system_exit")))


DAEMON = (CASES_DIR / "gradebook_daemon_process.py").read_text(encoding="utf-8")
patch_builtins = added("patch_builtins")
patch_math_numpy = added("patch_math_numpy")
patch_keras = added("patch_keras", "yes", "patch_keras")
patch_ftcourse = added("patch_ftcourse", "yes", "patch_checks")
input_transformer = added("input_transformer")
settrace = added("settrace", "yes", "settrace")
silence_tracebacks = added("silence_tracebacks")
gradebook_daemon = added("gradebook_daemon", "own_folder", "gradebook_daemon", DAEMON=DAEMON)
grading_detection = added("grading_detection", "yes", "grading_detection")
loop_top_level = added("loop_top_level", "endless")
os_exit = added("os_exit")
sys_exit = added("sys_exit")
kernel_crash = added("kernel_crash")
huge_output = added("huge_output")
memory_bytearray = added("memory_bytearray", "memory_guard", "memory_bytearray")
memory_growing_list = added("memory_growing_list", "memory_guard", "memory_growing_list")
tamper_others = added("tamper_others", "own_folder", "tamper_others")
tamper_course = added("tamper_course")


def invalid_json(folder: Path, kit: Kit) -> None:
    text = nbformat.writes(kit.notebook(kit.target.honest))
    (folder / f"invalid_json_{kit.assignment}.ipynb").write_text(text[: len(text) // 2])


def empty_file(folder: Path, kit: Kit) -> None:
    (folder / f"empty_file_{kit.assignment}.ipynb").write_bytes(b"")


def not_a_notebook(folder: Path, kit: Kit) -> None:
    (folder / f"not_a_notebook_{kit.assignment}.ipynb").write_text(
        json.dumps({"cells": "pass", "points": 100}))


def missing_notebook(folder: Path, kit: Kit) -> None:
    with zipfile.ZipFile(folder / f"missing_notebook_{kit.assignment}.zip", "w") as zipped:
        zipped.writestr("homework/notes.txt", "my notebook is attached")


# Attacks on what problem set 02's checks see (Keras, NumPy, ftcourse.checks, the test cells).
PS02_CASES = [
    Case("honest", honest, solved=PS02.honest),
    Case("wrong_answers", wrong_answers),
    Case("patch_builtins", patch_builtins),
    Case("patch_math_numpy", patch_math_numpy),
    Case("patch_keras", patch_keras),
    Case("patch_ftcourse", patch_ftcourse),
    Case("always_equal", always_equal),
    Case("fake_model", fake_model),
    Case("settrace", settrace),
    Case("grading_detection", grading_detection),
    Case("raise_system_exit", raise_system_exit),
]

# Attacks on the grading machinery, on the mini assignment (no TensorFlow in its kernels).
MINI_CASES = [Case(name, write, assignment=MINI, **options) for name, write, options in [
    ("honest_mini", honest, {"solved": MINI_TARGET.honest}),
    ("points_inflated", points_inflated, {"solved": MINI_TARGET.honest}),
    ("test_cells_pass", test_cells_pass, {}),
    ("grade_ids_renamed", grade_ids_renamed, {}),
    ("test_cells_deleted", test_cells_deleted, {}),
    ("input_transformer", input_transformer, {}),
    ("silence_tracebacks", silence_tracebacks, {}),
    ("steal_solutions", steal_solutions, {}),
    ("gradebook_daemon", gradebook_daemon, {}),
    ("loop_top_level", loop_top_level, {}),
    ("loop_in_function", loop_in_function, {}),
    ("os_exit", os_exit, {}),
    ("sys_exit", sys_exit, {}),
    ("kernel_crash", kernel_crash, {}),
    ("huge_output", huge_output, {}),
    ("memory_bytearray", memory_bytearray, {"memory": True}),
    ("memory_growing_list", memory_growing_list, {"memory": True}),
    ("tamper_others", tamper_others, {}),
    ("tamper_course", tamper_course, {}),
    ("invalid_json", invalid_json, {"statuses": ("invalid",)}),
    ("empty_file", empty_file, {"statuses": ("invalid",)}),
    ("not_a_notebook", not_a_notebook, {"statuses": ("invalid",)}),
    ("missing_notebook", missing_notebook, {"statuses": ("missing",)}),
]]

CASES = PS02_CASES + MINI_CASES
TARGETS = {ASSIGNMENT: PS02, MINI: MINI_TARGET}
