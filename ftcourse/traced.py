"""Traced once per model structure, not once per model: the base's inference pass, and the
head's training loops in a learning-rate sweep.

Tracing a base (Keras walks its layers in Python) and the first run of its graph (TensorFlow
optimises it) take about a second for MobileNetV2, as long as a pass over a thousand small
images. Models that ``ftcourse.build_model`` built alike (architecture, image size,
preprocessing, dtype policy) run the same graph, so the pass is traced with the weights as
arguments rather than captured, once per structure, and each model runs it with its own weights.

A head's compiled training loops capture its variables, so they cannot take another head's
weights as arguments. Instead, each structure of head gets one private copy
(``shared_head``): a sweep copies a head's state into it, trains the copy with the loops traced
for it, and copies the state back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable

import keras
import tensorflow as tf

Forward = Callable[[tf.Tensor], tf.Tensor]

# One traced pass per structure, for the whole process. A traced graph holds no weights.
_BY_STRUCTURE: dict[Hashable, tf.types.experimental.ConcreteFunction] = {}
# One private copy of a head per structure of model and head, for the whole process.
_HEADS: dict[Hashable, keras.Model] = {}


def forget_all() -> None:
    """Drop every shared trace and head copy: the next model of each structure traces again
    (benchmarks measure that first time with it)."""
    _BY_STRUCTURE.clear()
    _HEADS.clear()


def shared_head(head: keras.Model, structure: Hashable | None) -> keras.Model:
    """The private copy of ``head`` shared by every head with the same layers on a model of
    ``structure``; ``head`` itself when ``structure`` is None. The copy's state (weights and
    random seeds, in ``head.variables`` order) is whatever its last user left: set it first."""
    if structure is None:
        return head
    key = (structure, _head_signature(head))
    if key not in _HEADS:
        _HEADS[key] = keras.models.clone_model(head)
    return _HEADS[key]


def copy_state(source: keras.Model, target: keras.Model) -> None:
    """Give ``target`` the weights and random-seed states of ``source``, a head built alike."""
    for to, value in zip(target.variables, source.variables, strict=True):
        to.assign(value)


class InferencePass:
    """``model(images, training=False)`` as a traced function, shared by every model of
    ``structure`` (``None``: a structure of its own, traced for this model only)."""

    def __init__(self, model: keras.Model, structure: Hashable | None) -> None:
        self._model = model
        self._structure = None if structure is None else (structure, _signature(model))
        self._own: tf.types.experimental.ConcreteFunction | None = None

    def with_current_weights(self) -> Forward:
        """The pass bound to the model's weights as they are now (read once, not per batch)."""
        traced = self._traced()
        # Tensors, not the variables: a variable passed in would be read again on every call.
        values = [tf.convert_to_tensor(variable.value) for variable in self._model.weights]
        return lambda images: traced(images, values)

    def _traced(self) -> tf.types.experimental.ConcreteFunction:
        if self._structure is None:
            if self._own is None:
                self._own = _trace(self._model)
            return self._own
        if self._structure not in _BY_STRUCTURE:
            _BY_STRUCTURE[self._structure] = _trace(self._model)
        return _BY_STRUCTURE[self._structure]


def _signature(model: keras.Model) -> tuple:
    """What a traced pass is specialised on: input shape, and each weight's shape and dtype."""
    return (tuple(model.inputs[0].shape[1:]),
            tuple((tuple(weight.shape), str(weight.dtype)) for weight in model.weights))


def _head_signature(head: keras.Model) -> tuple:
    """What a head's training loops depend on: its layers' configurations (names aside) and
    each variable's shape, dtype and trainability."""
    config = json.dumps(_unnamed(head.get_config()), sort_keys=True, default=str)
    return (type(head).__name__, config,
            tuple((tuple(v.shape), str(v.dtype), v.trainable) for v in head.variables))


def _unnamed(config: object) -> object:
    """A layer configuration without its ``name`` entries, which differ between models."""
    if isinstance(config, dict):
        return {key: _unnamed(value) for key, value in config.items() if key != "name"}
    if isinstance(config, (list, tuple)):
        return [_unnamed(value) for value in config]
    return config


def _trace(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """Trace ``model`` in inference mode as a function of (images, the weights' values)."""
    weights = list(model.weights)

    @tf.function(autograph=False)
    def forward(images: tf.Tensor, values: list[tf.Tensor]) -> tf.Tensor:
        # Inside the scope, every read of one of these weights gives the value passed in.
        with keras.StatelessScope(state_mapping=list(zip(weights, values, strict=True))):
            return model(images, training=False)

    return forward.get_concrete_function(
        tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32),
        [tf.TensorSpec(weight.shape, weight.dtype) for weight in weights])
