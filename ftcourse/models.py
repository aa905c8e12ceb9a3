"""Pre-trained architectures, the model a lesson fine-tunes, and freezing its layers.

Introduced in lesson 02; ResNet50, VGG16 and InceptionV3 in lesson 03; heads in lesson 04;
unfreezing in lesson 05.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras

from ftcourse.errors import OFFLINE_HINT, CourseError, DownloadError

SOURCE_WEIGHTS = "digits0-4"  # the ci profile's bases, pre-trained on the digits 0-4
BASE_NAME = "base_model"
PREPROCESS_NAME = "preprocess"
_BUILT_AS = "_ftcourse_built_as"
HEAD_NAME = "head"


@dataclass(frozen=True)
class Architecture:
    """What the course needs to know about one ``keras.applications`` model."""

    name: str
    constructor: Callable[..., keras.Model]
    module: str  # the keras.applications module holding its preprocess_input
    min_size: int
    default_size: int
    weight_sizes: frozenset[int] | None  # None: ImageNet weights fit any size >= min_size

    @property
    def preprocess_input(self) -> Callable:
        """The architecture's own ``preprocess_input`` (expects raw 0-255 pixels)."""
        return getattr(keras.applications, self.module).preprocess_input


ARCHITECTURES: dict[str, Architecture] = {
    "mobilenet_v2": Architecture(
        "mobilenet_v2", keras.applications.MobileNetV2, "mobilenet_v2", 32, 224,
        frozenset({96, 128, 160, 192, 224}),
    ),
    "resnet50": Architecture("resnet50", keras.applications.ResNet50, "resnet50", 32, 224, None),
    "vgg16": Architecture("vgg16", keras.applications.VGG16, "vgg16", 32, 224, None),
    # No ci pre-trained base: its minimum size (75) is above the ci image size (32).
    "inception_v3": Architecture(
        "inception_v3", keras.applications.InceptionV3, "inception_v3", 75, 299, None,
    ),
}


