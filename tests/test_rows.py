"""Cached rows: held once in an aligned array, shared with TensorFlow when it allows."""

from __future__ import annotations

import numpy as np
import pytest

from ftcourse.rows import ALIGNMENT, Rows, aligned_empty, as_tensor


@pytest.mark.parametrize(("shape", "dtype"), [((3, 5, 5, 7), "float32"), ((1,), "uint8"),
                                              ((9, 3), "float64")])
def test_aligned_empty(shape: tuple[int, ...], dtype: str) -> None:
    array = aligned_empty(shape, np.dtype(dtype))
    assert array.shape == shape and array.dtype == dtype
    assert array.flags.c_contiguous and array.flags.writeable
    assert array.ctypes.data % ALIGNMENT == 0


@pytest.mark.parametrize("steps", [3, -2])  # -2: tf.data's "unknown length"
def test_rows_hold_uneven_batches_in_order(steps: int) -> None:
    batches = [np.full((4, 2), i, "float32") for i in range(2)] + [np.full((1, 2), 2, "float32")]
    rows = Rows(steps)
    for batch in batches:
        rows.add(batch)
    np.testing.assert_array_equal(rows.array(), np.concatenate(batches))
    assert rows.array().ctypes.data % ALIGNMENT == 0


def test_rows_are_shared_with_the_tensor_not_copied() -> None:
    rows = Rows(1)
    rows.add(np.arange(12, dtype="float32").reshape(3, 4))
    array = rows.array()
    tensor = as_tensor(array)
    array[1, 2] = -1.0  # the tensor reads the same memory
    assert float(tensor[1, 2]) == -1.0
    del array, rows  # the tensor keeps the memory alive
    np.testing.assert_array_equal(tensor.numpy()[0], [0, 1, 2, 3])


@pytest.mark.parametrize("kind", ["unaligned", "float64", "read-only", "strided", "list"])
def test_other_arrays_are_copied(kind: str) -> None:
    """Anything TensorFlow cannot share is copied: same values, the source left alone."""
    base = aligned_empty((5, 4), np.dtype("float32"))
    base[:] = np.arange(20).reshape(5, 4)
    array = {"unaligned": base.reshape(-1)[1:], "float64": base.astype("float64"),
             "read-only": base.copy(), "strided": base[:, ::2], "list": base.tolist()}[kind]
    if kind == "read-only":
        array.flags.writeable = False
    expected = np.array(array)
    tensor = as_tensor(array)
    np.testing.assert_array_equal(tensor.numpy(), expected)
    if isinstance(array, np.ndarray) and array.flags.writeable:
        array[...] = 0
        np.testing.assert_array_equal(tensor.numpy(), expected)
