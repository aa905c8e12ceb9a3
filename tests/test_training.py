"""Compiling, training, two-phase fine-tuning, cached features and the learning-rate sweep."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from ftcourse import training
from ftcourse.data import ImageData, load_dataset
from ftcourse.errors import CourseError
from ftcourse.models import (
    ARCHITECTURES,
    HeadSpec,
    build_head,
    build_model,
    built_as,
    get_base,
)
from ftcourse.rows import ALIGNMENT
from ftcourse.traced import forget_all, shared_head
from ftcourse.training import (
    compile_model,
    extract_features,
    feature_extractor,
    join_histories,
    loss_for,
    lr_sweep,
    output_activation,
    train,
    train_head_on_features,
)
from ftcourse.two_phase import fine_tune

SIZE = 32


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_dataset("digits", SIZE, batch_size=16, limit=60)


@pytest.fixture(scope="module")
def vgg() -> keras.Model:
    """VGG16 with random weights: unlike random MobileNetV2, its features are far from zero."""
    return build_model("vgg16", 10, SIZE, weights=None)


def small_model(**kwargs: object) -> keras.Model:
    return build_model("mobilenet_v2", kwargs.pop("num_classes", 10), SIZE, weights=None,
                       **kwargs)


def features_model(spec: HeadSpec | None = None) -> keras.Model:
    """A model whose inputs are a base's outputs (3x3x8): only the head, named "head"."""
    head = build_head(3, spec or HeadSpec())
    inputs = keras.Input((3, 3, 8))
    return keras.Model(inputs, head(inputs))


def random_features(rows: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, 3, 3, 8)).astype("float32"),
            rng.integers(0, 3, rows).astype("int32"))


def logits_model(units: int) -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])


# -- compile_model --------------------------------------------------------------------------


def test_loss_matches_a_sigmoid_head() -> None:
    model = small_model(num_classes=2, head=HeadSpec(output="sigmoid"))
    loss = loss_for(model)
    assert isinstance(loss, keras.losses.BinaryCrossentropy)
    assert loss.get_config()["from_logits"] is False
    assert output_activation(model) == "sigmoid"


def test_loss_matches_a_softmax_head() -> None:
    model = small_model()
    loss = compile_model(model).loss
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    assert loss.get_config()["from_logits"] is False
    assert isinstance(model.optimizer, keras.optimizers.Adam)


@pytest.mark.parametrize(("units", "loss_type"), [
    (3, keras.losses.SparseCategoricalCrossentropy),
    (1, keras.losses.BinaryCrossentropy),
])
def test_linear_outputs_are_logits(units: int, loss_type: type) -> None:
    model = logits_model(units)
    assert output_activation(model) == "linear"
    loss = loss_for(model)
    assert isinstance(loss, loss_type) and loss.get_config()["from_logits"] is True


@pytest.mark.parametrize(("last", "units", "activation"), [
    (keras.layers.Softmax(), 3, "softmax"),
    (keras.layers.Activation("softmax"), 3, "softmax"),
    (keras.layers.Activation("sigmoid"), 1, "sigmoid"),
    (keras.layers.Activation("relu"), 3, "other"),
])
def test_an_activation_layer_at_the_end_is_not_logits(last: keras.Layer, units: int,
                                                      activation: str) -> None:
    """compile_model and the checks read a model's output the same way (one function)."""
    from ftcourse import checks

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units), last])
    assert output_activation(model) == checks.output_activation(model) == activation
    assert compile_model(model).loss.get_config()["from_logits"] is False


def test_compile_sets_the_learning_rate() -> None:
    model = compile_model(logits_model(3), learning_rate=0.05)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


@pytest.mark.parametrize("rate", [0, -1e-3])
def test_bad_learning_rate(rate: float) -> None:
    with pytest.raises(CourseError, match=rf"learning_rate must be positive, got {rate}"):
        compile_model(logits_model(3), learning_rate=rate)


# -- train and fine_tune --------------------------------------------------------------------


def test_train_needs_a_compiled_model(digits: ImageData) -> None:
    with pytest.raises(CourseError, match=r"not compiled.*ftcourse.compile_model"):
        train(small_model(), digits, epochs=1)


@pytest.mark.usefixtures("eager")
def test_train_returns_the_history(digits: ImageData) -> None:
    model = compile_model(small_model())
    history = train(model, digits, epochs=2, verbose=0)
    assert isinstance(history, keras.callbacks.History)
    assert history.epoch == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert all(np.isfinite(history.history["loss"]))


