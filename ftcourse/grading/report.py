"""The report of a grading run: :class:`Result` (one per submission), ``grades.csv``, the
summary printed at the end, and a histogram."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ftcourse.grading.course import Assignment


@dataclass
class Result:
    """The outcome of grading one submission (status ``graded`` or why it failed): one row of
    ``grades.csv``."""

    student: str
    assignment: str
    source: str
    status: str
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    notes: str = ""
    isolated: bool | None = None
    trusted: bool = False

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def write_report(results: Sequence[Result], assignments: dict[str, Assignment],
                 output: Path) -> None:
    """Write ``grades.csv`` and the histogram into ``output`` and print the summary."""
    write_grades_csv(results, assignments, output / "grades.csv")
    print(summary(results, assignments))
    if any(r.status == "graded" for r in results):
        save_histogram(results, assignments, output / "scores_histogram.png")
    print(f"Wrote {output / 'grades.csv'} and feedback in {output / 'feedback'}.")


def part_columns(results: Iterable[Result], assignments: dict[str, Assignment]) -> list[str]:
    """The grade_ids of every assignment in the results, in notebook order, without repeats."""
    names = {r.assignment for r in results}
    columns: list[str] = []
    for name in sorted(names & set(assignments)):
        columns += [p.grade_id for p in assignments[name].parts if p.grade_id not in columns]
    return columns


def write_grades_csv(results: Sequence[Result], assignments: dict[str, Assignment],
                     path: Path) -> Path:
    """One row per submission: scores by grade_id, total, max, status, reason and the seconds
    its grading took (0 for one that was never run)."""
    columns = part_columns(results, assignments)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", *columns, "total", "max", "status", "reason",
                         "source", "isolated", "trusted", "notes", "seconds"])
        for r in results:
            known = assignments.get(r.assignment)
            cells = [_number(r.scores[c]) if c in r.scores else "" for c in columns]
            writer.writerow([r.student, r.assignment, *cells, _number(r.total),
                             _number(known.max_score) if known else "", r.status, r.reason,
                             r.source, "" if r.isolated is None else str(r.isolated).lower(),
                             str(r.trusted).lower(), r.notes, f"{r.seconds:.1f}"])
    return path


def _number(value: float) -> str:
    return f"{value:g}"


def summary(results: Sequence[Result], assignments: dict[str, Assignment]) -> str:
    """Per assignment and part: mean, median, full marks; then every failure by name.

    Only ``graded`` submissions count: a timeout or a failure keeps whatever it scored before
    it stopped in ``grades.csv``, but those partial scores are not grades, so they are listed
    apart and never enter the statistics.
    """
    lines = []
    for name in sorted({r.assignment for r in results} & set(assignments)):
        graded = [r for r in results if r.assignment == name and r.status == "graded"]
        others = sum(r.assignment == name and r.status != "graded" for r in results)
        apart = f" ({others} not graded, listed below and left out)" if others else ""
        lines.append(f"\n{name}: {len(graded)} graded{apart}")
        if not graded:
            continue
        lines.append(f"  {'part':<32} {'mean':>6} {'median':>7} {'full marks':>11}")
        assignment = assignments[name]
        rows = [(p.grade_id, p.points, [r.scores.get(p.grade_id, 0.0) for r in graded])
                for p in assignment.parts]
        rows.append(("total", assignment.max_score, [r.total for r in graded]))
        for label, points, values in rows:
            full = sum(v >= points for v in values)
            lines.append(f"  {label + f' ({points:g})':<32} {statistics.mean(values):>6.2f} "
                         f"{statistics.median(values):>7.2f} {f'{full}/{len(values)}':>11}")
    failed = [r for r in results if r.status != "graded"]
    if failed:
        lines.append(f"\n{len(failed)} submission(s) need attention:")
        lines += [f"  {r.source} ({r.student}, {r.assignment or '?'}): {r.status}: {r.reason}"
                  for r in failed]
    return "\n".join(lines)


def save_histogram(results: Sequence[Result], assignments: dict[str, Assignment],
                   path: Path) -> Path:
    """A histogram of the graded submissions' totals, one panel per assignment (no pyplot)."""
    from matplotlib.figure import Figure

    results = [r for r in results if r.status == "graded"]
    names = sorted({r.assignment for r in results} & set(assignments))
    figure = Figure(figsize=(6, 2.6 * len(names)), layout="constrained")
    for axes, name in zip(figure.subplots(len(names), 1, squeeze=False)[:, 0], names,
                          strict=True):
        totals = [r.total for r in results if r.assignment == name]
        top = assignments[name].max_score
        axes.hist(totals, bins=min(20, max(5, int(top) + 1)), range=(0, max(top, 1)),
                  color="tab:blue", edgecolor="white")
        axes.set(title=f"{name} ({len(totals)} graded)", xlabel=f"total score (of {top:g})",
                 ylabel="students")
        axes.yaxis.get_major_locator().set_params(integer=True)
    figure.savefig(path, dpi=100)
    return path
