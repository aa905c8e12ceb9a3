"""The phase-2 fast path: the cut, cached activations, and the same weights as ``model.fit``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from ftcourse.cut import (
    base_features,
    cut_activations,
    find_cut,
    random_ops,
    train_top_on_activations,
)
from ftcourse.data import ImageData, load_dataset
from ftcourse.errors import CourseError
from ftcourse.models import HeadSpec, build_head, build_model, get_base, unfreeze_top
from ftcourse.training import compile_model, extract_features
from ftcourse.two_phase import fine_tune

SIZE, CLASSES, BATCH = 32, 5, 16


def images_and_labels(count: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 255, (count, SIZE, SIZE, 3)).astype("float32"),
            rng.integers(0, CLASSES, count).astype("int32"))


def fixed_batches(count: int = 40) -> tf.data.Dataset:
    """The same batches in the same order every epoch."""
    return tf.data.Dataset.from_tensor_slices(images_and_labels(count)).batch(BATCH)


def skip_base(batchnorm_trainable: bool = False) -> keras.Model:
    """A base whose residual connection crosses the cut: two tensors at the cut."""
    inputs = keras.Input((SIZE, SIZE, 3))
    low = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="low")(inputs)
    norm = keras.layers.BatchNormalization(center=False, scale=False, name="norm")
    norm.trainable = batchnorm_trainable  # no weights that train: stays below the cut
    mid = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="mid")(norm(low))
    top = keras.layers.Conv2D(4, 3, padding="same", name="top")(mid)
    outputs = keras.layers.Add(name="add")([low, top])
    return keras.Model(inputs, outputs, name="base_model")


def model_on(base: keras.Model, augment: bool = False, classes: int = CLASSES) -> keras.Model:
    """pixels -> (augmentation) -> base -> head, the layout of ftcourse.build_model."""
    pixels = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = keras.layers.RandomFlip("horizontal")(pixels) if augment else pixels
    head = build_head(classes, HeadSpec(dropout=0.0))
    return keras.Model(pixels, head(base(keras.layers.Rescaling(1 / 255)(x), training=False)))


def twin_models(make: callable) -> tuple[keras.Model, keras.Model]:
    first, second = make(), make()
    second.set_weights(first.get_weights())
    return first, second


def freeze_below(model: keras.Model, name: str) -> None:
    base = get_base(model)
    base.trainable = True
    index = [layer.name for layer in base.layers].index(name)
    for layer in base.layers[:index]:
        layer.trainable = False


def largest_difference(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(first, second, strict=True))


def naive_and_fast(make: callable, unfreeze: callable, epochs: int = 2
                   ) -> tuple[keras.Model, keras.Model, list[np.ndarray]]:
    """Train twin models on the same batches, with model.fit and with the fast path."""
    naive, fast = twin_models(make)
    start = naive.get_weights()
    for model in (naive, fast):
        unfreeze(model)
    compile_model(naive, 1e-2)
    naive.fit(fixed_batches(), epochs=epochs, shuffle=False, verbose=0)
    cut = find_cut(fast)
    activations = cut_activations(cut, fixed_batches(), verbose=0)
    train_top_on_activations(cut, activations, epochs=epochs, learning_rate=1e-2,
                             batch_size=BATCH, shuffle=False, verbose=0)
    return naive, fast, start


def test_a_cut_crossed_by_a_skip_connection_holds_both_tensors() -> None:
    model = model_on(skip_base())
    freeze_below(model, "top")
    cut = find_cut(model)
    assert cut.lowest_trainable == "top"
    assert [tuple(t.shape[1:]) for t in cut.frozen.outputs] == [(SIZE, SIZE, 4)] * 2
    arrays, labels = cut_activations(cut, fixed_batches(), verbose=0)
    assert [a.shape for a in arrays] == [(40, SIZE, SIZE, 4)] * 2 and labels.shape == (40,)


def test_the_fast_path_ends_with_the_weights_of_model_fit() -> None:
    naive, fast, start = naive_and_fast(lambda: model_on(skip_base()),
                                        lambda model: freeze_below(model, "top"))
    assert largest_difference(naive.get_weights(), start) > 1e-3  # it trained
    assert largest_difference(naive.get_weights(), fast.get_weights()) < 1e-5
    low = get_base(fast).get_layer("low")
    assert np.array_equal(low.kernel.numpy(), get_base(naive).get_layer("low").kernel.numpy())


@pytest.mark.usefixtures("eager")
def test_mobilenet_v2_top_20_matches_model_fit() -> None:
    naive, fast, start = naive_and_fast(
        lambda: build_model("mobilenet_v2", CLASSES, SIZE, weights=None,
                            head=HeadSpec(dropout=0.0)),
        lambda model: unfreeze_top(model, 20), epochs=1)
    assert largest_difference(naive.get_weights(), start) > 1e-4
    assert largest_difference(naive.get_weights(), fast.get_weights()) < 1e-5


def test_history_counts_epochs_from_initial_epoch() -> None:
    model = model_on(skip_base())
    freeze_below(model, "mid")
    cut = find_cut(model)
    activations = cut_activations(cut, fixed_batches(), verbose=0)
    history = train_top_on_activations(cut, activations, activations, epochs=2,
                                       initial_epoch=3, batch_size=BATCH, verbose=0)
    assert history.epoch == [3, 4]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)


def test_base_features_are_what_extract_features_returns() -> None:
    model = build_model("mobilenet_v2", CLASSES, SIZE, weights=None)
    expected, labels = extract_features(model, fixed_batches(), verbose=0)
    unfreeze_top(model, 20)
    cut = find_cut(model)
    features, same_labels = base_features(cut, cut_activations(cut, fixed_batches(), verbose=0))
    np.testing.assert_allclose(features, expected, atol=1e-5)
    assert np.array_equal(labels, same_labels)


def test_a_frozen_base_leaves_only_the_head_above_the_cut() -> None:
    model = build_model("mobilenet_v2", CLASSES, SIZE, weights=None)
    cut = find_cut(model)
    assert cut.lowest_trainable is None and cut.trainer is model.get_layer("head")


def test_augmentation_in_front_of_the_base_is_refused() -> None:
    model = model_on(skip_base(), augment=True)
    freeze_below(model, "top")
    with pytest.raises(CourseError, match=r"RandomFlip.*augmentation.*train on images"):
        find_cut(model)


def test_a_trainable_batchnorm_below_the_cut_is_refused() -> None:
    model = model_on(skip_base(batchnorm_trainable=True))
    freeze_below(model, "mid")
    get_base(model).get_layer("norm").trainable = True
    with pytest.raises(CourseError, match=r"BatchNormalization layer 'norm'.*trainable"):
        find_cut(model)


def test_a_model_without_the_course_layout_is_refused() -> None:
    inputs = keras.Input((SIZE, SIZE, 3))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(CourseError, match=r"base_model"):
        find_cut(plain)


def test_a_pipeline_that_draws_random_numbers_is_refused() -> None:
    flipped = fixed_batches().map(lambda x, y: (tf.image.random_flip_left_right(x), y))
    assert random_ops(fixed_batches().shuffle(8)) == []
    assert random_ops(flipped)
    model = model_on(skip_base())
    freeze_below(model, "top")
    with pytest.raises(CourseError, match=r"random numbers.*Train on images"):
        cut_activations(find_cut(model), flipped, verbose=0)


def test_the_course_pipelines_draw_no_random_numbers() -> None:
    data = load_dataset("digits", SIZE, batch_size=BATCH, limit=40)
    assert [random_ops(split) for split in (data.train, data.val, data.test)] == [[], [], []]


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_dataset("digits", SIZE, batch_size=BATCH, limit=60)


def test_fine_tune_takes_the_fast_path(digits: ImageData, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    model = model_on(skip_base(), classes=digits.num_classes)
    low_before = get_base(model).get_layer("low").kernel.numpy().copy()
    top_before = get_base(model).get_layer("top").kernel.numpy().copy()
    history = fine_tune(model, digits, head_epochs=2, fine_tune_epochs=2, unfreeze=2,
                        learning_rate=1e-2, fine_tune_learning_rate=1e-2, verbose=0)
    assert "trains on images" not in capsys.readouterr().out
    assert history.epoch == [0, 1, 2, 3] and history.fine_tune_start == 2
    assert history.model is model
    assert np.array_equal(get_base(model).get_layer("low").kernel.numpy(), low_before)
    assert np.abs(get_base(model).get_layer("top").kernel.numpy() - top_before).max() > 1e-4
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-2)


@pytest.mark.usefixtures("eager")
def test_fine_tune_says_why_it_trains_on_images(digits: ImageData,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    model = model_on(skip_base(), augment=True, classes=digits.num_classes)
    history = fine_tune(model, digits, head_epochs=1, fine_tune_epochs=1, unfreeze=2, verbose=0)
    assert "fine_tune trains on images: Layer" in capsys.readouterr().out
    assert history.epoch == [0, 1]
