"""Compiling and training, two-phase fine-tuning, and the frozen-base fast path.

Introduced in lesson 02 (``compile_model``, ``train``), lesson 04 (the fast path) and
lesson 05 (``lr_sweep``, ``fine_tune``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ftcourse.data import ImageData
from ftcourse.errors import CourseError
from ftcourse.models import HEAD_NAME, PREPROCESS_NAME, get_base, unfreeze_top

Features = tuple[np.ndarray, np.ndarray]  # (base outputs, integer labels)


def output_activation(model: keras.Model) -> str:
    """Name of the activation on the model's last layer (``"linear"`` for logits)."""
    layer = model.layers[-1]
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "linear")


def loss_for(model: keras.Model) -> keras.losses.Loss:
    """The loss that matches the model's output: never a logits/probabilities mismatch."""
    units = model.outputs[0].shape[-1]
    from_logits = output_activation(model) == "linear"
    if units == 1:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def compile_model(model: keras.Model, learning_rate: float = 1e-3,
                  steps_per_execution: int = 1) -> keras.Model:
    """Compile with Adam at ``learning_rate``, the matching loss and accuracy.

    Call it again after changing ``trainable``: Keras reads it at compile time.
    Introduced in lesson 02.
    """
    if not learning_rate > 0:
        raise CourseError(f"learning_rate must be positive, got {learning_rate}.")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss_for(model),
                  metrics=["accuracy"], steps_per_execution=steps_per_execution)
    return model


def train(model: keras.Model, data: ImageData, epochs: int, initial_epoch: int = 0,
          verbose: int | str = "auto", callbacks: Sequence[keras.callbacks.Callback] = ()
          ) -> keras.callbacks.History:
    """``model.fit`` on the training split, validating on the validation split."""
    if getattr(model, "optimizer", None) is None:
        raise CourseError("The model is not compiled: call ftcourse.compile_model(model, ...) "
                          "or model.compile(...) before training.")
    # shuffle=False: data.train already reshuffles itself every epoch.
    return model.fit(data.train, validation_data=data.val, epochs=epochs,
                     initial_epoch=initial_epoch, verbose=verbose, callbacks=list(callbacks),
                     shuffle=False)


def fine_tune(model: keras.Model, data: ImageData, head_epochs: int, fine_tune_epochs: int,
              unfreeze: int = 20, learning_rate: float = 1e-3,
              fine_tune_learning_rate: float = 1e-5, verbose: int | str = "auto"
              ) -> keras.callbacks.History:
    """Two phases: train the head on a frozen base, then unfreeze the top layers and go on.

    The returned History holds both phases; ``history.fine_tune_start`` is the epoch where
    the second began. Introduced in lesson 05.
    """
    get_base(model).trainable = False
    compile_model(model, learning_rate)
    first = train(model, data, head_epochs, verbose=verbose)
    unfreeze_top(model, unfreeze)
    compile_model(model, fine_tune_learning_rate)
    second = train(model, data, head_epochs + fine_tune_epochs, initial_epoch=head_epochs,
                   verbose=verbose)
    return join_histories(first, second)


def join_histories(first: keras.callbacks.History, second: keras.callbacks.History
                   ) -> keras.callbacks.History:
    """One History with the epochs of ``first`` followed by those of ``second``."""
    joined = keras.callbacks.History()
    joined.epoch = [*first.epoch, *second.epoch]
    joined.history = {key: [*first.history.get(key, []), *values]
                      for key, values in second.history.items()}
    joined.fine_tune_start = len(first.epoch)
    joined.set_model(second.model)
    return joined


def feature_extractor(model: keras.Model) -> keras.Model:
    """The model up to the base's output: preprocessing (if any) and the base, inference mode."""
    base = get_base(model)
    inputs = keras.Input(model.inputs[0].shape[1:])
    x = inputs
    if any(layer.name == PREPROCESS_NAME for layer in model.layers):
        x = model.get_layer(PREPROCESS_NAME)(x)
    return keras.Model(inputs, base(x, training=False), name="feature_extractor")


def extract_features(model: keras.Model, dataset: tf.data.Dataset,
                     verbose: int | str = "auto") -> Features:
    """One forward pass of the frozen base over ``dataset``: (features, labels) arrays.

    Valid while the base is frozen, in inference mode, and the data is not augmented.
    Introduced in lesson 04.
    """
    extractor = feature_extractor(model)
    batches, labels = [], []
    progress = keras.utils.Progbar(int(dataset.cardinality()), verbose=_progbar(verbose))
    for step, (images, batch_labels) in enumerate(dataset, start=1):
        batches.append(np.asarray(extractor(images, training=False)))
        labels.append(batch_labels.numpy())
        progress.update(step)
    if not batches:
        raise CourseError("The dataset is empty: there are no images to extract features from.")
    return np.concatenate(batches), np.concatenate(labels)


def train_head_on_features(model: keras.Model, train_features: Features,
                           val_features: Features | None = None, epochs: int = 10,
                           learning_rate: float = 1e-3, batch_size: int = 32,
                           shuffle: bool = True, verbose: int | str = "auto"
                           ) -> keras.callbacks.History:
    """Train only the head on cached base outputs; the full model shares the trained head.

    Same result as ``model.fit`` with a frozen base, without running the base every epoch.
    Introduced in lesson 04.
    """
    head = _get_head(model)
    if getattr(head, "optimizer", None) is None or _learning_rate(head) != learning_rate:
        compile_model(head, learning_rate, steps_per_execution=_steps(train_features, batch_size))
    return head.fit(*train_features, validation_data=val_features, epochs=epochs,
                    batch_size=batch_size, shuffle=shuffle, verbose=verbose)


def lr_sweep(model: keras.Model, train_features: Features, val_features: Features,
             learning_rates: Iterable[float], epochs: int = 10, batch_size: int = 32,
             verbose: int | str = 0) -> dict[float, keras.callbacks.History]:
    """Train the head from the same starting weights once per learning rate.

    One compiled head is reused: weights and optimizer state are reset between rates.
    Introduced in lesson 05.
    """
    head = _get_head(model)
    start = head.get_weights()
    compile_model(head, 1e-3, steps_per_execution=_steps(train_features, batch_size))
    results = {}
    for rate in learning_rates:
        head.set_weights(start)
        _reset_optimizer(head.optimizer, rate)
        results[rate] = head.fit(*train_features, validation_data=val_features, epochs=epochs,
                                 batch_size=batch_size, verbose=verbose)
    head.set_weights(start)
    return results


def _get_head(model: keras.Model) -> keras.Model:
    try:
        return model.get_layer(HEAD_NAME)
    except ValueError:
        raise CourseError(f"Model {model.name!r} has no sub-model named {HEAD_NAME!r}: the "
                          "fast path needs a model from ftcourse.build_model.") from None


def _reset_optimizer(optimizer: keras.optimizers.Optimizer, learning_rate: float) -> None:
    for variable in optimizer.variables:
        variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
    optimizer.learning_rate = learning_rate


def _learning_rate(model: keras.Model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


def _steps(features: Features, batch_size: int) -> int:
    """Run a whole epoch per call when it is short: less per-step overhead."""
    return max(1, min(64, -(-len(features[0]) // batch_size)))


def _progbar(verbose: int | str) -> int:
    return 1 if verbose == "auto" else int(verbose)


