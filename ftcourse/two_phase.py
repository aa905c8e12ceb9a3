"""Two-phase fine-tuning in one call: the head on a frozen base, then the top layers too.

Where the model and data allow it, both phases train on activations cached by one pass of the
frozen part (``ftcourse.cut``); otherwise (augmentation, for one) they train on images.
Introduced in lesson 05.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ftcourse import cut as cuts
from ftcourse.data import ImageData
from ftcourse.errors import CourseError
from ftcourse.models import get_base, unfreeze_top
from ftcourse.training import compile_model, join_histories, train, train_head_on_features


def fine_tune(model: keras.Model, data: ImageData, head_epochs: int, fine_tune_epochs: int,
              unfreeze: int = 20, learning_rate: float = 1e-3,
              fine_tune_learning_rate: float = 1e-5, fast: bool = True,
              verbose: int | str = "auto") -> keras.callbacks.History:
    """Train the head on the frozen base, then unfreeze the top ``unfreeze`` layers
    (BatchNormalization stays frozen) and continue at ``fine_tune_learning_rate``.

    With ``fast=True`` (the default) the frozen part runs once and both phases train on its
    cached output, when that gives the result of training on images; a printed line says when
    it does not, and why. The returned History holds both phases;
    ``history.fine_tune_start`` is the epoch where the second began.
    """
    base = get_base(model)
    unfreeze_top(model, unfreeze)
    plan = _plan(model, data) if fast else "fast=False"
    phase2_flags = [layer.trainable for layer in base.layers]
    base.trainable = False
    if isinstance(plan, str):
        if fast:
            print(f"fine_tune trains on images: {plan}")
        return _on_images(model, data, head_epochs, fine_tune_epochs, unfreeze,
                          learning_rate, fine_tune_learning_rate, verbose)
    return _on_activations(model, plan, data, phase2_flags, head_epochs, fine_tune_epochs,
                           learning_rate, fine_tune_learning_rate, verbose)


def _plan(model: keras.Model, data: ImageData) -> cuts.Cut | str:
    """The cut for phase 2's trainable layers, or the reason the fast path does not apply."""
    try:
        for split in (data.train, data.val):
            randomness = cuts.random_ops(split)
            if randomness:
                return (f"the data pipeline draws random numbers ({', '.join(randomness)}), "
                        "so its images change every epoch")
        return cuts.find_cut(model)
    except CourseError as reason:
        return str(reason)


def _on_images(model: keras.Model, data: ImageData, head_epochs: int, fine_tune_epochs: int,
               unfreeze: int, learning_rate: float, fine_tune_learning_rate: float,
               verbose: int | str) -> keras.callbacks.History:
    compile_model(model, learning_rate)
    first = train(model, data, head_epochs, verbose=verbose)
    unfreeze_top(model, unfreeze)
    compile_model(model, fine_tune_learning_rate)
    second = train(model, data, head_epochs + fine_tune_epochs, initial_epoch=head_epochs,
                   verbose=verbose)
    return join_histories(first, second)


def _on_activations(model: keras.Model, cut: cuts.Cut, data: ImageData,
                    phase2_flags: list[bool], head_epochs: int, fine_tune_epochs: int,
                    learning_rate: float, fine_tune_learning_rate: float,
                    verbose: int | str) -> keras.callbacks.History:
    batch_size = _batch_size(data.train)
    train_cut = cuts.cut_activations(cut, data.train, verbose=verbose)
    val_cut = cuts.cut_activations(cut, data.val, verbose=verbose)
    first = train_head_on_features(model, cuts.base_features(cut, train_cut),
                                   cuts.base_features(cut, val_cut), epochs=head_epochs,
                                   learning_rate=learning_rate, batch_size=batch_size,
                                   verbose=verbose)
    base = get_base(model)
    base.trainable = True
    for layer, trainable in zip(base.layers, phase2_flags, strict=True):
        layer.trainable = trainable
    second = cuts.train_top_on_activations(cut, train_cut, val_cut, epochs=fine_tune_epochs,
                                           learning_rate=fine_tune_learning_rate,
                                           batch_size=batch_size, initial_epoch=head_epochs,
                                           verbose=verbose)
    compile_model(model, fine_tune_learning_rate)  # ready for evaluate, or more model.fit
    joined = join_histories(first, second)
    joined.set_model(model)
    return joined


def _batch_size(dataset: tf.data.Dataset) -> int:
    for images, _labels in dataset.take(1):
        return int(images.shape[0])
    raise CourseError("The training split is empty: there is nothing to fine-tune on.")
