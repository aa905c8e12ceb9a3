"""Helpers for the fine-tuning course: profiles, data, models, training, plots and checks."""

from ftcourse.config import PROFILES, CourseConfig, get_config, setup
from ftcourse.data import ImageData, fetch_flowers, load_dataset, scan_image_folder
from ftcourse.errors import CourseError, DownloadError
from ftcourse.models import (
    ARCHITECTURES,
    Architecture,
    HeadSpec,
    TrainableReport,
    build_base,
    build_head,
    build_model,
    freeze_base,
    get_architecture,
    get_base,
    trainable_report,
    unfreeze_top,
)
from ftcourse.plots import (
    image_grid,
    plot_confusion_matrix,
    plot_freeze_map,
    plot_history,
    plot_lr_sweep,
    plot_misclassified,
)
from ftcourse.training import (
    compile_model,
    extract_features,
    fine_tune,
    lr_sweep,
    train,
    train_head_on_features,
)

__all__ = [
    "ARCHITECTURES",
    "PROFILES",
    "Architecture",
    "CourseConfig",
    "CourseError",
    "DownloadError",
    "HeadSpec",
    "ImageData",
    "TrainableReport",
    "build_base",
    "build_head",
    "build_model",
    "compile_model",
    "extract_features",
    "fetch_flowers",
    "fine_tune",
    "freeze_base",
    "get_architecture",
    "get_base",
    "get_config",
    "image_grid",
    "load_dataset",
    "lr_sweep",
    "plot_confusion_matrix",
    "plot_freeze_map",
    "plot_history",
    "plot_lr_sweep",
    "plot_misclassified",
    "scan_image_folder",
    "setup",
    "train",
    "train_head_on_features",
    "trainable_report",
    "unfreeze_top",
]
