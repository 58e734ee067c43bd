"""Per-slice geometry of an instance (classic single-frame or enhanced multi-frame), parsed safely.

Header values are read through :func:`element` and :func:`numbers`, which turn any corrupt
value into a typed error naming the tag and the instance.

An enhanced (multi-frame) CT/MR/PET instance stores the geometry of each frame in its
functional groups: PlanePositionSequence (ImagePositionPatient), PlaneOrientationSequence
(ImageOrientationPatient), PixelMeasuresSequence (PixelSpacing) and
PixelValueTransformationSequence (RescaleSlope/Intercept). Each is looked up in the frame's
item of PerFrameFunctionalGroupsSequence first, then in SharedFunctionalGroupsSequence.
A multi-frame instance without functional groups carries no per-frame position and is refused
by the geometry checks (:mod:`service.dicom.series`) with the missing tag named.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset

from service.dicom.series import SliceInfo
from service.errors import DicomError, SeriesGeometryError
from service.logs import hash_uid

#: The most frames accepted in one instance (a guard against corrupt NumberOfFrames).
MAX_FRAMES = 65535


def element(ds: Any, keyword: str, where: str) -> Any:
    """``ds.get(keyword)``, turning any parsing failure of a corrupt element into :class:`DicomError`."""
    try:
        return ds.get(keyword)
    except Exception as exc:  # pydicom raises many types on corrupt values
        raise DicomError(
            f"{keyword} of {where} cannot be parsed ({type(exc).__name__}): the header is corrupt; "
            "export the series again from the source system."
        ) from exc


def numbers(value: Any, count: int, *, name: str, where: str) -> tuple[float, ...] | None:
    """``count`` finite floats from a DICOM multi-valued element, ``None`` if absent.

    Raises
    ------
    SeriesGeometryError
        When the value is present but not ``count`` finite numbers.
    """
    if value is None or value == "":
        return None
    items = value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else [value]
    try:
        out = tuple(float(v) for v in items)
    except (TypeError, ValueError, OverflowError):
        out = ()
    if len(out) != count or not all(math.isfinite(v) for v in out):
        raise SeriesGeometryError(
            f"{name} of {where} must be {count} finite numbers, got {str(value)[:80]!r}: "
            "the header is corrupt; export the series again from the source system."
        )
    return out


def ipp_of(value: Any, where: str) -> tuple[float, float, float] | None:
    """ImagePositionPatient as three floats (mm), ``None`` if absent."""
    v = numbers(value, 3, name="ImagePositionPatient", where=where)
    return None if v is None else (v[0], v[1], v[2])


def iop_of(value: Any, where: str) -> tuple[float, float, float, float, float, float] | None:
    """ImageOrientationPatient as six floats, ``None`` if absent."""
    v = numbers(value, 6, name="ImageOrientationPatient", where=where)
    return None if v is None else (v[0], v[1], v[2], v[3], v[4], v[5])


def pixel_spacing_of(value: Any, where: str) -> tuple[float, float] | None:
    """PixelSpacing ``(row spacing, column spacing)`` in mm, ``None`` if absent."""
    v = numbers(value, 2, name="PixelSpacing", where=where)
    return None if v is None else (v[0], v[1])


def scalar_of(value: Any, name: str, where: str) -> float | None:
    """A single finite number, ``None`` if absent."""
    v = numbers(value, 1, name=name, where=where)
    return None if v is None else v[0]


def instance_label(ds: Dataset, index: int) -> str:
    """How messages name an instance: its position in the input and hashed SOP Instance UID."""
    try:
        uid = str(ds.get("SOPInstanceUID", "") or "")
        number = ds.get("InstanceNumber", None)
    except Exception:  # corrupt values: the label must never fail
        uid, number = "", None
    text = f"instance #{index + 1} (uid {hash_uid(uid)}"
    return text + (f", InstanceNumber {number})" if number not in (None, "") else ")")


def _int(ds: Any, keyword: str, where: str) -> int | None:
    value = element(ds, keyword, where)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise DicomError(
            f"{keyword} of {where} must be an integer, got {str(value)[:40]!r}: the header is corrupt; "
            "export the series again."
        ) from None


def _float(ds: Any, keyword: str, where: str) -> float | None:
    return scalar_of(element(ds, keyword, where), keyword, where)


def number_of_frames(ds: Dataset, where: str) -> int:
    """NumberOfFrames (1 when absent), checked to lie in ``[1, MAX_FRAMES]``."""
    frames = _int(ds, "NumberOfFrames", where)
    if frames is None:
        return 1
    if not 1 <= frames <= MAX_FRAMES:
        raise DicomError(
            f"NumberOfFrames of {where} is {frames}, expected 1 to {MAX_FRAMES}: "
            "the header is corrupt; export the series again."
        )
    return frames


def is_multiframe(ds: Dataset) -> bool:
    """True for an instance with functional groups or more than one frame."""
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except Exception:
        frames = 1
    return frames > 1 or "PerFrameFunctionalGroupsSequence" in ds


def _item(group: Any, sequence: str, where: str) -> Any:
    """The first item of ``sequence`` inside a functional-group item, or ``None``."""
    if group is None:
        return None
    seq = element(group, sequence, where)
    if not seq:
        return None
    try:
        return seq[0]
    except Exception as exc:
        raise DicomError(
            f"{sequence} of {where} cannot be read ({type(exc).__name__}): the header is corrupt."
        ) from exc


def _lookup(groups: tuple[Any, Any], sequence: str, keyword: str, where: str) -> Any:
    for group in groups:
        item = _item(group, sequence, where)
        if item is not None:
            value = element(item, keyword, where)
            if value is not None:
                return value
    return None


def _classic(ds: Dataset, index: int) -> SliceInfo:
    where = instance_label(ds, index)
    return SliceInfo(
        label=where,
        instance_index=index,
        frame_index=0,
        ipp=ipp_of(element(ds, "ImagePositionPatient", where), where),
        iop=iop_of(element(ds, "ImageOrientationPatient", where), where),
        pixel_spacing=pixel_spacing_of(element(ds, "PixelSpacing", where), where),
        rows=_int(ds, "Rows", where),
        columns=_int(ds, "Columns", where),
        slope=_float(ds, "RescaleSlope", where),
        intercept=_float(ds, "RescaleIntercept", where),
        gantry_tilt_deg=_float(ds, "GantryDetectorTilt", where),
    )


def _frames(ds: Dataset, index: int) -> list[SliceInfo]:
    where = instance_label(ds, index)
    n = number_of_frames(ds, where)
    per_frame = element(ds, "PerFrameFunctionalGroupsSequence", where)
    shared_seq = element(ds, "SharedFunctionalGroupsSequence", where)
    if per_frame is not None and len(per_frame) != n:
        raise DicomError(
            f"PerFrameFunctionalGroupsSequence of {where} has {len(per_frame)} item(s) for "
            f"{n} frame(s): the header is corrupt; export the series again."
        )
    shared = shared_seq[0] if shared_seq else None
    rows, columns = _int(ds, "Rows", where), _int(ds, "Columns", where)
    out: list[SliceInfo] = []
    for f in range(n):
        label = f"frame {f + 1} of {where}"
        groups = (per_frame[f] if per_frame is not None else None, shared)
        ipp = _lookup(groups, "PlanePositionSequence", "ImagePositionPatient", label)
        iop = _lookup(groups, "PlaneOrientationSequence", "ImageOrientationPatient", label)
        spacing = _lookup(groups, "PixelMeasuresSequence", "PixelSpacing", label)
        slope = _lookup(groups, "PixelValueTransformationSequence", "RescaleSlope", label)
        intercept = _lookup(groups, "PixelValueTransformationSequence", "RescaleIntercept", label)
        tilt = _lookup(groups, "CTAcquisitionDetailsSequence", "GantryDetectorTilt", label)
        out.append(
            SliceInfo(
                label=label,
                instance_index=index,
                frame_index=f,
                ipp=ipp_of(ipp, label),
                iop=iop_of(iop, label),
                pixel_spacing=pixel_spacing_of(spacing, label),
                rows=rows,
                columns=columns,
                slope=scalar_of(slope, "RescaleSlope", label),
                intercept=scalar_of(intercept, "RescaleIntercept", label),
                gantry_tilt_deg=scalar_of(tilt, "GantryDetectorTilt", label),
            )
        )
    return out


def slices_of(ds: Dataset, index: int) -> list[SliceInfo]:
    """The slices of one instance: one for a classic image, one per frame for a multi-frame one.

    Parameters
    ----------
    ds
        The instance (pixel data not needed).
    index
        Its position in the series' list of datasets (kept in each :class:`SliceInfo`).

    Raises
    ------
    DicomError, SeriesGeometryError
        A geometry or rescale element is present but unparseable.
    """
    if is_multiframe(ds):
        return _frames(ds, index)
    return [_classic(ds, index)]
