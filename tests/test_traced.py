"""Inference passes traced once per structure: shared by models built alike, each with its own
weights, and holding no model alive."""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from ftcourse import traced
from ftcourse.models import build_base, build_model, built_as
from ftcourse.training import extract_features, feature_extractor

SIZE = 32
IMAGES = np.random.default_rng(3).uniform(0, 255, (6, SIZE, SIZE, 3)).astype("float32")


def dataset(images: np.ndarray = IMAGES) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((images, np.arange(len(images)))).batch(4)


def features_of(model: keras.Model) -> np.ndarray:
    return extract_features(model, dataset(), verbose=0)[0]


def expected(model: keras.Model) -> np.ndarray:
    return feature_extractor(model).predict(IMAGES, verbose=0)


@pytest.fixture(scope="module")
def vggs() -> tuple[keras.Model, keras.Model]:
    """Two VGG16s built alike, with different random weights (far from zero, unlike
    MobileNetV2's)."""
    return (build_model("vgg16", 3, SIZE, weights=None),
            build_model("vgg16", 5, SIZE, weights=None))


def test_models_built_alike_share_one_trace_with_their_own_weights(vggs) -> None:
    first, second = vggs
    assert built_as(first) == built_as(second)  # the head does not enter the structure
    before = len(traced._BY_STRUCTURE)
    one, two = features_of(first), features_of(second)
    assert len(traced._BY_STRUCTURE) - before <= 1  # traced once for both (or earlier)
    np.testing.assert_allclose(one, expected(first), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(two, expected(second), rtol=1e-5, atol=1e-4)
    assert np.abs(one - two).max() > 1e-2  # their own weights, not the first model's


def test_weights_are_read_at_each_extraction(vggs) -> None:
    model = vggs[0]
    start = model.get_weights()
    features_of(model)
    base = model.get_layer("base_model")
    base.set_weights([w * 0.5 for w in base.get_weights()])
    try:
        np.testing.assert_allclose(features_of(model), expected(model), rtol=1e-5, atol=1e-4)
    finally:
        model.set_weights(start)


@pytest.mark.parametrize("change", [{"image_size": 48}, {"preprocess": False}])
def test_a_different_build_is_a_different_structure(vggs, change: dict) -> None:
    arguments = {"image_size": SIZE, "preprocess": True} | change
    other = build_model("vgg16", 3, weights=None, **arguments)
    assert built_as(other) != built_as(vggs[0])
    images = np.resize(IMAGES, (6, arguments["image_size"], arguments["image_size"], 3))
    features = extract_features(other, dataset(images), verbose=0)[0]
    np.testing.assert_allclose(features, feature_extractor(other).predict(images, verbose=0),
                               rtol=1e-5, atol=1e-4)


def test_a_model_of_ones_own_is_traced_for_itself() -> None:
    """A model not built by build_model (a base named base_model and a head) gets a trace of
    its own, never a shared one."""
    base = build_base("vgg16", SIZE, weights=None)
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(2)], name="head")(
        base(inputs, training=False))
    model = keras.Model(inputs, outputs)
    assert built_as(model) is None
    before = dict(traced._BY_STRUCTURE)
    np.testing.assert_allclose(features_of(model), expected(model), rtol=1e-5, atol=1e-4)
    assert before == traced._BY_STRUCTURE


def test_a_shared_trace_keeps_no_model_alive() -> None:
    model = build_model("vgg16", 3, SIZE, weights=None)
    features_of(model)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
