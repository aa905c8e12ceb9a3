"""The per-submission grading process."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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
