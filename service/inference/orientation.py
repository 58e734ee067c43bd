"""Lossless reorientation to the axial order models are trained in.

Models see axial slices in the order of an axial DICOM series read by
:func:`service.dicom.reader.read_series`: index axis i runs towards patient left (+x LPS),
j towards posterior (+y), k towards superior (+z), i.e. ``direction`` = identity. A volume
stored otherwise (sagittal or coronal acquisitions, NIfTI files with flipped axes) is
re-indexed -- axes permuted and reversed, no interpolation -- before inference and the
result re-indexed back, so the output lies exactly on the input grid.

Each index axis is assigned to the patient axis it is most aligned with (the permutation
maximising the summed absolute direction cosines). Oblique volumes stay oblique: the
model then runs on slices tilted by up to :attr:`Reorientation.obliquity_deg` from axial.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.volume import Volume

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Reorientation:
    """``source_axis[c]`` = index axis (0 i, 1 j, 2 k) feeding patient axis ``c`` (0 x, 1 y, 2 z);
    ``reversed[c]``: that index axis runs against the patient axis."""

    source_axis: tuple[int, int, int]
    reversed: tuple[bool, bool, bool]
    obliquity_deg: float

    @property
    def identity(self) -> bool:
        """True when the volume is already in the canonical order."""
        return self.source_axis == (0, 1, 2) and not any(self.reversed)

    def describe(self) -> str:
        """E.g. ``'x<-k (reversed), y<-j, z<-i'``."""
        names = "ijk"
        return ", ".join(
            f"{'xyz'[c]}<-{names[a]}{' (reversed)' if r else ''}"
            for c, (a, r) in enumerate(zip(self.source_axis, self.reversed, strict=True))
        )


def plan(direction: npt.ArrayLike) -> Reorientation:
    """The re-indexing that brings a volume of this ``direction`` closest to axial LPS order."""
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)  # rows: x y z; columns: i j k
    best = max(itertools.permutations(range(3)), key=lambda p: sum(abs(d[c, p[c]]) for c in range(3)))
    source = (best[0], best[1], best[2])
    flips = (bool(d[0, source[0]] < 0), bool(d[1, source[1]] < 0), bool(d[2, source[2]] < 0))
    cosine = min(abs(d[c, source[c]]) for c in range(3))
    return Reorientation(source, flips, math.degrees(math.acos(min(1.0, cosine))))


def _numpy_order(p: Reorientation) -> list[int]:
    # Canonical numpy axis n holds patient axis c = 2 - n, fed by index axis p.source_axis[c],
    # which is numpy axis 2 - source_axis[c] of the stored (k, j, i) array.
    return [2 - p.source_axis[2 - n] for n in range(3)]


def to_canonical(volume: Volume, p: Reorientation) -> Volume:
    """``volume`` re-indexed by ``p`` (same voxels and physical positions; no interpolation)."""
    if p.identity:
        return volume
    array = np.transpose(volume.array, _numpy_order(p))
    flip_axes = tuple(2 - c for c in range(3) if p.reversed[c])
    if flip_axes:
        array = np.flip(array, axis=flip_axes)
    sizes = volume.size_xyz
    start = [0, 0, 0]  # source index (i, j, k) of the canonical first voxel
    for c in range(3):
        if p.reversed[c]:
            start[p.source_axis[c]] = sizes[p.source_axis[c]] - 1
    direction = np.stack(
        [volume.direction[:, p.source_axis[c]] * (-1.0 if p.reversed[c] else 1.0) for c in range(3)], axis=1
    )
    origin = volume.index_to_lps(start)
    return Volume(
        np.ascontiguousarray(array),
        spacing_mm=(
            volume.spacing_mm[p.source_axis[0]],
            volume.spacing_mm[p.source_axis[1]],
            volume.spacing_mm[p.source_axis[2]],
        ),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=direction,
        modality=volume.modality,
        unit=volume.unit,
    )


def from_canonical(array: FloatArray, p: Reorientation) -> FloatArray:
    """Undo :func:`to_canonical` on an array computed on the canonical grid."""
    if p.identity:
        return array
    flip_axes = tuple(2 - c for c in range(3) if p.reversed[c])
    if flip_axes:
        array = np.flip(array, axis=flip_axes)
    return np.ascontiguousarray(np.transpose(array, np.argsort(_numpy_order(p))))
