"""Every notebook cell that nbval runs (lessons/) must print no TensorFlow log line and no
Python warning: a learner reads red as "broken", and a retracing warning as a bug (see
``ftcourse.startup``)."""

from __future__ import annotations

from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    outputs = getattr(item, "test_outputs", None)  # set by nbval's cell items only
    if outputs:
        from ftcourse.startup import unwanted_lines

        # Both streams: TensorFlow's Python logger may write to either.
        text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        found = unwanted_lines(text)
        if found:
            item.raise_cell_error(  # type: ignore[attr-defined]
                "the cell printed TensorFlow log lines or warnings:\n"
                + "\n".join(found[:10]))
    return result
