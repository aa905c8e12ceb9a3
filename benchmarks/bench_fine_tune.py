"""Time phase 2 of fine-tuning: ``model.fit`` on images against the cached-activation fast path.

In one run, for each architecture, on the same machine, data and starting weights:

(a) naive: the top ``--unfreeze`` layers of the base unfrozen, ``model.fit`` for ``--epochs``
    epochs on the images: every step runs the whole base forward;
(b) fast: ``ftcourse.cut``: one pass of the frozen part over both splits (the extraction), then
    the same epochs on the cached activations at the cut, training only the layers above it.

Both ways see the same batches in the same order (no shuffling), so they must end with the same
weights (printed: the largest difference) and the same validation accuracy. Per-epoch times are
steady-state (tracing left out: the naive way's first epoch, the fast way's first call), measured
over ``--epochs`` epochs; the fast way's per-epoch figure adds its extraction (tracing included)
spread over a phase 2 of ``--phase-epochs`` epochs (default: the full profile's
``fine_tune_epochs``), the length over which it is paid once. The ratio the
multiply-accumulate (MAC) count allows is (all + 2 x top) / (3 x top): a naive step runs the whole
base forward and the top backward, a fast step the top forward and backward. Weights are random
(speed does not depend on their values); the images are scikit-learn's digits, resized.

    python benchmarks/bench_fine_tune.py --repeats 3     # the full measurement (about 10 min)
    FTCOURSE_PROFILE=ci python benchmarks/bench_fine_tune.py --quick    # a smoke test

It exits 0 when it measured something, whether or not a target is met, and 1 on an error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_frozen_base  # the digits and the BatchNorm calibration
import keras
import numpy as np
import tensorflow as tf

import ftcourse
from ftcourse import cut as cuts
from ftcourse.errors import CourseError

TARGETS = {"mobilenet_v2": 2.5, "resnet50": 3.0}  # naive / fast per epoch, at least
TARGET_ACCURACY_POINTS = 2.0


@dataclass
class Run:
    """One way's figures: steady seconds per epoch, extraction, weights, val accuracy."""

    epoch_seconds: float
    extraction: float
    weights: list[np.ndarray]
    val_accuracy: float


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds = [*getattr(self, "seconds", []), time.perf_counter() - self.start]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="mobilenet_v2,resnet50")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--samples", default="mobilenet_v2=640,resnet50=320",
                        help="images per architecture (80 %% train, 20 %% validation)")
    parser.add_argument("--unfreeze", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=4, help="epochs timed per way")
    parser.add_argument("--phase-epochs", type=int,
                        default=ftcourse.get_config("full").fine_tune_epochs,
                        help="the phase-2 length the extraction is spread over")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: mobilenet_v2, 40 images at 32px, 2 epochs, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.archs, args.image_size, args.samples = "mobilenet_v2", 32, "mobilenet_v2=40"
        args.epochs, args.repeats = 2, 1
    args.archs = [arch.strip() for arch in args.archs.split(",") if arch.strip()]
    unknown = sorted(set(args.archs) - set(ftcourse.ARCHITECTURES))
    if unknown or not args.archs:
        raise CourseError(f"--archs must name some of {sorted(ftcourse.ARCHITECTURES)}, "
                          f"got {unknown or 'none'}.")
    args.samples = dict(item.split("=") for item in args.samples.split(","))
    args.samples = {arch: int(args.samples.get(arch, 320)) for arch in args.archs}
    if args.epochs < 2 or args.repeats < 1 or args.phase_epochs < 1:
        raise CourseError("--epochs must be >= 2 (the first is left out as tracing) and "
                          "--repeats and --phase-epochs >= 1.")
    return args


def macs(layers: Sequence[keras.Layer]) -> int:
    """Multiply-accumulates of one forward pass of ``layers`` for one image."""
    total = 0
    for layer in layers:
        out = layer.output.shape
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, channels, multiplier = layer.kernel.shape
            total += out[1] * out[2] * kh * kw * channels * multiplier
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += out[1] * out[2] * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def mac_ratio(model: keras.Model, unfreeze: int) -> tuple[float, float]:
    """(share of the base's MACs in its top ``unfreeze`` layers, the ratio that allows)."""
    layers = ftcourse.get_base(model).layers
    top = macs(layers[len(layers) - unfreeze:]) / macs(layers)
    return top, (1 + 2 * top) / (3 * top)


def fixed_splits(args: argparse.Namespace, arch: str) -> tuple[tf.data.Dataset, ...]:
    """Training and validation batches in a fixed order, and the training images."""
    data = bench_frozen_base.load_digits(args.samples[arch], args.image_size, args.batch_size,
                                         args.seed)
    split = data.train_count
    train = tf.data.Dataset.from_tensor_slices((data.images[:split], data.labels[:split]))
    val = tf.data.Dataset.from_tensor_slices((data.images[split:], data.labels[split:]))
    return train.batch(args.batch_size), val.batch(args.batch_size), data.images[:split]


def start_weights(args: argparse.Namespace, arch: str, train: tf.data.Dataset,
                  val: tf.data.Dataset, calibration: np.ndarray) -> list[np.ndarray]:
    """A random base with BatchNorm set from the images, and a head trained on it (phase 1)."""
    model = ftcourse.build_model(arch, 10, args.image_size, weights=None)
    bench_frozen_base.calibrate_batchnorm(model, calibration[:32])  # 256 at 160 px: 20 GB
    ftcourse.train_head_on_features(model, ftcourse.extract_features(model, train, verbose=0),
                                    ftcourse.extract_features(model, val, verbose=0),
                                    epochs=10, verbose=0)
    return model.get_weights()


