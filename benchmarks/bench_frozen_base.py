"""Time a learning-rate sweep with a frozen base: the naive way against the fast path.

In one run, on the same machine and the same data, this times:

(a) naive: for each learning rate, a fresh model (frozen base) compiled and trained with
    ``model.fit`` on the images, as the tutorials do: every epoch runs the whole base again;
(b) fast: ``ftcourse.extract_features`` once per split, then ``ftcourse.lr_sweep`` over the
    same rates and epochs on the cached features; twice: for the first model of its structure
    in the process (the base's pass traced afresh), then for a second model built alike (which
    reuses that trace, ``ftcourse.traced``);
(c) floor: one forward pass of the base over the same pipelines, the faster of a traced
    function and ``predict`` on ``feature_extractor(model)``; warm (already traced: the strict
    floor) and cold (the first call, tracing included, as the fast path's one pass is);
(d) what the first model of a structure pays once: tracing the base's pass and its first call;
(e) one warm epoch of head training on the cached features, the whole head against the
    layers above its pooling on features pooled once (what the fast path trains).

Data: scikit-learn's 8x8 digits (no download), resized to ``--image-size``, split 80/20 into
training and validation images. Both ways start from the same weights and see the same data;
only the order of the training batches differs. Timings start once a model is built: the fast
path builds one, the naive way one per rate (inside its timing, as the tutorials do).
Accuracy: each rate's final validation accuracy, averaged over the rates (one rate's figure
moves by several points with the batch order alone); the best rate's is printed too.

The base has random weights (nothing is downloaded); speed does not depend on them. A random
MobileNetV2 in inference mode shrinks its activations layer after layer until its features are
about 1e-12 (its BatchNorm statistics are 0 and 1): the head then learns nothing and comparing
accuracies means nothing. The benchmark therefore sets each BatchNorm layer's moving mean and
variance from one batch of training images (one pass in training mode, momentum 0), so the
random base gives features of order 1 that separate the digits. It prints the feature scale
before and after.

Run from the repository root:

    FTCOURSE_PROFILE=ci python benchmarks/bench_frozen_base.py            # the full measurement
    FTCOURSE_PROFILE=ci python benchmarks/bench_frozen_base.py --quick    # a smoke test

It exits 0 when it measured something, whether or not a target is met, and 1 on an error.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import ftcourse
from ftcourse import training
from ftcourse.errors import CourseError
from ftcourse.traced import forget_all
from ftcourse.training import feature_extractor

TARGET_SPEEDUP = 25.0  # naive / fast, at least
TARGET_OVER_FLOOR = 1.5  # fast / floor, at most
TARGET_EXTRACTION_OVER_FLOOR = 1.2  # extraction / floor, at most
TARGET_ACCURACY_POINTS = 2.0  # |best val accuracy, naive - fast| in percentage points, at most
DIGITS = 1797  # images in scikit-learn's digits


@dataclass
class Data:
    """The same images for both ways, as arrays and as batched pipelines."""

    train_ds: tf.data.Dataset
    val_ds: tf.data.Dataset
    images: np.ndarray  # training then validation images (the first ones calibrate BatchNorm)
    labels: np.ndarray  # their labels, in the same order
    num_classes: int
    train_count: int
    val_count: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet_v2", choices=sorted(ftcourse.ARCHITECTURES))
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--samples", type=int, default=1000,
                        help="images in all, split 80/20 into training and validation")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way; medians shown")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rates", default="1e-4,3e-4,1e-3,3e-3,1e-2",
                        help="comma-separated learning rates")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 64 images at 32px, 1 rate x 2 epochs, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.image_size, args.samples, args.repeats, args.epochs = 32, 64, 1, 2
        args.rates = "1e-3"
    try:
        args.rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    except ValueError:
        raise CourseError(f"--rates must be comma-separated numbers such as 1e-3,1e-2, got "
                          f"{args.rates!r}.") from None
    if not 10 <= args.samples <= DIGITS:
        raise CourseError(f"--samples must be between 10 and {DIGITS} (the digits there are), "
                          f"got {args.samples}.")
    if args.repeats < 1 or args.epochs < 1 or not args.rates:
        raise CourseError("--repeats and --epochs must be >= 1 and --rates must name a rate.")
    return args


def load_digits(samples: int, image_size: int, batch_size: int, seed: int) -> Data:
    """``samples`` digits (0-255 RGB) resized to ``image_size``, split 80/20."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))[:samples]
    gray = digits.images[order].astype("float32") * (255.0 / 16.0)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    images = tf.image.resize(rgb, (image_size, image_size)).numpy()
    labels = digits.target[order].astype("int32")
    split = round(0.8 * samples)
    train_ds = (tf.data.Dataset.from_tensor_slices((images[:split], labels[:split]))
                .shuffle(split, seed=seed, reshuffle_each_iteration=True).batch(batch_size))
    val_ds = tf.data.Dataset.from_tensor_slices((images[split:], labels[split:])).batch(batch_size)
    return Data(train_ds, val_ds, images, labels, 10, split, samples - split)


