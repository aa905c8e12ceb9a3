"""A confined Jupyter kernel for grading untrusted notebooks.

nbgrader runs a submission's tests inside the student's own kernel, so the kernel is where a
hostile notebook acts. :func:`write_kernelspec` writes a ``python3`` kernelspec whose launcher
(``python -m ftcourse.grading.sandbox``) confines that kernel before ``ipykernel`` starts; the
grading engine only sets the environment variables it returns.

Threat model. With isolation (the launcher runs as root and may create a mount namespace; see
:func:`isolation_available`), the kernel runs as ``nobody`` (uid and gid 65534, no supplementary
groups, ``no_new_privs``) in a private mount namespace where: each ``hide`` path (solutions,
gradebook, other students' folders, grading output) is covered by an empty read-only mount; the
only writable place is a fresh size-capped tmpfs mounted on ``scratch`` (its working directory
and ``$HOME``, holding a copy of the folder nbgrader started the kernel in, notebooks left out
since the one being graded holds its hidden tests there), which vanishes with
the kernel and which no other kernel sees; ``/tmp``, ``/var/tmp`` and ``/run/lock`` are empty
and read-only, ``/dev/shm`` lies inside the scratch tmpfs; directories that ``nobody`` could not
reach (such as a Python installed under ``/root``) show only what the kernel needs; ``/proc``
hides other users' processes. Resource limits cap data memory (``RLIMIT_DATA``: a large
allocation raises ``MemoryError``), total address space (a backstop for shared mappings), file
size, open files, processes and threads, and optionally CPU time; core dumps are off. The
environment is rebuilt from a short allow-list, so nothing such as ``NBGRADER_EXECUTION`` tells
the notebook that grading is under way.

What is not isolated: the network (the kernel talks to nbgrader over 127.0.0.1, so it shares the
host's network namespace and can open connections); everything world-readable on the host
outside the ``hide`` paths (the course package, system files, other users' world-readable
files); the CPU (only ``cpu_seconds``, off by default, bounds it; nbgrader's cell timeout bounds
wall time); kernels graded at the same time all run as ``nobody`` and could signal or trace one
another; the limits apply per process, so a kernel that starts child processes gets the budget
once per process (the process cap bounds how many); the scratch tmpfs uses host memory beyond
the kernel's own limit; a notebook can still tell it is sandboxed (its uid, the read-only
``/tmp``). Without isolation (not root, no ``unshare``, or no permission to mount) the kernel
runs under the grader's own user with the resource limits and the clean environment only;
:func:`isolation_available` reports which case applies and the launcher never claims more: if
the kernelspec asks for isolation and any step fails, the kernel exits before it starts.

See the README, "Grading integrity".
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import functools
import json
import os
import pwd
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ftcourse.errors import CourseError

NOBODY = 65534
# What the kernel sees of the grader's Keras cache, read-only: weights and datasets.
KERAS_CACHE_FOLDERS = ("models", "datasets")
KERNEL_NAME = "python3"
# Never copied into the kernel's working folder (see _prepare_workdir).
NOTEBOOK_SUFFIX = ".ipynb"
# Where an isolated kernel sees its outbox (relative to scratch; the launcher owns .home).
OUTBOX = Path(".home") / "outbox"
# Directories any user may write to on a typical Linux host; each is replaced in the sandbox.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/run/lock")
# Variables passed from the grader's environment to the kernel; everything else is dropped.
PASS_THROUGH = (
    "LANG", "LC_ALL", "LC_CTYPE", "TZ", "FTCOURSE_PROFILE", "TF_CPP_MIN_LOG_LEVEL",
    "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "PYTHONHASHSEED",
    "JPY_PARENT_PID", "JPY_INTERRUPT_EVENT", "IPY_INTERRUPT_EVENT",
)

# mount(2) flags from <sys/mount.h>.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for a grading kernel; ``None`` switches a limit off.

    ``memory_mb`` is the data limit (``RLIMIT_DATA``: heap and private mappings), the budget a
    notebook's arrays and models live in; TensorFlow needs about 600 MB of it to import and
    build a small model. ``address_headroom_mb`` is added to it to form the address-space limit
    (``RLIMIT_AS``), which also counts shared mappings and TensorFlow's 2.2 GB of mapped
    libraries; set it to ``None`` on a GPU, where CUDA reserves far more address space than it
    uses. ``scratch_mb`` sizes the kernel's writable tmpfs (isolated kernels only).
    ``processes`` caps processes plus threads of all sandboxed kernels together (they share
    the ``nobody`` user).
    """

    memory_mb: int | None = 4096
    address_headroom_mb: int | None = 4096
    cpu_seconds: int | None = None
    open_files: int = 1024
    file_size_mb: int = 1024
    processes: int = 1024
    scratch_mb: int = 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise CourseError(
                    f"SandboxLimits.{field.name} is {value!r}: give a positive whole number"
                    + (" or None to switch it off." if field.default is None
                       or field.name in ("memory_mb", "address_headroom_mb") else ".")
                )