def unfrozen_model(args: argparse.Namespace, arch: str, weights: list[np.ndarray]
                   ) -> keras.Model:
    model = ftcourse.build_model(arch, 10, args.image_size, weights=None)
    model.set_weights(weights)
    with contextlib.redirect_stdout(io.StringIO()):  # unfreeze_top's one-line report
        ftcourse.unfreeze_top(model, args.unfreeze)
    return model


def run_naive(args: argparse.Namespace, arch: str, weights: list[np.ndarray],
              train: tf.data.Dataset, val: tf.data.Dataset) -> Run:
    model = unfrozen_model(args, arch, weights)
    ftcourse.compile_model(model, args.learning_rate)
    timer = EpochTimer()
    history = model.fit(train, validation_data=val, epochs=args.epochs, shuffle=False,
                        verbose=0, callbacks=[timer])
    return Run(statistics.median(timer.seconds[1:]), 0.0, model.get_weights(),
               history.history["val_accuracy"][-1])


def run_fast(args: argparse.Namespace, arch: str, weights: list[np.ndarray],
             train: tf.data.Dataset, val: tf.data.Dataset) -> Run:
    model = unfrozen_model(args, arch, weights)
    start = time.perf_counter()
    cut = cuts.find_cut(model)
    train_cut = cuts.cut_activations(cut, train, verbose=0)
    val_cut = cuts.cut_activations(cut, val, verbose=0)
    extraction = time.perf_counter() - start

    def epochs(count: int, initial: int) -> keras.callbacks.History:
        return cuts.train_top_on_activations(cut, train_cut, val_cut, epochs=count,
                                             initial_epoch=initial,
                                             learning_rate=args.learning_rate,
                                             batch_size=args.batch_size, shuffle=False,
                                             verbose=0)

    epochs(1, 0)  # traces the loop: left out, as the naive way's first epoch is
    start = time.perf_counter()
    history = epochs(args.epochs - 1, 1)
    steady = (time.perf_counter() - start) / (args.epochs - 1)
    return Run(steady, extraction, model.get_weights(), history.history["val_accuracy"][-1])


def peak_gb() -> float:
    """The process's peak resident memory (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def measure(args: argparse.Namespace, arch: str) -> None:
    train, val, calibration = fixed_splits(args, arch)
    weights = start_weights(args, arch, train, val, calibration)
    share, allowed = mac_ratio(ftcourse.build_model(arch, 10, args.image_size, weights=None),
                               args.unfreeze)
    naive_epochs, fast_epochs, extractions = [], [], []
    for repeat in range(1, args.repeats + 1):
        keras.backend.clear_session()  # no run pays for the graphs of another
        gc.collect()
        naive = run_naive(args, arch, weights, train, val)
        keras.backend.clear_session()
        gc.collect()
        fast = run_fast(args, arch, weights, train, val)
        naive_epochs.append(naive.epoch_seconds)
        fast_epochs.append(fast.epoch_seconds + fast.extraction / args.phase_epochs)
        extractions.append(fast.extraction)
        print(f"  repeat {repeat}: naive {naive.epoch_seconds:.2f} s/epoch; fast "
              f"{fast.epoch_seconds:.2f} s/epoch + extraction {fast.extraction:.2f} s; peak "
              f"memory so far {peak_gb():.1f} GB", flush=True)
    median = statistics.median
    t_naive, t_fast = median(naive_epochs), median(fast_epochs)
    ratio, target = t_naive / t_fast, TARGETS.get(arch, 1.0)
    difference = max(float(np.abs(a - b).max())
                     for a, b in zip(naive.weights, fast.weights, strict=True))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(naive.weights, weights, strict=True))
    points = 100 * abs(naive.val_accuracy - fast.val_accuracy)
    print(f"== {arch}@{args.image_size}, top {args.unfreeze} unfrozen, {args.epochs} epochs "
          f"(medians of {args.repeats}) ==")
    print(f"naive  model.fit on images, per epoch          {t_naive:8.2f} s")
    print(f"fast   on cached activations, per epoch        {t_fast:8.2f} s "
          f"(extraction {median(extractions):.2f} s counted once, over a {args.phase_epochs}-"
          "epoch phase 2)")
    print(f"naive / fast   {ratio:6.2f}x   target >= {target:g}x   {verdict(ratio >= target)}")
    print(f"MAC count: top {args.unfreeze} layers = {share:.1%} of the base; the ratio it "
          f"allows (all + 2 top) / (3 top) = {allowed:.2f}x")
    print(f"same weights: largest difference {difference:.2e} (phase 2 moved them by up to "
          f"{moved:.2e}); val accuracy naive {naive.val_accuracy:.3f}, fast "
          f"{fast.val_accuracy:.3f}: {points:.1f} points apart   target <= "
          f"{TARGET_ACCURACY_POINTS:g}   {verdict(points <= TARGET_ACCURACY_POINTS)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    keras.utils.set_random_seed(args.seed)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"{ftcourse.config.describe_devices()}")
    print(f"Data: scikit-learn digits at {args.image_size}x{args.image_size}, "
          f"{args.samples} images (80/20 split), batch size {args.batch_size}, fixed order; "
          f"learning rate {args.learning_rate:g}; random weights, BatchNorm set from the "
          "images, head trained first.\n")
    for arch in args.archs:
        measure(args, arch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
