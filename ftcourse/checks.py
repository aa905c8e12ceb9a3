"""Self-checks for the graded exercises: each says what is wrong and how to fix it.

The exercises' visible tests call these. They test what a model does, not how its code is
spelled: parameter counts, what reaches the base, how BatchNormalization behaves in a
training step, the optimizer's learning rate, the loss on known probabilities.
Every failed check raises ``AssertionError`` with a message that names the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import keras
import numpy as np

from ftcourse.errors import CourseError
from ftcourse.models import ARCHITECTURES, get_architecture
from ftcourse.training import output_activation

PROBE_SIZE = 4  # images in the fixed batch the checks feed through a model
ACTIVATIONS = ("softmax", "sigmoid", "linear")


class NotAnswered(AssertionError):
    """A test ran before the cells of its part defined what it checks."""


STUB_MARK = "is not answered yet"  # in the released stub's NotImplementedError (nbgrader_config)


def require(namespace: Mapping[str, Any], *names: str, part: str) -> None:
    """First line of a test cell: fail in one line, naming ``part``, when a name the test uses
    is not defined yet (instead of a ``NameError`` further down), or is a function whose body
    is still the released stub."""
    missing = [name for name in names if name not in namespace]
    if missing:
        raise NotAnswered(f"{part} is not answered yet: {', '.join(missing)} is not defined. "
                          f"Write {part}, run its cells, then run this test again.")
    stubs = [name for name in names if _is_stub(namespace[name])]
    if stubs:
        raise NotAnswered(f"{part} is not answered yet: {', '.join(stubs)} still raises "
                          "NotImplementedError. Write its body, run its cell, then this test.")


def _is_stub(value: Any) -> bool:
    """Whether ``value`` is a function whose whole body (its docstring aside) is the stub's
    ``raise``: an answer written above a stub left in place is an answer, never flagged."""
    import ast
    import inspect
    import textwrap

    code = getattr(value, "__code__", None)
    if code is None or not any(isinstance(c, str) and STUB_MARK in c for c in code.co_consts):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(value)))
    except (OSError, TypeError, SyntaxError):
        return False
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.FunctionDef) else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return len(body) == 1 and isinstance(body[0], ast.Raise)


def passed(part: str, what: str) -> None:
    """Last line of a test cell: say what its checks found."""
    print(f"{part} passed: {what}")


# Helpers the checks share (public: the hidden tests use them too).

def probe_batch(model: keras.Model, n: int = PROBE_SIZE, seed: int = 0) -> np.ndarray:
    """A fixed batch of random 0-255 pixels shaped like the model's input."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise AssertionError(f"the model {model.name!r} has no input shape yet: start it with "
                             "keras.Input((image_size, image_size, 3)).")
    shape = tuple(inputs[0].shape[1:])
    if any(dim is None for dim in shape):
        raise AssertionError(f"the model's input shape {shape} is not fixed: use "
                             "keras.Input((image_size, image_size, 3)).")
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, *shape)).astype("float32")


def count_params(weights: Iterable[Any]) -> int:
    """Total number of values in a list of weights."""
    return int(sum(int(np.prod(w.shape)) for w in weights))


def all_layers(model: keras.Layer) -> list[keras.Layer]:
    """Every layer inside ``model``, nested models included (depth first)."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(all_layers(layer))
    return found


def find_base(model: keras.Model) -> keras.Model:
    """The pre-trained base: the nested model holding most of the parameters."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if not nested:
        raise AssertionError(
            f"the model {model.name!r} has no pre-trained base inside it: build the base as its "
            "own model (base_model = keras.applications.MobileNetV2(include_top=False, ...)) "
            "and call it on the inputs, x = base_model(x, training=False).")
    base = max(nested, key=lambda layer: layer.count_params())
    inner = [layer for layer in base.layers if isinstance(layer, keras.Model)]
    if inner:  # a model wrapped whole inside another: look one level down
        biggest = max(inner, key=lambda layer: layer.count_params())
        if biggest.count_params() * 2 > base.count_params():
            return find_base(base)
    return base


