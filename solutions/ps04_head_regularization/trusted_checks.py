"""Trusted checks for ps04, run by the grader outside the student's kernel (never released)."""

import math

import keras
import numpy as np

from ftcourse import checks, get_config
from ftcourse.grading import Probe, TrustedPart

cfg = get_config()
NUM_CLASSES = 5
BASE_TRAINABLE = 2189760  # MobileNetV2 without BatchNormalization's gamma and beta


# A new frozen MobileNetV2 base, as the probe's ``base`` (drawn sizes filled in later).
FRESH_BASE = ("base = ftcourse.build_base('mobilenet_v2', {image_size}, weights={weights})",
              "base.trainable = False")


def draw_head(rng):
    return {"num_classes": rng.choice([2, 3, 4, 6, 7]),
            "dropout": round(rng.uniform(0.1, 0.6), 2),
            "image_size": cfg.image_size, "weights": cfg.weights}


def draw_base(rng):
    return {"image_size": cfg.image_size, "weights": cfg.weights}


def draw_compile(rng):
    return {"learning_rate": round(10 ** rng.uniform(-5, -2), 8)}


def check_head_model(model, num_classes, dropout):
    checks.check_head_regularization(model, dropout)
    checks.check_base_frozen(model)
    checks.check_output(model, num_classes, "softmax")
    checks.check_preprocessing(model, "mobilenet_v2")
    expected = 1280 * 64 + 64 + 2 * 64 + 64 * num_classes + num_classes
    trainable = checks.count_params(model.trainable_weights)
    assert trainable == expected, f"{trainable} trainable parameters, expected {expected}"


def check_regularized_head(values):
    check_head_model(values["model"], NUM_CLASSES, 0.3)
    drawn = values["drawn"]
    check_head_model(values["head_probe"], drawn["num_classes"], drawn["dropout"])


def check_unfrozen(base):
    norm = keras.layers.BatchNormalization
    for layer in base.layers:
        if isinstance(layer, norm):
            assert not layer.trainable, f"{layer.name} should stay frozen"
        elif layer.weights:
            assert layer.trainable, f"{layer.name} should be trainable after unfreeze_base"
    trainable = checks.count_params(base.trainable_weights)
    assert trainable == BASE_TRAINABLE, f"{trainable} trainable parameters in the base"


def check_unfreeze_base(values):
    model = values["fine_tune_model"]
    checks.check_batchnorm_frozen(model)
    check_unfrozen(checks.find_base(model))
    check_unfrozen(values["unfreeze_probe"])


def check_compile_binary(values):
    for model in (values["binary_model"], values["binary_probe"]):
        checks.check_loss_matches_output(model)
        value = float(model.loss(np.array([1.0], "float32"), np.array([[0.9]], "float32")))
        assert math.isclose(value, -math.log(0.9), abs_tol=1e-4), (
            f"loss of 0.9 for a positive is {value}")
    checks.check_learning_rate(values["binary_probe"], values["drawn"]["learning_rate"])


PARTS = [
    TrustedPart("test_part_a_regularized_head", {"model": "model"}, check_regularized_head,
                probes={"head_probe": Probe("model", "build_regularized_model(base, "
                                                     "{num_classes}, {dropout})",
                                             setup=FRESH_BASE)},
                draw=draw_head),
    TrustedPart("test_part_b_unfreeze_base", {"fine_tune_model": "model"}, check_unfreeze_base,
                probes={"unfreeze_probe": Probe("model", "base",
                                                 setup=(*FRESH_BASE, "unfreeze_base(base)"))},
                draw=draw_base),
    TrustedPart("test_part_c_compile_binary", {"binary_model": "model"}, check_compile_binary,
                probes={"binary_probe": Probe("model", "model", setup=(
                    "model = keras.Sequential([keras.Input((4,)), "
                    "keras.layers.Dense(1, activation='sigmoid')])",
                    "compile_binary(model, {learning_rate})"))},
                draw=draw_compile),
]