def feature_scale(forward: Callable[[tf.Tensor], tf.Tensor], images: np.ndarray) -> float:
    """Mean absolute value of the base's output on ``images``."""
    return float(np.abs(forward(tf.constant(images)).numpy()).mean())


def calibrate_batchnorm(model: keras.Model, images: np.ndarray) -> None:
    """Set every BatchNorm's moving mean and variance in the base from one batch of images."""
    base = ftcourse.get_base(model)
    layers = [layer for layer in base.layers
              if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    base.trainable = True  # a frozen BatchNorm ignores training=True
    for layer in layers:
        layer.momentum = 0.0
    x = model.get_layer(ftcourse.models.PREPROCESS_NAME)(images)
    base(x, training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    base.trainable = False


def fresh_model(args: argparse.Namespace, num_classes: int, weights: list) -> keras.Model:
    """A new model (frozen base), as each way builds it, starting from ``weights``."""
    model = ftcourse.build_model(args.arch, num_classes, args.image_size, weights=None)
    model.set_weights(weights)
    return model


def run_naive(args: argparse.Namespace, data: Data, weights: list) -> tuple[float, dict]:
    """Seconds for the sweep with model.fit on images, and each rate's final val accuracy."""
    accuracies = {}
    gc.collect()  # no way pays for collecting the models of another
    start = time.perf_counter()
    for rate in args.rates:
        model = fresh_model(args, data.num_classes, weights)
        ftcourse.compile_model(model, rate)
        # shuffle=False only silences a warning: train_ds reshuffles itself every epoch.
        history = model.fit(data.train_ds, validation_data=data.val_ds, epochs=args.epochs,
                            shuffle=False, verbose=0)
        accuracies[rate] = history.history["val_accuracy"][-1]
    return time.perf_counter() - start, accuracies


def run_fast(args: argparse.Namespace, data: Data, weights: list, first: bool
             ) -> tuple[float, float, dict]:
    """Seconds for extract_features + lr_sweep (and of the extraction alone), accuracies.

    ``first``: as for the first model of its structure in a process (the base's forward pass
    traced afresh); otherwise as for a later model built alike (it reuses that trace).
    """
    model = fresh_model(args, data.num_classes, weights)  # built, as the floor's model is
    if first:
        forget_all()
    gc.collect()
    start = time.perf_counter()
    train_features = ftcourse.extract_features(model, data.train_ds, verbose=0)
    val_features = ftcourse.extract_features(model, data.val_ds, verbose=0)
    extracted = time.perf_counter() - start
    results = ftcourse.lr_sweep(model, train_features, val_features, args.rates,
                                epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    return seconds, extracted, {rate: h.history["val_accuracy"][-1] for rate, h in results.items()}


def run_floor(args: argparse.Namespace, data: Data, weights: list) -> dict[str, float]:
    """One forward pass of the base over both pipelines, two ways, cold (first) then warm."""
    model = fresh_model(args, data.num_classes, weights)
    extractor = feature_extractor(model)
    spec = tf.TensorSpec((None, args.image_size, args.image_size, 3), tf.float32)

    @tf.function(input_signature=[spec])
    def forward(images: tf.Tensor) -> tf.Tensor:
        return extractor(images, training=False)

    def traced_pass() -> None:
        for dataset in (data.train_ds, data.val_ds):
            for images, _ in dataset:
                forward(images).numpy()

    def predict_pass() -> None:
        for dataset in (data.train_ds, data.val_ds):
            extractor.predict(dataset, verbose=0)

    gc.collect()
    times = {"traced cold": _seconds(traced_pass), "predict cold": _seconds(predict_pass)}
    times["traced warm"] = _seconds(traced_pass)
    times["predict warm"] = _seconds(predict_pass)
    return times


def time_head_epochs(args: argparse.Namespace, data: Data, weights: list, epochs: int = 20
                     ) -> dict[str, float]:
    """Median seconds of one warm training epoch on cached features, the two ways alternated:
    the whole head on the base's outputs, and the layers above its pooling on features pooled
    once (what the fast path trains). Both share the head's weights and optimizer: the values
    they train do not change the time."""
    model = fresh_model(args, data.num_classes, weights)
    features = ftcourse.extract_features(model, data.train_ds, verbose=0)
    head = ftcourse.compile_model(model.get_layer(ftcourse.models.HEAD_NAME), args.rates[0])
    whole = training._as_tensors(features, "features")
    above, pooled, _ = training._trainer_on(head, whole, None)
    ways = {"whole head": (head, whole), "above the pooling": (above, pooled)}
    order, size = tf.constant(np.arange(data.train_count, dtype="int32")), tf.constant(
        args.batch_size)
    loops = {}
    for name, (trainer, train) in ways.items():
        training._build_for_training(trainer, train)
        loops[name] = training._compiled_loops(trainer)[0]
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(epochs + 1):  # the first epoch (tracing) is left out
        for name, (_trainer, (x, y)) in ways.items():
            times[name].append(_seconds(functools.partial(loops[name], x, y, order, size)))
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def time_first_pass(args: argparse.Namespace, data: Data, weights: list, times: int = 3
                    ) -> dict[str, float]:
    """Median seconds of what the first model of a structure pays once: tracing the base's
    pass, its first call on one training batch, and (for comparison) its second call."""
    images = next(iter(data.train_ds))[0]
    parts: dict[str, list[float]] = {"trace": [], "first call": [], "second call": []}
    for _ in range(times):
        model = fresh_model(args, data.num_classes, weights)
        forget_all()
        gc.collect()
        start = time.perf_counter()
        forward = training._compiled_extractor(model)  # traces the pass, binds the weights
        parts["trace"].append(time.perf_counter() - start)
        for name in ("first call", "second call"):
            parts[name].append(_seconds(lambda: forward(images).numpy()))  # noqa: B023
    return {name: statistics.median(values) for name, values in parts.items()}


def _seconds(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    keras.utils.set_random_seed(args.seed)
    data = load_digits(args.samples, args.image_size, args.batch_size, args.seed)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"{ftcourse.config.describe_devices()}")
    print(f"Data: scikit-learn digits resized to {args.image_size}x{args.image_size}: "
          f"{data.train_count} training + {data.val_count} validation images "
          f"({args.samples} in all), batch size {args.batch_size}.")
    print(f"Sweep: {len(args.rates)} rates {args.rates} x {args.epochs} epochs; "
          f"{args.arch}, random weights, frozen base; {args.repeats} repeat(s).")

    template = ftcourse.build_model(args.arch, data.num_classes, args.image_size, weights=None)
    calibration = data.images[:min(256, data.train_count)]
    forward = tf.function(feature_extractor(template))  # reads the weights as they are now
    before = feature_scale(forward, calibration)
    calibrate_batchnorm(template, calibration)
    after = feature_scale(forward, calibration)
    print(f"Feature scale (mean |base output|): {before:.3g} with the random base's BatchNorm "
          f"statistics, {after:.3g} after setting them from {len(calibration)} training images.")
    weights = template.get_weights()

    naive, fast, extract, floors = [], [], [], []
    alike, alike_extract = [], []
    naive_acc: dict[float, float] = {}
    fast_acc: dict[float, float] = {}
    for repeat in range(1, args.repeats + 1):
        seconds, naive_acc = run_naive(args, data, weights)
        naive.append(seconds)
        seconds, extracted, fast_acc = run_fast(args, data, weights, first=True)
        fast.append(seconds)
        extract.append(extracted)
        seconds, extracted, _ = run_fast(args, data, weights, first=False)
        alike.append(seconds)
        alike_extract.append(extracted)
        floors.append(run_floor(args, data, weights))
        print(f"repeat {repeat}: naive {naive[-1]:.2f} s, fast {fast[-1]:.2f} s "
              f"(extraction {extract[-1]:.2f} s), built alike {alike[-1]:.2f} s "
              f"(extraction {alike_extract[-1]:.2f} s), forward pass: "
              + ", ".join(f"{key} {value:.2f} s" for key, value in floors[-1].items()),
              flush=True)

    once = time_first_pass(args, data, weights)
    print(f"\nPaid once per structure (median of 3, a fresh trace each): tracing the base's pass "
          f"{once['trace']:.3f} s; on one batch of {args.batch_size}, its first call "
          f"{once['first call']:.3f} s, its second {once['second call']:.3f} s")

    epochs = time_head_epochs(args, data, weights)
    print(f"\nOne warm head epoch on {data.train_count} cached rows (median of 20, alternated): "
          f"whole head {1000 * epochs['whole head']:.1f} ms, above the pooling on pooled "
          f"features {1000 * epochs['above the pooling']:.1f} ms: "
          f"{epochs['whole head'] / epochs['above the pooling']:.2f}x")

    print("\nFinal validation accuracy per rate (last repeat):")
    print(f"{'rate':>10}{'naive':>8}{'fast':>8}")
    for rate in args.rates:
        print(f"{rate:>10g}{naive_acc[rate]:>8.3f}{fast_acc[rate]:>8.3f}")

    median = statistics.median
    t_naive, t_fast, t_extract = median(naive), median(fast), median(extract)
    t_alike, t_alike_extract = median(alike), median(alike_extract)
    floor_parts = {key: median(f[key] for f in floors) for key in floors[0]}
    t_floor = min(floor_parts["traced warm"], floor_parts["predict warm"])
    t_cold = min(floor_parts["traced cold"], floor_parts["predict cold"])
    # Each ratio from the two figures of one repeat, then the median over the repeats: the
    # machine's speed drifts between repeats more than within one.
    warm = [min(f["traced warm"], f["predict warm"]) for f in floors]
    cold = [min(f["traced cold"], f["predict cold"]) for f in floors]

    def ratio(top: list[float], bottom: list[float]) -> float:
        return median(a / b for a, b in zip(top, bottom, strict=True))

    speedup, over_floor, over_cold = ratio(naive, fast), ratio(fast, warm), ratio(fast, cold)
    mean_naive, mean_fast = statistics.mean(naive_acc.values()), statistics.mean(fast_acc.values())
    points = 100 * abs(mean_naive - mean_fast)
    best_naive, best_fast = max(naive_acc.values()), max(fast_acc.values())
    worst_points = 100 * max(abs(naive_acc[rate] - fast_acc[rate]) for rate in args.rates)
    images = data.train_count + data.val_count

    print(f"\n== Frozen-base fast path: figures vs targets (medians of {args.repeats}; each "
          "ratio the median of the repeats' own ratios) ==")
    print(f"naive  model.fit, fresh model per rate      {t_naive:8.2f} s")
    print(f"fast   extract_features + lr_sweep          {t_fast:8.2f} s "
          f"(extraction {t_extract:.2f} s, sweep {t_fast - t_extract:.2f} s)")
    print(f"       the same, a second model built alike {t_alike:4.2f} s "
          f"(extraction {t_alike_extract:.2f} s: the base's traced pass reused)")
    print(f"floor  one forward pass of the base, warm   {t_floor:8.2f} s "
          f"({images / t_floor:.0f} images/s; traced {floor_parts['traced warm']:.2f} s, "
          f"predict {floor_parts['predict warm']:.2f} s)")
    print(f"       the same, cold (first call: tracing) {t_cold:8.2f} s "
          f"(traced {floor_parts['traced cold']:.2f} s, "
          f"predict {floor_parts['predict cold']:.2f} s)")
    print(f"naive / fast         {speedup:7.1f}x   target >= {TARGET_SPEEDUP:g}x   "
          f"{verdict(speedup >= TARGET_SPEEDUP)}")
    print(f"fast / floor (warm)  {over_floor:7.2f}x   target <= {TARGET_OVER_FLOOR:g}x   "
          f"{verdict(over_floor <= TARGET_OVER_FLOOR)}")
    print(f"fast / floor (cold)  {over_cold:7.2f}x   target <= {TARGET_OVER_FLOOR:g}x   "
          f"{verdict(over_cold <= TARGET_OVER_FLOOR)}   (the fast path's one pass is a cold one)")
    alike_over_floor = ratio(alike, warm)
    print(f"fast / floor (alike) {alike_over_floor:7.2f}x   target <= {TARGET_OVER_FLOOR:g}x   "
          f"{verdict(alike_over_floor <= TARGET_OVER_FLOOR)}   (a second model built alike)")
    for label, extractions in (("first", extract), ("alike", alike_extract)):
        over = ratio(extractions, warm)
        print(f"extraction / floor ({label}) {over:5.2f}x   target <= "
              f"{TARGET_EXTRACTION_OVER_FLOOR:g}x   "
              f"{verdict(over <= TARGET_EXTRACTION_OVER_FLOOR)}   (warm floor)")
    print(f"val accuracy, mean over the rates: naive {mean_naive:.3f}, fast {mean_fast:.3f}: "
          f"{points:.1f} points apart   target <= {TARGET_ACCURACY_POINTS:g}   "
          f"{verdict(points <= TARGET_ACCURACY_POINTS)}")
    print(f"(best rate: naive {best_naive:.3f}, fast {best_fast:.3f}; largest per-rate "
          f"difference {worst_points:.1f} points; {data.val_count} validation images, one image = "
          f"{100 / data.val_count:.2f} points; chance = {1 / data.num_classes:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