@pytest.mark.usefixtures("eager")
def test_fine_tune_joins_both_phases(digits: ImageData, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    model = small_model()
    history = fine_tune(model, digits, head_epochs=2, fine_tune_epochs=1, unfreeze=10,
                        learning_rate=1e-3, fine_tune_learning_rate=1e-5, verbose=0)
    assert history.epoch == [0, 1, 2]
    assert history.fine_tune_start == 2
    assert all(len(values) == 3 for values in history.history.values())
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)
    assert get_base(model).trainable
    assert "Unfroze" in capsys.readouterr().out


def test_join_histories() -> None:
    first, second = keras.callbacks.History(), keras.callbacks.History()
    first.epoch, first.history = [0, 1], {"loss": [3.0, 2.0], "accuracy": [0.1, 0.2]}
    second.epoch, second.history = [2], {"loss": [1.0], "accuracy": [0.3]}
    joined = join_histories(first, second)
    assert joined.epoch == [0, 1, 2]
    assert joined.history == {"loss": [3.0, 2.0, 1.0], "accuracy": [0.1, 0.2, 0.3]}
    assert joined.fine_tune_start == 2


# -- the fast path --------------------------------------------------------------------------


def test_extract_features_shapes(digits: ImageData) -> None:
    model = small_model()
    features, labels = extract_features(model, digits.val, verbose=0)
    assert features.shape == (digits.counts["val"], 1, 1, 1280)
    assert labels.shape == (digits.counts["val"],)
    np.testing.assert_array_equal(labels, digits.arrays("val")[1])


@pytest.mark.parametrize("rows_per_call", [1, 9, 1000])
@pytest.mark.parametrize("known_length", [True, False])
def test_extract_features_holds_every_batch_in_order(
        vgg: keras.Model, known_length: bool, rows_per_call: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Filled in place whether or not the dataset knows its length (a filter hides it), with
    batches of uneven sizes, one batch per call of the base or several (9 rows per call: two
    batches of 4, the last group 4 + 3; 1000: all at once): the rows are the extractor's
    outputs, in order, none missing."""
    monkeypatch.setattr(training, "_CALL_PIXELS", rows_per_call * SIZE * SIZE)
    x = np.random.default_rng(2).uniform(0, 255, (23, SIZE, SIZE, 3)).astype("float32")
    y = np.arange(23, dtype="int32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if not known_length:
        dataset = dataset.filter(lambda image, label: True)
    features, labels = extract_features(vgg, dataset.batch(4), verbose=0)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_allclose(features, feature_extractor(vgg).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-4)


def test_batches_are_grouped_up_to_the_pixel_budget(vgg: keras.Model,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Consecutive batches share a call while they fit; a batch larger than the budget still
    gets a call of its own."""
    monkeypatch.setattr(training, "_CALL_PIXELS", 9 * SIZE * SIZE)
    x = np.zeros((23, SIZE, SIZE, 3), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, np.arange(23)))
    sizes = [[len(labels) for _, labels in group]
             for group in training._groups(vgg, dataset.batch(4))]
    assert sizes == [[4, 4], [4, 4], [4, 3]]
    assert [[len(labels) for _, labels in group]
            for group in training._groups(vgg, dataset.batch(10))] == [[10], [10], [3]]


def test_feature_extractor_matches_the_models_inside(vgg: keras.Model) -> None:
    x = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    expected = get_base(vgg)(ARCHITECTURES["vgg16"].preprocess_input(x.copy()))
    np.testing.assert_allclose(feature_extractor(vgg)(x), expected, rtol=1e-5, atol=1e-5)


def test_extract_features_of_an_empty_dataset(vgg: keras.Model) -> None:
    empty = tf.data.Dataset.from_tensor_slices(
        (np.zeros((0, SIZE, SIZE, 3), "float32"), np.zeros(0, "int32"))).batch(4)
    with pytest.raises(CourseError, match="dataset is empty"):
        extract_features(vgg, empty, verbose=0)


def test_fast_path_trains_the_same_head_as_fit(digits: ImageData, vgg: keras.Model) -> None:
    """Same data and order, no augmentation, same start: both paths give the same model."""
    x, y = digits.arrays("train")
    head = vgg.get_layer("head")
    start = head.get_weights()
    untrained = vgg.predict(x, verbose=0)

    compile_model(vgg, learning_rate=1e-2)
    vgg.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    slow = vgg.predict(x, verbose=0)

    head.set_weights(start)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    features = extract_features(vgg, dataset, verbose=0)
    assert np.abs(features[0]).mean() > 1e-3  # features are not degenerate
    history = train_head_on_features(vgg, features, epochs=2, learning_rate=1e-2,
                                     batch_size=16, shuffle=False, verbose=0)
    fast = vgg.predict(x, verbose=0)
    head.set_weights(start)

    assert history.epoch == [0, 1]
    assert np.abs(slow - untrained).max() > 2e-2  # training changed the predictions
    np.testing.assert_allclose(fast, slow, atol=1e-3)


