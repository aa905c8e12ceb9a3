"""Checks on figures a benchmark prints rounded: the tests compare them within the rounding."""

from __future__ import annotations


def ratio_within_rounding(ratio: float, top: float, bottom: float, step: float = 0.01,
                          ratio_step: float = 0.01) -> bool:
    """Whether a printed ``ratio`` (rounded to ``ratio_step``) can be ``top / bottom`` when
    those were printed rounded to ``step`` (each off by up to half its step)."""
    half = step / 2
    low = (top - half) / (bottom + half)
    high = (top + half) / (bottom - half) if bottom > half else float("inf")
    return low - ratio_step / 2 <= ratio <= high + ratio_step / 2
