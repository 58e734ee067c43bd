"""Body masks: which voxels are inside the patient (deterministic, shared with training).

Kinds (``body_mask`` in a card):

``none`` {}
    Every voxel is inside.
``hu_threshold`` {threshold_hu} -- CT and CBCT
    ``x > threshold_hu``; keep the largest 3D connected component (6-connectivity); fill
    holes slice by slice (2D, each axial slice).
``relative_threshold`` {reference_percentile, fraction} -- MR
    ``x > fraction * P`` where ``P`` is the ``reference_percentile`` (0-100) of the whole
    volume; then largest component and slice-wise hole filling as above.
``smoothed_threshold`` {sigma_mm, threshold} -- PET (SUV)
    Gaussian smoothing with standard deviation ``sigma_mm`` (converted per axis with the
    voxel spacing, edges replicated), then ``> threshold`` (SUV), then slice-wise hole
    filling. No component selection: arms may be disconnected from the trunk in noisy PET.

The result is a boolean array ``(z, y, x)``. An empty mask raises :class:`InputError`: it
means the input is not what the card expects.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from service.errors import InputError
from service.inference.spec import SpecError, Where
from service.volume import Modality, Volume

BoolArray = npt.NDArray[np.bool_]


class MaskKind(enum.StrEnum):
    """The body-mask methods (see the module docstring)."""

    NONE = "none"
    HU_THRESHOLD = "hu_threshold"
    RELATIVE_THRESHOLD = "relative_threshold"
    SMOOTHED_THRESHOLD = "smoothed_threshold"


#: The input modality each kind suits (``none`` suits all).
MASK_MODALITY: dict[MaskKind, Modality] = {
    MaskKind.HU_THRESHOLD: Modality.CT,
    MaskKind.RELATIVE_THRESHOLD: Modality.MR,
    MaskKind.SMOOTHED_THRESHOLD: Modality.PT,
}

_PARAMETERS: dict[MaskKind, set[str]] = {
    MaskKind.NONE: set(),
    MaskKind.HU_THRESHOLD: {"threshold_hu"},
    MaskKind.RELATIVE_THRESHOLD: {"reference_percentile", "fraction"},
    MaskKind.SMOOTHED_THRESHOLD: {"sigma_mm", "threshold"},
}


@dataclass(frozen=True)
class MaskSpec:
    """A body-mask method and its parameters (units in the names)."""

    kind: MaskKind
    threshold_hu: float | None = None
    reference_percentile: float | None = None
    fraction: float | None = None
    sigma_mm: float | None = None
    threshold: float | None = None


def parse_mask_spec(where: Where | None, obj: Mapping[str, Any], modality: Modality | str) -> MaskSpec:
    """Validate a ``body_mask`` object for an input of ``modality``."""
    where = where or Where("body_mask")
    modality = Modality.parse(modality)
    kind_text = where.get(obj, "kind", str)
    try:
        kind = MaskKind(kind_text)
    except ValueError:
        allowed = [k.value for k in MaskKind]
        raise SpecError(f"{where.path}.kind must be one of {allowed}, got {kind_text!r}: fix it.") from None
    where.keys(obj, required={"kind"} | _PARAMETERS[kind])
    if kind in MASK_MODALITY and MASK_MODALITY[kind] is not modality:
        raise SpecError(
            f"{where.path}.kind {kind.value!r} is for {MASK_MODALITY[kind].value} inputs, but the input "
            f"modality is {modality.value}: use the kind made for {modality.value} (or 'none')."
        )
    values = {key: where.number(obj, key) for key in _PARAMETERS[kind]}
    if kind is MaskKind.RELATIVE_THRESHOLD and not (
        0 <= values["reference_percentile"] <= 100 and 0 < values["fraction"] < 1
    ):
        raise SpecError(
            f"{where.path} needs 0 <= reference_percentile <= 100 and 0 < fraction < 1, got {values}: "
            "fix them."
        )
    if kind is MaskKind.SMOOTHED_THRESHOLD and values["sigma_mm"] < 0:
        raise SpecError(f"{where.path}.sigma_mm must be >= 0, got {values['sigma_mm']}: fix it.")
    return MaskSpec(kind, **values)


def largest_component(mask: BoolArray) -> BoolArray:
    """The largest 6-connected component of a 3D mask (ties: the lowest label)."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.asarray(labels == int(np.argmax(sizes)))


#: In-plane 4-connectivity, no connection between slices.
_SLICE_CROSS = np.zeros((3, 3, 3), dtype=bool)
_SLICE_CROSS[1] = ndimage.generate_binary_structure(2, 1)


def fill_holes_slicewise(mask: BoolArray) -> BoolArray:
    """Fill holes in each axial slice ``mask[k]``: background regions (4-connected in the
    slice) not touching the slice border become foreground. Same result as
    ``scipy.ndimage.binary_fill_holes`` per slice, computed with one labelling pass."""
    labels, count = ndimage.label(~mask, structure=_SLICE_CROSS)
    if count == 0:
        return mask.copy()
    border = np.zeros(count + 1, dtype=bool)
    for edge in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
        border[np.unique(edge)] = True
    border[0] = False
    return np.asarray(~border[labels])


def body_mask(volume: Volume, spec: MaskSpec) -> BoolArray:
    """The body mask of ``volume`` by ``spec``: boolean ``(z, y, x)`` on the volume's grid.

    Raises
    ------
    InputError
        The volume's modality does not suit the kind, or the mask is empty.
    """
    array = volume.array
    if spec.kind is MaskKind.NONE:
        return np.ones(array.shape, dtype=bool)
    wanted = MASK_MODALITY[spec.kind]
    if volume.modality is not wanted:
        raise InputError(
            f"body_mask kind {spec.kind.value!r} needs a {wanted.value} volume, got "
            f"{volume.modality.value}: pass the modality the model expects."
        )
    if spec.kind is MaskKind.HU_THRESHOLD:
        assert spec.threshold_hu is not None
        threshold = spec.threshold_hu
        mask = fill_holes_slicewise(largest_component(array > threshold))
    elif spec.kind is MaskKind.RELATIVE_THRESHOLD:
        assert spec.reference_percentile is not None and spec.fraction is not None
        threshold = spec.fraction * float(np.percentile(array, spec.reference_percentile))
        mask = fill_holes_slicewise(largest_component(array > threshold))
    else:
        assert spec.sigma_mm is not None and spec.threshold is not None
        threshold = spec.threshold
        sx, sy, sz = volume.spacing_mm
        sigma = (spec.sigma_mm / sz, spec.sigma_mm / sy, spec.sigma_mm / sx)
        smooth = ndimage.gaussian_filter(array, sigma=sigma, mode="nearest") if spec.sigma_mm > 0 else array
        mask = fill_holes_slicewise(smooth > threshold)
    if not mask.any():
        raise InputError(
            f"the body mask ({spec.kind.value}, threshold {threshold:g} {volume.unit.value}) is empty: "
            "no voxel is inside the patient; check the input modality/unit or the card's body_mask."
        )
    return mask
