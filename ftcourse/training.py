"""Compiling and training, and the frozen-base fast path.

Introduced in lesson 02 (``compile_model``, ``train``), lesson 04 (the fast path) and
lesson 05 (``lr_sweep``, ``join_histories``); ``ftcourse.two_phase`` builds on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from ftcourse.data import ImageData
from ftcourse.errors import CourseError
from ftcourse.models import HEAD_NAME, PREPROCESS_NAME, built_as, get_base
from ftcourse.rows import Rows, as_tensor
from ftcourse.traced import InferencePass, copy_state, shared_head

Features = tuple[np.ndarray, np.ndarray]  # (base outputs, integer labels)
TensorPair = tuple[tf.Tensor, tf.Tensor]  # (features, labels) as tensors
_EVAL_CHUNK = 256  # rows per step when the fast path validates a head
_POOL_CHUNK = 1024  # rows per call when cached features are pooled once
_CALL_PIXELS = 128 * 96 * 96  # image pixels per call of the base when features are extracted

# A head that starts with one of these (no weights, the same in training and inference) gives
# the same pooled features in every epoch: the fast path pools them once and trains the rest.
_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def output_activation(model: keras.Layer) -> str:
    """``"softmax"``, ``"sigmoid"``, ``"linear"`` (logits) or ``"other"``: what the model's last
    layer applies (a ``Dense`` activation, an ``Activation`` layer or a ``Softmax`` layer)."""
    layer = model
    while getattr(layer, "layers", None):
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    known = {keras.activations.softmax: "softmax", keras.activations.sigmoid: "sigmoid",
             keras.activations.linear: "linear", None: "linear"}
    return known.get(activation, "other")


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
    forward = _compiled_extractor(model)
    steps = int(dataset.cardinality())
    features: Rows | None = None
    labels: list[np.ndarray] = []
    progress = keras.utils.Progbar(steps if steps > 0 else None, verbose=_progbar(verbose))
    for group in _groups(model, dataset):
        if features is None:  # sized for the number of groups, when the dataset knows it
            features = Rows(-(-steps // len(group)) if steps > 0 else steps)
        images = tf.concat([images for images, _ in group], 0) if len(group) > 1 else group[0][0]
        features.add(forward(tf.cast(images, tf.float32)).numpy())
        labels.extend(np.asarray(batch_labels) for _, batch_labels in group)
        progress.update(len(labels))
    if features is None:
        raise CourseError("The dataset is empty: there are no images to extract features from.")
    return features.array(), np.concatenate(labels)


def _groups(model: keras.Model, dataset: tf.data.Dataset) -> Iterator[list[TensorPair]]:
    """The dataset's batches, consecutive ones grouped up to about ``_CALL_PIXELS`` per group.

    One call of the base on a few small batches at once costs less than one call per batch:
    fewer calls, and larger matrix products. A group always holds at least one batch.
    """
    height, width = (size or 1 for size in model.inputs[0].shape[1:3])
    budget = max(1, _CALL_PIXELS // (height * width))
    group: list[TensorPair] = []
    rows = 0  # images held in group
    for images, labels in dataset:
        _check_image_shape(model, images)
        if group and rows + len(images) > budget:
            yield group
            group, rows = [], 0
        group.append((images, labels))
        rows += len(images)
    if group:
        yield group


def train_head_on_features(model: keras.Model, train_features: Features,
                           val_features: Features | None = None, epochs: int = 10,
                           learning_rate: float = 1e-3, batch_size: int = 32,
                           shuffle: bool = True, verbose: int | str = "auto"
                           ) -> keras.callbacks.History:
    """Train only the head on cached base outputs; the full model shares the trained head.

    Same result as ``model.fit`` with a frozen base, without running the base every epoch:
    each epoch (training, then validation) runs as one compiled call of the head's own
    ``train_step`` and ``test_step``. A head that starts with global pooling (no weights, the
    same in training and inference) has the features pooled once, and its layers above the
    pooling train on them with the head's optimizer. Introduced in lesson 04.
    """
    head = _get_head(model)
    train_data = _as_tensors(train_features, "train_features")
    val_data = None if val_features is None else _as_tensors(val_features, "val_features")
    _check_epochs(epochs, batch_size)
    if getattr(head, "optimizer", None) is None or not _same_rate(head, learning_rate):
        compile_model(head, learning_rate, steps_per_execution=_steps(len(train_features[0]),
                                                                  batch_size))
    trainer, train_data, val_data = _trainer_on(head, train_data, val_data)
    _build_for_training(trainer, train_data)
    orders = _epoch_orders(len(train_features[0]), epochs, shuffle)
    return _fit_on_features(trainer, train_data, val_data, batch_size, orders, verbose,
                            history_model=head)


def lr_sweep(model: keras.Model, train_features: Features, val_features: Features,
             learning_rates: Iterable[float], epochs: int = 10, batch_size: int = 32,
             verbose: int | str = 0) -> dict[float, keras.callbacks.History]:
    """Train the head from the same starting weights once per learning rate.

    One compiled head is reused: before each rate its weights and the optimizer's state
    (step counter and moments) go back to where they started, and every rate sees the same
    batches in the same order. The head ends compiled at the first rate, with its starting
    weights and a fresh optimizer state. Introduced in lesson 05.

    The training runs on a copy of the head shared by the heads built alike
    (``ftcourse.traced.shared_head``), so its loops are traced once per structure, not once
    per model; the head's own random seeds advance as if it had trained itself.
    """
    head = _get_head(model)
    rates = list(learning_rates)
    if not rates or not all(rate > 0 for rate in rates):
        raise CourseError(f"learning_rates must be a non-empty list of positive numbers, "
                          f"got {rates}.")
    _check_epochs(epochs, batch_size)
    start = head.get_weights()
    steps = _steps(len(train_features[0]), batch_size)
    compile_model(head, rates[0], steps_per_execution=steps)
    sweeper = shared_head(head, built_as(model))
    if sweeper is not head:
        copy_state(head, sweeper)
        if getattr(sweeper, "optimizer", None) is None:  # compiled once: its loops stay traced
            compile_model(sweeper, rates[0], steps_per_execution=steps)
    trainer, train_data, val_data = _trainer_on(
        sweeper, _as_tensors(train_features, "train_features"),
        _as_tensors(val_features, "val_features"))
    _build_for_training(trainer, train_data)
    # Fresh: just built, or put back by the previous sweep's `finally`.
    fresh_state = [variable.numpy() for variable in sweeper.optimizer.variables]
    orders = _epoch_orders(len(train_features[0]), epochs, shuffle=True)
    results = {}
    try:
        for rate in rates:
            _restart(sweeper, start, fresh_state)
            sweeper.optimizer.learning_rate = float(rate)  # assigns a variable: no retracing
            results[rate] = _fit_on_features(trainer, train_data, val_data, batch_size, orders,
                                             verbose, history_model=head)
    finally:  # also when interrupted: the head, and the shared copy, as they started
        _restart(sweeper, start, fresh_state)
        if sweeper is not head:
            copy_state(sweeper, head)  # the starting weights, and the seeds as they advanced
    return results


def _get_head(model: keras.Model) -> keras.Model:
    try:
        return model.get_layer(HEAD_NAME)
    except ValueError:
        raise CourseError(f"Model {model.name!r} has no sub-model named {HEAD_NAME!r}: the "
                          "fast path needs a model from ftcourse.build_model.") from None


def _restart(head: keras.Model, weights: list[np.ndarray], optimizer_state: list[np.ndarray]
             ) -> None:
    """Put back the head's weights and its optimizer's step counter and moments."""
    head.set_weights(weights)
    for variable, value in zip(head.optimizer.variables, optimizer_state, strict=True):
        variable.assign(value)


def _learning_rate(model: keras.Model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


def _same_rate(model: keras.Model, learning_rate: float) -> bool:
    """The optimizer's rate is stored as float32: compare at that precision."""
    return bool(np.float32(_learning_rate(model)) == np.float32(learning_rate))


