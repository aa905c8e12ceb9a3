"""Image files and folders the tests write: solid-colour images, class folders, flower archives."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np


def write_image(path: Path, color: tuple[int, int, int], size: int = 12,
                fmt: str | None = None) -> Path:
    """Save a small solid-colour RGB image (format from the suffix unless ``fmt`` is given)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path, format=fmt)
    return path


def make_image_folder(root: Path, classes: dict[str, int]) -> Path:
    """A folder with one sub-folder per class, each with ``n`` distinct-coloured images."""
    rng = np.random.default_rng(0)
    for index, (name, count) in enumerate(classes.items()):
        for i in range(count):
            color = (40 * index % 256, int(rng.integers(0, 256)), 10 * i % 256)
            write_image(root / name / f"{name}_{i}.{'jpg' if i % 2 else 'png'}", color)
    return root


def build_flowers_archive(folder: Path, classes: dict[str, int] | None = None
                          ) -> tuple[Path, str]:
    """A small ``flower_photos.tgz`` (``flower_photos/<class>/*.jpg``) and its SHA-256."""
    classes = classes or {"daisy": 5, "roses": 5, "tulips": 5}
    source = make_image_folder(folder / "src" / "flower_photos", classes)
    archive = folder / "flower_photos.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="flower_photos")
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()
