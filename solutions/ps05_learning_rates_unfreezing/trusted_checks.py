"""Trusted checks for ps05, run by the grader outside the student's kernel (never released)."""

import math

from ftcourse import checks, get_config
from ftcourse.grading import Probe, TrustedPart

cfg = get_config()
RATES = [1e-4, 1e-3, 1e-2]

# A new classifier, as the probe's ``model``, compiled for the head phase.
FRESH_MODEL = ("model = ftcourse.build_model('mobilenet_v2', {num_classes}, {image_size}, "
               "{weights})", "ftcourse.compile_model(model, 1e-3)")


def draw_unfreeze(rng):
    return {"n": rng.randint(3, 40), "num_classes": rng.randint(2, 6),
            "learning_rate": round(10 ** rng.uniform(-6, -4), 10),
            "image_size": cfg.image_size, "weights": cfg.weights}


def draw_history(rng):
    return {"done": rng.randint(1, 9), "more": rng.randint(1, 9)}


def check_lr_sweep(values):
    curves = {float(rate): losses for rate, losses in values["sweep"].items()}
    assert sorted(curves) == RATES, f"sweep these rates: {RATES}, not {sorted(curves)}"
    for rate, losses in curves.items():
        assert len(losses) == cfg.epochs, f"train {cfg.epochs} epochs per rate ({rate:g})"
        assert all(isinstance(v, float) and math.isfinite(v) for v in losses), "bad val_loss"
    best = min(curves, key=lambda rate: curves[rate][-1])
    best_rate = values["best_rate"]
    assert isinstance(best_rate, float) and math.isclose(best_rate, best), (
        f"best_rate is {best_rate!r}; the lowest final val_loss is at {best:g}")


def check_unfreeze_top(values):
    checks.check_top_unfrozen(values["unfreeze_probe"], values["drawn"]["n"])
    checks.check_batchnorm_frozen(values["unfreeze_probe"])


def check_recompile(values):
    model, drawn = values["model"], values["drawn"]
    checks.check_loss_matches_output(model)
    checks.check_top_unfrozen(model, 20)
    probe = values["recompile_probe"]
    checks.check_learning_rate(probe, drawn["learning_rate"])
    checks.check_loss_matches_output(probe)
    checks.check_top_unfrozen(probe, drawn["n"])


def check_initial_epoch(values):
    done, more = values["drawn"]["done"], values["drawn"]["more"]
    assert values["epochs_probe"] == [done, done + more], (
        f"continue_from gives {values['epochs_probe']} after {done} epochs, expected "
        f"{[done, done + more]}")


SWEEP = ("{str(float(rate)): [float(v) for v in history.history['val_loss']] "
         "for rate, history in results.items()}")
PARTS = [
    TrustedPart("test_part_a_lr_sweep", {"best_rate": "json"}, check_lr_sweep,
                probes={"sweep": Probe("json", SWEEP.replace("{", "{{").replace("}", "}}"))}),
    TrustedPart("test_part_b_unfreeze_top", {}, check_unfreeze_top,
                probes={"unfreeze_probe": Probe("model", "model", setup=(
                    *FRESH_MODEL, "unfreeze_top_layers(model, {n})"))},
                draw=draw_unfreeze),
    TrustedPart("test_part_c_recompile", {"model": "model"}, check_recompile,
                probes={"recompile_probe": Probe("model", "model", setup=(
                    *FRESH_MODEL, "prepare_fine_tuning(model, {n}, {learning_rate})"))},
                draw=draw_unfreeze),
    TrustedPart("test_part_d_initial_epoch", {}, check_initial_epoch,
                probes={"epochs_probe": Probe("json", "[int(v) for v in continue_from(history, "
                                                      "{more})]", setup=(
                    "history = keras.callbacks.History()",
                    "history.epoch = list(range({done}))"))},
                draw=draw_history),
]
