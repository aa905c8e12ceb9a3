"""The grading sandbox: a notebook run in the sandboxed kernel probes what it can reach."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from ftcourse.errors import CourseError
from ftcourse.grading import sandbox
from ftcourse.grading.sandbox import SandboxLimits, isolation_available, write_kernelspec

NEEDS_ISOLATION = "isolation unavailable here (not root, or unshare not permitted)"

PROBE_SETUP = """
import json, mmap, os, pathlib, resource
R = {}
def probe(name, fn):
    try:
        R[name] = fn()
    except BaseException as error:
        R[name] = f"{type(error).__name__}: {error}"
def write(path):
    pathlib.Path(path).write_text("x")
    return "written"
"""

ISOLATION_CELLS = [
    """
R["uid"], R["gid"], R["groups"] = os.getuid(), os.getgid(), os.getgroups()
R["cwd"], R["env"] = os.getcwd(), dict(os.environ)
probe("data", lambda: pathlib.Path("data.txt").read_text())
""",
    """
probe("read_solution", lambda: pathlib.Path(C["solutions"], "answer.txt").read_text())
probe("list_solutions", lambda: os.listdir(C["solutions"]))
probe("read_gradebook", lambda: pathlib.Path(C["gradebook"]).read_text())
probe("list_other_students", lambda: os.listdir(C["other_students"]))
probe("write_solutions", lambda: write(pathlib.Path(C["solutions"], "new.txt")))
probe("write_gradebook", lambda: write(C["gradebook"]))
probe("write_course", lambda: write(pathlib.Path(C["course"], "new.txt")))
probe("write_tmp", lambda: write("/tmp/probe.txt"))
probe("write_scratch", lambda: write("out.txt"))
R["scratch_file"] = pathlib.Path(R["cwd"], "out.txt").read_text()
""",
    """
def writable_places():
    found = []
    for top in ["/", "/etc", "/usr", "/var", "/opt", "/srv", "/mnt", "/run", "/work", "/root",
                "/dev", os.path.dirname(C["course"]), C["course"]]:
        try:
            folders = [top, *(e.path for e in os.scandir(top) if e.is_dir())]
        except PermissionError:
            folders = [top]
        for folder in folders:  # /dev/shm lies in scratch; /dev/fd is /proc/self/fd
            real = os.path.realpath(folder)
            if os.access(folder, os.W_OK) and real != "/dev/shm" and real[:6] != "/proc/":
                found.append(folder)
    return found
probe("writable", writable_places)
probe("foreign_processes", lambda: [p for p in os.listdir("/proc") if p.isdigit()
                                    and os.stat(f"/proc/{p}").st_uid != os.getuid()])
probe("keras_cache", lambda: pathlib.Path(os.environ["KERAS_HOME"], "models", "w.h5").read_text())
probe("keras_datasets", lambda: pathlib.Path(os.environ["KERAS_HOME"], "datasets", "d.txt")
      .read_text())
probe("write_keras_cache", lambda: pathlib.Path(os.environ["KERAS_HOME"], "datasets", "new.txt")
      .write_text("x"))
""",
    """
R["rlimit_data"] = resource.getrlimit(resource.RLIMIT_DATA)
probe("huge_bytearray", lambda: len(bytearray(50 * 2**30)))
probe("huge_shared_map", lambda: len(mmap.mmap(-1, 50 * 2**30)))
""",
    """
import keras
base_model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False,
                                            weights=None)
R["tensorflow_params"] = base_model.count_params()
""",
]

FALLBACK_CELLS = [
    """
R["uid"], R["env"] = os.getuid(), dict(os.environ)
R["rlimit_data"] = resource.getrlimit(resource.RLIMIT_DATA)
R["rlimit_core"] = resource.getrlimit(resource.RLIMIT_CORE)
def grow():
    chunks = []
    while True:
        chunks.append(bytearray(2**26))
