"""The ``ftcourse`` command: doctor, fetch, and the instructor's release and grade."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ftcourse.cache import keras_home
from ftcourse.config import PROFILE_ENV, get_config
from ftcourse.errors import CourseError
from ftcourse.grading.options import JUDGE_TIMEOUT_S, NOTEBOOK_TIMEOUT_S, PROFILES
from ftcourse.grading.sandbox import SandboxLimits

if TYPE_CHECKING:
    from ftcourse.grading.options import GradingOptions


def doctor(args: argparse.Namespace) -> int:
    """Print versions, devices, the profile, and what the local cache already holds."""
    import keras
    import nbgrader
    import tensorflow as tf

    from ftcourse.config import describe_devices

    cfg = get_config()
    cache = keras_home()
    weights = sorted(p.name for p in (cache / "models").glob("*.h5")
                     if not p.name.startswith("ftcourse_"))
    ci_bases = sorted(p.name for p in (cache / "models").glob("ftcourse_*.weights.h5"))
    datasets = sorted(p.name for p in (cache / "datasets").glob("*") if p.is_dir())
    print(f"Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}, nbgrader {nbgrader.__version__}")
    print(f"Devices: {describe_devices()}")
    print(f"Profile: {cfg.profile} (set {PROFILE_ENV}=ci or full); dataset {cfg.dataset}, "
          f"image size {cfg.image_size}, weights {cfg.weights}")
    print(f"Keras cache: {cache}")
    print(f"  weights:  {', '.join(weights) or 'none (run `ftcourse fetch`)'}")
    print(f"  ci bases: {', '.join(ci_bases) or 'none (run `ftcourse fetch --profile ci`)'}")
    print(f"  datasets: {', '.join(datasets) or 'none'}")
    return 0


def fetch(args: argparse.Namespace) -> int:
    """Fill the Keras cache: ImageNet weights and the flower photos (``--profile ci``: build
    the ci profile's pre-trained bases instead, offline)."""
    if args.profile == "ci":
        return _build_ci_bases()
    from ftcourse.data import fetch_flowers
    from ftcourse.models import ARCHITECTURES, build_base

    failures = 0
    if args.only in (None, "weights"):
        fetched = []
        for name, spec in ARCHITECTURES.items():
            sizes = weight_sizes_to_fetch(spec.weight_sizes, spec.default_size, args.image_size)
            for size in sizes:
                print(f"Fetching ImageNet weights for {name} ({size}x{size}) ...", flush=True)
                failures += _attempt(functools.partial(build_base, name, size, "imagenet"))
            fetched.append(f"{name} at {', '.join(map(str, sizes))}" if spec.weight_sizes
                           else f"{name} (one file for every size)")
        print(f"Weights asked for: {'; '.join(fetched)}. Another MobileNetV2 size needs "
              "`ftcourse fetch --only weights --image-size SIZE`.")
    if args.only in (None, "flowers"):
        print("Fetching the flower photos ...", flush=True)
        failures += _attempt(lambda: print(
            f"  ready in {fetch_flowers(args.flowers_url, args.flowers_sha256)}"))
    print("Done." if not failures else f"{failures} download(s) failed; see above.")
    return 1 if failures else 0


def weight_sizes_to_fetch(available: frozenset[int] | None, default: int,
                          asked: Sequence[int]) -> list[int]:
    """The image sizes to fetch an architecture's weights at: each size asked for that it has
    weights for (else its default size), once; a single one when its weights fit any size."""
    sizes = sorted({size if available is None or size in available else default
                    for size in asked})
    return sizes[:1] if available is None else sizes


def _build_ci_bases() -> int:
    """Pre-train (once) each ci base on the digits 0-4; say where each one is."""
    from ftcourse.pretrain import RECIPES, ensure_pretrained

    size = get_config("ci").image_size
    failures = 0
    for arch in RECIPES:
        print(f"ci base {arch} ({size}x{size}) ...", flush=True)
        failures += _attempt(functools.partial(_report_ready, arch, size, ensure_pretrained))
    print("Done." if not failures else f"{failures} base(s) could not be built; see above.")
    return 1 if failures else 0


def _report_ready(arch: str, size: int, build: Callable[[str, int], Path]) -> None:
    print(f"  ready: {build(arch, size)}")


def _attempt(action: Callable[[], object]) -> int:
    try:
        action()
    except CourseError as error:
        print(f"  failed: {error}", file=sys.stderr)
        return 1
    return 0


def release(args: argparse.Namespace) -> int:
    """Regenerate exercises/ from solutions/ with nbgrader."""
    from ftcourse.grading.release import release_all

    return release_all(Path(args.course_dir))


def lab(args: argparse.Namespace) -> int:
    """Start JupyterLab with the course's settings (jupyter_config/); arguments go to it."""
    import subprocess

    from ftcourse.grading.course import jupyter_environment

    extra = args.jupyter_args[1:] if args.jupyter_args[:1] == ["--"] else args.jupyter_args
    command = [sys.executable, "-m", "jupyter", "lab", *extra]
    return subprocess.call(command, env=jupyter_environment(Path(args.course_dir)))


def handout(args: argparse.Namespace) -> int:
    """Write what students get (lessons, exercises, the helpers) into a new folder."""
    from ftcourse.grading.handout import write_handout

    target = write_handout(Path(args.course_dir), Path(args.folder))
    print(f"Wrote the student handout to {target}: hand out this folder, never the repository.")
    return 0


def grade(args: argparse.Namespace) -> int:
    """Autograde a folder of submissions; write grades.csv, feedback and a summary."""
    from ftcourse.grading.batch import grade_submissions

    return grade_submissions(Path(args.submissions), Path(args.course_dir),
                             grading_options(args), assignment=args.assignment)


def grading_options(args: argparse.Namespace) -> GradingOptions:
    """The options of ``ftcourse grade``, as :class:`~ftcourse.grading.GradingOptions`."""
    from ftcourse.grading.options import GradingOptions

    defaults = SandboxLimits()
    limits = SandboxLimits(
        memory_mb=None if args.memory_mb == 0 else args.memory_mb,
        address_headroom_mb=(None if args.address_headroom_mb == 0
                             else args.address_headroom_mb),
        cpu_seconds=args.cpu_seconds or None,
        open_files=defaults.open_files, file_size_mb=defaults.file_size_mb,
        processes=args.processes, scratch_mb=args.scratch_mb)
    return GradingOptions(
        output=Path(args.output), workers=args.workers, timeout=args.timeout,
        cell_timeout=args.cell_timeout, profile=args.profile, sandboxed=args.sandbox,
        isolate={"auto": None, "on": True, "off": False}[args.isolate], limits=limits,
        keras_cache=Path(args.keras_cache), trusted=args.trusted,
        judge_timeout=args.judge_timeout, scheduler=args.scheduler or args.cluster,
        gradebook=args.gradebook)


def _grade_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    limits = SandboxLimits()
    grade_parser = commands.add_parser(
        "grade", help=grade.__doc__, description=grade.__doc__,
        epilog="Exit status: 0 when every submission was graded, 1 when some were not "
               "(see grades.csv), 2 on a usage or course error.")
    grade_parser.add_argument("submissions", help="the folder of submissions (nbgrader's "
                              "submitted/ layout, or files and zips named after the students)")
    grade_parser.add_argument("--assignment", help="grade only this assignment")
    grade_parser.add_argument("--course-dir", default=".", help="the course's root folder "
                              "(holding solutions/ and nbgrader_config.py)")
    grade_parser.add_argument("--output", default="grading-output",
                              help="where grades.csv, feedback/ and logs/ are written "
                              "(default: %(default)s)")
    grade_parser.add_argument("--no-gradebook", dest="gradebook", action="store_false",
                              help="leave the course's gradebook.db as it is (by default the "
                              "final scores are recorded there, for formgrader and nbgrader "
                              "export)")
    grade_parser.add_argument("--workers", type=int, default=1,
                              help="submissions graded at the same time (default: 1)")
    grade_parser.add_argument("--timeout", type=float, default=NOTEBOOK_TIMEOUT_S,
                              help="seconds allowed per submission (default: %(default)g)")
    grade_parser.add_argument("--cell-timeout", type=int,
                              help="seconds allowed per cell (default: from nbgrader_config.py, "
                              "else 600)")
    grade_parser.add_argument("--profile", choices=PROFILES,
                              help=f"{PROFILE_ENV} for the kernels and trusted checks "
                              "(default: this shell's)")
    cluster = grade_parser.add_argument_group(
        "cluster", "grade on Dask workers instead of --workers local processes (needs "
        'pip install "ftcourse[cluster]"; see README, Grading a big class)')
    where = cluster.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="the Dask scheduler of an existing cluster, e.g. tcp://HOST:8786")
    where.add_argument("--cluster", metavar="local:N",
                       help="start a Dask LocalCluster of N worker processes for this run")
    sandbox = grade_parser.add_argument_group(
        "sandbox", "how each student's kernel is confined (see README, Grading integrity)")
    sandbox.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                         help="run kernels unconfined (only for notebooks you trust)")
    sandbox.add_argument("--isolate", choices=["auto", "on", "off"], default="auto",
                         help="run kernels as nobody in a private mount namespace: auto where "
                         "possible (root, unshare; the default), on insists, off applies "
                         "only limits")
    sandbox.add_argument("--memory-mb", type=int, default=limits.memory_mb,
                         help="data memory per kernel process in MB (0: no limit; default: "
                         "%(default)s)")
    sandbox.add_argument("--address-headroom-mb", type=int, default=limits.address_headroom_mb,
                         help="address space beyond --memory-mb in MB (0: no limit, for a "
                         "GPU; default: %(default)s)")
    sandbox.add_argument("--cpu-seconds", type=int, default=0,
                         help="CPU seconds per kernel process (0: no limit)")
    sandbox.add_argument("--processes", type=int, default=limits.processes,
                         help="processes and threads of all isolated kernels together "
                         "(default: %(default)s)")
    sandbox.add_argument("--scratch-mb", type=int, default=limits.scratch_mb,
                         help="size of an isolated kernel's writable scratch folder in MB "
                         "(default: %(default)s)")
    sandbox.add_argument("--keras-cache", default=str(keras_home()),
                         help="the Keras cache whose weights and datasets kernels may read "
                         "(default: $KERAS_HOME or ~/.keras, here %(default)s)")
    trusted = grade_parser.add_argument_group(
        "trusted checks", "solutions/<assignment>/trusted_checks.py, run outside the kernel")
    trusted.add_argument("--no-trusted", dest="trusted", action="store_false",
                         help="score by nbgrader's in-kernel tests only")
    trusted.add_argument("--judge-timeout", type=float, default=JUDGE_TIMEOUT_S,
                         help="seconds allowed for a submission's trusted checks "
                         "(default: %(default)g)")
    grade_parser.set_defaults(run=grade)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftcourse", description=__doc__,
        epilog="Exit status: 0 on success, 1 when some work failed (a download, a "
               "submission not graded), 2 on a usage or course error.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help=doctor.__doc__).set_defaults(run=doctor)
    fetch_parser = commands.add_parser("fetch", help=fetch.__doc__)
    fetch_parser.add_argument("--profile", choices=["full", "ci"], default="full",
                              help="full: download ImageNet weights and the flower photos; "
                              "ci: pre-train the ci profile's bases offline (default: full)")
    fetch_parser.add_argument("--only", choices=["weights", "flowers"])
    fetch_parser.add_argument(
        "--image-size", type=int, nargs="+", default=sorted({get_config("full").image_size, 224}),
        help="the sizes to fetch MobileNetV2's weights at (one file per size; the other bases "
             "have one file for every size); default: the full profile's 160 and 224")
    fetch_parser.add_argument("--flowers-url", help="a mirror of flower_photos.tgz")
    fetch_parser.add_argument("--flowers-sha256", help="the mirror's SHA-256, if it is not "
                              "the same file as the original (default: the original's)")
    fetch_parser.set_defaults(run=fetch)
    release_parser = commands.add_parser("release", help=release.__doc__)
    release_parser.add_argument("--course-dir", default=".")
    release_parser.set_defaults(run=release)
    lab_parser = commands.add_parser("lab", help=lab.__doc__)
    lab_parser.add_argument("--course-dir", default=".")
    lab_parser.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                            help="after --, passed to `jupyter lab` (ftcourse lab -- --port 8899)")
    lab_parser.set_defaults(run=lab)
    handout_parser = commands.add_parser("handout", help=handout.__doc__)
    handout_parser.add_argument("folder", help="a new (or empty) folder for the handout")
    handout_parser.add_argument("--course-dir", default=".")
    handout_parser.set_defaults(run=handout)
    _grade_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; its exit status (usage and course errors: 2)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
