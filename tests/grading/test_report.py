"""The report: grades.csv and the summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ftcourse.grading import report
from ftcourse.grading.course import Assignment, Part
from ftcourse.grading.report import Result


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))

def test_grades_csv_keeps_every_row(tmp_path: Path) -> None:
    assignments = {"a": Assignment("a", ("a",), (Part("p1", 1), Part("p2", 2)))}
    results = [Result("x", "a", "x_a.ipynb", "graded", scores={"p1": 1, "p2": 2},
                              seconds=12.345),
               Result("y", "a", "y_a.ipynb", "invalid", "the file is empty")]
    path = report.write_grades_csv(results, assignments, tmp_path / "grades.csv")
    rows = read_rows(path)
    assert [(r["student"], r["p1"], r["total"], r["max"], r["status"]) for r in rows] == [
        ("x", "1", "3", "3", "graded"), ("y", "", "0", "3", "invalid")]
    assert [r["seconds"] for r in rows] == ["12.3", "0.0"]
    text = report.summary(results, assignments)
    assert "1 submission(s) need attention" in text and "y_a.ipynb" in text
    assert json.dumps(text)


def test_partial_scores_of_a_timeout_stay_out_of_the_statistics(tmp_path: Path) -> None:
    assignments = {"a": Assignment("a", ("a",), (Part("p1", 1), Part("p2", 2)))}
    results = [Result("x", "a", "x_a.ipynb", "graded", scores={"p1": 1, "p2": 2}),
               Result("z", "a", "z_a.ipynb", "graded", scores={"p1": 0, "p2": 2}),
               Result("y", "a", "y_a.ipynb", "timeout", "a cell ran past 600 s",
                      scores={"p1": 1, "p2": 0})]
    rows = read_rows(report.write_grades_csv(results, assignments, tmp_path / "grades.csv"))
    assert [(r["student"], r["total"], r["status"]) for r in rows][-1] == ("y", "1", "timeout")
    text = report.summary(results, assignments)
    assert "a: 2 graded (1 not graded, listed below and left out)" in text
    total = next(line for line in text.splitlines() if line.strip().startswith("total"))
    assert total.split()[2:5] == ["2.50", "2.50", "1/2"], total  # mean, median of 3 and 2
    assert "y_a.ipynb (y, a): timeout: a cell ran past 600 s" in text
    report.write_report(results[2:], assignments, tmp_path)  # only a timeout: no histogram
    assert not (tmp_path / "scores_histogram.png").exists()
