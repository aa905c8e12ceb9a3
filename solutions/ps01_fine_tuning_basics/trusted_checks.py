"""Trusted checks for ps01, run by the grader outside the student's kernel (never released)."""

import math

from ftcourse import checks, get_config
from ftcourse.grading import Probe, TrustedPart

cfg = get_config()


def draw_layers(rng):
    return {"features": rng.randint(3, 9), "units": rng.randint(2, 7), "frozen": rng.randint(2, 5)}


# A Dense -> BatchNormalization -> frozen Dense stack whose sizes the grader draws.
PROBE_COUNT = Probe("json", "[int(v) for v in count_parameters(keras.Sequential(["
               "keras.Input(({features},)), keras.layers.Dense({units}), "
               "keras.layers.BatchNormalization(), "
               "keras.layers.Dense({frozen}, trainable=False)]))]")


def check_count_parameters(values):
    assert values["count_model"] == [1280 * 3 + 3, 2257984], (
        f"count_parameters(model) gives {values['count_model']}")
    d = values["drawn"]
    units = d["units"]
    trainable = d["features"] * units + units + 2 * units
    frozen = 2 * units + units * d["frozen"] + d["frozen"]
    assert values["count_probe"] == [trainable, frozen], (
        f"on a small model the counts are {values['count_probe']}, expected "
        f"{[trainable, frozen]}: count trainable_weights and non_trainable_weights")


def check_choose_approach(values):
    expected = {"a": "feature extraction", "b": "fine-tuning", "c": "feature extraction",
                "d": "fine-tuning"}
    answers = values["answers"]
    assert isinstance(answers, dict), "answers should be a dict"
    wrong = sorted(k for k, v in expected.items() if answers.get(k) != v)
    assert not wrong, f"situations answered wrongly: {', '.join(wrong)}"


def check_base_output_shape(values):
    base_model = values["base_model"]
    checks.check_feature_extractor(base_model, cfg.image_size)
    side = cfg.image_size // 32
    assert values["base_output_shape"] == [side, side, 1280], (
        f"base_output_shape is {values['base_output_shape']}, expected {(side, side, 1280)}")
    features = base_model(checks.probe_batch(base_model, n=2))
    assert tuple(features.shape) == (2, side, side, 1280), "the base gives the wrong shape"


def check_knob(values):
    assert values["knob"] == "learning_rate", f"knob is {values['knob']!r}"
    factor = values["factor"]
    assert isinstance(factor, (int, float)), "factor should be a number"
    expected = cfg.learning_rate / cfg.fine_tune_learning_rate
    assert math.isclose(factor, expected, rel_tol=1e-6), f"factor is {factor}, not {expected}"


PARTS = [
    TrustedPart("test_part_a_count_parameters", {}, check_count_parameters,
                probes={"count_model": Probe("json", "[int(v) for v in count_parameters(model)]"),
                        "count_probe": PROBE_COUNT}, draw=draw_layers),
    TrustedPart("test_part_b_choose_approach", {"answers": "json"}, check_choose_approach),
    TrustedPart("test_part_c_base_output_shape",
                {"base_model": "model", "base_output_shape": "json"}, check_base_output_shape),
    TrustedPart("test_part_d_knob", {"knob": "json", "factor": "json"}, check_knob),
]
