"""Datasets as batched ``tf.data`` pipelines of raw 0-255 pixels with integer labels.

Introduced in lesson 02 (``digits``, ``flowers``) and lesson 06 (``folder:PATH``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from ftcourse.cache import keras_home
from ftcourse.errors import OFFLINE_HINT, CourseError, DownloadError
from ftcourse.image_check import readable_images

FLOWERS_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
)
FLOWERS_SHA256 = "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}
SOURCES = ("digits", "digits:FIRST-LAST", "flowers", "cifar10", "folder:PATH")
SPLITS = ("train", "val", "test")


@dataclass
class ImageData:
    """Train/val/test pipelines of ``(images, labels)`` batches, plus what describes them.

    Images are float32 in 0-255 (raw pixels: each model preprocesses inside itself);
    labels are integer class indices.
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list[str]
    counts: dict[str, int]
    image_size: int
    skipped: list[Path] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> tf.data.Dataset:
        """The batched pipeline for ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise CourseError(f"Unknown split {name!r}; choose one of {list(SPLITS)}.")
        return getattr(self, name)

    def take_images(self, n: int = 9, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` images (0-255 floats) and labels of a split, for plotting."""
        images, labels = [], []
        for batch_images, batch_labels in self.split(split):
            images.append(batch_images.numpy())
            labels.append(batch_labels.numpy())
            if sum(len(b) for b in labels) >= n:
                break
        if not images:  # an empty split
            size = self.image_size
            return np.zeros((0, size, size, 3), "float32"), np.zeros(0, "int32")
        return np.concatenate(images)[:n], np.concatenate(labels)[:n]

    def arrays(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """Every image and label of a split as numpy arrays (small datasets only)."""
        return self.take_images(self.counts[split], split)


@dataclass(frozen=True)
class FolderScan:
    """What a folder of class sub-folders holds: readable images, labels, skipped files."""

    class_names: list[str]
    paths: list[str]
    labels: np.ndarray
    skipped: list[Path]


def load_dataset(
    name: str,
    image_size: int,
    batch_size: int = 32,
    limit: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 42,
    cache_dir: str | None = None,
) -> ImageData:
    """Load a dataset by name: ``digits``, ``flowers``, ``cifar10`` or ``folder:PATH``.

    ``limit`` keeps at most that many images in total (a class-balanced subset).
    Introduced in lesson 02.
    """
    if image_size < 8:
        raise CourseError(f"image_size must be at least 8 pixels, got {image_size}.")
    if not (val_fraction >= 0 and test_fraction >= 0 and val_fraction + test_fraction < 1):
        raise CourseError("val_fraction and test_fraction must be >= 0 and sum to less than 1, "
                          f"got {val_fraction} and {test_fraction}.")
    if name.startswith("folder:"):
        return _load_folder(Path(name.removeprefix("folder:")), image_size, batch_size,
                            limit, val_fraction, test_fraction, seed)
    if name == "flowers":
        folder = fetch_flowers(cache_dir=cache_dir)
        return _load_folder(folder, image_size, batch_size, limit, val_fraction,
                            test_fraction, seed)
    if name == "digits" or name.startswith("digits:"):
        x, y, class_names = _digits_arrays(name.removeprefix("digits").removeprefix(":"))
    elif name == "cifar10":
        x, y, class_names = _cifar10_arrays()
    else:
        raise CourseError(f"Unknown dataset {name!r}. Choose one of {list(SOURCES)}.")
    keep = _subset(y, limit, seed)
    parts = _split_indices(y[keep], val_fraction, test_fraction, seed)
    pipelines = {
        split: _pipeline(
            tf.data.Dataset.from_tensor_slices((x[keep][idx], y[keep][idx])),
            image_size, batch_size, shuffle=split == "train", seed=seed)
        for split, idx in parts.items()
    }
    counts = {split: len(idx) for split, idx in parts.items()}
    return ImageData(**pipelines, class_names=class_names, counts=counts, image_size=image_size)


def fetch_flowers(
    origin: str | None = None,
    file_hash: str | None = None,
    cache_dir: str | None = None,
) -> Path:
    """Download (once) and extract the 5-class flower photos; return the class folder's parent.

    ``origin`` defaults to ``FLOWERS_URL``; the archive is checked against ``file_hash``
    (default ``FLOWERS_SHA256``: pass a mirror's own SHA-256 if it is a different file).
    Introduced in lesson 02.
    """
    import keras

    origin, file_hash = origin or FLOWERS_URL, file_hash or FLOWERS_SHA256
    if cache_dir is not None:  # Keras would silently use /tmp/.keras for a missing folder
        Path(cache_dir).expanduser().mkdir(parents=True, exist_ok=True)
    extracted = keras_home(cache_dir) / "datasets" / "flower_photos"
    if (extracted / "flower_photos").is_dir() and (extracted.parent / "flower_photos_archive"
                                                   ).is_file():
        return extracted / "flower_photos"  # already fetched: skip re-hashing and re-extracting
    try:
        extracted = keras.utils.get_file(
            fname="flower_photos", origin=origin, file_hash=file_hash,
            extract=True, cache_dir=cache_dir,
        )
    except Exception as error:
        raise DownloadError(
            f"Could not download the flower photos from {origin} ({error}). {OFFLINE_HINT}"
        ) from None
    root = Path(extracted)
    nested = root / "flower_photos"
    return nested if nested.is_dir() else root


def scan_image_folder(folder: Path) -> FolderScan:
    """List a folder's class sub-folders and their readable images; skip and count bad files
    (each file decoded once, then remembered: :mod:`ftcourse.image_check`).

    Introduced in lesson 06.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CourseError(
            f"Image folder {folder} does not exist. Make a folder with one sub-folder per "
            "class (e.g. cats/, dogs/) holding that class's images."
        )
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise CourseError(
            f"{folder} has {len(class_dirs)} class sub-folder(s); fine-tuning a classifier "
            "needs at least 2, one per class."
        )
    paths, labels, skipped = [], [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                       and not any(part.startswith(".") for part in p.relative_to(class_dir).parts))
        good = readable_images(class_dir, files)
        skipped += sorted(set(files) - set(good))
        if not good:
            raise CourseError(
                f"Class folder {class_dir} has no readable images "
                f"(looked for {sorted(IMAGE_EXTENSIONS)}). Add images or remove the folder."
            )
        paths += [str(p) for p in good]
        labels += [label] * len(good)
    return FolderScan([d.name for d in class_dirs], paths, np.array(labels, "int32"), skipped)


def _load_folder(folder: Path, image_size: int, batch_size: int, limit: int | None,
                 val_fraction: float, test_fraction: float, seed: int) -> ImageData:
    scan = scan_image_folder(folder)
    if scan.skipped:
        shown = ", ".join(str(p) for p in scan.skipped[:5])
        print(f"Skipped {len(scan.skipped)} unreadable image file(s): {shown}")
    keep = _subset(scan.labels, limit, seed)
    paths, labels = np.array(scan.paths)[keep], scan.labels[keep]
    parts = _split_indices(labels, val_fraction, test_fraction, seed)
    pipelines = {
        split: _pipeline(
            tf.data.Dataset.from_tensor_slices((paths[idx], labels[idx])),
            image_size, batch_size, shuffle=split == "train", seed=seed, decode=True)
        for split, idx in parts.items()
    }
    counts = {split: len(idx) for split, idx in parts.items()}
    return ImageData(**pipelines, class_names=scan.class_names, counts=counts,
                     image_size=image_size, skipped=scan.skipped)


def _read_image(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return image, label


def _pipeline(ds: tf.data.Dataset, image_size: int, batch_size: int, shuffle: bool,
              seed: int, decode: bool = False) -> tf.data.Dataset:
    """Resized ``(image, label)`` batches; files (``decode``) are decoded and resized in the
    first epoch only and kept in memory as 8-bit pixels (about 77 KB an image at 160x160)."""

    def resize(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.image.resize(tf.cast(image, tf.float32), (image_size, image_size))
        return tf.clip_by_value(image, 0.0, 255.0), tf.cast(label, tf.int32)

    def to_uint8(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(tf.round(image), tf.uint8), label

    def to_float(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(image, tf.float32), label

    if decode:
        ds = ds.map(_read_image, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE).map(to_uint8).cache()
    if shuffle:  # the whole split, anew every epoch (after the cache, so the order changes)
        size = int(ds.cardinality())
        ds = ds.shuffle(max(size, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_float if decode else resize, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _digits_arrays(classes: str = "") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 8x8 digits as RGB 0-255; ``classes="5-9"`` keeps those digits only."""
    from sklearn.datasets import load_digits

    first, last = _digit_range(classes)
    digits = load_digits()
    keep = (digits.target >= first) & (digits.target <= last)
    gray = digits.images[keep].astype("float32") * (255.0 / 16.0)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    labels = (digits.target[keep] - first).astype("int32")
    return rgb, labels, [str(d) for d in range(first, last + 1)]


def _digit_range(classes: str) -> tuple[int, int]:
    if not classes:
        return 0, 9
    first, _, last = classes.partition("-")
    if not (first.isdigit() and last.isdigit() and 0 <= int(first) < int(last) <= 9):
        raise CourseError(f"Unknown digit range {classes!r}: write digits:FIRST-LAST with "
                          "0 <= FIRST < LAST <= 9, e.g. digits:5-9.")
    return int(first), int(last)


def _cifar10_arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:
        raise DownloadError(f"Could not download CIFAR-10 ({error}). {OFFLINE_HINT}") from None
    x = np.concatenate([x_train, x_test]).astype("float32")
    y = np.concatenate([y_train, y_test]).reshape(-1).astype("int32")
    return x, y, list(CIFAR10_CLASSES)


def _subset(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a class-balanced random subset of at most ``limit`` items (all if None)."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    if limit < 1:
        raise CourseError(f"limit must be a positive number of images, got {limit}.")
    order = np.random.default_rng(seed).permutation(len(labels))
    # Round-robin over classes so every class keeps its share of the subset.
    rank = np.zeros(len(labels), dtype=int)
    for cls in np.unique(labels):
        members = order[labels[order] == cls]
        rank[members] = np.arange(len(members))
    chosen = order[np.argsort(rank[order], kind="stable")][:limit]
    return np.sort(chosen)


def _split_indices(labels: np.ndarray, val_fraction: float, test_fraction: float,
                   seed: int) -> dict[str, np.ndarray]:
    """A seeded per-class split; every class keeps at least one training image."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {split: [] for split in SPLITS}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = min(round(len(members) * test_fraction), len(members) - 1)
        n_val = min(round(len(members) * val_fraction), len(members) - 1 - n_test)
        parts["test"] += members[:n_test].tolist()
        parts["val"] += members[n_test:n_test + n_val].tolist()
        parts["train"] += members[n_test + n_val:].tolist()
    return {split: np.sort(np.array(idx, dtype=int)) for split, idx in parts.items()}
