"""Profiles, overrides and ``setup()``."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import ftcourse
from ftcourse.config import PROFILE_ENV, PROFILES, CourseConfig, get_config, setup
from ftcourse.errors import CourseError


def test_both_profiles_exist_and_differ_where_it_matters() -> None:
    full, ci = PROFILES["full"], PROFILES["ci"]
    assert (full.dataset, full.weights, full.pretrained) == ("flowers", "imagenet", True)
    assert (ci.dataset, ci.weights, ci.pretrained) == ("digits:5-9", "digits0-4", True)
    assert ci.image_size < full.image_size
    assert ci.epochs < full.epochs
    assert ci.limit is not None and full.limit is None
    assert ci.fine_tune_learning_rate < ci.learning_rate


@pytest.mark.parametrize("name", ["full", "ci"])
def test_get_config_by_name(name: str) -> None:
    cfg = get_config(name)
    assert isinstance(cfg, CourseConfig)
    assert cfg == PROFILES[name]
    assert cfg.profile == name


@pytest.mark.parametrize("name", ["full", "ci"])
def test_profile_comes_from_the_environment(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, name)
    assert get_config().profile == name


def test_without_the_environment_variable_the_profile_is_full(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert get_config().profile == "full"


def test_an_explicit_profile_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, "full")
    assert get_config("ci").profile == "ci"


def test_overrides_replace_fields_and_leave_the_profile_alone() -> None:
    cfg = get_config("ci", epochs=5, batch_size=8, weights="imagenet")
    assert (cfg.epochs, cfg.batch_size, cfg.weights, cfg.pretrained) == (5, 8, "imagenet", True)
    assert cfg.image_size == PROFILES["ci"].image_size
    assert PROFILES["ci"].epochs == 2  # the shared profile is unchanged


def test_config_is_immutable() -> None:
    cfg = get_config("ci")
    with pytest.raises(AttributeError):
        cfg.epochs = 99  # type: ignore[misc]


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(CourseError, match=r"Unknown course profile 'fast'.*\['ci', 'full'\]"):
        get_config("fast")


def test_unknown_profile_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, "gpu")
    with pytest.raises(CourseError, match=r"'gpu'.*FTCOURSE_PROFILE=ci"):
        get_config()


def test_unknown_field_lists_the_known_ones() -> None:
    with pytest.raises(CourseError, match=r"Unknown config field\(s\) \['epoch'\].*'epochs'"):
        get_config("ci", epoch=3)


def test_course_error_is_a_value_error() -> None:
    assert issubclass(CourseError, ValueError)
    assert issubclass(ftcourse.DownloadError, CourseError)


def _random_draws() -> tuple[float, np.ndarray, np.ndarray]:
    return random.random(), np.random.rand(3), tf.random.uniform((3,)).numpy()


def test_setup_seeds_every_generator(capsys: pytest.CaptureFixture[str]) -> None:
    setup("ci")
    first = _random_draws()
    setup("ci")
    second = _random_draws()
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[2], second[2])
    setup("ci", seed=7)
    other = _random_draws()
    assert not np.array_equal(first[1], other[1])


def test_setup_prints_versions_devices_and_profile(capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    cfg = setup("ci", epochs=3)
    out = capsys.readouterr().out
    assert f"TensorFlow {tf.__version__}" in out
    assert f"Keras {keras.__version__}" in out
    assert "Devices: CPU" in out
    assert "Profile: ci" in out and "dataset: digits" in out and "epochs: 3+1" in out
    assert cfg == get_config("ci", epochs=3)


def test_setup_reads_the_environment(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PROFILE_ENV, "full")
    assert setup().profile == "full"
    assert "Profile: full" in capsys.readouterr().out


def test_setup_rejects_bad_input_before_printing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CourseError, match="Unknown course profile"):
        setup("nope")
    assert capsys.readouterr().out == ""


def test_importing_ftcourse_changes_no_global_state() -> None:
    """In a fresh interpreter: environment, Keras seed, RNG states, no figures."""
    script = textwrap.dedent("""
        import os, random
        import numpy as np
        import keras, matplotlib.pyplot, tensorflow as tf  # noqa: F401
        from keras.src.backend.common import global_state
        random.seed(1); np.random.seed(1)
        env = dict(os.environ)
        seed = global_state.get_global_attribute("global_random_seed")
        py_state, np_state = random.getstate(), np.random.get_state()[1].copy()
        import ftcourse
        for name in ftcourse.__all__:  # the helpers load on first use: load them all
            getattr(ftcourse, name)
        assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())
        assert global_state.get_global_attribute("global_random_seed") == seed
        assert random.getstate() == py_state
        assert (np.random.get_state()[1] == np_state).all()
        assert matplotlib.pyplot.get_fignums() == []
        print("unchanged")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unchanged" in result.stdout


def test_helpers_load_on_first_use_and_grading_tools_never_load_tensorflow() -> None:
    """The grader starts its tools for every submission: they must not pay for TensorFlow."""
    script = textwrap.dedent("""
        import sys
        import ftcourse, ftcourse.cli, ftcourse.grading
        import ftcourse.grading.engine, ftcourse.grading.sandbox, ftcourse.grading.worker
        from ftcourse.grading import GradingOptions, Probe, TrustedPart, grade_submissions
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        assert "build_model" in dir(ftcourse) and "training" in dir(ftcourse)
        assert ftcourse.build_model is ftcourse.models.build_model
        assert ftcourse.training.train is ftcourse.train
        try:
            ftcourse.no_such_helper
        except AttributeError as error:
            assert "no_such_helper" in str(error)
        print("lazy")
    """)
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "lazy" in result.stdout
