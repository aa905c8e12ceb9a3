# ruff: noqa: F821  (TARGET_PART, MARKER: set by hostile_cases.py)
# Look for the instructor's solutions (and the gradebook) wherever grading leaves them in reach.
import json
import pathlib
import sqlite3


def _solution_cells():
    roots = [pathlib.Path.cwd(), *pathlib.Path.cwd().parents][:8]
    try:
        import ftcourse

        roots.append(pathlib.Path(ftcourse.__file__).resolve().parents[1])
    except Exception:
        pass
    for root in roots:
        # Every gradebook the grader made lies in a folder above the kernel's, or below the
        # test's own folder (a search of the whole disk finds no more, in minutes).
        books = sorted(root.glob("gradebook.db"))
        if root.name.startswith(MARKER):
            books += sorted(root.glob("**/gradebook.db"))
        for path in sorted(root.glob("solutions/*/*.ipynb")) + books:
            try:
                if path.suffix == ".db":  # the gradebook holds the hidden tests, not solutions
                    sqlite3.connect(path).execute("SELECT source FROM source_cell").fetchall()
                    continue
                cells = json.loads(path.read_text())["cells"]
            except Exception:
                continue
            found = {}
            for cell in cells:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                source = "".join(cell["source"])
                if meta.get("solution") and "BEGIN SOLUTION" in source:
                    found[meta["grade_id"]] = source
            if TARGET_PART in found:
                return found
    return {}


STOLEN = _solution_cells()
print(f"found {len(STOLEN)} solutions")
