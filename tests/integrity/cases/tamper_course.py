# ruff: noqa: F821  (PROBE, ASSIGNMENTS: set by hostile_cases.py)
# Create probe files in the grading code, the course's folders and site-packages.
import pathlib
import site

import ftcourse

_package = pathlib.Path(ftcourse.__file__).resolve().parent
_targets = [_package / f"{PROBE}.py"]
_targets += [_package.parent / folder / assignment / f"{PROBE}.txt"
             for folder in ("solutions", "exercises") for assignment in ASSIGNMENTS]
_targets += [pathlib.Path(p) / f"{PROBE}.pth" for p in site.getsitepackages()]
_targets += [p / f"{PROBE}.txt" for p in pathlib.Path.cwd().parents
             if (p / "gradebook.db").is_file() or (p / "solutions").is_dir()]
for _target in _targets:
    try:
        _target.write_text(f"# {PROBE}\n")
        print("wrote", _target)
    except OSError as error:
        print("refused", _target, type(error).__name__)
