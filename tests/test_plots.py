"""Every plot returns a matplotlib Figure, draws what it says, and leaves pyplot alone."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from ftcourse.models import build_model, get_base, unfreeze_top
from ftcourse.plots import (
    BATCHNORM,
    FROZEN,
    TRAINABLE,
    image_grid,
    plot_confusion_matrix,
    plot_freeze_map,
    plot_history,
    plot_lr_sweep,
    plot_misclassified,
)

pytestmark = pytest.mark.usefixtures("no_open_figures")
CLASSES = ["cat", "dog", "fox"]


def history_of(**metrics: list[float]) -> keras.callbacks.History:
    history = keras.callbacks.History()
    history.history = dict(metrics)
    history.epoch = list(range(len(next(iter(metrics.values())))))
    return history


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (7, 8, 8, 3)).astype("float32")


def test_image_grid(images: np.ndarray) -> None:
    fig = image_grid(images, [0, 1, 2, 0, 1, 2, 0], CLASSES, columns=3)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 7
    assert [ax.get_title() for ax in fig.axes[:3]] == CLASSES
    assert all(len(ax.images) == 1 for ax in fig.axes)


def test_image_grid_marks_wrong_predictions(images: np.ndarray) -> None:
    fig = image_grid(images[:3], [0, 1, 2], CLASSES, predictions=[0, 2, 2])
    titles = [(ax.get_title(), to_hex(ax.title.get_color())) for ax in fig.axes]
    assert titles == [("cat (cat)", "#000000"), ("fox (dog)", "#ff0000"),
                      ("fox (fox)", "#000000")]


def test_plot_history_without_fine_tuning() -> None:
    fig = plot_history(history_of(loss=[2.0, 1.0], val_loss=[2.1, 1.5], accuracy=[0.3, 0.5],
                                  val_accuracy=[0.2, 0.4]))
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax in fig.axes:
        assert [line.get_label() for line in ax.lines] == ["training", "validation"]


def test_plot_history_draws_the_phase_marker() -> None:
    history = history_of(loss=[3.0, 2.0, 1.0], accuracy=[0.1, 0.2, 0.3])
    history.fine_tune_start = 2
    for fig in (plot_history(history), plot_history(history_of(loss=[1, 2, 3]), 2)):
        for ax in fig.axes:
            markers = [line for line in ax.lines if line.get_label() == "fine-tuning starts"]
            assert len(markers) == 1
            assert markers[0].get_xdata()[0] == pytest.approx(2.5)


def test_plot_lr_sweep() -> None:
    results = {1e-3: history_of(val_accuracy=[0.2, 0.4]),
               1e-1: history_of(val_accuracy=[0.1, 0.1]),
               1e-2: history_of(val_accuracy=[0.3, 0.6])}
    fig = plot_lr_sweep(results)
    curves, summary = fig.axes
    assert [line.get_label() for line in curves.lines] == ["lr=0.001", "lr=0.1", "lr=0.01"]
    np.testing.assert_allclose(summary.lines[0].get_xdata(), [1e-3, 1e-2, 1e-1])
    np.testing.assert_allclose(summary.lines[0].get_ydata(), [0.4, 0.6, 0.1])
    assert summary.get_xscale() == "log"


def test_plot_confusion_matrix() -> None:
    fig = plot_confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], CLASSES)
    ax = fig.axes[0]
    counts = np.array([int(text.get_text()) for text in ax.texts]).reshape(3, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert [label.get_text() for label in ax.get_xticklabels()] == CLASSES


def test_plot_misclassified(images: np.ndarray) -> None:
    y_true, y_pred = [0, 1, 2, 0, 1, 2, 0], [0, 2, 2, 1, 1, 2, 2]
    fig = plot_misclassified(images, y_true, y_pred, CLASSES)
    assert [ax.get_title() for ax in fig.axes] == ["fox (dog)", "dog (cat)", "fox (cat)"]
    assert len(plot_misclassified(images, y_true, y_pred, CLASSES, limit=2).axes) == 2


def test_plot_misclassified_with_none_wrong(images: np.ndarray) -> None:
    fig = plot_misclassified(images[:2], [0, 1], [0, 1], CLASSES)
    assert fig.axes == [] and fig.texts[0].get_text() == "No misclassified images."


def _bar_colors(fig: Figure) -> list[str]:
    return [to_hex(bar.get_facecolor()) for bar in fig.axes[0].patches]


def test_plot_freeze_map_counts_each_kind_of_layer() -> None:
    model = build_model("mobilenet_v2", 3, 32, weights=None)
    base = get_base(model)
    with_weights = [layer for layer in base.layers if layer.weights]
    is_bn = [isinstance(layer, keras.layers.BatchNormalization) for layer in with_weights]

    colors = _bar_colors(plot_freeze_map(model))
    assert len(colors) == len(with_weights)
    assert colors.count(BATCHNORM) == sum(is_bn)
    assert colors.count(FROZEN) == len(with_weights) - sum(is_bn)

    changed = unfreeze_top(model, 12)
    colors = _bar_colors(plot_freeze_map(model))
    assert colors.count(TRAINABLE) == len(changed) > 0
    assert colors.count(BATCHNORM) == sum(is_bn)
    assert colors.count(FROZEN) == len(with_weights) - sum(is_bn) - len(changed)
    not_bn = [color for color in colors if color != BATCHNORM]
    assert not_bn[-1] == TRAINABLE and not_bn[0] == FROZEN  # the top trains, the input doesn't


def test_plot_freeze_map_says_what_keeps_batchnorm_fixed() -> None:
    model = build_model("mobilenet_v2", 3, 32, weights=None)
    labels = [text.get_text() for text in plot_freeze_map(model).axes[0].get_legend().get_texts()]
    assert not any("training=False" in label for label in labels)
    assert any("trainable=False" in label for label in labels)
    base = get_base(model)
    base.trainable = True  # every layer trainable, BatchNorm included: its statistics would move
    colors = _bar_colors(plot_freeze_map(model))
    assert set(colors) == {TRAINABLE}


@pytest.mark.parametrize("plot", ["history", "lr_sweep"])
def test_epoch_ticks_are_whole_numbers_and_loss_has_no_offset(plot: str) -> None:
    losses = [2.302585 + 1e-6 * i for i in range(7)]  # values that would get a "+2.302" offset
    history = history_of(loss=losses, val_loss=losses, accuracy=[0.2] * 7, val_accuracy=[0.2] * 7)
    fig = plot_history(history) if plot == "history" else plot_lr_sweep(
        {1e-3: history, 1e-2: history}, metric="val_loss")
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.yaxis.get_major_formatter().get_offset() == ""
        if ax.get_xlabel() == "epoch":
            ticks = [tick for tick in ax.get_xticks() if 1 <= tick <= 7]
            assert ticks and all(float(tick).is_integer() for tick in ticks)
