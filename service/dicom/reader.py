"""Read one DICOM image series (CT, MR or PET) into a :class:`~service.volume.Volume`.

Selection: exactly one image series (CT, MR, PT) must match ``series_uid`` and/or
``modality``; non-image series (RTSTRUCT, RTPLAN, RTDOSE, SR, ...) are never selected but
are counted in the messages. No match, or several, raise
:class:`~service.errors.SeriesSelectionError` listing what was found.

Values: each slice is rescaled with its own RescaleSlope/RescaleIntercept. CT gives HU, MR
arbitrary units, PET SUVbw (default) or Bq/ml; PET Units must be BQML.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset

from service.dicom.assemble import build_volume
from service.dicom.scan import (
    IMAGE_MODALITIES,
    SKIP_UNREADABLE,
    SUSPECT_REASONS,
    classify,
    group_by_series,
    list_files,
    read_header,
)
from service.dicom.series import DEFAULT_SPACING_TOLERANCE_MM, check_tolerance
from service.errors import DicomError, OptionError, SeriesSelectionError
from service.logs import hash_uid
from service.volume import Modality, Unit, Volume

log = logging.getLogger("radtranslate.dicom")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ReadOptions:
    """Validated options of :func:`read_series` (see there)."""

    series_uid: str | None = None
    modality: Modality | None = None
    pet_unit: Unit = Unit.SUVBW
    spacing_tolerance_mm: float = DEFAULT_SPACING_TOLERANCE_MM

    @classmethod
    def create(
        cls,
        *,
        series_uid: str | None,
        modality: Modality | str | None,
        pet_unit: Unit | str,
        spacing_tolerance_mm: float,
    ) -> ReadOptions:
        """Validate and convert the options once, at the entry."""
        uid = None
        if series_uid is not None:
            uid = str(series_uid).strip()
            if not uid:
                raise OptionError("series_uid must be a non-empty UID or None, got '': pass a UID or None.")
        mod = None
        if modality is not None:
            try:
                mod = Modality.parse(modality)
            except Exception:
                mod = None
            if mod is None or mod.value not in IMAGE_MODALITIES:
                raise OptionError(
                    f"modality must be one of {', '.join(IMAGE_MODALITIES)} or None, got {modality!r}: "
                    "pass the modality of the image series to read."
                )
        unit: Unit | None
        try:
            unit = Unit.parse(pet_unit)
        except Exception:
            unit = None
        if unit is None or unit not in (Unit.SUVBW, Unit.BQML):
            raise OptionError(
                f"pet_unit must be {Unit.SUVBW.value!r} or {Unit.BQML.value!r}, got {pet_unit!r}: "
                "pass Unit.SUVBW or Unit.BQML."
            )
        return cls(uid, mod, unit, check_tolerance(spacing_tolerance_mm))


def _describe(headers: Sequence[Dataset]) -> tuple[str, str, str]:
    first = headers[0]

    def text(keyword: str) -> str:
        try:
            return str(first.get(keyword, "") or "").strip()
        except Exception:
            return ""

    return text("SeriesInstanceUID"), text("Modality").upper() or "(none)", text("SeriesDescription")


def _listing(groups: dict[str, list[Dataset]]) -> str:
    lines = []
    for uid, headers in groups.items():
        _, modality, description = _describe(headers)
        lines.append(f"  {uid}  {modality}  {len(headers)} instance(s)  {description!r}")
    return "\n".join(lines) or "  (none)"


def select_series(groups: dict[str, list[Dataset]], options: ReadOptions, *, skipped: int = 0) -> str:
    """The one SeriesInstanceUID of ``groups`` matching ``options``.

    Raises
    ------
    SeriesSelectionError
        No image series matches, or several do (the message lists them and says how to choose).
    """
    image = {u: h for u, h in groups.items() if _describe(h)[1] in IMAGE_MODALITIES}
    other = {u: h for u, h in groups.items() if u not in image}
    rule = []
    candidates = dict(image)
    if options.series_uid is not None:
        rule.append(f"series_uid {options.series_uid!r}")
        if options.series_uid in other:
            raise SeriesSelectionError(
                f"series {options.series_uid} is {_describe(other[options.series_uid])[1]}, not an image "
                f"series ({', '.join(IMAGE_MODALITIES)}): pass the UID of a CT, MR or PET series."
            )
        candidates = {u: h for u, h in candidates.items() if u == options.series_uid}
    if options.modality is not None:
        rule.append(f"modality {options.modality.value}")
        candidates = {u: h for u, h in candidates.items() if _describe(h)[1] == options.modality.value}
    rule_text = " and ".join(rule) or "any image series"
    ignored = f"; {len(other)} non-image series ignored" if other else ""
    ignored += f"; {skipped} file(s) skipped as not DICOM or unreadable" if skipped else ""
    if not candidates:
        raise SeriesSelectionError(
            f"no image series matches {rule_text}{ignored}. Image series found:\n{_listing(image)}\n"
            "Pass the series_uid or modality of one of them (see 'radtranslate info')."
        )
    if len(candidates) > 1:
        raise SeriesSelectionError(
            f"{len(candidates)} image series match {rule_text}{ignored}:\n{_listing(candidates)}\n"
            "Pass series_uid (or a modality) to choose exactly one."
        )
    return next(iter(candidates))


def _inputs(path: PathLike | Sequence[PathLike]) -> tuple[list[Any], bool]:
    if isinstance(path, str | os.PathLike):
        return list_files(path), os.path.isdir(path)
    files = list(path)
    if not files:
        raise DicomError("path is an empty list of files: pass at least two DICOM files or a folder.")
    for i, file in enumerate(files):
        if not isinstance(file, str | os.PathLike):
            raise OptionError(
                f"path[{i}] must be a file path (str or os.PathLike), got {type(file).__name__}: "
                "pass file paths, or use read_series_from_datasets for parsed datasets."
            )
    return files, False


def read_series(
    path: PathLike | Sequence[PathLike],
    *,
    series_uid: str | None = None,
    modality: Modality | str | None = None,
    pet_unit: Unit | str = Unit.SUVBW,
    spacing_tolerance_mm: float = DEFAULT_SPACING_TOLERANCE_MM,
) -> Volume:
    """Read one CT, MR or PET series from a folder (recursive) or an explicit list of files.

    Parameters
    ----------
    path
        A folder (searched recursively: non-DICOM files are skipped and counted), or a list of
        files (each must be a readable DICOM instance). In a folder, files without the DICM
        prefix and DICOMDIR indexes are skipped; empty, unreadable or corrupt DICOM files are
        refused, since they may be damaged slices of the series.
    series_uid, modality
        Selection rule: exactly one image series must match (both ``None``: the only one).
    pet_unit
        For PET: :attr:`Unit.SUVBW` (default; QIBA body-weight SUV) or :attr:`Unit.BQML`.
    spacing_tolerance_mm
        Largest deviation (mm) of slice positions from a regular grid; default 0.05 mm
        (see :mod:`service.dicom.series`).

    Returns
    -------
    Volume
        float32 array ``(z, y, x)`` with slices sorted along ``cross(row, column)``.

    Raises
    ------
    SeriesSelectionError, SeriesGeometryError, PixelDataError, SUVError, DicomError, OptionError
        See the messages; each names the problem and the fix.
    """
    options = ReadOptions.create(
        series_uid=series_uid, modality=modality, pet_unit=pet_unit, spacing_tolerance_mm=spacing_tolerance_mm
    )
    files, is_folder = _inputs(path)
    headers: list[Dataset] = []
    skipped = 0
    suspect: list[str] = []
    for file in files:
        ds, reason = read_header(Path(file), defer_pixels=True)
        if ds is None:
            if not is_folder:
                raise DicomError(
                    f"file {os.fspath(file)!r} is not a usable DICOM instance ({reason}): "
                    "remove it from the list, or pass the folder to skip such files."
                )
            skipped += 1
            if reason in SUSPECT_REASONS:
                suspect.append(f"{os.fspath(file)!r} ({reason})")
            continue
        headers.append(ds)
    if suspect:
        shown = ", ".join(suspect[:5]) + (f" and {len(suspect) - 5} more" if len(suspect) > 5 else "")
        raise DicomError(
            f"{len(suspect)} file(s) in the folder look damaged and may be slices of the series: {shown}: "
            "repair or remove them, or pass an explicit list of the series' files."
        )
    groups_idx = group_by_series(headers)
    groups = {uid: [headers[i] for i in idx] for uid, idx in groups_idx.items()}
    uid = select_series(groups, options, skipped=skipped)
    datasets = [headers[i] for i in groups_idx[uid]]  # pixel data is read on first access
    log.info("reading series %s (%d instances)", hash_uid(uid), len(datasets))
    return build_volume(datasets, options)


def read_series_from_datasets(
    datasets: Sequence[Dataset],
    *,
    series_uid: str | None = None,
    modality: Modality | str | None = None,
    pet_unit: Unit | str = Unit.SUVBW,
    spacing_tolerance_mm: float = DEFAULT_SPACING_TOLERANCE_MM,
) -> Volume:
    """Like :func:`read_series`, from complete parsed instances (e.g. received over gRPC)."""
    options = ReadOptions.create(
        series_uid=series_uid, modality=modality, pet_unit=pet_unit, spacing_tolerance_mm=spacing_tolerance_mm
    )
    usable: list[Dataset] = []
    for i, ds in enumerate(datasets):
        if not isinstance(ds, Dataset):
            raise DicomError(
                f"datasets[{i}] is a {type(ds).__name__}, not a pydicom Dataset: "
                "parse each instance with pydicom.dcmread(BytesIO(data)) first."
            )
        kept, reason = classify(ds)
        if kept is None:
            raise DicomError(
                f"datasets[{i}] is not an instance of an image series ({reason or SKIP_UNREADABLE}): "
                "send only the instances of the series to translate."
            )
        usable.append(kept)
    if not usable:
        raise DicomError("datasets is empty: pass the instances of one image series.")
    groups_idx = group_by_series(usable)
    groups = {uid: [usable[i] for i in idx] for uid, idx in groups_idx.items()}
    uid = select_series(groups, options)
    return build_volume(groups[uid], options)


def read_instance_pixels(source: PathLike | bytes | Dataset) -> npt.NDArray[np.float32]:
    """Rescaled pixel values of one instance, shape ``(frames, rows, columns)``, float32.

    For single images (not 3D series) and tests of decoders. The rescale of each frame is
    applied when present (identity otherwise); no geometry is checked.
    """
    from service.dicom.assemble import instance_values

    if isinstance(source, Dataset):
        ds = source
    else:
        try:
            ds = pydicom.dcmread(BytesIO(source) if isinstance(source, bytes) else source)
        except Exception as exc:
            raise DicomError(
                f"the instance cannot be read as DICOM ({type(exc).__name__}): pass a complete DICOM file."
            ) from exc
    return instance_values(ds)
