"""Helpers for the fine-tuning course: profiles, data, models, training, plots and checks.

The names below load on first use: ``import ftcourse`` itself is instant, and TensorFlow is
imported only when a helper that needs it is touched. The grading tools (``ftcourse.sandbox``,
``ftcourse.autograde``) rely on this: they start for every submission and never need Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "config": ("PROFILES", "CourseConfig", "get_config", "setup"),
    "data": ("ImageData", "fetch_flowers", "load_dataset", "scan_image_folder"),
    "errors": ("CourseError", "DownloadError"),
    "models": ("ARCHITECTURES", "Architecture", "HeadSpec", "TrainableReport", "build_base",
               "build_head", "build_model", "freeze_base", "get_architecture", "get_base",
               "keras_weights", "trainable_report", "unfreeze_top"),
    "plots": ("image_grid", "plot_confusion_matrix", "plot_freeze_map", "plot_history",
              "plot_lr_sweep", "plot_misclassified"),
    "training": ("compile_model", "extract_features", "fine_tune", "lr_sweep", "train",
                 "train_head_on_features"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = frozenset({*_EXPORTS, "autograde", "checks", "cli", "forkjudge", "grading", "release",
                         "sandbox", "submissions", "verdicts"})

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    """Import a helper (or a submodule) the first time it is used."""
    if name in _HOME:
        value = getattr(importlib.import_module(f"ftcourse.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"ftcourse.{name}")
    raise AttributeError(f"module 'ftcourse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME, *_SUBMODULES})
