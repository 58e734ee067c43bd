"""Synthetic CT phantoms for the dose calculation tests (2 mm voxels, LPS, identity direction)."""

from __future__ import annotations

import numpy as np

from service.volume import Volume

SPACING_MM = 2.0
#: Voxel centres: x = -90 .. 90, y = -110 .. 110, z = -40 .. 40 (mm); (0, 0, 0) is a voxel centre.
ORIGIN_MM = (-90.0, -110.0, -40.0)
SHAPE_ZYX = (41, 111, 91)
#: The water block spans y in [-101, 101] mm and x in [-81, 81] mm (voxel boundaries), all z.
SURFACE_Y_MM = -101.0


def axis_mm(axis: str) -> np.ndarray:
    """Voxel-centre coordinates (mm) along 'x', 'y' or 'z'."""
    index = {"x": 0, "y": 1, "z": 2}[axis]
    size = SHAPE_ZYX[::-1][index]
    return ORIGIN_MM[index] + SPACING_MM * np.arange(size)


def water_phantom() -> np.ndarray:
    """HU array (z, y, x): water block in air."""
    hu = np.full(SHAPE_ZYX, -1000.0, dtype=np.float32)
    y = axis_mm("y")
    x = axis_mm("x")
    rows = (y > -101) & (y < 101)
    cols = np.abs(x) < 81
    hu[:, rows[:, None] & cols[None, :]] = 0.0
    return hu


def with_slab(hu: np.ndarray, y_from_mm: float, y_to_mm: float, value_hu: float) -> np.ndarray:
    """Copy of ``hu`` with the water between y_from and y_to (voxel boundaries, mm) set to value_hu."""
    out = hu.copy()
    y = axis_mm("y")
    rows = (y > y_from_mm) & (y < y_to_mm)
    water = out[:, rows, :] == 0.0
    block = out[:, rows, :]
    block[water] = value_hu
    out[:, rows, :] = block
    return out


def ct(hu: np.ndarray) -> Volume:
    return Volume(hu, spacing_mm=(SPACING_MM,) * 3, origin_mm=ORIGIN_MM)


def index_of(axis: str, value_mm: float) -> int:
    coords = axis_mm(axis)
    i = int(np.argmin(np.abs(coords - value_mm)))
    assert abs(coords[i] - value_mm) < 1e-6, f"{value_mm} mm is not a voxel centre on {axis}"
    return i
