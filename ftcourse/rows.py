"""Cached rows held once: written in place into one array, handed to TensorFlow without a copy.

The fast paths (lesson 04's features, lesson 05's activations at the cut) cache one row per
image; for ResNet50 at 160x160 that is about 750 MB for the flowers. Collecting batches and
concatenating them would hold the rows twice, and so would converting the array to a tensor
(TensorFlow copies NumPy input). ``Rows`` fills one array allocated with the alignment TensorFlow
requires, and ``as_tensor`` shares such an array's memory through DLPack.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# TensorFlow's CPU allocator aligns tensors to 64 bytes, and refuses (aborts the process on) a
# DLPack buffer that is not: Eigen's widest vector loads assume it.
ALIGNMENT = 64


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ``ALIGNMENT`` boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + size].view(dtype).reshape(shape)


def as_tensor(array: np.ndarray) -> tf.Tensor:
    """``array`` as a tensor, sharing its memory when TensorFlow can, else a copy.

    Shared: a writable, C-contiguous float32 array aligned as ``aligned_empty`` aligns it
    (what ``Rows`` returns). The tensor then reads the array as it is when used.
    """
    if (isinstance(array, np.ndarray) and array.dtype == np.float32 and array.size > 0
            and array.flags.c_contiguous and array.flags.writeable
            and array.ctypes.data % ALIGNMENT == 0):
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)


class Rows:
    """Batches of rows written in place into one aligned array."""

    def __init__(self, steps: int) -> None:
        self._steps = steps  # the number of batches, or negative when the dataset hides it
        self._rows: np.ndarray | None = None
        self._filled = 0

    def add(self, batch: np.ndarray) -> None:
        end = self._filled + len(batch)
        if self._rows is None or end > len(self._rows):
            held = 0 if self._rows is None else len(self._rows)
            # The first batch's size times the number of batches, when the dataset knows it.
            rows = max(end, self._steps * len(batch), 2 * held)
            grown = aligned_empty((rows, *batch.shape[1:]), batch.dtype)
            if self._rows is not None:
                grown[:self._filled] = self._rows[:self._filled]
            self._rows = grown
        self._rows[self._filled:end] = batch
        self._filled = end

    def array(self) -> np.ndarray:
        assert self._rows is not None, "no batch was added"
        return self._rows[:self._filled]
