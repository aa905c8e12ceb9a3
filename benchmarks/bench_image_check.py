"""Scanning a photo folder: every file decoded with Pillow (cold) vs the cached verdicts (warm).

Run from the course root:

    python benchmarks/bench_image_check.py --images 3670 --repeats 3

It writes ``--images`` JPEGs (sizes from 320x240 to 500x375, like the flowers) into five class
folders of a temporary folder, then scans it ``--repeats`` times each way, alternating: cold
(the verdict cache removed first, so every file is decoded) and warm (the cache from the run
before). It prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ftcourse.data import scan_image_folder
from ftcourse.image_check import CACHE_FOLDER

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def make_photos(root: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for index in range(count):
        width, height = int(rng.integers(320, 501)), int(rng.integers(240, 376))
        pixels = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        folder = root / CLASSES[index % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).resize((width, height)).save(folder / f"{index:05d}.jpg")
    return root


def timed_scan(folder: Path) -> float:
    started = time.perf_counter()
    scan_image_folder(folder)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3670)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["KERAS_HOME"] = str(Path(scratch) / "keras")
        folder = make_photos(Path(scratch) / "photos", args.images)
        cold, warm = [], []
        for _ in range(args.repeats):
            shutil.rmtree(Path(scratch) / "keras" / CACHE_FOLDER, ignore_errors=True)
            cold.append(timed_scan(folder))
            warm.append(timed_scan(folder))
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    print(f"Scanning {args.images} JPEGs in {len(CLASSES)} class folders, median of "
          f"{args.repeats}:")
    print(f"  cold (every file decoded)   {cold_s:7.2f} s")
    print(f"  warm (cached verdicts)      {warm_s:7.2f} s")
    print(f"  cold / warm                 {cold_s / warm_s:7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
