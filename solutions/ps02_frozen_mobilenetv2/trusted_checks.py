"""Trusted checks for ps02, run by the grader outside the student's kernel (never released)."""

import math

from ftcourse import checks, get_config
from ftcourse.grading import Probe, TrustedPart

cfg = get_config()
NUM_CLASSES = 5


def draw_classes(rng):
    return {"num_classes": rng.choice([3, 4, 6, 7, 8]), "image_size": cfg.image_size,
            "weights": cfg.weights}


def draw_compile(rng):
    return {"units": rng.choice([1, 1, 3, 4]), "learning_rate": round(10 ** rng.uniform(-5, -2), 8)}


def check_head(model, num_classes, activation):
    checks.check_base_frozen(model)
    checks.check_output(model, num_classes, activation)
    units = 1 if activation == "sigmoid" else num_classes
    trainable = checks.count_params(model.trainable_weights)
    assert trainable == 1280 * units + units, (
        f"{trainable} trainable parameters: only the head's Dense layer should train")


def check_frozen_head(values):
    check_head(values["model"], NUM_CLASSES, "softmax")
    check_head(values["frozen_probe"], values["drawn"]["num_classes"], "softmax")


def check_preprocessing(values):
    model = values["model"]
    checks.check_preprocessing(model, "mobilenet_v2")
    checks.check_batchnorm_frozen(model)
    received, _ = checks.base_io(model, checks.probe_batch(model))
    assert received.min() >= -1.0 and received.max() <= 1.0, "the base should see values in -1..1"


def check_binary_model(values):
    binary_model = values["binary_model"]
    check_head(binary_model, 2, "sigmoid")
    checks.check_preprocessing(binary_model, "mobilenet_v2")


def check_compile(values):
    checks.check_learning_rate(values["model"], cfg.learning_rate)
    checks.check_loss_matches_output(values["model"])
    checks.check_loss_matches_output(values["binary_model"])
    probe, drawn = values["compile_probe"], values["drawn"]
    checks.check_learning_rate(probe, drawn["learning_rate"])
    checks.check_loss_matches_output(probe)
    assert math.isclose(float(probe.optimizer.learning_rate), drawn["learning_rate"],
                        rel_tol=1e-5), "compile_classifier ignores its learning_rate"


# compile_classifier on a fresh model whose output size and learning rate the grader draws.
COMPILE_PROBE = Probe("model", "model", setup=(
    "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense({units}, "
    "activation='sigmoid' if {units} == 1 else 'softmax')])",
    "compile_classifier(model, {learning_rate})"))

PARTS = [
    TrustedPart("test_part_a_frozen_head", {"model": "model"}, check_frozen_head,
                probes={"frozen_probe": Probe("model", "build_frozen_classifier({num_classes}, "
                                                       "{image_size}, "
                                                       "ftcourse.keras_weights('mobilenet_v2', "
                                                       "{image_size}, {weights}))")},
                draw=draw_classes),
    TrustedPart("test_part_a_preprocessing", {"model": "model"}, check_preprocessing),
    TrustedPart("test_part_b_binary_model", {"binary_model": "model"}, check_binary_model),
    TrustedPart("test_part_c_compile", {"model": "model", "binary_model": "model"},
                check_compile, probes={"compile_probe": COMPILE_PROBE}, draw=draw_compile),
]
