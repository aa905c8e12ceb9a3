"""Shared fixtures: the offline `ci` profile, a private Keras cache, no network, image folders."""

from __future__ import annotations

import io
import os
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_files import build_flowers_archive, make_image_folder

# Tests run in the small offline profile unless the caller chose one; tests that need
# another profile use monkeypatch.setenv / delenv.
os.environ.setdefault("FTCOURSE_PROFILE", "ci")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The small courses that the grading tests grade are data, not notebooks to run (nbval).
collect_ignore_glob = ["courses/*"]


@pytest.fixture(scope="session", autouse=True)
def ci_bases() -> None:
    """The ci profile's pre-trained bases in the real Keras cache, built once if missing.

    `ftcourse fetch --profile ci` builds them ahead of the suite; grading kernels read them
    from that cache and cannot build them themselves.
    """
    from ftcourse.config import get_config
    from ftcourse.pretrain import RECIPES, ensure_pretrained

    for arch in RECIPES:
        ensure_pretrained(arch, get_config("ci").image_size)


@pytest.fixture
def eager() -> Iterator[None]:
    """TensorFlow functions run eagerly during the test.

    Tracing the training step of a fresh MobileNetV2 costs 20-40 s of CPU here, and a test that
    trains a few steps to check a helper's bookkeeping pays it for nothing. Tests that use this
    fixture check results that do not depend on graph mode; graph mode, what students run, is
    what every lesson and graded notebook of the suite runs in, and the tests about compiled
    training functions (a missing recompile, the fast path, the benchmarks) keep it.
    """
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache for this test: ``$KERAS_HOME`` and Keras's own copy of it.

    Keras reads ``KERAS_HOME`` once, on import, so the test also points Keras's config at it.
    """
    from keras.src.backend import config

    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    return home


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keras downloads fail at once (as without a network); ``file://`` URLs still work.

    Returns the list of URLs that were attempted.
    """
    from keras.src.utils import file_utils

    attempted: list[str] = []
    real_urlretrieve = file_utils.urlretrieve

    def urlretrieve(url: str, *args, **kwargs):
        attempted.append(url)
        if url.startswith("file://"):
            return real_urlretrieve(url, *args, **kwargs)
        raise urllib.error.URLError("no network in the test suite")

    monkeypatch.setattr(file_utils, "urlretrieve", urlretrieve)
    return attempted


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Two classes of six small images each."""
    return make_image_folder(tmp_path / "pictures", {"cats": 6, "dogs": 6})


@pytest.fixture
def flowers_archive(tmp_path: Path) -> tuple[Path, str]:
    return build_flowers_archive(tmp_path / "mirror")


@pytest.fixture
def tiny_png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def no_open_figures() -> Iterator[None]:
    """Fail the test if it leaves pyplot figures open."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item (``rep_call``): fixtures that act on a failure
    (the browser test's screenshots) read it."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
