"""Helpers for the fine-tuning course: profiles, data, models, training, plots and checks.

The names below load on first use: ``import ftcourse`` itself is instant, and TensorFlow is
imported only when a helper that needs it is touched. The instructor's grading engine lives in
:mod:`ftcourse.grading`; its worker and sandbox launcher start for every submission and rely on
this (they never need Keras).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names a type checker sees; at run time they load on first use
    from ftcourse.config import PROFILES as PROFILES
    from ftcourse.config import CourseConfig as CourseConfig
    from ftcourse.config import get_config as get_config
    from ftcourse.config import setup as setup
    from ftcourse.data import ImageData as ImageData
    from ftcourse.data import fetch_flowers as fetch_flowers
    from ftcourse.data import load_dataset as load_dataset
    from ftcourse.data import scan_image_folder as scan_image_folder
    from ftcourse.errors import CourseError as CourseError
    from ftcourse.errors import DownloadError as DownloadError
    from ftcourse.models import ARCHITECTURES as ARCHITECTURES
    from ftcourse.models import Architecture as Architecture
    from ftcourse.models import HeadSpec as HeadSpec
    from ftcourse.models import TrainableReport as TrainableReport
    from ftcourse.models import build_base as build_base
    from ftcourse.models import build_head as build_head
    from ftcourse.models import build_model as build_model
    from ftcourse.models import freeze_base as freeze_base
    from ftcourse.models import get_architecture as get_architecture
    from ftcourse.models import get_base as get_base
    from ftcourse.models import keras_weights as keras_weights
    from ftcourse.models import trainable_report as trainable_report
    from ftcourse.models import unfreeze_top as unfreeze_top
    from ftcourse.plots import image_grid as image_grid
    from ftcourse.plots import plot_confusion_matrix as plot_confusion_matrix
    from ftcourse.plots import plot_freeze_map as plot_freeze_map
    from ftcourse.plots import plot_history as plot_history
    from ftcourse.plots import plot_lr_sweep as plot_lr_sweep
    from ftcourse.plots import plot_misclassified as plot_misclassified
    from ftcourse.startup import import_tensorflow as import_tensorflow
    from ftcourse.training import compile_model as compile_model
    from ftcourse.training import extract_features as extract_features
    from ftcourse.training import lr_sweep as lr_sweep
    from ftcourse.training import train as train
    from ftcourse.training import train_head_on_features as train_head_on_features
    from ftcourse.two_phase import fine_tune as fine_tune

_EXPORTS = {
    "config": ("PROFILES", "CourseConfig", "get_config", "setup"),
    "data": ("ImageData", "fetch_flowers", "load_dataset", "scan_image_folder"),
    "errors": ("CourseError", "DownloadError"),
    "models": ("ARCHITECTURES", "Architecture", "HeadSpec", "TrainableReport", "build_base",
               "build_head", "build_model", "freeze_base", "get_architecture", "get_base",
               "keras_weights", "trainable_report", "unfreeze_top"),
    "plots": ("image_grid", "plot_confusion_matrix", "plot_freeze_map", "plot_history",
              "plot_lr_sweep", "plot_misclassified"),
    "startup": ("import_tensorflow",),
    "training": ("compile_model", "extract_features", "lr_sweep", "train",
                 "train_head_on_features"),
    "two_phase": ("fine_tune",),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = frozenset({*_EXPORTS, "checks", "cli", "cut", "grading", "pretrain"})

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
