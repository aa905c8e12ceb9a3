"""What the student sees: nbconvert preprocessors that clean a graded notebook for feedback.

nbgrader's ``GenerateFeedback`` turns each autograded notebook into HTML through a chain of
preprocessors; :func:`preprocessors` returns that chain with ours added, each one small class
with configurable traits, built like ``nbgrader/preprocessors/clearhiddentests.py`` (an
``NbGraderPreprocessor``, so enabled by default):

- :class:`RemoveHandover` drops the cell the grader appended to hand results over;
- :class:`LimitTextOutputs` cuts each text output (one line can be huge);
- :class:`RedactHiddenEchoes` replaces each output line that repeats a hidden-test line (a
  second wall: the kernel never sees a file holding them, see ``sandbox``);
- :class:`HideHiddenTests` replaces each hidden-test region by a placeholder and the errors it
  raised by a neutral message (a visible check's own message is kept);
- :class:`TrustedNotes` puts the trusted grading's notes at the top.

:func:`timed_out_cells` reads, from the same notebook, which cells ran past the cell time limit.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode, from_dict
from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer, List, Unicode

from ftcourse.grading.verdicts import HANDOVER_MARK

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"(?:Cell In ?\[\d*\]|<ipython-input-[^>]*>), line (\d+)")


class RemoveHandover(NbGraderPreprocessor):
    """Drop the cells that start with ``mark`` (the grader's hand-over cell)."""

    mark = Unicode(HANDOVER_MARK, help="The first line of a cell the grader added.").tag(
        config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]
                   ) -> tuple[NotebookNode, dict[str, Any]]:
        nb.cells = [cell for cell in nb.cells if not is_handover(cell, self.mark)]
        return nb, resources


class LimitTextOutputs(NbGraderPreprocessor):
    """Cut each text output of a code cell to ``max_chars`` characters."""

    max_chars = Integer(20_000, help="Characters kept of each text output.").tag(config=True)
    cut_message = Unicode("\n... output cut by the grader ...").tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any], index: int
                        ) -> tuple[NotebookNode, dict[str, Any]]:
        if cell.cell_type == "code":
            cap_outputs(cell, self.max_chars, self.cut_message)
        return cell, resources


class RedactHiddenEchoes(NbGraderPreprocessor):
    """Replace each output line that repeats a hidden-test line of the notebook (as written,
    JSON- or HTML-escaped, or as a Python repr) by ``message``.

    Hidden lines shorter than ``min_chars`` (``)``, ``pass``) are not looked for: they give
    nothing away and would blank ordinary output.
    """

    begin_delimiter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_delimiter = Unicode("END HIDDEN TESTS").tag(config=True)
    min_chars = Integer(8, help="Shortest hidden line (stripped) that is looked for.").tag(
        config=True)
    message = Unicode("(a line of the hidden tests, removed by the grader)").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]
                   ) -> tuple[NotebookNode, dict[str, Any]]:
        secrets = hidden_forms(nb, self.begin_delimiter, self.end_delimiter, self.min_chars)
        if secrets:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    redact_outputs(cell, secrets, self.message)
        return nb, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Replace each hidden-test region by ``placeholder`` and each error it raised by a
    neutral ``message``; errors raised by visible lines keep their message."""

    begin_delimiter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_delimiter = Unicode("END HIDDEN TESTS").tag(config=True)
    placeholder = Unicode("# (hidden tests run here when the notebook is graded)").tag(
        config=True)
    message = Unicode("A hidden test failed.").tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any], index: int
                        ) -> tuple[NotebookNode, dict[str, Any]]:
        if cell.cell_type != "code":
            return cell, resources
        hidden = hidden_lines(cell.source, self.begin_delimiter, self.end_delimiter)
        if hidden:
            cell.outputs = [from_dict(neutral_error(o, hidden, self.message))
                            if o.get("output_type") == "error" else o for o in cell.outputs]
            cell.source = strip_hidden(cell.source, self.begin_delimiter, self.end_delimiter,
                                       self.placeholder)
        return cell, resources


class TrustedNotes(NbGraderPreprocessor):
    """Put ``notes`` (why trusted grading lowered a score) in a cell at the top."""

    notes = List(Unicode(), help="One line per part whose score was lowered.").tag(config=True)
    title = Unicode("Trusted grading changed your score:").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]
                   ) -> tuple[NotebookNode, dict[str, Any]]:
        if self.notes:
            block = ('<div class="ftcourse-trusted" style="border:2px solid #c00;padding:8px;'
                     f'margin:8px"><p><b>{html.escape(self.title)}</b></p><ul>'
                     + "".join(f"<li>{html.escape(note)}</li>" for note in self.notes)
                     + "</ul></div>")
            nb.cells.insert(0, new_markdown_cell(block))
        return nb, resources


def preprocessors() -> list[type[Preprocessor]]:
    """nbgrader's feedback chain (``GenerateFeedback.preprocessors``) with ours added."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    return [GetGrades, RemoveHandover, LimitTextOutputs, RedactHiddenEchoes, HideHiddenTests,
            TrustedNotes, CSSHTMLHeaderPreprocessor]