@dataclass(frozen=True)
class HeadSpec:
    """The new classifier on top of the base. Introduced in lesson 04.

    ``output="softmax"`` gives one unit per class; ``output="sigmoid"`` one unit for a
    two-class problem (the binary head of lesson 02).
    """

    pooling: str = "avg"
    hidden: Sequence[int] = ()
    dropout: float = 0.0
    batchnorm: bool = False
    output: str = "softmax"

    def __post_init__(self) -> None:
        if self.pooling not in ("avg", "flatten"):
            raise CourseError(f"HeadSpec.pooling must be 'avg' or 'flatten', not {self.pooling!r}.")
        if self.output not in ("softmax", "sigmoid"):
            raise CourseError(
                f"HeadSpec.output must be 'softmax' or 'sigmoid', not {self.output!r}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise CourseError(f"HeadSpec.dropout must be in [0, 1), got {self.dropout}.")


@dataclass(frozen=True)
class TrainableReport:
    """Trainable and frozen layers and parameters of a model. Introduced in lesson 02."""

    rows: list[tuple[str, int, int, int]]  # (part, layers, trainable params, frozen params)

    @property
    def trainable_params(self) -> int:
        return sum(row[2] for row in self.rows)

    @property
    def frozen_params(self) -> int:
        return sum(row[3] for row in self.rows)

    def __str__(self) -> str:
        lines = [f"{'part':<16}{'layers':>8}{'trainable params':>18}{'frozen params':>16}"]
        for part, layers, trainable, frozen in [*self.rows, ("total", *self._totals())]:
            lines.append(f"{part:<16}{layers:>8}{trainable:>18,}{frozen:>16,}")
        return "\n".join(lines)

    def _totals(self) -> tuple[int, int, int]:
        return sum(r[1] for r in self.rows), self.trainable_params, self.frozen_params

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # IPython display
        printer.text(str(self))


def get_architecture(name: str) -> Architecture:
    """Look up an architecture by name; the error lists the known ones."""
    if name not in ARCHITECTURES:
        raise CourseError(f"Unknown architecture {name!r}. Known: {sorted(ARCHITECTURES)}.")
    return ARCHITECTURES[name]


def keras_weights(arch: str, image_size: int, weights: str | None) -> str | None:
    """What ``keras.applications`` accepts as ``weights``: ``"imagenet"``, ``None`` or a file.

    The profile's ``"digits0-4"`` becomes the path of the cached `ci` base of ``arch``
    (pre-trained on the digits 0-4 the first time it is needed). Introduced in problem set 01.

    >>> keras_weights("mobilenet_v2", 160, "imagenet")
    'imagenet'
    """
    spec = get_architecture(arch)
    _check_size(spec, image_size, weights)
    if weights == SOURCE_WEIGHTS:
        from ftcourse.pretrain import ensure_pretrained  # it builds bases with this module

        return str(ensure_pretrained(arch, image_size))
    return weights


def build_base(arch: str, image_size: int, weights: str | None = "imagenet") -> keras.Model:
    """The architecture without its classifier (``include_top=False``), named ``base_model``.

    ``weights`` is ``"imagenet"``, ``"digits0-4"`` (the `ci` profile's own pre-trained base,
    built once by :mod:`ftcourse.pretrain`), ``None`` (random) or the path of a weights file.
    Introduced in lesson 02.
    """
    spec = get_architecture(arch)
    weights = keras_weights(arch, image_size, weights)
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise CourseError(f"Weights file {weights} does not exist; pass 'imagenet', "
                          f"{SOURCE_WEIGHTS!r}, None or a path to a .weights.h5 / .h5 file "
                          "saved from this architecture.")
    try:
        return spec.constructor(include_top=False, weights=weights, name=BASE_NAME,
                                input_shape=(image_size, image_size, 3))
    except Exception as error:
        if weights != "imagenet":
            raise
        raise DownloadError(
            f"Could not download the ImageNet weights of {arch} ({error}). {OFFLINE_HINT}"
        ) from None


def build_head(num_classes: int, head: HeadSpec = HeadSpec()) -> keras.Sequential:
    """The new layers on top of the base: pooling, optional hidden layers, the output."""
    if head.output == "softmax" and num_classes < 2:
        raise CourseError(f"A softmax head needs num_classes >= 2, got {num_classes}. "
                          "For a yes/no problem use HeadSpec(output='sigmoid').")
    if head.output == "sigmoid" and num_classes != 2:
        raise CourseError(f"A sigmoid head has one unit for exactly 2 classes, got "
                          f"num_classes={num_classes}; use HeadSpec(output='softmax').")
    layers: list[keras.Layer] = [
        keras.layers.GlobalAveragePooling2D() if head.pooling == "avg" else keras.layers.Flatten()
    ]
    for units in head.hidden:
        layers.append(keras.layers.Dense(units, activation="relu"))
        if head.batchnorm:
            layers.append(keras.layers.BatchNormalization())
        if head.dropout:
            layers.append(keras.layers.Dropout(head.dropout))
    if not head.hidden and head.dropout:
        layers.append(keras.layers.Dropout(head.dropout))
    units = 1 if head.output == "sigmoid" else num_classes
    layers.append(keras.layers.Dense(units, activation=head.output, name="predictions"))
    return keras.Sequential(layers, name=HEAD_NAME)


def build_preprocessing(arch: str, image_size: int) -> keras.Model:
    """The architecture's ``preprocess_input`` as a small model: raw 0-255 pixels in."""
    spec = get_architecture(arch)
    inputs = keras.Input((image_size, image_size, 3))
    return keras.Model(inputs, spec.preprocess_input(inputs), name=PREPROCESS_NAME)


def build_model(arch: str, num_classes: int, image_size: int, weights: str | None = "imagenet",
                head: HeadSpec = HeadSpec(), preprocess: bool = True) -> keras.Model:
    """Raw pixels -> the architecture's preprocessing -> frozen base (``training=False``) -> head.

    The base is frozen and reachable as ``model.get_layer("base_model")``.
    ``preprocess=False`` leaves preprocessing out (lesson 03 shows what that breaks).
    Introduced in lesson 02.
    """
    head_model = build_head(num_classes, head)
    base = build_base(arch, image_size, weights)
    base.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = build_preprocessing(arch, image_size)(inputs) if preprocess else inputs
    # training=False runs the base in inference mode in predict/evaluate. In fit, Keras 3 passes
    # training=True down to it anyway: what keeps BatchNormalization statistics fixed there is
    # the layers' trainable=False, which unfreeze_top keeps.
    x = base(x, training=False)
    model = keras.Model(inputs, head_model(x), name=f"{arch}_classifier")
    # Untracked by Keras; lets models built alike share traced passes (ftcourse.traced).
    object.__setattr__(model, _BUILT_AS, (arch, image_size, preprocess,
                                          keras.config.dtype_policy().name,
                                          keras.config.image_data_format()))
    return model


def built_as(model: keras.Model) -> tuple | None:
    """How ``build_model`` built ``model``'s preprocessing and base, or None if it did not.

    Models with the same answer have the same layers below the head, connected the same way.
    """
    return model.__dict__.get(_BUILT_AS)


def get_base(model: keras.Model) -> keras.Model:
    """The pre-trained base inside a model built by :func:`build_model`."""
    try:
        return model.get_layer(BASE_NAME)
    except ValueError:
        raise CourseError(f"Model {model.name!r} has no layer named {BASE_NAME!r}; build it "
                          "with ftcourse.build_model or name your base 'base_model'.") from None


def freeze_base(model: keras.Model) -> None:
    """Freeze every layer of the base. Recompile the model afterwards."""
    get_base(model).trainable = False


def unfreeze_top(model: keras.Model, n: int) -> list[str]:
    """Unfreeze the top ``n`` layers of the base, keeping BatchNormalization frozen.

    Returns the names of the layers made trainable. Recompile afterwards, at a lower
    learning rate. Introduced in lesson 05.
    """
    base = get_base(model)
    if not 0 <= n <= len(base.layers):
        raise CourseError(f"n must be between 0 and {len(base.layers)} (the base's layer "
                          f"count), got {n}.")
    base.trainable = True
    changed = []
    for index, layer in enumerate(base.layers):
        on_top = index >= len(base.layers) - n
        layer.trainable = on_top and not isinstance(layer, keras.layers.BatchNormalization)
        if layer.trainable and layer.weights:
            changed.append(layer.name)
    print(f"Unfroze {len(changed)} layers with weights among the top {n} of {base.name}; "
          "BatchNormalization layers stay frozen. Recompile before training.")
    return changed


def trainable_report(model: keras.Model) -> TrainableReport:
    """Layers and parameters per part of the model, trainable vs frozen."""
    rows = []
    for layer in model.layers:
        if not layer.weights:
            continue
        trainable = _count(layer.trainable_weights)
        rows.append((layer.name, _count_layers(layer), trainable,
                     _count(layer.weights) - trainable))
    return TrainableReport(rows)


def _count(weights: list) -> int:
    return int(sum(int(w.numpy().size) for w in weights))


def _count_layers(layer: keras.Layer) -> int:
    return len(layer.layers) if hasattr(layer, "layers") else 1


def _check_size(spec: Architecture, image_size: int, weights: str | None) -> None:
    if image_size < spec.min_size:
        raise CourseError(f"{spec.name} needs images of at least {spec.min_size}x{spec.min_size}"
                          f" pixels, got {image_size}. Use image_size={spec.default_size}.")
    if weights == "imagenet" and spec.weight_sizes and image_size not in spec.weight_sizes:
        raise CourseError(f"{spec.name} has ImageNet weights only for image sizes "
                          f"{sorted(spec.weight_sizes)}, not {image_size}. Pick one of those "
                          "or use weights=None.")
