"""Each check passes on a correct model and fails, naming the fix, on a broken one."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import ftcourse
from ftcourse import checks
from ftcourse.errors import CourseError

SIZE = 32


def tiny_model(preprocess=None, units: int = 3, activation: str = "softmax",
               head: tuple = ()) -> keras.Model:
    """A small frozen "base" (convolutions and BatchNormalization) with a head: fast to build."""
    base = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(4, 3),
                             keras.layers.BatchNormalization(), keras.layers.Conv2D(8, 3),
                             keras.layers.BatchNormalization()], name="tiny_base")
    base.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = preprocess(inputs) if preprocess else inputs
    x = keras.layers.GlobalAveragePooling2D()(base(x, training=False))
    for layer in head:
        x = layer(x)
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(x))


def history(val_losses: list[float]) -> keras.callbacks.History:
    result = keras.callbacks.History()
    result.history = {"val_loss": val_losses}
    result.epoch = list(range(len(val_losses)))
    return result


@pytest.fixture(scope="module")
def mobilenet() -> keras.Model:
    """A correct frozen MobileNetV2 classifier at 32x32, compiled (shared: do not modify)."""
    model = ftcourse.build_model("mobilenet_v2", 3, SIZE, weights=None)
    return ftcourse.compile_model(model, 1e-3)


@pytest.fixture
def unfrozen() -> keras.Model:
    """A tiny model whose base was made trainable, BatchNormalization included."""
    model = tiny_model()
    checks.find_base(model).trainable = True
    return model


def test_correct_mobilenet_passes_every_model_check(mobilenet: keras.Model) -> None:
    checks.check_base_frozen(mobilenet)
    checks.check_output(mobilenet, 3, "softmax")
    checks.check_preprocessing(mobilenet, "mobilenet_v2")
    checks.check_batchnorm_frozen(mobilenet)
    checks.check_learning_rate(mobilenet, 1e-3)
    checks.check_loss_matches_output(mobilenet)


def test_find_base_needs_a_nested_model() -> None:
    inputs = keras.Input((SIZE, SIZE, 3))
    flat = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    with pytest.raises(AssertionError, match="no pre-trained base inside"):
        checks.find_base(flat)


def test_find_base_looks_inside_a_wrapped_model() -> None:
    inner = tiny_model()
    inputs = keras.Input((SIZE, SIZE, 3))
    outer = keras.Model(inputs, inner(inputs))
    assert checks.find_base(outer) is checks.find_base(inner)


def test_probe_batch_needs_an_input_shape() -> None:
    with pytest.raises(AssertionError, match="no input shape"):
        checks.probe_batch(keras.Sequential([keras.layers.Dense(2)]))


def test_check_base_frozen(unfrozen: keras.Model) -> None:
    checks.check_base_frozen(tiny_model())
    with pytest.raises(AssertionError, match=r"trainable parameters; set base_model.trainable"):
        checks.check_base_frozen(unfrozen)
    everything_frozen = tiny_model()
    everything_frozen.trainable = False
    with pytest.raises(AssertionError, match="freeze only the base"):
        checks.check_base_frozen(everything_frozen)


def test_check_output() -> None:
    checks.check_output(tiny_model(units=1, activation="sigmoid"), 2, "sigmoid")
    checks.check_output(tiny_model(activation=None), 3, "linear")
    with pytest.raises(AssertionError, match=r"expected \(4, 5\).*Dense\(5, activation='softm"):
        checks.check_output(tiny_model(), 5, "softmax")
    with pytest.raises(AssertionError, match="applies 'sigmoid'; expected 'softmax'"):
        checks.check_output(tiny_model(activation="sigmoid"), 3, "softmax")
    with pytest.raises(AssertionError, match="applies 'linear'"):
        checks.check_output(tiny_model(units=1, activation=None), 2, "sigmoid")
    with pytest.raises(CourseError, match="activation must be one of"):
        checks.check_output(tiny_model(), 3, "relu")


def test_check_output_accepts_a_softmax_layer() -> None:
    inner = tiny_model(activation=None)
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Softmax()(inner(inputs)))
    checks.check_output(model, 3, "softmax")


def test_check_preprocessing() -> None:
    resnet_pre = keras.applications.resnet50.preprocess_input
    checks.check_preprocessing(tiny_model(resnet_pre), "resnet50")
    raw = r"raw 0-255 pixels: apply keras\.applications\.resnet50"
    with pytest.raises(AssertionError, match=raw):
        checks.check_preprocessing(tiny_model(), "resnet50")
    mobilenet_pre = keras.applications.mobilenet_v2.preprocess_input
    with pytest.raises(AssertionError, match="preprocessing of mobilenet_v2, not of resnet50"):
        checks.check_preprocessing(tiny_model(mobilenet_pre), "resnet50")
    with pytest.raises(AssertionError, match="match no known preprocessing"):
        checks.check_preprocessing(tiny_model(lambda x: x / 255.0), "mobilenet_v2")


def test_base_io_leaves_the_base_unpatched() -> None:
    model = tiny_model()
    base = checks.find_base(model)
    received, _ = checks.base_io(model, checks.probe_batch(model))
    assert received.shape == (checks.PROBE_SIZE, SIZE, SIZE, 3)
    assert "call" not in vars(base)


def test_check_preprocess_function() -> None:
    checks.check_preprocess_function(keras.applications.vgg16.preprocess_input, "vgg16")
    fix = r"return keras\.applications\.resnet50\.preprocess_input"
    with pytest.raises(AssertionError, match=fix):
        checks.check_preprocess_function(keras.applications.mobilenet_v2.preprocess_input,
                                         "resnet50")


def test_check_batchnorm_frozen(unfrozen: keras.Model) -> None:
    checks.check_batchnorm_frozen(tiny_model())
    norms = [layer for layer in checks.all_layers(checks.find_base(unfrozen))
             if isinstance(layer, keras.layers.BatchNormalization)]
    before = [w.numpy().copy() for layer in norms for w in layer.non_trainable_weights]
    with pytest.raises(AssertionError, match=r"2 of the base's 2 BatchNormalization layers upda"):
        checks.check_batchnorm_frozen(unfrozen)
    after = [w.numpy() for layer in norms for w in layer.non_trainable_weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    for layer in norms:
        layer.trainable = False
    checks.check_batchnorm_frozen(unfrozen)


def test_check_learning_rate(mobilenet: keras.Model) -> None:
    with pytest.raises(AssertionError, match=r"learning rate is 0.001, expected 1e-05"):
        checks.check_learning_rate(mobilenet, 1e-5)
    with pytest.raises(AssertionError, match="not compiled"):
        checks.check_learning_rate(tiny_model(), 1e-3)


@pytest.mark.parametrize(("activation", "units", "loss"), [
    ("softmax", 3, keras.losses.SparseCategoricalCrossentropy()),
    ("softmax", 3, "sparse_categorical_crossentropy"),
    (None, 3, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    ("sigmoid", 1, keras.losses.BinaryCrossentropy()),
    (None, 1, keras.losses.BinaryCrossentropy(from_logits=True)),
])
def test_check_loss_matches_output_passes(activation, units, loss) -> None:
    model = tiny_model(units=units, activation=activation)
    model.compile(optimizer="adam", loss=loss)
    checks.check_loss_matches_output(model)


@pytest.mark.parametrize(("activation", "units", "loss", "message"), [
    ("softmax", 3, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
     r"softmax outputs.*SparseCategoricalCrossentropy\(from_logits=False\)"),
    ("sigmoid", 1, keras.losses.BinaryCrossentropy(from_logits=True),
     r"BinaryCrossentropy\(from_logits=False\)"),
    (None, 3, keras.losses.SparseCategoricalCrossentropy(),
     r"logits \(no activation\).*from_logits=True"),
    ("softmax", 3, keras.losses.CategoricalCrossentropy(), "SparseCategoricalCrossentropy"),
])
def test_check_loss_matches_output_fails(activation, units, loss, message) -> None:
    model = tiny_model(units=units, activation=activation)
    model.compile(optimizer="adam", loss=loss)
    with pytest.raises(AssertionError, match=message):
        checks.check_loss_matches_output(model)


def test_check_loss_needs_a_compiled_model() -> None:
    with pytest.raises(AssertionError, match="not compiled with a loss"):
        checks.check_loss_matches_output(tiny_model())


def test_check_top_unfrozen() -> None:
    model = ftcourse.build_model("mobilenet_v2", 3, SIZE, weights=None)
    base = ftcourse.get_base(model)
    ftcourse.unfreeze_top(model, 20)
    checks.check_top_unfrozen(model, 20)
    with pytest.raises(AssertionError, match=r"layers below the top 10 of the base are trainab"):
        checks.check_top_unfrozen(model, 10)
    with pytest.raises(AssertionError, match="among the top 30 of the base are still frozen"):
        checks.check_top_unfrozen(model, 30)
    base.trainable = False
    base.trainable = True
    with pytest.raises(AssertionError, match="BatchNormalization layers among the top"):
        checks.check_top_unfrozen(model, len(base.layers))


def test_check_head_regularization() -> None:
    good = tiny_model(head=(keras.layers.Dense(8), keras.layers.BatchNormalization(),
                            keras.layers.Dropout(0.3)))
    checks.check_head_regularization(good, 0.3)
    with pytest.raises(AssertionError, match=r"Dropout rate is 0.3, expected 0.5"):
        checks.check_head_regularization(good, 0.5)
    with pytest.raises(AssertionError, match="no Dropout layer"):
        checks.check_head_regularization(tiny_model(), 0.3)
    no_norm = tiny_model(head=(keras.layers.Dropout(0.3),))
    with pytest.raises(AssertionError, match="no BatchNormalization layer"):
        checks.check_head_regularization(no_norm, 0.3)


def test_check_best_rate() -> None:
    results = {1e-4: history([1.0, 0.9]), 1e-3: history([1.0, 0.5]),
               1e-2: history([0.4, math.nan])}
    checks.check_best_rate(results, 1e-3)
    with pytest.raises(AssertionError, match=r"best_rate is 0.0001 .* but 0.001 reached 0.5000"):
        checks.check_best_rate(results, 1e-4)
    with pytest.raises(AssertionError, match="not one of the swept rates"):
        checks.check_best_rate(results, 0.1)
    with pytest.raises(AssertionError, match="no val_loss"):
        checks.check_best_rate({1e-3: keras.callbacks.History()}, 1e-3)


def test_check_initial_epoch() -> None:
    checks.check_initial_epoch(lambda h, n: (h.epoch[-1] + 1, h.epoch[-1] + 1 + n))
    with pytest.raises(AssertionError, match=r"returns \(initial_epoch, epochs\) = \(1, 4\); ex"):
        checks.check_initial_epoch(lambda h, n: (h.epoch[-1], h.epoch[-1] + n))
    with pytest.raises(AssertionError, match="not the number of extra epochs"):
        checks.check_initial_epoch(lambda h, n: (len(h.epoch), n))


def test_check_answers() -> None:
    checks.check_answers({"a": "x", "b": "y"}, ["a", "b"], ["x", "y"])
    with pytest.raises(AssertionError, match=r"no entry for \['b'\]"):
        checks.check_answers({"a": "x"}, ["a", "b"], ["x", "y"])
    with pytest.raises(AssertionError, match=r"answers\['a'\] is 'z'; choose one of"):
        checks.check_answers({"a": "z"}, ["a"], ["x", "y"])


def test_check_param_counter() -> None:
    model = tiny_model()

    def right(m):
        return (checks.count_params(m.trainable_weights),
                checks.count_params(m.non_trainable_weights))

    checks.check_param_counter(right, model)
    with pytest.raises(AssertionError, match=r"model\.non_trainable_weights"):
        checks.check_param_counter(lambda m: (m.count_params(), 0), model)


def test_check_feature_extractor() -> None:
    base = keras.applications.MobileNetV2(include_top=False, weights=None,
                                          input_shape=(SIZE, SIZE, 3))
    checks.check_feature_extractor(base, SIZE)
    with pytest.raises(AssertionError, match=r"input_shape=\(64, 64, 3\)"):
        checks.check_feature_extractor(base, 64)
    with pytest.raises(AssertionError, match="include_top=False"):
        checks.check_feature_extractor(tiny_model(), SIZE)
    with pytest.raises(AssertionError, match="not a Keras model"):
        checks.check_feature_extractor("mobilenet", SIZE)


def test_check_compiled_after_trainable_change() -> None:
    model = ftcourse.build_model("mobilenet_v2", 3, 32, weights=None)
    with pytest.raises(AssertionError, match="not compiled"):
        checks.check_compiled_after_trainable_change(model)
    ftcourse.compile_model(model, 1e-3)
    checks.check_compiled_after_trainable_change(model)
    ftcourse.unfreeze_top(model, 10)  # compiled, then unfrozen: the missing recompile
    with pytest.raises(AssertionError, match=r"call model.compile\(...\) again"):
        checks.check_compiled_after_trainable_change(model)
    ftcourse.compile_model(model, 1e-5)  # unfrozen, then recompiled
    checks.check_compiled_after_trainable_change(model)


def test_check_compiled_after_trainable_change_after_a_fit() -> None:
    """After a fit the optimizer is built too: the unfrozen variables are unknown to it."""
    model = ftcourse.build_model("mobilenet_v2", 3, 32, weights=None)
    ftcourse.compile_model(model, 1e-3)
    x, y = np.zeros((4, 32, 32, 3), "float32"), np.array([0, 1, 2, 0])
    model.fit(x, y, epochs=1, verbose=0)
    ftcourse.unfreeze_top(model, 10)
    model._compiled_trainable_state = None  # only the optimizer's variables are left to tell
    with pytest.raises(AssertionError, match="changed trainable"):
        checks.check_compiled_after_trainable_change(model)
    ftcourse.compile_model(model, 1e-5)
    checks.check_compiled_after_trainable_change(model)
