"""Trusted verdicts: hand-over cell, safe loading, and judging in a separate process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from ftcourse.grading import verdicts
from ftcourse.grading.course import TRUSTED_CHECKS_FILE, read_parts
from ftcourse.grading.verdicts import (
    TrustedPart,
    Verdict,
    export_source,
    judge,
    judge_part,
    load_artifact,
)

CHECKS = textwrap.dedent('''
    import numpy as np
    from ftcourse.grading.verdicts import TrustedPart

    def check_model(values):
        model = values["model"]
        assert model.outputs[0].shape[-1] == 3, "the model needs 3 outputs"

    def check_rate(values):
        assert values["best_rate"] == 0.01, f"best_rate is {values['best_rate']}, not 0.01"

    PARTS = [
        TrustedPart("test_model", {"model": "model"}, check_model),
        TrustedPart("test_rate", {"best_rate": "json", "curve": "array"}, check_rate),
    ]
''')


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))


def _export(folder: Path, namespace: dict, checks_file: Path) -> None:
    from ftcourse.grading.verdicts import load_trusted_parts

    exec(export_source(load_trusted_parts(checks_file), folder), namespace)


@pytest.fixture
def checks_file(tmp_path: Path) -> Path:
    path = tmp_path / "trusted_checks.py"
    path.write_text(CHECKS)
    return path


def test_an_honest_result_passes_in_a_separate_process(tmp_path, tiny_model, checks_file):
    artifacts = tmp_path / "artifacts"
    _export(artifacts, {"model": tiny_model, "best_rate": 0.01, "curve": [0.1, 0.5]}, checks_file)
    assert sorted(p.name for p in artifacts.iterdir()) == [
        "best_rate.json", "curve.npy", "model.keras"]
    verdicts = judge(checks_file, artifacts)
    assert verdicts["test_model"] == Verdict(1.0, "passed the trusted checks")
    assert verdicts["test_rate"].fraction == 1.0


def test_a_wrong_or_missing_result_scores_zero_with_the_reason(tmp_path, checks_file):
    artifacts = tmp_path / "artifacts"
    _export(artifacts, {"best_rate": 0.5}, checks_file)  # no model, no curve
    verdicts = judge(checks_file, artifacts)
    assert verdicts["test_model"].fraction == 0.0
    assert "`model` was not handed over" in verdicts["test_model"].reason
    assert verdicts["test_rate"].fraction == 0.0


def test_an_object_that_lies_about_equality_becomes_plain_data(tmp_path, checks_file):
    class AlwaysEqual(float):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = float.__hash__

    artifacts = tmp_path / "artifacts"
    _export(artifacts, {"best_rate": AlwaysEqual(0.5), "curve": [1.0]}, checks_file)
    part = TrustedPart("test_rate", {"best_rate": "json", "curve": "array"},
                       lambda values: None)
    assert judge_part(part, artifacts).fraction == 1.0  # loads fine ...
    assert judge(checks_file, artifacts)["test_rate"].fraction == 0.0  # ... and is just 0.5


def test_pickled_arrays_and_lambda_models_are_refused(tmp_path):
    np.save(tmp_path / "curve.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        load_artifact(tmp_path, "curve", "array")
    inputs = keras.Input((2,))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    lambda_model.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match=r"(?i)unsafe|lambda"):
        load_artifact(tmp_path, "model", "model")


def test_only_the_listed_parts_are_judged_and_each_value_is_loaded_once(
        tmp_path, tiny_model, checks_file, monkeypatch, capsys):
    import json

    from ftcourse.grading import verdicts

    artifacts = tmp_path / "artifacts"
    _export(artifacts, {"model": tiny_model, "best_rate": 0.01, "curve": [0.1]}, checks_file)
    loads = []
    real_load = verdicts.load_artifact
    monkeypatch.setattr(verdicts, "load_artifact",
                        lambda folder, name, kind: loads.append(name) or real_load(
                            folder, name, kind))
    assert verdicts.main([str(checks_file), str(artifacts), "{}", '["test_rate"]']) == 0
    assert json.loads(capsys.readouterr().out) == {
        "test_rate": [1.0, "passed the trusted checks"]}
    assert sorted(loads) == ["best_rate", "curve"]  # the model was never loaded

    loaded: dict = {}
    twice = TrustedPart("test_twice", {"model": "model"}, lambda values: None)
    for _ in range(2):
        assert judge_part(twice, artifacts, loaded=loaded).fraction == 1.0
    assert loads.count("model") == 1


REPO = Path(__file__).resolve().parents[2]
CHECKED = sorted(p.parent.name for p in (REPO / "solutions").glob("*/trusted_checks.py"))


@pytest.mark.skipif(not CHECKED, reason="no assignments in solutions/ yet")
def test_every_assignment_has_trusted_checks_for_each_part() -> None:
    assert sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")) == CHECKED
    for name in CHECKED:
        folder = REPO / "solutions" / name
        parts = verdicts.load_trusted_parts(folder / TRUSTED_CHECKS_FILE)
        notebook = next(folder.glob("*.ipynb"))
        assert [p.grade_id for p in parts] == [p.grade_id for p in read_parts(notebook)]


def test_probes_draw_fresh_values_into_the_handover_cell(tmp_path: Path) -> None:
    part = verdicts.TrustedPart("p", {"x": "json"}, lambda values: None,
                                probes={"y": verdicts.Probe("json", "twice({n})")},
                                draw=lambda rng: {"n": rng.randint(0, 10**9)})
    first, second = verdicts.draw_values([part]), verdicts.draw_values([part])
    assert first != second
    namespace = {"x": 3, "twice": lambda n: 2 * n}
    exec(verdicts.export_source([part], tmp_path, first), namespace)
    assert (tmp_path / "y.json").read_text() == str(2 * first["p"]["n"])


def test_a_probe_runs_its_setup_in_a_scope_of_its_own(tmp_path: Path) -> None:
    probe = verdicts.Probe("json", "[box, double(box[0])]",
                           setup=("box = [{n}]", "box.append(double({n}))"))
    part = TrustedPart("p", {}, lambda values: None, probes={"y": probe},
                       draw=lambda rng: {"n": 4})
    namespace = {"double": lambda n: 2 * n}
    exec(export_source([part], tmp_path, verdicts.draw_values([part])), namespace)
    assert (tmp_path / "y.json").read_text() == "[[4, 8], 8]"
    assert "box" not in namespace