probe("growing_list", grow)
print(json.dumps(R, default=str))
""",
    "os._exit(1)",
]


def build_notebook(cells: list[str], context: dict[str, str]) -> nbformat.NotebookNode:
    sources = [PROBE_SETUP + f"C = {json.dumps(context)}", *cells]
    sources.append("print(json.dumps(R, default=str))")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(src).strip()) for src in sources]
    return nb


def run_notebook(nb: nbformat.NotebookNode, env: dict[str, str], cwd: Path) -> None:
    """Execute ``nb`` in place with ``env`` set, as the grading engine does."""
    from nbclient import NotebookClient

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setenv("NBGRADER_EXECUTION", "autograde")  # must not reach the kernel
        client = NotebookClient(nb, kernel_name="python3", timeout=120, startup_timeout=60,
                                resources={"metadata": {"path": str(cwd)}})
        client.execute()


def last_output(nb: nbformat.NotebookNode, index: int = -1) -> dict:
    return json.loads(nb.cells[index].outputs[-1]["text"])


@pytest.fixture(scope="module")
def course() -> Iterator[Path]:
    """A course folder outside /tmp (the sandbox replaces /tmp, which would hide it anyway)."""
    base = "/run" if os.access("/run", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="ftcourse-sandbox-", dir=base))
    (root / "solutions").mkdir()
    (root / "solutions" / "answer.txt").write_text("42")
    (root / "gradebook.db").write_text("grades")
    (root / "submitted" / "bob" / "ps1").mkdir(parents=True)
    (root / "submitted" / "bob" / "ps1" / "ps1.ipynb").write_text("{}")
    start = root / "autograded" / "alice" / "ps1"
    start.mkdir(parents=True)
    (start / "data.txt").write_text("alice's data")
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def isolated_run(course: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the probe notebook once in an isolated kernel; every test reads its results."""
    if not isolation_available():
        pytest.skip(NEEDS_ISOLATION)
    tmp = tmp_path_factory.mktemp("isolated")
    (tmp / "scratch").mkdir()
    (tmp / "keras" / "models").mkdir(parents=True)
    (tmp / "keras" / "models" / "w.h5").write_text("weights")
    (tmp / "keras" / "datasets").mkdir()
    (tmp / "keras" / "datasets" / "d.txt").write_text("photos")
    hide = [course / "solutions", course / "gradebook.db", course / "submitted",
            course / "autograded"]
    env = write_kernelspec(tmp / "spec", tmp / "scratch", hide, keras_cache=tmp / "keras")
    context = {"course": str(course), "solutions": str(course / "solutions"),
               "gradebook": str(course / "gradebook.db"),
               "other_students": str(course / "submitted")}
    nb = build_notebook(ISOLATION_CELLS, context)
    run_notebook(nb, env, course / "autograded" / "alice" / "ps1")
    return last_output(nb) | {"scratch": str(tmp / "scratch")}


def test_kernel_runs_as_nobody_without_grading_hints(isolated_run: dict) -> None:
    assert (isolated_run["uid"], isolated_run["gid"], isolated_run["groups"]) == (65534, 65534, [])
    env = isolated_run["env"]
    assert not [key for key in env if "NBGRADER" in key or "JPY_SESSION" in key]
    assert env["FTCOURSE_PROFILE"] == "ci"
    assert env["HOME"].startswith(isolated_run["scratch"])


def test_kernel_starts_in_scratch_with_a_copy_of_its_folder(isolated_run: dict) -> None:
    assert isolated_run["cwd"] == isolated_run["scratch"]
    assert isolated_run["data"] == "alice's data"
    assert isolated_run["write_scratch"] == "written"
    assert isolated_run["scratch_file"] == "x"
    # The scratch tmpfs is private to the kernel: nothing reaches the host folder.
    assert not any(Path(isolated_run["scratch"]).iterdir())


def test_hidden_paths_are_empty_and_read_only(isolated_run: dict) -> None:
    assert isolated_run["read_solution"].startswith("FileNotFoundError")
    assert isolated_run["list_solutions"] == []
    assert isolated_run["read_gradebook"] == ""
    assert isolated_run["list_other_students"] == []
    for key in ("write_solutions", "write_gradebook"):
        assert isolated_run[key].startswith(("OSError", "PermissionError")), key


def test_nothing_outside_scratch_is_writable(isolated_run: dict, course: Path) -> None:
    assert isolated_run["write_course"].startswith("PermissionError")
    assert isolated_run["write_tmp"].startswith(("OSError", "PermissionError"))
    assert isolated_run["writable"] == []
    assert not (course / "new.txt").exists()


def test_other_users_processes_are_invisible(isolated_run: dict) -> None:
    assert isolated_run["foreign_processes"] == []


def test_keras_cache_is_readable_not_writable(isolated_run: dict) -> None:
    assert isolated_run["keras_cache"] == "weights"
    assert isolated_run["keras_datasets"] == "photos"
    assert isolated_run["write_keras_cache"].startswith(("OSError", "PermissionError"))


