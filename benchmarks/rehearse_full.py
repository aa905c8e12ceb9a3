"""Rehearse the `full` profile: run every lesson, grade every solution and untouched exercise.

Run from the course root (a rehearsal of the whole course takes most of an hour on 2 cores):

    python benchmarks/rehearse_full.py --stand-in      # offline: stand-in weights and photos
    python benchmarks/rehearse_full.py                 # the real cache, after `ftcourse fetch`
    python benchmarks/rehearse_full.py --stand-in --lessons 03 --assignments ps02

It prints one table for the lessons (wall time, CPU seconds and peak memory of the kernel,
finished or the first error) and one for the graded notebooks (score, status, seconds), each
graded by ``ftcourse grade --profile full`` as an instructor would.

``--stand-in`` builds, in a temporary Keras cache, random weights of each base at the names
Keras downloads them to and 3,670 synthetic flower photos (``benchmarks/stand_ins.py``), and
runs everything with a Python that accepts those weight files where Keras checks a file's
hash. With stand-ins, accuracies mean nothing, so the lessons' checks of accuracy can fail:
every cell still runs, and the table lists each failed ``assert`` apart from real errors. What
the rehearsal measures then is time, memory and whether each notebook runs.

It exits 0 when every lesson ran (failed checks allowed with ``--stand-in``) and every
notebook was graded as expected (solutions full marks, exercises zero), else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stand_ins
import time_lessons

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "ftcourse-rehearsal"
# What the lessons, the exercises and the README's example load in `full`.
WEIGHTS = (("mobilenet_v2", 160), ("mobilenet_v2", 224), ("resnet50", 160), ("vgg16", 160),
           ("inception_v3", 160))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stand-in", action="store_true",
                        help="offline: stand-in weights and photos in a temporary Keras cache")
    parser.add_argument("--lessons", nargs="*", default=None,
                        help="lesson numbers or names to run (default: all; none: skip)")
    parser.add_argument("--assignments", nargs="*", default=None,
                        help="assignments to grade (default: all; none: skip)")
    parser.add_argument("--workers", type=int, default=2, help="for ftcourse grade")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per lesson cell")
    parser.add_argument("--keep", type=Path, help="build the stand-ins here and keep them")
    return parser.parse_args(argv)


def chosen(folder: Path, pattern: str, names: list[str] | None) -> list[Path]:
    found = sorted(folder.glob(pattern))
    if names is None:
        return found
    return [path for path in found if any(path.name.startswith(name) for name in names)]


def build_stand_ins(work: Path) -> tuple[Path, Path]:
    """The stand-in Keras cache and the Python that accepts its weight files."""
    keras_home = work / "keras"
    started = time.perf_counter()
    photos = stand_ins.make_flower_photos(work / "photos")
    archive, digest = stand_ins.flower_archive(photos, work / "flower_photos.tgz")
    os.environ["KERAS_HOME"] = str(keras_home)  # before Keras is imported
    import ftcourse

    ftcourse.import_tensorflow()
    from ftcourse.data import fetch_flowers

    with contextlib.redirect_stdout(io.StringIO()):  # Keras' download progress bar
        fetch_flowers(archive.as_uri(), digest)  # the real loading code, from a file:// mirror
    sample = stand_ins.sample_photos(photos)
    files = []
    for arch, size in WEIGHTS:
        wanted = stand_ins.keras_weight_file(arch, size)
        files.append(stand_ins.write_weights(keras_home, wanted, sample))
        checked = "checked against the real file's hash" if wanted.hashed else "no hash check"
        print(f"  stand-in {arch} {size}x{size}: models/{wanted.name} ({checked})", flush=True)
    python = stand_ins.hooked_python(work / "python", files)
    print(f"Stand-ins built in {time.perf_counter() - started:.0f} s: "
          f"{sum(1 for _ in photos.glob('*/*.jpg'))} photos, {len(files)} weight files.")
    print("Keras' file-hash check is bypassed in the processes this rehearsal starts (lesson "
          "and grading kernels included), for these files only, matched by SHA-256; "
          "the flower archive is fetched with its own SHA-256. Accuracies mean nothing here.")
    return keras_home, python


def environment(keras_home: Path) -> dict[str, str]:
    env = dict(os.environ, FTCOURSE_PROFILE="full", KERAS_HOME=str(keras_home))
    # nbconvert's templates and kernels of this environment, for a Python whose prefix differs.
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "share" / "jupyter"),
                                                        os.environ.get("JUPYTER_PATH")]))
    return env


def write_kernel(python: Path) -> None:
    """A kernelspec named ``KERNEL`` that runs ``python``, where that Python looks for one."""
    folder = Path(subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    spec = folder / "share" / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ftcourse rehearsal", "language": "python"}))


def run_lessons(lessons: list[Path], python: Path, env: dict[str, str], timeout: int,
                stand_in: bool) -> bool:
    print(f"\n{'lesson':<40}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}  result", flush=True)
    ok = True
    for path in lessons:
        run = time_lessons.measure(path, timeout, python=str(python), kernel=KERNEL,
                                   allow_errors=stand_in, env=env)
        result = run.error or "finished"
        if run.failed_checks:
            result += f"; {len(run.failed_checks)} failed check(s): " + " | ".join(
                run.failed_checks)
        ok &= not run.error
        print(f"{path.name[:39]:<40}{run.wall_s:>8.0f}{run.cpu_s:>8.0f}{run.peak_mb:>9.0f}  "
              f"{result}", flush=True)
    return ok


def grade(assignments: list[str], python: Path, env: dict[str, str], keras_home: Path,
          work: Path, workers: int) -> bool:
    """Grade each assignment's solution and its untouched exercise with `ftcourse grade`."""
    submitted = work / "class" / "submitted"
    for assignment in assignments:
        for student, folder in (("solution", "solutions"), ("untouched", "exercises")):
            notebook = ROOT / folder / assignment / f"{assignment}.ipynb"
            target = submitted / student / assignment
            target.mkdir(parents=True)
            shutil.copy(notebook, target / notebook.name)
    output = work / "grading-output"
    command = [str(python), "-m", "ftcourse.cli", "grade", str(submitted.parent),
               "--course-dir", str(ROOT), "--output", str(output), "--profile", "full",
               "--keras-cache", str(keras_home), "--workers", str(workers), "--no-gradebook"]
    print(f"\nGrading: ftcourse {' '.join(command[3:])}", flush=True)
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    print(f"ftcourse grade exited {finished.returncode} after "
          f"{time.perf_counter() - started:.0f} s")
    if not (output / "grades.csv").is_file():
        print(finished.stdout[-2000:] + finished.stderr[-2000:])
        return False
    with open(output / "grades.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    print(f"{'notebook':<44}{'score':>12}{'status':>11}{'seconds':>9}  reason")
    ok = True
    for row in sorted(rows, key=lambda r: (r["assignment"], r["student"])):
        total, possible = float(row["total"] or 0), float(row["max"] or 0)
        expected = total == (possible if row["student"] == "solution" else 0)
        ok &= expected and row["status"] == "graded"
        print(f"{row['student'] + ' ' + row['assignment']:<44}{total:>5g} of {possible:<4g}"
              f"{row['status']:>11}{float(row['seconds'] or 0):>9.0f}  "
              f"{(row['reason'] + ' ' + row['notes']).strip()[:80]}"
              f"{'' if expected else '  (NOT AS EXPECTED)'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lessons = chosen(ROOT / "lessons", "*.ipynb", args.lessons)
    assignments = [p.name for p in chosen(ROOT / "solutions", "ps*", args.assignments)]
    print(f"Rehearsal of the full profile, {os.cpu_count()} cores; command: python "
          f"{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}", flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="rehearsal-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.stand_in:
            keras_home, python = build_stand_ins(work)
        else:
            from ftcourse.cache import keras_home as default_home

            keras_home, python = default_home(), Path(sys.executable)
        env = environment(keras_home)
        write_kernel(python)
        ok = run_lessons(lessons, python, env, args.timeout, args.stand_in)
        if assignments:
            ok &= grade(assignments, python, env, keras_home, work, args.workers)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
