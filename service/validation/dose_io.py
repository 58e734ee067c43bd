"""Read RT dose grids: DICOM RT Dose, and NIfTI/MHA/NRRD files, into Gy volumes.

DICOM RT Dose (one file, possibly multi-frame):

- dose = stored pixel value x DoseGridScaling (Gy when DoseUnits is GY);
- DoseUnits RELATIVE is refused unless ``prescribed_dose_gy`` is given: relative values are
  then read as fractions of that dose (1.0 = the prescribed dose), and a grid whose maximum
  is above :data:`MAX_RELATIVE` is refused (it looks like percent, not fractions);
- DoseType ERROR (signed differences) is refused: these readers are for dose distributions;
- frame k lies at ImagePositionPatient + offset[k] * (row x column direction), where the
  GridFrameOffsetVector is relative (first value 0) or, per PS3.3 C.8.8.3.2, absolute z
  positions when its first value equals ImagePositionPatient z (allowed only for axial
  orientation; then offset[k] - z0 is used). Frames whose offsets decrease are reordered so
  that slice index increases along the slice normal (the values are not changed);
- offsets must be regular within :data:`OFFSET_TOLERANCE_MM`; a single-frame grid takes
  SliceThickness (or 1 mm) as its slice spacing, which does not affect any value.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from service.errors import DicomError, OptionError, PixelDataError, SeriesGeometryError
from service.logs import hash_uid
from service.volume import Modality, Unit, Volume

log = logging.getLogger(__name__)

__all__ = ["MAX_RELATIVE", "OFFSET_TOLERANCE_MM", "read_dose"]

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
#: Largest deviation (mm) of frame offsets from a regular grid.
OFFSET_TOLERANCE_MM = 0.01
#: Largest relative dose accepted as a fraction of the prescription.
MAX_RELATIVE = 5.0
_IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")


def read_dose(path: str | os.PathLike[str], *, prescribed_dose_gy: float | None = None) -> Volume:
    """Read an RT dose grid as a :class:`Volume` (modality RTDOSE, unit Gy, array ``(z, y, x)``).

    Parameters
    ----------
    path
        A DICOM RT Dose file, a folder holding exactly one RT Dose file, or a ``.nii``,
        ``.nii.gz``, ``.mha``, ``.mhd`` or ``.nrrd`` file. An image file must store modality
        RTDOSE and unit Gy (as :func:`service.imageio.write_image` does) or store neither, in
        which case its values are taken as Gy (logged).
    prescribed_dose_gy
        Needed only for DoseUnits RELATIVE: the dose (Gy) that relative value 1.0 stands for.

    Raises
    ------
    DicomError, SeriesGeometryError, PixelDataError, OptionError, ImageFormatError
        The message names the problem and the fix.
    """
    if prescribed_dose_gy is not None and not (np.isfinite(prescribed_dose_gy) and prescribed_dose_gy > 0):
        raise OptionError(
            f"prescribed_dose_gy must be a positive dose in Gy, got {prescribed_dose_gy!r}: pass e.g. 60."
        )
    file = Path(path)
    if file.is_dir():
        file = _only_dose_file(file)
    elif file.name.lower().endswith(_IMAGE_SUFFIXES):
        return _read_image_dose(file)
    if not file.is_file():
        raise DicomError(f"dose file {str(file)!r} does not exist: check the path.")
    try:
        ds = pydicom.dcmread(file)
    except (InvalidDicomError, OSError, EOFError) as exc:
        raise DicomError(
            f"file {str(file)!r} is not a readable DICOM file ({exc}): pass an RT Dose file or an image file."
        ) from None
    return dose_from_dataset(ds, prescribed_dose_gy=prescribed_dose_gy, where=str(file))


def _read_image_dose(file: Path) -> Volume:
    from service.imageio import read_image

    volume = read_image(file, modality=Modality.RTDOSE, unit=Unit.GY)
    log.info("read dose image %s as RTDOSE in Gy", file.name)
    return volume


def _only_dose_file(folder: Path) -> Path:
    found = []
    for candidate in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(
                candidate, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"]
            )
        except (InvalidDicomError, OSError, EOFError):
            continue
        if ds.get("Modality") == "RTDOSE" or ds.get("SOPClassUID") == RT_DOSE_STORAGE:
            found.append(candidate)
    if len(found) != 1:
        raise DicomError(
            f"folder {str(folder)!r} holds {len(found)} RT Dose files, expected exactly 1: "
            "pass the RT Dose file itself."
        )
    return found[0]


def _float_list(ds: Any, keyword: str, count: int, where: str) -> list[float]:
    value = ds.get(keyword)
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        values = []
    if len(values) != count or not all(np.isfinite(values)):
        raise DicomError(
            f"{where}: {keyword} must hold {count} finite number(s) (one per frame for frame offsets), "
            f"got {len(values) or value!r}: the RT Dose file is inconsistent; export it again from the "
            "planning system."
        )
    return values


def _frame_offsets(ds: Any, frames: int, ipp: list[float], normal: np.ndarray, where: str) -> np.ndarray:
    """Offsets (mm) of the frames along the slice normal, relative to ImagePositionPatient."""
    if frames == 1 and ds.get("GridFrameOffsetVector") is None:
        return np.zeros(1)
    offsets = np.asarray(_float_list(ds, "GridFrameOffsetVector", frames, where))
    if offsets[0] != 0.0:
        axial = np.allclose(np.abs(normal), [0.0, 0.0, 1.0], atol=1e-4)
        if not (axial and np.isclose(offsets[0], ipp[2], atol=1e-4)):
            raise SeriesGeometryError(
                f"{where}: GridFrameOffsetVector starts at {offsets[0]:g}, neither 0 (relative) nor "
                f"ImagePositionPatient z {ipp[2]:g} with an axial orientation (absolute): the frame "
                "positions are ambiguous; export the dose with relative frame offsets."
            )
        offsets = (offsets - ipp[2]) * float(np.sign(normal[2]))
    return offsets


def dose_from_dataset(ds: Any, *, prescribed_dose_gy: float | None = None, where: str = "dataset") -> Volume:
    """Build the dose volume from a parsed RT Dose dataset (see :func:`read_dose`)."""
    if ds.get("Modality") != "RTDOSE" and ds.get("SOPClassUID") != RT_DOSE_STORAGE:
        raise DicomError(
            f"{where} has Modality {ds.get('Modality')!r}, not RTDOSE: pass an RT Dose file "
            "(images are read with 'radtranslate validate image')."
        )
    dose_type = str(ds.get("DoseType", "PHYSICAL")).upper()
    if dose_type == "ERROR":
        raise DicomError(
            f"{where} has DoseType ERROR (a signed dose difference), not a dose: pass a PHYSICAL or "
            "EFFECTIVE dose grid."
        )
    units = str(ds.get("DoseUnits", "")).upper()
    if units == "RELATIVE":
        if prescribed_dose_gy is None:
            raise DicomError(
                f"{where} has DoseUnits RELATIVE: pass the prescribed dose (prescribed_dose_gy=..., CLI "
                "--prescribed-dose-gy) so relative values (1.0 = prescription) can be turned into Gy."
            )
    elif units != "GY":
        raise DicomError(
            f"{where} has DoseUnits {units or 'missing'!r}, expected GY or RELATIVE: fix the export."
        )
    scaling = ds.get("DoseGridScaling")
    if scaling is None or not np.isfinite(float(scaling)) or float(scaling) <= 0:
        raise DicomError(
            f"{where}: DoseGridScaling must be a positive number, got {scaling!r}: export the dose again."
        )
    try:
        pixels = np.asarray(ds.pixel_array, dtype=np.float64)
    except Exception as exc:  # pydicom raises many types for bad or unsupported pixel data
        raise PixelDataError(
            f"{where}: pixel data cannot be decoded ({type(exc).__name__}: {exc}): install the decoder "
            "plugin for its transfer syntax (pylibjpeg) or export it uncompressed."
        ) from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = pixels.reshape(frames, int(ds.Rows), int(ds.Columns))
    dose = pixels * float(scaling)
    if units == "RELATIVE":
        assert prescribed_dose_gy is not None
        if dose.max() > MAX_RELATIVE:
            raise DicomError(
                f"{where}: relative dose reaches {dose.max():g}, above {MAX_RELATIVE:g}: the values look "
                "like percent, not fractions of the prescription; convert the file to Gy in the planning "
                "system."
            )
        dose = dose * prescribed_dose_gy
    if dose.min() < 0:
        raise DicomError(f"{where}: the dose has negative values (min {dose.min():g} Gy): check the export.")
    iop = _float_list(ds, "ImageOrientationPatient", 6, where)
    ipp = _float_list(ds, "ImagePositionPatient", 3, where)
    row_spacing, col_spacing = _float_list(ds, "PixelSpacing", 2, where)
    row_dir, col_dir = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row_dir, col_dir)
    offsets = _frame_offsets(ds, frames, ipp, normal, where)
    order = np.argsort(offsets, kind="stable")
    offsets = offsets[order]
    dose = dose[order]
    if frames > 1:
        steps = np.diff(offsets)
        spacing_z = float(np.mean(steps))
        if (
            spacing_z <= 0
            or np.max(np.abs(offsets - offsets[0] - spacing_z * np.arange(frames))) > OFFSET_TOLERANCE_MM
        ):
            raise SeriesGeometryError(
                f"{where}: frame offsets are not a regular grid (steps {steps.min():g} to "
                f"{steps.max():g} mm): resample the dose onto regular slices in the planning system."
            )
    else:
        thickness = ds.get("SliceThickness")
        spacing_z = float(thickness) if thickness not in (None, "") and float(thickness) > 0 else 1.0
    origin = np.asarray(ipp) + offsets[0] * normal
    log.info(
        "read RT dose %s: %d frame(s), units %s, max %.4g Gy",
        hash_uid(str(ds.get("SOPInstanceUID", ""))),
        frames,
        units,
        float(dose.max()),
    )
    return Volume(
        array=dose.astype(np.float32),
        spacing_mm=(col_spacing, row_spacing, spacing_z),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=np.column_stack([row_dir, col_dir, normal]),
        modality=Modality.RTDOSE,
        unit=Unit.GY,
    )
