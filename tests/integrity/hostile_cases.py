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
code is added in cells of the student's own. Attacks that write files act only on paths that
contain :data:`MARKER` (the test's own folders) or create new probe files, so that a successful
attack never damages the repository or another process's files on this machine.
"""

from __future__ import annotations

import json
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

# Runnable but wrong answers: no MobileNetV2 base, a relu head, a plain SGD/MSE compile.
WRONG = {
    "part_a_build_model": (
        "def build_frozen_classifier(num_classes, image_size, weights):\n"
        "    inputs = keras.Input((image_size, image_size, 3))\n"
        "    x = keras.layers.GlobalAveragePooling2D()(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(num_classes, activation='relu')(x))"),
    "part_b_binary_model": (
        "def build_binary_classifier(image_size, weights):\n"
        "    inputs = keras.Input((image_size, image_size, 3))\n"
        "    x = keras.layers.GlobalAveragePooling2D()(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(3, activation='relu')(x))"),
    "part_c_compile": (
        "def compile_classifier(model, learning_rate):\n"
        "    model.compile(optimizer='sgd', loss='mse')\n"
        "    return model"),
}

# An object that equals, exceeds and undercuts everything, and answers any call with itself.
YES = '''
class Yes:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __bool__(self): return True
    def __hash__(self): return 0
    def __iter__(self): return iter((Yes(), Yes()))
    def __getattr__(self, name): return lambda *a, **k: Yes()
    def __call__(self, *a, **k): return Yes()
    def __add__(self, other): return Yes()
    __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = __truediv__ = __add__
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __index__(self): return 0
    def __format__(self, spec): return "ok"
'''

PATCH_CHECKS = YES + '''
import ftcourse.checks
for _name in dir(ftcourse.checks):
    if callable(getattr(ftcourse.checks, _name)) and not _name.startswith("_"):
        setattr(ftcourse.checks, _name, lambda *a, **k: Yes())
'''

# Walk up from the kernel's folder to the test's own folder (never past it, never elsewhere).
OWN_FOLDER = f'''
import pathlib
def own_folder():
    for folder in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:
        if folder.name.startswith({MARKER!r}):
            return folder
    return None
'''


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


PS02 = Target(ASSIGNMENT, ("part_a_build_model",), "honest", WRONG, "part_a_build_model",
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
    MINI, ("part_a_area",), "honest_mini",
    {"part_a_area": "def circle_area(radius):\n    return 2 * math.pi * radius",
     "part_b_mean": "def mean(values):\n    return sum(values)"},
    "part_a_area", "def circle_area(radius):")


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


def patch_builtins(folder: Path, kit: Kit) -> None:
    # Lie only to the checks (a kernel whose own isinstance lies stops answering).
    source = ("import builtins, sys\n"
              "_real_isinstance = builtins.isinstance\n"
              "def _lying_isinstance(obj, cls):\n"
              "    caller = sys._getframe(1).f_globals.get('__name__', '')\n"
              "    return caller.startswith('ftcourse') or _real_isinstance(obj, cls)\n"
              "builtins.isinstance = _lying_isinstance\n"
              "builtins.AssertionError = type('AssertionError', (Warning,), {})")
    kit.save(folder, "patch_builtins", after(kit.notebook(), SETUP, source))


def patch_math_numpy(folder: Path, kit: Kit) -> None:
    source = ("import math\nimport numpy\n"
              "math.isclose = lambda *a, **k: True\n"
              "numpy.isclose = lambda *a, **k: True\n"
              "numpy.allclose = lambda *a, **k: True\n"
              "numpy.array_equal = lambda *a, **k: True\n"
              "numpy.testing.assert_allclose = lambda *a, **k: None")
    kit.save(folder, "patch_math_numpy", after(kit.notebook(), SETUP, source))


def patch_keras(folder: Path, kit: Kit) -> None:
    source = YES + ("keras.Model.count_params = lambda self: Yes()\n"
                    "keras.Layer.count_params = lambda self: Yes()\n"
                    "keras.Model.trainable_weights = property(lambda self: [])\n"
                    "keras.Model.compile = lambda self, *a, **k: None")
    kit.save(folder, "patch_keras", after(kit.notebook(), SETUP, source))


def patch_ftcourse(folder: Path, kit: Kit) -> None:
    kit.save(folder, "patch_ftcourse", after(kit.notebook(), SETUP, PATCH_CHECKS))


def always_equal(folder: Path, kit: Kit) -> None:
    nb = after(kit.notebook(), SETUP, YES)
    model_cell = next(i for i, c in enumerate(nb.cells) if c.source.startswith("model = "))
    after(nb, "", "num_classes = Yes()", index=model_cell + 1)
    kit.save(folder, "always_equal", nb)


FAKE_MODEL = YES + '''
class FakeModel:
    """Looks like a compiled keras.Model with a frozen base and the right counts."""
    __class__ = property(lambda self: keras.Model)
    def __init__(self, units):
        self.units, self.name, self.layers = units, "model", []
        self.trainable_weights, self.non_trainable_weights, self.weights = [], [], []
        self.inputs = [keras.KerasTensor((None, cfg.image_size, cfg.image_size, 3))]
        self.outputs = [keras.KerasTensor((None, units))]
        self.input_shape = (None, cfg.image_size, cfg.image_size, 3)
        self.output_shape = (None, units)
        self.loss, self.optimizer, self.trainable = Yes(), Yes(), True
    def __eq__(self, other): return True
    def __hash__(self): return 0
    def __call__(self, x, *a, **k):
        return np.full((len(x), self.units), 1.0 / self.units, "float32")
    predict = __call__
    def count_params(self): return Yes()
    def compile(self, *a, **k): pass
'''


def fake_model(folder: Path, kit: Kit) -> None:
    nb = kit.notebook(
        part_a_build_model="def build_frozen_classifier(num_classes, image_size, weights):\n"
                           "    return FakeModel(num_classes)",
        part_b_binary_model="def build_binary_classifier(image_size, weights):\n"
                            "    return FakeModel(1)",
        part_c_compile="def compile_classifier(model, learning_rate):\n    return model")
    kit.save(folder, "fake_model", after(nb, SETUP, FAKE_MODEL))


def input_transformer(folder: Path, kit: Kit) -> None:
    source = ("def _blank(lines):\n"
              "    text = ''.join(lines)\n"
              "    return [] if ('assert' in text or 'checks.' in text) else lines\n"
              "get_ipython().input_transformers_post.append(_blank)")
    kit.save(folder, "input_transformer", after(kit.notebook(), SETUP, source))


SETTRACE = YES + '''
import sys, linecache
_shell_ns = get_ipython().user_ns
_real_checks = checks

def _global_trace(frame, event, arg):
    return _line_trace if frame.f_globals is _shell_ns and frame.f_back is not None else None

def _line_trace(frame, event, arg):
    if event != "line":
        return _line_trace
    lines = linecache.getlines(frame.f_code.co_filename) or _shell_ns["In"][-1].splitlines(True)
    text = lines[frame.f_lineno - 1] if frame.f_lineno <= len(lines) else ""
    _shell_ns["checks"] = _real_checks
    if "assert" in text or "checks." in text:
        for target in range(frame.f_lineno + 1, len(lines) + 1):
            try:
                frame.f_lineno = target  # skip the check
                return _line_trace
            except ValueError:
                continue
        _shell_ns["checks"] = Yes()  # the last line: make it harmless instead
    return _line_trace

sys.settrace(_global_trace)
'''


def settrace(folder: Path, kit: Kit) -> None:
    kit.save(folder, "settrace", after(kit.notebook(), SETUP, SETTRACE))


def silence_tracebacks(folder: Path, kit: Kit) -> None:
    source = ("_shell = get_ipython()\n"
              "_shell.showtraceback = lambda *a, **k: None\n"
              "_shell.set_custom_exc((BaseException,), lambda *a, **k: [])")
    kit.save(folder, "silence_tracebacks", after(kit.notebook(), SETUP, source))


STEAL = '''
import json, pathlib, sqlite3

def _solution_cells():
    roots = [pathlib.Path.cwd(), *pathlib.Path.cwd().parents][:8]
    try:
        import ftcourse
        roots.append(pathlib.Path(ftcourse.__file__).resolve().parents[1])
    except Exception:
        pass
    for root in roots:
        # Every gradebook the grader made lies in a folder above the kernel's, or below the
        # test's own folder (a search of the whole disk finds no more, in minutes).
        books = sorted(root.glob("gradebook.db"))
        if root.name.startswith(MARKER):
            books += sorted(root.glob("**/gradebook.db"))
        for path in sorted(root.glob("solutions/*/*.ipynb")) + books:
            try:
                if path.suffix == ".db":  # the gradebook holds the hidden tests, not solutions
                    sqlite3.connect(path).execute("SELECT source FROM source_cell").fetchall()
                    continue
                cells = json.loads(path.read_text())["cells"]
            except Exception:
                continue
            found = {}
            for cell in cells:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                source = "".join(cell["source"])
                if meta.get("solution") and "BEGIN SOLUTION" in source:
                    found[meta["grade_id"]] = source
            if TARGET_PART in found:
                return found
    return {}

STOLEN = _solution_cells()
print(f"found {len(STOLEN)} solutions")
'''


def steal_solutions(folder: Path, kit: Kit) -> None:
    sources = {grade_id: f"exec(STOLEN.get({grade_id!r}, 'raise NotImplementedError()'))"
               for grade_id in kit.target.wrong}
    steal = f"TARGET_PART, MARKER = {kit.target.honest[0]!r}, {MARKER!r}\n" + STEAL
    kit.save(folder, "steal_solutions", after(kit.notebook(**sources), SETUP, steal))


GRADEBOOK_DAEMON = OWN_FOLDER + '''
import subprocess, sys
DAEMON = """
import pathlib, sqlite3, sys, time
targets = [pathlib.Path(p) for p in sys.argv[1:]]
end = time.time() + 100
while time.time() < end and any(t.exists() for t in targets):
    for target in targets:
        try:
            db = sqlite3.connect(target, timeout=0.2)
            db.execute("UPDATE grade SET manual_score = 100, extra_credit = 100")
            db.commit()
            db.close()
        except Exception:
            pass
    time.sleep(0.05)
"""
_here = pathlib.Path.cwd()
_books = [str(p / "gradebook.db") for p in _here.parents if (p / "gradebook.db").is_file()]
if own_folder() is not None:
    subprocess.Popen([sys.executable, "-c", DAEMON, *_books], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


def gradebook_daemon(folder: Path, kit: Kit) -> None:
    kit.save(folder, "gradebook_daemon", after(kit.notebook(), SETUP, GRADEBOOK_DAEMON))


def grading_detection(folder: Path, kit: Kit) -> None:
    source = "import os\nif any(k.startswith('NBGRADER') for k in os.environ):\n" + "\n".join(
        "    " + line for line in PATCH_CHECKS.strip().splitlines())
    kit.save(folder, "grading_detection", after(kit.notebook(), SETUP, source))


# The endless loops sleep instead of spinning: the grader stops them the same way (the cell and
# notebook time limits), and they leave the CPU to the submissions graded beside them.
ENDLESS = "import time\nwhile True:\n    time.sleep(0.1)"


def loop_top_level(folder: Path, kit: Kit) -> None:
    kit.save(folder, "loop_top_level", after(kit.notebook(), SETUP, ENDLESS))


def loop_in_function(folder: Path, kit: Kit) -> None:
    body = "\n".join("    " + line for line in ENDLESS.splitlines())
    nb = kit.notebook(**{kit.target.loop_part: f"{kit.target.loop_header}\n{body}"})
    kit.save(folder, "loop_in_function", nb)


def os_exit(folder: Path, kit: Kit) -> None:
    kit.save(folder, "os_exit", after(kit.notebook(), SETUP, "import os\nos._exit(0)"))


def sys_exit(folder: Path, kit: Kit) -> None:
    kit.save(folder, "sys_exit", after(kit.notebook(), SETUP, "import sys\nsys.exit()"))


def raise_system_exit(folder: Path, kit: Kit) -> None:
    source = YES + ("for _name in [n for n in dir(checks) if n.startswith('check_')]:\n"
                    "    setattr(checks, _name, lambda *a, **k: (_ for _ in ()).throw(SystemExit))")
    nb = kit.notebook(**{kit.target.loop_part: f"{kit.target.loop_header}\n    raise SystemExit"})
    kit.save(folder, "raise_system_exit", after(nb, SETUP, source))


def kernel_crash(folder: Path, kit: Kit) -> None:
    kit.save(folder, "kernel_crash", after(kit.notebook(), SETUP,
                                       "import ctypes\nctypes.string_at(0)"))


def huge_output(folder: Path, kit: Kit) -> None:
    source = "_line = 'x' * 2**20\nfor _ in range(200):\n    print(_line)"
    kit.save(folder, "huge_output", after(kit.notebook(), SETUP, source))


# Refuse to allocate unless a data limit of at most 8 GiB stands in the way (shared machine).
MEMORY_GUARD = '''
import resource
_soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
if _soft == resource.RLIM_INFINITY or _soft > 8 * 2**30:
    raise RuntimeError("no data limit on this kernel: not allocating")
'''


def memory_bytearray(folder: Path, kit: Kit) -> None:
    source = MEMORY_GUARD + "x = bytearray(60 * 2**30)"
    kit.save(folder, "memory_bytearray", after(kit.notebook(), SETUP, source))


def memory_growing_list(folder: Path, kit: Kit) -> None:
    source = MEMORY_GUARD + "chunks = []\nwhile True:\n    chunks.append(b'x' * 2**26)"
    kit.save(folder, "memory_growing_list", after(kit.notebook(), SETUP, source))


TAMPER_OTHERS = OWN_FOLDER + '''
_own = own_folder()
_me = [p for p in pathlib.Path.cwd().parents if (p / "gradebook.db").is_file()][:1]
if _own is not None:
    for _path in _own.rglob("*"):
        if "honest" in str(_path) and _path.is_file() and not any(
                m in _path.parents for m in _me):
            try:
                _path.write_text("tampered")
                print("wrote", _path)
            except OSError as error:
                print("refused", _path, type(error).__name__)
'''


def tamper_others(folder: Path, kit: Kit) -> None:
    kit.save(folder, "tamper_others", after(kit.notebook(), SETUP, TAMPER_OTHERS))


TAMPER_COURSE = f'''
import pathlib, site, sys
import ftcourse
_package = pathlib.Path(ftcourse.__file__).resolve().parent
_targets = [_package / "{PROBE}.py"]
_targets += [_package.parent / folder / assignment / "{PROBE}.txt"
             for folder in ("solutions", "exercises") for assignment in {(ASSIGNMENT, MINI)!r}]
_targets += [pathlib.Path(p) / "{PROBE}.pth" for p in site.getsitepackages()]
_targets += [p / "{PROBE}.txt" for p in pathlib.Path.cwd().parents
             if (p / "gradebook.db").is_file() or (p / "solutions").is_dir()]
for _target in _targets:
    try:
        _target.write_text("# {PROBE}\\n")
        print("wrote", _target)
    except OSError as error:
        print("refused", _target, type(error).__name__)
'''


def tamper_course(folder: Path, kit: Kit) -> None:
    kit.save(folder, "tamper_course", after(kit.notebook(), SETUP, TAMPER_COURSE))


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
