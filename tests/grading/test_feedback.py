"""Feedback: the preprocessors that clean a graded notebook before the student sees it."""

from __future__ import annotations

import json

from ftcourse.grading import feedback, verdicts


def test_hidden_regions_are_stripped_and_their_errors_neutralised() -> None:
    source = "assert f(1) == 2, 'visible'\n### BEGIN HIDDEN TESTS\nassert f(2) == 4, 'x'\n" \
             "### END HIDDEN TESTS"
    hidden = feedback.hidden_lines(source)
    assert hidden == {2, 3, 4}
    assert "f(2)" not in feedback.strip_hidden(source)
    hidden_error = {"output_type": "error", "ename": "AssertionError", "evalue": "x",
                    "traceback": ["\x1b[31mCell In[3], line 3\x1b[0m", "assert f(2) == 4"]}
    assert feedback.neutral_error(hidden_error, hidden)["traceback"] == [
        feedback.HideHiddenTests.message.default_value]
    visible_error = dict(hidden_error, evalue="visible", traceback=["Cell In[3], line 1"])
    assert feedback.neutral_error(visible_error, hidden)["evalue"] == (
        "AssertionError: visible")


def test_the_preprocessors_clean_a_graded_notebook() -> None:
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    hidden = new_code_cell("assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(2) == 4, 'x'\n"
                           "### END HIDDEN TESTS")
    hidden.outputs = [new_output("error", ename="AssertionError", evalue="x",
                                 traceback=["Cell In[2], line 3"])]
    loud = new_code_cell("print('y' * 50)")
    loud.outputs = [new_output("stream", name="stdout", text="y" * 50)]
    handover = new_code_cell(f"{verdicts.HANDOVER_MARK}\nsecret()")
    nb = new_notebook(cells=[hidden, loud, handover])
    resources: dict = {}
    for step in (feedback.RemoveHandover(), feedback.LimitTextOutputs(max_chars=10),
                 feedback.HideHiddenTests(), feedback.TrustedNotes(notes=["p: 0 of 2 <b>"])):
        nb, resources = step(nb, resources)  # as nbconvert's exporter calls it
    assert len(nb.cells) == 3 and "secret" not in str(nb.cells)
    notes, cleaned, cut = nb.cells
    assert "p: 0 of 2 &lt;b&gt;" in notes.source and "<b>" not in notes.source.split("</b>")[1]
    assert "f(2)" not in cleaned.source and cleaned.outputs[0]["evalue"] == "A hidden test failed."
    assert cut.outputs[0]["text"].startswith("y" * 10) and "cut by the grader" in cut.outputs[0][
        "text"]


def test_a_cell_past_its_time_limit_is_named() -> None:
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    stuck = new_code_cell("while True: pass", metadata={"nbgrader": {"grade_id": "part_a"}})
    stuck.outputs = [new_output("error", ename="CellTimeoutError", evalue="", traceback=[])]
    nb = new_notebook(cells=[new_code_cell("1"), stuck, new_code_cell("2")])
    nb.cells[2].outputs = [new_output("error", ename="CellTimeoutError", evalue="",
                                      traceback=[])]
    assert feedback.timed_out_cells(nb) == ["part_a", "cell 3"]


def test_output_lines_that_repeat_a_hidden_line_are_redacted() -> None:
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    secret = "assert double(4) == 8, 'kept secret'"
    test = new_code_cell(f"assert f(1) == 2\n### BEGIN HIDDEN TESTS\n{secret}\n)\n"
                         "### END HIDDEN TESTS")
    spy = new_code_cell("print(open('other.ipynb').read())")
    escaped = json.dumps(secret + "\n") + ","  # as the line sits in an .ipynb file
    spy.outputs = [
        new_output("stream", name="stdout", text=f"before\n  {escaped}\n)\nafter\n"),
        new_output("execute_result", data={"text/plain": [repr(secret)],
                                           "text/html": "<p>" + secret.replace("'", "&#x27;"),
                                           "application/json": {"line": secret}}),
        new_output("error", ename="ValueError", evalue=secret, traceback=["x", secret]),
    ]
    nb, _ = feedback.RedactHiddenEchoes()(new_notebook(cells=[test, spy]), {})
    shown = str(nb.cells[1].outputs)
    assert "kept secret" not in shown
    message = feedback.RedactHiddenEchoes.message.default_value
    stream, result, error = nb.cells[1].outputs
    # Only the line that held the secret is replaced; a short hidden line (")") is not sought.
    assert stream.text == f"before\n{message}\n)\nafter\n"
    assert result.data == {"text/plain": message, "text/html": message}
    assert error.traceback == ["x", message]
