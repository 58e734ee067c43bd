"""Sliding-window tiling of 2D images with blending weights.

Windows are ``size`` pixels along an axis (or the whole axis when it is not longer), start
at 0 and step by ``size - overlap``; the last window is flush with the end. Predictions of
overlapping windows are averaged with weights that ramp up over ``overlap`` pixels from each
window edge: linear ``w(d) = (d + 1) / (overlap + 1)`` or cosine
``w(d) = (1 - cos(pi (d + 1) / (overlap + 1))) / 2`` (``d`` = pixels to the nearest window
edge, ``w = 1`` beyond the ramp). Weights are positive everywhere, so every pixel is
covered, and a pointwise model gives the same result tiled or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Window:
    """A tile: rows ``y0:y0+height``, columns ``x0:x0+width``."""

    y0: int
    x0: int
    height: int
    width: int


def starts(n: int, size: int, overlap: int) -> list[int]:
    """Window starts along an axis of ``n`` pixels (see the module docstring)."""
    if n <= size:
        return [0]
    stride = size - overlap
    out = list(range(0, n - size, stride))
    out.append(n - size)
    return out


def windows(height: int, width: int, size: int, overlap: int) -> list[Window]:
    """All windows covering a ``height x width`` image, row-major."""
    return [
        Window(y0, x0, min(size, height), min(size, width))
        for y0 in starts(height, size, overlap)
        for x0 in starts(width, size, overlap)
    ]


def ramp(length: int, overlap: int, blend: str) -> FloatArray:
    """1D weights of a window of ``length`` pixels."""
    d = np.minimum(np.arange(length), np.arange(length)[::-1]).astype(np.float64)
    if overlap <= 0:
        return np.ones(length, dtype=np.float32)
    t = np.minimum((d + 1.0) / (overlap + 1.0), 1.0)
    w = t if blend == "linear" else 0.5 - 0.5 * np.cos(math.pi * t)
    return np.asarray(w, dtype=np.float32)


def weights(window: Window, overlap: int, blend: str) -> FloatArray:
    """2D weights ``(height, width)`` of a window."""
    return np.outer(ramp(window.height, overlap, blend), ramp(window.width, overlap, blend))
