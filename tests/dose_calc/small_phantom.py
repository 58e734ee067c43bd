"""A small body phantom on a 4 mm grid for CT-vs-sCT comparisons (water body, bone block)."""

from __future__ import annotations

import numpy as np

from service.volume import Volume

SPACING_MM = 4.0
ORIGIN_MM = (-80.0, -100.0, -12.0)
X = ORIGIN_MM[0] + SPACING_MM * np.arange(41)
Y = ORIGIN_MM[1] + SPACING_MM * np.arange(51)
Z = ORIGIN_MM[2] + SPACING_MM * np.arange(7)
BONE_HU = 900.0
#: Bone block, posterior to the isocentre: y in [26, 70] mm, x in [-30, 30] mm (voxel boundaries).
BONE_THICKNESS_MM = 44.0
_BODY = (np.abs(Y) < 90)[:, None] & (np.abs(X) < 70)[None, :]
_BONE = ((Y > 26) & (Y < 70))[:, None] & (np.abs(X) < 30)[None, :]


def phantom_hu(*, bone: bool = True) -> np.ndarray:
    """HU array (z, y, x): a water body in air, with the bone block unless bone=False."""
    hu = np.full((Z.size, Y.size, X.size), -1000.0, dtype=np.float32)
    hu[:, _BODY] = 0.0
    if bone:
        hu[:, _BONE] = BONE_HU
    return hu


def with_bone(hu: np.ndarray, value_hu: float) -> np.ndarray:
    """Copy of ``hu`` with the bone block set to ``value_hu``."""
    out = hu.copy()
    out[:, _BONE] = value_hu
    return out


def ct(hu: np.ndarray) -> Volume:
    return Volume(hu, spacing_mm=(SPACING_MM,) * 3, origin_mm=ORIGIN_MM)
