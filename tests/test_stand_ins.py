"""The rehearsal's stand-ins (benchmarks/stand_ins.py): Keras loads them as its own downloads,
and only a Python made for the rehearsal accepts one that Keras checks against a hash."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from benchmark_scripts import imported

from ftcourse.errors import DownloadError
from ftcourse.models import build_base, build_model, get_architecture
from ftcourse.training import get_base


@pytest.fixture(scope="module")
def stand_ins() -> Iterator[ModuleType]:
    yield from imported("stand_ins")


def photos(count: int = 4) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (count, 160, 160, 3)).astype("float32")


def test_stand_in_weights_load_through_build_model(stand_ins: ModuleType, keras_home: Path,
                                                   offline: list[str]) -> None:
    wanted = stand_ins.keras_weight_file("mobilenet_v2", 96)
    assert wanted.name == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    assert not wanted.hashed
    path = stand_ins.write_weights(keras_home, wanted, photos())
    assert path == keras_home / "models" / wanted.name

    model = build_model("mobilenet_v2", 3, 96)  # weights="imagenet": the cached file
    assert offline == [], "nothing is downloaded"
    saved = get_architecture("mobilenet_v2").constructor(include_top=False, weights=None,
                                                         input_shape=(96, 96, 3))
    saved.load_weights(path)
    loaded = get_base(model).get_weights()
    assert len(loaded) == len(saved.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(loaded, saved.get_weights(), strict=True))
    means = [layer.moving_mean.numpy() for layer in saved.layers if hasattr(layer, "moving_mean")]
    assert means and all(np.abs(mean).max() > 0 for mean in means), "BatchNorm set from photos"


HOOKED_CHECK = """
import sys
from keras.src.utils import file_utils
import ftcourse
base = ftcourse.build_base("vgg16", 32)
print("loaded", len(base.get_weights()))
print("stand-in accepted", file_utils.validate_file(sys.argv[1], "0" * 64))
print("other file accepted", file_utils.validate_file(sys.argv[2], "0" * 64))
"""


def test_only_the_hooked_python_accepts_a_hashed_stand_in(
        stand_ins: ModuleType, keras_home: Path, offline: list[str], tmp_path: Path) -> None:
    wanted = stand_ins.keras_weight_file("vgg16", 32)
    assert wanted.hashed, "Keras checks VGG16's file against the real one's hash"
    path = stand_ins.write_weights(keras_home, wanted, photos())

    python = stand_ins.hooked_python(tmp_path / "python", [path])
    other = tmp_path / "other.h5"
    other.write_bytes(b"not a stand-in")
    run = subprocess.run([str(python), "-c", HOOKED_CHECK, str(path), str(other)],
                         capture_output=True, text=True, timeout=300, check=False,
                         env={"KERAS_HOME": str(keras_home), "PATH": "/usr/bin:/bin",
                              "FTCOURSE_PROFILE": "full"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "loaded 26" in run.stdout
    assert "stand-in accepted True" in run.stdout
    assert "other file accepted False" in run.stdout

    # Any other process (this one) keeps the product's own check: it refuses the stand-in,
    # tries to download the real file (and Keras removes the one it found).
    with pytest.raises(DownloadError, match=r"ftcourse fetch"):
        build_base("vgg16", 32)
    assert offline, "Keras tried to download the real file"
