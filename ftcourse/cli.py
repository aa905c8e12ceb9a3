"""The ``ftcourse`` command: doctor, fetch, and the instructor's release and grade."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ftcourse.config import PROFILE_ENV, get_config
from ftcourse.errors import CourseError


def keras_cache() -> Path:
    """Where Keras keeps downloaded weights and datasets (``$KERAS_HOME`` or ``~/.keras``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def doctor(args: argparse.Namespace) -> int:
    """Print versions, devices, the profile, and what the local cache already holds."""
    import keras
    import nbgrader
    import tensorflow as tf

    from ftcourse.config import describe_devices

    cfg = get_config()
    cache = keras_cache()
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
        for name, spec in ARCHITECTURES.items():
            size = args.image_size if spec.weight_sizes is None or (
                args.image_size in spec.weight_sizes) else spec.default_size
            print(f"Fetching ImageNet weights for {name} ({size}x{size}) ...", flush=True)
            failures += _attempt(lambda n=name, s=size: build_base(n, s, "imagenet"))
    if args.only in (None, "flowers"):
        print("Fetching the flower photos ...", flush=True)
        failures += _attempt(lambda: print(
            f"  ready in {fetch_flowers(args.flowers_url, args.flowers_sha256)}"))
    print("Done." if not failures else f"{failures} download(s) failed; see above.")
    return 1 if failures else 0


def _build_ci_bases() -> int:
    """Pre-train (once) each ci base on the digits 0-4; say where each one is."""
    from ftcourse.pretrain import RECIPES, ensure_pretrained

    size = get_config("ci").image_size
    failures = 0
    for arch in RECIPES:
        print(f"ci base {arch} ({size}x{size}) ...", flush=True)
        failures += _attempt(lambda a=arch: print(f"  ready: {ensure_pretrained(a, size)}"))
    print("Done." if not failures else f"{failures} base(s) could not be built; see above.")
    return 1 if failures else 0


def _attempt(action) -> int:
    try:
        action()
    except CourseError as error:
        print(f"  failed: {error}", file=sys.stderr)
        return 1
    return 0


def release(args: argparse.Namespace) -> int:
    """Regenerate exercises/ from solutions/ with nbgrader."""
    from ftcourse.grading import release_all

    return release_all(Path(args.course_dir))


def grade(args: argparse.Namespace) -> int:
    """Autograde a folder of submissions; write grades.csv, feedback and a summary."""
    from ftcourse.grading import grade_submissions

    return grade_submissions(Path(args.submissions), assignment=args.assignment,
                             course_dir=Path(args.course_dir), output=Path(args.output),
                             workers=args.workers, timeout=args.timeout,
                             cell_timeout=args.cell_timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftcourse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help=doctor.__doc__).set_defaults(run=doctor)
    fetch_parser = commands.add_parser("fetch", help=fetch.__doc__)
    fetch_parser.add_argument("--profile", choices=["full", "ci"], default="full",
                              help="full: download ImageNet weights and the flower photos; "
                              "ci: pre-train the ci profile's bases offline (default: full)")
    fetch_parser.add_argument("--only", choices=["weights", "flowers"])
    fetch_parser.add_argument("--image-size", type=int, default=get_config("full").image_size)
    fetch_parser.add_argument("--flowers-url", help="a mirror of flower_photos.tgz")
    fetch_parser.add_argument("--flowers-sha256", help="the mirror's SHA-256, if it is not "
                              "the same file as the original (default: the original's)")
    fetch_parser.set_defaults(run=fetch)
    release_parser = commands.add_parser("release", help=release.__doc__)
    release_parser.add_argument("--course-dir", default=".")
    release_parser.set_defaults(run=release)
    grade_parser = commands.add_parser("grade", help=grade.__doc__)
    grade_parser.add_argument("submissions")
    grade_parser.add_argument("--assignment", help="grade only this assignment")
    grade_parser.add_argument("--course-dir", default=".")
    grade_parser.add_argument("--output", default="grading-output")
    grade_parser.add_argument("--workers", type=int, default=1)
    grade_parser.add_argument("--timeout", type=float, default=1800,
                              help="seconds allowed per submission (default 1800)")
    grade_parser.add_argument("--cell-timeout", type=int,
                              help="seconds allowed per cell (default: from nbgrader_config.py, "
                              "else 600)")
    grade_parser.set_defaults(run=grade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
