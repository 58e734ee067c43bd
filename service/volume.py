"""The :class:`Volume`: a 3D image on a physical grid, with its modality and unit.

Conventions (the same as DICOM patient coordinates and ITK):

- ``array`` is float32 indexed ``[k, j, i]`` = ``(z, y, x)``: slice, row, column.
- ``spacing_mm`` is ``(di, dj, dk)``: column spacing, row spacing, slice spacing (mm),
  i.e. in ``(x, y, z)`` order, as SimpleITK reports it.
- ``origin_mm`` is the LPS position (mm) of the *centre* of voxel ``[0, 0, 0]``.
- ``direction`` is a 3x3 matrix whose *columns* are the LPS unit vectors of the index
  axes i (along a row), j (down a column) and k (slice normal, increasing slice index).

So the LPS position of voxel ``[k, j, i]`` is
``origin_mm + direction @ (spacing_mm * (i, j, k))``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from service.errors import NumericError, VolumeError

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk
    from pydicom.dataset import Dataset

FloatArray = npt.NDArray[np.float32]

#: Tolerance on direction-cosine orthonormality (absolute, unitless).
DIRECTION_TOLERANCE = 1e-4


class Modality(enum.StrEnum):
    """Imaging modality, with DICOM's Modality codes as values."""

    CT = "CT"
    MR = "MR"
    PT = "PT"
    RTDOSE = "RTDOSE"

    @classmethod
    def parse(cls, value: Modality | str) -> Modality:
        """Accept an enum member or its string value (case-insensitive; 'PET' means PT)."""
        if isinstance(value, Modality):
            return value
        text = str(value).strip().upper()
        if text == "PET":
            text = "PT"
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise VolumeError(
                f"modality must be one of {allowed}, got {value!r}: pass one of these codes."
            ) from None


class Unit(enum.StrEnum):
    """Unit of the voxel values."""

    HU = "HU"
    SUVBW = "SUVbw"
    BQML = "Bq/ml"
    MR_AU = "MR_AU"  # MR arbitrary units
    GY = "Gy"  # absorbed dose

    @classmethod
    def parse(cls, value: Unit | str) -> Unit:
        """Accept an enum member or its string value (case-insensitive)."""
        if isinstance(value, Unit):
            return value
        text = str(value).strip()
        for member in cls:
            if text.lower() in (member.value.lower(), member.name.lower()):
                return member
        if text.upper() in ("BQML", "BQ/ML"):
            return cls.BQML
        allowed = ", ".join(m.value for m in cls)
        raise VolumeError(f"unit must be one of {allowed}, got {value!r}: pass one of these units.")


#: The unit each modality may carry.
ALLOWED_UNITS: dict[Modality, frozenset[Unit]] = {
    Modality.CT: frozenset({Unit.HU}),
    Modality.MR: frozenset({Unit.MR_AU}),
    Modality.PT: frozenset({Unit.SUVBW, Unit.BQML}),
    Modality.RTDOSE: frozenset({Unit.GY}),
}


@dataclass(frozen=True)
class SourceSeries:
    """What a derived DICOM series needs to know about the series it came from.

    Parameters
    ----------
    study_instance_uid, series_instance_uid, frame_of_reference_uid, sop_class_uid
        UIDs of the source series.
    sop_instance_uids
        SOP Instance UID of each source slice in volume slice order (index k). For a
        multi-frame source it holds the one instance UID.
    header
        A copy of the first instance with pixel data and per-frame data removed: the
        patient, study, equipment and (for PET) radiopharmaceutical modules are copied
        from it into derived series.
    suvbw_per_bqml
        For PET, the factor turning Bq/ml into SUVbw (g/ml), from the QIBA procedure.
    """

    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_class_uid: str
    sop_instance_uids: tuple[str, ...]
    header: Dataset | None = field(default=None, compare=False, repr=False)
    suvbw_per_bqml: float | None = None


def _as_triple(name: str, value: Any, *, positive: bool) -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise VolumeError(f"{name} must be three numbers (x, y, z) in mm, got {value!r}.") from None
    if len(triple) != 3 or not all(np.isfinite(triple)):
        raise VolumeError(f"{name} must be three finite numbers (x, y, z) in mm, got {value!r}.")
    if positive and not all(v > 0 for v in triple):
        raise VolumeError(
            f"{name} must be three positive numbers (x, y, z) in mm, got {value!r}: "
            "pass the voxel size in millimetres."
        )
    return (triple[0], triple[1], triple[2])