def test_memory_limit_stops_huge_allocations(isolated_run: dict) -> None:
    assert isolated_run["rlimit_data"] == [4096 << 20] * 2
    assert isolated_run["huge_bytearray"].startswith("MemoryError")
    assert isolated_run["huge_shared_map"].startswith("OSError")


def test_tensorflow_works_under_the_default_limits(isolated_run: dict) -> None:
    assert isolated_run["tensorflow_params"] > 2_000_000


def test_fallback_applies_limits_and_dead_kernel_is_reported(tmp_path: Path) -> None:
    """Without isolation the limits and clean env still apply; os._exit kills the kernel."""
    from nbclient.exceptions import DeadKernelError

    (tmp_path / "scratch").mkdir()
    (tmp_path / "start").mkdir()
    limits = SandboxLimits(memory_mb=1024)
    env = write_kernelspec(tmp_path / "spec", tmp_path / "scratch", [], limits, isolate=False)
    nb = build_notebook(FALLBACK_CELLS, {})
    with pytest.raises(DeadKernelError):
        run_notebook(nb, env, tmp_path / "start")
    results = last_output(nb, index=1)
    assert results["uid"] == os.getuid()
    assert not [key for key in results["env"] if "NBGRADER" in key]
    assert results["rlimit_data"] == [1024 << 20] * 2
    assert results["rlimit_core"] == [0, 0]
    assert results["growing_list"].startswith("MemoryError")


def test_kernelspec_env_and_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", "/elsewhere")
    (tmp_path / "scratch").mkdir()
    env = write_kernelspec(tmp_path / "spec", tmp_path / "scratch", [tmp_path / "hidden"],
                           isolate=True)
    assert env == {"JUPYTER_PATH": f"{tmp_path / 'spec'}{os.pathsep}/elsewhere"}
    spec = json.loads((tmp_path / "spec" / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][1:3] == ["--mount", "--propagation"]
    assert spec["argv"][-3:] == ["--isolate", "-f", "{connection_file}"]
    with pytest.raises(CourseError, match="overlaps the scratch"):
        write_kernelspec(tmp_path / "spec", tmp_path / "scratch", [tmp_path])
    with pytest.raises(CourseError, match="does not exist"):
        write_kernelspec(tmp_path / "spec", tmp_path / "missing", [])
    with pytest.raises(CourseError, match="memory_mb"):
        SandboxLimits(memory_mb=0)


NBGRADER_CONFIG = 'c = get_config()\nc.CourseDirectory.course_id = "sandbox"\n'


def test_nbgrader_autograde_uses_the_sandboxed_kernel(tmp_path: Path) -> None:
    """The integration contract: nbgrader picks up the kernelspec from the returned env."""
    if not isolation_available():
        pytest.skip(NEEDS_ISOLATION)
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    solution = nbformat.v4.new_code_cell("import os\n### BEGIN SOLUTION\nuid = os.getuid()\n"
                                         "### END SOLUTION")
    solution.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                     "grade_id": "uid", "schema_version": 3}
    test = nbformat.v4.new_code_cell('"""Check that the kernel runs as nobody."""\n'
                                     "assert uid == 65534 and os.getuid() == 65534\n"
                                     'assert "NBGRADER_EXECUTION" not in os.environ')
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": "uid_test", "points": 1, "schema_version": 3}
    nb.cells = [solution, test]
    nbformat.write(nb, course / "source" / "ps1" / "ps1.ipynb")
    (tmp_path / "scratch").mkdir()
    env = write_kernelspec(tmp_path / "spec", tmp_path / "scratch",
                           [course / "source", course / "gradebook.db"])
    nbgrader = [sys.executable, "-m", "nbgrader"]
    run_env = os.environ | env
    for args in (["generate_assignment", "ps1"], ["autograde", "ps1"]):
        if args[0] == "autograde":
            shutil.copytree(course / "release" / "ps1", course / "submitted" / "alice" / "ps1")
            # The release strips the solution; the "student" answers it.
            released = course / "submitted" / "alice" / "ps1" / "ps1.ipynb"
            text = released.read_text().replace("# YOUR CODE HERE", "uid = os.getuid()")
            released.write_text(text.replace("raise NotImplementedError()", ""))
        subprocess.run([*nbgrader, *args], cwd=course, env=run_env, check=True,
                       capture_output=True, timeout=120)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission("ps1", "alice")
        assert (submission.score, submission.max_score) == (1, 1)


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
