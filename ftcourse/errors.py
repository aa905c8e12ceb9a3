"""The errors the course raises, each with a message that names the fix."""

from __future__ import annotations


class CourseError(ValueError):
    """Bad input to an ``ftcourse`` helper; the message says how to fix it."""


class DownloadError(CourseError):
    """Weights or a dataset could not be downloaded (for example, no network)."""


OFFLINE_HINT = (
    "Run `ftcourse fetch` on a machine with internet access to fill the Keras cache, "
    "or set FTCOURSE_PROFILE=ci to run the course offline on small built-in data."
)