def _as_tensors(features: Features, name: str) -> tuple[tf.Tensor, tf.Tensor]:
    """Check a (features, labels) pair and make it tensors once (features shared, not copied)."""
    if not isinstance(features, (tuple, list)) or len(features) != 2:
        raise CourseError(f"{name} must be a (features, labels) pair, as returned by "
                          "ftcourse.extract_features.")
    x, y = features
    if len(x) == 0 or len(x) != len(y):
        raise CourseError(f"{name} holds {len(x)} feature rows and {len(y)} labels: they must "
                          "be the same, non-zero number. Pass extract_features' output as is.")
    return as_tensor(x), tf.convert_to_tensor(y)


def _check_epochs(epochs: int, batch_size: int) -> None:
    if int(epochs) != epochs or epochs < 0:
        raise CourseError(f"epochs must be a whole number >= 0, got {epochs}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise CourseError(f"batch_size must be a whole number >= 1, got {batch_size}.")


def _epoch_orders(size: int, epochs: int, shuffle: bool) -> list[np.ndarray]:
    """The order of the training rows for each epoch, from one draw of NumPy's global RNG.

    ``keras.utils.set_random_seed`` (called by ``ftcourse.setup``) makes it reproducible.
    """
    if not shuffle:
        return [np.arange(size, dtype="int32")] * int(epochs)
    rng = np.random.default_rng(np.random.randint(2**31 - 1))
    return [rng.permutation(size).astype("int32") for _ in range(int(epochs))]


def _fit_on_features(head: keras.Model, train_data: tuple[tf.Tensor, tf.Tensor],
                     val_data: tuple[tf.Tensor, tf.Tensor] | None, batch_size: int,
                     orders: list[np.ndarray], verbose: int | str, initial_epoch: int = 0,
                     history_model: keras.Model | None = None) -> keras.callbacks.History:
    """What ``head.fit`` does, with one compiled call per epoch and per validation pass.

    ``x`` in the data may be one tensor or a tuple of them (a model with several inputs).
    The History names ``history_model`` (default: ``head``) as its model.
    """
    train_epoch, evaluate = _compiled_loops(head)
    size = tf.constant(batch_size, tf.int32)
    # Validation in bigger chunks: fewer steps, the same means (Keras weights each by its size).
    val_size = tf.constant(max(batch_size, _EVAL_CHUNK), tf.int32)
    history = keras.callbacks.History()
    history.set_model(head if history_model is None else history_model)
    rows = int(train_data[1].shape[0])
    history.set_params({"verbose": verbose, "epochs": initial_epoch + len(orders),
                        "steps": -(-rows // batch_size)})
    history.on_train_begin()
    progress = None
    for epoch, order in enumerate(orders):
        logs = train_epoch(*train_data, tf.constant(order), size)
        if val_data is not None:
            val_logs = evaluate(*val_data, val_size)
            logs.update({f"val_{key}": value for key, value in val_logs.items()})
        logs = {key: float(value) for key, value in logs.items()}
        history.on_epoch_end(initial_epoch + epoch, logs)
        if progress is None:
            progress = keras.utils.Progbar(len(orders), verbose=_progbar(verbose),
                                           stateful_metrics=list(logs), unit_name="epoch")
        progress.update(epoch + 1, values=list(logs.items()))
    head.optimizer.finalize_variable_values(head.trainable_weights)
    return history


def _trainer_on(head: keras.Model, train_data: TensorPair, val_data: TensorPair | None
                ) -> tuple[keras.Model, TensorPair, TensorPair | None]:
    """The model to train on cached features, and the data it trains on.

    A head compiled as ``compile_model`` compiles it, that starts with a global pooling layer:
    the layers above the pooling (the head's own layers, sharing its optimizer) on features
    pooled once. Any other head: the head itself, on the features as they are.
    """
    if not _pools_first(head):
        return head, train_data, val_data
    trainer = head.__dict__.get("_ftcourse_above_pooling")
    if trainer is None:
        pooled = head.layers[0].compute_output_shape(head.inputs[0].shape)
        trainer = keras.Sequential([keras.Input(pooled[1:]), *head.layers[1:]],
                                   name=f"{head.name}_above_pooling")
        object.__setattr__(head, "_ftcourse_above_pooling", trainer)  # untracked by Keras
    if getattr(trainer, "optimizer", None) is not head.optimizer:
        trainer.compile(optimizer=head.optimizer, loss=head.loss, metrics=["accuracy"])
    pool = head.layers[0]
    return (trainer, _pooled(pool, train_data),
            None if val_data is None else _pooled(pool, val_data))


def _pools_first(head: keras.Model) -> bool:
    return (isinstance(head, keras.Sequential) and len(head.layers) > 1
            and isinstance(head.layers[0], _POOLING)
            and (head.get_compile_config() or {}).get("metrics") == ["accuracy"])


def _pooled(pool: keras.Layer, data: TensorPair) -> TensorPair:
    """``pool`` applied once to every row of the features (in chunks), labels unchanged."""
    x, y = data
    rows = int(x.shape[0])
    chunks = [pool(x[start:start + _POOL_CHUNK]) for start in range(0, rows, _POOL_CHUNK)]
    return tf.concat(chunks, axis=0), y


def _build_for_training(head: keras.Model, train_data: tuple[tf.Tensor, tf.Tensor]) -> None:
    """Create the optimizer's, loss's and metrics' variables before any compiled loop runs."""
    if not head.optimizer.built:
        head.optimizer.build(head.trainable_variables)
    first = tf.nest.map_structure(lambda tensor: tensor[:1], train_data)
    head.test_step(first)  # builds the compiled metrics
    head.reset_metrics()


def _compiled_loops(head: keras.Model) -> tuple[Callable, Callable]:
    """``(train_epoch, evaluate)`` for this head, traced once and reused while it stays compiled.

    Both loop over batches inside one ``tf.function``; they are cached on the head and
    rebuilt when it is recompiled or its trainable weights change.
    """
    # Identity, not equality: a recompiled head has a new optimizer and new metrics.
    owners = (head.optimizer, *head.metrics)
    weights = tuple(id(weight) for weight in head.trainable_weights)
    cached = head.__dict__.get("_ftcourse_loops")
    if (cached is not None and cached[1] == weights and len(cached[0]) == len(owners)
            and all(a is b for a, b in zip(cached[0], owners, strict=True))):
        return cached[2]

    def train_epoch(x, y, order, batch_size):
        head.reset_metrics()
        for step in tf.range((tf.size(order) + batch_size - 1) // batch_size):
            rows = order[step * batch_size:(step + 1) * batch_size]
            head.train_step((_gather(x, rows), tf.gather(y, rows)))
        return head.get_metrics_result()

    def evaluate(x, y, batch_size):
        head.reset_metrics()
        for step in tf.range((tf.shape(y)[0] + batch_size - 1) // batch_size):
            rows = slice(step * batch_size, (step + 1) * batch_size)
            head.test_step((_slice(x, rows), y[rows]))
        return head.get_metrics_result()

    loops = (tf.function(train_epoch, reduce_retracing=True),
             tf.function(evaluate, reduce_retracing=True))
    object.__setattr__(head, "_ftcourse_loops", (owners, weights, loops))  # untracked by Keras
    return loops


def _gather(x: tf.Tensor | tuple[tf.Tensor, ...], rows: tf.Tensor):
    """The given rows of one input tensor, or of each of several."""
    return tf.nest.map_structure(lambda tensor: tf.gather(tensor, rows), x)


def _slice(x: tf.Tensor | tuple[tf.Tensor, ...], rows: slice):
    return tf.nest.map_structure(lambda tensor: tensor[rows], x)


def _compiled_extractor(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """The feature extractor as a traced function bound to the model's current weights.

    Traced once for all models ``build_model`` built alike (``ftcourse.traced``).
    """
    cached = model.__dict__.get("_ftcourse_extractor")
    if cached is None:
        structure = built_as(model)
        cached = InferencePass(feature_extractor(model),
                               None if structure is None else ("features", structure))
        object.__setattr__(model, "_ftcourse_extractor", cached)  # untracked by Keras
    return cached.with_current_weights()


def _check_image_shape(model: keras.Model, images: tf.Tensor) -> None:
    expected = tuple(model.inputs[0].shape[1:])
    if len(images.shape) != len(expected) + 1 or any(
            want is not None and got != want
            for got, want in zip(images.shape[1:], expected, strict=True)):
        raise CourseError(f"The dataset yields images of shape {tuple(images.shape[1:])} but "
                          f"the model expects {expected}: load the data with the model's "
                          "image_size (ftcourse.load_dataset(..., image_size=...)).")


def _steps(rows: int, batch_size: int) -> int:
    """Run a whole epoch per call when it is short: less per-step overhead."""
    return max(1, min(64, -(-rows // batch_size)))


def _progbar(verbose: int | str) -> int:
    return 1 if verbose == "auto" else int(verbose)


