"""Course profiles: one set of knobs for students (`full`) and one for CI (`ci`).

Introduced in lesson 01.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass
from typing import Any

from ftcourse.errors import CourseError

PROFILE_ENV = "FTCOURSE_PROFILE"


@dataclass(frozen=True)
class CourseConfig:
    """Every knob the lessons and exercises read, for one profile."""

    profile: str
    dataset: str
    image_size: int
    weights: str | None
    epochs: int
    fine_tune_epochs: int
    batch_size: int
    limit: int | None
    unfreeze_layers: int
    learning_rate: float
    fine_tune_learning_rate: float
    verbose: int | str
    seed: int = 42

    @property
    def pretrained(self) -> bool:
        """True when the profile's bases start from pre-trained weights (not random ones)."""
        return self.weights is not None


PROFILES: dict[str, CourseConfig] = {
    "full": CourseConfig(
        profile="full",
        dataset="flowers",
        image_size=160,
        weights="imagenet",
        epochs=10,
        fine_tune_epochs=10,
        batch_size=32,
        limit=None,
        unfreeze_layers=20,
        learning_rate=1e-3,
        fine_tune_learning_rate=1e-5,
        verbose="auto",
    ),
    "ci": CourseConfig(
        profile="ci",
        dataset="digits:5-9",  # the target task: digits the base never saw
        image_size=32,
        weights="digits0-4",  # pre-trained here, offline, on the digits 0-4 (ftcourse.pretrain)

        epochs=2,
        fine_tune_epochs=1,
        batch_size=32,
        limit=240,
        unfreeze_layers=20,
        learning_rate=1e-3,
        fine_tune_learning_rate=1e-5,
        verbose=0,
    ),
}


def get_config(profile: str | None = None, **overrides: Any) -> CourseConfig:
    """Return the profile's config (from ``FTCOURSE_PROFILE`` when not given), with overrides.

    >>> get_config("ci", epochs=3).epochs
    3
    """
    name = profile or os.environ.get(PROFILE_ENV, "full")
    if name not in PROFILES:
        raise CourseError(
            f"Unknown course profile {name!r}. Choose one of {sorted(PROFILES)} "
            f"(set {PROFILE_ENV}=ci or {PROFILE_ENV}=full)."
        )
    fields = {f.name for f in dataclasses.fields(CourseConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise CourseError(f"Unknown config field(s) {unknown}; known fields: {sorted(fields)}.")
    return dataclasses.replace(PROFILES[name], **overrides)


def describe_devices() -> str:
    """One line naming the CPU and any GPUs TensorFlow can see."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    cpu = f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return f"{cpu}; GPU: {', '.join(gpus) if gpus else 'none'}"


def _show_figures_inline() -> None:
    """In a notebook, display the Figures that ``ftcourse.plots`` returns as pictures."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")


def setup(profile: str | None = None, **overrides: object) -> CourseConfig:
    """First call of every notebook: seed every RNG, print the environment, return the config.

    Introduced in lesson 01.
    """
    import keras
    import tensorflow as tf

    cfg = get_config(profile, **overrides)
    keras.utils.set_random_seed(cfg.seed)
    _show_figures_inline()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"Devices: {describe_devices()}")
    print(
        f"Profile: {cfg.profile} | dataset: {cfg.dataset} | image size: {cfg.image_size} | "
        f"weights: {cfg.weights} | epochs: {cfg.epochs}+{cfg.fine_tune_epochs}"
    )
    return cfg
