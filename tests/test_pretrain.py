"""The ci profile's own pre-trained bases: source/target digits, caching, locking, transfer."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from ftcourse import pretrain
from ftcourse.config import get_config
from ftcourse.data import load_dataset
from ftcourse.errors import CourseError, DownloadError
from ftcourse.models import build_base, build_model
from ftcourse.training import extract_features, train_head_on_features

TINY = pretrain.PretrainRecipe(epochs=1, learning_rate=1e-3, batch_size=32, limit=40)


def test_source_and_target_digits_do_not_overlap() -> None:
    source = load_dataset(pretrain.SOURCE_DATASET, 32, limit=50)
    target = load_dataset(pretrain.TARGET_DATASET, 32, limit=50)
    assert source.class_names == ["0", "1", "2", "3", "4"]
    assert target.class_names == ["5", "6", "7", "8", "9"]
    labels = np.concatenate([y for _, y in target.train])
    assert set(labels.tolist()) == {0, 1, 2, 3, 4}  # re-numbered from 0


@pytest.mark.parametrize("bad", ["digits:9-5", "digits:3", "digits:a-b", "digits:0-10"])
def test_a_bad_digit_range_names_the_form(bad: str) -> None:
    with pytest.raises(CourseError, match="digits:FIRST-LAST"):
        load_dataset(bad, 32)


def test_the_ci_profile_fine_tunes_on_the_target_digits() -> None:
    cfg = get_config("ci")
    assert cfg.dataset == pretrain.TARGET_DATASET and cfg.weights == pretrain.SOURCE_WEIGHTS
    assert cfg.pretrained and get_config("full").pretrained


def test_a_changed_recipe_gets_its_own_file(keras_home: Path) -> None:
    path = pretrain.weights_path("mobilenet_v2", 32)
    assert path.parent == keras_home / "models"
    assert pretrain.weights_path("mobilenet_v2", 32, TINY) != path


def test_pretraining_is_cached(keras_home: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str], eager: None) -> None:
    path = pretrain.ensure_pretrained("mobilenet_v2", 32, TINY)
    assert path.is_file() and "Pre-training" in capsys.readouterr().out
    assert path.stat().st_mode & 0o444 == 0o444  # grading kernels (another user) read it
    base = build_base("mobilenet_v2", 32, weights=str(path))
    assert any(np.abs(w).sum() > 0 for w in base.get_weights())

    def never(*args: object) -> None:
        raise AssertionError("pre-trained again")

    monkeypatch.setattr(pretrain, "pretrain_base", never)
    assert pretrain.ensure_pretrained("mobilenet_v2", 32, TINY) == path
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix == ".h5") == [path.name]


def test_a_second_process_waits_for_the_first_build(keras_home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = pretrain.weights_path("vgg16", 32, TINY)
    path.parent.mkdir(parents=True)
    monkeypatch.setattr(pretrain, "pretrain_base", lambda *a: pytest.fail("built twice"))
    result: list[Path] = []
    with open(path.with_suffix(".lock"), "a") as lock:  # "the first build" holds the lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiter = threading.Thread(
            target=lambda: result.append(pretrain.ensure_pretrained("vgg16", 32, TINY)))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive() and not result  # it waits instead of building
        path.write_bytes(b"weights")  # the first build finishes
    waiter.join(timeout=30)
    assert result == [path]


def test_an_unwritable_cache_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("KERAS_HOME", str(blocker))
    with pytest.raises(DownloadError, match=r"ftcourse fetch --profile ci"):
        pretrain.ensure_pretrained("resnet50", 32, TINY)


def test_unknown_architecture() -> None:
    with pytest.raises(CourseError, match="known"):
        pretrain.ensure_pretrained("alexnet", 32)


def test_pretrained_base_beats_random_by_15_points() -> None:
    """A frozen-base head on the ci base vs the same head on random weights, same data."""
    cfg = get_config("ci")
    data = load_dataset(cfg.dataset, cfg.image_size, limit=cfg.limit, seed=cfg.seed)
    accuracy = {}
    for weights in (cfg.weights, None):
        keras.utils.set_random_seed(cfg.seed)
        model = build_model("mobilenet_v2", data.num_classes, cfg.image_size, weights=weights)
        train = extract_features(model, data.train, verbose=0)
        val = extract_features(model, data.val, verbose=0)
        history = train_head_on_features(model, train, val, epochs=5, verbose=0)
        accuracy[weights] = history.history["val_accuracy"][-1]
    assert accuracy[cfg.weights] >= accuracy[None] + 0.15, accuracy
