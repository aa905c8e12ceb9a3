"""Trusted checks for ps03, run by the grader outside the student's kernel (never released)."""

import keras
import numpy as np

from ftcourse import checks, get_config
from ftcourse.grading import Probe, TrustedPart

cfg = get_config()
NUM_CLASSES = 5
ARCHS = ("mobilenet_v2", "resnet50", "vgg16")


def draw_pixels(rng):
    pixels = [[[[rng.randint(0, 255) for _ in range(3)] for _ in range(2)] for _ in range(2)]
              for _ in range(2)]
    return {"pixels": pixels}


def draw_classes(rng):
    return {"num_classes": rng.choice([2, 3, 4, 6, 7]), "image_size": cfg.image_size,
            "weights": cfg.weights}


def preprocessed(arch, pixels):
    module = getattr(keras.applications, arch)
    return np.asarray(module.preprocess_input(np.array(pixels, dtype="float32")))


def check_preprocess_for(values):
    for arch in ARCHS:
        got = values[f"pre_{arch}"]
        expected = preprocessed(arch, values["drawn"]["pixels"])
        assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-4), (
            f"preprocess_for({arch!r}) does not transform pixels as {arch} expects")


def check_classifier(model, num_classes):
    checks.check_preprocessing(model, "resnet50")
    checks.check_base_frozen(model)
    checks.check_output(model, num_classes, "softmax")
    _, features = checks.base_io(model, checks.probe_batch(model))
    assert features.shape[-1] == 2048, "the base should be ResNet50 (2,048 output channels)"
    assert checks.count_params(model.trainable_weights) == 2048 * num_classes + num_classes, (
        "only the head's Dense layer should train")


def check_resnet50_classifier(values):
    check_classifier(values["model"], NUM_CLASSES)
    checks.check_batchnorm_frozen(values["model"])
    check_classifier(values["resnet_probe"], values["drawn"]["num_classes"])


def check_with_preprocessing(values):
    fixed_model, broken_model = values["fixed_model"], values["broken_model"]
    checks.check_preprocessing(fixed_model, "resnet50")
    assert fixed_model.count_params() == broken_model.count_params(), "share the weights"
    images = checks.probe_batch(fixed_model)
    expected = broken_model(preprocessed("resnet50", images))
    assert np.allclose(fixed_model(images), expected, atol=1e-5), (
        "fixed_model should give broken_model's outputs on preprocessed pixels")
    checks.check_preprocessing(values["wrap_probe"], "mobilenet_v2")


PIXELS = "__import__('numpy').array({pixels}, dtype='float32')"
PARTS = [
    TrustedPart("test_part_a_preprocess_for", {}, check_preprocess_for,
                probes={f"pre_{arch}": Probe("array", f"preprocess_for({arch!r})({PIXELS})")
                        for arch in ARCHS}, draw=draw_pixels),
    TrustedPart("test_part_b_resnet50_classifier", {"model": "model"},
                check_resnet50_classifier,
                probes={"resnet_probe": Probe("model", "build_resnet50_classifier("
                                                       "{num_classes}, {image_size}, "
                                                       "ftcourse.keras_weights('resnet50', "
                                                       "{image_size}, {weights}))")},
                draw=draw_classes),
    TrustedPart("test_part_c_with_preprocessing",
                {"fixed_model": "model", "broken_model": "model"}, check_with_preprocessing,
                probes={"wrap_probe": Probe("model", "with_preprocessing(ftcourse.build_model("
                                                     "'mobilenet_v2', 3, {image_size}, "
                                                     "{weights}, preprocess=False), "
                                                     "'mobilenet_v2')")},
                draw=lambda rng: {"image_size": cfg.image_size, "weights": cfg.weights}),
]