def is_handover(cell: NotebookNode, mark: str = HANDOVER_MARK) -> bool:
    return cell.cell_type == "code" and cell.source.startswith(mark)


def timed_out_cells(nb: NotebookNode) -> list[str]:
    """The grade_ids (or ``cell N``) of code cells that ran past the cell time limit."""
    timed_out = []
    cells = [cell for cell in nb.cells if not is_handover(cell)]
    for index, cell in enumerate(cells, start=1):
        if cell.cell_type == "code" and any(o.get("ename") == "CellTimeoutError"
                                            for o in cell.get("outputs", [])):
            timed_out.append(cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}"))
    return timed_out


def hidden_lines(source: str, begin: str = HideHiddenTests.begin_delimiter.default_value,
                 end: str = HideHiddenTests.end_delimiter.default_value) -> set[int]:
    """1-based line numbers of a cell's hidden-test regions (delimiters included)."""
    hidden, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if begin in line:
            inside = True
        if inside:
            hidden.add(number)
        if end in line:
            inside = False
    return hidden


def strip_hidden(source: str, begin: str = HideHiddenTests.begin_delimiter.default_value,
                 end: str = HideHiddenTests.end_delimiter.default_value,
                 placeholder: str = HideHiddenTests.placeholder.default_value) -> str:
    """The cell source with each hidden-test region replaced by one placeholder comment."""
    kept, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(indent + placeholder)
        elif end in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def hidden_forms(nb: NotebookNode, begin: str, end: str, min_chars: int) -> set[str]:
    """Every hidden-test line of ``nb`` (stripped, at least ``min_chars`` long) in the forms
    an output could show it: as written, JSON-escaped, HTML-escaped and as a repr."""
    forms = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        for number in hidden_lines(cell.source, begin, end):
            line = lines[number - 1].strip()
            if len(line) >= min_chars:
                forms |= {line, json.dumps(line)[1:-1], html.escape(line), repr(line)[1:-1]}
    return forms


def redact_outputs(cell: NotebookNode, secrets: set[str], message: str) -> None:
    """Replace each line of a cell's outputs (text, text-like data, errors) that holds one of
    ``secrets`` by ``message``; drop structured data that holds one."""
    def clean(text: str) -> str:
        return "".join(message + line[len(line.rstrip("\r\n")):]
                       if any(s in line for s in secrets) else line
                       for line in text.splitlines(keepends=True))

    for output in cell.get("outputs", []):
        if "text" in output:
            output["text"] = clean(_joined(output["text"]))
        data = output.get("data", {})
        for key, value in list(data.items()):
            if isinstance(value, (str, list)):
                data[key] = clean(_joined(value))
            elif any(s in json.dumps(value) for s in secrets):  # JSON data: dropped whole
                del data[key]
        if output.get("output_type") == "error":
            output["evalue"] = clean(output.get("evalue", ""))
            output["traceback"] = [clean(line) for line in output.get("traceback", [])]


def _joined(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "".join(text)


def neutral_error(output: dict[str, Any], hidden: set[int],
                  message: str = HideHiddenTests.message.default_value) -> dict[str, Any]:
    """An error output that shows a visible check's message but nothing of a hidden test."""
    traceback = _ANSI.sub("", "\n".join(output.get("traceback", [])))
    lines = {int(n) for n in _CELL_LINE.findall(traceback)}
    if lines and not lines & hidden:
        text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".rstrip(": ")
    elif output.get("ename") in (None, "AssertionError"):
        text = message
    else:
        text = f"{message} ({output['ename']})"
    return {"output_type": "error", "ename": output.get("ename", "Error"), "evalue": text,
            "traceback": [text]}


def cap_outputs(cell: NotebookNode, limit: int = LimitTextOutputs.max_chars.default_value,
                cut: str = LimitTextOutputs.cut_message.default_value) -> None:
    """Cut each text output of a cell to ``limit`` characters."""
    for output in cell.get("outputs", []):
        texts = [("text", output)] if "text" in output else []
        texts += [(key, output["data"]) for key in output.get("data", {})
                  if key.startswith("text/")]
        for key, holder in texts:
            text = _joined(holder[key])
            if len(text) > limit:
                holder[key] = text[:limit] + cut
