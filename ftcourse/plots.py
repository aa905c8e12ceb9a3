"""Pictures for the lessons. Every function returns a matplotlib Figure and never blocks.

Figures are made without pyplot, so nothing global changes and a notebook shows each
figure once, as the cell's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ftcourse.models import get_base

FROZEN, TRAINABLE, BATCHNORM = "#9db4c0", "#e07a5f", "#3d405b"


def _epoch_axis(ax) -> None:
    """Whole-number epoch ticks on x, plain numbers (no "1e-5+2.302" offset) on y."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def image_grid(images: np.ndarray, labels: Sequence[int] | np.ndarray,
               class_names: Sequence[str], predictions: Sequence[int] | np.ndarray | None = None,
               columns: int = 5) -> Figure:
    """Images (0-255) with their labels; with predictions, wrong ones titled in red.

    Introduced in lesson 02.
    """
    rows = max(1, -(-len(images) // columns))
    fig = Figure(figsize=(2 * columns, 2.2 * rows))
    for i, image in enumerate(images):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(np.clip(image, 0, 255).astype("uint8"))
        ax.axis("off")
        title = class_names[int(labels[i])]
        color = "black"
        if predictions is not None:
            title = f"{class_names[int(predictions[i])]} ({title})"
            color = "black" if predictions[i] == labels[i] else "red"
        ax.set_title(title, color=color, fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(history: keras.callbacks.History, fine_tune_start: int | None = None
                 ) -> Figure:
    """Loss and accuracy per epoch, train vs validation, with a line where fine-tuning starts.

    Introduced in lesson 02; the phase marker in lesson 05.
    """
    start = fine_tune_start if fine_tune_start is not None else getattr(
        history, "fine_tune_start", None)
    fig = Figure(figsize=(10, 3.5))
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for prefix, style in (("", "-o"), ("val_", "--o")):
            values = history.history.get(prefix + metric)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, style,
                        label="validation" if prefix else "training")
        if start:
            ax.axvline(start + 0.5, color="gray", linestyle=":", label="fine-tuning starts")
        ax.set(xlabel="epoch", title=metric)
        _epoch_axis(ax)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_lr_sweep(results: Mapping[float, keras.callbacks.History],
                  metric: str = "val_accuracy") -> Figure:
    """One curve per learning rate, and the final value against the rate (log scale).

    Introduced in lesson 05.
    """
    fig = Figure(figsize=(10, 3.5))
    curves, summary = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for rate, history in results.items():
        values = history.history[metric]
        curves.plot(np.arange(1, len(values) + 1), values, label=f"lr={rate:g}")
    curves.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
    _epoch_axis(curves)
    curves.legend(fontsize=8)
    rates = sorted(results)
    summary.semilogx(rates, [results[r].history[metric][-1] for r in rates], "o-")
    summary.set(xlabel="learning rate", ylabel=f"final {metric}", title="final value by rate")
    summary.ticklabel_format(axis="y", style="plain", useOffset=False)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int],
                          class_names: Sequence[str]) -> Figure:
    """Counts of true class (rows) against predicted class (columns). Introduced in lesson 06."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=range(len(class_names)))
    size = max(4, 0.6 * len(class_names) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    fig.tight_layout()
    return fig


def plot_misclassified(images: np.ndarray, y_true: Sequence[int], y_pred: Sequence[int],
                       class_names: Sequence[str], limit: int = 10) -> Figure:
    """The first ``limit`` wrongly predicted images, titled "predicted (true)"."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))[:limit]
    if not len(wrong):
        fig = Figure(figsize=(4, 1))
        fig.text(0.5, 0.5, "No misclassified images.", ha="center", va="center")
        return fig
    return image_grid(images[wrong], np.asarray(y_true)[wrong], class_names,
                      predictions=np.asarray(y_pred)[wrong])


def plot_freeze_map(model: keras.Model) -> Figure:
    """The base's layers from input (left) to output (right): frozen, trainable, BatchNorm.

    A frozen BatchNormalization layer is drawn dark: in Keras 3 a BatchNormalization layer with
    ``trainable = False`` runs in inference mode, even inside ``fit``, so its statistics stay
    fixed. A trainable one is drawn like any trainable layer (its statistics would update).
    Introduced in lesson 02.
    """
    base = get_base(model)
    layers = [layer for layer in base.layers if layer.weights]
    colors = [TRAINABLE if layer.trainable and base.trainable
              else BATCHNORM if isinstance(layer, keras.layers.BatchNormalization)
              else FROZEN
              for layer in layers]
    fig = Figure(figsize=(10, 2.4))
    ax = fig.add_subplot()
    ax.bar(np.arange(len(layers)), 1, width=1.0, color=colors)
    ax.set(xlim=(-0.5, len(layers) - 0.5), yticks=[], xlabel="layer with weights (input → output)",
           title=f"{base.name}: which layers train")
    ax.legend(handles=[Patch(color=FROZEN, label="frozen"),
                       Patch(color=TRAINABLE, label="trainable"),
                       Patch(color=BATCHNORM,
                             label="frozen BatchNorm (trainable=False: inference mode)")],
              loc="lower center", bbox_to_anchor=(0.5, 1.15), ncol=3, frameon=False)
    fig.tight_layout()
    return fig