def _as_direction(value: Any) -> npt.NDArray[np.float64]:
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise VolumeError(f"direction must be a 3x3 matrix, got {value!r}.") from None
    if matrix.size == 9:
        matrix = matrix.reshape(3, 3)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise VolumeError(f"direction must be a finite 3x3 matrix, got shape {matrix.shape}.")
    if not np.allclose(matrix.T @ matrix, np.eye(3), atol=DIRECTION_TOLERANCE):
        raise VolumeError(
            f"direction must be orthonormal (columns are unit axis vectors), got {matrix.tolist()}: "
            "pass direction cosines, not a scaled affine."
        )
    matrix.setflags(write=False)
    result: npt.NDArray[np.float64] = matrix
    return result


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image on a physical grid (see the module docstring for conventions).

    Parameters
    ----------
    array
        Voxel values, shape ``(z, y, x)``; converted to C-contiguous float32. Must be finite.
    spacing_mm
        ``(x, y, z)`` voxel size in millimetres.
    origin_mm
        LPS position of the centre of voxel ``[0, 0, 0]`` in millimetres.
    direction
        3x3 direction cosines, columns = LPS unit vectors of the i, j, k axes.
    modality
        :class:`Modality` or its code (``"CT"``, ``"MR"``, ``"PT"``).
    unit
        :class:`Unit` or its value; must suit the modality.
    source
        The source DICOM series, when read from DICOM.
    """

    array: FloatArray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: npt.NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    modality: Modality = Modality.CT
    unit: Unit = Unit.HU
    source: SourceSeries | None = None

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3 or min(array.shape, default=0) < 1:
            raise VolumeError(
                f"array must be 3D (z, y, x) with at least one voxel per axis, got shape {array.shape}."
            )
        if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
            raise VolumeError(f"array must hold real numbers, got dtype {array.dtype}.")
        with np.errstate(over="ignore", invalid="ignore"):
            arr32 = np.ascontiguousarray(array, dtype=np.float32)
        if not np.all(np.isfinite(arr32)):
            bad = int(np.count_nonzero(~np.isfinite(arr32)))
            raise NumericError(
                f"array has {bad} NaN or infinite voxel(s) (or values beyond float32 range): "
                "fix the computation or input that produced them."
            )
        if arr32 is array:
            # No copy was needed: freeze a view, leaving the caller's own array writable.
            arr32 = arr32.view()
        arr32.setflags(write=False)
        modality = Modality.parse(self.modality)
        unit = Unit.parse(self.unit)
        if unit not in ALLOWED_UNITS[modality]:
            allowed = ", ".join(sorted(u.value for u in ALLOWED_UNITS[modality]))
            raise VolumeError(
                f"unit {unit.value!r} does not suit modality {modality.value}: use one of {allowed}."
            )
        object.__setattr__(self, "array", arr32)
        object.__setattr__(self, "spacing_mm", _as_triple("spacing_mm", self.spacing_mm, positive=True))
        object.__setattr__(self, "origin_mm", _as_triple("origin_mm", self.origin_mm, positive=False))
        object.__setattr__(self, "direction", _as_direction(self.direction))
        object.__setattr__(self, "modality", modality)
        object.__setattr__(self, "unit", unit)

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(z, y, x)``."""
        z, y, x = self.array.shape
        return (int(z), int(y), int(x))

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        """Number of voxels along ``(x, y, z)`` (SimpleITK's order)."""
        z, y, x = self.shape
        return (x, y, z)

    def affine_lps(self) -> npt.NDArray[np.float64]:
        """4x4 matrix mapping voxel index ``(i, j, k, 1)`` to LPS position in mm."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction * np.asarray(self.spacing_mm)[None, :]
        affine[:3, 3] = self.origin_mm
        return affine

    def index_to_lps(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """LPS positions (mm) of voxel indices given as ``(..., 3)`` in ``(i, j, k)`` order."""
        idx = np.asarray(ijk, dtype=np.float64)
        scaled = self.direction * np.asarray(self.spacing_mm, dtype=np.float64)[None, :]
        positions: npt.NDArray[np.float64] = idx @ scaled.T + np.asarray(self.origin_mm, dtype=np.float64)
        return positions

    def same_grid(self, other: Volume, *, atol_mm: float = 1e-3) -> bool:
        """True when both volumes sample the same physical points (within ``atol_mm``)."""
        if self.shape != other.shape:
            return False
        corners = np.array([[0, 0, 0], [s - 1 for s in self.size_xyz]], dtype=np.float64)
        return bool(
            np.allclose(self.index_to_lps(corners), other.index_to_lps(corners), atol=atol_mm)
            and np.allclose(self.direction, other.direction, atol=DIRECTION_TOLERANCE)
        )

    # ------------------------------------------------------------------ derived
    def with_array(
        self,
        array: npt.ArrayLike,
        *,
        modality: Modality | str | None = None,
        unit: Unit | str | None = None,
    ) -> Volume:
        """A volume on the same grid (and source) with new values, modality or unit."""
        new = np.asarray(array)
        if new.shape != self.array.shape:
            raise VolumeError(
                f"array shape {new.shape} differs from the grid's {self.array.shape}: "
                "resample onto the grid first."
            )
        return replace(
            self,
            array=new,
            modality=self.modality if modality is None else Modality.parse(modality),
            unit=self.unit if unit is None else Unit.parse(unit),
        )

    # ------------------------------------------------------------------ SimpleITK
    def to_sitk(self) -> sitk.Image:
        """A SimpleITK float32 image with the same geometry (ITK uses LPS too)."""
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(self.array)
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_mm)
        image.SetDirection(tuple(float(v) for v in self.direction.ravel()))
        return image

    @classmethod
    def from_sitk(
        cls,
        image: sitk.Image,
        *,
        modality: Modality | str,
        unit: Unit | str,
        source: SourceSeries | None = None,
    ) -> Volume:
        """Build a volume from a 3D scalar SimpleITK image (geometry in LPS)."""
        import SimpleITK as sitk

        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise VolumeError(
                f"image must be 3D scalar, got {image.GetDimension()}D with "
                f"{image.GetNumberOfComponentsPerPixel()} component(s): split channels or stack slices first."
            )
        array = sitk.GetArrayFromImage(image)
        return cls(
            array=array,
            spacing_mm=image.GetSpacing(),
            origin_mm=image.GetOrigin(),
            direction=np.array(image.GetDirection()).reshape(3, 3),
            modality=Modality.parse(modality),
            unit=Unit.parse(unit),
            source=source,
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (no patient data)."""
        return {
            "modality": self.modality.value,
            "unit": self.unit.value,
            "shape_zyx": list(self.shape),
            "spacing_mm_xyz": [round(v, 6) for v in self.spacing_mm],
            "origin_mm_lps": [round(v, 4) for v in self.origin_mm],
            "direction": [round(float(v), 6) for v in self.direction.ravel()],
            "min": float(self.array.min()),
            "max": float(self.array.max()),
        }
