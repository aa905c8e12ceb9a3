"""Trusted verdicts: grade each part from plain data, outside the student's kernel.

nbgrader runs its tests inside the student's kernel, after the student's code, so that code can
change what the tests see. Here the kernel only *hands over* each part's result as plain data (a
``.keras`` model, a ``.npy`` array, a JSON value) into an artifact folder; a separate process that
never runs student code loads them (``safe_mode=True``, ``allow_pickle=False``) and runs the
instructor's checks from ``solutions/<assignment>/trusted_checks.py``. That file defines ``PARTS``,
a list of :class:`TrustedPart` (with :class:`Probe` for calls of the student's functions), imports
them from :mod:`ftcourse.grading`, and is never released to students.

The engine appends the hand-over cell (:func:`export_source`) to each submitted notebook and
calls :func:`judge` afterwards; :mod:`ftcourse.grading.feedback` drops the cell again before
the student sees the graded notebook.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ftcourse.grading import forkserver

Kind = Literal["model", "array", "json"]
ARTIFACT_SUFFIX: dict[str, str] = {"model": ".keras", "array": ".npy", "json": ".json"}
MAX_ARTIFACT_BYTES = 200 * 2**20
MAX_REASON_CHARS = 2000
HANDOVER_MARK = "# Hand each graded part's result over as plain data (added by the grader)."
# Imported once by the judging server before it forks (the checks' own imports, if any).
JUDGE_PRELOAD = ("keras", "ftcourse.checks")
SERVER = forkserver.Server(preload=JUDGE_PRELOAD)


@dataclass(frozen=True)
class Verdict:
    """The trusted share of a part's points (0 to 1) and why."""

    fraction: float
    reason: str


@dataclass(frozen=True)
class Probe:
    """A call of the student's code on inputs the notebook never saw, made by the hand-over
    cell in the student's kernel; its result is handed over as ``kind``.

    ``expression`` is evaluated in the kernel after the ``setup`` statements; both see the
    kernel's variables (the student's functions, ``keras``, ``ftcourse``) and may name values
    drawn by the part's ``draw`` as ``{name}`` (filled with their ``repr``; write a literal
    brace as ``{{``). Names that ``setup`` binds are private to the probe::

        Probe("model", "model", setup=("model = keras.Sequential([keras.Input((4,)), "
                                       "keras.layers.Dense({units})])",
                                       "compile_classifier(model, {learning_rate})"))
    """

    kind: Kind
    expression: str
    setup: tuple[str, ...] = ()

    def filled(self, drawn: Mapping[str, Any]) -> tuple[list[str], str]:
        """The setup statements and the expression with the drawn values filled in."""
        values = {key: repr(value) for key, value in drawn.items()}
        return [line.format(**values) for line in self.setup], self.expression.format(**values)


@dataclass(frozen=True)
class TrustedPart:
    """One graded part: which kernel variables to hand over, and the check to run on them.

    ``exports`` maps a variable name to its kind: ``"model"``, ``"array"`` or ``"json"``.
    ``check`` receives the loaded values by name and raises ``AssertionError`` when wrong.

    ``probes`` maps an export name to a :class:`Probe`, a call of the student's functions on
    inputs the notebook never sees. ``draw(rng)`` picks those inputs afresh for each
    submission (plain JSON values); the check finds them in ``values["drawn"]``.
    """

    grade_id: str
    exports: Mapping[str, Kind]
    check: Callable[[dict[str, Any]], None]
    probes: Mapping[str, Probe] = field(default_factory=dict)
    draw: Callable[[random.Random], dict[str, Any]] | None = None


def draw_values(parts: Sequence[TrustedPart], rng: random.Random | None = None
                ) -> dict[str, dict[str, Any]]:
    """Fresh probe inputs for each part that draws them, by grade_id (plain JSON values)."""
    rng = rng or random.SystemRandom()
    return {part.grade_id: part.draw(rng) for part in parts if part.draw is not None}


def probe_calls(parts: Sequence[TrustedPart], drawn: Mapping[str, Mapping[str, Any]]
                ) -> list[tuple[str, str, list[str], str]]:
    """``(export name, kind, setup, expression)`` of every probe, drawn values filled in."""
    calls: list[tuple[str, str, list[str], str]] = []
    for part in parts:
        for name, probe in part.probes.items():
            setup, expression = probe.filled(drawn.get(part.grade_id, {}))
            calls.append((name, probe.kind, setup, expression))
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
        "    calls = [(name, kind, None, None) for name, kind in exports] + list(probes)",
        "    for name, kind, setup, expression in calls:",
        "        try:",
        "            if expression is None:",
        "                value = globals()[name]",
        "            else:",
        "                scope = dict(globals())",
        "                for statement in setup:",
        "                    exec(statement, scope)",
        "                value = eval(expression, scope)",
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
        wanted = {**part.exports, **{name: probe.kind for name, probe in part.probes.items()}}
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
    the process is forked from a server that imported Keras once
    (:mod:`ftcourse.grading.forkserver`); elsewhere it is started afresh.
    """
    task = (str(checks_file), str(artifact_dir), dict(drawn or {}),
            None if only is None else sorted(only))
    try:
        if hasattr(os, "fork"):
            results = SERVER.call(f"{__name__}:verdicts_of", task, env, timeout_s)
        else:
            results = _judge_in_subprocess(task, env, timeout_s)
    except forkserver.Stopped as error:
        reason = f"the trusted checks did not finish ({error})"
        # Load the instructor's checks here (Keras, in the grader) only when ``only`` is absent.
        ids = (task[3] if task[3] is not None
               else [p.grade_id for p in load_trusted_parts(checks_file)])
        return {grade_id: Verdict(0.0, reason) for grade_id in ids}
    return {grade_id: Verdict(*value) for grade_id, value in results.items()}


def _judge_in_subprocess(task: tuple[str, str, dict[str, Any], list[str] | None],
                         env: Mapping[str, str] | None, timeout_s: float) -> dict[str, list[Any]]:
    checks_file, artifact_dir, drawn, only = task
    command = [sys.executable, "-m", "ftcourse.grading.verdicts", checks_file, artifact_dir,
               json.dumps(drawn)]
    if only is not None:
        command.append(json.dumps(only))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              check=False, env=None if env is None else dict(env))
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as error:
        raise forkserver.Stopped(type(error).__name__) from None


def verdicts_of(checks_file: str, artifact_dir: str, drawn: Mapping[str, Any],
                only: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """``{grade_id: [fraction, reason]}`` for every part, or the grade_ids in ``only``."""
    wanted = None if only is None else set(only)
    loaded: dict[tuple[str, str], Any] = {}
    found = {}
    for part in load_trusted_parts(Path(checks_file)):
        if wanted is None or part.grade_id in wanted:
            verdict = judge_part(part, Path(artifact_dir), drawn.get(part.grade_id), loaded)
            found[part.grade_id] = [verdict.fraction, verdict.reason[:MAX_REASON_CHARS]]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ftcourse.grading.verdicts CHECKS_FILE ARTIFACT_DIR [DRAWN_JSON [ONLY_JSON]]``:
    print the verdicts (of the grade_ids listed in ONLY_JSON, else of every part)."""
    checks_file, artifact_dir, *rest = argv or sys.argv[1:]
    drawn = json.loads(rest[0]) if rest else {}
    only = json.loads(rest[1]) if len(rest) > 1 else None
    print(json.dumps(verdicts_of(checks_file, artifact_dir, drawn, only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