@functools.lru_cache(maxsize=1)
def isolation_available() -> bool:
    """Whether kernels can run isolated here: root, ``unshare`` and mounts in a namespace.

    The check mounts a tmpfs inside a throwaway mount namespace, so it fails wherever the
    launcher would.
    """
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        pwd.getpwuid(NOBODY)
    except KeyError:
        return False
    with tempfile.TemporaryDirectory(prefix="ftcourse-probe-") as probe:
        command = [unshare, "--mount", "--propagation", "private",
                   "mount", "-t", "tmpfs", "-o", "size=1m", "none", probe]
        try:
            done = subprocess.run(command, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


def write_kernelspec(target: Path, scratch: Path, hide: Sequence[Path],
                     limits: SandboxLimits | None = None, keras_cache: Path | None = None,
                     isolate: bool | None = None, outbox: Path | None = None) -> dict[str, str]:
    """Write a sandboxed ``python3`` kernelspec under ``target`` and return the env to set.

    ``scratch`` is an existing empty directory for the kernel's files, ``hide`` the paths the
    kernel must not see, ``keras_cache`` an optional Keras cache (such as ``~/.keras``) whose
    ``models/`` and ``datasets/`` folders the kernel may read, never write (the ``full``
    profile loads ImageNet weights and the flower photos from them, the ``ci`` profile its
    pre-trained bases). ``isolate=None`` isolates when
    :func:`isolation_available`; ``True`` insists (a kernel that cannot be isolated dies);
    ``False`` applies only limits and a clean environment. Set the returned variables (they
    put ``target`` first on ``JUPYTER_PATH``) in the environment of the nbgrader or nbclient
    run. The kernel runs ``sys.executable`` with ``-I`` (no ``PYTHONPATH``), so ``ftcourse``
    and ``ipykernel`` must be installed in that Python.

    ``outbox`` is an existing empty host folder the kernel may write to, the one place whose
    files outlive an isolated kernel (the grader collects results there): the launcher hands
    it to ``nobody`` and binds it at :func:`kernel_outbox`. Give each kernel a fresh one inside
    a folder only root can enter, never one shared between submissions.
    """
    limits = limits or SandboxLimits()
    scratch = Path(scratch).absolute()
    if not scratch.is_dir():
        raise CourseError(f"The scratch folder {scratch} does not exist: create it first.")
    hidden = [Path(path).resolve() for path in hide]  # a symlink hides its target
    for path in hidden:
        if path == Path("/") or _is_under(scratch, path) or _is_under(path, scratch):
            raise CourseError(
                f"Cannot hide {path}: it overlaps the scratch folder {scratch}. "
                "Keep scratch outside every hidden path."
            )
    if isolate is None:
        isolate = isolation_available()
    # -I: the launcher starts as root in the submission's folder; never import from there.
    argv = [sys.executable, "-I", "-m", "ftcourse.grading.sandbox", "--scratch", str(scratch),
            "--limits", json.dumps(dataclasses.asdict(limits))]
    for path in hidden:
        argv += ["--hide", str(path)]
    if keras_cache is not None:
        argv += ["--keras-cache", str(Path(keras_cache).absolute())]
    if outbox is not None:
        outbox = Path(outbox).absolute()
        if not outbox.is_dir() or outbox.is_symlink() or any(outbox.iterdir()):
            raise CourseError(f"The outbox {outbox} must be an existing empty folder: create a "
                              "fresh one for each kernel.")
        if _is_under(outbox, scratch) or any(_is_under(outbox, path) for path in hidden):
            raise CourseError(f"The outbox {outbox} lies inside scratch or a hidden path: "
                              "put it beside scratch.")
        argv += ["--outbox", str(outbox)]
    if isolate:
        unshare = shutil.which("unshare") or "unshare"
        argv = [unshare, "--mount", "--propagation", "private", *argv, "--isolate"]
    argv += ["-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3 (sandboxed)", "language": "python",
            "metadata": {"debugger": False}}
    folder = Path(target) / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    existing = os.environ.get("JUPYTER_PATH")
    jupyter_path = str(Path(target).absolute())
    return {"JUPYTER_PATH": jupyter_path + (os.pathsep + existing if existing else "")}


def kernel_outbox(scratch: Path, outbox: Path, isolated: bool) -> Path:
    """The path at which a kernel started by :func:`write_kernelspec` writes to its outbox."""
    return Path(scratch).absolute() / OUTBOX if isolated else Path(outbox).absolute()


# --- The launcher: runs as the kernel process, then becomes ipykernel. ---

def main(argv: Sequence[str] | None = None) -> None:
    """Confine this process, then replace it with ``ipykernel``
    (``python -m ftcourse.grading.sandbox``)."""
    parser = argparse.ArgumentParser(prog="python -m ftcourse.grading.sandbox",
                                     allow_abbrev=False)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--hide", type=Path, action="append", default=[])
    parser.add_argument("--keras-cache", type=Path)
    parser.add_argument("--outbox", type=Path)
    parser.add_argument("--limits", default="{}")
    parser.add_argument("--isolate", action="store_true")
    parser.add_argument("-f", dest="connection_file", type=Path, required=True)
    args, kernel_args = parser.parse_known_args(argv)
    limits = SandboxLimits(**json.loads(args.limits))
    try:
        connection = args.connection_file.read_bytes()
        if args.isolate:
            work = _isolate(args.scratch, args.hide, args.keras_cache, limits, connection,
                            args.outbox)
        else:
            work = Path(tempfile.mkdtemp(prefix="kernel-", dir=args.scratch))
            _prepare_workdir(work, args.hide, connection, Path.cwd())
            for folder in _cache_folders(args.keras_cache):
                (work / ".home" / ".keras" / folder.name).symlink_to(folder)
        connection_file = work / ".home" / "connection.json"
        _apply_limits(limits, per_user=args.isolate)
        os.chdir(work)
        env = kernel_environment(work, os.environ)
        if args.isolate:
            _drop_privileges()
    except Exception as error:
        mode = "isolation" if args.isolate else "sandbox setup"
        print(f"ftcourse.grading.sandbox: {mode} failed, kernel not started: {error}",
              file=sys.stderr)
        sys.exit(1)
    command = [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file),
               *kernel_args]
    os.execve(sys.executable, command, env)


