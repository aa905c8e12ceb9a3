"""Inference passes traced once per model structure, not once per model.

Tracing a base (Keras walks its layers in Python) and the first run of its graph (TensorFlow
optimises it) take about a second for MobileNetV2, as long as a pass over a thousand small
images. Models that ``ftcourse.build_model`` built alike (architecture, image size,
preprocessing, dtype policy) run the same graph, so the pass is traced with the weights as
arguments rather than captured, once per structure, and each model runs it with its own weights.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import keras
import tensorflow as tf

Forward = Callable[[tf.Tensor], tf.Tensor]

# One traced pass per structure, for the whole process. A traced graph holds no weights.
_BY_STRUCTURE: dict[Hashable, tf.types.experimental.ConcreteFunction] = {}


def forget_all() -> None:
    """Drop every shared trace: the next model of each structure traces again (benchmarks
    measure that first time with it)."""
    _BY_STRUCTURE.clear()


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
