"""The per-submission grading process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def test_the_grading_process_skips_the_slow_optional_iri_checker() -> None:
    """Without ``rfc3987_syntax`` nbformat still validates notebooks, and rejects bad ones."""
    script = textwrap.dedent("""
        import sys
        from ftcourse.grading import worker
        worker.skip_slow_optional_imports()
        import nbformat
        assert sys.modules.get("rfc3987_syntax") is None
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
        nbformat.validate(nb)
        nb.cells[0].execution_count = "not a number"
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError:
            print("still validates")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "still validates" in done.stdout


def test_keras_own_download_failure_is_an_environment_error() -> None:
    """An exercise's direct keras.applications call fails offline with Keras' bare message."""
    import nbformat

    from ftcourse.grading.worker import environment_errors

    cell = nbformat.v4.new_code_cell("base = keras.applications.MobileNetV2()")
    cell.outputs = [nbformat.v4.new_output(
        "error", ename="Exception", evalue="URL fetch failure on https://storage.googleapis.com/"
        "w.h5: None -- [Errno -3] Temporary failure in name resolution", traceback=[])]
    wrong = nbformat.v4.new_code_cell("1 / 0")
    wrong.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError",
                                            evalue="division by zero", traceback=[])]
    found = environment_errors(nbformat.v4.new_notebook(cells=[cell, wrong]))
    assert len(found) == 1 and "URL fetch failure" in found[0] and "ftcourse fetch" in found[0]


def test_an_output_flood_gets_a_reason_that_names_it() -> None:
    from ftcourse.grading.worker import explain_failure

    log = ("[ERROR] Traceback (most recent call last):\n    nbclient.exceptions.CellTimeoutError: "
           "A cell timed out while it was being executed, after 4 seconds.\n    The message "
           "was: Timeout waiting for IOPub output.\n[ERROR] Please see the the above traceback")
    assert "print less" in explain_failure(log)


@pytest.mark.parametrize(("log", "expected"), [
    ("[ERROR] One or more notebooks in the assignment use an newer version \nof the nbgrader "
     "metadata format. Please update your version of \nnbgrader to the latest version to be able "
     "to use this notebook.\nnbgrader.converters.base.NbGraderException: One or more notebooks",
     "schema_version too new"),
    ("Traceback (most recent call last):\n  File \"savecells.py\", line 104\n"
     "    grade_id = cell.metadata.nbgrader['grade_id']\nKeyError: 'grade_id'",
     "lost its nbgrader grade_id"),
])
def test_metadata_failures_get_a_reason_an_instructor_can_act_on(log: str, expected: str
                                                                 ) -> None:
    from ftcourse.grading.worker import explain_failure

    reason = explain_failure(log)
    assert expected in reason and "download" in reason, reason