def kernel_environment(work: Path, host: dict[str, str] | os._Environ) -> dict[str, str]:
    """The kernel's environment: an allow-list from ``host`` plus private dirs under ``work``."""
    home = work / ".home"
    env = {key: host[key] for key in PASS_THROUGH if key in host}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin",
                              "/bin"]),
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        MPLCONFIGDIR=str(home / ".config" / "matplotlib"),
        KERAS_HOME=str(home / ".keras"),
        IPYTHONDIR=str(home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local" / "share" / "jupyter" / "runtime"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        PYTHONNOUSERSITE="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _cache_folders(keras_cache: Path | None) -> list[Path]:
    """The folders of the grader's Keras cache that the kernel sees: weights and datasets."""
    if keras_cache is None:
        return []
    return [keras_cache / name for name in KERAS_CACHE_FOLDERS if (keras_cache / name).is_dir()]


def _isolate(scratch: Path, hide: list[Path], keras_cache: Path | None,
             limits: SandboxLimits, connection: bytes, outbox: Path | None = None) -> Path:
    """Build the kernel's view of the file system (as root, in a new mount namespace)."""
    start = Path.cwd()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("none", scratch, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={limits.scratch_mb}m,mode=0700,uid={NOBODY},gid={NOBODY}")
    _prepare_workdir(scratch, hide, connection, start)
    for name in KERAS_CACHE_FOLDERS:
        (scratch / ".home" / ".keras" / name).mkdir()
    _chown_tree(scratch)
    for folder in _cache_folders(keras_cache):  # read-only: the kernel never writes the cache
        view = scratch / ".home" / ".keras" / folder.name
        _mount(str(folder), view, None, MS_BIND | MS_REC)
        _mount(None, view, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if outbox is not None:
        _bind_outbox(outbox, scratch / OUTBOX)
    # Hidden files are covered by an empty read-only file (bound, then unlinked from scratch).
    empty = scratch / ".home" / ".empty"
    empty.touch(mode=0o444)
    for path in hide:
        if path.is_symlink():
            raise OSError(f"{path} became a symlink after the kernelspec was written")
        if not path.exists():
            continue
        if path.is_dir():
            _mount("none", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   "size=4k,mode=0555")
        else:
            _mount(str(empty), path, None, MS_BIND)
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    empty.unlink()
    needed = _needed_paths(scratch, hide)
    covers = [Path(p) for p in SHARED_WRITABLE if os.path.isdir(p) and not os.path.islink(p)]
    covers += _blocked_ancestors(needed)
    for cover in _outermost(covers):
        _cover(cover, [p for p in needed if _is_under(p, cover)])
    shm = Path("/dev/shm")
    if shm.is_dir():
        _mount(str(scratch / ".home" / "shm"), shm, None, MS_BIND)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    return scratch


def _bind_outbox(outbox: Path, inside: Path) -> None:
    """Hand the host folder ``outbox`` to ``nobody`` and bind it, writable, at ``inside``."""
    info = os.lstat(outbox)
    if not stat.S_ISDIR(info.st_mode) or os.listdir(outbox):
        raise OSError(f"the outbox {outbox} is not an empty folder")
    os.lchown(outbox, NOBODY, NOBODY)
    os.chmod(outbox, 0o700)
    inside.mkdir()
    os.lchown(inside, NOBODY, NOBODY)
    _mount(str(outbox), inside, None, MS_BIND)
    _mount(None, inside, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _prepare_workdir(work: Path, hide: list[Path], connection: bytes, start: Path) -> None:
    """Create the kernel's home folders and connection file, then copy ``start`` into ``work``,
    notebooks left out.

    The home folders exist before the copy, so a submitted ``.home`` symlink cannot redirect
    the launcher's own writes. nbgrader starts the kernel in the autograded folder, where the
    notebook being graded already holds its hidden tests: no notebook is copied.
    """
    home = work / ".home"
    for sub in ("tmp", "shm", ".keras", ".config/matplotlib", ".ipython", ".cache"):
        (home / sub).mkdir(parents=True)
    (home / "shm").chmod(0o1777)
    (home / "connection.json").write_bytes(connection)
    (home / "connection.json").chmod(0o600)
    # Hidden paths that contain the start folder guard other folders, not this one.
    skip = [path for path in hide if not _is_under(start, path)]
    _copy_tree(start, work, skip, top_skip={".home"}, suffix_skip=NOTEBOOK_SUFFIX)


def _copy_tree(source: Path, dest: Path, skip: list[Path], top_skip: Iterable[str] = (),
               suffix_skip: str | None = None) -> None:
    """Copy files, folders and symlinks (as links, never followed); skip hidden paths and
    names ending in ``suffix_skip``."""
    for entry in os.scandir(source):
        path = Path(entry.path)
        if (entry.name in top_skip or any(_is_under(path, hidden) for hidden in skip)
                or (suffix_skip and entry.name.lower().endswith(suffix_skip))):
            continue
        target = dest / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(path), target)
        elif entry.is_dir(follow_symlinks=False):
            target.mkdir()
            _copy_tree(path, target, skip, suffix_skip=suffix_skip)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(path, target, follow_symlinks=False)


def _chown_tree(root: Path) -> None:
    """Hand ``root`` and everything in it to ``nobody``, never following symlinks."""
    os.lchown(root, NOBODY, NOBODY)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), NOBODY, NOBODY)


def _needed_paths(scratch: Path, hide: list[Path]) -> list[Path]:
    """Folders the kernel must reach: Python, its packages, this course package, scratch."""
    candidates: list[str | Path] = [sys.base_prefix, sys.prefix, Path(sys.executable).parent,
                  Path(__file__).resolve().parents[2], *sys.path[1:]]
    paths = {Path(os.path.realpath(p)) for p in candidates if p and os.path.isdir(p)}
    paths = {p for p in paths if not any(_is_under(p, hidden) for hidden in hide)}
    return _outermost([*paths, scratch])


def _blocked_ancestors(paths: Iterable[Path]) -> list[Path]:
    """For each path, the outermost ancestor that other users cannot traverse, if any."""
    blocked = []
    for path in paths:
        for ancestor in reversed(path.parents):
            if ancestor != Path("/") and not os.stat(ancestor).st_mode & stat.S_IXOTH:
                blocked.append(ancestor)
                break
    return blocked


def _cover(folder: Path, keep: list[Path]) -> None:
    """Put an empty read-only tmpfs on ``folder``, with only the ``keep`` paths mounted back."""
    handles = [os.open(path, os.O_PATH) for path in keep]
    try:
        _mount("none", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        for path, handle in zip(keep, handles, strict=True):
            path.mkdir(parents=True, exist_ok=True)
            _mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
        _mount(None, folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for handle in handles:
            os.close(handle)


def _apply_limits(limits: SandboxLimits, per_user: bool) -> None:
    """Set soft and hard limits (so the kernel cannot raise them again)."""
    mb = 1 << 20
    settings = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, limits.open_files),
                (resource.RLIMIT_FSIZE, limits.file_size_mb * mb)]
    if limits.memory_mb is not None:
        settings.append((resource.RLIMIT_DATA, limits.memory_mb * mb))
        if limits.address_headroom_mb is not None:
            total = limits.memory_mb + limits.address_headroom_mb
            settings.append((resource.RLIMIT_AS, total * mb))
    if limits.cpu_seconds is not None:
        settings.append((resource.RLIMIT_CPU, limits.cpu_seconds))
    if per_user:  # RLIMIT_NPROC counts every process of the uid: only meaningful for nobody.
        settings.append((resource.RLIMIT_NPROC, limits.processes))
    for which, value in settings:
        resource.setrlimit(which, (value, value))


def _drop_privileges() -> None:
    """Become ``nobody`` for good: no groups, no way back to root through setuid programs."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    if _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if os.getuid() != NOBODY or os.geteuid() != NOBODY or os.getgid() != NOBODY:
        raise OSError("could not switch to user nobody")


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    return libc


def _mount(source: str | None, target: Path | str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def encode(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if _libc().mount(encode(source), encode(str(target)), encode(fstype), flags, encode(data)):
        error = ctypes.get_errno()
        raise OSError(error, f"mount on {target} failed: {os.strerror(error)}")


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Drop every path that lies inside another one of ``paths``."""
    unique = sorted(set(paths))
    return [p for p in unique if not any(p != q and _is_under(p, q) for q in unique)]


if __name__ == "__main__":
    main()
