"""Which image files TensorFlow can decode, checked with Pillow once per file, not per lesson.

A full decode of every photo takes seconds for a folder of thousands (the flowers: about 8 s),
and every lesson scans its folder again. :func:`readable_images` remembers each file's verdict
by its path, size and modification time in one JSON file per class folder under the Keras cache
(``<KERAS_HOME>/ftcourse/image_checks/``), so an unchanged folder is checked once; a changed
file is checked again. Where the cache cannot be written (a read-only home), every file is
checked as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from ftcourse.cache import keras_home

DECODABLE_FORMATS = {"JPEG", "PNG", "BMP", "GIF"}
CACHE_FOLDER = Path("ftcourse") / "image_checks"


def readable_images(folder: Path, files: Sequence[Path]) -> list[Path]:
    """The files of ``files`` (images under ``folder``, whose verdicts share one cache file)
    that TensorFlow can decode, in order."""
    cache = cache_file(folder)
    known = _load(cache)
    verdicts: dict[str, list[int | bool]] = {}
    for path in files:
        stat = path.stat()
        entry = known.get(str(path))
        if entry is None or entry[:2] != [stat.st_size, stat.st_mtime_ns]:
            entry = [stat.st_size, stat.st_mtime_ns, is_readable_image(path)]
        verdicts[str(path)] = entry
    if verdicts != known:
        _save(cache, verdicts)
    return [path for path in files if verdicts[str(path)][2]]


def is_readable_image(path: Path) -> bool:
    """True when TensorFlow can decode the whole file (a full decode with Pillow)."""
    try:
        with Image.open(path) as image:
            image.verify()
            if image.format not in DECODABLE_FORMATS:
                return False
        with Image.open(path) as image:
            if image.format == "BMP" and (image.mode == "1" or image.info.get("compression")):
                return False  # TensorFlow decodes neither 1-bit nor compressed BMP files
            image.load()  # a full decode: verify() lets truncated JPEG files through
        return True
    except Exception:
        return False


def cache_file(folder: Path) -> Path:
    """Where the verdicts on ``folder``'s files are kept (one file per folder)."""
    name = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:20]
    return keras_home() / CACHE_FOLDER / f"{name}.json"


def _load(cache: Path) -> dict[str, list[int | bool]]:
    try:
        loaded = json.loads(cache.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(cache: Path, verdicts: dict[str, list[int | bool]]) -> None:
    """Write the verdicts atomically; a cache that cannot be written is skipped."""
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(verdicts, out)
        os.replace(temporary, cache)
