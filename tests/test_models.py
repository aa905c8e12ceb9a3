"""The architecture registry, building bases, heads and models, freezing and unfreezing."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pytest

from ftcourse.errors import CourseError, DownloadError
from ftcourse.models import (
    ARCHITECTURES,
    HeadSpec,
    build_base,
    build_head,
    build_model,
    build_preprocessing,
    freeze_base,
    get_architecture,
    get_base,
    keras_weights,
    trainable_report,
    unfreeze_top,
)

SIZE = 32


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """A 3-class MobileNetV2 classifier with random weights; tests must not change it."""
    return build_model("mobilenet_v2", 3, SIZE, weights=None)


def fresh_model(**kwargs: object) -> keras.Model:
    return build_model("mobilenet_v2", kwargs.pop("num_classes", 3), SIZE, weights=None, **kwargs)


def pixels(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


# -- registry -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50", "vgg16"])
def test_each_architecture_uses_its_own_preprocess_input(name: str) -> None:
    spec = get_architecture(name)
    assert spec.preprocess_input is getattr(keras.applications, name).preprocess_input
    assert spec.min_size == 32 and spec.default_size == 224


def test_preprocess_functions_differ() -> None:
    x = pixels(1)
    outputs = [np.asarray(ARCHITECTURES[n].preprocess_input(x.copy())) for n in ARCHITECTURES]
    assert not np.allclose(outputs[0], outputs[1])
    assert outputs[0].min() >= -1.0 and outputs[0].max() <= 1.0  # mobilenet_v2: [-1, 1]


def test_inception_v3_has_its_own_preprocessing_and_a_minimum_of_75() -> None:
    spec = get_architecture("inception_v3")
    assert spec.preprocess_input is keras.applications.inception_v3.preprocess_input
    assert spec.preprocess_input is not keras.applications.mobilenet_v2.preprocess_input
    assert (spec.min_size, spec.default_size, spec.weight_sizes) == (75, 299, None)
    x = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(spec.preprocess_input(x.copy())), x / 127.5 - 1,
                               rtol=1e-5, atol=1e-5)  # the "tf" convention: -1..1


@pytest.mark.usefixtures("eager")
def test_inception_v3_base_at_its_minimum_size() -> None:
    base = build_base("inception_v3", 75, weights=None)
    assert base.name == "base_model"
    assert tuple(base.output.shape[1:]) == (1, 1, 2048)
    model = build_model("inception_v3", 3, 75, weights=None)
    assert model.predict(np.full((1, 75, 75, 3), 128.0, "float32"), verbose=0).shape == (1, 3)


def test_inception_v3_refuses_the_ci_image_size(offline: list[str]) -> None:
    with pytest.raises(CourseError, match=r"inception_v3 needs images of at least 75x75 pixels, "
                                          r"got 32.*image_size=299"):
        build_base("inception_v3", 32, weights="digits0-4")
    with pytest.raises(CourseError, match="at least 75x75"):
        keras_weights("inception_v3", 32, "digits0-4")


def test_keras_weights_passes_imagenet_none_and_files_through(tmp_path: Path) -> None:
    assert keras_weights("mobilenet_v2", 160, "imagenet") == "imagenet"
    assert keras_weights("resnet50", SIZE, None) is None
    assert keras_weights("vgg16", SIZE, str(tmp_path / "w.h5")) == str(tmp_path / "w.h5")


def test_keras_weights_resolves_the_ci_base_to_a_file_keras_accepts() -> None:
    from ftcourse.pretrain import weights_path

    path = keras_weights("mobilenet_v2", SIZE, "digits0-4")
    assert path == str(weights_path("mobilenet_v2", SIZE)) and Path(path).is_file()
    base = keras.applications.MobileNetV2(include_top=False, weights=path,
                                          input_shape=(SIZE, SIZE, 3))
    assert len(base.layers) == len(build_base("mobilenet_v2", SIZE, "digits0-4").layers)


def test_unknown_architecture_lists_the_known_ones() -> None:
    known = r"\['inception_v3', 'mobilenet_v2', 'resnet50', 'vgg16'\]"
    with pytest.raises(CourseError, match=r"Unknown architecture 'resnet18'.*" + known):
        get_architecture("resnet18")
    with pytest.raises(CourseError, match="Unknown architecture"):
        build_model("resnet18", 3, SIZE, weights=None)


# -- build_base -----------------------------------------------------------------------------


def test_image_size_below_the_minimum() -> None:
    with pytest.raises(CourseError, match=r"vgg16 needs images of at least 32x32 pixels, got 16"
                                          r".*image_size=224"):
        build_base("vgg16", 16, weights=None)


def test_mobilenet_imagenet_size_is_checked_before_any_download(offline: list[str]) -> None:
    with pytest.raises(CourseError, match=r"ImageNet weights only for image sizes "
                                          r"\[96, 128, 160, 192, 224\], not 100.*weights=None"):
        build_base("mobilenet_v2", 100, weights="imagenet")
    assert offline == []


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match=r"Weights file .*nothing.weights.h5 does not exist"):
        build_base("mobilenet_v2", SIZE, weights=str(tmp_path / "nothing.weights.h5"))


@pytest.mark.usefixtures("eager")
def test_weights_from_a_file_are_loaded(tmp_path: Path) -> None:
    first = build_base("mobilenet_v2", SIZE, weights=None)
    path = tmp_path / "base.weights.h5"
    first.save_weights(path)
    second = build_base("mobilenet_v2", SIZE, weights=str(path))
    assert second.name == "base_model"
    x = pixels(2)
    np.testing.assert_allclose(second.predict(x, verbose=0), first.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_imagenet_weights_offline_fail_fast(keras_home: Path, offline: list[str]) -> None:
    start = time.perf_counter()
    with pytest.raises(DownloadError, match=r"ImageNet weights of vgg16.*no network.*"
                                            r"`ftcourse fetch`.*FTCOURSE_PROFILE=ci"):
        build_base("vgg16", SIZE, weights="imagenet")
    assert time.perf_counter() - start < 30
    assert len(offline) == 1 and "vgg16" in offline[0]


def test_base_has_no_classifier(model: keras.Model) -> None:
    base = get_base(model)
    assert base.name == "base_model"
    assert base.output.shape == (None, 1, 1, 1280)  # include_top=False: a feature map


# -- build_model ----------------------------------------------------------------------------


def test_model_structure(model: keras.Model) -> None:
    assert [layer.name for layer in model.layers] == ["pixels", "preprocess", "base_model", "head"]
    assert model.name == "mobilenet_v2_classifier"
    assert model.input.shape == (None, SIZE, SIZE, 3)
    assert model.output.shape == (None, 3)
    assert get_base(model).trainable is False
    assert model.get_layer("head").layers[-1].name == "predictions"


def test_model_outputs_probabilities(model: keras.Model) -> None:
    probabilities = model.predict(pixels(), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50", "vgg16"])
def test_preprocessing_inside_the_model_is_the_architectures(name: str) -> None:
    x = pixels(2)
    inside = build_preprocessing(name, SIZE)(x)
    np.testing.assert_allclose(np.asarray(inside),
                               np.asarray(ARCHITECTURES[name].preprocess_input(x.copy())),
                               rtol=1e-5, atol=1e-4)


def test_preprocess_false_feeds_pixels_to_the_base() -> None:
    raw = fresh_model(preprocess=False)
    assert [layer.name for layer in raw.layers] == ["pixels", "base_model", "head"]


def _batchnorm_stats(base: keras.Model) -> list[np.ndarray]:
    return [w.numpy().copy() for layer in base.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            for w in (layer.moving_mean, layer.moving_variance)]


@pytest.mark.usefixtures("eager")
def test_batchnorm_statistics_stay_fixed_after_unfreeze_top() -> None:
    """The unfrozen top trains; BatchNorm moving statistics of the base never move (the top 30
    layers hold several BatchNorm layers; unfreezing all would only slow the test)."""
    model = fresh_model()
    base = get_base(model)
    unfreeze_top(model, 30)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers[-30:])
    stats = _batchnorm_stats(base)
    weights = [w.numpy().copy() for w in base.trainable_weights]
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.train_on_batch(pixels(8), np.arange(8) % 3)
    for before, now in zip(stats, _batchnorm_stats(base), strict=True):
        np.testing.assert_array_equal(before, now)
    assert any(not np.array_equal(before, now.numpy())
               for before, now in zip(weights, base.trainable_weights, strict=True))


@pytest.mark.usefixtures("eager")
def test_the_base_predicts_in_inference_mode() -> None:
    """Outside fit, the base's BatchNorm uses its moving statistics (same output every call)."""
    model = fresh_model()
    base = get_base(model)
    base.trainable = True
    x = pixels(4)
    np.testing.assert_allclose(model(x, training=False), model.predict(x, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(model(x[:1]), model(x)[:1], rtol=1e-4, atol=1e-6)


@pytest.mark.usefixtures("eager")
def test_keras_file_round_trip_with_safe_mode(model: keras.Model, tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = pixels()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert get_base(loaded).trainable is False


@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_caffe_style_preprocessing_survives_safe_mode(name: str, tmp_path: Path) -> None:
    preprocess = build_preprocessing(name, SIZE)
    path = tmp_path / f"{name}.keras"
    keras.Model(preprocess.inputs, preprocess.outputs).save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = pixels(1)
    np.testing.assert_allclose(loaded(x), preprocess(x), rtol=1e-6)


# -- heads ----------------------------------------------------------------------------------


def _layer_types(head: keras.Sequential) -> list[str]:
    return [type(layer).__name__ for layer in head.layers]


def test_default_head() -> None:
    head = build_head(5)
    assert head.name == "head"
    assert _layer_types(head) == ["GlobalAveragePooling2D", "Dense"]
    assert head.layers[-1].units == 5
    assert head.layers[-1].activation.__name__ == "softmax"


def test_head_variants() -> None:
    head = build_head(4, HeadSpec(pooling="flatten", hidden=(16, 8), dropout=0.3,
                                  batchnorm=True))
    assert _layer_types(head) == ["Flatten", "Dense", "BatchNormalization", "Dropout",
                                  "Dense", "BatchNormalization", "Dropout", "Dense"]
    assert [layer.units for layer in head.layers if isinstance(layer, keras.layers.Dense)] \
        == [16, 8, 4]
    assert head.layers[3].rate == 0.3


def test_dropout_without_hidden_layers() -> None:
    assert _layer_types(build_head(3, HeadSpec(dropout=0.2))) == [
        "GlobalAveragePooling2D", "Dropout", "Dense"]


def test_sigmoid_head_has_one_unit() -> None:
    model = fresh_model(num_classes=2, head=HeadSpec(output="sigmoid"))
    assert model.output.shape == (None, 1)
    out = model.predict(pixels(), verbose=0)
    assert ((out > 0) & (out < 1)).all()


def test_flatten_head_on_a_model() -> None:
    model = fresh_model(head=HeadSpec(pooling="flatten", hidden=(8,)))
    assert model.output.shape == (None, 3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"pooling": "max"}, r"pooling must be 'avg' or 'flatten', not 'max'"),
    ({"output": "relu"}, r"output must be 'softmax' or 'sigmoid', not 'relu'"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
])
def test_bad_head_spec(kwargs: dict, message: str) -> None:
    with pytest.raises(CourseError, match=message):
        HeadSpec(**kwargs)


def test_softmax_needs_two_classes() -> None:
    with pytest.raises(CourseError, match=r"softmax head needs num_classes >= 2, got 1.*sigmoid"):
        build_head(1)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_sigmoid_needs_exactly_two_classes(num_classes: int) -> None:
    with pytest.raises(CourseError, match=rf"exactly 2 classes, got num_classes={num_classes}"):
        build_head(num_classes, HeadSpec(output="sigmoid"))


def test_head_errors_come_before_building_the_base(offline: list[str]) -> None:
    with pytest.raises(CourseError, match="softmax head"):
        build_model("vgg16", 1, SIZE, weights="imagenet")
    assert offline == []


# -- freezing -------------------------------------------------------------------------------


def _is_batchnorm(layer: keras.Layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def test_unfreeze_top_counts_from_the_top(capsys: pytest.CaptureFixture[str]) -> None:
    model = fresh_model()
    base = get_base(model)
    changed = unfreeze_top(model, 10)
    top = base.layers[-10:]
    expected = [layer.name for layer in top if layer.weights and not _is_batchnorm(layer)]
    assert changed == expected and changed
    assert all(not layer.trainable for layer in base.layers[:-10])
    assert all(not layer.trainable for layer in base.layers if _is_batchnorm(layer))
    assert base.trainable
    assert f"Unfroze {len(changed)} layers" in capsys.readouterr().out


def test_unfreeze_changes_the_trainable_weights() -> None:
    model = fresh_model()
    head_only = len(model.trainable_weights)
    changed = unfreeze_top(model, 10)
    base = get_base(model)
    unfrozen = sum(len(base.get_layer(name).trainable_weights) for name in changed)
    assert len(model.trainable_weights) == head_only + unfrozen > head_only


def test_unfreeze_all_and_none() -> None:
    model = fresh_model()
    base = get_base(model)
    everything = unfreeze_top(model, len(base.layers))
    assert len(everything) == sum(1 for layer in base.layers
                                  if layer.weights and not _is_batchnorm(layer))
    assert unfreeze_top(model, 0) == []
    assert not any(layer.trainable for layer in base.layers)


@pytest.mark.parametrize("n", [-1, 10_000])
def test_unfreeze_bad_n(model: keras.Model, n: int) -> None:
    count = len(get_base(model).layers)
    with pytest.raises(CourseError, match=rf"n must be between 0 and {count}.*got {n}"):
        unfreeze_top(model, n)
    assert get_base(model).trainable is False


def test_freeze_base_undoes_unfreeze() -> None:
    model = fresh_model()
    head_only = len(model.trainable_weights)
    unfreeze_top(model, 20)
    freeze_base(model)
    assert len(model.trainable_weights) == head_only


def test_get_base_on_a_model_without_one() -> None:
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(CourseError, match=r"Model 'plain' has no layer named 'base_model'"):
        get_base(plain)
    with pytest.raises(CourseError, match="no layer named 'base_model'"):
        unfreeze_top(plain, 1)


def _keras_counts(model: keras.Model) -> tuple[int, int]:
    count = lambda weights: sum(int(np.prod(w.shape)) for w in weights)  # noqa: E731
    return count(model.trainable_weights), count(model.non_trainable_weights)


def test_trainable_report_matches_keras(model: keras.Model) -> None:
    report = trainable_report(model)
    assert (report.trainable_params, report.frozen_params) == _keras_counts(model)
    assert [row[0] for row in report.rows] == ["base_model", "head"]
    assert report.rows[0][1] == len(get_base(model).layers)
    assert report.trainable_params == 1280 * 3 + 3
    text = str(report)
    assert "trainable params" in text and "total" in text
    assert f"{report.frozen_params:,}" in text


def test_trainable_report_after_unfreezing() -> None:
    model = fresh_model(head=HeadSpec(hidden=(8,), batchnorm=True))
    unfreeze_top(model, 15)
    report = trainable_report(model)
    assert (report.trainable_params, report.frozen_params) == _keras_counts(model)
    assert report.rows[1][3] > 0  # the head's own BatchNorm statistics are not trainable
