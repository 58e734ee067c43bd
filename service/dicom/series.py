"""Slice geometry of a DICOM image series: sort the slices and check they form a regular 3D grid.

Every slice (a single-frame instance, or one frame of a multi-frame instance) is described
by a :class:`SliceInfo`. :func:`compute_geometry` sorts the slices along the slice normal
``cross(row, column)`` and refuses, with :class:`~service.errors.SeriesGeometryError`, any
series that is not a regular grid. It never repairs a series.

Tolerances (all documented in the messages they produce):

- :data:`ORIENTATION_TOLERANCE` (1e-4, unitless): largest difference of any direction cosine
  between two slices of one series.
- :data:`ORTHONORMAL_TOLERANCE` (1e-3, unitless): largest deviation of ImageOrientationPatient
  from two orthogonal unit vectors. Within it the vectors are re-orthonormalised, since they
  are stored as rounded decimal strings; beyond it the series is refused.
- :data:`PIXEL_SPACING_TOLERANCE_MM` (1e-3 mm): largest PixelSpacing difference between slices.
- :data:`GANTRY_TILT_TOLERANCE_DEG` (0.01 degree): largest GantryDetectorTilt accepted as zero.
- ``spacing_tolerance_mm`` (default :data:`DEFAULT_SPACING_TOLERANCE_MM` = 0.05 mm): largest
  deviation of a slice position from the regular grid fitted (least squares) through all slice
  positions, of a gap from a whole number of nominal (median) steps, and of a slice position from
  the line along the normal through the first slice; steps below it are duplicates. 0.05 mm is
  two orders of magnitude below radiotherapy set-up margins and far above the rounding of
  positions stored as decimal strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.errors import OptionError, SeriesGeometryError

ORIENTATION_TOLERANCE = 1e-4
ORTHONORMAL_TOLERANCE = 1e-3
PIXEL_SPACING_TOLERANCE_MM = 1e-3
GANTRY_TILT_TOLERANCE_DEG = 0.01
DEFAULT_SPACING_TOLERANCE_MM = 0.05

_MAX_LISTED = 8


@dataclass(frozen=True)
class SliceInfo:
    """Geometry and rescale of one 2D slice, as read from the header (``None`` = absent).

    Parameters
    ----------
    label
        How messages name the slice (no patient data: a hashed SOP Instance UID and numbers).
    instance_index, frame_index
        Index of the dataset in the series' list, and of the frame within it (0 if single-frame).
    ipp
        ImagePositionPatient: LPS position (mm) of the centre of the first pixel.
    iop
        ImageOrientationPatient: row direction cosines then column direction cosines.
    pixel_spacing
        PixelSpacing ``(row spacing, column spacing)`` in mm, DICOM's order.
    rows, columns
        Pixel matrix size.
    slope, intercept
        RescaleSlope and RescaleIntercept (modality LUT); ``None`` when absent.
    gantry_tilt_deg
        GantryDetectorTilt in degrees, when present.
    """

    label: str
    instance_index: int
    frame_index: int
    ipp: tuple[float, float, float] | None
    iop: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    rows: int | None
    columns: int | None
    slope: float | None
    intercept: float | None
    gantry_tilt_deg: float | None = None


@dataclass(frozen=True)
class SeriesGeometry:
    """A checked regular grid: slice order, spacing ``(x, y, z)`` mm, origin (LPS mm), direction."""

    order: tuple[int, ...]
    rows: int
    columns: int
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: npt.NDArray[np.float64]


def check_tolerance(spacing_tolerance_mm: float) -> float:
    """Validate the ``spacing_tolerance_mm`` option (finite, > 0, ≤ 1 mm)."""
    try:
        tol = float(spacing_tolerance_mm)
    except (TypeError, ValueError):
        tol = math.nan
    if not (math.isfinite(tol) and 0.0 < tol <= 1.0):
        raise OptionError(
            f"spacing_tolerance_mm must be a number in (0, 1] mm, got {spacing_tolerance_mm!r}: "
            f"pass a small positive tolerance such as {DEFAULT_SPACING_TOLERANCE_MM}."
        )
    return tol


def _require(slices: Sequence[SliceInfo]) -> None:
    for s in slices:
        for attr, tag in (
            ("ipp", "ImagePositionPatient (0020,0032)"),
            ("iop", "ImageOrientationPatient (0020,0037)"),
            ("pixel_spacing", "PixelSpacing (0028,0030)"),
            ("rows", "Rows (0028,0010)"),
            ("columns", "Columns (0028,0011)"),
        ):
            if getattr(s, attr) is None:
                raise SeriesGeometryError(
                    f"{s.label} has no {tag}, which is needed to place it in 3D: "
                    "export the series with its geometry (a 3D image series, not a screen capture)."
                )
        assert s.pixel_spacing is not None and s.rows is not None and s.columns is not None
        if min(s.pixel_spacing) <= 0 or s.rows < 1 or s.columns < 1:
            raise SeriesGeometryError(
                f"{s.label} has PixelSpacing {list(s.pixel_spacing)} mm and a {s.rows}x{s.columns} matrix; "
                "spacings must be positive and the matrix non-empty: the header is corrupt; export again."
            )


def _check_consistent(slices: Sequence[SliceInfo]) -> None:
    first = slices[0]
    for s in slices[1:]:
        if (s.rows, s.columns) != (first.rows, first.columns):
            raise SeriesGeometryError(
                f"Rows/Columns differ within the series: {first.label} is {first.rows}x{first.columns}, "
                f"{s.label} is {s.rows}x{s.columns}: select a series whose slices share one matrix size."
            )
        assert s.pixel_spacing is not None and first.pixel_spacing is not None
        if max(abs(a - b) for a, b in zip(s.pixel_spacing, first.pixel_spacing, strict=True)) > (
            PIXEL_SPACING_TOLERANCE_MM
        ):
            raise SeriesGeometryError(
                f"PixelSpacing differs within the series (tolerance {PIXEL_SPACING_TOLERANCE_MM} mm): "
                f"{first.label} has {list(first.pixel_spacing)}, {s.label} has {list(s.pixel_spacing)}: "
                "select a series with one in-plane pixel size."
            )
        assert s.iop is not None and first.iop is not None
        diff = max(abs(a - b) for a, b in zip(s.iop, first.iop, strict=True))
        if diff > ORIENTATION_TOLERANCE:
            raise SeriesGeometryError(
                f"ImageOrientationPatient differs within the series by {diff:.3g} (tolerance "
                f"{ORIENTATION_TOLERANCE}): {first.label} has {list(first.iop)}, {s.label} has "
                f"{list(s.iop)}: the series mixes orientations (e.g. a localizer); select one stack."
            )
    for s in slices:
        if s.gantry_tilt_deg is not None and abs(s.gantry_tilt_deg) > GANTRY_TILT_TOLERANCE_DEG:
            raise SeriesGeometryError(
                f"{s.label} has GantryDetectorTilt {s.gantry_tilt_deg} degrees (tolerance "
                f"{GANTRY_TILT_TOLERANCE_DEG}): tilted-gantry CT is not a rectilinear grid; "
                "resample it to an untilted grid first (e.g. with a tilt-correcting reconstruction)."
            )


def _axes(iop: Sequence[float], label: str) -> npt.NDArray[np.float64]:
    row = np.asarray(iop[:3], dtype=np.float64)
    col = np.asarray(iop[3:], dtype=np.float64)
    err = max(abs(float(np.linalg.norm(row)) - 1), abs(float(np.linalg.norm(col)) - 1), abs(float(row @ col)))
    if not err <= ORTHONORMAL_TOLERANCE:
        raise SeriesGeometryError(
            f"ImageOrientationPatient of {label} is {list(iop)}, not two orthogonal unit vectors "
            f"(deviation {err:.3g}, tolerance {ORTHONORMAL_TOLERANCE}): the header is corrupt; "
            "export the series again."
        )
    row = row / np.linalg.norm(row)
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    normal = np.cross(row, col)
    return np.column_stack([row, col, normal])


def _fmt(p: npt.NDArray[np.float64]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in p) + ")"


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def compute_geometry(slices: Sequence[SliceInfo], *, spacing_tolerance_mm: float) -> SeriesGeometry:
    """Sort ``slices`` along the slice normal and check that they form a regular 3D grid.

    Parameters
    ----------
    slices
        The slices of one series, in any order.
    spacing_tolerance_mm
        See the module docstring.

    Returns
    -------
    SeriesGeometry
        ``order`` indexes ``slices`` in increasing position along the normal; ``spacing_mm`` is
        ``(column spacing, row spacing, slice spacing)``; the slice spacing is the least-squares
        slope of all slice positions against their index; ``origin_mm`` is the first sorted
        slice's ImagePositionPatient; ``direction`` columns are row, column and normal cosines.

    Raises
    ------
    SeriesGeometryError
        Missing geometry tags, inconsistent size/spacing/orientation, gantry tilt, duplicate
        positions, missing slices, non-uniform spacing, or fewer than two slices.
    """
    tol = check_tolerance(spacing_tolerance_mm)
    if len(slices) < 2:
        raise SeriesGeometryError(
            f"the series has {len(slices)} slice(s); a 3D volume needs at least 2: "
            "select a multi-slice series (single images are not volumes)."
        )
    _require(slices)
    _check_consistent(slices)
    first = slices[0]
    assert first.iop is not None and first.pixel_spacing is not None
    assert first.rows is not None and first.columns is not None
    direction = _axes(first.iop, first.label)
    normal = direction[:, 2]
    ipp = np.array([s.ipp for s in slices], dtype=np.float64)
    proj = ipp @ normal
    order = np.argsort(proj, kind="stable")
    ipp_sorted, s_sorted = ipp[order], proj[order]

    offsets = ipp_sorted - ipp_sorted[0]
    in_plane = offsets - np.outer(offsets @ normal, normal)
    shear = np.linalg.norm(in_plane, axis=1)
    if float(shear.max()) > tol:
        worst = int(np.argmax(shear))
        raise SeriesGeometryError(
            f"slice positions are not along the slice normal: {slices[int(order[worst])].label} at "
            f"{_fmt(ipp_sorted[worst])} is {shear[worst]:.3f} mm off the normal through the first "
            f"slice (tolerance {tol} mm): gantry tilt or a sheared stack is not a rectilinear grid; "
            "resample it to an untilted grid first."
        )

    steps = np.diff(s_sorted)
    dup = np.flatnonzero(steps <= tol)
    if dup.size:
        where = [f"{_fmt(ipp_sorted[i])} ({slices[int(order[i])].label})" for i in dup]
        raise SeriesGeometryError(
            f"{dup.size} duplicate slice position(s) (closer than {tol} mm): {_listing(where)}: the "
            "series holds several stacks (echoes, phases, repeated acquisitions) or copies of the same "
            "file; separate them into one series per stack, or pass an explicit file list."
        )
    nominal = float(np.median(steps))
    missing: list[str] = []
    n_missing = 0
    for i, step in enumerate(steps):
        m = round(step / nominal)
        if m >= 2 and abs(step - m * nominal) <= tol * m:
            n_missing += m - 1
            shown = range(1, min(m, _MAX_LISTED + 1 - len(missing)) if len(missing) < _MAX_LISTED else 1)
            missing += [_fmt(ipp_sorted[i] + normal * nominal * j) for j in shown]
    if n_missing:
        more = f" and {n_missing - len(missing)} more" if n_missing > len(missing) else ""
        raise SeriesGeometryError(
            f"{n_missing} slice(s) missing from a series with {nominal:.4g} mm spacing; expected "
            f"slices at LPS positions (mm) {', '.join(missing)}{more}: the series is incomplete; "
            "send or export all of its instances."
        )
    index = np.arange(len(s_sorted), dtype=np.float64)
    slope, intercept = np.polyfit(index, s_sorted, 1)
    residual = np.abs(s_sorted - (slope * index + intercept))
    if float(residual.max()) > tol:
        worst = int(np.argmax(residual))
        odd = [f"{steps[i]:.4f} mm after {_fmt(ipp_sorted[i])}" for i in np.argsort(-np.abs(steps - nominal))]
        raise SeriesGeometryError(
            f"non-uniform slice spacing: nominal {nominal:.4f} mm, but the slice at "
            f"{_fmt(ipp_sorted[worst])} is {residual[worst]:.4f} mm off the regular grid fitted through all "
            f"positions (tolerance {tol} mm); most irregular steps: {_listing(odd[:3])}: resample the "
            "series to uniform slices first, or raise spacing_tolerance_mm if the deviation is acceptable."
        )
    row_mm, col_mm = first.pixel_spacing
    return SeriesGeometry(
        order=tuple(int(i) for i in order),
        rows=first.rows,
        columns=first.columns,
        spacing_mm=(float(col_mm), float(row_mm), float(slope)),
        origin_mm=(float(ipp_sorted[0][0]), float(ipp_sorted[0][1]), float(ipp_sorted[0][2])),
        direction=direction,
    )