def test_shared_features_train_as_a_copy_does(digits: ImageData, vgg: keras.Model) -> None:
    """extract_features' arrays reach TensorFlow without a copy (ftcourse.rows): training on
    them gives the head a copy of them gives, and leaves them as they were."""
    head = vgg.get_layer("head")
    start = head.get_weights()
    features, labels = extract_features(vgg, digits.train, verbose=0)
    unaligned = np.empty(features.size + 1, "float32")[1:].reshape(features.shape)
    unaligned[...] = features  # 4 bytes off TensorFlow's alignment: converted by copying
    assert features.ctypes.data % ALIGNMENT == 0 and unaligned.ctypes.data % ALIGNMENT != 0
    before = features.copy()
    trained = []
    for x in (features, unaligned):
        head.set_weights(start)
        compile_model(head, learning_rate=1e-2)  # a fresh optimizer state for each run
        train_head_on_features(vgg, (x, labels), epochs=2, learning_rate=1e-2, batch_size=16,
                               shuffle=False, verbose=0)
        trained.append(head.get_weights())
    head.set_weights(start)
    np.testing.assert_array_equal(features, before)
    assert np.abs(trained[0][-1] - start[-1]).max() > 1e-4  # training moved the head
    for shared, copied in zip(*trained, strict=True):
        np.testing.assert_allclose(shared, copied, rtol=1e-6, atol=1e-7)


def test_fast_path_needs_a_head() -> None:
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="plain")
    features = (np.zeros((4, 4), "float32"), np.zeros(4, "int32"))
    with pytest.raises(CourseError, match=r"'plain' has no sub-model named 'head'"):
        train_head_on_features(plain, features, epochs=1, verbose=0)
    with pytest.raises(CourseError, match="no sub-model named 'head'"):
        lr_sweep(plain, features, features, [1e-3], epochs=1)


@pytest.mark.parametrize("spec", [HeadSpec(), HeadSpec(pooling="flatten"),
                                  HeadSpec(hidden=(16,), batchnorm=True)],
                         ids=["avg pooling", "flatten", "hidden and batchnorm"])
