# ruff: noqa: F821  (own_folder, pathlib: own_folder.py)
# Overwrite the honest student's files, wherever they lie under the test's own folder.
_own = own_folder()
_me = [p for p in pathlib.Path.cwd().parents if (p / "gradebook.db").is_file()][:1]
if _own is not None:
    for _path in _own.rglob("*"):
        if "honest" in str(_path) and _path.is_file() and not any(
                m in _path.parents for m in _me):
            try:
                _path.write_text("tampered")
                print("wrote", _path)
            except OSError as error:
                print("refused", _path, type(error).__name__)