def base_io(model: keras.Model, x: np.ndarray, training: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on ``x`` and return what its base received and what it returned."""
    base = find_base(model)
    seen: list[Any] = []
    original = base.call

    def recording_call(*args: Any, **kwargs: Any) -> Any:
        outputs = original(*args, **kwargs)
        seen.append((args[0], outputs))
        return outputs

    base.call = recording_call
    try:
        model(x, training=training)
    finally:
        del base.call
    if not seen:
        raise AssertionError("the base did not run when the model was called: connect it, "
                             "x = base_model(x, training=False).")
    inputs, outputs = seen[0]
    return np.asarray(inputs), np.asarray(outputs)


# Checks, in the order the exercises use them.

def check_base_frozen(model: keras.Model) -> None:
    """The base has no trainable parameters; the head does. Used in ps01-ps04."""
    base = find_base(model)
    trainable = count_params(base.trainable_weights)
    if trainable:
        raise AssertionError(f"the base has {trainable:,} trainable parameters; set "
                             "base_model.trainable = False before compiling.")
    if not model.trainable_weights:
        raise AssertionError("the model has no trainable parameters: freeze only the base "
                             "(base_model.trainable = False), not the whole model.")


def check_output(model: keras.Model, num_classes: int, activation: str) -> None:
    """Output shape and activation on a fixed batch. Used in ps02-ps04.

    ``activation="sigmoid"`` expects one unit (two classes); ``"softmax"`` one per class.
    """
    if activation not in ACTIVATIONS:
        raise CourseError(f"activation must be one of {ACTIVATIONS}, not {activation!r}.")
    units = 1 if activation == "sigmoid" else num_classes
    x = probe_batch(model)
    y = np.asarray(model(x, training=False))
    if y.shape != (len(x), units):
        raise AssertionError(
            f"for a batch of {len(x)} images the model returns shape {y.shape}; expected "
            f"{(len(x), units)}: end the head with keras.layers.Dense({units}, "
            f"activation={activation!r}).")
    found = output_activation(model)
    if found != activation:
        raise AssertionError(f"the last layer applies {found!r}; expected {activation!r}: use "
                             f"keras.layers.Dense({units}, activation={activation!r}).")
    if activation != "linear" and not ((y >= 0) & (y <= 1)).all():
        raise AssertionError(f"the outputs range over [{y.min():.3g}, {y.max():.3g}], not "
                             f"[0, 1]: end the model with the {activation} activation.")
    if activation == "softmax" and not np.allclose(y.sum(axis=1), 1.0, atol=1e-4):
        raise AssertionError("each image's class probabilities should sum to 1: use "
                             "activation='softmax' on the last Dense layer.")


def check_preprocessing(model: keras.Model, arch: str) -> None:
    """The base receives ``arch``'s ``preprocess_input`` of the raw pixels. Used in ps02, ps03."""
    spec = get_architecture(arch)
    x = probe_batch(model)
    received, _ = base_io(model, x)
    fix = (f"apply keras.applications.{spec.module}.preprocess_input to the inputs inside the "
           "model, before the base")
    if received.shape == x.shape and np.allclose(received, _preprocessed(spec.name, x),
                                                 atol=1e-3):
        return
    if received.shape == x.shape and np.allclose(received, x, atol=1e-3):
        raise AssertionError(f"the base receives the raw 0-255 pixels: {fix}.")
    for other in ARCHITECTURES:
        if received.shape == x.shape and np.allclose(received, _preprocessed(other, x),
                                                     atol=1e-3):
            raise AssertionError(f"the base receives the preprocessing of {other}, not of "
                                 f"{arch}: {fix}.")
    raise AssertionError(f"the base receives values in [{received.min():.3g}, "
                         f"{received.max():.3g}] that match no known preprocessing: {fix}.")


def check_preprocess_function(function: Callable, arch: str) -> None:
    """``function`` transforms a fixed batch exactly as ``arch``'s ``preprocess_input``.

    Used in ps03.
    """
    spec = get_architecture(arch)
    x = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    got = np.asarray(function(x.copy()))
    if got.shape != x.shape or not np.allclose(got, _preprocessed(arch, x), atol=1e-3):
        raise AssertionError(f"for {arch} the function turns pixels into values in "
                             f"[{got.min():.3g}, {got.max():.3g}], not what {arch} expects: "
                             f"return keras.applications.{spec.module}.preprocess_input.")


def check_batchnorm_frozen(model: keras.Model) -> None:
    """A training step leaves the base's BatchNormalization in inference mode. Used in ps02-ps05.

    Runs the model with ``training=True`` on a fixed batch, checks the base's moving
    statistics did not change and its output equals inference mode, then restores them.
    """
    base = find_base(model)
    norms = [layer for layer in all_layers(base)
             if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    before = [[w.numpy().copy() for w in layer.non_trainable_weights] for layer in norms]
    received, output = base_io(model, probe_batch(model), training=True)
    after = [[w.numpy() for w in layer.non_trainable_weights] for layer in norms]
    for layer, values in zip(norms, before, strict=True):  # leave the model as it was
        for weight, value in zip(layer.non_trainable_weights, values, strict=True):
            weight.assign(value)
    moved = sum(any(not np.array_equal(a, b) for a, b in zip(old, new, strict=True))
                for old, new in zip(before, after, strict=True))
    inference = np.asarray(base(received, training=False))
    if moved or not np.allclose(output, inference, atol=1e-4):
        trainable = sum(layer.trainable for layer in norms)
        raise AssertionError(
            f"in a training step {moved} of the base's {len(norms)} BatchNormalization layers "
            f"update their statistics ({trainable} are trainable): keep every "
            "keras.layers.BatchNormalization of the base frozen (layer.trainable = False), also "
            "after unfreezing, and call the base with training=False.")


def check_learning_rate(model: keras.Model, expected: float) -> None:
    """The compiled optimizer's learning rate equals ``expected``. Used in ps02, ps04, ps05."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise AssertionError("the model is not compiled: call model.compile(optimizer="
                             f"keras.optimizers.Adam(learning_rate={expected:g}), loss=...).")
    try:
        rate = float(np.asarray(optimizer.learning_rate))
    except TypeError:
        raise AssertionError("the optimizer uses a learning-rate schedule; pass a number, "
                             f"keras.optimizers.Adam(learning_rate={expected:g}).") from None
    if np.float32(rate) != np.float32(expected):
        raise AssertionError(f"the optimizer's learning rate is {rate:g}, expected "
                             f"{expected:g}: compile (again, after any change to trainable) "
                             f"with keras.optimizers.Adam(learning_rate={expected:g}).")


def check_compiled_after_trainable_change(model: keras.Model) -> None:
    """No layer's ``trainable`` flag changed since the model was last compiled. Used in ps05.

    Keras 3 records every layer's ``trainable`` flag when you compile (and the optimizer, once
    built, knows only the variables that were trainable then): a layer unfrozen afterwards is
    not trained, or trained at the old rate, until you compile again.
    """
    if not getattr(model, "compiled", False):
        raise AssertionError("the model is not compiled: call model.compile(...) after "
                             "changing trainable.")
    changed = []
    recorded = getattr(model, "_compiled_trainable_state", None)
    if recorded is not None:
        changed = [layer.name for layer in model._flatten_layers()
                   if layer in recorded and recorded[layer] != layer.trainable]
    optimizer = getattr(model, "optimizer", None)
    if not changed and optimizer is not None and getattr(optimizer, "built", False):
        known = {id(variable) for variable in getattr(optimizer, "_trainable_variables", [])}
        changed = [variable.path for variable in model.trainable_variables
                   if id(variable) not in known]
    if changed:
        raise AssertionError(f"{len(changed)} layers changed trainable since the model was "
                             f"compiled (first: {changed[0]!r}), so Keras would not train them "
                             "as you expect: call model.compile(...) again after changing "
                             "trainable.")


def check_loss_matches_output(model: keras.Model) -> None:
    """The compiled loss gives the cross-entropy of what the model outputs. Used in ps02, ps04.

    Feeds the loss known probabilities (or logits, for a linear output) and integer labels,
    and compares with the cross-entropy computed by hand.
    """
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise AssertionError("the model is not compiled with a loss: call "
                             "model.compile(optimizer=..., loss=...).")
    units = int(model.outputs[0].shape[-1])
    activation = output_activation(model)
    y_true, y_pred, expected = _known_crossentropy(units, activation)
    right = _loss_name(units, from_logits=activation == "linear")
    try:
        loss = keras.losses.get(model.loss) if isinstance(model.loss, str) else model.loss
        value = float(np.mean(np.asarray(loss(y_true, y_pred))))  # functions: per image
    except Exception as error:  # shapes that do not fit the loss at all
        raise AssertionError(f"the loss does not accept integer labels and {units} output "
                             f"unit(s) ({type(error).__name__}): use {right}.") from None
    if not np.isclose(value, expected, rtol=1e-3, atol=1e-4):
        what = "logits (no activation)" if activation == "linear" else f"{activation} outputs"
        raise AssertionError(f"on a test batch the loss is {value:.4f} where the cross-entropy "
                             f"of the model's {what} is {expected:.4f}: compile with {right}.")


def check_top_unfrozen(model: keras.Model, n: int) -> None:
    """Exactly the top ``n`` layers of the base train, BatchNormalization kept frozen.

    Used in ps05.
    """
    base = find_base(model)
    layers = base.layers
    top, below = layers[len(layers) - n:], layers[:len(layers) - n]
    norm = keras.layers.BatchNormalization
    low = [layer.name for layer in below if layer.trainable_weights]
    frozen = [layer.name for layer in top
              if layer.weights and not isinstance(layer, norm) and not layer.trainable_weights]
    norms = [layer.name for layer in top if isinstance(layer, norm) and layer.trainable]
    if low:
        raise AssertionError(f"{len(low)} layers below the top {n} of the base are trainable "
                             f"(first: {low[0]!r}): unfreeze only base_model.layers[-{n}:].")
    if frozen:
        raise AssertionError(f"{len(frozen)} layers among the top {n} of the base are still "
                             f"frozen (first: {frozen[0]!r}): set base_model.trainable = True, "
                             f"then layer.trainable = True for base_model.layers[-{n}:] only.")
    if norms:
        raise AssertionError(f"{len(norms)} BatchNormalization layers among the top {n} are "
                             f"trainable (first: {norms[0]!r}): keep every "
                             "keras.layers.BatchNormalization frozen.")


def check_head_regularization(model: keras.Model, dropout: float) -> None:
    """The head holds Dropout at ``dropout`` and BatchNormalization; inference is repeatable.

    Used in ps04.
    """
    base_layers = {id(layer) for layer in all_layers(find_base(model))}
    head = [layer for layer in all_layers(model) if id(layer) not in base_layers]
    rates = [layer.rate for layer in head if isinstance(layer, keras.layers.Dropout)]
    if not rates:
        raise AssertionError(f"the head has no Dropout layer: add "
                             f"keras.layers.Dropout({dropout}) before the output layer.")
    if not any(np.isclose(rate, dropout) for rate in rates):
        raise AssertionError(f"the head's Dropout rate is {rates[0]}, expected {dropout}: use "
                             f"keras.layers.Dropout({dropout}).")
    if not any(isinstance(layer, keras.layers.BatchNormalization) for layer in head):
        raise AssertionError("the head has no BatchNormalization layer: add "
                             "keras.layers.BatchNormalization() after the hidden Dense layer.")
    x = probe_batch(model)
    if not np.allclose(model(x, training=False), model(x, training=False)):
        raise AssertionError("two inference calls on the same images disagree: use "
                             "keras.layers.Dropout, which is active only in training.")


def check_best_rate(results: Mapping[float, keras.callbacks.History], best_rate: float) -> None:
    """``best_rate`` is the swept rate with the lowest final validation loss. Used in ps05."""
    if not results:
        raise AssertionError("the sweep has no results: run ftcourse.lr_sweep first.")
    final = {rate: _final_val_loss(history) for rate, history in results.items()}
    best = min(final, key=final.__getitem__)
    if best_rate not in final:
        raise AssertionError(f"best_rate is {best_rate!r}, which is not one of the swept rates "
                             f"{sorted(final)}: pick one of the sweep's keys.")
    if final[best_rate] > final[best]:
        raise AssertionError(
            f"best_rate is {best_rate:g} (final val_loss {final[best_rate]:.4f}), but "
            f"{best:g} reached {final[best]:.4f}: pick the rate whose "
            "history.history['val_loss'][-1] is lowest.")


def check_initial_epoch(function: Callable) -> None:
    """``function(history, fine_tune_epochs)`` returns ``(initial_epoch, epochs)`` for fit.

    Used in ps05.
    """
    for done, more in ((2, 3), (5, 1), (1, 4)):
        history = keras.callbacks.History()
        history.epoch = list(range(done))
        got = tuple(int(v) for v in function(history, more))
        if got != (done, done + more):
            raise AssertionError(
                f"after a first phase with history.epoch == {history.epoch} and {more} "
                f"fine-tuning epochs, it returns (initial_epoch, epochs) = {got}; expected "
                f"{(done, done + more)}: start at history.epoch[-1] + 1 and pass the epoch "
                "to stop at, not the number of extra epochs.")


def check_answers(answers: Mapping[str, str], keys: Iterable[str], allowed: Iterable[str]
                  ) -> None:
    """``answers`` has every key, each a string from ``allowed``. Used in ps01."""
    allowed = list(allowed)
    missing = [key for key in keys if key not in answers]
    if missing:
        raise AssertionError(f"answers has no entry for {missing}: add one per scenario.")
    for key, value in answers.items():
        if value not in allowed:
            raise AssertionError(f"answers[{key!r}] is {value!r}; choose one of {allowed}.")


def check_param_counter(function: Callable, model: keras.Model) -> None:
    """``function(model)`` returns ``(trainable, frozen)`` parameter counts. Used in ps01."""
    expected = (count_params(model.trainable_weights), count_params(model.non_trainable_weights))
    got = tuple(function(model))
    if got != expected:
        raise AssertionError(
            f"it returns {got} for a model with {expected[0]:,} trainable and {expected[1]:,} "
            "frozen parameters: add up the sizes of model.trainable_weights and of "
            "model.non_trainable_weights.")


def check_feature_extractor(base: keras.Model, image_size: int) -> None:
    """``base`` has no classifier on top and takes ``image_size`` images. Used in ps01."""
    if not isinstance(base, keras.Model):
        raise AssertionError(f"base_model is a {type(base).__name__}, not a Keras model: "
                             "build it with keras.applications.MobileNetV2(...).")
    in_shape = tuple(base.inputs[0].shape[1:])
    if in_shape != (image_size, image_size, 3):
        raise AssertionError(f"base_model takes images of shape {in_shape}: pass "
                             f"input_shape=({image_size}, {image_size}, 3).")
    if len(base.outputs[0].shape) != 4:
        raise AssertionError(f"base_model returns shape {tuple(base.outputs[0].shape)}, a "
                             "classifier's output: build it with include_top=False.")


def _preprocessed(arch: str, x: np.ndarray) -> np.ndarray:
    """``arch``'s preprocessing of a copy of ``x`` (some versions work in place)."""
    return np.asarray(get_architecture(arch).preprocess_input(np.array(x, copy=True)))


def _known_crossentropy(units: int, activation: str) -> tuple[Any, Any, float]:
    """Integer labels, model-like outputs and their cross-entropy computed with numpy."""
    labels = np.array([0, 1, 1, 0]) if units == 1 else np.arange(PROBE_SIZE) % units
    logits = np.linspace(-2.0, 2.0, PROBE_SIZE * units).reshape(PROBE_SIZE, units)[::-1] * 1.5
    if units == 1:
        probs = 1 / (1 + np.exp(-logits[:, 0]))
        expected = -np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs))
        probs = probs[:, None]
    else:
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        expected = -np.mean(np.log(probs[np.arange(PROBE_SIZE), labels]))
    outputs = logits if activation == "linear" else probs
    return labels.astype("float32"), outputs.astype("float32"), float(expected)


def _loss_name(units: int, from_logits: bool) -> str:
    name = "BinaryCrossentropy" if units == 1 else "SparseCategoricalCrossentropy"
    return f"keras.losses.{name}(from_logits={from_logits})"


def _final_val_loss(history: keras.callbacks.History) -> float:
    losses = history.history.get("val_loss")
    if not losses:
        raise AssertionError("a sweep result has no val_loss: pass val_features to "
                             "ftcourse.lr_sweep.")
    value = float(losses[-1])
    return value if np.isfinite(value) else float("inf")
