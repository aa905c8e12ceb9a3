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
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

from ftcourse import autograde, forkjudge

ARTIFACT_SUFFIX = {"model": ".keras", "array": ".npy", "json": ".json"}
MAX_ARTIFACT_BYTES = 200 * 2**20
TRUSTED_CHECKS_FILE = "trusted_checks.py"
HANDOVER_MARK = autograde.HANDOVER_MARK


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

    ``probes`` calls the student's functions on inputs the notebook never sees: each maps an
    export name to ``(kind, expression)``, where the expression may name values from ``draw``
    as ``{name}`` (filled with their ``repr``). ``draw(rng)`` picks those values afresh for
    each submission; the check finds them in ``values["drawn"]``.
    """

    grade_id: str
    exports: Mapping[str, str]
    check: Callable[[dict[str, Any]], None]
    probes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    draw: Callable[[random.Random], dict[str, Any]] | None = None


def draw_values(parts: Sequence[TrustedPart], rng: random.Random | None = None
                ) -> dict[str, dict[str, Any]]:
    """Fresh probe inputs for each part that draws them, by grade_id (plain JSON values)."""
    rng = rng or random.SystemRandom()
    return {part.grade_id: part.draw(rng) for part in parts if part.draw is not None}


def probe_calls(parts: Sequence[TrustedPart], drawn: Mapping[str, Mapping[str, Any]]
                ) -> list[tuple[str, str, str]]:
    """``(export name, kind, expression)`` of every probe, with the drawn values filled in."""
    calls = []
    for part in parts:
        values = {key: repr(value) for key, value in drawn.get(part.grade_id, {}).items()}
        for name, (kind, expression) in part.probes.items():
            calls.append((name, kind, expression.format(**values)))
    return calls


def export_source(parts: Sequence[TrustedPart], artifact_dir: Path,
                  drawn: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The code of the cell appended to a submission to hand over every part's variables.

    Variables are saved first, then each probe is evaluated and saved (probes may change the
    kernel's objects, so they come last).
    """
    exports = sorted({(name, kind) for part in parts for name, kind in part.exports.items()})
    probes = probe_calls(parts, drawn or {})
    return "\n".join([
        HANDOVER_MARK,
        "def __ftcourse_export(folder, exports, probes):",
        "    import json, pathlib",
        "    import numpy",
        "    folder = pathlib.Path(folder)",
        "    folder.mkdir(parents=True, exist_ok=True)",
        "    calls = [(name, kind, None) for name, kind in exports] + list(probes)",
        "    for name, kind, expression in calls:",
        "        try:",
        "            value = globals()[name] if expression is None else"
        " eval(expression, globals())",
        "            if kind == 'model':",
        "                value.save(folder / (name + '.keras'))",
        "            elif kind == 'array':",
        "                numpy.save(folder / (name + '.npy'), numpy.asarray(value),"
        " allow_pickle=False)",
        "            else:",
        "                (folder / (name + '.json')).write_text("
        "json.dumps(value, default=lambda o: o.tolist()))",
        "        except Exception as error:",
        "            (folder / (name + '.error')).write_text(type(error).__name__)",
        f"__ftcourse_export({str(artifact_dir)!r}, {exports!r}, {probes!r})",
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


def judge_part(part: TrustedPart, artifact_dir: Path,
               drawn: Mapping[str, Any] | None = None,
               loaded: dict[tuple[str, str], Any] | None = None) -> Verdict:
    """Load a part's values and run its check: 1.0 if it passes, else 0.0 with the reason.

    ``loaded`` keeps the values already loaded for other parts of the same submission (loading
    a model rebuilds every layer, seconds each); the checks only read them.
    """
    loaded = {} if loaded is None else loaded
    try:
        wanted = {**part.exports, **{name: kind for name, (kind, _) in part.probes.items()}}
        values = {}
        for name, kind in wanted.items():
            if (name, kind) not in loaded:
                loaded[name, kind] = load_artifact(artifact_dir, name, kind)
            values[name] = loaded[name, kind]
        values["drawn"] = dict(drawn or {})
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


def judge(checks_file: Path, artifact_dir: Path, timeout_s: float = 300,
          drawn: Mapping[str, Mapping[str, Any]] | None = None,
          env: Mapping[str, str] | None = None,
          only: Iterable[str] | None = None) -> dict[str, Verdict]:
    """Judge every part (or the grade_ids in ``only``) in a fresh process, so nothing a
    submission made can reach the grader.

    ``drawn`` holds the probe inputs given to :func:`export_source` (see :func:`draw_values`);
    ``env`` is that process's environment (default: this one's). Where the platform can fork,
    the process is forked from a server that imported Keras once (:mod:`ftcourse.forkjudge`);
    elsewhere it is started afresh.
    """
    task = (str(checks_file), str(artifact_dir), dict(drawn or {}),
            None if only is None else sorted(only))
    try:
        if hasattr(os, "fork"):
            results = forkjudge.SERVER.judge(task, env, timeout_s)
        else:
            results = _judge_in_subprocess(task, env, timeout_s)
    except forkjudge.JudgeStopped as error:
        reason = f"the trusted checks did not finish ({error})"
        # Load the instructor's checks here (Keras, in the grader) only when ``only`` is absent.
        ids = task[3] if only is not None else [p.grade_id for p in load_trusted_parts(checks_file)]
        return {grade_id: Verdict(0.0, reason) for grade_id in ids}
    return {grade_id: Verdict(*value) for grade_id, value in results.items()}


def _judge_in_subprocess(task: tuple, env: Mapping[str, str] | None,
                         timeout_s: float) -> dict[str, list]:
    checks_file, artifact_dir, drawn, only = task
    command = [sys.executable, "-m", "ftcourse.verdicts", checks_file, artifact_dir,
               json.dumps(drawn)]
    if only is not None:
        command.append(json.dumps(only))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              check=False, env=None if env is None else dict(env))
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as error:
        raise forkjudge.JudgeStopped(type(error).__name__) from None


def verdicts_of(checks_file: str, artifact_dir: str, drawn: Mapping[str, Any],
                only: Iterable[str] | None = None) -> dict[str, list]:
    """``{grade_id: [fraction, reason]}`` for every part, or the grade_ids in ``only``."""
    wanted = None if only is None else set(only)
    loaded: dict[tuple[str, str], Any] = {}
    return {part.grade_id: list(astuple(judge_part(part, Path(artifact_dir),
                                                   drawn.get(part.grade_id), loaded)))
            for part in load_trusted_parts(Path(checks_file))
            if wanted is None or part.grade_id in wanted}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ftcourse.verdicts CHECKS_FILE ARTIFACT_DIR [DRAWN_JSON [ONLY_JSON]]``:
    print the verdicts (of the grade_ids listed in ONLY_JSON, else of every part)."""
    checks_file, artifact_dir, *rest = argv or sys.argv[1:]
    drawn = json.loads(rest[0]) if rest else {}
    only = json.loads(rest[1]) if len(rest) > 1 else None
    print(json.dumps(verdicts_of(checks_file, artifact_dir, drawn, only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
