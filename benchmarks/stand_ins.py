"""Stand-ins for what the `full` profile downloads, for rehearsing it offline.

- ImageNet weights: for each base the course loads, a file of random weights of the same
  architecture, saved in the legacy HDF5 layout Keras loads, at the name Keras downloads it
  to (``<KERAS_HOME>/models/``). Each BatchNormalization's statistics come from one batch of
  the stand-in photos, so that the random base gives features of order 1.
- The flower photos: 3,670 synthetic JPEGs in the real class folders and counts, fetched by
  ``ftcourse.data.fetch_flowers`` from a ``file://`` archive with that archive's own SHA-256.
- Keras checks some weight files against the real file's hash (ResNet50, VGG16,
  InceptionV3) and would download them again. :func:`hooked_python` makes a Python that
  accepts the stand-ins there, matched by their SHA-256, and nothing else; only the
  processes a rehearsal starts run it (grading kernels included: they run the Python that
  started ``ftcourse grade``).
"""

from __future__ import annotations

import hashlib
import json
import site
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The flower photos' classes and counts (tf_flowers), and their sizes, roughly.
FLOWER_COUNTS = {"daisy": 633, "dandelion": 898, "roses": 641, "sunflowers": 699, "tulips": 799}
WIDTHS, HEIGHTS = (320, 500), (240, 375)
# Each class's mean colour (RGB): the stand-in photos are learnable, not just noise.
CLASS_COLOURS = ((230, 230, 210), (240, 200, 40), (200, 40, 60), (250, 170, 20), (220, 90, 160))
HOOK_MODULE = "_ftcourse_stand_in_hook"


@dataclass(frozen=True)
class WeightFile:
    """One file Keras downloads for ``arch`` at ``image_size`` (``include_top=False``)."""

    arch: str
    image_size: int
    name: str
    hashed: bool  # Keras checks it against the real file's hash


class _Asked(Exception):
    """Raised in place of a download: carries what Keras asked for."""


def keras_weight_file(arch: str, image_size: int) -> WeightFile:
    """The file name Keras would download ``arch``'s ImageNet weights to (nothing is fetched)."""
    from keras.src.utils import file_utils

    from ftcourse.models import get_architecture

    def ask(fname: str, origin: str = "", *args: object, **kwargs: object) -> str:
        raise _Asked(fname, kwargs.get("file_hash") is not None)

    real = file_utils.get_file
    file_utils.get_file = ask
    try:
        get_architecture(arch).constructor(include_top=False, weights="imagenet",
                                           input_shape=(image_size, image_size, 3))
    except _Asked as asked:
        name, hashed = asked.args
        return WeightFile(arch, image_size, name, hashed)
    finally:
        file_utils.get_file = real
    raise RuntimeError(f"Keras did not ask for a weights file for {arch} at {image_size}")


def write_weights(keras_home: Path, wanted: WeightFile, photos: np.ndarray) -> Path:
    """Random weights of ``wanted``'s architecture, BatchNorm set from ``photos``, at its name."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from ftcourse.models import get_architecture

    spec = get_architecture(wanted.arch)
    base = spec.constructor(include_top=False, weights=None,
                            input_shape=(wanted.image_size, wanted.image_size, 3))
    images = keras.ops.image.resize(photos, (wanted.image_size, wanted.image_size))
    _set_batchnorm_statistics(base, spec.preprocess_input(images))
    path = keras_home / "models" / wanted.name
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, base)
    return path


def _set_batchnorm_statistics(base, images) -> None:
    """Each BatchNormalization's moving mean and variance from one batch (momentum 0)."""
    import keras

    layers = [layer for layer in base.layers
              if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    base(images, training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


def make_flower_photos(root: Path, counts: dict[str, int] | None = None, seed: int = 0
                       ) -> Path:
    """``root/flower_photos/<class>/*.jpg``: sizes 320x240 to 500x375, a colour per class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index, (name, count) in enumerate((counts or FLOWER_COUNTS).items()):
        folder = root / "flower_photos" / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array(CLASS_COLOURS[index % len(CLASS_COLOURS)], dtype=np.float32)
        for number in range(count):
            width, height = (int(rng.integers(low, high + 1)) for low, high in (WIDTHS, HEIGHTS))
            coarse = colour + rng.normal(0, 45, (height // 16, width // 16, 3))
            pixels = np.clip(coarse, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).resize((width, height), Image.BILINEAR).save(
                folder / f"{name}_{number:04d}.jpg", quality=85)
    return root / "flower_photos"


def flower_archive(photos: Path, target: Path) -> tuple[Path, str]:
    """``photos`` packed as ``flower_photos.tgz`` (as the real download is) and its SHA-256."""
    with tarfile.open(target, "w:gz") as tar:
        tar.add(photos, arcname="flower_photos")
    return target, sha256(target)


def sample_photos(photos: Path, count: int = 32) -> np.ndarray:
    """``count`` stand-in photos (every class), resized to 160x160, as a float array."""
    from PIL import Image

    files = sorted(photos.glob("*/*.jpg"))
    chosen = [files[i] for i in np.linspace(0, len(files) - 1, count).astype(int)]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((160, 160)), "float32")
                     for f in chosen])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


HOOK_SOURCE = '''"""Written by benchmarks/stand_ins.py for one rehearsal: Keras' file-hash
check accepts the stand-in weight files listed in {manifest!r} (matched by SHA-256), and
nothing else."""
import hashlib, importlib.abc, importlib.machinery, json, sys

_STAND_INS = set(json.load(open({manifest!r}))["sha256"])


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _patch(module):
    real = module.validate_file

    def validate_file(fpath, file_hash, *args, **kwargs):
        return _sha256(fpath) in _STAND_INS or real(fpath, file_hash, *args, **kwargs)

    module.validate_file = validate_file


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "keras.src.utils.file_utils":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''


def hooked_python(folder: Path, stand_ins: Iterable[Path]) -> Path:
    """A Python (a virtual environment over this one's packages) that accepts ``stand_ins``.

    Its ``site-packages`` holds this environment's packages (by ``site.addsitedir``, so the
    editable ``ftcourse`` install is seen too) and the hook module, loaded at start-up.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    packages = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    manifest = folder / "stand_ins.json"
    manifest.write_text(json.dumps({"sha256": sorted({sha256(p) for p in stand_ins})}) + "\n")
    (packages / f"{HOOK_MODULE}.py").write_text(HOOK_SOURCE.format(manifest=str(manifest)))
    # .pth files run in name order: this environment's packages first, then the hook.
    lines = "".join(f"import site; site.addsitedir({path!r})\n"
                    for path in site.getsitepackages())
    (packages / "a_course_packages.pth").write_text(lines)
    (packages / "b_stand_in_hook.pth").write_text(f"import {HOOK_MODULE}\n")
    return python
