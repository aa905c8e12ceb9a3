"""Where Keras keeps what it downloads: one answer for the students' helpers and the grader."""

from __future__ import annotations

import os
from pathlib import Path


def keras_home(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder ``keras.utils.get_file`` caches into: ``cache_dir``, else ``$KERAS_HOME``,
    else ``~/.keras``. Weights go to its ``models/``, datasets to its ``datasets/``."""
    return Path(cache_dir or os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
