"""Datasets: digits, image folders, the flower photos download, CIFAR-10 offline."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from image_files import build_flowers_archive, make_image_folder, write_image

import ftcourse.data as data_module
from ftcourse.data import ImageData, fetch_flowers, load_dataset, scan_image_folder
from ftcourse.errors import CourseError, DownloadError

SIZE = 16


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_dataset("digits", SIZE, batch_size=32, limit=200)


# -- digits ---------------------------------------------------------------------------------


def test_digits_are_resized_rgb_pixels_in_0_255(digits: ImageData) -> None:
    images, labels = digits.take_images(40)
    assert images.shape == (40, SIZE, SIZE, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and set(labels) <= set(range(10))
    assert images.min() >= 0 and 200 < images.max() <= 255
    np.testing.assert_array_equal(images[..., 0], images[..., 2])  # grey copied to RGB


def test_digits_are_the_real_sklearn_images() -> None:
    from sklearn.datasets import load_digits

    data = load_dataset("digits", 8, limit=None, val_fraction=0.0, test_fraction=0.0)
    images, labels = data.arrays("train")
    assert data.counts == {"train": 1797, "val": 0, "test": 0}
    reference = load_digits()
    # At the native 8x8 size the pixels are sklearn's 0-16 values scaled to 0-255.
    candidates = images[labels == reference.target[0], :, :, 0]
    expected = reference.images[0] * 255 / 16
    assert any(np.allclose(c, expected, atol=1e-3) for c in candidates)
    np.testing.assert_array_equal(np.bincount(labels), np.bincount(reference.target))


def test_digits_counts_and_class_names(digits: ImageData) -> None:
    assert digits.class_names == [str(d) for d in range(10)]
    assert digits.num_classes == 10
    assert sum(digits.counts.values()) == 200
    assert digits.counts["train"] > digits.counts["val"] > digits.counts["test"] > 0
    for split in ("train", "val", "test"):
        assert len(digits.arrays(split)[1]) == digits.counts[split]


def test_limit_keeps_classes_balanced(digits: ImageData) -> None:
    labels = np.concatenate([digits.arrays(split)[1] for split in ("train", "val", "test")])
    per_class = np.bincount(labels, minlength=10)
    assert per_class.sum() == 200
    assert per_class.max() - per_class.min() <= 1, per_class


def test_every_split_holds_every_class(digits: ImageData) -> None:
    for split in ("train", "val", "test"):
        assert set(digits.arrays(split)[1]) == set(range(10)), split


def test_split_indices_are_disjoint_and_cover_everything() -> None:
    labels = np.repeat(np.arange(4), 25)
    parts = data_module._split_indices(labels, 0.2, 0.1, seed=3)
    joined = np.concatenate(list(parts.values()))
    assert len(joined) == len(set(joined)) == 100
    assert [len(parts[s]) for s in ("train", "val", "test")] == [72, 20, 8]


def test_splits_are_seeded(digits: ImageData) -> None:
    again = load_dataset("digits", SIZE, limit=200)
    other = load_dataset("digits", SIZE, limit=200, seed=0)
    for split in ("val", "test"):
        np.testing.assert_array_equal(again.arrays(split)[0], digits.arrays(split)[0])
    assert not np.array_equal(other.arrays("val")[0], digits.arrays("val")[0])


def test_train_split_is_reshuffled_but_holds_the_same_images(digits: ImageData) -> None:
    first, second = digits.arrays("train")[0], digits.arrays("train")[0]
    assert not np.array_equal(first, second)
    key = lambda x: np.sort(x.reshape(len(x), -1).sum(axis=1))  # noqa: E731
    np.testing.assert_allclose(key(first), key(second), rtol=1e-5)


def test_take_images_and_batches(digits: ImageData) -> None:
    images, labels = digits.take_images(5, "val")
    assert images.shape == (5, SIZE, SIZE, 3) and labels.shape == (5,)
    batch_images, _ = next(iter(digits.train))
    assert batch_images.shape == (32, SIZE, SIZE, 3)


def test_an_empty_split_gives_empty_arrays() -> None:
    data = load_dataset("digits", SIZE, limit=50, test_fraction=0.0)
    images, labels = data.arrays("test")
    assert images.shape == (0, SIZE, SIZE, 3) and labels.shape == (0,)


def test_unknown_split() -> None:
    data = load_dataset("digits", SIZE, limit=20)
    with pytest.raises(CourseError, match=r"Unknown split 'valid'.*'val'"):
        data.take_images(3, "valid")


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(CourseError, match=r"Unknown dataset 'mnist'.*digits.*flowers.*cifar10"
                                          r".*folder:PATH"):
        load_dataset("mnist", SIZE)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image_size": 4}, "image_size must be at least 8"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "sum to less than 1"),
    ({"val_fraction": -0.1}, "must be >= 0"),
    ({"limit": 0}, "limit must be a positive number"),
])
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"image_size": SIZE, **kwargs}
    with pytest.raises(CourseError, match=message):
        load_dataset("digits", **args)


def test_cifar10_offline_is_a_download_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network():
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", no_network)
    with pytest.raises(DownloadError, match=r"CIFAR-10.*no network.*ftcourse fetch.*"
                                            r"FTCOURSE_PROFILE=ci"):
        load_dataset("cifar10", 32)


# -- folder:PATH ----------------------------------------------------------------------------


def test_folder_dataset(image_folder: Path) -> None:
    data = load_dataset(f"folder:{image_folder}", SIZE, batch_size=4, val_fraction=0.2,
                        test_fraction=0.2)
    assert data.class_names == ["cats", "dogs"]
    assert data.counts == {"train": 8, "val": 2, "test": 2}
    assert data.skipped == []
    images, labels = data.arrays("train")
    assert images.shape == (8, SIZE, SIZE, 3) and images.dtype == np.float32
    assert images.max() <= 255 and images.min() >= 0
    assert sorted(labels.tolist()) == [0] * 4 + [1] * 4


def test_folder_images_keep_their_colour(tmp_path: Path) -> None:
    write_image(tmp_path / "red" / "a.png", (250, 0, 0))
    write_image(tmp_path / "blue" / "a.png", (0, 0, 250))
    data = load_dataset(f"folder:{tmp_path}", 8, val_fraction=0, test_fraction=0)
    images, labels = data.arrays("train")
    by_label = {int(label): image.mean(axis=(0, 1))
                for image, label in zip(images, labels, strict=True)}
    np.testing.assert_allclose(by_label[0], [0, 0, 250], atol=2)  # "blue" sorts first
    np.testing.assert_allclose(by_label[1], [250, 0, 0], atol=2)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match=r"does not exist.*one sub-folder per class"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}", SIZE)


def test_folder_with_one_class(tmp_path: Path) -> None:
    make_image_folder(tmp_path, {"cats": 3})
    with pytest.raises(CourseError, match=r"1 class sub-folder\(s\).*at least 2"):
        scan_image_folder(tmp_path)


def test_class_without_images(tmp_path: Path) -> None:
    make_image_folder(tmp_path, {"cats": 3})
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "notes.txt").write_text("no pictures here")
    with pytest.raises(CourseError, match=r"dogs has no readable images.*\.jpg"):
        scan_image_folder(tmp_path)


def test_hidden_folders_are_ignored(image_folder: Path) -> None:
    write_image(image_folder / ".ipynb_checkpoints" / "x.png", (1, 2, 3))
    write_image(image_folder / "cats" / ".ipynb_checkpoints" / "cats_0-checkpoint.png", (1, 2, 3))
    scan = scan_image_folder(image_folder)
    assert scan.class_names == ["cats", "dogs"]
    assert len(scan.paths) == 12


@pytest.fixture
def folder_with_bad_files(image_folder: Path, tiny_png_bytes: bytes) -> tuple[Path, list[str]]:
    """Six kinds of files that look like images but that TensorFlow cannot decode."""
    cats, dogs = image_folder / "cats", image_folder / "dogs"
    (cats / "garbage.jpg").write_bytes(b"this is not a picture")
    (cats / "empty.png").write_bytes(b"")
    jpeg = (cats / "cats_1.jpg").read_bytes()
    (dogs / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (dogs / "truncated.png").write_bytes(tiny_png_bytes[: len(tiny_png_bytes) // 2])
    write_image(dogs / "really_tiff.jpg", (9, 9, 9), fmt="TIFF")
    from PIL import Image

    Image.new("1", (12, 12), 1).save(dogs / "one_bit.bmp")
    bad = ["empty.png", "garbage.jpg", "one_bit.bmp", "really_tiff.jpg", "truncated.jpg",
           "truncated.png"]
    return image_folder, bad


def test_unreadable_files_are_skipped_and_counted(
        folder_with_bad_files: tuple[Path, list[str]]) -> None:
    folder, bad = folder_with_bad_files
    scan = scan_image_folder(folder)
    assert sorted(p.name for p in scan.skipped) == bad
    assert len(scan.paths) == 12 and all(Path(p).name not in bad for p in scan.paths)


def test_unreadable_files_are_reported_and_never_reach_the_pipeline(
        folder_with_bad_files: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, bad = folder_with_bad_files
    data = load_dataset(f"folder:{folder}", SIZE, batch_size=4)
    out = capsys.readouterr().out
    assert f"Skipped {len(bad)} unreadable image file(s)" in out
    assert len(data.skipped) == len(bad)
    assert sum(data.counts.values()) == 12
    for split in ("train", "val", "test"):  # every batch decodes
        assert len(data.arrays(split)[0]) == data.counts[split]


def test_training_on_a_folder_with_bad_files_does_not_crash(
        folder_with_bad_files: tuple[Path, list[str]]) -> None:
    folder, _ = folder_with_bad_files
    data = load_dataset(f"folder:{folder}", SIZE, batch_size=4)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(data.train, validation_data=data.val, epochs=1, verbose=0,
                        shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_other_formats_behind_image_extensions(tmp_path: Path) -> None:
    """A PNG named .jpg still decodes; greyscale, palette and GIF files become RGB."""
    from PIL import Image

    write_image(tmp_path / "a" / "png_named.jpg", (200, 100, 0), fmt="PNG")
    Image.new("L", (12, 12), 128).save(tmp_path / "a" / "grey.png")
    (tmp_path / "b").mkdir()
    Image.new("RGB", (12, 12), (0, 0, 255)).convert("P").save(tmp_path / "b" / "palette.gif")
    write_image(tmp_path / "b" / "plain.bmp", (0, 255, 0))
    data = load_dataset(f"folder:{tmp_path}", 8, val_fraction=0, test_fraction=0)
    assert data.skipped == []
    images, _ = data.arrays("train")
    assert images.shape == (4, 8, 8, 3)


def test_folder_iterates_again_without_error(image_folder: Path) -> None:
    data = load_dataset(f"folder:{image_folder}", SIZE, batch_size=5)
    for _ in range(2):
        assert sum(int(b.shape[0]) for b, _ in data.train) == data.counts["train"]


def test_folder_files_are_decoded_in_the_first_epoch_only(tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "pictures", {"cats": 10, "dogs": 10})
    data = load_dataset(f"folder:{folder}", SIZE, batch_size=4, val_fraction=0,
                        test_fraction=0)

    def epoch() -> tuple[np.ndarray, list[bytes]]:
        images = np.concatenate([batch.numpy() for batch, _ in data.train])
        return images, sorted(image.tobytes() for image in images)

    first, first_sorted = epoch()
    for image in folder.rglob("*.*"):  # later epochs must not need the files
        image.unlink()
    second, second_sorted = epoch()
    assert second.dtype == np.float32 and len(second) == data.counts["train"] == 20
    assert first_sorted == second_sorted, "the same images, every epoch"
    assert not np.array_equal(first, second), "in a new order each epoch"


# -- flowers --------------------------------------------------------------------------------


def test_fetch_flowers_downloads_checks_and_extracts(
        flowers_archive: tuple[Path, str], tmp_path: Path, offline: list[str]) -> None:
    archive, sha256 = flowers_archive
    folder = fetch_flowers(origin=archive.as_uri(), file_hash=sha256,
                           cache_dir=str(tmp_path / "cache"))
    assert folder == tmp_path / "cache" / "datasets" / "flower_photos" / "flower_photos"
    assert folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["daisy", "roses", "tulips"]
    assert len(list(folder.rglob("*.jpg"))) + len(list(folder.rglob("*.png"))) == 15
    assert offline == [archive.as_uri()]
    # A second call uses the cache: no download, same folder.
    assert fetch_flowers(origin=archive.as_uri(), file_hash=sha256,
                         cache_dir=str(tmp_path / "cache")) == folder
    assert offline == [archive.as_uri()]


def test_fetch_flowers_checksum_mismatch(flowers_archive: tuple[Path, str],
                                         tmp_path: Path) -> None:
    archive, _ = flowers_archive
    with pytest.raises(DownloadError, match=r"flower photos.*hash does not match"):
        fetch_flowers(origin=archive.as_uri(), file_hash="0" * 64,
                      cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache" / "datasets" / "flower_photos").is_dir()


def test_fetch_flowers_default_hash_rejects_a_different_file(
        flowers_archive: tuple[Path, str], tmp_path: Path) -> None:
    archive, _ = flowers_archive
    with pytest.raises(DownloadError, match=data_module.FLOWERS_SHA256):
        fetch_flowers(origin=archive.as_uri(), cache_dir=str(tmp_path / "cache"))


def test_fetch_flowers_unreachable(tmp_path: Path, offline: list[str]) -> None:
    with pytest.raises(DownloadError, match=r"Could not download the flower photos from "
                                            r"https://.*`ftcourse fetch`.*FTCOURSE_PROFILE=ci"):
        fetch_flowers(cache_dir=str(tmp_path / "cache"))
    assert offline == [data_module.FLOWERS_URL]


def test_fetch_flowers_missing_file_url(tmp_path: Path) -> None:
    missing = (tmp_path / "missing.tgz").as_uri()
    with pytest.raises(DownloadError, match="ftcourse fetch"):
        fetch_flowers(origin=missing, file_hash="0" * 64, cache_dir=str(tmp_path / "cache"))


def test_load_flowers_end_to_end(tmp_path: Path, keras_home: Path, offline: list[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    archive, sha256 = build_flowers_archive(tmp_path / "mirror", {"daisy": 6, "roses": 4})
    monkeypatch.setattr(data_module, "FLOWERS_URL", archive.as_uri())
    monkeypatch.setattr(data_module, "FLOWERS_SHA256", sha256)
    data = load_dataset("flowers", SIZE, batch_size=4, val_fraction=0.2, test_fraction=0.0)
    assert data.class_names == ["daisy", "roses"]
    assert data.counts == {"train": 8, "val": 2, "test": 0}
    assert (keras_home / "datasets" / "flower_photos" / "flower_photos" / "daisy").is_dir()
    images, labels = data.arrays("train")
    assert images.shape == (8, SIZE, SIZE, 3) and sorted(set(labels.tolist())) == [0, 1]
    assert offline == [archive.as_uri()]
    assert isinstance(data.train, tf.data.Dataset)
