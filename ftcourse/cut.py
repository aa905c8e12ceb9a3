"""The phase-2 fast path: run the frozen part of the model once, train the rest on its output.

With the top layers of the base unfrozen, everything below the lowest trainable layer is frozen
and in inference mode, so on the same images it gives the same output in every epoch. The
*cut* is the set of tensors where that frozen part hands over to the trainable part; caching
the activations at the cut and training the part above on them gives the result of
``model.fit`` at the cost of the unfrozen layers only. Introduced in lesson 05.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ftcourse.errors import CourseError
from ftcourse.models import HEAD_NAME, get_base
from ftcourse.rows import Rows, as_tensor
from ftcourse.training import (
    _build_for_training,
    _check_epochs,
    _epoch_orders,
    _fit_on_features,
    _progbar,
    _same_rate,
    _steps,
    compile_model,
)

Activations = tuple[tuple[np.ndarray, ...], np.ndarray]  # (arrays at the cut, integer labels)
_CHUNK = 256  # rows per call when the top part runs in inference mode on cached activations

# Layers whose output in training differs from inference: cached activations would freeze them.
_TRAINING_ONLY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                  "GaussianNoise", "GaussianDropout", "AlphaDropout")


@dataclass
class Cut:
    """Where the frozen part of a model ends: ``frozen`` maps pixels to the activations at the
    cut, ``trainer`` maps them to the model's output; both share the model's layers."""

    frozen: keras.Model
    trainer: keras.Model
    lowest_trainable: str | None  # the base's lowest trainable layer (None: the head only)
    base_top: keras.Model | None  # the base above the cut (None when nothing in it trains)


def find_cut(model: keras.Model) -> Cut:
    """The cut below the base's lowest trainable layer, for a model built like
    ``ftcourse.build_model``'s (pixels -> frozen layers -> ``base_model`` -> ``head``).

    Raises ``CourseError`` naming the reason where caching would change the result: a layer
    below the cut that acts differently in training (augmentation, dropout, a trainable
    BatchNormalization), a trainable layer in front of the base, or a cut that does not
    separate the graph.
    """
    base, head = get_base(model), _head(model)
    base_input = _base_input(model, base, head)
    lowest = _lowest_trainable(base)
    pre = keras.Model(model.inputs, base_input, name="before_base")
    if lowest is None:
        below, cut_tensors, base_top = base.layers, list(base.outputs), None
    else:
        below = base.layers[:lowest]
        cut_tensors = _cut_tensors(base, lowest)
        base_top = _submodel(cut_tensors, base.outputs, "base_top")
    _check_frozen([*pre.layers, *below])
    inputs = keras.Input(model.inputs[0].shape[1:])
    bottom = base if base_top is None else _submodel(base.inputs, cut_tensors, "base_bottom")
    frozen = keras.Model(inputs, bottom(pre(inputs, training=False), training=False),
                         name="frozen_part")
    trainer = head if base_top is None else _trainer(base_top, head, cut_tensors)
    name = None if lowest is None else base.layers[lowest].name
    return Cut(frozen, trainer, name, base_top)


def cut_activations(cut: Cut, dataset: tf.data.Dataset, verbose: int | str = "auto"
                    ) -> Activations:
    """One pass of the frozen part over ``dataset``: the activations at the cut and the labels.

    Refuses a pipeline that draws random numbers (augmentation in ``map``): its images change
    from epoch to epoch, and cached activations would not.
    """
    randomness = random_ops(dataset)
    if randomness:
        raise CourseError(f"The dataset draws random numbers ({', '.join(randomness)}): "
                          "augmented images differ every epoch, so their activations cannot "
                          "be cached. Train on images (model.fit) instead.")
    forward = _compiled(cut.frozen)
    steps = int(dataset.cardinality())
    arrays = [Rows(steps) for _ in cut.frozen.outputs]
    labels = []
    progress = keras.utils.Progbar(steps if steps > 0 else None, verbose=_progbar(verbose))
    for step, (images, batch_labels) in enumerate(dataset, start=1):
        outputs = tf.nest.flatten(forward(tf.cast(images, tf.float32)))
        for rows, tensor in zip(arrays, outputs, strict=True):
            rows.add(tensor.numpy())
        labels.append(np.asarray(batch_labels))
        progress.update(step)
    if not labels:
        raise CourseError("The dataset is empty: there are no images to run the frozen part on.")
    return tuple(rows.array() for rows in arrays), np.concatenate(labels)


def train_top_on_activations(cut: Cut, train: Activations, val: Activations | None = None,
                             epochs: int = 10, learning_rate: float = 1e-5,
                             batch_size: int = 32, shuffle: bool = True,
                             initial_epoch: int = 0, verbose: int | str = "auto"
                             ) -> keras.callbacks.History:
    """Train the layers above the cut (the unfrozen top of the base and the head) on cached
    activations; the full model shares the trained weights.

    Given the same batches in the same order, the weights end as ``model.fit`` leaves them.
    """
    _check_epochs(epochs, batch_size)
    trainer = cut.trainer
    train_data, val_data = _as_inputs(train, "train"), None if val is None else _as_inputs(
        val, "val")
    if getattr(trainer, "optimizer", None) is None or not _same_rate(trainer, learning_rate):
        compile_model(trainer, learning_rate, steps_per_execution=_steps(len(train[1]), batch_size))
    _build_for_training(trainer, train_data)
    orders = _epoch_orders(len(train[1]), epochs, shuffle)
    return _fit_on_features(trainer, train_data, val_data, batch_size, orders, verbose,
                            initial_epoch)


def base_features(cut: Cut, activations: Activations) -> tuple[np.ndarray, np.ndarray]:
    """The base's output (inference mode) computed from cached activations at the cut: what
    ``extract_features`` returns, without running the frozen part again."""
    if cut.base_top is None:
        return activations[0][0], activations[1]
    forward = _compiled(cut.base_top)
    arrays, labels = activations
    outputs = [forward(_one_or_many(tuple(tf.constant(a[start:start + _CHUNK]) for a in arrays)))
               .numpy() for start in range(0, len(labels), _CHUNK)]
    return np.concatenate(outputs), labels


def random_ops(dataset: tf.data.Dataset) -> list[str]:
    """The random-number ops a ``tf.data`` pipeline runs on its elements (shuffling, which
    reorders whole elements, is not one of them)."""
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    nodes = [*graph.node, *(node for function in graph.library.function
                            for node in function.node_def)]
    return sorted({node.op for node in nodes
                   if "Random" in node.op and not node.op.endswith("Dataset")
                   and not node.op.startswith(("Shuffle", "AnonymousSeedGenerator",
                                               "DummySeedGenerator"))})


def _head(model: keras.Model) -> keras.Model:
    try:
        head = model.get_layer(HEAD_NAME)
    except ValueError:
        raise CourseError(f"Model {model.name!r} has no sub-model named {HEAD_NAME!r}: the "
                          "fast path needs a model from ftcourse.build_model.") from None
    if model.outputs[0]._keras_history.operation is not head:
        raise CourseError("The fast path needs the head's output to be the model's output.")
    return head


def _base_input(model: keras.Model, base: keras.Model, head: keras.Model) -> keras.KerasTensor:
    """The tensor the model feeds to its base; the base's output must go straight to the head."""
    nodes = _graph_nodes(model)
    base_nodes = [node for node in nodes if node.operation is base]
    head_nodes = [node for node in nodes if node.operation is head]
    if len(base_nodes) != 1 or len(head_nodes) != 1 or any(
            tensor._keras_history.operation is not base
            for tensor in head_nodes[0].input_tensors):
        raise CourseError("The fast path needs the base's output to go straight into the head "
                          "(pixels -> ... -> base_model -> head), with the base called once.")
    return base_nodes[0].input_tensors[0]


