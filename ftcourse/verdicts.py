"""Trusted verdicts: grade each part from plain data, outside the student's kernel.

nbgrader runs its tests inside the student's kernel, after the student's code, so that code can
change what the tests see. Here the kernel only *hands over* each part's result as plain data (a
``.keras`` model, a ``.npy`` array, a JSON value) into an artifact folder; a separate process that
never runs student code loads them (``safe_mode=True``, ``allow_pickle=False``) and runs the
instructor's checks from ``solutions/<assignment>/trusted_checks.py``. That file defines ``PARTS``,
a list of :class:`TrustedPart`, and is never released to students.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACT_SUFFIX = {"model": ".keras", "array": ".npy", "json": ".json"}
MAX_ARTIFACT_BYTES = 200 * 2**20
TRUSTED_CHECKS_FILE = "trusted_checks.py"


@dataclass(frozen=True)
class Verdict:
    """The trusted share of a part's points (0 to 1) and why."""

    fraction: float
    reason: str


@dataclass(frozen=True)
class TrustedPart:
    """One graded part: which kernel variables to hand over, and the check to run on them.

    ``exports`` maps a variable name to its kind: ``"model"``, ``"array"`` or ``"json"``.
    ``check`` receives the loaded values by name and raises ``AssertionError`` when wrong.
    """

    grade_id: str
    exports: Mapping[str, str]
    check: Callable[[dict[str, Any]], None]


def export_source(parts: Sequence[TrustedPart], artifact_dir: Path) -> str:
    """The code of the cell appended to a submission to hand over every part's variables."""
    exports = sorted({(name, kind) for part in parts for name, kind in part.exports.items()})
    return "\n".join([
        "# Hand each graded part's result over as plain data (added by the grader).",
        "def __ftcourse_export(folder, exports):",
        "    import json, pathlib",
        "    import numpy",
        "    folder = pathlib.Path(folder)",
        "    folder.mkdir(parents=True, exist_ok=True)",
        "    for name, kind in exports:",
        "        try:",
        "            value = globals()[name]",
        "            if kind == 'model':",
        "                value.save(folder / (name + '.keras'))",
        "            elif kind == 'array':",
        "                numpy.save(folder / (name + '.npy'), numpy.asarray(value),"
        " allow_pickle=False)",
        "            else:",
        "                (folder / (name + '.json')).write_text(json.dumps(value))",
        "        except Exception as error:",
        "            (folder / (name + '.error')).write_text(type(error).__name__)",
        f"__ftcourse_export({str(artifact_dir)!r}, {exports!r})",
    ])


def load_artifact(artifact_dir: Path, name: str, kind: str) -> Any:
    """Load one handed-over value as plain data; raise AssertionError if missing or unsafe."""
    path = Path(artifact_dir) / (name + ARTIFACT_SUFFIX[kind])
    if not path.is_file():
        raise AssertionError(f"`{name}` was not handed over: the cell that defines it did not "
                             "run to the end, or it is not the expected kind of value.")
    if path.stat().st_size > MAX_ARTIFACT_BYTES:
        raise AssertionError(f"`{name}` is larger than {MAX_ARTIFACT_BYTES // 2**20} MiB.")
    if kind == "model":
        import keras

        return keras.saving.load_model(path, safe_mode=True)
    if kind == "array":
        import numpy as np

        return np.load(path, allow_pickle=False)
    return json.loads(path.read_text(encoding="utf-8"))


def judge_part(part: TrustedPart, artifact_dir: Path) -> Verdict:
    """Load a part's values and run its check: 1.0 if it passes, else 0.0 with the reason."""
    try:
        values = {name: load_artifact(artifact_dir, name, kind)
                  for name, kind in part.exports.items()}
        part.check(values)
    except AssertionError as error:
        return Verdict(0.0, str(error) or "a trusted check failed")
    except Exception as error:
        return Verdict(0.0, f"could not check this part ({type(error).__name__}: {error})")
    return Verdict(1.0, "passed the trusted checks")


def load_trusted_parts(checks_file: Path) -> list[TrustedPart]:
    """Import an assignment's ``trusted_checks.py`` (instructor code) and return its PARTS."""
    spec = importlib.util.spec_from_file_location(f"trusted_{Path(checks_file).parent.name}",
                                                  checks_file)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(checks_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.PARTS)


def judge(checks_file: Path, artifact_dir: Path, timeout_s: float = 300) -> dict[str, Verdict]:
    """Judge every part in a fresh process, so nothing a submission made can reach the grader."""
    command = [sys.executable, "-m", "ftcourse.verdicts", str(checks_file), str(artifact_dir)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
        results = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as error:
        reason = f"the trusted checks did not finish ({type(error).__name__})"
        return {part.grade_id: Verdict(0.0, reason) for part in load_trusted_parts(checks_file)}
    return {grade_id: Verdict(*value) for grade_id, value in results.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ftcourse.verdicts CHECKS_FILE ARTIFACT_DIR``: print verdicts as JSON."""
    checks_file, artifact_dir = (Path(arg) for arg in (argv or sys.argv[1:]))
    verdicts = {part.grade_id: judge_part(part, artifact_dir)
                for part in load_trusted_parts(checks_file)}
    print(json.dumps({gid: [v.fraction, v.reason] for gid, v in verdicts.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