@pytest.mark.parametrize("optimizer", [None, "adamw"])
def test_training_on_features_ends_where_head_fit_ends(spec: HeadSpec, optimizer: str | None
                                                       ) -> None:
    """A head that pools first trains above its pooling on features pooled once, one that
    flattens trains whole: either way the weights and the history are head.fit's, with the
    head's own optimizer (compile_model's Adam, or one the student compiled)."""
    model = features_model(spec)
    head = model.get_layer("head")
    x, y = random_features()
    start = head.get_weights()

    def compile_head() -> None:
        if optimizer is None:
            compile_model(head, learning_rate=1e-2)
        else:
            head.compile(optimizer=keras.optimizers.AdamW(1e-2, weight_decay=0.1),
                         loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    compile_head()
    expected = head.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history
    fitted = head.get_weights()
    head.set_weights(start)
    compile_head()
    history = train_head_on_features(model, (x, y), epochs=3, learning_rate=1e-2,
                                     batch_size=8, shuffle=False, verbose=0)

    assert max(np.abs(a - b).max() for a, b in zip(fitted, start, strict=True)) > 1e-3
    for ours, theirs in zip(head.get_weights(), fitted, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert set(history.history) == set(expected)
    np.testing.assert_allclose(history.history["loss"], expected["loss"], rtol=1e-5)
    assert history.history["accuracy"] == pytest.approx(expected["accuracy"])
    assert history.model is head


@pytest.mark.parametrize(("spec", "trains_on"), [(HeadSpec(), (None, 8)),
                                                 (HeadSpec(pooling="flatten"), (None, 3, 3, 8))])
def test_only_a_head_that_pools_first_trains_on_pooled_features(
        spec: HeadSpec, trains_on: tuple) -> None:
    from ftcourse.training import _trainer_on

    model = features_model(spec)
    head = compile_model(model.get_layer("head"))
    x, y = random_features()
    trainer, (pooled, labels), _ = _trainer_on(head, (tf.constant(x), tf.constant(y)), None)
    assert tuple(trainer.inputs[0].shape) == trains_on
    assert trainer.optimizer is head.optimizer
    assert trainer.layers[-1] is head.layers[-1]  # the same layers: the model shares them
    if spec.pooling == "avg":
        np.testing.assert_allclose(pooled, x.mean(axis=(1, 2)), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(labels, y)


def test_other_metrics_train_the_whole_head() -> None:
    """Pooling first needs compile_model's metrics; with others the head trains whole and
    its history has the metrics it was compiled with."""
    from ftcourse.training import _trainer_on

    model = features_model()
    head = model.get_layer("head")
    head.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x, y = random_features()
    assert _trainer_on(head, (tf.constant(x), tf.constant(y)), None)[0] is head
    history = train_head_on_features(model, (x, y), epochs=2, learning_rate=1e-2,
                                     batch_size=8, verbose=0)
    assert set(history.history) == {"loss"}


def test_a_second_call_at_the_same_rate_continues() -> None:
    """Two one-epoch calls at one rate end where one two-epoch call ends: the optimizer (shared
    by the layers above the pooling) keeps its step count and moments between calls."""
    model = features_model()
    head = model.get_layer("head")
    x, y = random_features()
    start = head.get_weights()
    ends = []
    for calls, epochs in ((1, 2), (2, 1)):
        head.set_weights(start)
        compile_model(head, learning_rate=1e-2)
        for _ in range(calls):
            train_head_on_features(model, (x, y), epochs=epochs, learning_rate=1e-2,
                                   batch_size=8, shuffle=False, verbose=0)
        ends.append(head.get_weights())
    for one_call, two_calls in zip(*ends, strict=True):
        np.testing.assert_allclose(one_call, two_calls, rtol=1e-6, atol=1e-7)


def alike_with_dropout(seed: int) -> keras.Model:
    """The same model (weights and dropout seed) for the same ``seed``."""
    keras.utils.set_random_seed(seed)
    return small_model(head=HeadSpec(dropout=0.5))


def base_outputs(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random stand-ins for MobileNetV2's outputs at SIZE (1x1x1280) and their labels."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, 1, 1, 1280)).astype("float32"),
            rng.integers(0, 10, rows).astype("int32"))


def test_lr_sweep_on_a_model_built_alike_trains_as_the_head_itself() -> None:
    forget_all()
    train_features, val_features = base_outputs(48, seed=1), base_outputs(16, seed=2)
    rates, epochs = [3e-3, 3e-2], 3
    lr_sweep(alike_with_dropout(7), train_features, val_features, rates, epochs=epochs,
             batch_size=16)  # leaves the shared copy trained, then put back
    model, reference = alike_with_dropout(0), alike_with_dropout(0)
    np.random.seed(5)
    results = lr_sweep(model, train_features, val_features, rates, epochs=epochs, batch_size=16)
    head, own = model.get_layer("head"), reference.get_layer("head")
    start = own.get_weights()
    for rate in rates:  # each rate on the reference's own head, from the same start
        own.set_weights(start)
        compile_model(own, rate)
        np.random.seed(5)
        expected = train_head_on_features(reference, train_features, val_features,
                                          epochs=epochs, learning_rate=rate, batch_size=16,
                                          verbose=0)
        for key, values in expected.history.items():
            np.testing.assert_allclose(results[rate].history[key], values, rtol=1e-5,
                                       err_msg=f"{key} at rate {rate}")
    own.set_weights(start)
    for ours, theirs in zip(head.variables, own.variables, strict=True):  # seeds advanced alike
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_lr_sweep_traces_its_loops_once_per_structure() -> None:
    forget_all()
    train_features, val_features = base_outputs(32, seed=3), base_outputs(16, seed=4)
    first, second = alike_with_dropout(1), alike_with_dropout(2)
    for model in (first, second, first):
        lr_sweep(model, train_features, val_features, [1e-3, 1e-2], epochs=2, batch_size=16)
    shared = shared_head(first.get_layer("head"), built_as(first))
    assert shared is shared_head(second.get_layer("head"), built_as(second))
    other = small_model(head=HeadSpec(dropout=0.2))
    assert shared_head(other.get_layer("head"), built_as(other)) is not shared
    trainer = shared.__dict__["_ftcourse_above_pooling"]  # what trains above the pooling
    train_epoch, evaluate = trainer.__dict__["_ftcourse_loops"][2]
    assert train_epoch.experimental_get_tracing_count() == 1
    assert evaluate.experimental_get_tracing_count() == 1


def test_lr_sweep_restores_the_starting_head(digits: ImageData, vgg: keras.Model) -> None:
    head = vgg.get_layer("head")
    start = [w.copy() for w in head.get_weights()]
    train_features = extract_features(vgg, digits.train, verbose=0)
    val_features = extract_features(vgg, digits.val, verbose=0)
    rates = [1e-4, 1e-2]
    results = lr_sweep(vgg, train_features, val_features, rates, epochs=2, batch_size=16)
    assert list(results) == rates
    for history in results.values():
        assert history.epoch == [0, 1] and len(history.history["val_accuracy"]) == 2
    assert results[1e-4].history["loss"] != results[1e-2].history["loss"]
    for before, after in zip(start, head.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert float(head.optimizer.learning_rate) == pytest.approx(rates[0])  # the first rate