def _graph_nodes(model: keras.Model) -> list:
    """The nodes of a functional model's own graph (a shared layer has nodes in others too)."""
    return [node for nodes in model._nodes_by_depth.values() for node in nodes]


def _lowest_trainable(base: keras.Model) -> int | None:
    """Index of the base's lowest layer with trainable weights (None: none train)."""
    return next((index for index, layer in enumerate(base.layers)
                 if layer.trainable and layer.trainable_weights), None)


def _cut_tensors(base: keras.Model, lowest: int) -> list[keras.KerasTensor]:
    """Tensors made below ``lowest`` and read at or above it, in the base's layer order."""
    below = {id(layer) for layer in base.layers[:lowest]}
    found: dict[int, keras.KerasTensor] = {}
    for node in _graph_nodes(base):
        if id(node.operation) in below:
            continue
        for tensor in node.input_tensors:
            if id(tensor._keras_history.operation) in below:
                found.setdefault(id(tensor), tensor)
    return sorted(found.values(), key=lambda tensor: _index(base, tensor))


def _index(base: keras.Model, tensor: keras.KerasTensor) -> int:
    return base.layers.index(tensor._keras_history.operation)


def _submodel(inputs: list, outputs: list, name: str) -> keras.Model:
    try:
        return keras.Model(_one_or_many(inputs), _one_or_many(outputs), name=name)
    except ValueError as error:
        raise CourseError(f"The cut below the lowest trainable layer does not separate the "
                          f"base's graph ({error}); train on images (model.fit) instead.") from None


def _trainer(base_top: keras.Model, head: keras.Model, cut_tensors: list) -> keras.Model:
    inputs = [keras.Input(tensor.shape[1:], dtype=tensor.dtype) for tensor in cut_tensors]
    # The top of the base runs as model.fit runs it; frozen BatchNormalization stays in inference.
    return keras.Model(_one_or_many(inputs), head(base_top(_one_or_many(inputs))),
                       name="above_the_cut")


def _check_frozen(layers: list[keras.Layer]) -> None:
    """Refuse layers below the cut that train, or whose output depends on training mode."""
    for layer in _leaves(layers):
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            raise CourseError(f"BatchNormalization layer {layer.name!r} below the lowest "
                              "trainable layer is trainable: in training it normalizes with "
                              "each batch's statistics, so its output cannot be cached. Freeze "
                              "it (layer.trainable = False) or train on images.")
        if kind.startswith("Random") or kind in _TRAINING_ONLY:
            raise CourseError(f"Layer {layer.name!r} ({kind}) below the lowest trainable layer "
                              "changes its output in every training step (augmentation or "
                              "noise), so its output cannot be cached: train on images.")
        if layer.trainable and layer.trainable_weights:
            raise CourseError(f"Layer {layer.name!r} in front of the base is trainable: its "
                              "output changes as it trains, so it cannot be cached.")


def _leaves(layers: list[keras.Layer]) -> list[keras.Layer]:
    leaves = []
    for layer in layers:
        inner = getattr(layer, "layers", None)
        leaves.extend(_leaves(inner) if inner else [layer])
    return leaves


def _one_or_many(items: list | tuple):
    return items[0] if len(items) == 1 else list(items)


def _as_inputs(activations: Activations, name: str):
    arrays, labels = activations
    if not arrays or any(len(array) != len(labels) for array in arrays) or len(labels) == 0:
        raise CourseError(f"{name} must be the (activations, labels) pair that "
                          "ftcourse.cut.cut_activations returns, with at least one row.")
    inputs = tuple(as_tensor(array) for array in arrays)
    return (inputs[0] if len(inputs) == 1 else inputs), tf.convert_to_tensor(labels)


def _compiled(part: keras.Model):
    """``part`` in inference mode as one traced function, for any batch size (traced once)."""
    specs = [tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype) for tensor in part.inputs]

    @tf.function(input_signature=[_one_or_many(specs)])
    def forward(inputs):
        return part(inputs, training=False)

    return forward
